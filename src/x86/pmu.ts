/**
 * @module
 * x86 performance-monitoring constants: MSR numbers, event-select bit positions,
 * reserved-bit masks, the fixed counters' architectural events, RDPMC ECX encoding and
 * the KVM_SET_PMU_EVENT_FILTER uAPI constants. Constants only (shared by every backend;
 * no logic).
 *
 * Sources: Intel SDM vol. 3B ch. 20 "Performance Monitoring" (and vol. 4 MSR tables);
 * AMD APM vol. 2 section 13.2 "Performance Counters"; KVM v6.10 `arch/x86/kvm/pmu.c`,
 * `pmu.h`, `vmx/pmu_intel.c`, `svm/pmu.c`, `x86.c`; `Documentation/virt/kvm/api.rst`;
 * docs/kvm-facts.md section C (C.1 MSRs, C.2 event select, C.3 widths, C.4 globals, C.6
 * RDPMC, C.7 filter).
 */

// ---------------------------------------------------------------------------------------
// Intel MSRs (SDM vol. 3B 20.2; docs/kvm-facts.md C.1)
// ---------------------------------------------------------------------------------------

/** IA32_PMC0 (legacy, a.k.a. MSR_P6_PERFCTR0 / MSR_IA32_PERFCTR0); PMCx = 0xC1 + x. */
export const MSR_IA32_PMC0 = 0xc1;
/** IA32_PERFEVTSEL0 (a.k.a. MSR_P6_EVNTSEL0); PERFEVTSELx = 0x186 + x. */
export const MSR_IA32_PERFEVTSEL0 = 0x186;
/**
 * IA32_A_PMC0, the full-width alias of IA32_PMC0 (KVM's `MSR_IA32_PMC0`); A_PMCx =
 * 0x4C1 + x. Exists only with IA32_PERF_CAPABILITIES.FW_WRITE (bit 13).
 */
export const MSR_IA32_A_PMC0 = 0x4c1;
/** IA32_FIXED_CTR0 (INST_RETIRED.ANY); FIXED_CTRx = 0x309 + x. */
export const MSR_IA32_FIXED_CTR0 = 0x309;
/** IA32_FIXED_CTR_CTRL: 4 control bits per fixed counter (architectural PMU v2). */
export const MSR_IA32_FIXED_CTR_CTRL = 0x38d;
/** IA32_PERF_GLOBAL_STATUS (v2): overflow bits, read-only. */
export const MSR_IA32_PERF_GLOBAL_STATUS = 0x38e;
/** IA32_PERF_GLOBAL_CTRL (v2): enable bit per counter. */
export const MSR_IA32_PERF_GLOBAL_CTRL = 0x38f;
/** IA32_PERF_GLOBAL_OVF_CTRL (v2; renamed GLOBAL_STATUS_RESET in v4): clears status bits. */
export const MSR_IA32_PERF_GLOBAL_OVF_CTRL = 0x390;
/** IA32_PERF_GLOBAL_STATUS_SET (v4 only: KVM caps the guest at v2, so it #GPs). */
export const MSR_IA32_PERF_GLOBAL_STATUS_SET = 0x391;
/** IA32_PERF_GLOBAL_INUSE (v4 only: #GPs under KVM v6.10). */
export const MSR_IA32_PERF_GLOBAL_INUSE = 0x392;
/** IA32_PERF_CAPABILITIES (SDM vol. 4 table 2-2; msr-index.h MSR_IA32_PERF_CAPABILITIES). */
export const MSR_IA32_PERF_CAPABILITIES = 0x345;

/** PERF_CAPABILITIES bits 5:0: LBR format (msr-index.h PERF_CAP_LBR_FMT). */
export const PERF_CAP_LBR_FMT = 0x3fn;
/** Bit 6: PEBS trap (PERF_CAP_PEBS_TRAP). */
export const PERF_CAP_PEBS_TRAP = 1n << 6n;
/** Bit 7: PEBS saves architectural registers (PERF_CAP_ARCH_REG). */
export const PERF_CAP_ARCH_REG = 1n << 7n;
/** Bits 11:8: PEBS record format (PERF_CAP_PEBS_FORMAT). */
export const PERF_CAP_PEBS_FORMAT = 0xf00n;
/** Bit 12: IA32_DEBUGCTL.FREEZE_WHILE_SMM is supported (SDM vol. 4 table 2-2 SMM_FREEZE). */
export const PERF_CAP_SMM_FREEZE = 1n << 12n;
/** Bit 13: full-width counter writes, the IA32_A_PMCx aliases (PERF_CAP_FW_WRITES). */
export const PERF_CAP_FW_WRITES = 1n << 13n;
/** Bit 14: adaptive PEBS, PEBS baseline (PERF_CAP_PEBS_BASELINE). */
export const PERF_CAP_PEBS_BASELINE = 1n << 14n;
/** Bit 15: PERF_METRICS (PERF_CAP_PERF_METRICS). */
export const PERF_CAP_PERF_METRICS = 1n << 15n;
/** Bit 16: PEBS output to Intel PT (PERF_CAP_PT_IDX = 16). */
export const PERF_CAP_PEBS_OUTPUT_PT = 1n << 16n;
/** Bit 17: PEBS timing info (PERF_CAP_PEBS_TIMING_INFO). */
export const PERF_CAP_PEBS_TIMING_INFO = 1n << 17n;

/**
 * The most GP counters an Intel vPMU can have: KVM_INTEL_PMC_MAX_GENERIC = 8
 * (`kvm_host.h`); the PMCx/PERFEVTSELx/A_PMCx MSR blocks are this long.
 */
export const INTEL_MAX_GP_COUNTERS = 8;
/**
 * Fixed counter MSRs the architecture defines (FIXED_CTR0..3, the fourth being
 * TOPDOWN.SLOTS). KVM v6.10 emulates at most the first three (KVM_PMC_MAX_FIXED = 3,
 * `fixed_pmc_events[]` in `pmu_intel.c`); the fourth is a known PMU MSR that #GPs.
 */
export const INTEL_ARCH_FIXED_COUNTERS = 4;
export const INTEL_MAX_FIXED_COUNTERS = 3;

// ---------------------------------------------------------------------------------------
// AMD MSRs (APM vol. 2 13.2; docs/kvm-facts.md C.1)
// ---------------------------------------------------------------------------------------

/** MSR_K7_EVNTSEL0..3 = 0xC0010000 + i (legacy PerfEvtSel0..3). */
export const MSR_K7_EVNTSEL0 = 0xc0010000;
/** MSR_K7_PERFCTR0..3 = 0xC0010004 + i (legacy PerfCtr0..3). */
export const MSR_K7_PERFCTR0 = 0xc0010004;
/** Legacy AMD counters: AMD64_NUM_COUNTERS = 4. */
export const AMD64_NUM_COUNTERS = 4;
/** MSR_F15H_PERF_CTL0 = 0xC0010200; CTLi = 0xC0010200 + 2i (PerfCtrExtCore). */
export const MSR_F15H_PERF_CTL0 = 0xc0010200;
/** MSR_F15H_PERF_CTR0 = 0xC0010201; CTRi = 0xC0010201 + 2i (PerfCtrExtCore). */
export const MSR_F15H_PERF_CTR0 = 0xc0010201;
/** PerfCtrExtCore counters: AMD64_NUM_COUNTERS_CORE = 6 (CPUID 8000_0001 ECX[23]). */
export const AMD64_NUM_COUNTERS_CORE = 6;
/** PerfMonV2 (CPUID 8000_0022 EAX[0]) PERF_CNTR_GLOBAL_STATUS: read-only, writes ignored. */
export const MSR_AMD64_PERF_CNTR_GLOBAL_STATUS = 0xc0000300;
/** PerfMonV2 PERF_CNTR_GLOBAL_CTL: enable bit per GP counter. */
export const MSR_AMD64_PERF_CNTR_GLOBAL_CTL = 0xc0000301;
/** PerfMonV2 PERF_CNTR_GLOBAL_STATUS_CLR: write 1s to clear status bits; reads 0. */
export const MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR = 0xc0000302;
/**
 * PerfMonV2 PERF_CNTR_GLOBAL_STATUS_SET. KVM emulates it only since 2025 (68e61f6fd656,
 * docs/kvm-facts.md C.1); in the pinned v6.10 it is not a valid PMU MSR, so guest access #GPs.
 */
export const MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_SET = 0xc0000303;
/** AMD counters are 48 bits wide (`svm/pmu.c`: counter_bitmask = BIT_ULL(48) - 1). */
export const AMD_COUNTER_WIDTH = 48;

// ---------------------------------------------------------------------------------------
// Legacy MSRs KVM keeps harmless without a vPMU (x86.c `kvm_{set,get}_msr_common`)
// ---------------------------------------------------------------------------------------

/**
 * MSRs that `x86.c` handles itself when they are not valid PMU MSRs for the vCPU (no
 * vPMU, the other vendor, or an Intel counter index beyond nr_gp; on an AMD vPMU every
 * K7 MSR stays valid, see `svm/pmu.c` amd_is_valid_msr): reads return 0, writes are
 * ignored, never a #GP. MSR_K7_EVNTSEL0..3, MSR_K7_PERFCTR0..3, MSR_P6_PERFCTR0..1,
 * MSR_P6_EVNTSEL0..1 (measured on this machine: docs/measurements.md).
 */
export const LEGACY_FALLBACK_MSRS: readonly number[] = [
  0xc0010000,
  0xc0010001,
  0xc0010002,
  0xc0010003,
  0xc0010004,
  0xc0010005,
  0xc0010006,
  0xc0010007,
  0xc1,
  0xc2,
  0x186,
  0x187,
];

// ---------------------------------------------------------------------------------------
// Event select (PERFEVTSELx / PerfEvtSeli) bits (SDM 20.2.1.1; APM 13.2.1; docs/kvm-facts.md C.2)
// ---------------------------------------------------------------------------------------

/** Bits 7:0: event select (ARCH_PERFMON_EVENTSEL_EVENT). */
export const EVENTSEL_EVENT = 0xffn;
/** Bits 15:8: unit mask (ARCH_PERFMON_EVENTSEL_UMASK). */
export const EVENTSEL_UMASK = 0xff00n;
export const EVENTSEL_UMASK_SHIFT = 8n;
/** Bit 16: count at CPL > 0. */
export const EVENTSEL_USR = 1n << 16n;
/** Bit 17: count at CPL 0. */
export const EVENTSEL_OS = 1n << 17n;
/** Bit 18: edge detect (ignored by event matching, docs/kvm-facts.md C.5). */
export const EVENTSEL_EDGE = 1n << 18n;
/** Bit 19: pin control (KVM ignores it; reserved on AMD). */
export const EVENTSEL_PC = 1n << 19n;
/** Bit 20: APIC interrupt (PMI) on overflow. */
export const EVENTSEL_INT = 1n << 20n;
/** Bit 21: AnyThread (v3+); KVM always keeps it reserved. */
export const EVENTSEL_ANY = 1n << 21n;
/** Bit 22: counter enable. */
export const EVENTSEL_EN = 1n << 22n;
/** Bit 23: invert counter mask. */
export const EVENTSEL_INV = 1n << 23n;
/** Bits 31:24: counter mask. */
export const EVENTSEL_CMASK = 0xff000000n;
/** Intel bit 32: IN_TX (HSW_IN_TX), only with HLE/RTM in guest CPUID. */
export const EVENTSEL_IN_TX = 1n << 32n;
/** Intel bit 33: IN_TXCP (HSW_IN_TX_CHECKPOINTED), counter 2 only, with HLE/RTM. */
export const EVENTSEL_IN_TXCP = 1n << 33n;
/** Intel bit 34: adaptive PEBS record (perf_event.h ICL_EVENTSEL_ADAPTIVE; docs/kvm-facts.md C.2). */
export const EVENTSEL_ADAPTIVE = 1n << 34n;
/** AMD bits 35:32: event select bits 11:8 (AMD64_EVENTSEL_EVENT = 0xF000000FF). */
export const AMD_EVENTSEL_EVENT_HI = 0xf00000000n;
export const AMD_EVENTSEL_EVENT_HI_SHIFT = 32n;
/** AMD64_EVENTSEL_EVENT: the whole 12-bit AMD event select in eventsel layout. */
export const AMD_EVENTSEL_EVENT = 0xf000000ffn;
/** AMD bit 40 GuestOnly, bit 41 HostOnly (dropped by KVM v6.10: inside the reserved mask). */
export const AMD_EVENTSEL_GUESTONLY = 1n << 40n;
export const AMD_EVENTSEL_HOSTONLY = 1n << 41n;

/**
 * Intel eventsel reserved bits as KVM sets them at refresh: bits 63:32 and 21
 * (`pmu->reserved_bits = 0xffffffff00200000` in `kvm_pmu_refresh`/`intel_pmu_refresh`).
 * IN_TX/IN_TXCP would be un-reserved only with HLE/RTM in guest CPUID and ADAPTIVE only
 * with PEBS baseline; the shadowfuzz guest has neither, so they stay reserved. A guest
 * write with any of these bits #GPs (docs/kvm-facts.md C.2).
 */
export const INTEL_EVENTSEL_RESERVED = 0xffffffff00200000n;
/**
 * AMD eventsel reserved bits: 63:36, 21 and 19 (`amd_pmu_refresh`:
 * `reserved_bits = 0xfffffff000280000`, cb1d220da0fa). Writes drop them silently.
 */
export const AMD_EVENTSEL_RESERVED = 0xfffffff000280000n;

// ---------------------------------------------------------------------------------------
// Fixed counters (SDM 20.2.2; docs/kvm-facts.md C.1, C.2)
// ---------------------------------------------------------------------------------------

/** IA32_FIXED_CTR_CTRL field of fixed counter i: 4 bits at 4i. */
export const FIXED_CTRL_FIELD_BITS = 4n;
/** Field bit 0: count at CPL 0. */
export const FIXED_CTRL_OS = 0x1n;
/** Field bit 1: count at CPL > 0. */
export const FIXED_CTRL_USR = 0x2n;
/** Field bit 2: AnyThread (v3+): reserved in KVM. */
export const FIXED_CTRL_ANY = 0x4n;
/** Field bit 3: PMI on overflow. */
export const FIXED_CTRL_PMI = 0x8n;
/**
 * The writable bits of one field: OS, USR and PMI (KVM clears `0xb << 4i` from the
 * reserved mask for each supported fixed counter, `intel_pmu_refresh`).
 */
export const FIXED_CTRL_WRITABLE = 0xbn;

/** An (event select, unit mask) pair. */
export interface EventCode {
  readonly event: number;
  readonly umask: number;
}

/**
 * The architectural event each fixed counter counts (`fixed_pmc_events[]` and
 * `intel_arch_events[]` in `pmu_intel.c`; SDM table 20-2): 0 = INST_RETIRED.ANY
 * (0xC0/0x00), 1 = CPU_CLK_UNHALTED.CORE (0x3C/0x00), 2 = CPU_CLK_UNHALTED.REF_TSC,
 * which has no GP encoding and uses KVM's pseudo-encoding 0x00/0x03.
 */
export const FIXED_COUNTER_EVENTS: readonly EventCode[] = [
  { event: 0xc0, umask: 0x00 },
  { event: 0x3c, umask: 0x00 },
  { event: 0x00, umask: 0x03 },
];

// ---------------------------------------------------------------------------------------
// Global control/status (SDM 20.2.2; docs/kvm-facts.md C.4)
// ---------------------------------------------------------------------------------------

/** Counter index space: GP i is bit i, fixed i is bit 32 + i (KVM_FIXED_PMC_BASE_IDX). */
export const FIXED_PMC_BASE_IDX = 32n;
/** GLOBAL_STATUS bit 62 OvfBuf (DS buffer) is not reserved in GLOBAL_OVF_CTRL. */
export const GLOBAL_STATUS_OVF_BUF = 1n << 62n;
/** GLOBAL_STATUS bit 63 CondChgd is not reserved in GLOBAL_OVF_CTRL. */
export const GLOBAL_STATUS_COND_CHGD = 1n << 63n;
/**
 * The other GLOBAL_STATUS bits of later PMU versions (SDM vol. 3B ch. 20, the
 * IA32_PERF_GLOBAL_STATUS layouts of versions 4 and 5; Linux `perf_event.h`
 * GLOBAL_STATUS_*): 48 PERF_METRICS_OVF, 55 TRACE_TOPAPMI (Intel PT ToPA PMI), 58
 * LBRS_FROZEN, 59 COUNTERS_FROZEN, 60 ASIF (ASCI), 61 UNC_OVF (uncore). Named for
 * display; a v2 vPMU has none of them.
 */
export const GLOBAL_STATUS_PERF_METRICS_OVF = 1n << 48n;
export const GLOBAL_STATUS_TRACE_TOPAPMI = 1n << 55n;
export const GLOBAL_STATUS_LBRS_FROZEN = 1n << 58n;
export const GLOBAL_STATUS_COUNTERS_FROZEN = 1n << 59n;
export const GLOBAL_STATUS_ASIF = 1n << 60n;
export const GLOBAL_STATUS_UNC_OVF = 1n << 61n;
/** GLOBAL_CTRL bit 48: enables PERF_METRICS (perf_event.h GLOBAL_CTRL_EN_PERF_METRICS). */
export const GLOBAL_CTRL_EN_PERF_METRICS = 1n << 48n;

// ---------------------------------------------------------------------------------------
// RDPMC ECX (SDM RDPMC; docs/kvm-facts.md C.6)
// ---------------------------------------------------------------------------------------

/** Intel: ECX[15:0] is the counter index (INTEL_RDPMC_INDEX_MASK). */
export const INTEL_RDPMC_INDEX_MASK = 0xffff;
/** Intel: ECX[31:16] is the counter type; 0 = GP. */
export const INTEL_RDPMC_TYPE_GP = 0x0000_0000;
/** Intel: type 0x4000 (ECX bit 30) = fixed (INTEL_RDPMC_FIXED), a value, not a flag. */
export const INTEL_RDPMC_TYPE_FIXED = 0x4000_0000;
/** Bit 31: the non-architectural "fast" read: #GP for architectural PMUs (5728a4a0ea79). */
export const RDPMC_FAST = 0x8000_0000;

// ---------------------------------------------------------------------------------------
// KVM_SET_PMU_EVENT_FILTER uAPI (api.rst; docs/kvm-facts.md C.7). The actions FILTER_ALLOW and
// FILTER_DENY live in `trace/types.ts` with the FilterOp they describe.
// ---------------------------------------------------------------------------------------

/** KVM_PMU_EVENT_FILTER_MAX_EVENTS (`pmu.c`): more events is E2BIG. */
export const FILTER_MAX_EVENTS = 300;
/** KVM_PMU_EVENT_FLAG_MASKED_EVENTS = BIT(0) (v6.3, KVM_CAP_PMU_EVENT_MASKED_EVENTS). */
export const FILTER_FLAG_MASKED_EVENTS = 0x1;
/** KVM_PMU_EVENT_FLAGS_VALID_MASK: any other flag is EINVAL. */
export const FILTER_FLAGS_VALID_MASK = FILTER_FLAG_MASKED_EVENTS;
/**
 * Masked entry (KVM_PMU_ENCODE_MASKED_ENTRY): event select 7:0 at 7:0 and 11:8 at
 * 35:32 (KVM_PMU_MASKED_ENTRY_EVENT_SELECT), match 15:8, exclude bit 55, mask 63:56.
 */
export const MASKED_ENTRY_EVENT_SELECT = 0xf000000ffn;
export const MASKED_ENTRY_UMASK_MATCH = 0xff00n;
export const MASKED_ENTRY_UMASK_MATCH_SHIFT = 8n;
export const MASKED_ENTRY_EXCLUDE = 1n << 55n;
export const MASKED_ENTRY_UMASK_MASK = 0xff00000000000000n;
export const MASKED_ENTRY_UMASK_MASK_SHIFT = 56n;
