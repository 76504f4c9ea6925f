/**
 * @module
 * The stale-translation oracle (DESIGN.md section 3). The architecture lets a TLB or
 * paging-structure cache serve any translation of a gva that was valid at some instant
 * since that gva was last invalidated (SDM vol. 3A 4.10.2-4.10.4); KVM's unsync shadow
 * pages make this real (KVM-FACTS B.5). The reference keeps no TLB: it keeps a log of
 * every change to guest memory and memslots since the last full flush, and at each
 * access walks the gva again in each earlier state of memory that differs in an entry
 * the walk reads. Every translation found is a permitted stale translation.
 *
 * Invalidations: a full flush clears the log; INVLPG of a gva ends the window of every
 * translation of the page (of any size) containing it; a memslot delete or move ends
 * the window of every translation that read the slot's memory (KVM zaps those sptes).
 */
import { type Slot } from "./memslots.ts";
import type { HostMemory } from "./memory.ts";
import { type Translation, walk, type WalkRegs, type WalkView } from "./walk.ts";
import type { Config } from "../trace/types.ts";

type LogEntry =
  /** A qword of host memory changed; `old` is its previous value. */
  | { t: "mem"; hva: number; old: bigint; op: number }
  /** The memslot list changed; `gone` is the gfn range whose memory the guest lost. */
  | { t: "slots"; old: readonly Slot[]; gone: { gfn: number; pages: number } | null; op: number }
  | { t: "invlpg"; gva: bigint; op: number };

/** A stale translation and the op before which it was valid. */
export interface StaleTranslation {
  t: Translation;
  /** The op whose change ended this translation's validity. */
  until: number;
}

/** Reads guest memory through a slot list, with an undo overlay keyed by qword hva. */
export function makeView(
  memory: HostMemory,
  slots: readonly Slot[],
  overlay?: ReadonlyMap<number, bigint>,
): WalkView {
  return {
    readEntry(gpa: bigint) {
      const gfn = Number(gpa >> 12n);
      let slot: Slot | undefined;
      for (const s of slots) {
        if (s.id >>> 16 === 0 && gfn >= s.gfn && gfn < s.gfn + s.pages) {
          slot = s;
          break;
        }
      }
      if (slot === undefined) return null;
      const hva = slot.hva + (gfn - slot.gfn) * 4096 + Number(gpa & 0xff8n);
      const value = overlay?.get(hva) ?? memory.read(hva, 8);
      return { hva, value, ro: slot.ro };
    },
  };
}

function sameTranslation(a: Translation, b: Translation): boolean {
  return a.gpa === b.gpa && a.level === b.level && a.w === b.w && a.u === b.u && a.x === b.x;
}

function pageContains(t: Translation, gvaOfT: bigint, other: bigint): boolean {
  const shift = BigInt(12 + 9 * (t.level - 1));
  return gvaOfT >> shift === other >> shift;
}

function usesRange(t: Translation, range: { gfn: number; pages: number }): boolean {
  const inRange = (gpa: bigint) => {
    const gfn = Number(gpa >> 12n);
    return gfn >= range.gfn && gfn < range.gfn + range.pages;
  };
  return inRange(t.gpa) || t.entries.some((e) => inRange(e.gpa));
}

/** The change log since the last full flush. */
export class InvalidationLog {
  #log: LogEntry[] = [];
  /** 4 KiB gva page -> index in the log of its last INVLPG. */
  #lastInvlpg = new Map<bigint, number>();
  /** Disabled in strict mode: nothing stale is ever permitted. */
  readonly enabled: boolean;

  constructor(enabled: boolean) {
    this.enabled = enabled;
  }

  get length(): number {
    return this.#log.length;
  }

  /** CR3 load or a control-bit change that resets the MMU: nothing cached survives. */
  flush(): void {
    this.#log = [];
    this.#lastInvlpg.clear();
  }

  memoryChanged(hva: number, old: bigint, op: number): void {
    if (this.enabled) this.#log.push({ t: "mem", hva, old, op });
  }

  slotsChanged(
    old: readonly Slot[],
    gone: { gfn: number; pages: number } | null,
    op: number,
  ): void {
    if (this.enabled) this.#log.push({ t: "slots", old, gone, op });
  }

  invlpg(gva: bigint, op: number): void {
    if (!this.enabled) return;
    this.#lastInvlpg.set(gva >> 12n, this.#log.length);
    this.#log.push({ t: "invlpg", gva, op });
  }

  /**
   * The translations of `gva` valid at some instant since its last invalidation, other
   * than the current one, newest first; and whether the current translation was itself
   * valid in an earlier state of its entries (so a cached copy may have served it
   * without setting A/D bits).
   */
  stale(
    memory: HostMemory,
    slots: readonly Slot[],
    config: Config,
    regs: WalkRegs,
    gva: bigint,
    current: Translation | null,
    currentEntries: readonly { hva: number }[],
  ): { stale: StaleTranslation[]; currentCached: boolean } {
    const out: StaleTranslation[] = [];
    let currentCached = false;
    if (!this.enabled || this.#log.length === 0) return { stale: out, currentCached };
    const start = (this.#lastInvlpg.get(gva >> 12n) ?? -1) + 1;
    const overlay = new Map<number, bigint>();
    const gone: { gfn: number; pages: number }[] = [];
    const invlpgs: bigint[] = [];
    let viewSlots = slots;
    let hvas = new Set(currentEntries.map((e) => e.hva));
    for (let i = this.#log.length - 1; i >= start; i--) {
      const e = this.#log[i]!;
      if (e.t === "invlpg") {
        invlpgs.push(e.gva);
        continue;
      }
      if (e.t === "mem") {
        overlay.set(e.hva, e.old);
        if (!hvas.has(e.hva)) continue;
      } else {
        viewSlots = e.old;
        if (e.gone !== null) gone.push(e.gone);
      }
      // The state before entry i differs in something this walk reads: walk it again.
      const w = walk(makeView(memory, viewSlots, overlay), config, regs, gva);
      hvas = new Set((w.ok ? w.t.entries : w.entries).map((x) => x.hva));
      if (!w.ok) continue;
      const t = w.t;
      if (gone.some((r) => usesRange(t, r))) continue;
      if (invlpgs.some((g) => pageContains(t, gva, g))) continue;
      if (current !== null && sameTranslation(t, current)) {
        currentCached = true;
        continue;
      }
      if (!out.some((s) => sameTranslation(s.t, t))) out.push({ t, until: e.op });
    }
    return { stale: out, currentCached };
  }
}
