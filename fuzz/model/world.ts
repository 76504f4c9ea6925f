/**
 * @module
 * The generator's model of the machine it is building a trace for: which memslots it
 * created, which guest pages it made into page tables and at what level, the entries it
 * wrote, the linear addresses those tables map, and which PMU events it programmed.
 * Generators read it to aim at meaning (accesses to mapped addresses, memslot changes
 * over gfns that hold page tables or cached MMIO) and update it with the ops they emit.
 *
 * The model is the generator's belief, not an oracle: it follows the ops it emitted
 * with simple rules, and a wrong belief only makes a later op less targeted.
 */
import type { Config, Op, SlotFlag } from "../../src/trace/types.ts";
import { levelShift, PTE_ADDR_MASK } from "../../src/x86/paging.ts";
import type { Source } from "./source.ts";
import { type PagingView, type Walk, walk } from "./paging.ts";

/** A source of only the simplest decision (0), until a step sets its own. */
const ZERO: Source = { int: () => 0 };

/** A memslot as the generator believes it exists. */
export interface WSlot {
  id: number;
  gfn: number;
  pages: number;
  /** Host page number of the slot's first page. */
  hvaPage: number;
  log: boolean;
  ro: boolean;
}

/** A paging-structure entry the generator wrote. */
export interface WEntry {
  gpa: bigint;
  /** Level of the table holding it (4 = PML4). */
  level: number;
  value: bigint;
  /** A linear address whose walk uses this entry. */
  gva: bigint;
}

/** A large (2 MiB or 1 GiB) guest leaf the generator wrote. */
export interface WLarge {
  /** The first linear address it maps. */
  gva: bigint;
  /** Its first frame. */
  gfn: number;
  level: number;
}

/** A linear address the generator mapped to a gpa outside every slot (cached MMIO). */
export interface WMmio {
  gva: bigint;
  gpa: bigint;
}

/**
 * Address spaces (SMM and normal): each memslot swap adds this to the generation
 * (docs/kvm-facts.md B.2: `kvm_swap_active_memslots` adds KVM_ADDRESS_SPACE_NUM).
 */
export const NR_AS = 2;

/** How many recent addresses each pool keeps (small pools make collisions likely). */
const POOL = 16;

/** The generator's world; as a {@linkcode PagingView}, the entries it believes it wrote. */
export class World implements PagingView {
  readonly config: Config;
  readonly slots: WSlot[] = [];
  /** Slot ids used so far (deleted ones included), to re-create over old ones. */
  readonly usedIds: number[] = [];
  /** gfn -> level of the table the generator placed there. */
  readonly tables = new Map<number, number>();
  /** Entries written, by gpa; `entryList` keeps them in an indexable array. */
  readonly entries = new Map<bigint, WEntry>();
  readonly entryList: WEntry[] = [];
  /** Root table gfn loaded in CR3, or -1. */
  root = -1;
  /** Linear addresses with a complete mapping (most recent last). */
  readonly gvas: bigint[] = [];
  /** Leaf frames the generator mapped (gfn -> a gva mapping it): self-maps of tables. */
  readonly leaves = new Map<number, bigint>();
  /** gpas the generator made point at no memslot (cached MMIO candidates). */
  readonly mmioGpas: bigint[] = [];
  /** Linear addresses mapped to those gpas (most recent last). */
  readonly mmioMaps: WMmio[] = [];
  /** Large leaves written (most recent last). */
  readonly large: WLarge[] = [];
  /**
   * The memslot generation of address space 0 as the generator believes it: one
   * swap per create or flags change, two per move or delete (docs/kvm-facts.md B.2).
   */
  gen = 0;
  /** Event (select, umask) pairs programmed into counters. */
  readonly events: { event: number; umask: number }[] = [];
  /**
   * The entries of the PMU event filter the generator believes installed (those KVM
   * keeps, in the op's encoding), or null before any filter was accepted.
   */
  filter: bigint[] | null = null;
  /**
   * The source of the current step's late decisions (`generate.ts` `lateRng`): drawn
   * after all of the step's own, from a stream of their own in a campaign, so that a
   * seed's earlier decisions keep their values.
   */
  late: Source = ZERO;
  /** Current control bits as emitted. */
  wp: boolean;
  pce: boolean;
  /**
   * Fetches for a backend that executes only a ret it read at the target (the kvm
   * backend, src/kvm/README.md "Fetches"): a fetch gets a `write 0xc3` at the gpa it is
   * believed to reach first, and a data load first where that fetch may fault with an A
   * bit still clear (the backend refuses those).
   */
  fetchRet = false;

  constructor(config: Config) {
    this.config = config;
    this.wp = config.cr0.wp;
    this.pce = config.cr4.pce;
  }

  /** The live slot covering `gfn` in address space 0. */
  slotAt(gfn: number): WSlot | undefined {
    for (const s of this.slots) {
      if (s.id >>> 16 === 0 && gfn >= s.gfn && gfn < s.gfn + s.pages) return s;
    }
    return undefined;
  }

  get gbPages(): boolean {
    return this.config.gbPages;
  }

  /** The entry the generator wrote at `gpa` (0 if none), or null outside every slot. */
  entry(gpa: bigint): bigint | null {
    if (this.slotAt(Number(gpa >> 12n)) === undefined) return null;
    return this.entries.get(gpa)?.value ?? 0n;
  }

  /** The believed walk of `gva` from the root table (a walk of nothing before a root). */
  walk(gva: bigint): Walk {
    if (this.root < 0) return { steps: [], end: "absent" };
    return walk(this, BigInt(this.root) << 12n, gva);
  }

  /**
   * Whether a swap that leaves address space 0 at generation `gen` wraps the MMIO
   * generation: `kvm_mmu_invalidate_mmio_sptes` masks the final generation to the bits an
   * MMIO spte holds and drops the address-space bit; 0 runs `kvm_mmu_zap_all_fast`
   * (docs/kvm-facts.md B.2). `mmioGenBits` is the width the config gives that mask.
   */
  wrapsAt(gen: number): boolean {
    const bits = this.config.mmioGenBits;
    const mask = bits >= 31 ? 0x7fff_ffff : 2 ** bits - 1;
    return (gen & mask & ~(NR_AS - 1)) === 0;
  }

  /**
   * The mapped linear addresses (most recent last) whose believed walk reads a table in
   * `slot` or ends at a frame in it: the translations a change of that slot must break.
   */
  gvasThrough(slot: WSlot): bigint[] {
    const inSlot = (gpa: bigint) => {
      const gfn = Number(gpa >> 12n);
      return gfn >= slot.gfn && gfn < slot.gfn + slot.pages;
    };
    return this.gvas.filter((gva) => {
      const w = this.walk(gva);
      if (w.end !== "leaf") return false;
      if (w.steps.some((s) => inSlot(s.table))) return true;
      const leaf = w.steps[w.steps.length - 1]!;
      const span = (1n << BigInt(levelShift(leaf.level))) - 1n;
      return inSlot((leaf.value & PTE_ADDR_MASK & ~span) | (gva & span & ~0xfffn));
    });
  }

  slotById(id: number): WSlot | undefined {
    return this.slots.find((s) => s.id === id);
  }

  remember(pool: bigint[], value: bigint): void {
    if (pool.includes(value)) return;
    pool.push(value);
    if (pool.length > POOL) pool.shift();
  }

  recordEntry(entry: WEntry): void {
    const old = this.entries.get(entry.gpa);
    if (old !== undefined) {
      old.value = entry.value;
      old.gva = entry.gva;
      old.level = entry.level;
      return;
    }
    this.entries.set(entry.gpa, entry);
    this.entryList.push(entry);
  }

  /**
   * Follows an op the generator emitted: slot changes (with KVM's main acceptance
   * rules, enough to keep the belief mostly right) and CR3 loads.
   */
  apply(op: Op): void {
    if (op.op === "cr3") {
      this.root = Number((op.gpa & PTE_ADDR_MASK) >> 12n);
    } else if (op.op === "slot") {
      this.#applySlot(op.id, op.gpa, op.pages, op.hva, op.flags);
    } else if (op.op === "ctl") {
      if (op.wp !== undefined) this.wp = op.wp;
      if (op.pce !== undefined) this.pce = op.pce;
    }
  }

  #applySlot(id: number, gpa: bigint, pages: number, hva: bigint, flags: SlotFlag[]): void {
    if ((gpa & 0xfffn) !== 0n || (hva & 0xfffn) !== 0n || (id & 0xffff) >= 32764) return;
    if (id >>> 16 >= 2) return;
    // Beyond kvm_mmu_max_gfn (2^40 gfns under shadow paging) KVM says EINVAL.
    if (Number(gpa >> 12n) + pages > 2 ** 40) return;
    if (!this.usedIds.includes(id)) this.usedIds.push(id);
    const i = this.slots.findIndex((s) => s.id === id);
    const gfn = Number(gpa >> 12n);
    const bump = (swaps: number) => {
      if (id >>> 16 === 0) this.gen += swaps * NR_AS;
    };
    if (pages === 0) {
      if (i >= 0) {
        this.slots.splice(i, 1);
        bump(2);
      }
      return;
    }
    const next: WSlot = {
      id,
      gfn,
      pages,
      hvaPage: Number(hva >> 12n),
      log: flags.includes("log"),
      ro: flags.includes("ro"),
    };
    const overlaps = this.slots.some((s) =>
      s.id !== id && s.id >>> 16 === id >>> 16 && gfn < s.gfn + s.pages && s.gfn < gfn + pages
    );
    const old = i < 0 ? undefined : this.slots[i]!;
    // Changing hva, size or ro of an existing slot is EINVAL (checked before overlaps).
    if (old !== undefined) {
      if (old.hvaPage !== next.hvaPage || old.pages !== pages || old.ro !== next.ro) return;
      if (old.gfn === gfn) {
        // A flags-only change swaps once; no change at all returns 0 without a swap.
        if (old.log !== next.log) bump(1);
        this.slots[i] = next;
        return;
      }
    }
    if (overlaps) return;
    if (old === undefined) {
      this.slots.push(next);
      bump(1);
      return;
    }
    this.slots[i] = next;
    bump(2);
  }
}
