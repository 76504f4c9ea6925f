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
import { PAGE_SIZE, PFERR_PRESENT, PFERR_RSVD, PTE_A, PTE_D } from "../x86/paging.ts";
import { bytesOver, HostMemory } from "./memory.ts";
import { Memslots, type Slot } from "./memslots.ts";
import { pageRunsOf } from "../trace/pages.ts";
import { ReferencePmu } from "./pmu.ts";
import { InvalidationLog, makeView, type StaleTranslation } from "./tlb.ts";
import { Uncertain } from "./uncertain.ts";
import {
  accessedDirtyUpdates,
  isCanonical,
  permissionFault,
  type Translation,
  walk,
  type WalkEntry,
  walkFaultCode,
  type WalkRegs,
  type WalkResult,
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

  /**
   * A store by software (not an A/D update), through the log so that earlier states stay
   * reconstructible. Not `certain`: it may have landed elsewhere (another translation of
   * the same access), so the bytes may hold their values with or without it; the oracle
   * follows the history in which it landed here.
   */
  #store(hva: number, size: number, value: bigint, certain: boolean): void {
    this.#logChange(hva, size);
    if (certain) this.#memory.write(hva, size, value);
    else this.#memory.mayStore(hva, size, value, true);
  }

  /** Logs the qwords under `[hva, hva + size)` as about to change. */
  #logChange(hva: number, size: number): void {
    const first = hva - (hva % 8);
    const last = hva + size - 1 - ((hva + size - 1) % 8);
    for (let q = first; q <= last; q += 8) {
      this.#log.memoryChanged(q, this.#memory.qword(q), this.#opIndex);
    }
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
      this.#store(target.hva, op.size, op.value, true);
      this.#touch(op.gpa, true);
    });
  }

  #physRead(op: ReadOp): Branch {
    const target = this.#phys(op.gpa);
    if (target.slot === undefined) {
      return fixed({ mmio: { gpa: op.gpa, write: false } }, "no memslot", () => {});
    }
    const { value, unknown } = this.#memory.load(target.hva, op.size);
    return {
      permitted: {
        outcome: { value },
        ...(unknown !== 0n ? { dontCare: unknown } : {}),
        why: "guest-physical load",
      },
      commit: (observed) => {
        if (unknown !== 0n && "value" in observed) {
          this.#memory.resolve(target.hva, op.size, observed.value);
        }
        this.#accessed.add(Number(op.gpa >> 12n));
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
      for (let q = p * PAGE_SIZE; q < (p + 1) * PAGE_SIZE; q += 8) {
        if (this.#memory.isZeroQword(q) && this.#memory.qword(q).others.length === 0) continue;
        this.#log.memoryChanged(q, this.#memory.qword(q), this.#opIndex);
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
  //
  // An access (SDM vol. 3A 4.5-4.8) is judged in steps. The ways it may be served: the
  // current walk, walks over the other values uncertain entries may hold, and the stale
  // translations the TLB may still cache (4.10.2). Each way is served on its own: the
  // walk's #PF, a permission #PF (4.6), an MMIO exit, a store, or a load that sees the
  // walk's own A/D updates (4.8). Ways with the same outcome form one permitted outcome.
  // Committing the outcome a backend observed: what it says of the uncertain entries, then
  // a #PF's A bits and invalidation (4.10.4.1), or the A/D updates, aging and dirty
  // logging, and the store or the load.

  #access(op: AccessOp): Branch[] {
    if (!isCanonical(op.gva)) return [fixed({ gp: true }, "non-canonical address", noop)];
    const current = this.#walkAssuming(op.gva, []);
    const tlb = this.#tlbLookup(op.gva, current);
    const walks = this.#walkCandidates(op, current);
    const candidates = [...walks.candidates, ...tlb.stale.map(staleCandidate)];
    const ctx: AccessContext = {
      op,
      write: op.kind === "write",
      walked: entriesOf(current),
      adMayStay: tlb.adMayStay,
      tried: triedValues(candidates),
      capped: walks.capped,
    };
    const groups = groupByOutcome(candidates, (c) => this.#serve(c, ctx));
    return this.#accessBranches(groups, ctx, tlb.currentCached);
  }

  /** The walk of `gva` in memory as it is, but with the entries at `pin` holding those values. */
  #walkAssuming(gva: bigint, pin: readonly Pin[]): WalkResult {
    const qword = pin.length === 0
      ? (hva: number) => this.#memory.read(hva, 8)
      : (hva: number) => pin.find((p) => p.hva === hva)?.value ?? this.#memory.read(hva, 8);
    return walk(makeView(this.#slots.slots, qword), this.config, this.#regs, gva);
  }

  /**
   * What the TLB and paging-structure caches may serve for `gva` (SDM vol. 3A 4.10.2):
   * the stale translations, whether a cached copy of the current one may serve, and which
   * entries may then keep A (and the leaf D) clear.
   */
  #tlbLookup(gva: bigint, current: WalkResult): TlbLookup {
    const { stale, cached } = this.#log.stale(
      this.#memory,
      this.#slots.slots,
      this.config,
      this.#regs,
      gva,
      current.ok ? current.t : null,
      entriesOf(current),
    );
    // A cached copy of the current translation may serve the access without A/D updates,
    // but it exists only if A was 1 in every entry its walk used (SDM vol. 3A 4.10.2.3),
    // and a flag stays 0 on a later access only if software cleared it (4.8). So an entry
    // may keep A (and the leaf D) clear only if that copy's walk did not use it, or if
    // software stored to it after the copy could have been cached. An EFER.NXE change or
    // a same-value store to an upper entry makes no other entry's A/D don't care.
    const adMayStay = (e: WalkEntry): boolean =>
      cached.some((c) => !c.hvas.includes(e.hva) || this.#log.changedSince(e.hva, e.gpa, c.at));
    return { stale, currentCached: cached.length > 0, adMayStay };
  }

  /**
   * The current walk, then walks over the other values its entries may hold (a store
   * that may have gone through a stale translation into a table;
   * {@linkcode Uncertain.otherValues}, A/D ignored): every combination the walks meet,
   * entry by entry (one store may have landed in either of two entries of one walk),
   * breadth first, at most {@linkcode MAX_OTHER_WALKS}; `capped` when some were left.
   */
  #walkCandidates(op: AccessOp, current: WalkResult): { candidates: Candidate[]; capped: boolean } {
    const candidates = [walkCandidate(current, op, this.#regs, "current walk")];
    const queue: Pin[][] = [];
    const seen = new Set<string>();
    const expand = (assign: readonly Pin[], entries: readonly WalkEntry[]) => {
      for (const e of entries) {
        if (assign.some((p) => p.hva === e.hva)) continue;
        for (const value of this.#memory.qword(e.hva).otherValues(PTE_A | PTE_D)) {
          const next = [...assign, { hva: e.hva, gpa: e.gpa, value }];
          const key = next.map((p) => `${p.hva}:${p.value}`).sort().join(",");
          if (seen.has(key)) continue;
          seen.add(key);
          queue.push(next);
        }
      }
    };
    expand([], entriesOf(current));
    for (let i = 0; i < queue.length; i++) {
      if (i === MAX_OTHER_WALKS) return { candidates, capped: true };
      const pin = queue[i]!;
      const alt = this.#walkAssuming(op.gva, pin);
      const why = `current walk with ${
        pin.map((p) => `${hex(p.value)} at gpa ${hex(p.gpa)}`).join(", ")
      } (an earlier store may have landed elsewhere)`;
      candidates.push(walkCandidate(alt, op, this.#regs, why, pin));
      expand(pin, entriesOf(alt));
    }
    return { candidates, capped: false };
  }

  /**
   * How one way ends: its walk's #PF, a permission #PF (SDM vol. 3A 4.6), an MMIO exit
   * (no slot, or a write to a readonly one), a store, or a load.
   */
  #serve(c: Candidate, ctx: AccessContext): Served {
    const { op, write } = ctx;
    if (c.t === undefined) {
      return { outcome: { pf: { code: c.fault!, cr2: op.gva } }, dontCare: 0n };
    }
    const code = permissionFault(c.t, op, this.#regs);
    if (code !== 0) return { outcome: { pf: { code, cr2: op.gva } }, dontCare: 0n };
    const target = this.#phys(c.t.gpa);
    if (target.slot === undefined || (write && target.slot.ro)) {
      return { outcome: { mmio: { gpa: c.t.gpa, write } }, dontCare: 0n };
    }
    if (write) return { outcome: { ok: true }, dontCare: 0n };
    let load = this.#memory.load(target.hva, op.size);
    if (c.current) load = afterWalkUpdates(load, target.hva, op.size, c.t, ctx.adMayStay);
    return { outcome: { value: load.value }, dontCare: load.unknown };
  }

  /** One branch per group; its commit follows every way its observed outcome may have taken. */
  #accessBranches(groups: Group[], ctx: AccessContext, currentCached: boolean): Branch[] {
    const permitted = groups.map((g): Permitted => ({
      outcome: g.outcome,
      ...(g.dontCare !== 0n ? { dontCare: g.dontCare } : {}),
      why: g.members.map((m) => m.why).join("; ") +
        (currentCached && g.members.some((m) => m.current) ? " (or its cached copy)" : ""),
    }));
    return permitted.map((p, i) => ({
      permitted: p,
      // Don't-care bits can make one observation match several groups: then any of
      // their members may have served it, and the state must allow all of them.
      commit: (observed) => {
        const members = groups.filter((_, j) => matchesPermitted(permitted[j]!, observed))
          .flatMap((g) => g.members);
        this.#commitAccess(ctx, members.length > 0 ? members : groups[i]!.members, observed);
      },
    }));
  }

  /** Commits the outcome a backend observed; `members`: the ways it may have come from. */
  #commitAccess(ctx: AccessContext, members: Candidate[], observed: Outcome): void {
    this.#learnEntryValues(ctx, members, observed);
    for (const e of ctx.walked) this.#accessed.add(Number(e.gpa >> 12n));
    if ("pf" in observed) return this.#commitPageFault(ctx);
    this.#commitAccessedDirty(ctx, members);
    const translations = members.filter((m) => m.t !== undefined).map((m) => m.t!);
    const frames = this.#touchTranslations(translations);
    // An MMIO exit leaves memory alone (the A/D updates of the walk already happened).
    if ("mmio" in observed) return;
    if (ctx.write) this.#commitStore(ctx, frames);
    else this.#commitLoad(ctx, { members, translations, frames }, observed);
  }

  /**
   * What the observed outcome says of the entries whose other values were walked. A
   * not-present or reserved-bit fault comes from a walk, never from a translation (a
   * cached one, or one of another possible history of memory, which this oracle does not
   * enumerate): an entry whose other values were walked can hold only the values the
   * matching walks assumed (its current one for a walk that assumed none); one such value
   * alone is pinned. Other outcomes may come from such translations.
   */
  #learnEntryValues(ctx: AccessContext, members: Candidate[], observed: Outcome): void {
    const walkOnly = "pf" in observed &&
      ((observed.pf.code & PFERR_PRESENT) === 0 || (observed.pf.code & PFERR_RSVD) !== 0);
    const pinned = members.every((m) => m.pin !== undefined);
    if (!members.every((m) => m.current) || !(walkOnly || pinned)) return;
    for (const [hva, walkedValues] of ctx.tried) {
      // A walk that did not read the entry says nothing of it.
      if (members.some((m) => !(m.reads ?? []).includes(hva))) continue;
      const assumed = members.map((m) => m.pin?.find((p) => p.hva === hva));
      const ok = new Set(assumed.flatMap((p) => p === undefined ? [] : [p.value]));
      const entry = this.#memory.qword(hva);
      if (assumed.some((p) => p === undefined)) {
        // Values no walk tried (the walk cap) stay possible.
        const keep = (v: bigint) => ok.has(v) || !walkedValues.has(v);
        if (walkOnly) this.#memory.setQword(hva, entry.narrowed(keep, PTE_A | PTE_D));
      } else if (ok.size === 1 && !ctx.capped) {
        this.#memory.setQword(hva, Uncertain.of([...ok][0]!, entry.unknown & (PTE_A | PTE_D)));
      }
    }
  }

  /**
   * A #PF. A faulting walk sets no A/D in KVM (docs/kvm-facts.md A.5); hardware may set A in the
   * upper levels it used, so those A bits become don't care (docs/semantics.md rule 5).
   * The leaf (or the faulting entry) stays unchanged, as access.c checks. "A page-fault
   * exception resulting from an attempt to use a linear address will invalidate any TLB
   * entries that are for a page number corresponding to that linear address" and the
   * paging-structure-cache entries used for it (SDM vol. 3A 4.10.4.1): like INVLPG of it.
   */
  #commitPageFault(ctx: AccessContext): void {
    for (const e of ctx.walked.slice(0, -1)) {
      if ((e.value & PTE_A) === 0n) this.#addUnknown(e.hva - (e.hva % 8), PTE_A);
    }
    this.#log.invlpg(ctx.op.gva);
  }

  /**
   * The A/D updates of the walk that served the access (SDM vol. 3A 4.8; KVM
   * `FNAME(update_accessed_dirty_bits)`): definite unless a cached copy or another way
   * with the same outcome may have served it instead. A walk whose assumed entry values
   * memory does not hold (not pinned) only makes its A/D bits don't care: its entries are
   * not what memory holds.
   */
  #commitAccessedDirty(ctx: AccessContext, members: Candidate[]): void {
    const holds = (m: Candidate) =>
      (m.pin ?? []).every((p) =>
        ((this.#memory.read(p.hva, 8) ^ p.value) & ~(PTE_A | PTE_D)) === 0n
      );
    const cur = members.find((m) => m.current && m.t !== undefined && holds(m));
    if (cur === undefined) {
      const loose = members.find((m) => m.current && m.t !== undefined);
      if (loose === undefined) return;
      for (const { entry, value } of accessedDirtyUpdates(loose.t!, ctx.write)) {
        this.#addUnknown(entry.hva, value ^ entry.value);
        this.#touch(entry.gpa, true, false);
      }
      return;
    }
    // Per entry: another way with this outcome, or a cached copy that lets it stay.
    const ambiguous = members.length > 1;
    const fuzzy = (e: WalkEntry) => ambiguous || ctx.adMayStay(e);
    this.#accessedDirtyUnsure(cur.t!, ctx.write, fuzzy);
    for (const { entry, value } of accessedDirtyUpdates(cur.t!, ctx.write)) {
      // A/D updates are not logged: they never change a translation.
      const maybe = fuzzy(entry);
      const changed = value ^ entry.value;
      const updated = this.#memory.qword(entry.hva).withValue(value);
      this.#memory.setQword(
        entry.hva,
        maybe ? updated.withUnknownBits(changed) : updated.withKnownBits(changed),
      );
      this.#touch(entry.gpa, true, !maybe);
    }
  }

  /**
   * A/D bits the walk needs that are don't care may really be clear: the walk may then
   * set them (and dirty the table page); afterwards they are set either way, so they are
   * known unless the update may not have happened (`fuzzy`).
   */
  #accessedDirtyUnsure(t: Translation, write: boolean, fuzzy: (e: WalkEntry) => boolean): void {
    for (const e of t.entries) {
      const need = PTE_A | (write && e.level === t.level ? PTE_D : 0n);
      const entry = this.#memory.qword(e.hva);
      const unsure = entry.unknown & need & e.value;
      if (unsure === 0n || e.ro) continue;
      this.#touch(e.gpa, true, false);
      if (!fuzzy(e)) this.#memory.setQword(e.hva, entry.withKnownBits(unsure));
    }
  }

  /**
   * Aging of the pages the serving translations used, and their frames (a write to a
   * readonly slot still maps the page, read-only, so it may age young).
   */
  #touchTranslations(translations: readonly Translation[]): PhysTarget[] {
    for (const t of translations) {
      for (const e of t.entries) this.#accessed.add(Number(e.gpa >> 12n));
    }
    const frames = translations.map((t) => this.#phys(t.gpa));
    for (const f of frames) if (f.slot !== undefined) this.#accessed.add(Number(f.gpa >> 12n));
    return frames;
  }

  /**
   * The store, in the frame of the first way that may have served it. If other ways lead
   * to other frames, it landed in exactly one of them: in each, the bytes may hold their
   * values with or without it ({@linkcode Uncertain.mayStore}).
   */
  #commitStore(ctx: AccessContext, frames: readonly PhysTarget[]): void {
    const { size, value } = ctx.op;
    const primary = frames[0]!;
    const definite = new Set(frames.map((f) => f.hva)).size === 1;
    this.#store(primary.hva, size, value!, definite);
    this.#touch(primary.gpa, true, definite);
    const done = new Set([primary.hva]);
    for (const f of frames.slice(1)) {
      if (done.has(f.hva)) continue;
      done.add(f.hva);
      this.#memory.mayStore(f.hva, size, value!, false);
      this.#touch(f.gpa, true, false);
    }
  }

  /**
   * The load: an observed value pins the don't-care bits when one way alone served it.
   * KVM maps a page writable on a read fault when the gpte is writable and dirty, and
   * then marks it dirty (make_spte): such a page may appear in the dirty log.
   */
  #commitLoad(ctx: AccessContext, taken: Taken, observed: Outcome): void {
    if (taken.members.length === 1 && "value" in observed) {
      this.#memory.resolve(taken.frames[0]!.hva, ctx.op.size, observed.value);
    }
    for (const t of taken.translations) {
      const leaf = t.entries[t.entries.length - 1]!;
      if (t.w && (this.#memory.read(leaf.hva - (leaf.hva % 8), 8) & PTE_D) !== 0n) {
        this.#touch(t.gpa, true, false);
      }
    }
  }

  /** Marks `mask` bits of the qword at 8-aligned `hva` as unknown. */
  #addUnknown(hva: number, mask: bigint): void {
    if (mask !== 0n) this.#memory.setQword(hva, this.#memory.qword(hva).withUnknownBits(mask));
  }
}

/** More walks over other entry values than this per access: the rest stay possible. */
const MAX_OTHER_WALKS = 64;

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

/** What the TLB may serve for an access ({@linkcode ReferenceBackend}'s `#tlbLookup`). */
interface TlbLookup {
  stale: StaleTranslation[];
  /** A cached copy of the current translation may serve the access. */
  currentCached: boolean;
  /** Whether an entry's A (and the leaf's D) may stay clear: a cached copy may serve. */
  adMayStay: (e: WalkEntry) => boolean;
}

/** One access being judged: what every step of it reads. */
interface AccessContext {
  op: AccessOp;
  write: boolean;
  /** The entries the current walk read, top first. */
  walked: readonly WalkEntry[];
  adMayStay: (e: WalkEntry) => boolean;
  /** The entries whose other possible values were walked, and those values. */
  tried: ReadonlyMap<number, ReadonlySet<bigint>>;
  /** More walks were due than {@linkcode MAX_OTHER_WALKS}: values no walk tried stay possible. */
  capped: boolean;
}

/** How one way ends: its outcome and the bits of a loaded value that may differ. */
interface Served {
  outcome: Outcome;
  dontCare: bigint;
}

/** The ways with one outcome. */
interface Group extends Served {
  members: Candidate[];
}

/** The ways an observed outcome may have come from, their translations and frames. */
interface Taken {
  members: readonly Candidate[];
  translations: readonly Translation[];
  frames: readonly PhysTarget[];
}

function entriesOf(w: WalkResult): WalkEntry[] {
  return w.ok ? w.t.entries : w.entries;
}

/** A walk as a way to serve `op`: its translation, or its fault's error code. */
function walkCandidate(
  w: WalkResult,
  op: AccessOp,
  regs: WalkRegs,
  why: string,
  pin?: Pin[],
): Candidate {
  const reads = entriesOf(w).map((e) => e.hva);
  const how = w.ok ? { t: w.t } : { fault: walkFaultCode(w.rsvd, op, regs) };
  return { ...how, current: true, why, ...(pin === undefined ? {} : { pin }), reads };
}

function staleCandidate(s: StaleTranslation): Candidate {
  return {
    t: s.t,
    current: false,
    why: `stale translation from before op ${s.until} (valid until invalidated)`,
  };
}

/** The entries whose other possible values some candidate walked, and those values. */
function triedValues(candidates: readonly Candidate[]): Map<number, Set<bigint>> {
  const tried = new Map<number, Set<bigint>>();
  for (const c of candidates) {
    for (const p of c.pin ?? []) {
      let set = tried.get(p.hva);
      if (set === undefined) tried.set(p.hva, set = new Set());
      set.add(p.value);
    }
  }
  return tried;
}

/** Candidates with identical outcomes (and don't-care bits) in one group, first-seen order. */
function groupByOutcome(
  candidates: readonly Candidate[],
  serve: (c: Candidate) => Served,
): Group[] {
  const groups: Group[] = [];
  for (const c of candidates) {
    const { outcome, dontCare } = serve(c);
    const g = groups.find((x) => sameOutcome(x.outcome, outcome) && x.dontCare === dontCare);
    if (g === undefined) groups.push({ outcome, dontCare, members: [c] });
    else g.members.push(c);
  }
  return groups;
}

/**
 * A load at `hva` after the walk's own A/D updates, which land before it (SDM vol. 3A
 * 4.8): a read of a paging structure through a self-mapping sees them; their bits are
 * unknown where the update may not happen (`adMayStay`).
 */
function afterWalkUpdates(
  load: Uncertain,
  hva: number,
  size: number,
  t: Translation,
  adMayStay: (e: WalkEntry) => boolean,
): Uncertain {
  let { value, unknown } = load;
  for (const { entry, value: updated } of accessedDirtyUpdates(t, false)) {
    const { mask, bits } = bytesOver(entry.hva, 8, updated, hva, size);
    if (mask === 0n) continue;
    value = (value & ~mask) | bits;
    if (adMayStay(entry)) unknown |= bytesOver(entry.hva, 8, updated ^ entry.value, hva, size).bits;
  }
  return Uncertain.of(value, unknown);
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
