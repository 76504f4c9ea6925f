/**
 * @module
 * Memslots of the core: KVM_SET_USER_MEMORY_REGION validation (SEMANTICS.md item 9,
 * `__kvm_set_memory_region` of v6.10), the per-address-space memslot generation with
 * its update-in-progress flag (docs/kvm-facts.md B.2), the swap sequence (one swap for create
 * and flags, two for delete and move with the slot first marked INVALID), and gfn
 * lookup. The MMU reacts through {@linkcode MemslotHooks}.
 *
 * Generations are numbers (they never reach 2^53 in a trace); the in-progress flag,
 * bit 63 in KVM (`KVM_MEMSLOT_GEN_UPDATE_IN_PROGRESS`), is a separate boolean.
 */
import type { DirtyClearOp, Errno, PageRuns, SlotOp } from "../trace/types.ts";
import { type BugFlags, bugFlags } from "./bugs.ts";

export const SLOT_LOG = 1;
export const SLOT_RO = 2;

/** `KVM_USER_MEM_SLOTS` = SHRT_MAX - KVM_INTERNAL_MEM_SLOTS (3). */
export const KVM_USER_MEM_SLOTS = 32764;
/** `KVM_MEM_MAX_NR_PAGES` = 2^31 - 1. */
export const KVM_MEM_MAX_NR_PAGES = 2 ** 31 - 1;
/** x86-64 `TASK_SIZE_MAX` (access_ok bound): 2^47 - 4096. */
export const TASK_SIZE_MAX = 0x7ffffffff000;
/** Address spaces on x86 with SMM (`kvm_arch_nr_memslot_as_ids`). */
export const NR_AS = 2;
/** `kvm_mmu_max_gfn()` under shadow paging: 52-bit gpas. */
export const MAX_GFN = 2 ** 40 - 1;

export interface Slot {
  /** The uAPI id (address space in bits 31:16). */
  id: number;
  as: number;
  /** Unique per slot object: rmaps and leaf sptes name their slot by it. */
  serial: number;
  baseGfn: number;
  npages: number;
  /** Host address of page 0 (page aligned). */
  hva: number;
  flags: number;
  /** KVM_MEMSLOT_INVALID: installed by the first swap of a delete or move. */
  invalid: boolean;
  /** Dirty page indices (sparse: a slot may span 1 TiB). */
  dirty: Set<number>;
  /**
   * Pages KVM_DIRTY_LOG_INITIALLY_SET set in the bitmap when logging was enabled and no
   * KVM_CLEAR_DIRTY_LOG has cleared since, as runs: also dirty (a whole slot is one run).
   */
  initial: PageRuns;
  /** rmap heads of 4 KiB sptes, keyed by gfn (`PteListPool` heads). */
  rmap: Map<number, number>;
}

/** What the MMU does at each step of an update. */
export interface MemslotHooks {
  /** `kvm_arch_flush_shadow_memslot`: between the two swaps of a delete or move. */
  flushShadowMemslot(old: Slot): void;
  /** `kvm_arch_memslots_updated` with the final generation, before it is stored. */
  memslotsUpdated(as: number, gen: number): void;
  /** Runs inside a swap window (after the pointer swap, before the final generation). */
  inWindow(as: number, oldView: readonly Slot[]): void;
  /** `kvm_mmu_slot_apply_flags` after a flags change (write-protect on log enable). */
  applyFlags(slot: Slot, oldFlags: number): void;
  /** A slot object is gone for good (its rmap must be empty). */
  retired(slot: Slot): void;
}

export class Memslots {
  /** Sorted by baseGfn, per address space. */
  readonly lists: [Slot[], Slot[]] = [[], []];
  readonly gen: [number, number] = [0, 1];
  readonly inProgress: [boolean, boolean] = [false, false];
  readonly bySerial = new Map<number, Slot>();
  #serial = 1;
  #last: Slot | null = null;
  /** Total pages of AS0 and AS1 slots (the MMU page limit derives from it). */
  totalPages = 0;
  /** `kvm_arch_nr_memslot_as_ids`: 2 with SMM (config.smm), else 1. */
  readonly nrAs: number;

  /** The injected bugs (`mmio-gen-once` is read here). */
  readonly bug: BugFlags;
  /**
   * KVM_DIRTY_LOG_INITIALLY_SET is on (with manual protect): a new dirty bitmap starts
   * with every page set (`kvm_prepare_memory_region`: `bitmap_set(new->dirty_bitmap, 0,
   * new->npages)`).
   */
  readonly initiallySet: boolean;

  constructor(nrAs: number = NR_AS, bug: BugFlags = bugFlags(), initiallySet = false) {
    this.nrAs = nrAs;
    this.bug = bug;
    this.initiallySet = initiallySet;
  }

  /** A new dirty bitmap's initial pages (see {@linkcode Memslots.initiallySet}). */
  #newBitmap(npages: number): PageRuns {
    return this.initiallySet ? [[0, npages - 1]] : [];
  }

  /** The valid AS0 slot holding `gfn`, or null (INVALID slots count as absent). */
  find(gfn: number): Slot | null {
    const last = this.#last;
    if (last !== null && gfn >= last.baseGfn && gfn < last.baseGfn + last.npages && !last.invalid) {
      return last;
    }
    const list = this.lists[0];
    let lo = 0, hi = list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = list[mid]!;
      if (gfn < s.baseGfn) hi = mid - 1;
      else if (gfn >= s.baseGfn + s.npages) lo = mid + 1;
      else {
        if (s.invalid) return null;
        this.#last = s;
        return s;
      }
    }
    return null;
  }

  /** The slot with uAPI `id`, or undefined. */
  byId(id: number): Slot | undefined {
    const as = id >>> 16;
    return this.lists[as === 1 ? 1 : 0].find((s) => s.id === id);
  }

  /**
   * The checks of `kvm_clear_dirty_log_protect` (kvm_main.c) in KVM's order: the slot to
   * clear, or the errno. KVM_CLEAR_DIRTY_LOG works on 64-page words of the bitmap.
   */
  clearDirtyLogSlot(op: DirtyClearOp): Slot | Errno {
    const id = op.id >>> 0;
    if (id >>> 16 >= this.nrAs || (id & 0xffff) >= KVM_USER_MEM_SLOTS) return "EINVAL";
    if (op.first % 64 !== 0) return "EINVAL";
    const slot = this.byId(id);
    if (slot === undefined || (slot.flags & SLOT_LOG) === 0) return "ENOENT";
    const n = slot.npages;
    if (op.first > n || op.pages > n - op.first) return "EINVAL";
    if (op.pages < n - op.first && op.pages % 64 !== 0) return "EINVAL";
    return slot;
  }

  /** KVM_SET_USER_MEMORY_REGION. */
  set(op: SlotOp, hooks: MemslotHooks): Errno {
    const id = op.id >>> 0;
    const as = id >>> 16;
    const size = op.pages * 4096;
    if ((op.gpa & 0xfffn) !== 0n || (op.hva & 0xfffn) !== 0n) return "EINVAL";
    if (op.hva >= 1n << 47n || op.hva + BigInt(size) > BigInt(TASK_SIZE_MAX)) return "EINVAL";
    if (as >= this.nrAs || (id & 0xffff) >= KVM_USER_MEM_SLOTS) return "EINVAL";
    if (op.gpa + BigInt(size) >= 1n << 64n) return "EINVAL";
    if (op.pages > KVM_MEM_MAX_NR_PAGES) return "EINVAL";
    const old = this.byId(id);
    const hva = Number(op.hva);
    const flags = (op.flags.includes("log") ? SLOT_LOG : 0) |
      (op.flags.includes("ro") ? SLOT_RO : 0);
    if (op.pages === 0) {
      if (old === undefined) return "EINVAL";
      this.#deleteOrMove(old, null, hooks);
      return 0;
    }
    // A gpa past 2^53 can only be a create or move, which the max-gfn check rejects.
    const baseGfnBig = op.gpa >> 12n;
    let kind: "create" | "move" | "flags";
    if (old === undefined) kind = "create";
    else {
      if (hva !== old.hva || op.pages !== old.npages || ((flags ^ old.flags) & SLOT_RO) !== 0) {
        return "EINVAL";
      }
      if (baseGfnBig !== BigInt(old.baseGfn)) kind = "move";
      else if (flags !== old.flags) kind = "flags";
      else return 0;
    }
    if (kind !== "flags") {
      const end = baseGfnBig + BigInt(op.pages);
      for (const s of this.lists[as]!) {
        if (s === old) continue;
        if (baseGfnBig < BigInt(s.baseGfn + s.npages) && end > BigInt(s.baseGfn)) return "EEXIST";
      }
      if (end - 1n > BigInt(MAX_GFN)) return "EINVAL";
    }
    const baseGfn = Number(baseGfnBig);
    if (kind === "create") {
      const slot = this.#newSlot(id, baseGfn, op.pages, hva, flags);
      if ((flags & SLOT_LOG) !== 0) slot.initial = this.#newBitmap(slot.npages);
      this.#swap(as, hooks, () => this.#insert(slot));
      if (flags & SLOT_LOG) hooks.applyFlags(slot, 0);
    } else if (kind === "move") {
      const moved = this.#newSlot(id, baseGfn, op.pages, hva, flags);
      // kvm_prepare_memory_region: logging in old and new reuses the old bitmap.
      if ((flags & SLOT_LOG) !== 0 && (old!.flags & SLOT_LOG) !== 0) {
        moved.dirty = old!.dirty;
        moved.initial = old!.initial;
      } else if ((flags & SLOT_LOG) !== 0) moved.initial = this.#newBitmap(moved.npages);
      this.#deleteOrMove(old!, moved, hooks);
    } else {
      const slot = old!;
      const oldFlags = slot.flags;
      this.#swap(as, hooks, () => {
        slot.flags = flags;
        if ((flags & SLOT_LOG) !== 0 && (oldFlags & SLOT_LOG) === 0) {
          slot.dirty.clear();
          slot.initial = this.#newBitmap(slot.npages);
        }
      });
      hooks.applyFlags(slot, oldFlags);
    }
    return 0;
  }

  #newSlot(id: number, baseGfn: number, npages: number, hva: number, flags: number): Slot {
    const slot: Slot = {
      id,
      as: id >>> 16,
      serial: this.#serial++,
      baseGfn,
      npages,
      hva,
      flags,
      invalid: false,
      dirty: new Set(),
      initial: [],
      rmap: new Map(),
    };
    this.bySerial.set(slot.serial, slot);
    return slot;
  }

  #insert(slot: Slot): void {
    const list = this.lists[slot.as]!;
    let i = 0;
    while (i < list.length && list[i]!.baseGfn < slot.baseGfn) i++;
    list.splice(i, 0, slot);
    this.totalPages += slot.npages;
    this.#last = null;
  }

  #remove(slot: Slot): void {
    const list = this.lists[slot.as]!;
    list.splice(list.indexOf(slot), 1);
    this.totalPages -= slot.npages;
    this.#last = null;
  }

  /** DELETE and MOVE: swap in the INVALID copy, flush, swap in the final set. */
  #deleteOrMove(old: Slot, moved: Slot | null, hooks: MemslotHooks): void {
    const as = old.as;
    this.#swap(as, hooks, () => (old.invalid = true));
    hooks.flushShadowMemslot(old);
    this.#swap(as, hooks, () => {
      this.#remove(old);
      if (moved !== null) this.#insert(moved);
    });
    hooks.retired(old);
  }

  /**
   * `kvm_swap_active_memslots`: the new set carries gen | IN_PROGRESS while vCPUs may
   * still use either set; then the arch hook sees the final generation (old + NR_AS)
   * before it is stored. With `mmio-gen-once` (ee3d1570b586's bug) there is no in-progress
   * phase: the final generation is visible as soon as the new set is.
   */
  #swap(as: number, hooks: MemslotHooks, change: () => void): void {
    const oldView = this.lists[as]!.slice();
    const gen = this.gen[as]!;
    const final = gen + this.nrAs;
    change();
    if (this.bug["mmio-gen-once"]) {
      hooks.memslotsUpdated(as, final);
      this.gen[as] = final;
      hooks.inWindow(as, oldView);
      return;
    }
    this.inProgress[as] = true;
    hooks.inWindow(as, oldView);
    hooks.memslotsUpdated(as, final);
    this.gen[as] = final;
    this.inProgress[as] = false;
  }
}
