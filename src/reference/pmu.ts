/**
 * @module
 * The reference model of the guest vPMU (the oracle side): the architectural PMU as KVM
 * v6.10 exposes it, plus the KVM_SET_PMU_EVENT_FILTER uAPI. Plain state, no caching
 * machinery: counters are numbers that `events` adds to, and every rule is checked at
 * the moment it applies (the event filter is consulted when events are counted, which is
 * what KVM's reprogramming achieves). Each rule cites docs/kvm-facts.md section C or the KVM
 * function it follows, so it can be checked line by line.
 *
 * Model assumptions (the shadowfuzz guest and host):
 * - The guest runs in 64-bit mode (CR0.PE = 1), so RDPMC at CPL 3 needs CR4.PCE.
 * - The guest has no PEBS, no Intel PT and no LBRs: ADAPTIVE stays reserved, and
 *   GLOBAL_STATUS bit 55 stays reserved. HLE/RTM (IN_TX/IN_TXCP) follow `pmu.tsx`.
 * - CPUID.0AH EBX reports every architectural event available.
 * - kvm.enable_vmware_backdoor is off (its default): ECX 0x10000-0x10002 are ordinary
 *   RDPMC values (a #GP on both vendors).
 * - An AMD guest with 6 GP counters has PerfCtrExtCore (the F15H MSRs); with 4 it has
 *   only the legacy K7 MSRs (`PmuConfig` in `trace/types.ts`).
 * - The guest's PMI handler re-arms LVTPC, so every PMI KVM requests is delivered and
 *   counted by `pmis` (KVM masks LVTPC on Intel PMI delivery, a16eb25b09c0).
 */
import type { Config, Errno, EventsOp, FilterOp, Outcome, Vendor } from "../trace/types.ts";
import { FILTER_ALLOW, FILTER_DENY } from "../trace/types.ts";
import {
  AMD64_NUM_COUNTERS,
  AMD64_NUM_COUNTERS_CORE,
  AMD_COUNTER_WIDTH,
  AMD_EVENTSEL_EVENT,
  AMD_EVENTSEL_EVENT_HI,
  AMD_EVENTSEL_EVENT_HI_SHIFT,
  AMD_EVENTSEL_RESERVED,
  EVENTSEL_EN,
  EVENTSEL_EVENT,
  EVENTSEL_IN_TX,
  EVENTSEL_IN_TXCP,
  EVENTSEL_INT,
  EVENTSEL_OS,
  EVENTSEL_UMASK,
  EVENTSEL_UMASK_SHIFT,
  EVENTSEL_USR,
  FILTER_FLAG_MASKED_EVENTS,
  FILTER_FLAGS_VALID_MASK,
  FILTER_MAX_EVENTS,
  FIXED_COUNTER_EVENTS,
  FIXED_CTRL_FIELD_BITS,
  FIXED_CTRL_OS,
  FIXED_CTRL_PMI,
  FIXED_CTRL_USR,
  FIXED_CTRL_WRITABLE,
  FIXED_PMC_BASE_IDX,
  GLOBAL_STATUS_COND_CHGD,
  GLOBAL_STATUS_OVF_BUF,
  INTEL_ARCH_FIXED_COUNTERS,
  INTEL_EVENTSEL_RESERVED,
  INTEL_MAX_FIXED_COUNTERS,
  INTEL_MAX_GP_COUNTERS,
  INTEL_RDPMC_INDEX_MASK,
  INTEL_RDPMC_TYPE_FIXED,
  INTEL_RDPMC_TYPE_GP,
  LEGACY_FALLBACK_MSRS,
  MASKED_ENTRY_EXCLUDE,
  MASKED_ENTRY_UMASK_MASK,
  MASKED_ENTRY_UMASK_MASK_SHIFT,
  MASKED_ENTRY_UMASK_MATCH,
  MASKED_ENTRY_UMASK_MATCH_SHIFT,
  MSR_AMD64_PERF_CNTR_GLOBAL_CTL,
  MSR_AMD64_PERF_CNTR_GLOBAL_STATUS,
  MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR,
  MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_SET,
  MSR_F15H_PERF_CTL0,
  MSR_IA32_A_PMC0,
  MSR_IA32_FIXED_CTR0,
  MSR_IA32_FIXED_CTR_CTRL,
  MSR_IA32_PERF_GLOBAL_CTRL,
  MSR_IA32_PERF_GLOBAL_INUSE,
  MSR_IA32_PERF_GLOBAL_OVF_CTRL,
  MSR_IA32_PERF_GLOBAL_STATUS,
  MSR_IA32_PERFEVTSEL0,
  MSR_IA32_PMC0,
  MSR_K7_EVNTSEL0,
  MSR_K7_PERFCTR0,
} from "../x86/pmu.ts";

const U64_MASK = (1n << 64n) - 1n;

/**
 * What an MSR number means for this vCPU. `fallback`: a legacy MSR x86.c keeps
 * harmless (reads 0, writes ignored); `invalid`: a known PMU MSR this vCPU lacks (#GP).
 */
type MsrRole =
  | { kind: "eventsel"; index: number }
  | { kind: "counter"; index: number; write: "legacy" | "fullWidth" | "amd" }
  | { kind: "fixedCounter"; index: number }
  | { kind: "fixedCtrl" }
  | { kind: "intelGlobalStatus" }
  | { kind: "intelGlobalCtrl" }
  | { kind: "intelGlobalOvfCtrl" }
  | { kind: "amdGlobalStatus" }
  | { kind: "amdGlobalCtl" }
  | { kind: "amdGlobalStatusClr" }
  | { kind: "fallback" }
  | { kind: "invalid" };

/** One event-filter entry after KVM's conversion to the masked form (docs/kvm-facts.md C.7). */
interface FilterEntry {
  /** 12-bit event select (Intel entries never have bits 11:8). */
  event: number;
  /** Guest umask bits that take part in the match. */
  mask: number;
  match: number;
}

/** An installed KVM_SET_PMU_EVENT_FILTER. */
interface EventFilter {
  action: number;
  fixedBitmap: number;
  includes: FilterEntry[];
  excludes: FilterEntry[];
}

/** The reference vPMU of one vCPU (and its VM's event filter). */
export class ReferencePmu {
  readonly #vendor: Vendor;
  readonly #version: number;
  /** nr_arch_gp_counters: 0 without a vPMU. */
  readonly #nrGp: number;
  /** nr_arch_fixed_counters: Intel version 2 only (`intel_pmu_refresh`). */
  readonly #nrFixed: number;
  /** Intel FW_WRITE: the IA32_A_PMCx aliases exist (`fw_writes_is_enabled`). */
  readonly #fullWidthWrites: boolean;
  /** Intel HLE/RTM in guest CPUID: IN_TX/IN_TXCP allowed (`intel_pmu_refresh`). */
  readonly #tsx: boolean;
  /** AMD PerfCtrExtCore: the F15H CTL/CTR MSRs exist (model: 6 GP counters). */
  readonly #perfCtrCore: boolean;
  /** counter_bitmask[GP] and [FIXED] (docs/kvm-facts.md C.3). */
  readonly #gpMask: bigint;
  readonly #fixedMask: bigint;
  /** global_ctrl_mask: bits of GLOBAL_CTRL with no counter (docs/kvm-facts.md C.4). */
  readonly #globalCtrlReserved: bigint;
  /** global_status_mask: as the ctrl mask, but Intel bits 62/63 are allowed (C.4). */
  readonly #globalStatusReserved: bigint;
  /** fixed_ctr_ctrl_mask: all but OS/USR/PMI of supported fixed counters (C.2). */
  readonly #fixedCtrlReserved: bigint;

  readonly #eventsel: bigint[];
  readonly #counter: bigint[];
  readonly #fixedCounter: bigint[];
  #fixedCtrl = 0n;
  #globalCtrl = 0n;
  #globalStatus = 0n;
  #filter: EventFilter | null = null;
  #pmis = 0;

  constructor(config: Config) {
    const { vendor, pmu } = config;
    this.#vendor = vendor;
    this.#version = pmu.version;
    this.#nrGp = pmu.version === 0 ? 0 : pmu.gp;
    this.#nrFixed = vendor === "intel" && pmu.version >= 2 ? pmu.fixed : 0;
    const maxGp = vendor === "intel" ? INTEL_MAX_GP_COUNTERS : AMD64_NUM_COUNTERS_CORE;
    if (this.#nrGp > maxGp || this.#nrFixed > INTEL_MAX_FIXED_COUNTERS) {
      throw new RangeError(
        `Cannot create the reference PMU: ${vendor} supports at most ${maxGp} GP and ` +
          `${INTEL_MAX_FIXED_COUNTERS} fixed counters, got ${pmu.gp} and ${pmu.fixed}`,
      );
    }
    this.#fullWidthWrites = vendor === "intel" && pmu.fullWidthWrites;
    this.#tsx = vendor === "intel" && pmu.tsx;
    this.#perfCtrCore = vendor === "amd" && this.#nrGp >= AMD64_NUM_COUNTERS_CORE;
    // AMD counters are always 48 bits (`amd_pmu_refresh`); Intel widths come from CPUID.0AH.
    this.#gpMask = (1n << BigInt(vendor === "amd" ? AMD_COUNTER_WIDTH : pmu.gpWidth)) - 1n;
    this.#fixedMask = (1n << BigInt(pmu.fixedWidth)) - 1n;

    const gpBits = (1n << BigInt(this.#nrGp)) - 1n;
    const fixedBits = ((1n << BigInt(this.#nrFixed)) - 1n) << FIXED_PMC_BASE_IDX;
    this.#globalCtrlReserved = ~(gpBits | fixedBits) & U64_MASK;
    this.#globalStatusReserved = vendor === "intel"
      ? this.#globalCtrlReserved & ~(GLOBAL_STATUS_OVF_BUF | GLOBAL_STATUS_COND_CHGD)
      : this.#globalCtrlReserved;
    let fixedCtrlWritable = 0n;
    for (let i = 0; i < this.#nrFixed; i++) {
      fixedCtrlWritable |= FIXED_CTRL_WRITABLE << (FIXED_CTRL_FIELD_BITS * BigInt(i));
    }
    this.#fixedCtrlReserved = ~fixedCtrlWritable & U64_MASK;

    // RESET (kvm_pmu_reset): everything 0. Refresh then enables the GP counters in
    // GLOBAL_CTRL when the PMU has one (de120e1d692d, common code: Intel v2 and AMD v2).
    this.#eventsel = new Array<bigint>(this.#nrGp).fill(0n);
    this.#counter = new Array<bigint>(this.#nrGp).fill(0n);
    this.#fixedCounter = new Array<bigint>(this.#nrFixed).fill(0n);
    if (this.#hasGlobalCtrl() && this.#nrGp > 0) this.#globalCtrl = gpBits;
  }

  /**
   * Whether `msr` is a PMU MSR of either vendor that this model decides (valid, legacy
   * fallback, or known-but-absent). Every other MSR belongs to the caller.
   */
  isPmuMsr(msr: number): boolean {
    return isKnownPmuMsr(msr);
  }

  /** Guest WRMSR. A non-PMU MSR #GPs (the caller handles those before asking). */
  wrmsr(msr: number, value: bigint): Outcome {
    const role = this.#roleOf(msr);
    if (role === null) return gp();
    switch (role.kind) {
      case "fallback":
        // x86.c `kvm_set_msr_common`: not a valid PMU MSR, write ignored.
        return ok();
      case "invalid":
        return gp();
      case "eventsel":
        if (this.#vendor === "intel") {
          // intel_pmu_set_msr: any reserved bit => #GP (docs/kvm-facts.md C.2). With HLE/RTM
          // in guest CPUID, IN_TX is allowed, and IN_TXCP on counter 2 only.
          let reserved = INTEL_EVENTSEL_RESERVED;
          if (this.#tsx) {
            reserved &= ~EVENTSEL_IN_TX;
            if (role.index === 2) reserved &= ~EVENTSEL_IN_TXCP;
          }
          if (value & reserved) return gp();
          this.#eventsel[role.index] = value;
        } else {
          // amd_pmu_set_msr: reserved bits dropped silently (C.2, cb1d220da0fa).
          this.#eventsel[role.index] = value & ~AMD_EVENTSEL_RESERVED;
        }
        return ok();
      case "counter":
        if (role.write === "fullWidth") {
          // A_PMCx: bits above the width => #GP, no sign extension (C.3).
          if (value & ~this.#gpMask) return gp();
          this.#counter[role.index] = value;
        } else if (role.write === "legacy") {
          // PMCx guest write: (s64)(s32)data, then truncated to the width (C.3,
          // b29a2acd36dd); never a #GP.
          const extended = BigInt.asUintN(64, BigInt.asIntN(32, value));
          this.#counter[role.index] = extended & this.#gpMask;
        } else {
          // AMD: pmc_write_counter truncates to 48 bits; never a #GP (C.3).
          this.#counter[role.index] = value & this.#gpMask;
        }
        return ok();
      case "fixedCounter":
        // Fixed counters: truncated to the fixed width, never a #GP (C.3).
        this.#fixedCounter[role.index] = value & this.#fixedMask;
        return ok();
      case "fixedCtrl":
        // fixed_ctr_ctrl_mask: reserved bits (ANY, unsupported counters) => #GP (C.2).
        if (value & this.#fixedCtrlReserved) return gp();
        this.#fixedCtrl = value;
        return ok();
      case "intelGlobalStatus":
        // Read-only to the guest: #GP (C.4).
        return gp();
      case "intelGlobalCtrl":
        // kvm_valid_perf_global_ctrl: reserved bits => #GP (C.4).
        if (value & this.#globalCtrlReserved) return gp();
        this.#globalCtrl = value;
        return ok();
      case "intelGlobalOvfCtrl":
        // Bits in global_status_mask => #GP; otherwise clear those status bits (C.4).
        if (value & this.#globalStatusReserved) return gp();
        this.#globalStatus &= ~value;
        return ok();
      case "amdGlobalStatus":
        // "Per PPR, read-only MSR. Writes are ignored." (C.4).
        return ok();
      case "amdGlobalCtl":
        // Reserved bits dropped silently (C.4).
        this.#globalCtrl = value & ~this.#globalCtrlReserved;
        return ok();
      case "amdGlobalStatusClr":
        // Clears status bits, no reserved-bit check (C.4).
        this.#globalStatus &= ~value;
        return ok();
    }
  }

  /** Guest RDMSR, or `null` when `msr` is not a PMU MSR (the caller decides). */
  rdmsr(msr: number): Outcome | null {
    const role = this.#roleOf(msr);
    if (role === null) return null;
    switch (role.kind) {
      case "fallback":
        // x86.c `kvm_get_msr_common`: not a valid PMU MSR, reads 0.
        return value(0n);
      case "invalid":
        return gp();
      case "eventsel":
        return value(this.#eventsel[role.index] ?? 0n);
      case "counter":
        return value(this.#counter[role.index] ?? 0n);
      case "fixedCounter":
        return value(this.#fixedCounter[role.index] ?? 0n);
      case "fixedCtrl":
        return value(this.#fixedCtrl);
      case "intelGlobalStatus":
      case "amdGlobalStatus":
        return value(this.#globalStatus);
      case "intelGlobalCtrl":
      case "amdGlobalCtl":
        return value(this.#globalCtrl);
      case "intelGlobalOvfCtrl":
      case "amdGlobalStatusClr":
        // Write-only in effect: reads 0 (C.4).
        return value(0n);
    }
  }

  /**
   * Guest RDPMC (`kvm_pmu_rdpmc`, docs/kvm-facts.md C.6). Only ECX matters (RDPMC reads ECX, not
   * RCX). `user` is CPL 3; `cr4Pce` is the current CR4.PCE.
   */
  rdpmc(ecx: number, user: boolean, cr4Pce: boolean): Outcome {
    // No vPMU => #GP.
    if (this.#version === 0) return gp();
    const read = this.#vendor === "intel" ? this.#intelRdpmc(ecx >>> 0) : this.#amdRdpmc(ecx >>> 0);
    if (read === null) return gp();
    // CR4.PCE = 0 && CPL > 0 && CR0.PE = 1 => #GP (PE is always 1 here).
    if (user && !cr4Pce) return gp();
    // The result is masked to the counter width (0e6f467ee28e); stored counters
    // already are, the mask states the rule.
    return value(read.value & read.mask);
  }

  /** KVM_SET_PMU_EVENT_FILTER (`kvm_vm_ioctl_set_pmu_event_filter`, docs/kvm-facts.md C.7). */
  filter(op: FilterOp): Outcome {
    const err = this.#checkFilter(op);
    if (err !== 0) return { errno: err };
    const masked = (op.flags & FILTER_FLAG_MASKED_EVENTS) !== 0;
    const includes: FilterEntry[] = [];
    const excludes: FilterEntry[] = [];
    for (const raw of op.events) {
      if (masked) {
        (raw & MASKED_ENTRY_EXCLUDE ? excludes : includes).push({
          event: filterEventSelect(raw),
          mask: Number((raw & MASKED_ENTRY_UMASK_MASK) >> MASKED_ENTRY_UMASK_MASK_SHIFT),
          match: Number((raw & MASKED_ENTRY_UMASK_MATCH) >> MASKED_ENTRY_UMASK_MATCH_SHIFT),
        });
      } else if ((raw & ~(this.#eventSelectMask() | EVENTSEL_UMASK)) === 0n) {
        // convert_to_masked_filter: a legacy entry becomes an include with an all-ones
        // umask mask (exact match). Entries with any other bit are dropped silently
        // ("impossible filters can't be rejected" for backwards compatibility).
        includes.push({
          event: filterEventSelect(raw),
          mask: 0xff,
          match: Number((raw & EVENTSEL_UMASK) >> EVENTSEL_UMASK_SHIFT),
        });
      }
    }
    // The new filter replaces the old one; KVM reprograms every counter, so it applies
    // to all counting from now on.
    this.#filter = { action: op.action, fixedBitmap: op.fixed, includes, excludes };
    return { errno: 0 };
  }

  /**
   * `op.count` occurrences of (event, umask) happen in the guest at CPL 3 (`user`) or
   * CPL 0. Every counter that counts them advances; an overflow (wrap) sets its
   * GLOBAL_STATUS bit and, with its interrupt bit, requests a PMI (docs/kvm-facts.md C.5).
   */
  events(op: EventsOp): Outcome {
    const count = BigInt(op.count);
    let pmi = false;
    for (let i = 0; i < this.#nrGp; i++) {
      const sel = this.#eventsel[i] ?? 0n;
      if (!this.#gpCounts(i, sel, op)) continue;
      const old = this.#counter[i] ?? 0n;
      this.#counter[i] = (old + count) & this.#gpMask;
      if (old + count > this.#gpMask) {
        this.#globalStatus |= 1n << BigInt(i);
        if (sel & EVENTSEL_INT) pmi = true;
      }
    }
    for (let i = 0; i < this.#nrFixed; i++) {
      const field = this.#fixedCtrlField(i);
      if (!this.#fixedCounts(i, field, op)) continue;
      const old = this.#fixedCounter[i] ?? 0n;
      this.#fixedCounter[i] = (old + count) & this.#fixedMask;
      if (old + count > this.#fixedMask) {
        this.#globalStatus |= 1n << (FIXED_PMC_BASE_IDX + BigInt(i));
        if (field & FIXED_CTRL_PMI) pmi = true;
      }
    }
    // KVM_REQ_PMI is one request bit: overflows in one op coalesce into one PMI.
    // (GLOBAL_STATUS is also updated on PMUs without the global MSRs, as in KVM's
    // __kvm_perf_overflow; there it is simply not observable.)
    if (pmi) this.#pmis++;
    return ok();
  }

  /** The number of PMIs delivered since the last call. */
  pmis(): Outcome {
    const count = this.#pmis;
    this.#pmis = 0;
    return { count };
  }

  // -------------------------------------------------------------------------------------
  // MSR map
  // -------------------------------------------------------------------------------------

  /**
   * The role of `msr`: a valid PMU MSR of this vCPU (`kvm_pmu_is_valid_msr`), else a
   * legacy MSR x86.c keeps harmless, else a known PMU MSR that #GPs, else `null`.
   */
  #roleOf(msr: number): MsrRole | null {
    const valid = this.#vendor === "intel" ? this.#intelRole(msr) : this.#amdRole(msr);
    if (valid !== null) return valid;
    if (LEGACY_FALLBACK_MSRS.includes(msr)) return { kind: "fallback" };
    return isKnownPmuMsr(msr) ? { kind: "invalid" } : null;
  }

  /** Intel valid PMU MSRs (`intel_is_valid_msr`, `kvm_pmu_is_valid_msr`; C.1, C.4). */
  #intelRole(msr: number): MsrRole | null {
    const pmc = inRange(msr, MSR_IA32_PMC0, this.#nrGp);
    if (pmc !== null) return { kind: "counter", index: pmc, write: "legacy" };
    const sel = inRange(msr, MSR_IA32_PERFEVTSEL0, this.#nrGp);
    if (sel !== null) return { kind: "eventsel", index: sel };
    // The full-width aliases exist only with PERF_CAPABILITIES.FW_WRITE.
    const aPmc = this.#fullWidthWrites ? inRange(msr, MSR_IA32_A_PMC0, this.#nrGp) : null;
    if (aPmc !== null) return { kind: "counter", index: aPmc, write: "fullWidth" };
    const fixed = inRange(msr, MSR_IA32_FIXED_CTR0, this.#nrFixed);
    if (fixed !== null) return { kind: "fixedCounter", index: fixed };
    if (!this.#hasGlobalCtrl()) return null;
    switch (msr) {
      case MSR_IA32_FIXED_CTR_CTRL:
        return { kind: "fixedCtrl" };
      case MSR_IA32_PERF_GLOBAL_STATUS:
        return { kind: "intelGlobalStatus" };
      case MSR_IA32_PERF_GLOBAL_CTRL:
        return { kind: "intelGlobalCtrl" };
      case MSR_IA32_PERF_GLOBAL_OVF_CTRL:
        return { kind: "intelGlobalOvfCtrl" };
    }
    // GLOBAL_STATUS_SET and GLOBAL_INUSE are v4 MSRs: KVM caps the guest at v2.
    return null;
  }

  /** AMD valid PMU MSRs (`amd_is_valid_msr`, `get_gp_pmc_amd`; C.1, C.4). */
  #amdRole(msr: number): MsrRole | null {
    if (this.#version === 0) return null;
    // K7 MSRs: counters 0-3 (aliased by F15H CTL/CTR0-3 when those exist).
    const legacy = Math.min(this.#nrGp, AMD64_NUM_COUNTERS);
    const sel = inRange(msr, MSR_K7_EVNTSEL0, legacy);
    if (sel !== null) return { kind: "eventsel", index: sel };
    const ctr = inRange(msr, MSR_K7_PERFCTR0, legacy);
    if (ctr !== null) return { kind: "counter", index: ctr, write: "amd" };
    // A K7 MSR beyond the counters (only with `gp: 0`) is still a valid PMU MSR, so x86.c
    // does not fall back to "reads 0": svm/pmu.c (v6.10, since the PerfMonV2 support of
    // 4a2771895ca6) amd_is_valid_msr() returns `pmu->version > 0` for MSR_K7_EVNTSEL0 ...
    // MSR_K7_PERFCTR3, so kvm_get/set_msr_common() call kvm_pmu_get/set_msr(); there
    // amd_pmu_get/set_msr() find no counter (get_gp_pmc_amd -> amd_pmu_get_pmc() returns
    // NULL for idx >= nr_arch_gp_counters) and return 1: #GP on RDMSR and on WRMSR.
    if (inRange(msr, MSR_K7_EVNTSEL0, 2 * AMD64_NUM_COUNTERS) !== null) return { kind: "invalid" };
    // F15H (PerfCtrExtCore only): CTLi at 0xC0010200 + 2i, CTRi right after it.
    const f15h = this.#perfCtrCore ? inRange(msr, MSR_F15H_PERF_CTL0, 2 * this.#nrGp) : null;
    if (f15h !== null) {
      const index = Math.floor(f15h / 2);
      return f15h % 2 === 0
        ? { kind: "eventsel", index }
        : { kind: "counter", index, write: "amd" };
    }
    if (!this.#hasGlobalCtrl()) return null;
    switch (msr) {
      // kvm_pmu_is_valid_msr (pmu.c, v6.10) accepts Intel's GLOBAL_STATUS/CTRL/OVF_CTRL
      // whenever kvm_pmu_has_perf_global_ctrl (version > 1), whatever the vendor, and
      // kvm_pmu_get/set_msr handle them with their Intel semantics on the same state: on
      // an AMD PerfMonV2 guest they are KVM-made aliases (not architectural on AMD).
      case MSR_IA32_PERF_GLOBAL_STATUS:
        return { kind: "intelGlobalStatus" };
      case MSR_IA32_PERF_GLOBAL_CTRL:
        return { kind: "intelGlobalCtrl" };
      case MSR_IA32_PERF_GLOBAL_OVF_CTRL:
        return { kind: "intelGlobalOvfCtrl" };
      case MSR_AMD64_PERF_CNTR_GLOBAL_STATUS:
        return { kind: "amdGlobalStatus" };
      case MSR_AMD64_PERF_CNTR_GLOBAL_CTL:
        return { kind: "amdGlobalCtl" };
      case MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR:
        return { kind: "amdGlobalStatusClr" };
    }
    // PERF_CNTR_GLOBAL_STATUS_SET is not emulated in v6.10 (68e61f6fd656 is 2025): #GP.
    return null;
  }

  /** kvm_pmu_has_perf_global_ctrl: Intel version >= 2 or AMD PerfMonV2 (C.4). */
  #hasGlobalCtrl(): boolean {
    return this.#version >= 2;
  }

  // -------------------------------------------------------------------------------------
  // Counting
  // -------------------------------------------------------------------------------------

  /** Whether GP counter `i` with eventsel `sel` counts the events of `op` (C.5). */
  #gpCounts(i: number, sel: bigint, op: EventsOp): boolean {
    if (!(sel & EVENTSEL_EN)) return false;
    if (!this.#globallyEnabled(BigInt(i))) return false;
    if (!(sel & (op.user ? EVENTSEL_USR : EVENTSEL_OS))) return false;
    // IN_TX (Intel, with HLE/RTM) counts only inside transactional regions (SDM vol. 3B
    // 20.3.6.5); the events of an `events` op happen outside any transaction.
    if (this.#tsx && (sel & EVENTSEL_IN_TX)) return false;
    // Only event select and umask take part; E, INV, CMASK and PC are ignored.
    if (this.#eventOf(sel) !== op.event || umaskOf(sel) !== op.umask) return false;
    return this.#gpAllowedByFilter(sel);
  }

  /** Whether fixed counter `i` with control field `field` counts the events of `op`. */
  #fixedCounts(i: number, field: bigint, op: EventsOp): boolean {
    if (!(field & (FIXED_CTRL_OS | FIXED_CTRL_USR))) return false;
    if (!this.#globallyEnabled(FIXED_PMC_BASE_IDX + BigInt(i))) return false;
    if (!(field & (op.user ? FIXED_CTRL_USR : FIXED_CTRL_OS))) return false;
    const code = FIXED_COUNTER_EVENTS[i];
    if (code === undefined || code.event !== op.event || code.umask !== op.umask) return false;
    return this.#fixedAllowedByFilter(i);
  }

  /** pmc_is_globally_enabled: always without GLOBAL_CTRL (98defd2e1780), else its bit. */
  #globallyEnabled(bit: bigint): boolean {
    if (!this.#hasGlobalCtrl()) return true;
    return ((this.#globalCtrl >> bit) & 1n) === 1n;
  }

  #fixedCtrlField(i: number): bigint {
    return (this.#fixedCtrl >> (FIXED_CTRL_FIELD_BITS * BigInt(i))) & 0xfn;
  }

  /** The guest event select: Intel bits 7:0; AMD bits 7:0 plus 35:32 as 11:8 (C.2). */
  #eventOf(sel: bigint): number {
    const low = Number(sel & EVENTSEL_EVENT);
    if (this.#vendor === "intel") return low;
    return low | Number((sel & AMD_EVENTSEL_EVENT_HI) >> AMD_EVENTSEL_EVENT_HI_SHIFT) << 8;
  }

  /** kvm_pmu_ops.EVENTSEL_EVENT: 0xFF on Intel, 0xF000000FF on AMD. */
  #eventSelectMask(): bigint {
    return this.#vendor === "intel" ? EVENTSEL_EVENT : AMD_EVENTSEL_EVENT;
  }

  // -------------------------------------------------------------------------------------
  // Event filter
  // -------------------------------------------------------------------------------------

  /**
   * The ioctl's checks in KVM's order (`kvm_vm_ioctl_set_pmu_event_filter`, then
   * `prepare_filter_lists`): action, flags, nevents (E2BIG), masked-entry validity.
   */
  #checkFilter(op: FilterOp): Errno {
    if (op.action !== FILTER_ALLOW && op.action !== FILTER_DENY) return "EINVAL";
    if (op.flags & ~FILTER_FLAGS_VALID_MASK) return "EINVAL";
    if (op.events.length > FILTER_MAX_EVENTS) return "E2BIG";
    if (op.flags & FILTER_FLAG_MASKED_EVENTS) {
      // is_masked_filter_valid: only the vendor's event select, umask mask, match and
      // exclude bits (so event bits 35:32 are invalid on Intel).
      const allowed = this.#eventSelectMask() | MASKED_ENTRY_UMASK_MASK |
        MASKED_ENTRY_UMASK_MATCH | MASKED_ENTRY_EXCLUDE;
      if (op.events.some((e) => (e & ~allowed) !== 0n)) return "EINVAL";
    }
    return 0;
  }

  /**
   * is_gp_event_allowed: in includes and not in excludes => allowed iff ALLOW;
   * otherwise allowed iff DENY. Only the guest's event select and umask take part
   * (aa570a7481c3).
   */
  #gpAllowedByFilter(sel: bigint): boolean {
    const filter = this.#filter;
    if (filter === null) return true;
    const event = this.#eventOf(sel);
    const umask = umaskOf(sel);
    const hit = (e: FilterEntry) => e.event === event && (umask & e.mask) === e.match;
    if (filter.includes.some(hit) && !filter.excludes.some(hit)) {
      return filter.action === FILTER_ALLOW;
    }
    return filter.action === FILTER_DENY;
  }

  /**
   * is_fixed_event_allowed: decided by fixed_counter_bitmap alone, which has priority
   * over events[] (30cd8604323d): DENY with the bit set or ALLOW with it clear => no.
   */
  #fixedAllowedByFilter(i: number): boolean {
    const filter = this.#filter;
    if (filter === null) return true;
    const bit = ((filter.fixedBitmap >>> i) & 1) === 1;
    if (filter.action === FILTER_DENY && bit) return false;
    if (filter.action === FILTER_ALLOW && !bit) return false;
    return true;
  }

  // -------------------------------------------------------------------------------------
  // RDPMC
  // -------------------------------------------------------------------------------------

  /**
   * intel_rdpmc_ecx_to_pmc: ECX[31:16] is the type (0 GP, 0x4000 fixed, anything else,
   * including the fast bit 31, => #GP); ECX[15:0] must be below that type's count.
   */
  #intelRdpmc(ecx: number): { value: bigint; mask: bigint } | null {
    const type = (ecx & ~INTEL_RDPMC_INDEX_MASK) >>> 0;
    const index = ecx & INTEL_RDPMC_INDEX_MASK;
    if (type === INTEL_RDPMC_TYPE_GP && index < this.#nrGp) {
      return { value: this.#counter[index] ?? 0n, mask: this.#gpMask };
    }
    if (type === INTEL_RDPMC_TYPE_FIXED && index < this.#nrFixed) {
      return { value: this.#fixedCounter[index] ?? 0n, mask: this.#fixedMask };
    }
    return null;
  }

  /** amd_rdpmc_ecx_to_pmc: the whole ECX is the index; bits 31:30 are not ignored. */
  #amdRdpmc(ecx: number): { value: bigint; mask: bigint } | null {
    if (ecx >= this.#nrGp) return null;
    return { value: this.#counter[ecx] ?? 0n, mask: this.#gpMask };
  }
}

/** The umask (bits 15:8) of an eventsel. */
function umaskOf(sel: bigint): number {
  return Number((sel & EVENTSEL_UMASK) >> EVENTSEL_UMASK_SHIFT);
}

/** The 12-bit event select of a filter entry (bits 7:0, and 35:32 as 11:8). */
function filterEventSelect(entry: bigint): number {
  return Number(entry & EVENTSEL_EVENT) |
    Number((entry & AMD_EVENTSEL_EVENT_HI) >> AMD_EVENTSEL_EVENT_HI_SHIFT) << 8;
}

/** `msr - base` if it is in [0, count), else null. */
function inRange(msr: number, base: number, count: number): number | null {
  const i = msr - base;
  return i >= 0 && i < count ? i : null;
}

/**
 * Every PMU MSR of either vendor that this model owns, whatever the config: Intel PMCx,
 * PERFEVTSELx, A_PMCx (8 each), FIXED_CTR0..3, FIXED_CTR_CTRL..GLOBAL_INUSE; AMD K7
 * EVNTSEL/PERFCTR0..3, F15H CTL/CTR0..5, PERF_CNTR_GLOBAL_STATUS..STATUS_SET.
 */
function isKnownPmuMsr(msr: number): boolean {
  return inRange(msr, MSR_IA32_PMC0, INTEL_MAX_GP_COUNTERS) !== null ||
    inRange(msr, MSR_IA32_PERFEVTSEL0, INTEL_MAX_GP_COUNTERS) !== null ||
    inRange(msr, MSR_IA32_A_PMC0, INTEL_MAX_GP_COUNTERS) !== null ||
    inRange(msr, MSR_IA32_FIXED_CTR0, INTEL_ARCH_FIXED_COUNTERS) !== null ||
    (msr >= MSR_IA32_FIXED_CTR_CTRL && msr <= MSR_IA32_PERF_GLOBAL_INUSE) ||
    inRange(msr, MSR_K7_EVNTSEL0, 2 * AMD64_NUM_COUNTERS) !== null ||
    inRange(msr, MSR_F15H_PERF_CTL0, 2 * AMD64_NUM_COUNTERS_CORE) !== null ||
    (msr >= MSR_AMD64_PERF_CNTR_GLOBAL_STATUS && msr <= MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_SET);
}

function ok(): Outcome {
  return { ok: true };
}

function gp(): Outcome {
  return { gp: true };
}

function value(v: bigint): Outcome {
  return { value: v };
}
