/**
 * @module
 * The PMU part of the injected-bug catalogue (`--inject NAME`): real historical KVM PMU
 * bugs (docs/kvm-facts.md section D, items 10-15, plus 98defd2e1780 from C.4) that the core vPMU
 * can re-plant by name, each at the place KVM had it. `commit` is the upstream fix; a
 * "derived" commit marks a mutant of the v6.10 code that no single commit names.
 */

/** One injectable PMU bug. */
export interface PmuBug {
  readonly name: string;
  readonly commit: string;
  readonly title: string;
  /** What a differential fuzzer sees. */
  readonly symptom: string;
  readonly area: "pmu";
}

/** The PMU bugs (`as const`: the names are literal types). */
export const PMU_BUGS = [
  {
    name: "filter-skip-fixed",
    commit: "30cd8604323d",
    title: "KVM: x86: Add fixed counters to PMU filter",
    symptom:
      "check_pmu_event_filter lets every fixed counter through: instructions/cycles denied by the fixed_counter_bitmap still count",
    area: "pmu",
  },
  {
    name: "filter-mask-in-tx",
    commit: "aa570a7481c3",
    title: "KVM: x86/pmu: Correct the mask used in a pmu event filter lookup",
    symptom:
      "the Intel filter lookup keys on eventsel bits 35:32 too: setting IN_TX (bit 32, needs HLE/RTM in guest CPUID) makes a denied event miss the deny list and count",
    area: "pmu",
  },
  {
    name: "trigger-event-no-filter",
    commit: "dfdeda67ea2d",
    title: "KVM: x86/pmu: Prevent the PMU from counting disallowed events",
    symptom:
      "kvm_pmu_trigger_event ignores the filter: a denied instructions/branches-retired counter grows on KVM-emulated instructions",
    area: "pmu",
  },
  {
    name: "write-no-truncate",
    commit: "b29a2acd36dd",
    title: "KVM: x86/pmu: Truncate counter value to allowed width on write",
    symptom:
      "a sign-extended legacy PMC write leaves bits above the width in pmc->counter; the next reprogram compares against the raw value and reports a spurious overflow (GLOBAL_STATUS bit, PMI storm)",
    area: "pmu",
  },
  {
    name: "rdpmc-fast-intel",
    commit: "5728a4a0ea79",
    title: 'KVM: x86/pmu: Disallow "fast" RDPMC for architectural Intel PMUs',
    symptom: "RDPMC with ECX bit 31 set returns the low 32 bits of the counter instead of #GP",
    area: "pmu",
  },
  {
    name: "rdpmc-type-flag",
    commit: "7a0fc734c20d",
    title: 'KVM: x86/pmu: Treat "fixed" PMU type in RDPMC as index as a value, not flag',
    symptom:
      "Intel RDPMC decodes ECX bit 30 as a fixed flag and strips bits 31:30: ECX 0xC0000000 reads fixed counter 0 instead of #GP",
    area: "pmu",
  },
  {
    name: "rdpmc-unknown-type",
    commit: "a634c76b2c1a",
    title: "KVM: x86/pmu: Explicitly check for RDPMC of unsupported Intel PMC types",
    symptom:
      "Intel RDPMC with an unknown type in ECX[31:16] (e.g. 0x00010000) reads a GP counter instead of #GP",
    area: "pmu",
  },
  {
    name: "rdpmc-fast-amd",
    commit: "d652981db08f",
    title: 'KVM: x86/pmu: Apply "fast" RDPMC only to Intel PMUs',
    symptom: "AMD RDPMC with ECX bit 31 set returns the low 32 bits of the counter instead of #GP",
    area: "pmu",
  },
  {
    name: "rdpmc-amd-ignore-31-30",
    commit: "ecb490770ad4",
    title: "KVM: x86/pmu: Don't ignore bits 31:30 for RDPMC index on AMD",
    symptom: "AMD RDPMC ignores ECX bits 31:30: ECX 0x40000000 reads counter 0 instead of #GP",
    area: "pmu",
  },
  {
    name: "rdpmc-index-off-by-one",
    commit: "67f4d4288c35",
    title: "KVM: x86: rdpmc emulation checks the counter incorrectly",
    symptom:
      "RDPMC accepts the index equal to the number of counters and reads past the last counter instead of #GP",
    area: "pmu",
  },
  {
    name: "legacy-no-sign-extend",
    commit: "derived",
    title: "intel_pmu_set_msr: legacy IA32_PMCx guest write not sign-extended from bit 31",
    symptom:
      "writing 0x80000000 to IA32_PMC0 (0xC1) reads back 0x80000000 instead of 0xFFFF80000000",
    area: "pmu",
  },
  {
    name: "fullwidth-sign-extend",
    commit: "derived",
    title: "intel_pmu_set_msr: sign extension applied to full-width IA32_A_PMCx writes",
    symptom:
      "writing 0x80000000 to IA32_A_PMC0 (0x4C1) reads back 0xFFFF80000000 instead of 0x80000000",
    area: "pmu",
  },
  {
    name: "fullwidth-no-gp",
    commit: "derived",
    title: "intel_pmu_set_msr: no #GP for full-width writes with bits above the counter width",
    symptom: "WRMSR 0x4C1 with bit 48 set succeeds (value truncated) instead of #GP",
    area: "pmu",
  },
  {
    name: "v1-global-ctrl-check",
    commit: "98defd2e1780",
    title: "KVM: x86/pmu: Ignore pmu->global_ctrl check if vPMU doesn't support global_ctrl",
    symptom: "on a version-1 vPMU (no PERF_GLOBAL_CTRL, so it reads as 0) no counter ever counts",
    area: "pmu",
  },
] as const satisfies readonly PmuBug[];

/** The name of one PMU bug. */
export type PmuBugName = (typeof PMU_BUGS)[number]["name"];

/** The names of the PMU bugs, for validating `--inject`. */
export const PMU_BUG_NAMES: ReadonlySet<string> = new Set(PMU_BUGS.map((b) => b.name));
