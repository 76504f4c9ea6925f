/**
 * @module
 * The AMD vendor ops of the core vPMU, after KVM v6.10 `svm/pmu.c`: legacy K7 MSRs, the
 * interleaved F15H PerfCtrExtCore MSRs (aliasing counters 0-3), PerfMonV2 global MSRs
 * (handled in the common core), reserved eventsel bits dropped silently, 48-bit counters,
 * RDPMC ECX = counter index. Facts: docs/kvm-facts.md C.1-C.4 and C.6.
 */
import type { PmuConfig } from "../trace/types.ts";
import {
  AMD64_NUM_COUNTERS,
  AMD64_NUM_COUNTERS_CORE,
  AMD_COUNTER_WIDTH,
  MSR_AMD64_PERF_CNTR_GLOBAL_CTL,
  MSR_AMD64_PERF_CNTR_GLOBAL_STATUS,
  MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR,
  MSR_F15H_PERF_CTL0,
  MSR_K7_EVNTSEL0,
  MSR_K7_PERFCTR0,
  RDPMC_FAST,
} from "../x86/pmu.ts";
import type { KvmPmu, PmuVendorOps } from "./pmu_state.ts";

/** MSR_F15H_PERF_CTR5, the last interleaved CTL/CTR MSR. */
const MSR_F15H_PERF_CTR5 = MSR_F15H_PERF_CTL0 + 2 * AMD64_NUM_COUNTERS_CORE - 1;
/** `reserved_bits` = 0xfffffff000280000 (bits 63:36, 21, 19), as two halves. */
const AMD_RESERVED_LO = 0x0028_0000;
const AMD_RESERVED_HI = 0xffff_fff0;

const PMU_TYPE_COUNTER = 0;
const PMU_TYPE_EVNTSEL = 1;

/** `get_gp_pmc_amd(pmu, msr, type)`: the slot, or -1. */
function getGpPmcAmd(pmu: KvmPmu, msr: number, type: number): number {
  if (pmu.version === 0) return -1;
  let idx: number;
  if (msr >= MSR_F15H_PERF_CTL0 && msr <= MSR_F15H_PERF_CTR5) {
    if (!pmu.perfctrCore) return -1;
    // CTLn (eventsel) MSRs are even, CTRn (counter) MSRs odd.
    idx = (msr - MSR_F15H_PERF_CTL0) >>> 1;
    if (((msr & 1) === 0) !== (type === PMU_TYPE_EVNTSEL)) return -1;
  } else if (msr >= MSR_K7_EVNTSEL0 && msr < MSR_K7_EVNTSEL0 + AMD64_NUM_COUNTERS) {
    if (type !== PMU_TYPE_EVNTSEL) return -1;
    idx = msr - MSR_K7_EVNTSEL0;
  } else if (msr >= MSR_K7_PERFCTR0 && msr < MSR_K7_PERFCTR0 + AMD64_NUM_COUNTERS) {
    if (type !== PMU_TYPE_COUNTER) return -1;
    idx = msr - MSR_K7_PERFCTR0;
  } else {
    return -1;
  }
  return idx < pmu.nrArchGpCounters ? idx : -1;
}

export const amdPmuOps: PmuVendorOps = {
  eventselEventHi: 0xf,

  refresh(pmu: KvmPmu, cpuid: PmuConfig): void {
    if (cpuid.version === 0) return; // enable_pmu off: the vendor refresh never runs
    // PerfCtrExtCore is what `gp: 6` means in the config (types.ts PmuConfig).
    pmu.perfctrCore = cpuid.gp === AMD64_NUM_COUNTERS_CORE;
    pmu.version = cpuid.version;
    pmu.nrArchGpCounters = Math.min(cpuid.gp, AMD64_NUM_COUNTERS_CORE);
    if (pmu.version > 1) {
      pmu.globalCtrlRsvdLo = (~((1 << pmu.nrArchGpCounters) - 1)) >>> 0;
      pmu.globalCtrlRsvdHi = 0xffff_ffff;
      pmu.globalStatusRsvdLo = pmu.globalCtrlRsvdLo;
      pmu.globalStatusRsvdHi = pmu.globalCtrlRsvdHi;
    }
    pmu.gpWidth = AMD_COUNTER_WIDTH;
    pmu.gpMod = 2 ** AMD_COUNTER_WIDTH;
    pmu.reservedLo = AMD_RESERVED_LO;
    pmu.reservedHi = AMD_RESERVED_HI;
    pmu.nrArchFixedCounters = 0;
  },

  msrIdxToPmc(pmu: KvmPmu, msr: number): number {
    const slot = getGpPmcAmd(pmu, msr, PMU_TYPE_COUNTER);
    return slot >= 0 ? slot : getGpPmcAmd(pmu, msr, PMU_TYPE_EVNTSEL);
  },

  isValidMsr(pmu: KvmPmu, msr: number): boolean {
    if (msr >= MSR_K7_EVNTSEL0 && msr < MSR_K7_PERFCTR0 + AMD64_NUM_COUNTERS) {
      return pmu.version > 0;
    }
    if (msr >= MSR_F15H_PERF_CTL0 && msr <= MSR_F15H_PERF_CTR5) return pmu.perfctrCore;
    if (
      msr === MSR_AMD64_PERF_CNTR_GLOBAL_STATUS || msr === MSR_AMD64_PERF_CNTR_GLOBAL_CTL ||
      msr === MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR
    ) {
      return pmu.version > 1;
    }
    // PerfMonV2 with more than six counters extends the CTL/CTR block.
    if (msr > MSR_F15H_PERF_CTR5 && msr < MSR_F15H_PERF_CTL0 + 2 * pmu.nrArchGpCounters) {
      return pmu.version > 1;
    }
    return this.msrIdxToPmc(pmu, msr) >= 0;
  },

  getMsr(pmu: KvmPmu, msr: number): boolean {
    let slot = getGpPmcAmd(pmu, msr, PMU_TYPE_COUNTER);
    if (slot >= 0) {
      pmu.setData(pmu.pmcReadCounter(slot));
      return true;
    }
    slot = getGpPmcAmd(pmu, msr, PMU_TYPE_EVNTSEL);
    if (slot >= 0) {
      pmu.dataLo = pmu.eventselLo[slot]!;
      pmu.dataHi = pmu.eventselHi[slot]!;
      return true;
    }
    return false;
  },

  setMsr(pmu: KvmPmu, msr: number, lo: number, hi: number): boolean {
    let slot = getGpPmcAmd(pmu, msr, PMU_TYPE_COUNTER);
    if (slot >= 0) {
      pmu.pmcWriteCounter(slot, lo, hi);
      return true;
    }
    slot = getGpPmcAmd(pmu, msr, PMU_TYPE_EVNTSEL);
    if (slot >= 0) {
      // AMD drops reserved bits silently (cb1d220da0fa), HostOnly/GuestOnly included.
      lo = (lo & ~pmu.reservedLo) >>> 0;
      hi = (hi & ~pmu.reservedHi) >>> 0;
      if (lo !== pmu.eventselLo[slot] || hi !== pmu.eventselHi[slot]) {
        pmu.eventselLo[slot] = lo;
        pmu.eventselHi[slot] = hi;
        pmu.requestCounterReprogram(slot);
      }
      return true;
    }
    return false;
  },

  rdpmcEcxToPmc(pmu: KvmPmu, ecx: number): number {
    pmu.rdpmcMask32 = false;
    if (pmu.bug["rdpmc-fast-amd"] && (ecx & RDPMC_FAST) !== 0) {
      // Before d652981db08f the "fast" bit 31 was honoured on AMD too: low 32 bits.
      pmu.rdpmcMask32 = true;
      ecx = (ecx & ~RDPMC_FAST) >>> 0;
    }
    // Before ecb490770ad4 AMD stripped bits 31:30 from the index.
    if (pmu.bug["rdpmc-amd-ignore-31-30"]) ecx = ecx & 0x3fff_ffff;
    const num = pmu.nrArchGpCounters;
    if (pmu.bug["rdpmc-index-off-by-one"] ? ecx > num : ecx >= num) return -1;
    return ecx;
  },
};
