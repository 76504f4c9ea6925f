/**
 * @module
 * Memslots as the KVM uAPI defines them (KVM_SET_USER_MEMORY_REGION, KVM_GET_DIRTY_LOG;
 * `Documentation/virt/kvm/api.rst`, v6.10 `virt/kvm/kvm_main.c`
 * `__kvm_set_memory_region` and `kvm_get_dirty_log_protect`). No caching: a gpa is
 * looked up in the slot list on every access.
 */
import type { Errno, PageRuns, SlotFlag, SlotOp } from "../trace/types.ts";
import { KVM_MAX_GPA_BITS_SHADOW, PAGE_SHIFT } from "../x86/paging.ts";

/** KVM_USER_MEM_SLOTS = KVM_MEM_SLOTS_NUM (SHRT_MAX) - KVM_INTERNAL_MEM_SLOTS (3), x86. */
export const KVM_USER_MEM_SLOTS = 32764;
/** Address spaces on x86 with SMM: 0 (normal) and 1 (SMM); `kvm_arch_nr_memslot_as_ids`. */
export const KVM_ADDRESS_SPACE_NUM = 2;
/** KVM_MEM_MAX_NR_PAGES = (1 << 31) - 1 (`include/linux/kvm_host.h`). */
export const KVM_MEM_MAX_NR_PAGES = 2 ** 31 - 1;
/** USER_PTR_MAX = TASK_SIZE_MAX with 4-level host paging: (1 << 47) - 4096 (`access_ok`). */
export const USER_PTR_MAX = 2n ** 47n - 4096n;

/** One memslot. Addresses as numbers: gpa < 2^52 and hva < 2^47 fit in a double. */
export interface Slot {
  /** The uAPI slot field (address space << 16 | id). */
  readonly id: number;
  readonly gfn: number;
  readonly pages: number;
  readonly hva: number;
  readonly log: boolean;
  readonly ro: boolean;
}

/** What a successful KVM_SET_USER_MEMORY_REGION changed (`enum kvm_mr_change`). */
export type SlotChange =
  | { kind: "none" }
  | { kind: "create"; slot: Slot }
  | { kind: "delete"; old: Slot }
  | { kind: "move"; old: Slot; slot: Slot }
  | { kind: "flags"; old: Slot; slot: Slot };

/**
 * The outcome form of a set of page indices (any order, no repeats): runs of
 * consecutive pages, ascending.
 */
export function pageRuns(pages: Iterable<number>): PageRuns {
  const sorted = Array.from(pages).sort((a, b) => a - b);
  const runs: [number, number][] = [];
  for (const page of sorted) {
    const last = runs[runs.length - 1];
    if (last !== undefined && last[1] + 1 === page) last[1] = page;
    else runs.push([page, page]);
  }
  return runs;
}

function hasFlag(flags: readonly SlotFlag[], flag: SlotFlag): boolean {
  return flags.includes(flag);
}

/** The memslot table of a VM, with a dirty bitmap per logged slot. */
export class Memslots {
  /** Memslot address spaces of this VM: 2 with SMM, else 1. */
  readonly #addressSpaces: number;

  constructor(smm = true) {
    this.#addressSpaces = smm ? KVM_ADDRESS_SPACE_NUM : 1;
  }

  /** Immutable slot list: replaced, never mutated, so old states stay readable. */
  slots: readonly Slot[] = [];
  /** Per logged slot id: pages (index in slot) written since the last GET. */
  readonly dirty = new Map<number, Set<number>>();
  /** Per logged slot id: pages KVM may also report (mapped writable without a write). */
  readonly mayDirty = new Map<number, Set<number>>();

  /** Validates and applies a KVM_SET_USER_MEMORY_REGION, in the order v6.10 checks. */
  set(op: SlotOp): { errno: Errno; change: SlotChange } {
    const fail = (errno: Errno) => ({ errno, change: { kind: "none" } as SlotChange });
    const size = BigInt(op.pages) << BigInt(PAGE_SHIFT);
    const asId = op.id >>> 16;
    const id = op.id & 0xffff;
    // General sanity checks: gpa and hva page aligned, hva range within access_ok().
    if ((op.gpa & 0xfffn) !== 0n) return fail("EINVAL");
    if ((op.hva & 0xfffn) !== 0n || op.hva + size > USER_PTR_MAX) return fail("EINVAL");
    // kvm_vm_ioctl_set_memory_region: (u16)slot >= KVM_USER_MEM_SLOTS; as_id check.
    if (asId >= this.#addressSpaces || id >= KVM_USER_MEM_SLOTS) return fail("EINVAL");
    if (op.gpa + size >= 1n << 64n) return fail("EINVAL");
    if (op.pages > KVM_MEM_MAX_NR_PAGES) return fail("EINVAL");
    const old = this.slots.find((s) => s.id === op.id);
    if (op.pages === 0) {
      if (old === undefined) return fail("EINVAL");
      this.slots = this.slots.filter((s) => s !== old);
      this.dirty.delete(old.id);
      this.mayDirty.delete(old.id);
      return { errno: 0, change: { kind: "delete", old } };
    }
    const slot: Slot = {
      id: op.id,
      gfn: Number(op.gpa >> BigInt(PAGE_SHIFT)),
      pages: op.pages,
      hva: Number(op.hva),
      log: hasFlag(op.flags, "log"),
      ro: hasFlag(op.flags, "ro"),
    };
    let change: SlotChange;
    if (old === undefined) {
      change = { kind: "create", slot };
    } else {
      // An existing slot may only move or change its non-readonly flags.
      if (slot.hva !== old.hva || slot.pages !== old.pages || slot.ro !== old.ro) {
        return fail("EINVAL");
      }
      if (slot.gfn !== old.gfn) change = { kind: "move", old, slot };
      else if (slot.log !== old.log) change = { kind: "flags", old, slot };
      else return { errno: 0, change: { kind: "none" } };
    }
    if (change.kind === "create" || change.kind === "move") {
      const overlaps = this.slots.some((s) =>
        s.id !== slot.id && s.id >>> 16 === asId && s.gfn < slot.gfn + slot.pages &&
        slot.gfn < s.gfn + s.pages
      );
      if (overlaps) return fail("EEXIST");
      // kvm_arch_prepare_memory_region: base_gfn + npages - 1 > kvm_mmu_max_gfn().
      if (slot.gfn + slot.pages - 1 > 2 ** (KVM_MAX_GPA_BITS_SHADOW - PAGE_SHIFT) - 1) {
        return fail("EINVAL");
      }
    }
    this.slots = [...this.slots.filter((s) => s !== old), slot];
    // kvm_prepare_memory_region: a logged slot keeps its bitmap across a move; enabling
    // logging starts an empty bitmap; disabling frees it.
    if (!slot.log) {
      this.dirty.delete(slot.id);
      this.mayDirty.delete(slot.id);
    } else if (!this.dirty.has(slot.id)) {
      this.dirty.set(slot.id, new Set());
      this.mayDirty.set(slot.id, new Set());
    }
    return { errno: 0, change };
  }

  /** The slot of address space 0 that holds `gfn`, in a given slot list. */
  static find(slots: readonly Slot[], gfn: number): Slot | undefined {
    for (const s of slots) {
      if (s.id >>> 16 === 0 && gfn >= s.gfn && gfn < s.gfn + s.pages) return s;
    }
    return undefined;
  }

  /** Records a guest write to `gfn` (definitely dirty) when its slot is logged. */
  markDirty(gfn: number, definite: boolean): void {
    const slot = Memslots.find(this.slots, gfn);
    if (slot === undefined || !slot.log) return;
    (definite ? this.dirty : this.mayDirty).get(slot.id)?.add(gfn - slot.gfn);
  }

  /** Entries of the dirty sets that `getDirtyLog` visited, in all (for tests). */
  scanned = 0;

  /**
   * KVM_GET_DIRTY_LOG: the pages reported dirty and the pages that may also be; costs
   * the pages in the two sets, whatever the slot's size.
   */
  getDirtyLog(id: number): { errno: Errno } | { bitmap: PageRuns; dontCare: PageRuns } {
    if (id >>> 16 >= this.#addressSpaces || (id & 0xffff) >= KVM_USER_MEM_SLOTS) {
      return { errno: "EINVAL" };
    }
    const dirty = this.dirty.get(id);
    const may = this.mayDirty.get(id);
    if (dirty === undefined || may === undefined) return { errno: "ENOENT" };
    this.scanned += dirty.size + may.size;
    const also = [...may].filter((page) => !dirty.has(page));
    return { bitmap: pageRuns(dirty), dontCare: pageRuns(also) };
  }

  /**
   * Clears a slot's bitmap after a GET (without manual protect). Pages KVM mapped
   * writable stay "may be dirty": a later sync of an unsync shadow page re-creates
   * their writable spte and marks them dirty again without a guest write
   * (`FNAME(sync_spte)` -> `make_spte` -> `mark_page_dirty_in_slot`).
   */
  clearDirtyLog(id: number): void {
    this.dirty.get(id)?.clear();
  }
}
