/**
 * @module
 * The MMU part of the injected-bug catalogue (`--inject NAME`): real historical KVM
 * shadow-MMU and memslot bugs (docs/kvm-facts.md section D, items 1-9) that the core re-plants
 * by name, each at the place KVM had it (grep the name's switch in `mmu.ts` and
 * `memslots.ts`). `commit` is the upstream fix (or, for item 5, the reverted change).
 *
 * Items 1 and 2 are races between a vCPU fault and a memslot update. The core has one
 * vCPU and atomic ops, so it models the race explicitly: during every swap of address
 * space 0, the vCPU's in-flight access that last exited to MMIO re-faults with its
 * gfn looked up in the old memslots (`ShadowMmu.inWindow`). Correct KVM refuses to
 * cache MMIO while the update is in progress; the mutants let the stale MMIO spte
 * carry the generation the update publishes.
 */

/** One injectable MMU bug. */
export interface MmuBug {
  readonly name: string;
  readonly commit: string;
  readonly title: string;
  /** What a differential fuzzer sees. */
  readonly symptom: string;
  readonly area: "mmu" | "memslot";
}

/** The MMU and memslot bugs, in docs/kvm-facts.md order (`as const`: the names are literal types). */
export const MMU_BUGS = [
  {
    name: "mmio-gen-once",
    commit: "ee3d1570b586",
    title: "kvm: fix potentially corrupt mmio cache",
    symptom:
      "the memslot generation is bumped once per swap, so an MMIO spte created from the old memslots during the update carries the new generation: after a slot is created over a gpa that exited to MMIO, accesses keep exiting as MMIO",
    area: "memslot",
  },
  {
    name: "mmio-in-progress",
    commit: "ddfd1730fd82",
    title: "KVM: x86/mmu: Do not cache MMIO accesses while memslots are in flux",
    symptom:
      "MMIO sptes are cached (and trusted) while a memslot update is in progress; in the core's race model the spte cached from the old memslots validates against the published generation, so a gpa that became RAM keeps exiting as MMIO",
    area: "memslot",
  },
  {
    name: "mmio-gen-shift",
    commit: "34c0f6f2695a",
    title: "KVM: x86/mmu: Fix SPTE encoding of MMIO generation upper half",
    symptom:
      "the upper MMIO-generation field stores gen >> 1 instead of gen >> 8: distinct generations alias, so a stale MMIO spte is accepted generations later (an MMIO exit for a gpa that is RAM), and other sptes spuriously miss",
    area: "mmu",
  },
  {
    name: "fast-zap-double-toggle",
    commit: "ed69a6cb7008",
    title: "KVM: x86/mmu: Take slots_lock when using kvm_mmu_zap_all_fast()",
    symptom:
      "two fast zaps in one memslot update (MMIO generation wrap and memslot flush) toggle the 1-bit mmu_valid_gen twice before zapping: obsolete pages become valid again and translations into a deleted slot survive",
    area: "memslot",
  },
  {
    name: "slot-zap-leaf-only",
    commit: "4e103134b862",
    title: "KVM: x86/mmu: Zap only the relevant pages when removing a memslot",
    symptom:
      "with KVM_X86_QUIRK_SLOT_ZAP_ALL off, deleting a slot zaps only its leaf sptes, not the shadow pages of guest page tables that lived in it: the deleted page tables keep driving translations (reverted as d012a06ab1d2)",
    area: "memslot",
  },
  {
    name: "sp-wrong-access",
    commit: "b1bd5cba3306",
    title: "KVM: X86: MMU: Use the correct inherited permissions to get shadow page",
    symptom:
      "FNAME(fetch) keys child shadow pages on the parent gpte's own rights instead of the inherited ones: two paths with different upper-level rights share a page, and a write through a read-only PML4E succeeds (CVE-2021-38198)",
    area: "mmu",
  },
  {
    name: "link-unsync-no-sync",
    commit: "65855ed8b034",
    title: "KVM: X86: Synchronize the shadow pagetable before link it",
    symptom:
      "a shadow page with unsync children is linked into a new parent without mmu_sync_children: after a gpte change and a CR3 load, the old translation is still used through the newly linked path",
    area: "mmu",
  },
  {
    name: "wp0-large-dirty",
    commit: "c22885050e65",
    title: "KVM: MMU: fix Dirty bit missed if CR0.WP = 0",
    symptom:
      "a supervisor write with CR0.WP=0 to a read-only guest large page is shadowed writable without setting the guest PDE's D bit",
    area: "mmu",
  },
  {
    name: "fast-pf-large-dirtylog",
    commit: "c126d94f2c90",
    title: "KVM: MMU: lazily drop large spte",
    symptom:
      "a write through a guest large page in a dirty-logged slot makes the whole (lazily kept) large mapping writable but marks one 4K page dirty: later writes to its other pages miss the dirty log. Shadow paging has no fast_page_fault; the core plants the W restore in FNAME(page_fault) over the direct shadow page of the large page",
    area: "memslot",
  },
] as const satisfies readonly MmuBug[];

/** The name of one MMU or memslot bug. */
export type MmuBugName = (typeof MMU_BUGS)[number]["name"];

/** Every MMU bug name. */
export const MMU_BUG_NAMES: ReadonlySet<string> = new Set(MMU_BUGS.map((b) => b.name));
