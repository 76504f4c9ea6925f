/**
 * @module
 * Memslots as the KVM uAPI defines them (KVM_SET_USER_MEMORY_REGION, KVM_GET_DIRTY_LOG,
 * KVM_CLEAR_DIRTY_LOG and KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2; `Documentation/virt/kvm/
 * api.rst`, v6.10 `virt/kvm/kvm_main.c` `__kvm_set_memory_region`,
 * `kvm_prepare_memory_region`, `kvm_get_dirty_log_protect` and
 * `kvm_clear_dirty_log_protect`). No caching: a gpa is looked up in the slot list on
 * every access.
 */
import { hasPage, minusPages, pageRunsOf, unionPages } from "../trace/pages.ts";
import type { Config, DirtyClearOp, Errno, PageRuns, SlotFlag, SlotOp } from "../trace/types.ts";
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

function hasFlag(flags: readonly SlotFlag[], flag: SlotFlag): boolean {
  return flags.includes(flag);
}

/**
 * A dirty bitmap's pages are cleared by KVM_CLEAR_DIRTY_LOG one 64-page word at a time:
 * `first_page` must be a multiple of 64, and `num_pages` too unless the range ends at
 * the slot's last page (api.rst KVM_CLEAR_DIRTY_LOG; kvm_main.c
 * `kvm_clear_dirty_log_protect`, BITS_PER_LONG = 64 on x86-64).
 */
export const DIRTY_WORD_PAGES = 64;

/** The memslot table of a VM, with a dirty bitmap per logged slot. */
export class Memslots {
  /** Memslot address spaces of this VM: 2 with SMM, else 1. */
  readonly #addressSpaces: number;
  /** KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 as the config enables it. */
  readonly #dirtyLog: Config["dirtyLog"];

  constructor(
    smm = true,
    dirtyLog: Config["dirtyLog"] = { manualProtect: false, initiallySet: false },
  ) {
    this.#addressSpaces = smm ? KVM_ADDRESS_SPACE_NUM : 1;
    this.#dirtyLog = dirtyLog;
  }

  /** Immutable slot list: replaced, never mutated, so old states stay readable. */
  slots: readonly Slot[] = [];
  /** Per logged slot id: pages (index in slot) written since the last GET. */
  readonly dirty = new Map<number, Set<number>>();
  /** Per logged slot id: pages KVM may also report (mapped writable without a write). */
  readonly mayDirty = new Map<number, Set<number>>();
  /**
   * Per logged slot id: the pages KVM_DIRTY_LOG_INITIALLY_SET put in the bitmap and no
   * KVM_CLEAR_DIRTY_LOG took out since, as runs (a whole slot is one run, whatever its
   * size).
   */
  readonly initial = new Map<number, PageRuns>();

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
      this.initial.delete(old.id);
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
    // logging starts a new bitmap, empty or, with KVM_DIRTY_LOG_INITIALLY_SET, with every
    // page set (`bitmap_set(new->dirty_bitmap, 0, new->npages)`); disabling frees it.
    if (!slot.log) {
      this.dirty.delete(slot.id);
      this.mayDirty.delete(slot.id);
      this.initial.delete(slot.id);
    } else if (!this.dirty.has(slot.id)) {
      this.dirty.set(slot.id, new Set());
      this.mayDirty.set(slot.id, new Set());
      const all = this.#dirtyLog.manualProtect && this.#dirtyLog.initiallySet;
      this.initial.set(slot.id, all ? [[0, slot.pages - 1]] : []);
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
    const initial = this.initial.get(id) ?? [];
    if (dirty === undefined || may === undefined) return { errno: "ENOENT" };
    this.scanned += dirty.size + may.size + initial.length;
    const also = [...may].filter((page) => !dirty.has(page) && !hasPage(initial, page));
    return { bitmap: unionPages(pageRunsOf(dirty), initial), dontCare: pageRunsOf(also) };
  }

  /**
   * After a successful GET that reported `reported`. Without manual protect KVM clears
   * the bitmap (`kvm_get_dirty_log_protect`: `xchg(&dirty_bitmap[i], 0)`). Pages KVM
   * mapped writable stay "may be dirty": a later sync of an unsync shadow page re-creates
   * their writable spte and marks them dirty again without a guest write
   * (`FNAME(sync_spte)` -> `make_spte` -> `mark_page_dirty_in_slot`). With manual protect
   * the GET copies the bitmap and leaves it as it was, so a may-dirty page the GET
   * reported is now known to be set, until KVM_CLEAR_DIRTY_LOG clears it.
   */
  afterGet(id: number, reported: PageRuns): void {
    const dirty = this.dirty.get(id);
    if (dirty === undefined) return;
    if (!this.#dirtyLog.manualProtect) {
      dirty.clear();
      this.initial.set(id, []);
      return;
    }
    for (const page of this.mayDirty.get(id) ?? []) if (hasPage(reported, page)) dirty.add(page);
  }

  /**
   * KVM_CLEAR_DIRTY_LOG with a bitmap of all ones over `op.pages` pages from `op.first`:
   * validates as v6.10 `kvm_clear_dirty_log_protect` does, in its order, and clears the
   * range's pages from the bitmap (the pages whose bit was set are write-protected
   * again, so a later write is logged: that is the MMU's business, not the uAPI's). The
   * call is the same with and without manual protect (KVM does not check the cap).
   * Costs the pages in the dirty set and the runs of the initial set.
   */
  clearDirtyLog(op: DirtyClearOp): Errno {
    // as_id >= kvm_arch_nr_memslot_as_ids(kvm) || id >= KVM_USER_MEM_SLOTS: -EINVAL.
    if (op.id >>> 16 >= this.#addressSpaces || (op.id & 0xffff) >= KVM_USER_MEM_SLOTS) {
      return "EINVAL";
    }
    // log->first_page & 63: -EINVAL (before the slot lookup).
    if (op.first % DIRTY_WORD_PAGES !== 0) return "EINVAL";
    // !memslot || !memslot->dirty_bitmap: -ENOENT.
    const slot = this.slots.find((s) => s.id === op.id);
    const dirty = this.dirty.get(op.id);
    if (slot === undefined || dirty === undefined) return "ENOENT";
    // The range inside the slot; num_pages a multiple of 64 unless it reaches the end.
    const left = slot.pages - op.first;
    if (op.first > slot.pages || op.pages > left) return "EINVAL";
    if (op.pages < left && op.pages % DIRTY_WORD_PAGES !== 0) return "EINVAL";
    if (op.pages === 0) return 0;
    const last = op.first + op.pages - 1;
    this.scanned += dirty.size + (this.initial.get(op.id)?.length ?? 0);
    for (const page of dirty) if (page >= op.first && page <= last) dirty.delete(page);
    this.initial.set(op.id, minusPages(this.initial.get(op.id) ?? [], [[op.first, last]]));
    return 0;
  }
}
