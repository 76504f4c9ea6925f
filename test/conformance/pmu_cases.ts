/**
 * @module
 * Conformance cases for the guest vPMU and the event-filter uAPI: MSR semantics, counter
 * widths, global control/status, counting and overflow, RDPMC and
 * KVM_SET_PMU_EVENT_FILTER, for Intel and AMD, vPMU versions 0, 1 and 2. Every backend
 * must produce these outcomes; each case cites where the expectation comes from
 * (docs/kvm-facts.md section C, the KVM v6.10 function, the commit that fixed a bug).
 *
 * Eventsel values used below (SDM 20.2.1.1; docs/kvm-facts.md C.2): EN = bit 22, INT = bit 20,
 * OS = bit 17, USR = bit 16, so `0x4300c0` = EN|OS|USR with event 0xC0 (instructions
 * retired) and umask 0, `0x5300c0` the same plus INT. IA32_FIXED_CTR_CTRL nibble i: OS
 * bit 0, USR bit 1, PMI bit 3.
 */
import type { ConfigInput } from "../../src/trace/types.ts";
import type { ConformanceCase } from "./case.ts";

/** An Intel vPMU (48-bit counters, full-width writes unless overridden). */
function intel(
  version: 0 | 1 | 2,
  gp: number,
  fixed: number,
  extra: { gpWidth?: number; fixedWidth?: number; fullWidthWrites?: boolean } = {},
): ConfigInput {
  return {
    vendor: "intel",
    pmu: {
      version,
      gp,
      fixed,
      gpWidth: extra.gpWidth ?? 48,
      fixedWidth: extra.fixedWidth ?? 48,
      fullWidthWrites: extra.fullWidthWrites ?? true,
    },
  };
}

/** An AMD vPMU: version 1 legacy/PerfCtrExtCore, version 2 PerfMonV2. */
function amd(version: 0 | 1 | 2, gp: 0 | 4 | 6): ConfigInput {
  return {
    vendor: "amd",
    pmu: { version, gp, fixed: 0, gpWidth: 48, fixedWidth: 48, fullWidthWrites: false },
  };
}

/** `n` distinct legacy filter entries (event select + umask only). */
function manyEvents(n: number): string {
  return Array.from({ length: n }, (_, i) => `0x${(i + 1).toString(16)}`).join(" ");
}

const INTEL_V2 = intel(2, 4, 3);
const AMD_V1 = amd(1, 4);
const AMD_V1_CORE = amd(1, 6);
const AMD_V2 = amd(2, 6);
/** The kvm_pvm machine: AMD without a vPMU (`kvmPvmConfig`). */
const AMD_V0 = amd(0, 0);

const intelMsrCases: ConformanceCase[] = [
  {
    name: "pmu: an Intel eventsel write reads back unchanged",
    source: "docs/kvm-facts.md C.1, C.2; intel_pmu_set_msr/get_msr",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x186 0x4300c0", "ok"],
      ["rdmsr 0x186", "value 0x4300c0"],
      ["wrmsr 0x189 0x1ffdfffff", "gp"],
      ["wrmsr 0x189 0xffdfffff", "ok"],
      ["rdmsr 0x189", "value 0xffdfffff"],
    ],
  },
  {
    name: "pmu: Intel eventsel reserved bits (AnyThread, IN_TX without HLE/RTM, 63:32) #GP",
    source: "docs/kvm-facts.md C.2: reserved_bits = 0xffffffff00200000, write with one => #GP",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x186 0x200000", "gp"],
      ["wrmsr 0x186 0x100000000", "gp"],
      ["wrmsr 0x188 0x200000000", "gp"],
      ["wrmsr 0x186 0x8000000000000000", "gp"],
      ["rdmsr 0x186", "value 0x0"],
      ["wrmsr 0x186 0xffdfffff", "ok"],
    ],
  },
  {
    name: "pmu: a legacy PMC write sign-extends bit 31 and masks to 48 bits",
    source: "docs/kvm-facts.md C.3 ((s64)(s32)data, then & bitmask); D.15",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0xc1 0x80000000", "ok"],
      ["rdmsr 0xc1", "value 0xffff80000000"],
      ["rdmsr 0x4c1", "value 0xffff80000000"],
      ["wrmsr 0xc2 0x7fffffff", "ok"],
      ["rdmsr 0xc2", "value 0x7fffffff"],
    ],
  },
  {
    name: "pmu: a legacy PMC write ignores bits 63:32 before sign extension",
    source: "docs/kvm-facts.md C.3: (s64)(s32)data keeps only bits 31:0; legacy writes never #GP",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0xc1 0x123456789", "ok"],
      ["rdmsr 0xc1", "value 0x23456789"],
      ["wrmsr 0xc1 0xffffffff00000001", "ok"],
      ["rdmsr 0xc1", "value 0x1"],
      ["wrmsr 0xc1 0xfffffffffffffffe", "ok"],
      ["rdmsr 0xc1", "value 0xfffffffffffe"],
    ],
  },
  {
    name: "pmu: a full-width A_PMC write above the counter width #GPs, within it stores as is",
    source:
      "docs/kvm-facts.md C.3 (full-width write with bits above width => #GP, no sign extension)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x4c1 0x1000000000000", "gp"],
      ["wrmsr 0x4c1 0x80000000", "ok"],
      ["rdmsr 0xc1", "value 0x80000000"],
      ["wrmsr 0x4c4 0xffffffffffff", "ok"],
      ["rdmsr 0xc4", "value 0xffffffffffff"],
      ["rdmsr 0x4c4", "value 0xffffffffffff"],
    ],
  },
  {
    name: "pmu: without FW_WRITE the A_PMC aliases #GP but legacy PMCs work",
    source:
      "docs/kvm-facts.md C.1 (A_PMCx only with PERF_CAPABILITIES.FW_WRITE, fw_writes_is_enabled)",
    config: intel(2, 4, 3, { fullWidthWrites: false }),
    steps: [
      ["wrmsr 0x4c1 0x1", "gp"],
      ["rdmsr 0x4c1", "gp"],
      ["wrmsr 0xc1 0x1", "ok"],
      ["rdmsr 0xc1", "value 0x1"],
    ],
  },
  {
    name: "pmu: with 32-bit GP counters a legacy write of bit 31 stays 32 bits",
    source: "docs/kvm-facts.md C.3 (counter_bitmask = (1 << width) - 1 from CPUID.0AH EAX[23:16])",
    config: intel(2, 4, 3, { gpWidth: 32 }),
    steps: [
      ["wrmsr 0xc1 0x80000000", "ok"],
      ["rdmsr 0xc1", "value 0x80000000"],
      ["wrmsr 0x4c1 0x100000000", "gp"],
      ["wrmsr 0x4c1 0xffffffff", "ok"],
      ["rdpmc 0x0", "value 0xffffffff"],
    ],
  },
  {
    name: "pmu: Intel PMU MSRs beyond nr_gp #GP, except the P6 ones x86.c keeps",
    source:
      "docs/kvm-facts.md C.1; x86.c kvm_{set,get}_msr_common fallback for MSR_P6_* (measured: docs/measurements.md)",
    config: intel(2, 1, 3),
    steps: [
      ["rdmsr 0xc3", "gp"],
      ["wrmsr 0x188 0x0", "gp"],
      ["rdmsr 0x4c2", "gp"],
      ["wrmsr 0xc2 0x5", "ok"],
      ["rdmsr 0xc2", "value 0x0"],
      ["wrmsr 0x187 0x4300c0", "ok"],
      ["rdmsr 0x187", "value 0x0"],
      ["rdmsr 0x38f", "value 0x1"],
    ],
  },
  {
    name: "pmu: a fixed counter write is masked to the fixed width without #GP",
    source: "docs/kvm-facts.md C.3 (fixed counter writes masked to width, no #GP)",
    config: intel(2, 4, 3, { fixedWidth: 40 }),
    steps: [
      ["wrmsr 0x309 0xffffffffffffffff", "ok"],
      ["rdmsr 0x309", "value 0xffffffffff"],
      ["rdpmc 0x40000000", "value 0xffffffffff"],
      ["wrmsr 0x30b 0x12345", "ok"],
      ["rdmsr 0x30b", "value 0x12345"],
    ],
  },
  {
    name: "pmu: fixed counters beyond nr_fixed and FIXED_CTR3 #GP",
    source:
      "docs/kvm-facts.md C.1; pmu_intel.c fixed_pmc_events[] has 3 entries (KVM_PMC_MAX_FIXED)",
    config: intel(2, 4, 1),
    steps: [
      ["rdmsr 0x309", "value 0x0"],
      ["rdmsr 0x30a", "gp"],
      ["wrmsr 0x30b 0x0", "gp"],
      ["rdmsr 0x30c", "gp"],
    ],
  },
  {
    name: "pmu: FIXED_CTR_CTRL accepts OS, USR and PMI of supported counters",
    source: "docs/kvm-facts.md C.2 (fixed_ctr_ctrl_mask clears 0xb << 4i per supported counter)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x38d 0xbbb", "ok"],
      ["rdmsr 0x38d", "value 0xbbb"],
      ["wrmsr 0x38d 0x0", "ok"],
      ["rdmsr 0x38d", "value 0x0"],
    ],
  },
  {
    name: "pmu: FIXED_CTR_CTRL AnyThread and unsupported-counter bits #GP",
    source: "docs/kvm-facts.md C.2 (ANY stays reserved; bits of absent counters reserved => #GP)",
    config: intel(2, 4, 2),
    steps: [
      ["wrmsr 0x38d 0x4", "gp"],
      ["wrmsr 0x38d 0x40", "gp"],
      ["wrmsr 0x38d 0xb00", "gp"],
      ["wrmsr 0x38d 0x1000", "gp"],
      ["wrmsr 0x38d 0xbb", "ok"],
      ["rdmsr 0x38d", "value 0xbb"],
    ],
  },
  {
    name: "pmu: Intel GLOBAL_CTRL resets to the GP enable bits",
    source:
      "docs/kvm-facts.md C.3 (refresh sets global_ctrl = GENMASK(nr_gp - 1, 0), de120e1d692d)",
    config: INTEL_V2,
    steps: [
      ["rdmsr 0x38f", "value 0xf"],
      ["rdmsr 0x38e", "value 0x0"],
      ["rdmsr 0x38d", "value 0x0"],
      ["rdmsr 0x186", "value 0x0"],
      ["rdmsr 0xc1", "value 0x0"],
      ["rdmsr 0x309", "value 0x0"],
    ],
  },
  {
    name: "pmu: Intel GLOBAL_CTRL reserved bits #GP",
    source: "docs/kvm-facts.md C.4 (global_ctrl_mask = ~(GP bits | fixed bits 32+), write => #GP)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x38f 0x10", "gp"],
      ["wrmsr 0x38f 0x800000000", "gp"],
      ["wrmsr 0x38f 0x8000000000000000", "gp"],
      ["rdmsr 0x38f", "value 0xf"],
      ["wrmsr 0x38f 0x700000005", "ok"],
      ["rdmsr 0x38f", "value 0x700000005"],
    ],
  },
  {
    name: "pmu: Intel GLOBAL_STATUS is read-only to the guest",
    source: "docs/kvm-facts.md C.4 (GLOBAL_STATUS guest write => #GP)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x38e 0x0", "gp"],
      ["wrmsr 0x38e 0x1", "gp"],
      ["rdmsr 0x38e", "value 0x0"],
    ],
  },
  {
    name: "pmu: GLOBAL_OVF_CTRL #GPs on status-reserved bits, takes bits 62/63, reads 0",
    source: "docs/kvm-facts.md C.4 (global_status_mask = ctrl mask minus bits 62, 63; no PT)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x390 0x10", "gp"],
      ["wrmsr 0x390 0x80000000000000", "gp"],
      ["wrmsr 0x390 0xc000000000000000", "ok"],
      ["wrmsr 0x390 0x70000000f", "ok"],
      ["rdmsr 0x390", "value 0x0"],
    ],
  },
  {
    name: "pmu: Intel v1 has no global MSRs, no FIXED_CTR_CTRL and no fixed counters",
    source: "docs/kvm-facts.md C.4 (global MSRs only with kvm_pmu_has_perf_global_ctrl); C.1 v1",
    config: intel(1, 4, 0),
    steps: [
      ["rdmsr 0x38f", "gp"],
      ["wrmsr 0x38f 0x0", "gp"],
      ["rdmsr 0x38e", "gp"],
      ["wrmsr 0x390 0x0", "gp"],
      ["rdmsr 0x38d", "gp"],
      ["rdmsr 0x309", "gp"],
      ["rdmsr 0x391", "gp"],
      ["wrmsr 0x186 0x4300c0", "ok"],
      ["rdmsr 0x186", "value 0x4300c0"],
    ],
  },
  {
    name: "pmu: v4-only GLOBAL_STATUS_SET and GLOBAL_INUSE #GP on KVM's v2 vPMU",
    source: "docs/kvm-facts.md C.1 (KVM caps the guest version at 2; 0x391/0x392 are v4)",
    config: INTEL_V2,
    steps: [
      ["rdmsr 0x391", "gp"],
      ["wrmsr 0x391 0x1", "gp"],
      ["rdmsr 0x392", "gp"],
    ],
  },
  {
    name: "pmu: without a vPMU Intel keeps P6 and K7 MSRs readable as 0, the rest #GP",
    source:
      "docs/measurements.md (measured); x86.c MSR_K7_*/MSR_P6_* fallback; docs/kvm-facts.md C.1",
    config: intel(0, 0, 0),
    steps: [
      ["wrmsr 0x186 0x4300c0", "ok"],
      ["rdmsr 0x186", "value 0x0"],
      ["wrmsr 0xc1 0x1234", "ok"],
      ["rdmsr 0xc1", "value 0x0"],
      ["rdmsr 0xc2", "value 0x0"],
      ["rdmsr 0x187", "value 0x0"],
      ["wrmsr 0xc0010000 0x4300c0", "ok"],
      ["rdmsr 0xc0010007", "value 0x0"],
      ["rdmsr 0xc3", "gp"],
      ["wrmsr 0x188 0x0", "gp"],
      ["rdmsr 0x4c1", "gp"],
      ["rdmsr 0x309", "gp"],
      ["rdmsr 0x38f", "gp"],
      ["rdmsr 0xc0010200", "gp"],
      ["rdpmc 0x0", "gp"],
    ],
  },
  {
    name: "pmu: an Intel vPMU leaves the AMD K7 MSRs to x86.c (read 0, writes ignored)",
    source: "x86.c MSR_K7_* fallback when not a valid PMU MSR (measured: docs/measurements.md)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0xc0010000 0x4300c0", "ok"],
      ["rdmsr 0xc0010000", "value 0x0"],
      ["wrmsr 0xc0010004 0x5", "ok"],
      ["rdmsr 0xc0010004", "value 0x0"],
      ["rdmsr 0xc0010201", "gp"],
      ["rdmsr 0xc0000301", "gp"],
    ],
  },
];

const intelCountingCases: ConformanceCase[] = [
  {
    name: "pmu: an enabled GP counter counts its event at CPL 0 and CPL 3",
    source: "docs/kvm-facts.md C.5 (EN, OS/USR, globally enabled, filter)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x186 0x4300c0", "ok"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["events 0xc0 umask=0x0 count=7 user", "ok"],
      ["rdmsr 0xc1", "value 0xc"],
      ["rdpmc 0x0", "value 0xc"],
      ["rdmsr 0xc2", "value 0x0"],
    ],
  },
  {
    name: "pmu: a GP counter without EN does not count",
    source: "docs/kvm-facts.md C.5 (locally enabled = EN for GP counters)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x186 0x300c0", "ok"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["rdmsr 0xc1", "value 0x0"],
    ],
  },
  {
    name: "pmu: USR counts only CPL 3 events and OS only CPL 0 events",
    source: "docs/kvm-facts.md C.5 (CPL selection: OS at CPL 0, USR otherwise)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x186 0x4100c0", "ok"],
      ["wrmsr 0x187 0x4200c0", "ok"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["events 0xc0 umask=0x0 count=7 user", "ok"],
      ["rdmsr 0xc1", "value 0x7"],
      ["rdmsr 0xc2", "value 0x5"],
    ],
  },
  {
    name: "pmu: a GP counter counts only its exact event select and umask",
    source: "docs/kvm-facts.md C.5 (event select + umask match; E/PC/CMASK/INV ignored)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x186 0x4301c4", "ok"],
      ["events 0xc4 umask=0x0 count=3", "ok"],
      ["events 0xc5 umask=0x1 count=3", "ok"],
      ["rdmsr 0xc1", "value 0x0"],
      ["events 0xc4 umask=0x1 count=3", "ok"],
      ["rdmsr 0xc1", "value 0x3"],
    ],
  },
  {
    name: "pmu: edge, invert and counter-mask bits do not stop counting",
    source: "docs/kvm-facts.md C.5 (E/PC/CMASK/INV ignored when matching events)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x186 0x1cf00c0", "ok"],
      ["events 0xc0 umask=0x0 count=4", "ok"],
      ["rdmsr 0xc1", "value 0x4"],
    ],
  },
  {
    name: "pmu: GLOBAL_CTRL bit i gates GP counter i on Intel v2",
    source: "docs/kvm-facts.md C.4, C.5 (pmc_is_globally_enabled)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x186 0x4300c0", "ok"],
      ["wrmsr 0x38f 0xe", "ok"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["rdmsr 0xc1", "value 0x0"],
      ["wrmsr 0x38f 0x1", "ok"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["rdmsr 0xc1", "value 0x5"],
    ],
  },
  {
    name: "pmu: Intel v1 counters count without any GLOBAL_CTRL",
    source: "docs/kvm-facts.md C.4 (98defd2e1780: no global_ctrl => globally enabled)",
    config: intel(1, 2, 0),
    steps: [
      ["wrmsr 0x186 0x4300c0", "ok"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["rdmsr 0xc1", "value 0x5"],
      ["rdpmc 0x0", "value 0x5"],
    ],
  },
  {
    name: "pmu: GP overflow sets GLOBAL_STATUS and, with INT, one PMI; OVF_CTRL clears it",
    source: "docs/kvm-facts.md C.5 (__kvm_perf_overflow), C.4 (GLOBAL_OVF_CTRL clears status)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x186 0x5300c0", "ok"],
      ["wrmsr 0x4c1 0xfffffffffffe", "ok"],
      ["events 0xc0 umask=0x0 count=3", "ok"],
      ["rdmsr 0xc1", "value 0x1"],
      ["rdmsr 0x38e", "value 0x1"],
      ["pmis", "count 1"],
      ["pmis", "count 0"],
      ["wrmsr 0x390 0x1", "ok"],
      ["rdmsr 0x38e", "value 0x0"],
    ],
  },
  {
    name: "pmu: an overflow without INT sets GLOBAL_STATUS but raises no PMI",
    source: "docs/kvm-facts.md C.5 (PMI only if pmc->intr)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x187 0x4300c0", "ok"],
      ["wrmsr 0xc2 0xffffffff", "ok"],
      ["rdmsr 0xc2", "value 0xffffffffffff"],
      ["events 0xc0 umask=0x0 count=1", "ok"],
      ["rdmsr 0xc2", "value 0x0"],
      ["rdmsr 0x38e", "value 0x2"],
      ["pmis", "count 0"],
    ],
  },
  {
    name: "pmu: fixed counter 0 counts instructions retired once GLOBAL_CTRL bit 32 is set",
    source:
      "docs/kvm-facts.md C.1 (FIXED_CTR0 = INST_RETIRED.ANY 0xC0/0x00), C.2 (enabled iff OS|USR and 32+i)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x38d 0x3", "ok"],
      ["events 0xc0 umask=0x0 count=10", "ok"],
      ["rdmsr 0x309", "value 0x0"],
      ["wrmsr 0x38f 0x70000000f", "ok"],
      ["events 0xc0 umask=0x0 count=10", "ok"],
      ["rdmsr 0x309", "value 0xa"],
      ["rdpmc 0x40000000", "value 0xa"],
      ["rdmsr 0x30a", "value 0x0"],
    ],
  },
  {
    name: "pmu: fixed counters 1 and 2 count core cycles and reference cycles (0x00/0x03)",
    source: "pmu_intel.c fixed_pmc_events[] / intel_arch_events[] (0x3C/0x00, pseudo 0x00/0x03)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x38d 0x330", "ok"],
      ["wrmsr 0x38f 0x600000000", "ok"],
      ["events 0x3c umask=0x0 count=100", "ok"],
      ["events 0x0 umask=0x3 count=50", "ok"],
      ["events 0x3c umask=0x1 count=7", "ok"],
      ["rdmsr 0x30a", "value 0x64"],
      ["rdmsr 0x30b", "value 0x32"],
      ["rdpmc 0x40000002", "value 0x32"],
    ],
  },
  {
    name: "pmu: fixed counter OS/USR bits select the CPL it counts at",
    source: "docs/kvm-facts.md C.2 (fixed ctrl bit 0 OS = CPL 0, bit 1 USR = CPL > 0), C.5",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x38f 0x100000000", "ok"],
      ["wrmsr 0x38d 0x2", "ok"],
      ["events 0xc0 umask=0x0 count=3", "ok"],
      ["rdmsr 0x309", "value 0x0"],
      ["events 0xc0 umask=0x0 count=4 user", "ok"],
      ["rdmsr 0x309", "value 0x4"],
      ["wrmsr 0x38d 0x1", "ok"],
      ["events 0xc0 umask=0x0 count=4 user", "ok"],
      ["events 0xc0 umask=0x0 count=2", "ok"],
      ["rdmsr 0x309", "value 0x6"],
    ],
  },
  {
    name: "pmu: a fixed counter overflow sets GLOBAL_STATUS bit 32 and its PMI bit raises a PMI",
    source: "docs/kvm-facts.md C.4 (fixed i -> bit 32+i), C.5 (fixed-ctrl PMI bit 4i+3)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x38f 0x100000000", "ok"],
      ["wrmsr 0x38d 0xb", "ok"],
      ["wrmsr 0x309 0xffffffffffff", "ok"],
      ["events 0xc0 umask=0x0 count=1", "ok"],
      ["rdmsr 0x309", "value 0x0"],
      ["rdmsr 0x38e", "value 0x100000000"],
      ["pmis", "count 1"],
      ["wrmsr 0x390 0x100000000", "ok"],
      ["rdmsr 0x38e", "value 0x0"],
    ],
  },
  {
    name: "pmu: overflows of several counters in one events op coalesce into one PMI",
    source: "docs/kvm-facts.md C.5 (KVM_REQ_PMI is a single request bit)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x38f 0x100000003", "ok"],
      ["wrmsr 0x186 0x5300c0", "ok"],
      ["wrmsr 0x187 0x5300c0", "ok"],
      ["wrmsr 0x38d 0xb", "ok"],
      ["wrmsr 0x4c1 0xffffffffffff", "ok"],
      ["wrmsr 0x4c2 0xffffffffffff", "ok"],
      ["wrmsr 0x309 0xffffffffffff", "ok"],
      ["events 0xc0 umask=0x0 count=2", "ok"],
      ["rdmsr 0x38e", "value 0x100000003"],
      ["pmis", "count 1"],
    ],
  },
  {
    name: "pmu: overflows in separate events ops raise separate PMIs",
    source: "docs/kvm-facts.md C.5 (one KVM_REQ_PMI per overflow, delivered before the next op)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x186 0x5300c0", "ok"],
      ["wrmsr 0x4c1 0xffffffffffff", "ok"],
      ["events 0xc0 umask=0x0 count=1", "ok"],
      ["wrmsr 0x4c1 0xffffffffffff", "ok"],
      ["events 0xc0 umask=0x0 count=1", "ok"],
      ["pmis", "count 2"],
    ],
  },
  {
    name: "pmu: a count that wraps a 32-bit counter several times still overflows once",
    source: "docs/kvm-facts.md C.3 (counter masked to width), C.5 (overflow = wrap)",
    config: intel(2, 4, 3, { gpWidth: 32 }),
    steps: [
      ["wrmsr 0x186 0x5300c0", "ok"],
      ["wrmsr 0xc1 0xfffffff0", "ok"],
      ["events 0xc0 umask=0x0 count=4294967295", "ok"],
      ["rdmsr 0xc1", "value 0xffffffef"],
      ["rdmsr 0x38e", "value 0x1"],
      ["pmis", "count 1"],
    ],
  },
];

const rdpmcCases: ConformanceCase[] = [
  {
    name: "pmu: Intel RDPMC from CPL 3 needs CR4.PCE, CPL 0 does not",
    source: "docs/kvm-facts.md C.6 (#GP if CR4.PCE=0 && CPL>0 && CR0.PE=1)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0xc1 0x2a", "ok"],
      ["rdpmc 0x0", "value 0x2a"],
      ["rdpmc 0x0 user", "gp"],
      ["ctl pce=1", "ok"],
      ["rdpmc 0x0 user", "value 0x2a"],
      ["rdpmc 0x40000001 user", "value 0x0"],
      ["ctl pce=0", "ok"],
      ["rdpmc 0x40000001 user", "gp"],
    ],
  },
  {
    name: "pmu: Intel RDPMC indexes at or beyond the counter count #GP",
    source: "docs/kvm-facts.md C.6 (index >= number of counters of that type => #GP; 67f4d4288c35)",
    config: INTEL_V2,
    steps: [
      ["rdpmc 0x3", "value 0x0"],
      ["rdpmc 0x4", "gp"],
      ["rdpmc 0xffff", "gp"],
      ["rdpmc 0x40000002", "value 0x0"],
      ["rdpmc 0x40000003", "gp"],
    ],
  },
  {
    name: "pmu: Intel RDPMC with the fast bit 31 #GPs",
    source: "docs/kvm-facts.md C.6 (5728a4a0ea79: fast mode #GP for architectural PMUs)",
    config: INTEL_V2,
    steps: [
      ["rdpmc 0x80000000", "gp"],
      ["rdpmc 0xc0000000", "gp"],
      ["rdpmc 0x80000001", "gp"],
    ],
  },
  {
    name: "pmu: Intel RDPMC types other than 0 and 0x4000 #GP, VMware indexes included",
    source:
      "docs/kvm-facts.md C.6 (7a0fc734c20d, a634c76b2c1a; enable_vmware_backdoor off by default)",
    config: INTEL_V2,
    steps: [
      ["rdpmc 0x10000", "gp"],
      ["rdpmc 0x10002", "gp"],
      ["rdpmc 0x20000000", "gp"],
      ["rdpmc 0x60000000", "gp"],
      ["rdpmc 0x40010000", "gp"],
    ],
  },
  {
    name: "pmu: Intel RDPMC returns the sign-extended legacy value within the width",
    source: "docs/kvm-facts.md C.3, C.6 (result masked to width, 0e6f467ee28e)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0xc3 0x80000000", "ok"],
      ["rdpmc 0x2", "value 0xffff80000000"],
    ],
  },
  {
    name: "pmu: Intel v1 RDPMC reads GP counters, the fixed type #GPs",
    source: "docs/kvm-facts.md C.6 (fixed type valid, but v1 has 0 fixed counters => #GP)",
    config: intel(1, 2, 0),
    steps: [
      ["rdpmc 0x1", "value 0x0"],
      ["rdpmc 0x40000000", "gp"],
      ["rdpmc 0x2", "gp"],
    ],
  },
  {
    name: "pmu: AMD RDPMC takes ECX below nr_gp only; bits 31:30 are not ignored",
    source: "docs/kvm-facts.md C.6 (ecb490770ad4, d652981db08f)",
    config: AMD_V1,
    steps: [
      ["wrmsr 0xc0010007 0x1234", "ok"],
      ["rdpmc 0x3", "value 0x1234"],
      ["rdpmc 0x4", "gp"],
      ["rdpmc 0x40000003", "gp"],
      ["rdpmc 0x80000003", "gp"],
      ["rdpmc 0x10000", "gp"],
    ],
  },
  {
    name: "pmu: AMD RDPMC of counters 4 and 5 with PerfCtrExtCore, from CPL 3 only with PCE",
    source: "docs/kvm-facts.md C.6 (ECX < nr_gp; CR4.PCE check)",
    config: AMD_V1_CORE,
    steps: [
      ["wrmsr 0xc001020b 0x77", "ok"],
      ["rdpmc 0x5", "value 0x77"],
      ["rdpmc 0x5 user", "gp"],
      ["ctl pce=1", "ok"],
      ["rdpmc 0x5 user", "value 0x77"],
      ["rdpmc 0x6 user", "gp"],
    ],
  },
];

const amdCases: ConformanceCase[] = [
  {
    name: "pmu: AMD eventsel reserved bits are dropped silently, HostOnly/GuestOnly included",
    source:
      "docs/kvm-facts.md C.2 (AMD reserved_bits 0xfffffff000280000 masked, no #GP; cb1d220da0fa)",
    config: AMD_V1,
    steps: [
      ["wrmsr 0xc0010000 0xffffffffffffffff", "ok"],
      ["rdmsr 0xc0010000", "value 0xfffd7ffff"],
      ["wrmsr 0xc0010001 0x300004300c0", "ok"],
      ["rdmsr 0xc0010001", "value 0x4300c0"],
      ["wrmsr 0xc0010002 0x2004300c0", "ok"],
      ["rdmsr 0xc0010002", "value 0x2004300c0"],
    ],
  },
  {
    name: "pmu: AMD counters are masked to 48 bits and never sign-extended or #GP",
    source: "docs/kvm-facts.md C.3 (AMD counter writes masked to 48 bits, no #GP)",
    config: AMD_V1,
    steps: [
      ["wrmsr 0xc0010004 0xffffffffffffffff", "ok"],
      ["rdmsr 0xc0010004", "value 0xffffffffffff"],
      ["wrmsr 0xc0010005 0x80000000", "ok"],
      ["rdmsr 0xc0010005", "value 0x80000000"],
    ],
  },
  {
    name: "pmu: AMD with 4 counters has no F15H MSRs and no PerfMonV2 globals",
    source: "docs/kvm-facts.md C.1 (F15H only with PerfCtrExtCore; globals only with PerfMonV2)",
    config: AMD_V1,
    steps: [
      ["rdmsr 0xc0010200", "gp"],
      ["wrmsr 0xc0010201 0x0", "gp"],
      ["rdmsr 0xc0000300", "gp"],
      ["rdmsr 0xc0000301", "gp"],
      ["wrmsr 0xc0000302 0x0", "gp"],
    ],
  },
  {
    name: "pmu: AMD F15H CTL/CTR MSRs alias the K7 MSRs for counters 0-3",
    source: "docs/kvm-facts.md C.1 (CTL 0xC0010200+2i, CTR 0xC0010201+2i; K7 alias counters 0-3)",
    config: AMD_V1_CORE,
    steps: [
      ["wrmsr 0xc0010200 0x4300c0", "ok"],
      ["rdmsr 0xc0010000", "value 0x4300c0"],
      ["wrmsr 0xc0010007 0x5", "ok"],
      ["rdmsr 0xc0010207", "value 0x5"],
      ["wrmsr 0xc001020a 0x4200c2", "ok"],
      ["rdmsr 0xc001020a", "value 0x4200c2"],
      ["rdmsr 0xc001020c", "gp"],
      ["rdmsr 0xc0000301", "gp"],
    ],
  },
  {
    name: "pmu: AMD eventsel bits 35:32 are event bits 11:8 (0x1C2 is not 0xC2)",
    source: "docs/kvm-facts.md C.2 (AMD 35:32 = event select 11:8; 95b065bf5c43)",
    config: AMD_V1,
    steps: [
      ["wrmsr 0xc0010000 0x1004300c2", "ok"],
      ["wrmsr 0xc0010001 0x4300c2", "ok"],
      ["events 0xc2 umask=0x0 count=3", "ok"],
      ["events 0x1c2 umask=0x0 count=5", "ok"],
      ["rdmsr 0xc0010004", "value 0x5"],
      ["rdmsr 0xc0010005", "value 0x3"],
    ],
  },
  {
    name: "pmu: AMD v1 counters are always globally enabled and overflow raises a PMI",
    source: "docs/kvm-facts.md C.4 (no global ctrl => enabled), C.5 (INT => PMI)",
    config: AMD_V1,
    steps: [
      ["wrmsr 0xc0010003 0x5300c0", "ok"],
      ["wrmsr 0xc0010007 0xffffffffffff", "ok"],
      ["events 0xc0 umask=0x0 count=2", "ok"],
      ["rdmsr 0xc0010007", "value 0x1"],
      ["pmis", "count 1"],
    ],
  },
  {
    name: "pmu: AMD PerfMonV2 GLOBAL_CTL resets to all GP counters, reserved bits dropped",
    source:
      "docs/kvm-facts.md C.3 (de120e1d692d), C.4 (AMD GLOBAL_CTL reserved bits silently dropped)",
    config: AMD_V2,
    steps: [
      ["rdmsr 0xc0000301", "value 0x3f"],
      ["wrmsr 0xc0000301 0xffffffffffffffff", "ok"],
      ["rdmsr 0xc0000301", "value 0x3f"],
      ["wrmsr 0xc0000301 0x700000001", "ok"],
      ["rdmsr 0xc0000301", "value 0x1"],
    ],
  },
  {
    name: "pmu: AMD PerfMonV2 GLOBAL_CTL gates counting",
    source: "docs/kvm-facts.md C.4, C.5 (pmc_is_globally_enabled with PerfMonV2)",
    config: AMD_V2,
    steps: [
      ["wrmsr 0xc0010200 0x4300c0", "ok"],
      ["wrmsr 0xc0000301 0x3e", "ok"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["rdmsr 0xc0010201", "value 0x0"],
      ["wrmsr 0xc0000301 0x1", "ok"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["rdmsr 0xc0010201", "value 0x5"],
    ],
  },
  {
    name: "pmu: AMD GLOBAL_STATUS ignores writes and STATUS_CLR clears it, reading 0",
    source: "docs/kvm-facts.md C.4 (AMD STATUS guest write ignored; STATUS_CLR clears, reads 0)",
    config: AMD_V2,
    steps: [
      ["wrmsr 0xc001020a 0x4300c0", "ok"],
      ["wrmsr 0xc001020b 0xffffffffffff", "ok"],
      ["events 0xc0 umask=0x0 count=1", "ok"],
      ["rdmsr 0xc0000300", "value 0x20"],
      ["pmis", "count 0"],
      ["wrmsr 0xc0000300 0x0", "ok"],
      ["rdmsr 0xc0000300", "value 0x20"],
      ["wrmsr 0xc0000302 0xffffffffffffffff", "ok"],
      ["rdmsr 0xc0000302", "value 0x0"],
      ["rdmsr 0xc0000300", "value 0x0"],
    ],
  },
  {
    name: "pmu: AMD PERF_CNTR_GLOBAL_STATUS_SET #GPs (not emulated before 2025)",
    source: "docs/kvm-facts.md C.1 (STATUS_SET emulation added 2025, 68e61f6fd656; pinned ~v6.10)",
    config: AMD_V2,
    steps: [
      ["wrmsr 0xc0000303 0x1", "gp"],
      ["rdmsr 0xc0000303", "gp"],
      ["rdmsr 0xc0000300", "value 0x0"],
    ],
  },
  {
    name: "pmu: an AMD vPMU leaves the Intel P6 MSRs to x86.c; other Intel PMU MSRs #GP",
    source: "x86.c MSR_P6_* fallback (measured: docs/measurements.md); docs/kvm-facts.md C.1",
    config: AMD_V2,
    steps: [
      ["wrmsr 0x186 0x4300c0", "ok"],
      ["rdmsr 0x186", "value 0x0"],
      ["rdmsr 0xc1", "value 0x0"],
      ["rdmsr 0xc3", "gp"],
      ["rdmsr 0x4c1", "gp"],
      ["rdmsr 0x309", "gp"],
    ],
  },
  {
    name: "pmu: on an AMD PerfMonV2 guest KVM also accepts Intel's GLOBAL_STATUS/CTRL/OVF_CTRL",
    source: "pmu.c v6.10 kvm_pmu_is_valid_msr (kvm_pmu_has_perf_global_ctrl is version > 1 " +
      "for both vendors) and kvm_pmu_get/set_msr",
    config: AMD_V2,
    steps: [
      ["rdmsr 0x38f", "value 0x3f"],
      ["wrmsr 0x38f 0x1", "ok"],
      ["rdmsr 0xc0000301", "value 0x1"],
      ["wrmsr 0x38f 0x100", "gp"],
      ["wrmsr 0xc0000301 0x100", "ok"],
      ["rdmsr 0x38f", "value 0x0"],
      ["wrmsr 0x38e 0x0", "gp"],
      ["rdmsr 0x390", "value 0x0"],
      ["wrmsr 0x390 0x1", "ok"],
      ["wrmsr 0x390 0x100", "gp"],
    ],
  },
  {
    name: "pmu: an AMD version 1 guest has no Intel global MSRs",
    source: "pmu.c v6.10 kvm_pmu_is_valid_msr (version > 1 only)",
    config: AMD_V1_CORE,
    steps: [["rdmsr 0x38f", "gp"], ["wrmsr 0x390 0x0", "gp"]],
  },
  {
    name: "pmu: with no vPMU (kvm_pvm) K7 and P6 MSRs read 0, the rest and RDPMC #GP",
    source:
      "docs/measurements.md (measured on this machine); docs/kvm-facts.md C.6 (version 0 => #GP)",
    config: AMD_V0,
    steps: [
      ["wrmsr 0xc0010000 0x4300c0", "ok"],
      ["rdmsr 0xc0010000", "value 0x0"],
      ["wrmsr 0xc0010004 0x1234", "ok"],
      ["rdmsr 0xc0010004", "value 0x0"],
      ["rdmsr 0xc0010003", "value 0x0"],
      ["rdmsr 0xc0010007", "value 0x0"],
      ["rdmsr 0xc1", "value 0x0"],
      ["rdmsr 0xc2", "value 0x0"],
      ["rdmsr 0x186", "value 0x0"],
      ["rdmsr 0x187", "value 0x0"],
      ["rdmsr 0xc0010200", "gp"],
      ["rdmsr 0xc0000301", "gp"],
      ["rdmsr 0x38f", "gp"],
      ["rdmsr 0xc3", "gp"],
      ["rdpmc 0x0", "gp"],
      ["ctl pce=1", "ok"],
      ["rdpmc 0x0 user", "gp"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["pmis", "count 0"],
    ],
  },
  ...([1, 2] as const).map((version): ConformanceCase => ({
    name: `pmu: an AMD version ${version} vPMU without GP counters #GPs its K7 MSRs`,
    source: "svm/pmu.c v6.10 amd_is_valid_msr (K7 MSRs valid when version > 0), " +
      "amd_pmu_get/set_msr (no counter => 1 => #GP); x86.c falls back only for invalid MSRs",
    config: amd(version, 0),
    steps: [
      ["rdmsr 0xc0010004", "gp"],
      ["rdmsr 0xc0010000", "gp"],
      ["rdmsr 0xc0010007", "gp"],
      ["wrmsr 0xc0010000 0x4300c0", "gp"],
      ["wrmsr 0xc0010004 0x1", "gp"],
      ["rdmsr 0xc0010200", "gp"],
      ["rdpmc 0x0", "gp"],
    ],
  })),
];

const filterCases: ConformanceCase[] = [
  {
    name: "filter: a deny-list holding the event stops the GP counter",
    source: "docs/kvm-facts.md C.7, C.8 (deny-list containing the event => zero)",
    config: INTEL_V2,
    steps: [
      ["filter deny 0xc0", "errno 0"],
      ["wrmsr 0x186 0x4300c0", "ok"],
      ["wrmsr 0x187 0x4300c4", "ok"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["events 0xc4 umask=0x0 count=6", "ok"],
      ["rdmsr 0xc1", "value 0x0"],
      ["rdmsr 0xc2", "value 0x6"],
    ],
  },
  {
    name: "filter: an allow-list counts listed events only",
    source: "docs/kvm-facts.md C.7, C.8 (allow-list containing => counts, not containing => zero)",
    config: INTEL_V2,
    steps: [
      ["filter allow 0xc4", "errno 0"],
      ["wrmsr 0x186 0x4300c0", "ok"],
      ["wrmsr 0x187 0x4300c4", "ok"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["events 0xc4 umask=0x0 count=6", "ok"],
      ["rdmsr 0xc1", "value 0x0"],
      ["rdmsr 0xc2", "value 0x6"],
    ],
  },
  {
    name: "filter: an empty allow-list stops every counter, an empty deny-list none",
    source: "docs/kvm-facts.md C.7 (not in includes => allowed iff DENY; bitmap decides fixed)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x38f 0x10000000f", "ok"],
      ["wrmsr 0x38d 0x3", "ok"],
      ["wrmsr 0x186 0x4300c0", "ok"],
      ["filter allow", "errno 0"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["rdmsr 0xc1", "value 0x0"],
      ["rdmsr 0x309", "value 0x0"],
      ["filter deny", "errno 0"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["rdmsr 0xc1", "value 0x5"],
      ["rdmsr 0x309", "value 0x5"],
    ],
  },
  {
    name: "filter: a filter takes effect for counting after it is set, counts so far stay",
    source: "docs/kvm-facts.md C.7 (filter replaces the old one and reprograms every counter)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x186 0x4300c0", "ok"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["filter deny 0xc0", "errno 0"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["rdmsr 0xc1", "value 0x5"],
      ["filter deny 0xc4", "errno 0"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["rdmsr 0xc1", "value 0xa"],
    ],
  },
  {
    name: "filter: a legacy entry matches the umask exactly",
    source: "docs/kvm-facts.md C.7 (legacy entries get mask 0xFF: exact umask match)",
    config: INTEL_V2,
    steps: [
      ["filter deny 0x1c4", "errno 0"],
      ["wrmsr 0x186 0x4300c4", "ok"],
      ["wrmsr 0x187 0x4301c4", "ok"],
      ["events 0xc4 umask=0x0 count=3", "ok"],
      ["events 0xc4 umask=0x1 count=4", "ok"],
      ["rdmsr 0xc1", "value 0x3"],
      ["rdmsr 0xc2", "value 0x0"],
    ],
  },
  {
    name: "filter: legacy entries with bits outside event select and umask are dropped",
    source: "docs/kvm-facts.md C.7 (convert_to_masked_filter drops them silently)",
    config: INTEL_V2,
    steps: [
      ["filter deny 0x4300c0", "errno 0"],
      ["wrmsr 0x186 0x4300c0", "ok"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["rdmsr 0xc1", "value 0x5"],
      ["filter allow 0x4300c0", "errno 0"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["rdmsr 0xc1", "value 0x5"],
    ],
  },
  {
    name: "filter: an Intel legacy entry with event bits 35:32 is dropped, not truncated",
    source: "pmu.c convert_to_masked_filter (Intel EVENTSEL_EVENT = 0xFF); D.11 aa570a7481c3",
    config: INTEL_V2,
    steps: [
      ["filter deny 0x1000000c0", "errno 0"],
      ["wrmsr 0x186 0x4300c0", "ok"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["rdmsr 0xc1", "value 0x5"],
    ],
  },
  {
    name: "filter: an AMD deny of 0x1C2 does not block 0xC2, and a deny of 0xC2 not 0x1C2",
    source: "docs/kvm-facts.md C.8 (AMD deny-list of 0x1C2 must not block 0xC2); C.2",
    config: AMD_V1,
    steps: [
      ["wrmsr 0xc0010000 0x4300c2", "ok"],
      ["wrmsr 0xc0010001 0x1004300c2", "ok"],
      ["filter deny 0x1000000c2", "errno 0"],
      ["events 0xc2 umask=0x0 count=3", "ok"],
      ["events 0x1c2 umask=0x0 count=4", "ok"],
      ["rdmsr 0xc0010004", "value 0x3"],
      ["rdmsr 0xc0010005", "value 0x0"],
      ["filter deny 0xc2", "errno 0"],
      ["events 0xc2 umask=0x0 count=3", "ok"],
      ["events 0x1c2 umask=0x0 count=4", "ok"],
      ["rdmsr 0xc0010004", "value 0x3"],
      ["rdmsr 0xc0010005", "value 0x4"],
    ],
  },
  {
    name: "filter: the fixed bitmap alone decides fixed counters on a deny-list",
    source: "docs/kvm-facts.md C.7 (fixed counters decided by fixed_counter_bitmap only), D.10",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x38f 0x70000000f", "ok"],
      ["wrmsr 0x38d 0x333", "ok"],
      ["wrmsr 0x186 0x4300c0", "ok"],
      ["filter deny fixed=0x1 0x3c", "errno 0"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["events 0x3c umask=0x0 count=6", "ok"],
      ["rdmsr 0x309", "value 0x0"],
      ["rdmsr 0x30a", "value 0x6"],
      ["rdmsr 0xc1", "value 0x5"],
    ],
  },
  {
    name:
      "filter: an allow-list without the fixed bit stops the fixed counter even if its event is listed",
    source: "docs/kvm-facts.md C.7, C.8 (bitmap has priority over events[])",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x38f 0x70000000f", "ok"],
      ["wrmsr 0x38d 0x333", "ok"],
      ["wrmsr 0x186 0x4300c0", "ok"],
      ["filter allow fixed=0x2 0xc0", "errno 0"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["events 0x3c umask=0x0 count=6", "ok"],
      ["rdmsr 0x309", "value 0x0"],
      ["rdmsr 0x30a", "value 0x6"],
      ["rdmsr 0xc1", "value 0x5"],
    ],
  },
  {
    name: "filter: a deny-list listing the fixed counter's event leaves the fixed counter counting",
    source: "docs/kvm-facts.md C.7 (is_fixed_event_allowed looks at the bitmap only)",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x38f 0x100000001", "ok"],
      ["wrmsr 0x38d 0x3", "ok"],
      ["wrmsr 0x186 0x4300c0", "ok"],
      ["filter deny 0xc0", "errno 0"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["rdmsr 0x309", "value 0x5"],
      ["rdmsr 0xc1", "value 0x0"],
    ],
  },
  {
    name: "filter: masked entries include by umask mask/match and exclude",
    source: "docs/kvm-facts.md C.7 (masked entry: (umask & mask) == match; excludes win), C.8",
    config: INTEL_V2,
    steps: [
      ["wrmsr 0x186 0x4381d0", "ok"],
      ["wrmsr 0x187 0x4382d0", "ok"],
      ["wrmsr 0x188 0x4383d0", "ok"],
      // Include 0xD0 with umask bit 7 (mask 0x80, match 0x80); exclude umask 0x83.
      ["filter allow flags=0x1 0x80000000000080d0 0xff800000000083d0", "errno 0"],
      ["events 0xd0 umask=0x81 count=1", "ok"],
      ["events 0xd0 umask=0x82 count=2", "ok"],
      ["events 0xd0 umask=0x83 count=3", "ok"],
      ["rdmsr 0xc1", "value 0x1"],
      ["rdmsr 0xc2", "value 0x2"],
      ["rdmsr 0xc3", "value 0x0"],
    ],
  },
  {
    name: "filter: a masked deny entry blocks every umask it matches",
    source: "docs/kvm-facts.md C.7 (masked matching), C.8 (LS_DISPATCH masked tests on AMD)",
    config: AMD_V1,
    steps: [
      ["wrmsr 0xc0010000 0x430129", "ok"],
      ["wrmsr 0xc0010001 0x430229", "ok"],
      ["wrmsr 0xc0010002 0x430429", "ok"],
      // Deny 0x29 where umask bits 1:0 are nonzero is two entries: mask 0x1/match 0x1, mask 0x2/match 0x2.
      ["filter deny flags=0x1 0x100000000000129 0x200000000000229", "errno 0"],
      ["events 0x29 umask=0x1 count=1", "ok"],
      ["events 0x29 umask=0x2 count=2", "ok"],
      ["events 0x29 umask=0x4 count=4", "ok"],
      ["rdmsr 0xc0010004", "value 0x0"],
      ["rdmsr 0xc0010005", "value 0x0"],
      ["rdmsr 0xc0010006", "value 0x4"],
    ],
  },
  {
    name: "filter: masked entries with event bits 35:32 are EINVAL on Intel and valid on AMD",
    source: "pmu.c is_masked_filter_valid (vendor EVENTSEL_EVENT: 0xFF Intel, 0xF000000FF AMD)",
    config: INTEL_V2,
    steps: [
      ["filter allow flags=0x1 0xff000001000000c2", "errno EINVAL"],
      ["filter allow flags=0x1 0xff000000000000c2", "errno 0"],
    ],
  },
  {
    name: "filter: AMD masked entries with event bits 35:32 match 12-bit events",
    source: "pmu.c is_masked_filter_valid (AMD EVENTSEL_EVENT 0xF000000FF); docs/kvm-facts.md C.7",
    config: AMD_V1,
    steps: [
      ["filter allow flags=0x1 0xff000001000000c2", "errno 0"],
      ["wrmsr 0xc0010000 0x1004300c2", "ok"],
      ["wrmsr 0xc0010001 0x4300c2", "ok"],
      ["events 0x1c2 umask=0x0 count=3", "ok"],
      ["events 0xc2 umask=0x0 count=4", "ok"],
      ["rdmsr 0xc0010004", "value 0x3"],
      ["rdmsr 0xc0010005", "value 0x0"],
    ],
  },
  {
    name: "filter: the all-ones event is dropped without the masked flag, EINVAL with it",
    source: "docs/kvm-facts.md C.8 (all-ones event accepted without masked flag, rejected with it)",
    config: INTEL_V2,
    steps: [
      ["filter deny 0xffffffffffffffff", "errno 0"],
      ["filter deny flags=0x1 0xffffffffffffffff", "errno EINVAL"],
      ["wrmsr 0x186 0x4300ff", "ok"],
      ["events 0xff umask=0xff count=1", "ok"],
      ["events 0xff umask=0x0 count=2", "ok"],
      ["rdmsr 0xc1", "value 0x2"],
    ],
  },
  {
    name: "filter: actions other than ALLOW/DENY and unknown flags are EINVAL",
    source: "docs/kvm-facts.md C.7 (invalid action/flags => -EINVAL), C.8",
    config: INTEL_V2,
    steps: [
      ["filter action=2", "errno EINVAL"],
      ["filter action=4294967295 0xc0", "errno EINVAL"],
      ["filter deny flags=0x2", "errno EINVAL"],
      ["filter allow flags=0x80000000", "errno EINVAL"],
      ["filter action=1 flags=0x1", "errno 0"],
    ],
  },
  {
    name: "filter: more than 300 events is E2BIG, 300 are accepted",
    source: "docs/kvm-facts.md C.7 (KVM_PMU_EVENT_FILTER_MAX_EVENTS = 300 => -E2BIG)",
    config: INTEL_V2,
    steps: [
      [`filter deny ${manyEvents(301)}`, "errno E2BIG"],
      [`filter deny ${manyEvents(300)}`, "errno 0"],
      [`filter deny flags=0x1 ${manyEvents(300)}`, "errno 0"],
      [`filter allow flags=0x1 ${manyEvents(301)}`, "errno E2BIG"],
    ],
  },
  {
    name: "filter: action and flags are checked before the event count",
    source: "pmu.c kvm_vm_ioctl_set_pmu_event_filter order: action, flags, nevents, entries",
    config: INTEL_V2,
    steps: [
      [`filter action=2 ${manyEvents(301)}`, "errno EINVAL"],
      [`filter deny flags=0x2 ${manyEvents(301)}`, "errno EINVAL"],
      [`filter deny flags=0x1 ${manyEvents(300)} 0xffffffffffffffff`, "errno E2BIG"],
    ],
  },
  {
    name: "filter: a rejected filter leaves the installed one in place",
    source: "docs/kvm-facts.md C.7 (the filter is replaced only on success)",
    config: INTEL_V2,
    steps: [
      ["filter deny 0xc0", "errno 0"],
      ["filter action=2", "errno EINVAL"],
      [`filter allow ${manyEvents(301)}`, "errno E2BIG"],
      ["filter allow flags=0x1 0x10000", "errno EINVAL"],
      ["wrmsr 0x186 0x4300c0", "ok"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["rdmsr 0xc1", "value 0x0"],
    ],
  },
  {
    name: "filter: undefined fixed_counter_bitmap bits are accepted",
    source: "docs/kvm-facts.md C.8 (undefined fixed_counter_bitmap bits accepted)",
    config: INTEL_V2,
    steps: [
      ["filter allow fixed=0xffffffff", "errno 0"],
      ["filter deny fixed=0xfffffff8", "errno 0"],
    ],
  },
  {
    name: "filter: setting a filter succeeds without a vPMU",
    source: "pmu.c kvm_vm_ioctl_set_pmu_event_filter does not check enable_pmu",
    config: AMD_V0,
    steps: [
      ["filter deny 0xc0", "errno 0"],
      ["filter action=3", "errno EINVAL"],
    ],
  },
];

const tsxCases: ConformanceCase[] = [
  {
    name: "intel: with HLE/RTM IN_TX is a legal eventsel bit and IN_TXCP only on counter 2",
    source:
      "docs/kvm-facts.md C.2 (intel_pmu_refresh un-reserves IN_TX; intel_pmu_set_msr IN_TXCP)",
    config: { ...INTEL_V2, pmu: { ...INTEL_V2.pmu, tsx: true } },
    steps: [
      ["wrmsr 0x186 0x1004300c0", "ok"],
      ["wrmsr 0x186 0x2004300c0", "gp"],
      ["wrmsr 0x188 0x3004300c0", "ok"],
      ["rdmsr 0x188", "value 0x3004300c0"],
    ],
  },
  {
    name: "intel: without HLE/RTM IN_TX is reserved",
    source: "docs/kvm-facts.md C.2 (reserved_bits 0xffffffff00200000)",
    config: INTEL_V2,
    steps: [["wrmsr 0x186 0x1004300c0", "gp"]],
  },
  {
    name: "filter: IN_TXCP in the eventsel does not escape a deny list",
    source: "aa570a7481c3 (filter lookup uses only event select and umask); docs/kvm-facts.md D.11",
    config: { ...INTEL_V2, pmu: { ...INTEL_V2.pmu, tsx: true } },
    steps: [
      ["filter deny 0xc0", "errno 0"],
      ["wrmsr 0x38f 0x4", "ok"],
      ["wrmsr 0x188 0x2004300c0", "ok"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["rdmsr 0xc3", "value 0x0"],
    ],
  },
  {
    name: "intel: an IN_TX event counts nothing outside transactional regions",
    source: "Intel SDM vol. 3B 20.3.6.5 (IN_TX); the events op happens outside transactions",
    config: { ...INTEL_V2, pmu: { ...INTEL_V2.pmu, tsx: true } },
    steps: [
      ["wrmsr 0x186 0x1004300c0", "ok"],
      ["wrmsr 0x187 0x4300c0", "ok"],
      ["events 0xc0 umask=0x0 count=5", "ok"],
      ["rdmsr 0xc1", "value 0x0"],
      ["rdmsr 0xc2", "value 0x5"],
    ],
  },
];

/** Every PMU conformance case. */
export const pmuCases: ConformanceCase[] = [
  ...intelMsrCases,
  ...intelCountingCases,
  ...rdpmcCases,
  ...amdCases,
  ...filterCases,
  ...tsxCases,
].map((c) => ({ ...c, areas: ["pmu"] }));
