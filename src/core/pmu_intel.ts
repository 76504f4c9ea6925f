/**
 * @module
 * The Intel vendor ops of the core vPMU, after KVM v6.10 `vmx/pmu_intel.c`: refresh from
 * CPUID.0AH, the MSR map (PERFEVTSELx, legacy PMCx with sign extension, full-width
 * A_PMCx, FIXED_CTRx, FIXED_CTR_CTRL) and RDPMC's ECX decoding (type in ECX[31:16]).
 * Facts: docs/kvm-facts.md C.1-C.3 and C.6; constants from `src/x86/pmu.ts`.
 */
import type { PmuConfig } from "../trace/types.ts";
import {
  FIXED_COUNTER_EVENTS,
  INTEL_MAX_FIXED_COUNTERS,
  INTEL_MAX_GP_COUNTERS,
  INTEL_RDPMC_INDEX_MASK,
  INTEL_RDPMC_TYPE_FIXED,
  INTEL_RDPMC_TYPE_GP,
  MSR_IA32_A_PMC0,
  MSR_IA32_FIXED_CTR0,
  MSR_IA32_FIXED_CTR_CTRL,
  MSR_IA32_PERFEVTSEL0,
  MSR_IA32_PMC0,
  RDPMC_FAST,
} from "../x86/pmu.ts";
import {
  FIXED_SLOT_BASE,
  type KvmPmu,
  type PmuVendorOps,
  SEL_HI_IN_TX,
  SEL_HI_IN_TXCP,
} from "./pmu_state.ts";

/** IA32_A_PMCx - IA32_PMCx = 0x400 (`MSR_PMC_FULL_WIDTH_BIT`). */
const FULL_WIDTH_BIT = MSR_IA32_A_PMC0 - MSR_IA32_PMC0;
/** Writable bits of one FIXED_CTR_CTRL field: OS, USR, PMI (0xb << 4i; AnyThread stays reserved). */
const FIXED_FIELD_WRITABLE = 0xb;

/** `get_gp_pmc(pmu, msr, base)`. */
function getGpPmc(pmu: KvmPmu, msr: number, base: number): number {
  const i = msr - base;
  return i >= 0 && i < pmu.nrArchGpCounters ? i : -1;
}

/** `get_fixed_pmc(pmu, msr)`. */
function getFixedPmc(pmu: KvmPmu, msr: number): number {
  const i = msr - MSR_IA32_FIXED_CTR0;
  return i >= 0 && i < pmu.nrArchFixedCounters ? FIXED_SLOT_BASE + i : -1;
}

/** `get_fw_gp_pmc`: the A_PMCx aliases exist only with PERF_CAPABILITIES.FW_WRITE. */
function getFwGpPmc(pmu: KvmPmu, msr: number): number {
  return pmu.fullWidthWrites ? getGpPmc(pmu, msr, MSR_IA32_A_PMC0) : -1;
}

/** `reprogram_fixed_counters()`: every field that changed queues its counter. */
function reprogramFixedCounters(pmu: KvmPmu, data: number): void {
  const old = pmu.fixedCtrCtrl;
  pmu.fixedCtrCtrl = data;
  for (let i = 0; i < pmu.nrArchFixedCounters; i++) {
    if (((old >>> (4 * i)) & 0xf) !== ((data >>> (4 * i)) & 0xf)) {
      pmu.requestCounterReprogram(FIXED_SLOT_BASE + i);
    }
  }
}

/** Sets the read result: a counter value below 2^48 as two halves. */
export const intelPmuOps: PmuVendorOps = {
  eventselEventHi: 0,

  refresh(pmu: KvmPmu, cpuid: PmuConfig): void {
    pmu.version = cpuid.version;
    if (pmu.version === 0) return;
    pmu.nrArchGpCounters = Math.min(cpuid.gp, INTEL_MAX_GP_COUNTERS);
    pmu.gpWidth = cpuid.gpWidth;
    pmu.gpMod = 2 ** cpuid.gpWidth;
    pmu.fullWidthWrites = cpuid.fullWidthWrites;
    if (pmu.version >= 2) {
      pmu.nrArchFixedCounters = Math.min(cpuid.fixed, INTEL_MAX_FIXED_COUNTERS);
      pmu.fixedWidth = cpuid.fixedWidth;
      pmu.fixedMod = 2 ** cpuid.fixedWidth;
      // setup_fixed_pmc_eventsel: each fixed counter carries its architectural encoding,
      // which is what kvm_pmu_trigger_event compares against.
      for (let i = 0; i < pmu.nrArchFixedCounters; i++) {
        const ev = FIXED_COUNTER_EVENTS[i]!;
        pmu.eventselLo[FIXED_SLOT_BASE + i] = ev.event | (ev.umask << 8);
      }
    }
    for (let i = 0; i < pmu.nrArchFixedCounters; i++) {
      pmu.fixedCtrCtrlRsvd = (pmu.fixedCtrCtrlRsvd & ~(FIXED_FIELD_WRITABLE << (4 * i))) >>> 0;
    }
    // global_ctrl_rsvd = ~(GP bits | fixed bits << 32); status also allows 62 and 63.
    pmu.globalCtrlRsvdLo = pmu.nrArchGpCounters === 32
      ? 0
      : (~((1 << pmu.nrArchGpCounters) - 1)) >>> 0;
    pmu.globalCtrlRsvdHi = (~((1 << pmu.nrArchFixedCounters) - 1)) >>> 0;
    pmu.globalStatusRsvdLo = pmu.globalCtrlRsvdLo;
    pmu.globalStatusRsvdHi = (pmu.globalCtrlRsvdHi & ~0xc000_0000) >>> 0;
    if (cpuid.tsx) {
      // HLE/RTM in guest CPUID: IN_TX is no longer reserved; IN_TX|IN_TXCP join raw_event_mask.
      pmu.reservedHi = (pmu.reservedHi ^ SEL_HI_IN_TX) >>> 0;
      pmu.rawEventMaskHi = SEL_HI_IN_TX | SEL_HI_IN_TXCP;
    }
  },

  msrIdxToPmc(pmu: KvmPmu, msr: number): number {
    let slot = getFixedPmc(pmu, msr);
    if (slot < 0) slot = getGpPmc(pmu, msr, MSR_IA32_PERFEVTSEL0);
    if (slot < 0) slot = getGpPmc(pmu, msr, MSR_IA32_PMC0);
    return slot;
  },

  isValidMsr(pmu: KvmPmu, msr: number): boolean {
    if (msr === MSR_IA32_FIXED_CTR_CTRL) return pmu.version > 1;
    // PEBS, DS and LBR MSRs are not exposed to the shadowfuzz guest.
    return getGpPmc(pmu, msr, MSR_IA32_PMC0) >= 0 ||
      getGpPmc(pmu, msr, MSR_IA32_PERFEVTSEL0) >= 0 || getFixedPmc(pmu, msr) >= 0 ||
      getFwGpPmc(pmu, msr) >= 0;
  },

  getMsr(pmu: KvmPmu, msr: number): boolean {
    if (msr === MSR_IA32_FIXED_CTR_CTRL) {
      pmu.dataLo = pmu.fixedCtrCtrl;
      pmu.dataHi = 0;
      return true;
    }
    let slot = getGpPmc(pmu, msr, MSR_IA32_PMC0);
    if (slot < 0) slot = getGpPmc(pmu, msr, MSR_IA32_A_PMC0);
    if (slot < 0) slot = getFixedPmc(pmu, msr);
    if (slot >= 0) {
      pmu.setData(pmu.pmcReadCounter(slot));
      return true;
    }
    slot = getGpPmc(pmu, msr, MSR_IA32_PERFEVTSEL0);
    if (slot >= 0) {
      pmu.dataLo = pmu.eventselLo[slot]!;
      pmu.dataHi = pmu.eventselHi[slot]!;
      return true;
    }
    return false;
  },

  setMsr(pmu: KvmPmu, msr: number, lo: number, hi: number): boolean {
    if (msr === MSR_IA32_FIXED_CTR_CTRL) {
      if (hi !== 0 || (lo & pmu.fixedCtrCtrlRsvd) !== 0) return false;
      if (pmu.fixedCtrCtrl !== lo) reprogramFixedCounters(pmu, lo);
      return true;
    }
    let slot = getGpPmc(pmu, msr, MSR_IA32_PMC0);
    if (slot < 0) slot = getGpPmc(pmu, msr, MSR_IA32_A_PMC0);
    if (slot >= 0) {
      const fullWidth = (msr & FULL_WIDTH_BIT) !== 0;
      // A full-width write with bits above the width #GPs; legacy writes never do.
      if (fullWidth && !pmu.bug["fullwidth-no-gp"] && hi >= pmu.gpMod / 2 ** 32) return false;
      // A guest legacy write is sign-extended from bit 31: (s64)(s32)data.
      const signExtend = fullWidth
        ? pmu.bug["fullwidth-sign-extend"]
        : !pmu.bug["legacy-no-sign-extend"];
      if (signExtend) hi = (lo & 0x8000_0000) !== 0 ? 0xffff_ffff : 0;
      pmu.pmcWriteCounter(slot, lo, hi);
      return true;
    }
    slot = getFixedPmc(pmu, msr);
    if (slot >= 0) {
      pmu.pmcWriteCounter(slot, lo, hi);
      return true;
    }
    slot = getGpPmc(pmu, msr, MSR_IA32_PERFEVTSEL0);
    if (slot >= 0) {
      let reservedHi = pmu.reservedHi;
      // IN_TXCP is legal on counter 2 only, and only when raw_event_mask has it.
      if (slot === 2 && (pmu.rawEventMaskHi & SEL_HI_IN_TXCP) !== 0) {
        reservedHi = (reservedHi ^ SEL_HI_IN_TXCP) >>> 0;
      }
      if ((lo & pmu.reservedLo) !== 0 || (hi & reservedHi) !== 0) return false;
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
    const bug = pmu.bug;
    pmu.rdpmcMask32 = false;
    if (bug["rdpmc-fast-intel"] && (ecx & RDPMC_FAST) !== 0) {
      // Before 5728a4a0ea79 bit 31 was the non-architectural "fast" flag on every PMU.
      pmu.rdpmcMask32 = true;
      ecx = (ecx & ~RDPMC_FAST) >>> 0;
    }
    let fixed: boolean;
    let index: number;
    if (bug["rdpmc-type-flag"]) {
      // Before 7a0fc734c20d: bit 30 is a "fixed" flag, bits 31:30 are stripped from the index.
      fixed = (ecx & INTEL_RDPMC_TYPE_FIXED) !== 0;
      index = ecx & 0x3fff_ffff;
    } else {
      const type = (ecx & ~INTEL_RDPMC_INDEX_MASK) >>> 0;
      if (type === INTEL_RDPMC_TYPE_FIXED) fixed = true;
      else if (type === INTEL_RDPMC_TYPE_GP) fixed = false;
      else if (bug["rdpmc-unknown-type"]) fixed = false; // before a634c76b2c1a: any type reads GP
      else return -1;
      index = ecx & INTEL_RDPMC_INDEX_MASK;
    }
    const num = fixed ? pmu.nrArchFixedCounters : pmu.nrArchGpCounters;
    if (bug["rdpmc-index-off-by-one"] ? index > num : index >= num) return -1;
    return fixed ? FIXED_SLOT_BASE + index : index;
  },
};
