/**
 * @module
 * The core's `struct kvm_pmu` / `struct kvm_pmc` (KVM v6.10 `kvm_host.h`) in typed arrays,
 * with the inline helpers of `pmu.h`/`pmu.c` that touch one counter (read, write, pause,
 * sample period) and a model of the host `perf_event` that backs each vPMC.
 *
 * Counter slots: GP counter i is slot i (0..7), fixed counter i is slot 8 + i. KVM's
 * global index space (GP i = bit i, fixed i = bit 32 + i, `KVM_FIXED_PMC_BASE_IDX`) is
 * kept for every 64-bit bitmap (`reprogram_pmi`, `global_ctrl`, `global_status`) as two
 * 32-bit halves: the low half holds GP bits, the high half fixed bits. As in KVM's struct,
 * the fixed counters sit right after the GP counters (an out-of-bounds GP index lands on
 * fixed counter 0, which the off-by-one RDPMC mutant relies on).
 *
 * Counter values are float64 numbers: widths are 32..48 bits (trace rules), so every
 * value and every sum below 2^53 is exact, and the hot paths never touch a bigint.
 */
import type { PmuConfig } from "../trace/types.ts";
import type { BugFlags } from "./bugs.ts";

/** GP counter slots: KVM_MAX_NR_GP_COUNTERS (Intel KVM_INTEL_PMC_MAX_GENERIC = 8). */
export const GP_SLOTS = 8;
/** Fixed counter slots: KVM_MAX_NR_FIXED_COUNTERS = 3 (`fixed_pmc_events[]`). */
export const FIXED_SLOTS = 3;
/** Slot of fixed counter 0. */
export const FIXED_SLOT_BASE = GP_SLOTS;
export const NR_SLOTS = GP_SLOTS + FIXED_SLOTS;

export const TWO32 = 2 ** 32;

/** Eventsel low-half bits (SDM 20.2.1.1; `perf_event.h` ARCH_PERFMON_EVENTSEL_*). */
export const SEL_USR = 1 << 16;
export const SEL_OS = 1 << 17;
export const SEL_INT = 1 << 20;
export const SEL_EN = 1 << 22;
/** Eventsel high-half bits: Intel IN_TX (32), IN_TXCP (33). */
export const SEL_HI_IN_TX = 1 << 0;
export const SEL_HI_IN_TXCP = 1 << 1;

/** True if `slot`'s bit is set in a (lo = GP, hi = fixed) bitmap. */
export function testSlot(lo: number, hi: number, slot: number): boolean {
  return slot < FIXED_SLOT_BASE
    ? ((lo >>> slot) & 1) !== 0
    : ((hi >>> (slot - FIXED_SLOT_BASE)) & 1) !== 0;
}

/**
 * struct kvm_pmu plus its vPMCs. Fields keep KVM's names (camel-cased) so a KVM engineer
 * finds their way; 64-bit fields are split into `Lo`/`Hi` u32 halves.
 */
export class KvmPmu {
  readonly isAmd: boolean;
  /** The injected bugs (the catalogue's PMU names are read here). */
  readonly bug: BugFlags;
  /** The pmc-write-period-from-offset correction is on (`deviations.ts`). */
  fixWritePeriod = false;

  version = 0;
  nrArchGpCounters = 0;
  nrArchFixedCounters = 0;
  /** Counter widths and `counter_bitmask[type] + 1`. */
  gpWidth = 48;
  fixedWidth = 48;
  gpMod = 2 ** 48;
  fixedMod = 2 ** 48;
  /** `reserved_bits` (eventsel), refreshed per vendor. */
  reservedLo = 0x0020_0000;
  reservedHi = 0xffff_ffff;
  /** High half of `raw_event_mask`: IN_TX|IN_TXCP when the guest has HLE/RTM. */
  rawEventMaskHi = 0;
  globalCtrlRsvdLo = 0xffff_ffff;
  globalCtrlRsvdHi = 0xffff_ffff;
  globalStatusRsvdLo = 0xffff_ffff;
  globalStatusRsvdHi = 0xffff_ffff;
  /** Low half of `fixed_ctr_ctrl_rsvd`; the high half is always reserved. */
  fixedCtrCtrlRsvd = 0xffff_ffff;
  fixedCtrCtrl = 0;
  globalCtrlLo = 0;
  globalCtrlHi = 0;
  globalStatusLo = 0;
  globalStatusHi = 0;
  /** `reprogram_pmi` (KVM_REQ_PMU work list). */
  reprogramLo = 0;
  reprogramHi = 0;
  /** Pending vCPU requests KVM_REQ_PMU and KVM_REQ_PMI. */
  reqPmu = false;
  reqPmi = false;
  /** PMIs delivered through LVTPC since the last `pmis` op. */
  pmisDelivered = 0;
  /** Guest CPUID: PerfCtrExtCore (AMD F15H MSRs) and PERF_CAPABILITIES.FW_WRITE (Intel). */
  perfctrCore = false;
  fullWidthWrites = false;

  /** kvm_pmc fields. `counterHigh` holds bits above the width (only the write-no-truncate mutant sets it). */
  readonly counter = new Float64Array(NR_SLOTS);
  readonly counterHigh = new Float64Array(NR_SLOTS);
  readonly emulatedCounter = new Float64Array(NR_SLOTS);
  readonly eventselLo = new Uint32Array(NR_SLOTS);
  readonly eventselHi = new Uint32Array(NR_SLOTS);
  readonly currentConfigLo = new Uint32Array(NR_SLOTS);
  readonly currentConfigHi = new Uint32Array(NR_SLOTS);
  readonly intr = new Uint8Array(NR_SLOTS);
  readonly isPaused = new Uint8Array(NR_SLOTS);

  /**
   * The host perf_event of each vPMC (`pmc->perf_event`): whether it exists, its count
   * since the last pause/reset, events left until its sampling overflow, its sample
   * period (0 = not a sampling event), what it counts (event key = event[7:0] |
   * umask << 8 | event[11:8] << 16) and the exclude_user / exclude_kernel attributes.
   */
  readonly perfExists = new Uint8Array(NR_SLOTS);
  readonly perfCount = new Float64Array(NR_SLOTS);
  readonly perfLeft = new Float64Array(NR_SLOTS);
  readonly perfPeriod = new Float64Array(NR_SLOTS);
  readonly perfKey = new Float64Array(NR_SLOTS);
  readonly perfExcludeUser = new Uint8Array(NR_SLOTS);
  readonly perfExcludeKernel = new Uint8Array(NR_SLOTS);

  /** `msr_info->data` out-parameter of the get_msr paths (two u32 halves). */
  dataLo = 0;
  dataHi = 0;

  /** Puts a counter value (below 2^53) into `dataLo`/`dataHi` for an RDMSR result. */
  setData(value: number): void {
    this.dataHi = Math.floor(value / 2 ** 32);
    this.dataLo = value - this.dataHi * 2 ** 32;
  }
  /** Out-parameter of rdpmc_ecx_to_pmc: the "fast" read returns the low 32 bits. */
  rdpmcMask32 = false;

  constructor(isAmd: boolean, bug: BugFlags) {
    this.isAmd = isAmd;
    this.bug = bug;
  }

  /** `pmc_bitmask(pmc) + 1`. */
  modOf(slot: number): number {
    return slot < FIXED_SLOT_BASE ? this.gpMod : this.fixedMod;
  }

  widthOf(slot: number): number {
    return slot < FIXED_SLOT_BASE ? this.gpWidth : this.fixedWidth;
  }

  /** `kvm_pmc_idx_to_pmc() != NULL`: the slot is a counter this vPMU has. */
  isValidSlot(slot: number): boolean {
    return slot < FIXED_SLOT_BASE
      ? slot < this.nrArchGpCounters
      : slot - FIXED_SLOT_BASE < this.nrArchFixedCounters;
  }

  /** `get_sample_period()`: events until the counter wraps; a full period at 0. */
  getSamplePeriod(counterValue: number, mod: number): number {
    const period = (mod - counterValue) % mod;
    return period === 0 ? mod : period;
  }

  /** `pmc_read_counter()`: counter + emulated_counter + running perf count, masked. */
  pmcReadCounter(slot: number): number {
    let value = this.counter[slot]! + this.emulatedCounter[slot]!;
    if (this.perfExists[slot] && !this.isPaused[slot]) value += this.perfCount[slot]!;
    return value % this.modOf(slot);
  }

  /**
   * `pmc_write_counter()`: drop the pending emulated count and offset `counter` so that
   * counter + perf count reads back as the value; truncate to the width (b29a2acd36dd;
   * the write-no-truncate mutant keeps the bits above it in `counterHigh`); then
   * `pmc_update_sample_period()`. The value arrives as two u32 halves.
   */
  pmcWriteCounter(slot: number, lo: number, hi: number): void {
    this.emulatedCounter[slot] = 0;
    const mod = this.modOf(slot);
    const hiBits = this.widthOf(slot) - 32; // bits of `hi` inside the width (0..16)
    const hiScale = 2 ** hiBits;
    const valueLow = (hi % hiScale) * TWO32 + lo;
    const sum = this.counter[slot]! + valueLow - this.pmcReadCounter(slot);
    if (this.bug["write-no-truncate"]) {
      // The raw u64 keeps hi's bits above the width plus the carry of the low sum.
      const highMod = 2 ** (64 - this.widthOf(slot));
      const high = this.counterHigh[slot]! + Math.floor(hi / hiScale) + Math.floor(sum / mod);
      this.counterHigh[slot] = ((high % highMod) + highMod) % highMod;
    }
    this.counter[slot] = ((sum % mod) + mod) % mod;
    this.pmcUpdateSamplePeriod(slot);
  }

  /**
   * `pmc_update_sample_period()`: a running sampling event gets the period computed from
   * `pmc->counter` (not from counter + perf count: KVM v6.10 does exactly this).
   */
  pmcUpdateSamplePeriod(slot: number): void {
    if (!this.perfExists[slot] || this.isPaused[slot] || this.perfPeriod[slot] === 0) return;
    // The pmc-write-period-from-offset correction (deviations.ts) counts the period from
    // the value the guest reads back.
    const value = this.fixWritePeriod ? this.pmcReadCounter(slot) : this.counter[slot]!;
    this.perfSetPeriod(slot, this.getSamplePeriod(value, this.modOf(slot)));
  }

  /**
   * `pmc_pause_counter()`: fold the perf count and the emulated count into `counter` and
   * report whether the emulated events wrapped it (new < prev, prev taken after the perf
   * count). The write-no-truncate mutant compares against the raw, untruncated counter
   * (as `kvm_pmu_incr_counter` did before b29a2acd36dd / fd89499a5151).
   */
  pmcPauseCounter(slot: number): boolean {
    let value = this.counter[slot]!;
    if (this.perfExists[slot] && !this.isPaused[slot]) value += this.perfPause(slot);
    const mod = this.modOf(slot);
    const prev = value % mod;
    let prevAboveWidth = false;
    const high = this.counterHigh[slot]!;
    if (high !== 0) {
      // raw = high * mod + value; it exceeds any masked value unless the u64 wrapped.
      const highMod = 2 ** (64 - this.widthOf(slot));
      prevAboveWidth = high + Math.floor(value / mod) < highMod;
      this.counterHigh[slot] = 0;
    }
    const next = (prev + this.emulatedCounter[slot]!) % mod;
    this.counter[slot] = next;
    this.emulatedCounter[slot] = 0;
    this.isPaused[slot] = 1;
    return prevAboveWidth || next < prev;
  }

  /** `kvm_pmu_request_counter_reprogram()`. */
  requestCounterReprogram(slot: number): void {
    if (slot < FIXED_SLOT_BASE) this.reprogramLo = (this.reprogramLo | (1 << slot)) >>> 0;
    else this.reprogramHi = (this.reprogramHi | (1 << (slot - FIXED_SLOT_BASE))) >>> 0;
    this.reqPmu = true;
  }

  /** `reprogram_counters(pmu, diff)`. */
  reprogramCounters(diffLo: number, diffHi: number): void {
    if (diffLo === 0 && diffHi === 0) return;
    this.reprogramLo = (this.reprogramLo | diffLo) >>> 0;
    this.reprogramHi = (this.reprogramHi | diffHi) >>> 0;
    this.reqPmu = true;
  }

  /** `__kvm_perf_overflow()`: GLOBAL_STATUS bit, and a PMI request if `pmc->intr`. */
  kvmPerfOverflow(slot: number): void {
    if (slot < FIXED_SLOT_BASE) this.globalStatusLo = (this.globalStatusLo | (1 << slot)) >>> 0;
    else this.globalStatusHi = (this.globalStatusHi | (1 << (slot - FIXED_SLOT_BASE))) >>> 0;
    if (this.intr[slot]) this.reqPmi = true;
  }

  /**
   * `kvm_perf_overflow()`, the perf overflow handler: ignored if the counter is already
   * queued for reprogramming; else queue it, report the overflow and request KVM_REQ_PMU.
   * Returns whether it was taken.
   */
  perfOverflowHandler(slot: number): boolean {
    if (testSlot(this.reprogramLo, this.reprogramHi, slot)) return false;
    this.requestCounterReprogram(slot);
    this.kvmPerfOverflow(slot);
    return true;
  }

  // --- the host perf_event model -------------------------------------------------------

  /** `perf_event_create_kernel_counter()` with `sample_period` (0 = counting only). */
  perfCreate(
    slot: number,
    key: number,
    excludeUser: boolean,
    excludeKernel: boolean,
    samplePeriod: number,
  ): void {
    this.perfExists[slot] = 1;
    this.perfCount[slot] = 0;
    this.perfKey[slot] = key;
    this.perfExcludeUser[slot] = excludeUser ? 1 : 0;
    this.perfExcludeKernel[slot] = excludeKernel ? 1 : 0;
    this.perfPeriod[slot] = samplePeriod;
    this.perfLeft[slot] = samplePeriod;
  }

  /** `perf_event_pause(event, true)`: returns the count and resets it. */
  perfPause(slot: number): number {
    const count = this.perfCount[slot]!;
    this.perfCount[slot] = 0;
    return count;
  }

  /** `perf_event_period()`: a new period, counted from now. */
  perfSetPeriod(slot: number, period: number): void {
    this.perfPeriod[slot] = period;
    this.perfLeft[slot] = period;
  }

  /** `perf_event_release_kernel()`. */
  perfRelease(slot: number): void {
    this.perfExists[slot] = 0;
    this.perfCount[slot] = 0;
  }

  /**
   * `n` occurrences counted by a running perf event. A sampling event overflows when its
   * period runs out (then reloads the same period); the overflow handler runs once.
   * Returns whether the handler queued an overflow.
   */
  perfCountEvents(slot: number, n: number): boolean {
    const period = this.perfPeriod[slot]!;
    if (period === 0) {
      // A counting-only event never interrupts; keep the count bounded (reads are modular).
      this.perfCount[slot] = (this.perfCount[slot]! + n) % this.modOf(slot);
      return false;
    }
    this.perfCount[slot] = this.perfCount[slot]! + n;
    const left = this.perfLeft[slot]! - n;
    if (left > 0) {
      this.perfLeft[slot] = left;
      return false;
    }
    this.perfLeft[slot] = period - ((-left) % period);
    return this.perfOverflowHandler(slot);
  }
}

/**
 * The vendor half (`struct kvm_pmu_ops`: `vmx/pmu_intel.c`, `svm/pmu.c`). Values travel
 * as u32 halves; get_msr leaves its result in `pmu.dataLo`/`dataHi`.
 */
export interface PmuVendorOps {
  /** `EVENTSEL_EVENT` bits 35:32 as a nibble: Intel 0, AMD 0xf (AMD64_EVENTSEL_EVENT). */
  readonly eventselEventHi: number;
  /**
   * The vendor `refresh` for the guest CPUID and PERF_CAPABILITIES the config's `pmu`
   * describes (`tsx` already false on AMD, where the vendor refresh does not read it).
   */
  refresh(pmu: KvmPmu, cpuid: PmuConfig): void;
  /** `msr_idx_to_pmc`: the slot, or -1. */
  msrIdxToPmc(pmu: KvmPmu, msr: number): number;
  isValidMsr(pmu: KvmPmu, msr: number): boolean;
  /** `get_msr`: false is KVM's `return 1`. */
  getMsr(pmu: KvmPmu, msr: number): boolean;
  /** `set_msr`: false is KVM's `return 1`. */
  setMsr(pmu: KvmPmu, msr: number, lo: number, hi: number): boolean;
  /**
   * `rdpmc_ecx_to_pmc`: the slot (possibly past the last counter for the off-by-one
   * mutant), or -1. Sets `pmu.rdpmcMask32` when the read is truncated to 32 bits.
   */
  rdpmcEcxToPmc(pmu: KvmPmu, ecx: number): number;
}
