/**
 * @module
 * The known deviations: places where the uninjected core, following KVM v6.10's code,
 * does what the architecture (or the KVM uAPI) does not permit. Each is a named rule,
 * found by a campaign, triaged in `corpus/findings/`, and each can be corrected in the
 * core by name (`BackendOptions.fix`), so the fuzzer can ask of any divergence "is this
 * that deviation?" precisely: a divergence is that deviation when the same trace, run
 * on the same core (with the same injected bugs, if any) with only that deviation
 * corrected, no longer diverges at that op. A planted bug elsewhere in the core still
 * diverges with the correction, so a known deviation can never swallow it
 * (docs/identity.md).
 *
 * The corrections are what the architecture requires at that path; none of them is an
 * upstream patch.
 */
import type { Area } from "../corpus/types.ts";

/** One known deviation of KVM from the architecture, as the core models it. */
export interface Deviation {
  readonly name: string;
  readonly area: Area;
  /** What goes wrong, in KVM's terms. */
  readonly title: string;
  /** The KVM code path, as in the source (v6.10). */
  readonly path: string;
  /** What the architecture says instead, with the source. */
  readonly architecture: string;
  /** What the correction (`fix`) changes in the core. */
  readonly correction: string;
}

export const DEVIATIONS = [
  {
    name: "pmc-write-period-from-offset",
    area: "pmu",
    title: "a counter written after its perf event counted overflows early: spurious PMI",
    path: "pmc_write_counter() -> pmc_update_sample_period() (arch/x86/kvm/pmu.c, v6.10): " +
      "the period is computed from pmc->counter, which holds value - perf count",
    architecture: "a counter overflows when it wraps from its maximum (SDM vol. 3B 20.2)",
    correction: "the period is computed from the value the guest reads back",
  },
  {
    name: "mmio-spte-write-no-dirty",
    area: "mmu",
    title: "a write served by a cached MMIO spte never sets the guest PTE's D bit",
    path: "handle_mmio_page_fault() -> the emulator's vcpu_mmio_gva_to_gpa() matches the " +
      "cached MMIO gva without a guest walk (arch/x86/kvm/mmu/mmu.c, x86.c, v6.10)",
    architecture: "a write through a translation whose D bit is 0 sets it (SDM vol. 3A 4.8)",
    correction:
      "a write served by an MMIO spte also walks the guest tables and sets their A/D bits",
  },
  {
    name: "sync-mmio-spte-restamp",
    area: "mmu",
    title: "an MMIO spte in an unsync page is re-stamped with the current generation by sync",
    path: "FNAME(sync_spte) -> sync_mmio_spte() -> mark_mmio_spte() " +
      "(arch/x86/kvm/mmu/paging_tmpl.h, mmu.c, v6.10): the same gfn is re-marked with the " +
      "current memslot generation although a memslot was created over it",
    architecture: "KVM_EXIT_MMIO is for gpas no memslot backs (Documentation/virt/kvm/api.rst)",
    correction: "sync drops an MMIO spte whose generation is not the current one",
  },
  {
    name: "trigger-event-match-in-tx",
    area: "pmu",
    title: "instructions KVM emulates are not counted by an eventsel with IN_TXCP",
    path: "kvm_pmu_trigger_event() -> pmc_is_event_match() (arch/x86/kvm/pmu.c, v6.10) " +
      "compares under AMD64_RAW_EVENT_MASK_NB, which includes eventsel bits 35:32",
    architecture: "IN_TXCP counts instructions retired outside transactions too " +
      "(SDM vol. 3B 20.3.6.5)",
    correction: "on Intel the emulated-event match ignores IN_TXCP (eventsel bit 33); an " +
      "IN_TX event (bit 32) still matches none, as no emulated instruction is inside a " +
      "transaction",
  },
  {
    name: "np-pf-keeps-stale-spte",
    area: "mmu",
    title: "a not-present #PF KVM injects leaves the faulting address's stale spte",
    path: "FNAME(page_fault) -> kvm_inject_emulated_page_fault() (arch/x86/kvm/x86.c, " +
      "v6.10) calls kvm_mmu_invalidate_addr() only when the error code has P set and RSVD " +
      "clear",
    architecture: "a page fault invalidates the TLB entries of the faulting page " +
      "(SDM vol. 3A 4.10.4.1)",
    correction: "every injected #PF invalidates the faulting address",
  },
  {
    name: "half-gpte-write-realigned",
    area: "mmu",
    title: "a 4-byte store straddling two gptes of a shadowed table zaps only the first one's spte",
    path: "kvm_mmu_track_write() -> mmu_pte_write_fetch_gpte() aligns a 4-byte write down " +
      "to its 8-byte gpte before detect_write_misaligned() runs, so get_written_sptes() " +
      "zaps only that gpte's spte (arch/x86/kvm/mmu/mmu.c, v6.10; the emulator splits " +
      "writes at pages only, emulator_read_write() in x86.c); reproduced on the real KVM",
    architecture: "after MOV to CR3 a walk uses the paging-structure entries in memory " +
      "(SDM vol. 3A 4.10.4.1)",
    correction: "a 4-byte store that crosses an 8-byte gpte boundary counts as misaligned " +
      "(the shadow page is zapped)",
  },
  {
    name: "in-txcp-counter-no-pmi",
    area: "pmu",
    title: "a counter whose eventsel has IN_TXCP never raises its overflow PMI",
    path: "pmc_reprogram_counter() (arch/x86/kvm/pmu.c, v6.10) creates the perf event of an " +
      'HSW_IN_TX_CHECKPOINTED eventsel with sample_period 0 ("not supported with nonzero ' +
      "period\"), so the counter's overflow is never seen: no GLOBAL_STATUS bit, no PMI",
    architecture: "a counter with INT set raises a PMI when it overflows (SDM vol. 3B 20.2.1); " +
      "IN_TXCP only restores the count on a transactional abort (SDM vol. 3B 20.3.6.5)",
    correction: "the perf event of an IN_TXCP eventsel gets the sample period like any other",
  },
] as const satisfies readonly Deviation[];

/** The name of a known deviation. */
export type DeviationName = (typeof DEVIATIONS)[number]["name"];

/** Every deviation name, for validating `fix`. */
export const DEVIATION_NAMES: ReadonlySet<string> = new Set(DEVIATIONS.map((d) => d.name));

/** The deviation called `name`, or undefined. */
export function deviation(name: string): Deviation | undefined {
  return DEVIATIONS.find((d) => d.name === name);
}
