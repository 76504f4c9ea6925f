/**
 * @module
 * The stale-translation oracle (docs/semantics.md rule 5). The architecture lets a TLB or
 * paging-structure cache serve any translation of a gva that was valid at some instant
 * since that gva was last invalidated (SDM vol. 3A 4.10.2-4.10.4); KVM's unsync shadow
 * pages make this real (docs/kvm-facts.md B.5). The reference keeps no TLB: it keeps a log of
 * every change to guest memory and memslots since the last full flush, and at each
 * access walks the gva again in each earlier state of memory that differs in an entry
 * the walk reads. Every translation found is a permitted stale translation.
 *
 * Invalidations: a full flush clears the log; INVLPG of a gva ends the window of every
 * translation of the page (of any size) containing it; a memslot delete or move ends
 * the window of every translation that read the slot's memory (KVM zaps those sptes).
 *
 * The log is indexed per qword of host memory, so that going back in time visits only
 * the changes to entries a walk reads: a trace that stores to data pages a million
 * times costs nothing at the next access.
 */
import type { Slot } from "./memslots.ts";
import type { HostMemory } from "./memory.ts";
import type { Uncertain } from "./uncertain.ts";
import { type Translation, walk, type WalkEntry, type WalkRegs, type WalkView } from "./walk.ts";
import type { Config } from "../trace/types.ts";
import { levelShift } from "../x86/paging.ts";

/**
 * The current translation was also valid in the state of memory just before log position
 * `at`, so a copy of it may have been cached then (the processor caches a translation
 * only after A is 1 in every entry used, SDM vol. 3A 4.10.2.3); `hvas` are the entries
 * that walk used.
 */
export interface CachedCopy {
  at: number;
  hvas: readonly number[];
}

/** A stale translation and the op before which it was valid. */
export interface StaleTranslation {
  t: Translation;
  /** The op whose change ended this translation's validity. */
  until: number;
}

interface MemChange {
  /** Position in the log (a global sequence number since the last flush). */
  seq: number;
  /**
   * What the oracle knew of the qword before this change: its value and the other values
   * it may have held then (stores that may have landed elsewhere).
   */
  old: Uncertain;
  op: number;
}

interface GfnRange {
  gfn: number;
  pages: number;
}

interface SlotsChange {
  seq: number;
  old: readonly Slot[];
  /** The gfn range whose memory the guest lost (delete, move), or null (create). */
  gone: GfnRange | null;
  /** The gfn range that gained memory (create, move), or null (delete). */
  added: GfnRange | null;
  op: number;
}

interface Invlpg {
  seq: number;
  gva: bigint;
}

/** EFER.NXE changed; `old` is its value before. Walks before it use that value. */
interface NxChange {
  seq: number;
  old: boolean;
  op: number;
}

/** Reads guest memory through a slot list and a function giving each qword's value. */
export function makeView(
  slots: readonly Slot[],
  qword: (hva: number) => bigint,
): WalkView {
  return {
    readEntry(gpa: bigint) {
      const gfn = Number(gpa >> 12n);
      for (const s of slots) {
        if (s.id >>> 16 === 0 && gfn >= s.gfn && gfn < s.gfn + s.pages) {
          const hva = s.hva + (gfn - s.gfn) * 4096 + Number(gpa & 0xff8n);
          return { hva, value: qword(hva), ro: s.ro };
        }
      }
      return null;
    },
  };
}

function sameTranslation(a: Translation, b: Translation): boolean {
  return a.gpa === b.gpa && a.level === b.level && a.w === b.w && a.u === b.u && a.x === b.x;
}

function pageContains(level: number, gva: bigint, other: bigint): boolean {
  const shift = BigInt(levelShift(level));
  return gva >> shift === other >> shift;
}

function inRange(gpa: bigint, range: GfnRange): boolean {
  const gfn = Number(gpa >> 12n);
  return gfn >= range.gfn && gfn < range.gfn + range.pages;
}

function usesRange(t: Translation, range: GfnRange): boolean {
  return inRange(t.gpa, range) || t.entries.some((e) => inRange(e.gpa, range));
}

/** The largest index i with list[i].seq < seq, or -1 (lists are sorted by seq). */
function lastBefore(list: readonly { seq: number }[], seq: number): number {
  let lo = 0, hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** The change log since the last full flush. */
export class InvalidationLog {
  #seq = 0;
  /** hva of a qword -> its changes, oldest first. */
  #mem = new Map<number, MemChange[]>();
  #slots: SlotsChange[] = [];
  /** Each distinct gfn range a memslot change touched -> those changes, oldest first. */
  #ranges = new Map<
    string,
    { range: GfnRange; changes: { seq: number; op: number }[]; gone: number[] }
  >();
  #invlpgs: Invlpg[] = [];
  #nx: NxChange[] = [];
  /** 4 KiB gva page -> seq of its last INVLPG. */
  #lastInvlpg = new Map<bigint, number>();
  /** Disabled in strict mode: nothing stale is ever permitted. */
  readonly enabled: boolean;

  constructor(enabled: boolean) {
    this.enabled = enabled;
  }

  /** CR3 load or a control-bit change that resets the MMU: nothing cached survives. */
  flush(): void {
    this.#seq = 0;
    this.#mem = new Map();
    this.#slots = [];
    this.#ranges = new Map();
    this.#invlpgs = [];
    this.#nx = [];
    this.#lastInvlpg.clear();
  }

  /** Op `op` changed the qword at `hva`, of which the oracle knew `old` before. */
  memoryChanged(hva: number, old: Uncertain, op: number): void {
    if (!this.enabled) return;
    const list = this.#mem.get(hva);
    const change = { seq: this.#seq++, old, op };
    if (list === undefined) this.#mem.set(hva, [change]);
    else list.push(change);
  }

  slotsChanged(
    old: readonly Slot[],
    gone: GfnRange | null,
    added: GfnRange | null,
    op: number,
  ): void {
    if (!this.enabled) return;
    const seq = this.#seq++;
    this.#slots.push({ seq, old, gone, added, op });
    for (const [range, isGone] of [[gone, true], [added, false]] as const) {
      if (range === null) continue;
      const key = `${range.gfn}:${range.pages}`;
      let entry = this.#ranges.get(key);
      if (entry === undefined) this.#ranges.set(key, entry = { range, changes: [], gone: [] });
      if (entry.changes.at(-1)?.seq !== seq) entry.changes.push({ seq, op });
      if (isGone) entry.gone.push(seq);
    }
  }

  /**
   * EFER.NXE changed. WRMSR to EFER is not a TLB-invalidating operation (SDM vol. 3A
   * 4.10.4.1 lists none for it), and KVM keeps its shadow pages (the shadow role forces
   * efer_nx = 1): translations cached under the old NXE stay usable until invalidated.
   */
  nxChanged(old: boolean, op: number): void {
    if (this.enabled) this.#nx.push({ seq: this.#seq++, old, op });
  }

  invlpg(gva: bigint): void {
    if (!this.enabled) return;
    const seq = this.#seq++;
    this.#lastInvlpg.set(gva >> 12n, seq);
    this.#invlpgs.push({ seq, gva });
  }

  /** The other values a qword may have held just before log position `seq`. */
  #altsAt(memory: HostMemory, hva: number, seq: number): readonly bigint[] {
    const list = this.#mem.get(hva);
    if (list !== undefined) {
      const i = lastBefore(list, seq) + 1;
      if (i < list.length) return list[i]!.old.others;
    }
    return memory.qword(hva).others;
  }

  /** The value of a qword just before log position `seq` (current memory if unchanged since). */
  #valueAt(memory: HostMemory, hva: number, seq: number): bigint {
    const list = this.#mem.get(hva);
    if (list !== undefined) {
      const i = lastBefore(list, seq) + 1;
      if (i < list.length) return list[i]!.old.value;
    }
    return memory.read(hva, 8);
  }

  /**
   * The translations of `gva` valid at some instant since its last invalidation, other
   * than the current one, newest first; and the earlier states in which the current
   * translation was itself valid (`cached`: a cached copy of it may serve the access).
   */
  stale(
    memory: HostMemory,
    slots: readonly Slot[],
    config: Config,
    regs: WalkRegs,
    gva: bigint,
    current: Translation | null,
    currentEntries: readonly WalkEntry[],
  ): { stale: StaleTranslation[]; cached: CachedCopy[] } {
    const out: StaleTranslation[] = [];
    const cached: CachedCopy[] = [];
    if (!this.enabled || this.#seq === 0) return { stale: out, cached };
    const start = (this.#lastInvlpg.get(gva >> 12n) ?? -1) + 1;
    let at = this.#seq;
    let hvas: readonly WalkEntry[] = currentEntries;
    for (;;) {
      // The newest change before `at` to an entry the last walk read, or to the slots.
      let next = -1;
      let op = 0;
      for (const { hva } of hvas) {
        const list = this.#mem.get(hva);
        if (list === undefined) continue;
        const i = lastBefore(list, at);
        if (i >= 0 && list[i]!.seq > next) (next = list[i]!.seq), (op = list[i]!.op);
      }
      // A memslot change matters only if it changed the memory under an entry read.
      for (const { range, changes } of this.#ranges.values()) {
        if (!hvas.some((e) => inRange(e.gpa, range))) continue;
        const k = lastBefore(changes, at);
        if (k >= 0 && changes[k]!.seq > next) (next = changes[k]!.seq), (op = changes[k]!.op);
      }
      // An NXE change alters every walk (bit 63 reserved or XD).
      const n = lastBefore(this.#nx, at);
      if (n >= 0 && this.#nx[n]!.seq > next) (next = this.#nx[n]!.seq), (op = this.#nx[n]!.op);
      if (next < start) break;
      at = next;
      // The state just before change `at`: memory and slots as they were then.
      const sAt = lastBefore(this.#slots, at) + 1;
      const viewSlots = sAt < this.#slots.length ? this.#slots[sAt]!.old : slots;
      const view = makeView(viewSlots, (hva) => this.#valueAt(memory, hva, at));
      const nAt = lastBefore(this.#nx, at) + 1;
      const then = nAt < this.#nx.length ? { ...regs, nx: this.#nx[nAt]!.old } : regs;
      const w = walk(view, config, then, gva);
      hvas = w.ok ? w.t.entries : w.entries;
      // The same state where an entry held another value it may have had then.
      const found: Translation[] = w.ok ? [w.t] : [];
      for (const e of hvas) {
        for (const other of this.#altsAt(memory, e.hva, at)) {
          const altView = makeView(
            viewSlots,
            (hva) => hva === e.hva ? other : this.#valueAt(memory, hva, at),
          );
          const a = walk(altView, config, then, gva);
          if (a.ok) found.push(a.t);
        }
      }
      for (const t of found) {
        // Ended by a later memslot delete/move of memory it read, or a later INVLPG.
        let endedBySlot = false;
        for (const { range, gone } of this.#ranges.values()) {
          if (gone.length > 0 && gone.at(-1)! >= at && usesRange(t, range)) endedBySlot = true;
        }
        if (endedBySlot) continue;
        const endedByInvlpg = this.#invlpgs.some((x) =>
          x.seq > at && pageContains(t.level, gva, x.gva)
        );
        if (endedByInvlpg) continue;
        if (current !== null && sameTranslation(t, current)) {
          cached.push({ at, hvas: t.entries.map((e) => e.hva) });
          continue;
        }
        if (!out.some((s) => sameTranslation(s.t, t))) out.push({ t, until: op });
      }
    }
    return { stale: out, cached };
  }

  /**
   * Whether software may have changed the qword at `hva` (guest `gpa`) at or after log
   * position `seq`: a store or discard logged for it, or a memslot change over `gpa`.
   */
  changedSince(hva: number, gpa: bigint, seq: number): boolean {
    const list = this.#mem.get(hva);
    if (list !== undefined && list[list.length - 1]!.seq >= seq) return true;
    for (const { range, changes } of this.#ranges.values()) {
      if (changes[changes.length - 1]!.seq >= seq && inRange(gpa, range)) return true;
    }
    return false;
  }
}
