/**
 * @module
 * The core's vPMU: KVM v6.10's common PMU machinery (`arch/x86/kvm/pmu.c`) over one of
 * two vendor ops (`pmu_intel.ts`, `pmu_amd.ts`), plus the slice of `x86.c` that routes
 * MSRs to it. It carries the mechanisms where KVM's PMU bugs live:
 *
 * - `reprogram_pmi` + KVM_REQ_PMU: MSR writes and filter changes only *queue* counters;
 *   `kvm_pmu_handle_event` reprograms them on the next VM entry, which here is the start
 *   and the end of every guest op (`wrmsr`, `rdmsr`, `rdpmc`, `events`). KVM_REQ_PMI is
 *   handled after it, so every overflow of one op coalesces into one PMI.
 * - `reprogram_counter`: pause (fold the perf count and `emulated_counter`, detecting
 *   emulated overflow as new < prev), check `pmc_event_is_allowed` (global enable, local
 *   enable, event filter: the filter is consulted here, not when events happen), then
 *   resume the perf event if `current_config` still matches or recreate it.
 * - a host perf_event per vPMC with a sample period of (-counter) & mask; its overflow
 *   handler sets GLOBAL_STATUS, requests a PMI if `pmc->intr`, and queues a reprogram.
 *
 * How an `events` op reaches the counters (a modelling decision): KVM counts guest events
 * two ways. Hardware events run on the perf events created at reprogram time; and for the
 * instructions KVM emulates or skips, `kvm_pmu_trigger_event` bumps `emulated_counter` of
 * every matching, allowed counter. KVM triggers it only for its two emulated events,
 * instructions retired and branches retired (`kvm_pmu_eventsel`: Intel 0xC0/0x00 and
 * 0xC4/0x00, AMD 0xC0/0x00 and 0xC2/0x00). So an `events` op for one of those two
 * encodings is `count` instructions KVM emulated, all before one VM entry (one
 * `kvm_pmu_trigger_event` per occurrence, then one KVM_REQ_PMU pass); any other encoding
 * is `count` hardware occurrences counted by the running perf events. Both paths give the
 * architectural count when KVM is right; they differ under the injected bugs.
 */
import type { Config, EventsOp, FilterOp, Outcome } from "../trace/types.ts";
import type { BugFlags } from "./bugs.ts";
import {
  LEGACY_FALLBACK_MSRS,
  MSR_AMD64_PERF_CNTR_GLOBAL_CTL,
  MSR_AMD64_PERF_CNTR_GLOBAL_STATUS,
  MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR,
  MSR_IA32_PERF_GLOBAL_CTRL,
  MSR_IA32_PERF_GLOBAL_OVF_CTRL,
  MSR_IA32_PERF_GLOBAL_STATUS,
} from "../x86/pmu.ts";
import { amdPmuOps } from "./pmu_amd.ts";
import {
  auditPmuEventFilter,
  isFixedEventAllowed,
  isGpEventAllowed,
  type PmuEventFilter,
  preparePmuEventFilter,
} from "./pmu_filter.ts";
import { intelPmuOps } from "./pmu_intel.ts";
import {
  FIXED_SLOT_BASE,
  GP_SLOTS,
  KvmPmu,
  NR_SLOTS,
  type PmuVendorOps,
  SEL_EN,
  SEL_HI_IN_TX,
  SEL_HI_IN_TXCP,
  SEL_INT,
  SEL_OS,
  SEL_USR,
  testSlot,
} from "./pmu_state.ts";

/** Coverage points (bumped on the paths a fuzzer should reach). Order = index. */
const COV = {
  msrFallback: 0,
  msrInvalid: 1,
  msrGp: 2,
  globalCtrlWrite: 3,
  globalStatusClear: 4,
  reprogram: 5,
  reprogramDisallowed: 6,
  reprogramResume: 7,
  reprogramCreate: 8,
  emulatedOverflow: 9,
  emulatedOverflowDropped: 10,
  perfOverflow: 11,
  perfOverflowIgnored: 12,
  triggerEvent: 13,
  triggerCounted: 14,
  hardwareCounted: 15,
  pmiDelivered: 16,
  filterSet: 17,
  filterError: 18,
  filterDenyGp: 19,
  filterDenyFixed: 20,
  rdpmcValue: 21,
  rdpmcGp: 22,
  rdpmcCplGp: 23,
} as const;

/** Outcomes that carry no data are shared (the hot paths allocate nothing for them). */
const OK: Outcome = Object.freeze({ ok: true }) as Outcome;
const GP: Outcome = Object.freeze({ gp: true }) as Outcome;

/** Little-endian hosts keep the low u32 of a u64 first (checked once, not assumed). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = LITTLE_ENDIAN ? 1 : 0;

/** Overrides of the config for tests of the vPMU alone. */
export interface CorePmuOptions {
  /**
   * Guest CPUID.7.EBX HLE/RTM, instead of `config.pmu.tsx` (Intel only there): Intel
   * IN_TX/IN_TXCP become legal eventsel bits.
   */
  tsx?: boolean;
}

/** The core backend's vPMU. One per vCPU (the trace has one vCPU). */
export class CorePmu {
  static readonly COVERAGE_NAMES: readonly string[] = Object.keys(COV);
  readonly coverage: Uint32Array = new Uint32Array(Object.keys(COV).length);

  private readonly pmu: KvmPmu;
  private readonly ops: PmuVendorOps;
  /** `kvm->arch.pmu_event_filter`. */
  private filterState: PmuEventFilter | null = null;
  /** Bits 35:32 that the filter lookup treats as event select (aa570a7481c3 mutant aside). */
  private readonly filterEventHi: number;
  /** The vendor's emulated-event encodings (event | umask << 8). */
  private readonly instructionsRetired: number;
  private readonly branchesRetired: number;
  private readonly scratch64 = new BigUint64Array(1);
  private readonly scratch32 = new Uint32Array(this.scratch64.buffer);

  /** Eventsel high bits the emulated-event match compares (`pmc_is_event_match`). */
  private readonly matchEventHi: number;
  /** The in-txcp-counter-no-pmi correction is on (`deviations.ts`). */
  private readonly fixInTxcp: boolean;

  constructor(
    config: Config,
    bug: BugFlags,
    options: CorePmuOptions = {},
    fixes: ReadonlySet<string> = new Set(),
  ) {
    const isAmd = config.vendor === "amd";
    // AMD64_RAW_EVENT_MASK_NB covers eventsel bits 35:32 (AMD's event select 11:8); the
    // trigger-event-match-in-tx correction leaves Intel's IN_TXCP (33) out of the match.
    // IN_TX (32) stays in it: an IN_TX event counts only inside transactional regions
    // (SDM vol. 3B 20.3.6.5) and no instruction KVM emulates is inside one, so there
    // KVM's "no match" is what the architecture says.
    this.matchEventHi = !isAmd && fixes.has("trigger-event-match-in-tx") ? 0xd : 0xf;
    this.fixInTxcp = fixes.has("in-txcp-counter-no-pmi");

    this.pmu = new KvmPmu(isAmd, bug);
    this.pmu.fixWritePeriod = fixes.has("pmc-write-period-from-offset");
    this.ops = isAmd ? amdPmuOps : intelPmuOps;
    this.filterEventHi = !isAmd && bug["filter-mask-in-tx"] ? 0xf : this.ops.eventselEventHi;
    this.instructionsRetired = 0xc0;
    this.branchesRetired = isAmd ? 0xc2 : 0xc4;
    this.kvmPmuRefresh(config, options);
  }

  /** `kvm_pmu_refresh()` at vCPU creation: reset, vendor refresh, GLOBAL_CTRL RESET value. */
  private kvmPmuRefresh(config: Config, options: CorePmuOptions): void {
    const p = this.pmu;
    this.ops.refresh(p, {
      ...config.pmu,
      tsx: options.tsx ?? (config.vendor === "intel" && config.pmu.tsx),
    });
    // At RESET the GP enable bits of PERF_GLOBAL_CTRL are set (de120e1d692d).
    if (p.version > 1 && p.nrArchGpCounters > 0) {
      p.globalCtrlLo = ((1 << p.nrArchGpCounters) - 1) >>> 0;
    }
  }

  // --- MSRs (x86.c kvm_{set,get}_msr_common + pmu.c kvm_pmu_{set,get}_msr) ---------------

  /** Guest WRMSR of a PMU MSR; any other MSR #GPs. */
  wrmsr(msr: number, value: bigint): Outcome {
    this.enterGuest();
    this.scratch64[0] = value;
    const r = this.setMsrCommon(msr >>> 0, this.scratch32[LO]!, this.scratch32[HI]!);
    this.enterGuest();
    return r === 0 ? OK : GP;
  }

  /** Guest RDMSR; `null` when the MSR is not a PMU MSR (the caller #GPs). */
  rdmsr(msr: number): Outcome | null {
    this.enterGuest();
    const r = this.getMsrCommon(msr >>> 0);
    this.enterGuest();
    if (r < 0) return null;
    if (r === 1) return GP;
    this.scratch32[LO] = this.pmu.dataLo;
    this.scratch32[HI] = this.pmu.dataHi;
    return { value: this.scratch64[0]! };
  }

  /** True if the MSR is one KVM's legacy fallback in x86.c keeps harmless. */
  private isLegacyFallback(msr: number): boolean {
    return LEGACY_FALLBACK_MSRS.includes(msr);
  }

  /** 0 = ok, 1 = #GP, -1 = not a PMU MSR. */
  private setMsrCommon(msr: number, lo: number, hi: number): number {
    if (!this.kvmPmuIsValidMsr(msr)) {
      if (this.isLegacyFallback(msr)) {
        this.coverage[COV.msrFallback]!++;
        return 0; // "if (data) kvm_pr_unimpl_wrmsr(...)": ignored
      }
      this.coverage[COV.msrInvalid]!++;
      return -1;
    }
    const r = this.kvmPmuSetMsr(msr, lo, hi);
    if (r !== 0) this.coverage[COV.msrGp]!++;
    return r;
  }

  private getMsrCommon(msr: number): number {
    if (!this.kvmPmuIsValidMsr(msr)) {
      if (this.isLegacyFallback(msr)) {
        this.coverage[COV.msrFallback]!++;
        this.pmu.dataLo = 0;
        this.pmu.dataHi = 0;
        return 0;
      }
      this.coverage[COV.msrInvalid]!++;
      return -1;
    }
    return this.kvmPmuGetMsr(msr);
  }

  /**
   * `kvm_pmu_is_valid_msr()`. The Intel global MSRs are checked for both vendors: v6.10
   * asks only `kvm_pmu_has_perf_global_ctrl` (version > 1), so an AMD PerfMonV2 guest can
   * reach 0x38E-0x390 too.
   */
  private kvmPmuIsValidMsr(msr: number): boolean {
    if (
      msr === MSR_IA32_PERF_GLOBAL_STATUS || msr === MSR_IA32_PERF_GLOBAL_CTRL ||
      msr === MSR_IA32_PERF_GLOBAL_OVF_CTRL
    ) {
      return this.pmu.version > 1;
    }
    return this.ops.msrIdxToPmc(this.pmu, msr) >= 0 || this.ops.isValidMsr(this.pmu, msr);
  }

  private kvmPmuGetMsr(msr: number): number {
    const p = this.pmu;
    switch (msr) {
      case MSR_IA32_PERF_GLOBAL_STATUS:
      case MSR_AMD64_PERF_CNTR_GLOBAL_STATUS:
        p.dataLo = p.globalStatusLo;
        p.dataHi = p.globalStatusHi;
        return 0;
      case MSR_AMD64_PERF_CNTR_GLOBAL_CTL:
      case MSR_IA32_PERF_GLOBAL_CTRL:
        p.dataLo = p.globalCtrlLo;
        p.dataHi = p.globalCtrlHi;
        return 0;
      case MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR:
      case MSR_IA32_PERF_GLOBAL_OVF_CTRL:
        p.dataLo = 0;
        p.dataHi = 0;
        return 0;
      default:
        return this.ops.getMsr(p, msr) ? 0 : 1;
    }
  }

  /** `kvm_pmu_set_msr()` for a guest write (never host-initiated here). */
  private kvmPmuSetMsr(msr: number, lo: number, hi: number): number {
    const p = this.pmu;
    switch (msr) {
      case MSR_IA32_PERF_GLOBAL_STATUS:
        return 1; // read-only for the guest
      case MSR_AMD64_PERF_CNTR_GLOBAL_STATUS:
        return 0; // read-only per the PPR: guest writes are ignored
      case MSR_AMD64_PERF_CNTR_GLOBAL_CTL:
      case MSR_IA32_PERF_GLOBAL_CTRL: {
        if (msr === MSR_AMD64_PERF_CNTR_GLOBAL_CTL) {
          // AMD drops reserved bits; then the shared path (kvm_valid_perf_global_ctrl).
          lo = (lo & ~p.globalCtrlRsvdLo) >>> 0;
          hi = (hi & ~p.globalCtrlRsvdHi) >>> 0;
        }
        if ((lo & p.globalCtrlRsvdLo) !== 0 || (hi & p.globalCtrlRsvdHi) !== 0) return 1;
        const diffLo = (p.globalCtrlLo ^ lo) >>> 0;
        const diffHi = (p.globalCtrlHi ^ hi) >>> 0;
        if (diffLo !== 0 || diffHi !== 0) {
          this.coverage[COV.globalCtrlWrite]!++;
          p.globalCtrlLo = lo;
          p.globalCtrlHi = hi;
          p.reprogramCounters(diffLo, diffHi);
        }
        return 0;
      }
      case MSR_IA32_PERF_GLOBAL_OVF_CTRL:
      case MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR:
        // GLOBAL_OVF_CTRL shares GLOBAL_STATUS's reserved bits and #GPs on them;
        // AMD's STATUS_CLR never does.
        if (
          msr === MSR_IA32_PERF_GLOBAL_OVF_CTRL &&
          ((lo & p.globalStatusRsvdLo) !== 0 || (hi & p.globalStatusRsvdHi) !== 0)
        ) {
          return 1;
        }
        this.coverage[COV.globalStatusClear]!++;
        p.globalStatusLo = (p.globalStatusLo & ~lo) >>> 0;
        p.globalStatusHi = (p.globalStatusHi & ~hi) >>> 0;
        return 0;
      default:
        return this.ops.setMsr(p, msr, lo, hi) ? 0 : 1;
    }
  }

  // --- RDPMC (kvm_pmu_rdpmc) ----------------------------------------------------------

  /** Guest RDPMC at CPL 3 (`user`) or 0, with CR4.PCE; CR0.PE is always set (long mode). */
  rdpmc(ecx: number, user: boolean, cr4Pce: boolean): Outcome {
    this.enterGuest();
    const out = this.kvmPmuRdpmc(ecx >>> 0, user, cr4Pce);
    this.enterGuest();
    return out;
  }

  private kvmPmuRdpmc(ecx: number, user: boolean, cr4Pce: boolean): Outcome {
    const p = this.pmu;
    // No vPMU: #GP. The VMware backdoor indices 0x10000-0x10002 are not modelled
    // (enable_vmware_backdoor off): they fail the index checks below and #GP.
    if (p.version === 0) {
      this.coverage[COV.rdpmcGp]!++;
      return GP;
    }
    const slot = this.ops.rdpmcEcxToPmc(p, ecx);
    if (slot < 0) {
      this.coverage[COV.rdpmcGp]!++;
      return GP;
    }
    if (!cr4Pce && user) {
      this.coverage[COV.rdpmcCplGp]!++;
      return GP;
    }
    this.coverage[COV.rdpmcValue]!++;
    // A slot past the struct (off-by-one mutant on the last fixed counter) reads 0.
    let value = slot < NR_SLOTS ? p.pmcReadCounter(slot) : 0;
    if (p.rdpmcMask32) value = value % 2 ** 32;
    this.scratch32[HI] = Math.floor(value / 2 ** 32);
    this.scratch32[LO] = value % 2 ** 32;
    return { value: this.scratch64[0]! };
  }

  // --- the event filter ---------------------------------------------------------------

  /** KVM_SET_PMU_EVENT_FILTER: install, then queue every counter for reprogramming. */
  filter(op: FilterOp): Outcome {
    const result = preparePmuEventFilter(op, this.ops.eventselEventHi);
    if ("errno" in result) {
      this.coverage[COV.filterError]!++;
      return result;
    }
    this.coverage[COV.filterSet]!++;
    this.filterState = result;
    // atomic64_set(&pmu->__reprogram_pmi, -1ull) + KVM_REQ_PMU; handled on the next entry.
    this.pmu.reprogramCounters(0xffff_ffff, 0xffff_ffff);
    return { errno: 0 };
  }

  /** `check_pmu_event_filter()`. */
  private checkPmuEventFilter(slot: number): boolean {
    const f = this.filterState;
    if (f === null) return true;
    const p = this.pmu;
    if (slot < FIXED_SLOT_BASE) {
      const allowed = isGpEventAllowed(
        f,
        p.eventselLo[slot]!,
        p.eventselHi[slot]!,
        this.filterEventHi,
      );
      if (!allowed) this.coverage[COV.filterDenyGp]!++;
      return allowed;
    }
    // Before 30cd8604323d the filter did not apply to fixed counters at all.
    if (p.bug["filter-skip-fixed"]) return true;
    const allowed = isFixedEventAllowed(f, slot - FIXED_SLOT_BASE);
    if (!allowed) this.coverage[COV.filterDenyFixed]!++;
    return allowed;
  }

  /** `pmc_is_globally_enabled()`: without PERF_GLOBAL_CTRL (v1) every counter is enabled. */
  private pmcIsGloballyEnabled(slot: number): boolean {
    const p = this.pmu;
    // The v1-global-ctrl-check mutant reverts 98defd2e1780: v1 consults global_ctrl (0).
    if (p.version <= 1 && !p.bug["v1-global-ctrl-check"]) return true;
    return testSlot(p.globalCtrlLo, p.globalCtrlHi, slot);
  }

  /** `pmc_speculative_in_use()`: EN for GP; OS|USR of the fixed control field. */
  private pmcSpeculativeInUse(slot: number): boolean {
    const p = this.pmu;
    if (slot >= FIXED_SLOT_BASE) {
      return ((p.fixedCtrCtrl >>> (4 * (slot - FIXED_SLOT_BASE))) & 0x3) !== 0;
    }
    return (p.eventselLo[slot]! & SEL_EN) !== 0;
  }

  /** `pmc_event_is_allowed()`. */
  private pmcEventIsAllowed(slot: number): boolean {
    return this.pmcIsGloballyEnabled(slot) && this.pmcSpeculativeInUse(slot) &&
      this.checkPmuEventFilter(slot);
  }

  // --- reprogramming (KVM_REQ_PMU) ----------------------------------------------------

  /** `vcpu_enter_guest()`'s request handling: KVM_REQ_PMU first, then KVM_REQ_PMI. */
  private enterGuest(): void {
    const p = this.pmu;
    if (p.reqPmu) {
      p.reqPmu = false;
      this.kvmPmuHandleEvent();
    }
    if (p.reqPmi) {
      p.reqPmi = false;
      // kvm_pmu_deliver_pmi: LVTPC with the in-kernel APIC (LVTPC masking not modelled).
      this.coverage[COV.pmiDelivered]!++;
      p.pmisDelivered++;
    }
  }

  /** `kvm_pmu_handle_event()`: take the queued bits and reprogram each valid counter. */
  private kvmPmuHandleEvent(): void {
    const p = this.pmu;
    const lo = p.reprogramLo;
    const hi = p.reprogramHi;
    p.reprogramLo = 0;
    p.reprogramHi = 0;
    for (let s = 0; s < p.nrArchGpCounters; s++) {
      if ((lo >>> s) & 1) this.reprogramCounter(s);
    }
    for (let i = 0; i < p.nrArchFixedCounters; i++) {
      if ((hi >>> i) & 1) this.reprogramCounter(FIXED_SLOT_BASE + i);
    }
  }

  /** `reprogram_counter()`. */
  private reprogramCounter(slot: number): void {
    const p = this.pmu;
    this.coverage[COV.reprogram]!++;
    const emulateOverflow = p.pmcPauseCounter(slot);
    if (!this.pmcEventIsAllowed(slot)) {
      // The counter stays paused; an emulated overflow is dropped with it.
      this.coverage[emulateOverflow ? COV.emulatedOverflowDropped : COV.reprogramDisallowed]!++;
      return;
    }
    if (emulateOverflow) {
      this.coverage[COV.emulatedOverflow]!++;
      p.kvmPerfOverflow(slot);
    }
    let selLo = p.eventselLo[slot]!;
    const selHi = p.eventselHi[slot]!;
    let configLo = selLo;
    let configHi = selHi;
    if (slot >= FIXED_SLOT_BASE) {
      const ctrl = (p.fixedCtrCtrl >>> (4 * (slot - FIXED_SLOT_BASE))) & 0xf;
      if (ctrl & 0x1) selLo |= SEL_OS;
      if (ctrl & 0x2) selLo |= SEL_USR;
      if (ctrl & 0x8) selLo |= SEL_INT;
      configLo = ctrl;
      configHi = 0;
    }
    if (
      p.currentConfigLo[slot] === configLo && p.currentConfigHi[slot] === configHi &&
      this.pmcResumeCounter(slot)
    ) {
      this.coverage[COV.reprogramResume]!++;
      return;
    }
    this.pmcReleasePerfEvent(slot);
    p.currentConfigLo[slot] = configLo;
    p.currentConfigHi[slot] = configHi;
    this.coverage[COV.reprogramCreate]!++;
    // pmc_reprogram_counter(): a raw event; IN_TXCP events cannot sample (period 0), so
    // their overflow is never seen (the in-txcp-counter-no-pmi correction keeps it).
    const mod = p.modOf(slot);
    const inTxcp = !p.isAmd && (selHi & p.rawEventMaskHi & SEL_HI_IN_TXCP) !== 0 &&
      !this.fixInTxcp;
    p.perfCreate(
      slot,
      this.eventKey(selLo, selHi),
      (selLo & SEL_USR) === 0,
      (selLo & SEL_OS) === 0,
      inTxcp ? 0 : p.getSamplePeriod(p.counter[slot]!, mod),
    );
    p.isPaused[slot] = 0;
    p.intr[slot] = (selLo & SEL_INT) !== 0 ? 1 : 0;
  }

  /**
   * What a perf event counts: event[7:0] | umask << 8 | event[11:8] << 16 (AMD only),
   * plus bit 24 for an Intel IN_TX event: the hardware counts it only inside
   * transactional regions (SDM vol. 3B 20.3.6.5), and `events` happen outside any, so
   * no `events` op matches it.
   */
  private eventKey(selLo: number, selHi: number): number {
    const p = this.pmu;
    const hiEvent = p.isAmd ? selHi & 0xf : 0;
    const txOnly = !p.isAmd && (selHi & p.rawEventMaskHi & SEL_HI_IN_TX) !== 0 ? 1 : 0;
    return (selLo & 0xffff) + hiEvent * 0x10000 + txOnly * 0x1000000;
  }

  /** `pmc_resume_counter()`: recalibrate the period and re-enable the perf event. */
  private pmcResumeCounter(slot: number): boolean {
    const p = this.pmu;
    if (!p.perfExists[slot]) return false;
    if (p.perfPeriod[slot] !== 0) {
      p.perfSetPeriod(slot, p.getSamplePeriod(p.counter[slot]!, p.modOf(slot)));
    }
    p.isPaused[slot] = 0;
    return true;
  }

  /** `pmc_release_perf_event()`: also forgets `current_config`. */
  private pmcReleasePerfEvent(slot: number): void {
    const p = this.pmu;
    if (!p.perfExists[slot]) return;
    p.perfRelease(slot);
    p.currentConfigLo[slot] = 0;
    p.currentConfigHi[slot] = 0;
  }

  // --- events ---------------------------------------------------------------------------

  /** `count` occurrences of (event, umask) at CPL 3 (`user`) or 0; see the module doc. */
  events(op: EventsOp): Outcome {
    this.enterGuest();
    if (op.count > 0) {
      const target = (op.event & 0xff) | ((op.umask & 0xff) << 8);
      const targetHi = (op.event >>> 8) & 0xf;
      if (
        targetHi === 0 && (target === this.instructionsRetired || target === this.branchesRetired)
      ) {
        this.kvmPmuTriggerEvent(target, op.count, op.user);
      } else {
        this.hardwareEvents(target + targetHi * 0x10000, op.count, op.user);
      }
    }
    this.enterGuest();
    return OK;
  }

  /**
   * `kvm_pmu_trigger_event()` run `count` times before one VM entry: every allowed counter
   * whose eventsel matches on AMD64_RAW_EVENT_MASK_NB (event select incl. 35:32 and umask;
   * E/PC/INV/CMASK ignored) and whose CPL selection matches gets `emulated_counter += 1`
   * per occurrence and is queued. Widths are >= 32 bits and `count` < 2^32, so one pass
   * wraps a counter at most once and the pause detects it.
   */
  private kvmPmuTriggerEvent(targetLo: number, count: number, user: boolean): void {
    const p = this.pmu;
    this.coverage[COV.triggerEvent]!++;
    for (let slot = 0; slot < NR_SLOTS; slot++) {
      if (!p.isValidSlot(slot)) continue;
      // The trigger-event-no-filter mutant (before dfdeda67ea2d) skips the filter here.
      const allowed = p.bug["trigger-event-no-filter"]
        ? this.pmcIsGloballyEnabled(slot) && this.pmcSpeculativeInUse(slot)
        : this.pmcEventIsAllowed(slot);
      if (!allowed) continue;
      if (
        ((p.eventselLo[slot]! ^ targetLo) & 0xffff) !== 0 ||
        (p.eventselHi[slot]! & this.matchEventHi) !== 0
      ) {
        continue;
      }
      if (!this.cplIsMatched(slot, user)) continue;
      this.coverage[COV.triggerCounted]!++;
      p.emulatedCounter[slot] = p.emulatedCounter[slot]! + count;
      p.requestCounterReprogram(slot);
    }
  }

  /** `cpl_is_matched()`: OS at CPL 0, USR otherwise (fixed: control bits 0 and 1). */
  private cplIsMatched(slot: number, user: boolean): boolean {
    const p = this.pmu;
    if (slot >= FIXED_SLOT_BASE) {
      const ctrl = (p.fixedCtrCtrl >>> (4 * (slot - FIXED_SLOT_BASE))) & 0xf;
      return (ctrl & (user ? 0x2 : 0x1)) !== 0;
    }
    return (p.eventselLo[slot]! & (user ? SEL_USR : SEL_OS)) !== 0;
  }

  /** Hardware occurrences: every running perf event that counts this event at this CPL. */
  private hardwareEvents(key: number, count: number, user: boolean): void {
    const p = this.pmu;
    for (let slot = 0; slot < NR_SLOTS; slot++) {
      if (!p.perfExists[slot] || p.isPaused[slot] || p.perfKey[slot] !== key) continue;
      if (user ? p.perfExcludeUser[slot] : p.perfExcludeKernel[slot]) continue;
      this.coverage[COV.hardwareCounted]!++;
      if (p.perfCountEvents(slot, count)) this.coverage[COV.perfOverflow]!++;
      else if (p.perfPeriod[slot] !== 0 && testSlot(p.reprogramLo, p.reprogramHi, slot)) {
        this.coverage[COV.perfOverflowIgnored]!++;
      }
    }
  }

  /** PMIs delivered since the last call. */
  pmis(): Outcome {
    const count = this.pmu.pmisDelivered;
    this.pmu.pmisDelivered = 0;
    return { count };
  }

  // --- audit ------------------------------------------------------------------------------

  /** Invariant breaks of the vPMU state (empty when sound). */
  audit(): string[] {
    const p = this.pmu;
    const out: string[] = [];
    for (let slot = 0; slot < NR_SLOTS; slot++) {
      const name = slot < FIXED_SLOT_BASE ? `gp${slot}` : `fixed${slot - FIXED_SLOT_BASE}`;
      if (!p.isValidSlot(slot)) {
        if (p.perfExists[slot] || p.counter[slot] !== 0 || p.emulatedCounter[slot] !== 0) {
          out.push(`pmu ${name}: a counter this vPMU does not have holds state`);
        }
        continue;
      }
      const c = p.counter[slot]!;
      if (!Number.isInteger(c) || c < 0 || c >= p.modOf(slot)) {
        out.push(`pmu ${name}: counter ${c} is not below 2^${p.widthOf(slot)}`);
      }
      if (p.counterHigh[slot] !== 0 && !p.bug["write-no-truncate"]) {
        out.push(`pmu ${name}: counter keeps bits above its width`);
      }
      if (slot < GP_SLOTS) {
        let rsvdHi = p.reservedHi;
        if (slot === 2 && (p.rawEventMaskHi & SEL_HI_IN_TXCP) !== 0) rsvdHi ^= SEL_HI_IN_TXCP;
        if ((p.eventselLo[slot]! & p.reservedLo) !== 0 || (p.eventselHi[slot]! & rsvdHi) !== 0) {
          out.push(`pmu ${name}: eventsel holds reserved bits`);
        }
      }
      if (p.reqPmu || p.reqPmi) continue; // the checks below hold after a VM entry
      if (p.emulatedCounter[slot] !== 0) {
        out.push(`pmu ${name}: emulated_counter not folded in after a VM entry`);
      }
      const running = p.perfExists[slot] === 1 && p.isPaused[slot] === 0;
      if (running !== this.pmcEventIsAllowedQuiet(slot)) {
        out.push(
          `pmu ${name}: perf event ${running ? "runs" : "is stopped"} though the counter is ${
            running ? "not allowed" : "allowed"
          }`,
        );
      }
      if (running) {
        const want = slot < FIXED_SLOT_BASE
          ? [p.eventselLo[slot]!, p.eventselHi[slot]!]
          : [(p.fixedCtrCtrl >>> (4 * (slot - FIXED_SLOT_BASE))) & 0xf, 0];
        if (p.currentConfigLo[slot] !== want[0] || p.currentConfigHi[slot] !== want[1]) {
          out.push(`pmu ${name}: current_config does not match the programmed event`);
        }
      }
    }
    if (p.version > 1) {
      if (
        (p.globalCtrlLo & p.globalCtrlRsvdLo) !== 0 || (p.globalCtrlHi & p.globalCtrlRsvdHi) !== 0
      ) {
        out.push("pmu: GLOBAL_CTRL holds reserved bits");
      }
      if (
        (p.globalStatusLo & p.globalStatusRsvdLo) !== 0 ||
        (p.globalStatusHi & p.globalStatusRsvdHi) !== 0
      ) {
        out.push("pmu: GLOBAL_STATUS holds bits of counters that do not exist");
      }
    }
    if ((p.fixedCtrCtrl & p.fixedCtrCtrlRsvd) !== 0) {
      out.push("pmu: FIXED_CTR_CTRL holds reserved bits");
    }
    if ((p.reprogramLo !== 0 || p.reprogramHi !== 0) && !p.reqPmu) {
      out.push("pmu: reprogram_pmi has bits but no KVM_REQ_PMU is pending");
    }
    if (this.filterState !== null) out.push(...auditPmuEventFilter(this.filterState));
    return out;
  }

  /** `pmc_event_is_allowed()` without bumping coverage (for the audit). */
  private pmcEventIsAllowedQuiet(slot: number): boolean {
    const saved = this.coverage.slice(COV.filterDenyGp, COV.filterDenyFixed + 1);
    const allowed = this.pmcEventIsAllowed(slot);
    this.coverage.set(saved, COV.filterDenyGp);
    return allowed;
  }
}
