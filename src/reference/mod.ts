/**
 * @module
 * The reference backend: the oracle. It is the x86 architecture plus the KVM uAPI as
 * pinned in docs/kvm-facts.md and `docs/semantics.md`, with no caches: every access walks
 * the guest page tables in guest memory and looks the gfn up in the memslots. Where the architecture permits several
 * outcomes it returns all of them ({@linkcode Judgement}) and follows the branch a
 * backend took.
 */
import type { Backend, BackendFactory, Judgement, Oracle, Permitted } from "../backend.ts";
import { findMatch, matchesPermitted } from "../trace/outcome.ts";
import type {
  AccessOp,
  Config,
  CtlOp,
  Op,
  Outcome,
  ReadOp,
  SlotOp,
  WriteOp,
} from "../trace/types.ts";
import { PTE_A, PTE_D } from "../x86/paging.ts";
import { HostMemory } from "./memory.ts";
import { Memslots, type Slot } from "./memslots.ts";
import { pageRunsOf } from "../trace/pages.ts";
import { ReferencePmu } from "./pmu.ts";
import { InvalidationLog, makeView } from "./tlb.ts";
import {
  accessedDirtyUpdates,
  isCanonical,
  permissionFault,
  type Translation,
  walk,
  type WalkEntry,
  walkFaultCode,
  type WalkRegs,
} from "./walk.ts";

/** Options of the reference. */
export interface ReferenceOptions {
  /** Collapse every permitted set to the current walk (`--strict`). */
  strict?: boolean;
}

/** One way an op may have gone: its outcome and how the state advances if it did. */
interface Branch {
  permitted: Permitted;
  commit(observed: Outcome): void;
}

/** A data access at a guest-physical address, resolved against the current slots. */
interface PhysTarget {
  gpa: bigint;
  slot: Slot | undefined;
  hva: number;
}

/** The architectural reference model. */
export class ReferenceBackend implements Backend, Oracle {
  /** Always `"reference"`. */
  readonly name = "reference" as const;
  /** The machine this reference models. */
  readonly config: Config;
  readonly #memory = new HostMemory();
  readonly #slots: Memslots;
  readonly #log: InvalidationLog;
  readonly #pmu: ReferencePmu;
  readonly #regs: WalkRegs;
  #pce: boolean;
  /** gfns the guest touched since the last `age` that covered them. */
  readonly #accessed = new Set<number>();
  /** Pages (of ranges or of `#accessed`) the `age` ops looked at. */
  #ageScanned = 0;
  /** Index of the op being judged (for "why" texts). */
  #opIndex = 0;

  /**
   * A machine in its reset state: no memslots, zeroed host memory, CR3 0 and the
   * control bits and vPMU of `config`.
   */
  constructor(config: Config, options: ReferenceOptions = {}) {
    this.config = config;
    this.#log = new InvalidationLog(!options.strict);
    this.#slots = new Memslots(config.smm, config.dirtyLog);
    this.#pmu = new ReferencePmu(config);
    this.#regs = {
      root: 0n,
      wp: config.cr0.wp,
      smep: config.cr4.smep,
      smap: config.cr4.smap,
      nx: config.efer.nx,
      ac: config.rflags.ac,
    };
    this.#pce = config.cr4.pce;
  }

  /**
   * Pages and entries the dirty-log, age and discard paths visited so far: tests check
   * that it follows the pages a trace touched, not the sizes of its slots and ranges.
   */
  get pagesVisited(): number {
    return this.#memory.scanned + this.#slots.scanned + this.#ageScanned;
  }

  step(op: Op): Outcome {
    const j = this.judge(op);
    return j.permitted[0]!.outcome;
  }

  close(): void {}

  judge(op: Op, observe?: Outcome | ((permitted: readonly Permitted[]) => Outcome)): Judgement {
    const branches = this.#branches(op);
    const permitted = branches.map((b) => b.permitted);
    const observed = typeof observe === "function" ? observe(permitted) : observe;
    const match = observed === undefined ? 0 : findMatch(permitted, observed);
    const taken = branches[match === -1 ? 0 : match]!;
    taken.commit(observed !== undefined && match !== -1 ? observed : taken.permitted.outcome);
    this.#opIndex++;
    return { permitted, match };
  }

  #branches(op: Op): Branch[] {
    switch (op.op) {
      case "slot":
        return [this.#slot(op)];
      case "write":
        return [this.#physWrite(op)];
      case "read":
        return [this.#physRead(op)];
      case "access":
        return this.#access(op);
      case "invlpg":
        return [fixed({ ok: true }, "INVLPG", () => {
          if (isCanonical(op.gva)) this.#log.invlpg(op.gva);
        })];
      case "cr3":
        return [this.#cr3(op.gpa)];
      case "ctl":
        return [this.#ctl(op)];
      case "discard":
        return [fixed({ ok: true }, "MADV_DONTNEED", () => this.#discard(op.hva, op.pages))];
      case "dirtylog": {
        const r = this.#slots.getDirtyLog(op.id);
        if ("errno" in r) return [fixed(r, "KVM_GET_DIRTY_LOG", () => {})];
        return [{
          permitted: {
            outcome: { bitmap: r.bitmap },
            ...(r.dontCare.length > 0 ? { dontCarePages: r.dontCare } : {}),
            why: this.config.dirtyLog.manualProtect
              ? "pages written since KVM_CLEAR_DIRTY_LOG last cleared them (don't care: " +
                "mapped writable on a read)"
              : "pages written since the last GET (don't care: mapped writable on a read)",
          },
          commit: (observed) =>
            this.#slots.afterGet(op.id, "bitmap" in observed ? observed.bitmap : r.bitmap),
        }];
      }
      case "dirtyclear":
        return [fixed({ errno: this.#slots.clearDirtyLog(op) }, "KVM_CLEAR_DIRTY_LOG", noop)];
      case "age":
        return [this.#age(op.gpa, op.pages)];
      case "wrmsr":
        if (!this.#pmu.isPmuMsr(op.msr)) return unmodelledMsr("WRMSR", { ok: true });
        return [fixed(this.#pmu.wrmsr(op.msr, op.value), "WRMSR", () => {})];
      case "rdmsr":
        if (!this.#pmu.isPmuMsr(op.msr)) {
          return unmodelledMsr("RDMSR", { value: 0n }, (1n << 64n) - 1n);
        }
        return [fixed(this.#pmu.rdmsr(op.msr) ?? { gp: true }, "RDMSR", () => {})];
      case "rdpmc":
        return [fixed(this.#pmu.rdpmc(op.ecx, op.user, this.#pce), "RDPMC", () => {})];
      case "filter":
        return [fixed(this.#pmu.filter(op), "KVM_SET_PMU_EVENT_FILTER", () => {})];
      case "events":
        return [fixed(this.#pmu.events(op), "events", () => {})];
      case "pmis":
        return [fixed(this.#pmu.pmis(), "PMIs since the last pmis", () => {})];
    }
  }

  // --- memslots ---------------------------------------------------------------------

  #slot(op: SlotOp): Branch {
    const before = this.#slots.slots;
    const { errno, change } = this.#slots.set(op);
    const gone = change.kind === "delete" || change.kind === "move"
      ? { gfn: change.old.gfn, pages: change.old.pages }
      : null;
    const added = change.kind === "create" || change.kind === "move"
      ? { gfn: change.slot.gfn, pages: change.slot.pages }
      : null;
    if (change.kind !== "none" && change.kind !== "flags") {
      this.#log.slotsChanged(before, gone, added, this.#opIndex);
    }
    return fixed({ errno }, "KVM_SET_USER_MEMORY_REGION", () => {});
  }

  #phys(gpa: bigint): PhysTarget {
    const gfn = Number(gpa >> 12n);
    const slot = Memslots.find(this.#slots.slots, gfn);
    const hva = slot === undefined ? 0 : slot.hva + (gfn - slot.gfn) * 4096 + Number(gpa & 0xfffn);
    return { gpa, slot, hva };
  }

  /** Stores through the log so that earlier states stay reconstructible. */
  #store(hva: number, size: number, value: bigint): void {
    const first = hva - (hva % 8);
    const last = hva + size - 1 - ((hva + size - 1) % 8);
    for (let q = first; q <= last; q += 8) {
      this.#log.memoryChanged(
        q,
        this.#memory.read(q, 8),
        this.#opIndex,
        this.#memory.alternatives(q),
      );
    }
    this.#memory.write(hva, size, value);
  }

  #physWrite(op: WriteOp): Branch {
    const target = this.#phys(op.gpa);
    if (target.slot === undefined) {
      return fixed({ mmio: { gpa: op.gpa, write: true } }, "no memslot", noop);
    }
    if (target.slot.ro) {
      // The direct map still maps a readonly page (read-only), so it may age young.
      return fixed({ mmio: { gpa: op.gpa, write: true } }, "readonly memslot", () => {
        this.#accessed.add(Number(op.gpa >> 12n));
      });
    }
    return fixed({ ok: true }, "guest-physical store", () => {
      this.#store(target.hva, op.size, op.value);
      this.#touch(op.gpa, true);
    });
  }

  #physRead(op: ReadOp): Branch {
    const target = this.#phys(op.gpa);
    if (target.slot === undefined) {
      return fixed({ mmio: { gpa: op.gpa, write: false } }, "no memslot", () => {});
    }
    return this.#readBranch(target, op.size, "guest-physical load", true, () => {
      this.#accessed.add(Number(op.gpa >> 12n));
    });
  }

  #readBranch(
    target: PhysTarget,
    size: number,
    why: string,
    resolve: boolean,
    after: () => void,
  ): Branch {
    const value = this.#memory.read(target.hva, size);
    const dontCare = this.#memory.dontCare(target.hva, size);
    return {
      permitted: { outcome: { value }, ...(dontCare !== 0n ? { dontCare } : {}), why },
      commit: (observed) => {
        if (resolve && dontCare !== 0n && "value" in observed) {
          this.#memory.resolve(target.hva, size, observed.value);
        }
        after();
      },
    };
  }

  /** A guest access to `gpa`: aging always, dirty logging when it writes. */
  #touch(gpa: bigint, write: boolean, definite = true): void {
    const gfn = Number(gpa >> 12n);
    this.#accessed.add(gfn);
    if (write) this.#slots.markDirty(gfn, definite);
  }

  /**
   * MADV_DONTNEED: only the pages that hold anything change, so only they are visited
   * (`HostMemory.pagesIn`), however many pages the range spans.
   */
  #discard(hva: bigint, pages: number): void {
    for (const p of this.#memory.pagesIn(Number(hva >> 12n), pages)) {
      for (let q = p * 4096; q < (p + 1) * 4096; q += 8) {
        if (!this.#memory.isZeroQword(q) || this.#memory.alternatives(q).length > 0) {
          this.#log.memoryChanged(
            q,
            this.#memory.read(q, 8),
            this.#opIndex,
            this.#memory.alternatives(q),
          );
        }
      }
      this.#memory.discardPage(p);
    }
  }

  /** clear_young: visits the smaller of the range and the pages accessed since aging. */
  #age(gpa: bigint, pages: number): Branch {
    const first = Number(gpa >> 12n);
    const hit: number[] = [];
    if (pages <= this.#accessed.size) {
      this.#ageScanned += pages;
      for (let gfn = first; gfn < first + pages; gfn++) if (this.#accessed.has(gfn)) hit.push(gfn);
    } else {
      this.#ageScanned += this.#accessed.size;
      for (const gfn of this.#accessed) if (gfn >= first && gfn < first + pages) hit.push(gfn);
    }
    const young = pageRunsOf(hit.map((gfn) => gfn - first));
    return {
      permitted: {
        outcome: { young },
        ...(young.length > 0 ? { dontCarePages: young } : {}),
        why: "young only if accessed since the last age (any subset)",
      },
      commit: () => {
        for (const gfn of hit) this.#accessed.delete(gfn);
      },
    };
  }

  // --- control registers --------------------------------------------------------------

  #cr3(value: bigint): Branch {
    // CR3 bits 63:MAXPHYADDR are reserved without PCIDE (SDM 4.5.2): MOV to CR3 #GPs.
    if (value >> BigInt(this.config.maxPhyAddr) !== 0n) return fixed({ gp: true }, "MOV CR3", noop);
    return fixed({ ok: true }, "MOV CR3 (full flush)", () => {
      this.#regs.root = value & ~0xfffn;
      this.#log.flush();
    });
  }

  #ctl(op: CtlOp): Branch {
    const f = this.config.features;
    if ((op.smep === true && !f.smep) || (op.smap === true && !f.smap)) {
      return fixed({ gp: true }, "CR4 bit not in CPUID", noop);
    }
    return fixed({ ok: true }, "control bits", () => {
      const r = this.#regs;
      // CR0.WP, CR4.SMEP and CR4.SMAP are MMU role bits: a change resets KVM's MMU
      // context onto other shadow pages (KVM_MMU_CR0/CR4_ROLE_BITS), and the issue counts
      // it as an invalidation. EFER.NXE is not: the shadow role forces efer_nx (docs/kvm-facts.md
      // B.3) and WRMSR to EFER invalidates no TLB (SDM 4.10.4.1), so translations cached
      // under the old NXE stay permitted (measured on kvm_pvm: corpus/regressions/
      // kvm-nx-clear-keeps-translation.json). EFLAGS.AC and CR4.PCE change nothing.
      let flush = false;
      if (op.wp !== undefined && op.wp !== r.wp) (r.wp = op.wp), (flush = true);
      if (op.smep !== undefined && op.smep !== r.smep) (r.smep = op.smep), (flush = true);
      if (op.smap !== undefined && op.smap !== r.smap) (r.smap = op.smap), (flush = true);
      if (op.nx !== undefined && op.nx !== r.nx) {
        this.#log.nxChanged(r.nx, this.#opIndex);
        r.nx = op.nx;
      }
      if (op.ac !== undefined) r.ac = op.ac;
      if (op.pce !== undefined) this.#pce = op.pce;
      if (flush) this.#log.flush();
    });
  }

  // --- accesses through the page tables -------------------------------------------------

  #access(op: AccessOp): Branch[] {
    if (!isCanonical(op.gva)) return [fixed({ gp: true }, "non-canonical address", noop)];
    const regs = this.#regs;
    const view = makeView(this.#slots.slots, (hva) => this.#memory.read(hva, 8));
    const w = walk(view, this.config, regs, op.gva);
    const current = w.ok ? w.t : null;
    const { stale, cached } = this.#log.stale(
      this.#memory,
      this.#slots.slots,
      this.config,
      regs,
      op.gva,
      current,
      w.ok ? w.t.entries : w.entries,
    );
    const currentCached = cached.length > 0;
    // A cached copy of the current translation may serve the access without A/D updates,
    // but it exists only if A was 1 in every entry its walk used (SDM vol. 3A 4.10.2.3),
    // and a flag stays 0 on a later access only if software cleared it (4.8). So an entry
    // may keep A (and the leaf D) clear only if that copy's walk did not use it, or if
    // software stored to it after the copy could have been cached. An EFER.NXE change or
    // a same-value store to an upper entry makes no other entry's A/D don't care.
    const adMayStay = (e: WalkEntry): boolean =>
      cached.some((c) => !c.hvas.includes(e.hva) || this.#log.changedSince(e.hva, e.gpa, c.at));
    const candidates: Candidate[] = [];
    const currentReads = (w.ok ? w.t.entries : w.entries).map((e) => e.hva);
    if (w.ok) {
      candidates.push({ t: w.t, current: true, why: "current walk", reads: currentReads });
    } else {
      const code = walkFaultCode(w.rsvd, op, regs);
      candidates.push({ fault: code, current: true, why: "current walk", reads: currentReads });
    }
    // Entries with don't-care bits beyond A/D (a store that may have gone through a
    // stale translation into a table) may hold other values: the ones stores that may
    // have landed elsewhere leave there, or without that record (too many) any subset of
    // the unknown bits flipped. Walk every combination the walks meet, entry by entry
    // (one store may have landed in either of two entries of one walk): at most 64.
    const otherValues = (e: WalkEntry): bigint[] => {
      const unknown = this.#memory.dontCare(e.hva, 8) & ~(PTE_A | PTE_D);
      if (unknown === 0n) return [];
      const alts = this.#memory.alternatives(e.hva);
      return alts.length > 0
        ? alts.filter((v) => ((v ^ e.value) & ~(PTE_A | PTE_D)) !== 0n)
        : unknownSubsets(unknown).map((flip) => e.value ^ flip);
    };
    const queue: Pin[][] = [];
    const seen = new Set<string>();
    const expand = (assign: Pin[], entries: readonly WalkEntry[]) => {
      for (const e of entries) {
        if (assign.some((p) => p.hva === e.hva)) continue;
        for (const value of otherValues(e)) {
          const next = [...assign, { hva: e.hva, gpa: e.gpa, value }];
          const key = next.map((p) => `${p.hva}:${p.value}`).sort().join(",");
          if (seen.has(key)) continue;
          seen.add(key);
          queue.push(next);
        }
      }
    };
    expand([], w.ok ? w.t.entries : w.entries);
    let capped = false;
    for (let i = 0; i < queue.length; i++) {
      if (i === 64) {
        capped = true;
        break;
      }
      const pin = queue[i]!;
      const alt = walk(
        makeView(
          this.#slots.slots,
          (hva) => pin.find((p) => p.hva === hva)?.value ?? this.#memory.read(hva, 8),
        ),
        this.config,
        regs,
        op.gva,
      );
      const why = `current walk with ${
        pin.map((p) => `${hex(p.value)} at gpa ${hex(p.gpa)}`).join(", ")
      } (an earlier store may have landed elsewhere)`;
      const reads = (alt.ok ? alt.t.entries : alt.entries).map((e) => e.hva);
      if (alt.ok) candidates.push({ t: alt.t, current: true, why, pin, reads });
      else {
        const fault = walkFaultCode(alt.rsvd, op, regs);
        candidates.push({ fault, current: true, why, pin, reads });
      }
      expand(pin, alt.ok ? alt.t.entries : alt.entries);
    }
    for (const s of stale) {
      candidates.push({
        t: s.t,
        current: false,
        why: `stale translation from before op ${s.until} (valid until invalidated)`,
      });
    }
    // Evaluate each candidate, then merge candidates with identical outcomes.
    const groups: { outcome: Outcome; dontCare: bigint; members: Candidate[] }[] = [];
    for (const c of candidates) {
      const { outcome, dontCare } = this.#evaluate(c, op, adMayStay);
      const g = groups.find((x) => sameOutcome(x.outcome, outcome) && x.dontCare === dontCare);
      if (g === undefined) groups.push({ outcome, dontCare, members: [c] });
      else g.members.push(c);
    }
    const walked = w.ok ? w.t.entries : w.entries;
    // The entries whose other possible values were walked, and those values.
    const tried = new Map<number, Set<bigint>>();
    for (const c of candidates) {
      for (const p of c.pin ?? []) {
        let set = tried.get(p.hva);
        if (set === undefined) tried.set(p.hva, set = new Set());
        set.add(p.value);
      }
    }
    const permitted = groups.map((g): Permitted => ({
      outcome: g.outcome,
      ...(g.dontCare !== 0n ? { dontCare: g.dontCare } : {}),
      why: g.members.map((m) => m.why).join("; ") +
        (currentCached && g.members.some((m) => m.current) ? " (or its cached copy)" : ""),
    }));
    return permitted.map((p) => ({
      permitted: p,
      // Don't-care bits can make one observation match several groups: then any of
      // their members may have served it, and the state must allow all of them.
      commit: (observed) => {
        const members = groups.filter((_, i) => matchesPermitted(permitted[i]!, observed))
          .flatMap((g) => g.members);
        const taken = members.length > 0 ? members : groups[permitted.indexOf(p)]!.members;
        this.#commitAccess(op, taken, adMayStay, observed, walked, tried, capped);
      },
    }));
  }

  #evaluate(
    c: Candidate,
    op: AccessOp,
    adMayStay: (e: WalkEntry) => boolean,
  ): { outcome: Outcome; dontCare: bigint } {
    if (c.t === undefined) {
      return { outcome: { pf: { code: c.fault!, cr2: op.gva } }, dontCare: 0n };
    }
    const code = permissionFault(c.t, op, this.#regs);
    if (code !== 0) return { outcome: { pf: { code, cr2: op.gva } }, dontCare: 0n };
    const target = this.#phys(c.t.gpa);
    const write = op.kind === "write";
    if (target.slot === undefined || (write && target.slot.ro)) {
      return { outcome: { mmio: { gpa: c.t.gpa, write } }, dontCare: 0n };
    }
    if (write) return { outcome: { ok: true }, dontCare: 0n };
    let value = this.#memory.read(target.hva, op.size);
    let dontCare = this.#memory.dontCare(target.hva, op.size);
    if (c.current) {
      // The walk's own A/D updates land before the load (SDM 4.8): a read of a paging
      // structure through a self-mapping sees them; don't care if they may not happen.
      for (const { entry, value: updated } of accessedDirtyUpdates(c.t, false)) {
        const lo = Math.max(entry.hva, target.hva);
        const hi = Math.min(entry.hva + 8, target.hva + op.size);
        for (let a = lo; a < hi; a++) {
          const shift = BigInt(8 * (a - target.hva));
          const from = BigInt(8 * (a - entry.hva));
          const byte = (updated >> from) & 0xffn;
          const changed = ((updated ^ entry.value) >> from) & 0xffn;
          value = (value & ~(0xffn << shift)) | (byte << shift);
          if (adMayStay(entry)) dontCare |= changed << shift;
        }
      }
    }
    return { outcome: { value }, dontCare };
  }

  #commitAccess(
    op: AccessOp,
    members: Candidate[],
    adMayStay: (e: WalkEntry) => boolean,
    observed: Outcome,
    walked: readonly WalkEntry[],
    tried: ReadonlyMap<number, ReadonlySet<bigint>>,
    capped: boolean,
  ): void {
    const write = op.kind === "write";
    // A not-present or reserved-bit fault comes from a walk, never from a translation (a
    // cached one, or one of another possible history of memory, which this oracle does
    // not enumerate): an entry whose other values were walked can hold only the values
    // the matching walks assumed (its current one for a walk that assumed none); one
    // such value alone is pinned. Other outcomes may come from such translations.
    const walkOnly = "pf" in observed &&
      ((observed.pf.code & 1) === 0 || (observed.pf.code & 8) !== 0);
    const pinned = members.every((m) => m.pin !== undefined);
    if (members.every((m) => m.current) && (walkOnly || pinned)) {
      for (const [hva, walkedValues] of tried) {
        // A walk that did not read the entry says nothing of it.
        if (members.some((m) => !(m.reads ?? []).includes(hva))) continue;
        const assumed = members.map((m) => m.pin?.find((p) => p.hva === hva));
        const ok = new Set(assumed.flatMap((p) => p === undefined ? [] : [p.value]));
        if (assumed.some((p) => p === undefined)) {
          // Values no walk tried (the walk cap) stay possible.
          if (walkOnly) {
            this.#memory.filterAlternatives(
              hva,
              (v) => ok.has(v) || !walkedValues.has(v),
              PTE_A | PTE_D,
            );
          }
        } else if (ok.size === 1 && !capped) {
          const unknown = this.#memory.dontCare(hva, 8);
          this.#memory.write(hva, 8, [...ok][0]!);
          this.#memory.addDontCare(hva, unknown & (PTE_A | PTE_D));
        }
      }
    }
    for (const e of walked) this.#accessed.add(Number(e.gpa >> 12n));
    if ("pf" in observed) {
      // A faulting walk sets no A/D in KVM (docs/kvm-facts.md A.5); hardware may set A in the
      // upper levels it used, so those A bits become don't care (docs/semantics.md rule 5).
      // The leaf (or the faulting entry) stays unchanged, as access.c checks.
      for (const e of walked.slice(0, -1)) {
        if ((e.value & PTE_A) === 0n) this.#memory.addDontCare(e.hva - (e.hva % 8), PTE_A);
      }
      // "A page-fault exception resulting from an attempt to use a linear address will
      // invalidate any TLB entries that are for a page number corresponding to that
      // linear address" and the paging-structure-cache entries used for it (SDM vol. 3A
      // 4.10.4.1): like INVLPG of that address.
      this.#log.invlpg(op.gva);
      return;
    }
    const ambiguous = members.length > 1;
    const translations = members.filter((m) => m.t !== undefined).map((m) => m.t!);
    // A/D updates of the current walk: definite unless a cached copy or another branch
    // with the same outcome may have served the access instead.
    // A walk whose assumed entry values memory does not hold (not pinned) only makes its
    // A/D bits don't care: its entries are not what memory holds.
    const holds = (m: Candidate) =>
      (m.pin ?? []).every((p) =>
        ((this.#memory.read(p.hva, 8) ^ p.value) & ~(PTE_A | PTE_D)) === 0n
      );
    const cur = members.find((m) => m.current && m.t !== undefined && holds(m));
    const loose = cur === undefined
      ? members.find((m) => m.current && m.t !== undefined)
      : undefined;
    if (loose !== undefined) {
      for (const { entry, value } of accessedDirtyUpdates(loose.t!, write)) {
        this.#memory.addDontCare(entry.hva, value ^ entry.value);
        this.#touch(entry.gpa, true, false);
      }
    }
    if (cur !== undefined) {
      // Per entry: another branch with this outcome, or a cached copy that lets it stay.
      const fuzzy = (e: WalkEntry) => ambiguous || adMayStay(e);
      // A/D bits this walk needs that are don't care may really be clear: the walk may
      // then set them (and dirty the table page); afterwards they are set either way.
      for (const e of cur.t!.entries) {
        const need = PTE_A | (write && e.level === cur.t!.level ? PTE_D : 0n);
        const unsure = this.#memory.dontCare(e.hva, 8) & need & e.value;
        if (unsure === 0n || e.ro) continue;
        this.#touch(e.gpa, true, false);
        if (!fuzzy(e)) {
          const unknown = this.#memory.dontCare(e.hva, 8);
          this.#memory.write(e.hva, 8, this.#memory.read(e.hva, 8), true);
          this.#memory.addDontCare(e.hva, unknown & ~unsure);
        }
      }
      for (const { entry, value } of accessedDirtyUpdates(cur.t!, write)) {
        // A/D updates are not logged: they never change a translation.
        const unknown = this.#memory.dontCare(entry.hva, 8);
        const changed = value ^ entry.value;
        this.#memory.write(entry.hva, 8, value, true);
        const maybe = fuzzy(entry);
        this.#memory.addDontCare(entry.hva, maybe ? unknown | changed : unknown & ~changed);
        this.#touch(entry.gpa, true, !maybe);
      }
    }
    for (const t of translations) {
      for (const e of t.entries) this.#accessed.add(Number(e.gpa >> 12n));
    }
    const frames = translations.map((t) => this.#phys(t.gpa));
    // A write to a readonly slot still maps the page (read-only), so it may age young.
    for (const f of frames) if (f.slot !== undefined) this.#accessed.add(Number(f.gpa >> 12n));
    // An MMIO exit leaves memory alone (the A/D updates of the walk already happened).
    if ("mmio" in observed) return;
    const distinct = new Set(frames.map((f) => f.hva));
    if (write) {
      const primary = frames[0]!;
      const old = this.#memory.read(primary.hva, op.size);
      // If the store went elsewhere, these bytes keep whatever they may have held.
      const oldUnknown = this.#memory.dontCare(primary.hva, op.size);
      const before = distinct.size > 1 ? this.#memory.possibleValues(primary.hva, op.size) : [];
      this.#store(primary.hva, op.size, op.value!);
      this.#touch(primary.gpa, true, distinct.size === 1);
      const done = new Set([primary.hva]);
      for (const f of frames.slice(1)) {
        if (done.has(f.hva)) continue;
        done.add(f.hva);
        // The write may have landed here instead: every bit it would change is unknown,
        // and the qwords may hold their values with or without it.
        const other = this.#memory.read(f.hva, op.size);
        const was = this.#memory.possibleValues(f.hva, op.size);
        this.#markUnknown(f.hva, op.size, other ^ op.value!);
        this.#memory.storeMaybe(f.hva, op.size, op.value!, false, was);
        this.#touch(f.gpa, true, false);
      }
      if (distinct.size > 1) {
        this.#markUnknown(primary.hva, op.size, (old ^ op.value!) | oldUnknown);
        this.#memory.storeMaybe(primary.hva, op.size, op.value!, true, before);
      }
      return;
    }
    if (!ambiguous && "value" in observed) {
      this.#memory.resolve(frames[0]!.hva, op.size, observed.value);
    }
    // KVM maps a page writable on a read fault when the gpte is writable and dirty, and
    // then marks it dirty (make_spte): such a page may appear in the dirty log.
    for (const t of translations) {
      const leaf = t.entries[t.entries.length - 1]!;
      if (t.w && (this.#memory.read(leaf.hva - (leaf.hva % 8), 8) & (1n << 6n)) !== 0n) {
        this.#touch(t.gpa, true, false);
      }
    }
  }

  /** Marks `mask` bits of the `size` bytes at `hva` as don't care. */
  #markUnknown(hva: number, size: number, mask: bigint): void {
    for (let i = 0; i < size; i++) {
      const byte = (mask >> BigInt(8 * i)) & 0xffn;
      if (byte === 0n) continue;
      const a = hva + i;
      this.#memory.addDontCare(a - (a % 8), byte << BigInt(8 * (a % 8)));
    }
  }
}

/** An entry value a walk assumed: the qword at `hva` (guest `gpa`) held `value`. */
interface Pin {
  hva: number;
  gpa: bigint;
  value: bigint;
}

/** A way an access may be served: a translation (current or stale) or the walk's fault. */
interface Candidate {
  t?: Translation;
  fault?: number;
  current: boolean;
  why: string;
  /** The entry values this walk assumed for don't-care entries (pinned if they alone match). */
  pin?: Pin[];
  /** The hvas of the entries the walk read (current walks only). */
  reads?: number[];
}

/**
 * The non-empty subsets of the `unknown` bits of an entry, as masks to flip: of single
 * bits when there are at most 6 of them, else of the bytes that hold any (at most 255).
 * Each is a value the entry may hold when some of the stores that made those bits
 * unknown landed there and others did not.
 */
export function unknownSubsets(unknown: bigint): bigint[] {
  const parts: bigint[] = [];
  for (let b = 0n; b < 64n; b++) if ((unknown >> b) & 1n) parts.push(1n << b);
  if (parts.length > 6) {
    parts.length = 0;
    for (let i = 0n; i < 8n; i++) {
      const byte = unknown & (0xffn << (8n * i));
      if (byte !== 0n) parts.push(byte);
    }
  }
  const out: bigint[] = [];
  for (let m = 1; m < 1 << parts.length; m++) {
    let flip = 0n;
    for (let j = 0; j < parts.length; j++) if (m & (1 << j)) flip |= parts[j]!;
    out.push(flip);
  }
  return out;
}

function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}

function noop(): void {}

/**
 * An MSR outside the model (only PMU MSRs are modelled, docs/kvm-facts.md section C): KVM may
 * #GP (unknown MSR) or implement it (TSC, EFER, APIC base...) with any value, so the
 * reference permits both and keeps no state for it (docs/semantics.md item 13).
 */
function unmodelledMsr(what: string, served: Outcome, dontCare?: bigint): Branch[] {
  const why = `${what} of an MSR outside the model (not a PMU MSR)`;
  return [
    fixed({ gp: true }, why, noop),
    {
      permitted: { outcome: served, ...(dontCare === undefined ? {} : { dontCare }), why },
      commit: noop,
    },
  ];
}

function fixed(outcome: Outcome, why: string, commit: () => void): Branch {
  return { permitted: { outcome, why }, commit: () => commit() };
}

function sameOutcome(a: Outcome, b: Outcome): boolean {
  return JSON.stringify(a, (_k, v) => typeof v === "bigint" ? v.toString(16) : v) ===
    JSON.stringify(b, (_k, v) => typeof v === "bigint" ? v.toString(16) : v);
}

/** The reference as a backend factory. */
export const referenceFactory: BackendFactory = {
  name: "reference",
  available: () => null,
  create: (config: Config) => new ReferenceBackend(config),
};
