/**
 * @module
 * Conformance cases for memslots (KVM_SET_USER_MEMORY_REGION), guest-physical
 * accesses, MMIO exits, the dirty log, host discards and aging, and how memslot
 * changes end translations. Every backend must pass them.
 */
import type { ConformanceCase } from "./case.ts";
import { tables } from "./mmu_cases.ts";

const API = "Documentation/virt/kvm/api.rst KVM_SET_USER_MEMORY_REGION; kvm_main.c " +
  "__kvm_set_memory_region (v6.10)";
const DIRTY = "api.rst KVM_GET_DIRTY_LOG; kvm_get_dirty_log_protect; docs/kvm-facts.md B.9";
const CLEAR = "api.rst KVM_CLEAR_DIRTY_LOG and 7.18 KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2; " +
  "kvm_main.c kvm_clear_dirty_log_protect, kvm_get_dirty_log_protect";
const WP_MASKED = "mmu.c kvm_arch_mmu_enable_log_dirty_pt_masked (kvm_mmu_write_protect_pt_masked)";
const INIT_SET = "kvm_main.c kvm_prepare_memory_region (bitmap_set with " +
  "KVM_DIRTY_LOG_INITIALLY_SET); x86.c kvm_mmu_slot_apply_flags";
/** A logged slot 1 at gpa 0x400000 of 100 pages (not a multiple of 64). */
const LOGGED = "slot 1 gpa=0x400000 pages=100 hva=0x300000000 log";

export const memslotCases: ConformanceCase[] = [
  {
    name: "memslot: a created slot is readable and writable at its gpa",
    source: API,
    areas: ["memslot"],
    steps: [
      ["slot 1 gpa=0x100000 pages=16 hva=0x200000000", "errno 0"],
      ["write 0x101008 0xdeadbeef", "ok"],
      ["read 0x101008", "value 0xdeadbeef"],
      ["read 0x10100a size=2", "value 0xdead"],
      ["read 0x102000", "value 0x0"],
    ],
  },
  {
    name: "memslot: an access to a gpa without a slot exits as MMIO",
    source: "api.rst KVM_EXIT_MMIO",
    areas: ["memslot"],
    steps: [
      ["read 0x100000", "mmio 0x100000 r"],
      ["write 0x100008 0x1 size=4", "mmio 0x100008 w"],
    ],
  },
  {
    name: "memslot: a slot overlapping another in the same address space is refused with EEXIST",
    source: API,
    areas: ["memslot"],
    steps: [
      ["slot 1 gpa=0x100000 pages=16 hva=0x200000000", "errno 0"],
      ["slot 2 gpa=0x10f000 pages=1 hva=0x300000000", "errno EEXIST"],
      ["slot 2 gpa=0x110000 pages=1 hva=0x300000000", "errno 0"],
      ["slot 65537 gpa=0x100000 pages=1 hva=0x400000000", "errno 0"],
    ],
  },
  {
    name: "memslot: unaligned gpa or hva, bad ids and oversized slots are refused with EINVAL",
    source: API,
    areas: ["memslot"],
    steps: [
      ["slot 1 gpa=0x100800 pages=1 hva=0x200000000", "errno EINVAL"],
      ["slot 1 gpa=0x100000 pages=1 hva=0x200000800", "errno EINVAL"],
      ["slot 32764 gpa=0x100000 pages=1 hva=0x200000000", "errno EINVAL"],
      ["slot 131072 gpa=0x100000 pages=1 hva=0x200000000", "errno EINVAL"],
      ["slot 1 gpa=0x100000 pages=2147483648 hva=0x200000000", "errno EINVAL"],
      ["slot 1 gpa=0x100000 pages=1 hva=0x7ffffffff000", "errno EINVAL"],
      ["slot 1 gpa=0xfffffffffffff000 pages=1 hva=0x200000000", "errno EINVAL"],
      ["slot 1 gpa=0x10000000000000 pages=1 hva=0x200000000", "errno EINVAL"],
      ["slot 32763 gpa=0x100000 pages=1 hva=0x200000000", "errno 0"],
    ],
  },
  {
    name: "memslot: deleting a slot that does not exist is refused with EINVAL",
    source: API,
    areas: ["memslot"],
    steps: [["slot 3 gpa=0x0 pages=0 hva=0x0", "errno EINVAL"]],
  },
  {
    name: "memslot: an existing slot cannot change its hva, size or readonly flag",
    source: API,
    areas: ["memslot"],
    steps: [
      ["slot 1 gpa=0x100000 pages=16 hva=0x200000000", "errno 0"],
      ["slot 1 gpa=0x100000 pages=16 hva=0x300000000", "errno EINVAL"],
      ["slot 1 gpa=0x100000 pages=8 hva=0x200000000", "errno EINVAL"],
      ["slot 1 gpa=0x100000 pages=16 hva=0x200000000 ro", "errno EINVAL"],
      ["slot 1 gpa=0x100000 pages=16 hva=0x200000000", "errno 0"],
    ],
  },
  {
    name: "memslot: deleting a slot turns its gpas into MMIO exits and keeps the host memory",
    source: API,
    areas: ["memslot"],
    steps: [
      ["slot 1 gpa=0x100000 pages=16 hva=0x200000000", "errno 0"],
      ["write 0x100000 0x1234", "ok"],
      ["slot 1 gpa=0x100000 pages=0 hva=0x200000000", "errno 0"],
      ["read 0x100000", "mmio 0x100000 r"],
      ["slot 1 gpa=0x300000 pages=16 hva=0x200000000", "errno 0"],
      ["read 0x300000", "value 0x1234"],
    ],
  },
  {
    name: "memslot: moving a slot moves its contents to the new gpa",
    source: API,
    areas: ["memslot"],
    steps: [
      ["slot 1 gpa=0x100000 pages=16 hva=0x200000000", "errno 0"],
      ["write 0x102000 0x55", "ok"],
      ["slot 1 gpa=0x500000 pages=16 hva=0x200000000", "errno 0"],
      ["read 0x102000", "mmio 0x102000 r"],
      ["read 0x502000", "value 0x55"],
    ],
  },
  {
    name: "memslot: a move onto another slot is refused with EEXIST",
    source: API,
    areas: ["memslot"],
    steps: [
      ["slot 1 gpa=0x100000 pages=16 hva=0x200000000", "errno 0"],
      ["slot 2 gpa=0x200000 pages=16 hva=0x300000000", "errno 0"],
      ["slot 1 gpa=0x208000 pages=16 hva=0x200000000", "errno EEXIST"],
      ["write 0x100000 0x1", "ok"],
    ],
  },
  {
    name: "memslot: two slots over the same host memory alias each other",
    source: API,
    areas: ["memslot"],
    steps: [
      ["slot 1 gpa=0x100000 pages=4 hva=0x200000000", "errno 0"],
      ["slot 2 gpa=0x800000 pages=4 hva=0x200000000", "errno 0"],
      ["write 0x101000 0x99", "ok"],
      ["read 0x801000", "value 0x99"],
    ],
  },
  {
    name: "memslot: a readonly slot reads its memory and writes exit as MMIO",
    source: "api.rst KVM_MEM_READONLY",
    areas: ["memslot"],
    steps: [
      ["slot 1 gpa=0x100000 pages=4 hva=0x200000000", "errno 0"],
      ["write 0x100000 0x7", "ok"],
      ["slot 1 gpa=0x100000 pages=0 hva=0x200000000", "errno 0"],
      ["slot 2 gpa=0x100000 pages=4 hva=0x200000000 ro", "errno 0"],
      ["read 0x100000", "value 0x7"],
      ["write 0x100000 0x8", "mmio 0x100000 w"],
      ["read 0x100000", "value 0x7"],
    ],
  },
  {
    name: "memslot: a guest write through the page tables to a readonly slot exits as MMIO",
    source: "api.rst KVM_MEM_READONLY",
    areas: ["memslot", "mmu"],
    steps: [
      ...tables({ pte: "0x400007" }),
      ["slot 1 gpa=0x400000 pages=4 hva=0x200000000 ro", "errno 0"],
      ["access w 0x400000 0x1", "mmio 0x400000 w"],
      ["access r 0x400000", "value 0x0"],
    ],
  },
  {
    name: "memslot: KVM_GET_DIRTY_LOG reports written pages once, then clears",
    source: DIRTY,
    areas: ["memslot"],
    steps: [
      ["slot 1 gpa=0x100000 pages=8 hva=0x200000000 log", "errno 0"],
      ["write 0x101000 0x1", "ok"],
      ["write 0x103ff8 0x1", "ok"],
      ["dirtylog 1", "bitmap 0xa"],
      ["dirtylog 1", "bitmap 0x0"],
      ["write 0x107000 0x1 size=1", "ok"],
      ["dirtylog 1", "bitmap 0x80"],
    ],
  },
  {
    name: "memslot: KVM_GET_DIRTY_LOG without logging is ENOENT, with a bad id EINVAL",
    source: DIRTY,
    areas: ["memslot"],
    steps: [
      ["slot 1 gpa=0x100000 pages=8 hva=0x200000000", "errno 0"],
      ["dirtylog 1", "errno ENOENT"],
      ["dirtylog 7", "errno ENOENT"],
      ["dirtylog 131072", "errno EINVAL"],
      ["dirtylog 32764", "errno EINVAL"],
    ],
  },
  {
    name: "memslot: enabling logging on an existing slot starts an empty bitmap",
    source: DIRTY,
    areas: ["memslot"],
    steps: [
      ["slot 1 gpa=0x100000 pages=8 hva=0x200000000", "errno 0"],
      ["write 0x101000 0x1", "ok"],
      ["slot 1 gpa=0x100000 pages=8 hva=0x200000000 log", "errno 0"],
      ["dirtylog 1", "bitmap 0x0"],
      ["write 0x102000 0x1", "ok"],
      ["dirtylog 1", "bitmap 0x4"],
      ["slot 1 gpa=0x100000 pages=8 hva=0x200000000", "errno 0"],
      ["dirtylog 1", "errno ENOENT"],
    ],
  },
  {
    name:
      "memslot: a guest write through the page tables dirties the frame and the A/D-updated tables",
    source: `${DIRTY}; KVM FNAME(update_accessed_dirty_bits) marks the table gfn dirty`,
    areas: ["memslot", "mmu"],
    steps: [
      ["slot 0 gpa=0x0 pages=16 hva=0x100000000 log", "errno 0"],
      ["write 0x1000 0x2027", "ok"],
      ["write 0x2000 0x3027", "ok"],
      ["write 0x3010 0x4027", "ok"],
      ["write 0x4000 0x5067", "ok"],
      ["cr3 0x1000", "ok"],
      ["dirtylog 0", "bitmap 0x1e"],
      ["access w 0x400000 0x1", "ok"],
      ["dirtylog 0", "bitmap 0x20"],
    ],
  },
  {
    name: "memslot: a discarded host page reads back as zero",
    source: "madvise(2) MADV_DONTNEED; KVM mmu notifier invalidate_range (docs/kvm-facts.md B.10)",
    areas: ["memslot"],
    steps: [
      ["slot 1 gpa=0x100000 pages=4 hva=0x200000000", "errno 0"],
      ["write 0x101000 0x5", "ok"],
      ["write 0x102000 0x6", "ok"],
      ["discard 0x200001000 pages=1", "ok"],
      ["read 0x101000", "value 0x0"],
      ["read 0x102000", "value 0x6"],
    ],
  },
  {
    name: "memslot: aging reports only pages accessed since the last age",
    source: "mmu notifier clear_young; KVM kvm_age_gfn (docs/kvm-facts.md B.10)",
    areas: ["memslot"],
    steps: [
      ["slot 1 gpa=0x100000 pages=4 hva=0x200000000", "errno 0"],
      ["write 0x101000 0x5", "ok"],
      ["age 0x100000 pages=4", "young 0x2 | young 0x0"],
      ["age 0x100000 pages=4", "young 0x0"],
    ],
  },
  {
    name: "memslot: deleting the slot that holds the page tables ends their translations",
    source: `${API}; docs/kvm-facts.md B.8 (memslot delete zaps)`,
    areas: ["memslot", "mmu"],
    steps: [
      ["slot 1 gpa=0x400000 pages=4 hva=0x300000000", "errno 0"],
      ...tables({ pte: "0x400007" }),
      ["write 0x400000 0x42", "ok"],
      ["access r 0x400000", "value 0x42"],
      ["slot 0 gpa=0x0 pages=0 hva=0x100000000", "errno 0"],
      ["access r 0x400000", "pf code=0x0 cr2=0x400000"],
    ],
  },
  {
    name: "memslot: deleting the slot of a mapped frame turns accesses into MMIO exits",
    source: `${API}; docs/kvm-facts.md B.8`,
    areas: ["memslot", "mmu"],
    steps: [
      ["slot 1 gpa=0x400000 pages=4 hva=0x300000000", "errno 0"],
      ...tables({ pte: "0x400007" }),
      ["access r 0x400000", "value 0x0"],
      ["slot 1 gpa=0x400000 pages=0 hva=0x300000000", "errno 0"],
      ["access r 0x400008", "mmio 0x400008 r"],
      ["slot 1 gpa=0x400000 pages=4 hva=0x300000000", "errno 0"],
      ["access r 0x400008", "value 0x0"],
    ],
  },
  {
    name: "memslot: moving the slot of a mapped frame makes the old gpa an MMIO exit",
    source: `${API}; docs/kvm-facts.md B.8`,
    areas: ["memslot", "mmu"],
    steps: [
      ["slot 1 gpa=0x400000 pages=4 hva=0x300000000", "errno 0"],
      ...tables({ pte: "0x400007" }),
      ["access w 0x400000 0x9", "ok"],
      ["slot 1 gpa=0x800000 pages=4 hva=0x300000000", "errno 0"],
      ["access r 0x400000", "mmio 0x400000 r"],
      ["read 0x800000", "value 0x9"],
    ],
  },
  {
    name: "memslot: KVM_CLEAR_DIRTY_LOG refuses an unaligned first page, a range past the " +
      "slot and a count short of its end that is not a multiple of 64 with EINVAL, a slot " +
      "without logging with ENOENT",
    source: CLEAR,
    areas: ["memslot"],
    steps: [
      [LOGGED, "errno 0"],
      ["slot 2 gpa=0x800000 pages=64 hva=0x200000000", "errno 0"],
      ["dirtyclear 1 first=1 pages=64", "errno EINVAL"],
      ["dirtyclear 1 first=0 pages=63", "errno EINVAL"],
      ["dirtyclear 1 first=64 pages=35", "errno EINVAL"],
      ["dirtyclear 1 first=0 pages=101", "errno EINVAL"],
      ["dirtyclear 1 first=128 pages=0", "errno EINVAL"],
      ["dirtyclear 1 first=64 pages=36", "errno 0"],
      ["dirtyclear 1 first=0 pages=100", "errno 0"],
      ["dirtyclear 1 first=64 pages=0", "errno 0"],
      ["dirtyclear 2 first=0 pages=64", "errno ENOENT"],
      ["dirtyclear 3 first=0 pages=64", "errno ENOENT"],
      // The first page is checked before the slot is looked up, the id before both.
      ["dirtyclear 3 first=1 pages=64", "errno EINVAL"],
      ["dirtyclear 32764 first=0 pages=64", "errno EINVAL"],
    ],
  },
  {
    name: "memslot: KVM_CLEAR_DIRTY_LOG without manual protect clears the bits set since " +
      "the last GET and re-protects their pages",
    source: `${CLEAR}; ${WP_MASKED}`,
    areas: ["memslot", "mmu"],
    steps: [
      [LOGGED, "errno 0"],
      ...tables({ pte: "0x400067" }),
      ["access w 0x400000 0x1", "ok"],
      ["dirtylog 1", "bitmap 0x1"],
      ["access w 0x400000 0x2", "ok"],
      ["dirtyclear 1 first=0 pages=64", "errno 0"],
      ["dirtylog 1", "bitmap 0x0"],
      ["access w 0x400000 0x3", "ok"],
      ["dirtylog 1", "bitmap 0x1"],
    ],
  },
  {
    name: "memslot: with manual protect KVM_GET_DIRTY_LOG reports without clearing, and " +
      "KVM_CLEAR_DIRTY_LOG clears its range only and re-protects it",
    source: `${CLEAR}; ${WP_MASKED}`,
    config: { dirtyLog: { manualProtect: true } },
    areas: ["memslot", "mmu"],
    steps: [
      [LOGGED, "errno 0"],
      ...tables({ pte: "0x400067" }),
      ["access w 0x400000 0x1", "ok"],
      ["write 0x446000 0x1", "ok"],
      ["dirtylog 1", "bitmap pages 0,70"],
      ["dirtylog 1", "bitmap pages 0,70"],
      ["access w 0x400000 0x2", "ok"],
      ["dirtyclear 1 first=0 pages=64", "errno 0"],
      ["dirtylog 1", "bitmap pages 70"],
      ["access w 0x400000 0x3", "ok"],
      ["dirtylog 1", "bitmap pages 0,70"],
      ["dirtyclear 1 first=64 pages=36", "errno 0"],
      ["dirtylog 1", "bitmap pages 0"],
    ],
  },
  {
    name: "memslot: with initially-all-set a newly logged slot reports every page until " +
      "KVM_CLEAR_DIRTY_LOG clears it",
    source: `${CLEAR}; ${INIT_SET}`,
    config: { dirtyLog: { manualProtect: true, initiallySet: true } },
    areas: ["memslot"],
    steps: [
      [LOGGED, "errno 0"],
      ["dirtylog 1", "bitmap pages 0-99"],
      ["dirtyclear 1 first=0 pages=64", "errno 0"],
      ["dirtylog 1", "bitmap pages 64-99"],
      ["write 0x401000 0x1", "ok"],
      ["dirtylog 1", "bitmap pages 1,64-99"],
      ["slot 1 gpa=0x400000 pages=100 hva=0x300000000", "errno 0"],
      ["slot 1 gpa=0x400000 pages=100 hva=0x300000000 log", "errno 0"],
      ["dirtylog 1", "bitmap pages 0-99"],
    ],
  },
  {
    name: "memslot: with initially-all-set, a page mapped writable before logging was " +
      "turned on is logged again once its bit is cleared",
    source: `${CLEAR}; ${INIT_SET}; ${WP_MASKED}`,
    config: { dirtyLog: { manualProtect: true, initiallySet: true } },
    areas: ["memslot", "mmu"],
    steps: [
      ["slot 1 gpa=0x400000 pages=100 hva=0x300000000", "errno 0"],
      ...tables({ pte: "0x400067" }),
      ["access w 0x400000 0x1", "ok"],
      [LOGGED, "errno 0"],
      ["access w 0x400000 0x2", "ok"],
      ["dirtylog 1", "bitmap pages 0-99"],
      ["dirtyclear 1 first=0 pages=100", "errno 0"],
      ["dirtylog 1", "bitmap none"],
      ["access w 0x400000 0x3", "ok"],
      ["dirtylog 1", "bitmap pages 0"],
    ],
  },
];
