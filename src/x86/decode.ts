/**
 * @module
 * x86 numbers as the named bits a KVM engineer reads: #PF error codes, page-table
 * entries, MSR numbers and their fields, the pages of dirty-log and young bitmaps, which
 * bits of two values differ, and numbers for humans. Display only: no backend decides an
 * outcome with it (they share the constants it reads, `paging.ts` and `pmu.ts`, never
 * logic).
 *
 * Every bit position and MSR number comes from `paging.ts` / `pmu.ts`, which cite the
 * Intel SDM, the AMD APM and KVM, or carries its source here.
 *
 * Conventions: flags print as their SDM or kernel names (`P`, `USR`, `PMC0`), multi-bit
 * fields as lowercase `name=0x...`; bits this module does not name print as
 * `other=0x...` (MSRs), `ign=0x...` (ignored entry bits) or `rsvd=0x...` (reserved entry
 * bits); a set of numbers prints as sorted runs, `3,7-9`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { msrFieldDelta, msrText, pagesText, pfecNames, pteText } from "./decode.ts";
 * assert.equal(pfecNames(0x5), "P|U");
 * assert.equal(pteText(0x8000000000400067n), "P W U A D NX frame=0x400000");
 * assert.equal(msrText(0x38f), "PERF_GLOBAL_CTRL (0x38f)");
 * assert.deepEqual(msrFieldDelta(0x38f, 0x0n, 0x3n), ["PMC0", "PMC1"]);
 * assert.equal(pagesText([9, 3, 7, 8]), "3,7-9");
 * ```
 */
import {
  LEVEL_SHIFT,
  MAX_PHYS_ADDR_BITS,
  PAGE_SHIFT,
  PFERR_FETCH,
  PFERR_PK,
  PFERR_PRESENT,
  PFERR_RMP,
  PFERR_RSVD,
  PFERR_SGX,
  PFERR_SS,
  PFERR_USER,
  PFERR_WRITE,
  PG_LEVEL_1G,
  PG_LEVEL_2M,
  PG_LEVEL_4K,
  PT64_ROOT_4LEVEL,
  PTE_A,
  PTE_D,
  PTE_G,
  PTE_IGNORED_HIGH,
  PTE_IGNORED_LOW,
  PTE_LARGE_PAT,
  PTE_NX,
  PTE_P,
  PTE_PCD,
  PTE_PS,
  PTE_PWT,
  PTE_U,
  PTE_W,
} from "./paging.ts";
import {
  AMD64_NUM_COUNTERS,
  AMD64_NUM_COUNTERS_CORE,
  AMD_EVENTSEL_EVENT,
  AMD_EVENTSEL_GUESTONLY,
  AMD_EVENTSEL_HOSTONLY,
  EVENTSEL_ADAPTIVE,
  EVENTSEL_ANY,
  EVENTSEL_CMASK,
  EVENTSEL_EDGE,
  EVENTSEL_EN,
  EVENTSEL_EVENT,
  EVENTSEL_IN_TX,
  EVENTSEL_IN_TXCP,
  EVENTSEL_INT,
  EVENTSEL_INV,
  EVENTSEL_OS,
  EVENTSEL_PC,
  EVENTSEL_UMASK,
  EVENTSEL_USR,
  FIXED_CTRL_ANY,
  FIXED_CTRL_FIELD_BITS,
  FIXED_CTRL_OS,
  FIXED_CTRL_PMI,
  FIXED_CTRL_USR,
  FIXED_PMC_BASE_IDX,
  GLOBAL_CTRL_EN_PERF_METRICS,
  GLOBAL_STATUS_ASIF,
  GLOBAL_STATUS_COND_CHGD,
  GLOBAL_STATUS_COUNTERS_FROZEN,
  GLOBAL_STATUS_LBRS_FROZEN,
  GLOBAL_STATUS_OVF_BUF,
  GLOBAL_STATUS_PERF_METRICS_OVF,
  GLOBAL_STATUS_TRACE_TOPAPMI,
  GLOBAL_STATUS_UNC_OVF,
  INTEL_ARCH_FIXED_COUNTERS,
  INTEL_MAX_GP_COUNTERS,
  MSR_AMD64_PERF_CNTR_GLOBAL_CTL,
  MSR_AMD64_PERF_CNTR_GLOBAL_STATUS,
  MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR,
  MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_SET,
  MSR_F15H_PERF_CTL0,
  MSR_F15H_PERF_CTR0,
  MSR_IA32_A_PMC0,
  MSR_IA32_FIXED_CTR0,
  MSR_IA32_FIXED_CTR_CTRL,
  MSR_IA32_PERF_CAPABILITIES,
  MSR_IA32_PERF_GLOBAL_CTRL,
  MSR_IA32_PERF_GLOBAL_INUSE,
  MSR_IA32_PERF_GLOBAL_OVF_CTRL,
  MSR_IA32_PERF_GLOBAL_STATUS,
  MSR_IA32_PERF_GLOBAL_STATUS_SET,
  MSR_IA32_PERFEVTSEL0,
  MSR_IA32_PMC0,
  MSR_K7_EVNTSEL0,
  MSR_K7_PERFCTR0,
  PERF_CAP_ARCH_REG,
  PERF_CAP_FW_WRITES,
  PERF_CAP_LBR_FMT,
  PERF_CAP_PEBS_BASELINE,
  PERF_CAP_PEBS_FORMAT,
  PERF_CAP_PEBS_OUTPUT_PT,
  PERF_CAP_PEBS_TIMING_INFO,
  PERF_CAP_PEBS_TRAP,
  PERF_CAP_PERF_METRICS,
  PERF_CAP_SMM_FREEZE,
} from "./pmu.ts";

const U64_LIMIT = 1n << 64n;

function hex(value: bigint | number): string {
  return "0x" + value.toString(16);
}

function checkU64(value: bigint, what: string): void {
  if (value < 0n || value >= U64_LIMIT) {
    throw new RangeError(`Cannot decode ${what} ${value}: it is not a 64-bit unsigned value`);
  }
}

function checkU32(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new RangeError(`Cannot decode ${what} ${value}: it is not a 32-bit unsigned integer`);
  }
}

/**
 * The set bit positions of a non-negative value, ascending. Linear in its hex digits, so
 * a million-page bitmap costs a million steps, not a million bigint shifts.
 */
function setBits(value: bigint): number[] {
  const digits = value.toString(16);
  const out: number[] = [];
  for (let d = 0; d < digits.length; d++) {
    const nibble = parseInt(digits[digits.length - 1 - d]!, 16);
    for (let b = 0; b < 4; b++) if ((nibble >> b) & 1) out.push(4 * d + b);
  }
  return out;
}

/** The bits of `value` under `mask`, packed: bit k of the result is the k-th bit of `mask`. */
function extract(value: bigint, mask: bigint): bigint {
  let out = 0n;
  let k = 0n;
  for (const bit of setBits(mask)) {
    out |= ((value >> BigInt(bit)) & 1n) << k;
    k++;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Page-fault error code (SDM vol. 3A 4.7, figure "Page-Fault Error Code"; APM vol. 2 8.4.2)
// ---------------------------------------------------------------------------------------

/** Error-code bits in bit order, with the SDM's names (`paging.ts` cites each). */
const PFEC_NAMES: ReadonlyMap<number, string> = new Map([
  [PFERR_PRESENT, "P"],
  [PFERR_WRITE, "W"],
  [PFERR_USER, "U"],
  [PFERR_RSVD, "RSVD"],
  [PFERR_FETCH, "I/D"],
  [PFERR_PK, "PK"],
  [PFERR_SS, "SS"],
  [PFERR_SGX, "SGX"],
  [PFERR_RMP, "RMP"],
]);

function pfecBitNames(code: number): string[] {
  const names: string[] = [];
  for (let bit = 0; bit < 32; bit++) {
    if (((code >>> bit) & 1) === 1) names.push(PFEC_NAMES.get(2 ** bit) ?? `bit${bit}`);
  }
  return names;
}

/**
 * A #PF error code as its set bits' names in bit order, `|`-separated: `0x5` is `P|U`,
 * `0x0` is `none`. Bits the SDM does not name print as `bit<n>`.
 *
 * @throws {RangeError} `code` is not a 32-bit unsigned integer.
 */
export function pfecNames(code: number): string {
  checkU32(code, "page-fault error code");
  const names = pfecBitNames(code);
  return names.length === 0 ? "none" : names.join("|");
}

/** The names of the error-code bits that differ between `a` and `b`, in bit order. */
export function pfecDelta(a: number, b: number): string[] {
  checkU32(a, "page-fault error code");
  checkU32(b, "page-fault error code");
  return pfecBitNames((a ^ b) >>> 0);
}

// ---------------------------------------------------------------------------------------
// Page-table entries (SDM vol. 3A 4.5: table 4-15 PML4E, 4-16 PDPTE mapping 1 GiB, 4-17
// PDPTE, 4-18 PDE mapping 2 MiB, 4-19 PDE, 4-20 PTE mapping 4 KiB; docs/kvm-facts.md A.1)
// ---------------------------------------------------------------------------------------

/** How to read an entry: without options, as a 4-level entry of unknown level. */
export interface PteOptions {
  /** 1 = PTE, 2 = PDE, 3 = PDPTE, 4 = PML4E (`paging.ts` PG_LEVEL_*). */
  level?: number;
  /**
   * The entry maps a large page (2 MiB at level 2, default; 1 GiB at level 3): bit 7 is
   * PS and bit 12 PAT. Default: bit 7 of the value at levels 2 and 3, false elsewhere.
   */
  large?: boolean;
  /** Guest MAXPHYADDR: bits 51:M are reserved. Default 52 (none reserved). */
  maxPhyAddr?: number;
  /** EFER.NXE: when false, bit 63 is reserved instead of NX. Default true. */
  nx?: boolean;
}

interface PteLayout {
  /** The name of bit 7, or `undefined` where it is reserved (PML4E). */
  bit7?: "PS" | "PAT";
  /** Bit 12 is PAT (large leaves), not an address bit. */
  pat12: boolean;
  frame: bigint;
  rsvd: bigint;
}

function bitRange(high: number, low: number): bigint {
  return high < low ? 0n : ((1n << BigInt(high - low + 1)) - 1n) << BigInt(low);
}

function pteLayout(value: bigint, opts: PteOptions): PteLayout {
  const m = opts.maxPhyAddr ?? MAX_PHYS_ADDR_BITS;
  if (!Number.isInteger(m) || m <= PAGE_SHIFT || m > MAX_PHYS_ADDR_BITS) {
    throw new RangeError(
      `Cannot decode page-table entry: MAXPHYADDR ${m} is not an integer in ${
        PAGE_SHIFT + 1
      }..${MAX_PHYS_ADDR_BITS}`,
    );
  }
  const level = opts.level;
  if (level !== undefined && (!Number.isInteger(level) || level < 1 || level > 4)) {
    throw new RangeError(`Cannot decode page-table entry: level ${level} is not 1, 2, 3 or 4`);
  }
  // Bits M-1:12 hold the address; 51:M are reserved (SDM 4.5, "Reserved (must be 0)").
  const addr = bitRange(m - 1, PAGE_SHIFT);
  let rsvd = bitRange(MAX_PHYS_ADDR_BITS - 1, m);
  if (opts.nx === false) rsvd |= PTE_NX;
  const large = opts.large ?? ((level === PG_LEVEL_2M || level === PG_LEVEL_1G) &&
    (value & PTE_PS) !== 0n);
  if (large) {
    if (level === PG_LEVEL_4K || level === PT64_ROOT_4LEVEL) {
      throw new RangeError(
        `Cannot decode page-table entry: a large page is mapped at level 2 or 3, not ${level}`,
      );
    }
    // A 2 MiB (1 GiB) leaf: address bits M-1:21 (M-1:30), bit 12 PAT, bits 20:13
    // (29:13) reserved (tables 4-18 and 4-16).
    const shift = LEVEL_SHIFT[level ?? PG_LEVEL_2M]!;
    return {
      bit7: "PS",
      pat12: true,
      frame: addr & ~bitRange(shift - 1, 0),
      rsvd: rsvd | bitRange(shift - 1, PAGE_SHIFT + 1),
    };
  }
  // A PTE's bit 7 is PAT (table 4-20); a PML4E's must be 0 (table 4-15).
  if (level === PG_LEVEL_4K) return { bit7: "PAT", pat12: false, frame: addr, rsvd };
  if (level === PT64_ROOT_4LEVEL) return { pat12: false, frame: addr, rsvd: rsvd | PTE_PS };
  return { bit7: "PS", pat12: false, frame: addr, rsvd };
}

/**
 * A page-table entry as the names of its set bits, then its frame and any set ignored or
 * reserved bits: `P W U A D NX frame=0x400000`, `not-present frame=0x0`,
 * `P W PS PAT frame=0x200000 rsvd=0x2000` (a 2 MiB PDE with bit 13 set). Flags are in
 * bit order: P W U PWT PCD A D PS|PAT G PAT(bit 12 of a large leaf) NX. D and G are
 * named at every level although non-leaf entries ignore them. Any 64-bit value decodes,
 * PTE or not.
 *
 * @throws {RangeError} The value is not a u64, or an option is out of range.
 */
export function pteText(value: bigint, opts: PteOptions = {}): string {
  checkU64(value, "page-table entry");
  const layout = pteLayout(value, opts);
  const has = (bit: bigint) => (value & bit) !== 0n;
  const tokens: string[] = [has(PTE_P) ? "P" : "not-present"];
  if (has(PTE_W)) tokens.push("W");
  if (has(PTE_U)) tokens.push("U");
  if (has(PTE_PWT)) tokens.push("PWT");
  if (has(PTE_PCD)) tokens.push("PCD");
  if (has(PTE_A)) tokens.push("A");
  if (has(PTE_D)) tokens.push("D");
  if (has(PTE_PS) && layout.bit7 !== undefined) tokens.push(layout.bit7);
  if (has(PTE_G)) tokens.push("G");
  if (layout.pat12 && has(PTE_LARGE_PAT)) tokens.push("PAT");
  if (has(PTE_NX) && (layout.rsvd & PTE_NX) === 0n) tokens.push("NX");
  tokens.push(`frame=${hex(value & layout.frame)}`);
  const ign = value & (PTE_IGNORED_LOW | PTE_IGNORED_HIGH);
  if (ign !== 0n) tokens.push(`ign=${hex(ign)}`);
  const rsvd = value & layout.rsvd;
  if (rsvd !== 0n) tokens.push(`rsvd=${hex(rsvd)}`);
  return tokens.join(" ");
}

/** The flag bits `pteText` and `valueDelta` name, by position. */
const PTE_FLAG_NAMES: readonly (readonly [bigint, string])[] = [
  [PTE_P, "P"],
  [PTE_W, "W"],
  [PTE_U, "U"],
  [PTE_PWT, "PWT"],
  [PTE_PCD, "PCD"],
  [PTE_A, "A"],
  [PTE_D, "D"],
  [PTE_PS, "PS"],
  [PTE_G, "G"],
  [PTE_NX, "NX"],
];
const PTE_FLAGS = PTE_FLAG_NAMES.reduce((m, [bit]) => m | bit, 0n);

/**
 * Bits of an entry by name when they are all flags (`A`, `A|D`, `W|NX`; bit 7 is `PS`),
 * else by position (`bits 12-20`): for don't-care masks and differences of entries.
 *
 * @throws {RangeError} `bits` is not a u64.
 */
export function pteBitsText(bits: bigint): string {
  checkU64(bits, "entry bits");
  if (bits === 0n || (bits & ~PTE_FLAGS) !== 0n) return bitsText(bits);
  return PTE_FLAG_NAMES.filter(([bit]) => (bits & bit) !== 0n).map(([, n]) => n).join("|");
}

/** Present, with the ignored bits 62:52 clear: what a guest's page tables hold. */
function looksLikePte(value: bigint): boolean {
  return (value & PTE_P) !== 0n && (value & PTE_IGNORED_HIGH) === 0n;
}

// ---------------------------------------------------------------------------------------
// MSRs (SDM vol. 4 table 2-2; AMD APM vol. 2 13.2; Linux `msr-index.h`)
// ---------------------------------------------------------------------------------------

/** One named part of an MSR value. */
interface Field {
  name: string;
  mask: bigint;
  /** A multi-bit value, printed `name=0x...`; otherwise a flag, printed when set. */
  value?: true;
  /** Print the value even when it is 0 (event select, unit mask). */
  always?: true;
  /** Flags of one group print together: `FIXED_CTR0=OS|USR`, `short` being the part. */
  group?: string;
  short?: string;
  /** Flags of one family print as runs when three or more in a row are set: `PMC0-7`. */
  family?: string;
  index?: number;
}

type Layout = readonly Field[];

function flag(name: string, mask: bigint): Field {
  return { name, mask };
}

/**
 * IA32_PERFEVTSELx (SDM vol. 3B 20.2.1.1, figure "Layout of IA32_PERFEVTSELx MSRs";
 * IN_TX/IN_TXCP: the TSX facilities of ch. 20, perf_event.h HSW_IN_TX*; docs/kvm-facts.md C.2).
 */
const INTEL_EVENTSEL: Layout = [
  { name: "event", mask: EVENTSEL_EVENT, value: true, always: true },
  { name: "umask", mask: EVENTSEL_UMASK, value: true, always: true },
  flag("USR", EVENTSEL_USR),
  flag("OS", EVENTSEL_OS),
  flag("E", EVENTSEL_EDGE),
  flag("PC", EVENTSEL_PC),
  flag("INT", EVENTSEL_INT),
  flag("ANY", EVENTSEL_ANY),
  flag("EN", EVENTSEL_EN),
  flag("INV", EVENTSEL_INV),
  { name: "cmask", mask: EVENTSEL_CMASK, value: true },
  flag("IN_TX", EVENTSEL_IN_TX),
  flag("IN_TXCP", EVENTSEL_IN_TXCP),
  flag("ADAPTIVE", EVENTSEL_ADAPTIVE),
];

/**
 * PerfEvtSeln (APM vol. 2 13.2, "PerfEvtSeln" register): a 12-bit event select in bits 7:0 and 35:32, no PC
 * and no AnyThread (bits 19 and 21 are reserved), GuestOnly 40 and HostOnly 41.
 */
const AMD_EVENTSEL: Layout = [
  { name: "event", mask: AMD_EVENTSEL_EVENT, value: true, always: true },
  { name: "umask", mask: EVENTSEL_UMASK, value: true, always: true },
  flag("USR", EVENTSEL_USR),
  flag("OS", EVENTSEL_OS),
  flag("E", EVENTSEL_EDGE),
  flag("INT", EVENTSEL_INT),
  flag("EN", EVENTSEL_EN),
  flag("INV", EVENTSEL_INV),
  { name: "cmask", mask: EVENTSEL_CMASK, value: true },
  flag("GO", AMD_EVENTSEL_GUESTONLY),
  flag("HO", AMD_EVENTSEL_HOSTONLY),
];

/** IA32_FIXED_CTR_CTRL: 4 bits per fixed counter (SDM vol. 3B 20.2.2; docs/kvm-facts.md C.2). */
const FIXED_CTR_CTRL: Layout = Array.from({ length: INTEL_ARCH_FIXED_COUNTERS }, (_, i) => {
  const shift = FIXED_CTRL_FIELD_BITS * BigInt(i);
  const group = `FIXED_CTR${i}`;
  const parts = [
    ["OS", FIXED_CTRL_OS],
    ["USR", FIXED_CTRL_USR],
    ["ANY", FIXED_CTRL_ANY],
    ["PMI", FIXED_CTRL_PMI],
  ] as const;
  return parts.map(([short, bit]): Field => ({
    name: `${group}.${short}`,
    mask: bit << shift,
    group,
    short,
  }));
}).flat();

/**
 * Counter bits of the global MSRs: GP counter i is bit i and fixed counter i bit 32 + i
 * (SDM vol. 3B 20.2.2; KVM_FIXED_PMC_BASE_IDX). Bits 31:0 are named as GP counters and
 * 47:32 as fixed counters, beyond what any CPU has, so that a wrong bit still reads as
 * the counter it would stand for; bit 48 is PERF_METRICS.
 */
function counterBits(gp: number, fixed: number): Field[] {
  const out: Field[] = [];
  for (let i = 0; i < gp; i++) {
    out.push({ name: `PMC${i}`, mask: 1n << BigInt(i), family: "PMC", index: i });
  }
  for (let i = 0; i < fixed; i++) {
    out.push({
      name: `FIXED_CTR${i}`,
      mask: 1n << (FIXED_PMC_BASE_IDX + BigInt(i)),
      family: "FIXED_CTR",
      index: i,
    });
  }
  return out;
}

/** IA32_PERF_GLOBAL_CTRL (SDM vol. 3B 20.2.2; PERF_METRICS: perf_event.h). */
const INTEL_GLOBAL_CTRL: Layout = [
  ...counterBits(32, 16),
  flag("PERF_METRICS", GLOBAL_CTRL_EN_PERF_METRICS),
];

/**
 * IA32_PERF_GLOBAL_STATUS and the MSRs that clear or set its bits, OVF_CTRL
 * (STATUS_RESET) and STATUS_SET (SDM vol. 3B 20.2.2 and the version 4 facilities;
 * `perf_event.h` names).
 */
const INTEL_GLOBAL_STATUS: Layout = [
  ...counterBits(32, 16),
  flag("PERF_METRICS_OVF", GLOBAL_STATUS_PERF_METRICS_OVF),
  flag("TRACE_TOPAPMI", GLOBAL_STATUS_TRACE_TOPAPMI),
  flag("LBRS_FROZEN", GLOBAL_STATUS_LBRS_FROZEN),
  flag("COUNTERS_FROZEN", GLOBAL_STATUS_COUNTERS_FROZEN),
  flag("ASIF", GLOBAL_STATUS_ASIF),
  flag("UNC_OVF", GLOBAL_STATUS_UNC_OVF),
  flag("BUFFER_OVF", GLOBAL_STATUS_OVF_BUF),
  flag("COND_CHG", GLOBAL_STATUS_COND_CHGD),
];

/**
 * PerfMonV2 PERF_CNTR_GLOBAL_* (APM vol. 2 13.2): bit i is core counter i (at most 16:
 * CPUID 8000_0022 EBX[3:0]); status bit 58 is LbrFreeze (`arch/x86/events/amd/core.c`
 * clears it as GLOBAL_STATUS_LBRS_FROZEN).
 */
const AMD_GLOBAL: Layout = [
  ...counterBits(16, 0),
  flag("LBRS_FROZEN", GLOBAL_STATUS_LBRS_FROZEN),
];

/** IA32_PERF_CAPABILITIES (SDM vol. 4 table 2-2; msr-index.h PERF_CAP_*). */
const PERF_CAPABILITIES: Layout = [
  { name: "lbr_fmt", mask: PERF_CAP_LBR_FMT, value: true },
  flag("PEBS_TRAP", PERF_CAP_PEBS_TRAP),
  flag("ARCH_REG", PERF_CAP_ARCH_REG),
  { name: "pebs_fmt", mask: PERF_CAP_PEBS_FORMAT, value: true },
  flag("SMM_FREEZE", PERF_CAP_SMM_FREEZE),
  flag("FW_WRITE", PERF_CAP_FW_WRITES),
  flag("PEBS_BASELINE", PERF_CAP_PEBS_BASELINE),
  flag("PERF_METRICS", PERF_CAP_PERF_METRICS),
  flag("PEBS_OUTPUT_PT", PERF_CAP_PEBS_OUTPUT_PT),
  flag("PEBS_TIMING_INFO", PERF_CAP_PEBS_TIMING_INFO),
];

/** IA32_EFER (msr-index.h `_EFER_*`; SDM vol. 4 table 2-2; APM vol. 2 3.1.7). */
const EFER: Layout = [
  flag("SCE", 1n << 0n),
  flag("LME", 1n << 8n),
  flag("LMA", 1n << 10n),
  flag("NXE", 1n << 11n),
  flag("SVME", 1n << 12n),
  flag("LMSLE", 1n << 13n),
  flag("FFXSR", 1n << 14n),
  flag("TCE", 1n << 15n),
  flag("AUTOIBRS", 1n << 21n),
];

/** A plain value: a counter, or an MSR whose fields this module does not name. */
const PLAIN: Layout = [];

/** `count` MSRs from `base`, `stride` apart, named `prefix` + index. */
interface MsrBlock {
  base: number;
  count: number;
  stride: number;
  name: (i: number) => string;
  layout: Layout;
}

function one(msr: number, name: string, layout: Layout): MsrBlock {
  return { base: msr, count: 1, stride: 1, name: () => name, layout };
}

function block(base: number, count: number, prefix: string, layout: Layout, stride = 1): MsrBlock {
  return { base, count, stride, name: (i) => `${prefix}${i}`, layout };
}

/**
 * Every MSR this module names: the PMU MSRs both vendors' vPMUs emulate (docs/kvm-facts.md C.1)
 * and the few others the generators read (`fuzz/gen/pmu.ts` genRdmsr) or the kvm
 * backend refuses to write (`src/kvm/constraints.ts`). Names drop msr-index.h's
 * `MSR_IA32_` / `MSR_AMD64_` / `MSR_` prefix. Intel and AMD numbers do not overlap, so a
 * name does not depend on the vendor.
 */
const MSR_BLOCKS: readonly MsrBlock[] = [
  // Intel (SDM vol. 4 table 2-2; KVM caps GP counters at 8, the arch defines 4 fixed).
  block(MSR_IA32_PMC0, INTEL_MAX_GP_COUNTERS, "PMC", PLAIN),
  block(MSR_IA32_PERFEVTSEL0, INTEL_MAX_GP_COUNTERS, "PERFEVTSEL", INTEL_EVENTSEL),
  block(MSR_IA32_A_PMC0, INTEL_MAX_GP_COUNTERS, "A_PMC", PLAIN),
  block(MSR_IA32_FIXED_CTR0, INTEL_ARCH_FIXED_COUNTERS, "FIXED_CTR", PLAIN),
  one(MSR_IA32_FIXED_CTR_CTRL, "FIXED_CTR_CTRL", FIXED_CTR_CTRL),
  one(MSR_IA32_PERF_GLOBAL_STATUS, "PERF_GLOBAL_STATUS", INTEL_GLOBAL_STATUS),
  one(MSR_IA32_PERF_GLOBAL_CTRL, "PERF_GLOBAL_CTRL", INTEL_GLOBAL_CTRL),
  one(MSR_IA32_PERF_GLOBAL_OVF_CTRL, "PERF_GLOBAL_OVF_CTRL", INTEL_GLOBAL_STATUS),
  one(MSR_IA32_PERF_GLOBAL_STATUS_SET, "PERF_GLOBAL_STATUS_SET", INTEL_GLOBAL_STATUS),
  one(MSR_IA32_PERF_GLOBAL_INUSE, "PERF_GLOBAL_INUSE", PLAIN),
  one(MSR_IA32_PERF_CAPABILITIES, "PERF_CAPABILITIES", PERF_CAPABILITIES),
  // AMD (APM vol. 2 13.2; msr-index.h MSR_K7_*, MSR_F15H_*, MSR_AMD64_PERF_CNTR_*).
  block(MSR_K7_EVNTSEL0, AMD64_NUM_COUNTERS, "K7_EVNTSEL", AMD_EVENTSEL),
  block(MSR_K7_PERFCTR0, AMD64_NUM_COUNTERS, "K7_PERFCTR", PLAIN),
  block(MSR_F15H_PERF_CTL0, AMD64_NUM_COUNTERS_CORE, "F15H_PERF_CTL", AMD_EVENTSEL, 2),
  block(MSR_F15H_PERF_CTR0, AMD64_NUM_COUNTERS_CORE, "F15H_PERF_CTR", PLAIN, 2),
  one(MSR_AMD64_PERF_CNTR_GLOBAL_STATUS, "PERF_CNTR_GLOBAL_STATUS", AMD_GLOBAL),
  one(MSR_AMD64_PERF_CNTR_GLOBAL_CTL, "PERF_CNTR_GLOBAL_CTL", AMD_GLOBAL),
  one(MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR, "PERF_CNTR_GLOBAL_STATUS_CLR", AMD_GLOBAL),
  one(MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_SET, "PERF_CNTR_GLOBAL_STATUS_SET", AMD_GLOBAL),
  // Others (msr-index.h).
  one(0x10, "TSC", PLAIN), // MSR_IA32_TSC
  one(0x1b, "APIC_BASE", PLAIN), // MSR_IA32_APICBASE
  one(0x1a0, "MISC_ENABLE", PLAIN), // MSR_IA32_MISC_ENABLE
  one(0x1d9, "DEBUGCTL", PLAIN), // MSR_IA32_DEBUGCTLMSR
  one(0x277, "PAT", PLAIN), // MSR_IA32_CR_PAT
  one(0xc0000080, "EFER", EFER), // MSR_EFER
  one(0xc0010010, "SYSCFG", PLAIN), // MSR_AMD64_SYSCFG
  one(0xc0010015, "HWCR", PLAIN), // MSR_K7_HWCR
  one(0xc0010114, "VM_CR", PLAIN), // MSR_VM_CR
  one(0xc0010117, "VM_HSAVE_PA", PLAIN), // MSR_VM_HSAVE_PA
];

function msrInfo(msr: number): { name: string; layout: Layout } | null {
  checkU32(msr, "MSR");
  for (const b of MSR_BLOCKS) {
    const offset = msr - b.base;
    if (offset < 0 || offset % b.stride !== 0 || offset / b.stride >= b.count) continue;
    return { name: b.name(offset / b.stride), layout: b.layout };
  }
  return null;
}

/**
 * The name of an MSR without the msr-index.h prefix (`PERF_GLOBAL_CTRL`, `PMC0`,
 * `F15H_PERF_CTR5`), or `null` for an MSR this module does not know. The name does not
 * depend on the vendor: the Intel and AMD numbers named here do not overlap (an Intel
 * guest's K7_EVNTSEL0 is still K7_EVNTSEL0, one of the MSRs x86.c ignores).
 *
 * @throws {RangeError} `msr` is not a 32-bit unsigned integer.
 */
export function msrName(msr: number): string | null {
  return msrInfo(msr)?.name ?? null;
}

/** An MSR for humans: `PERF_GLOBAL_CTRL (0x38f)`, or `0x1234` when it has no name. */
export function msrText(msr: number): string {
  const name = msrName(msr);
  return name === null ? hex(msr) : `${name} (${hex(msr)})`;
}

/** The field tokens of a value under a layout, in layout order. */
function fieldTokens(layout: Layout, value: bigint): string[] {
  const tokens: string[] = [];
  for (let i = 0; i < layout.length;) {
    const f = layout[i]!;
    if (f.group !== undefined) {
      const set: string[] = [];
      for (; i < layout.length && layout[i]!.group === f.group; i++) {
        if ((value & layout[i]!.mask) !== 0n) set.push(layout[i]!.short!);
      }
      if (set.length > 0) tokens.push(`${f.group}=${set.join("|")}`);
      continue;
    }
    if (f.family !== undefined) {
      const indexes: number[] = [];
      for (; i < layout.length && layout[i]!.family === f.family; i++) {
        if ((value & layout[i]!.mask) !== 0n) indexes.push(layout[i]!.index!);
      }
      tokens.push(...familyTokens(f.family, indexes));
      continue;
    }
    i++;
    const v = extract(value, f.mask);
    if (f.value) {
      if (v !== 0n || f.always) tokens.push(`${f.name}=${hex(v)}`);
    } else if (v !== 0n) {
      tokens.push(f.name);
    }
  }
  const named = layout.reduce((m, f) => m | f.mask, 0n);
  const other = value & ~named;
  if (other !== 0n) tokens.push(`other=${hex(other)}`);
  return tokens;
}

/** `PMC0 PMC1` for short runs, `PMC0-7` for runs of three or more. */
function familyTokens(family: string, sorted: readonly number[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    if (j - i >= 2) out.push(`${family}${sorted[i]}-${sorted[j]}`);
    else for (let k = i; k <= j; k++) out.push(`${family}${sorted[k]}`);
    i = j + 1;
  }
  return out;
}

/**
 * An MSR value decoded into its fields: an event select as
 * `event=0xc0 umask=0x0 USR OS EN`, FIXED_CTR_CTRL as `FIXED_CTR0=OS|USR|PMI`, a global
 * control or status MSR as its counter bits (`PMC0 PMC1 FIXED_CTR0`, `none` when 0);
 * counters and MSRs without a known layout as plain hex. Bits no field covers print as
 * `other=0x...`.
 *
 * @throws {RangeError} `msr` is not a u32 or `value` not a u64.
 */
export function msrFields(msr: number, value: bigint): string {
  const info = msrInfo(msr);
  checkU64(value, `MSR ${hex(msr)} value`);
  if (info === null || info.layout.length === 0) return hex(value);
  const tokens = fieldTokens(info.layout, value);
  return tokens.length === 0 ? "none" : tokens.join(" ");
}

/**
 * The fields of an MSR whose values differ between `a` and `b`, in layout order:
 * `["PMC0", "PMC1"]` for PERF_GLOBAL_CTRL 0x0 vs 0x3, `["IN_TXCP"]` for an event select,
 * `["FIXED_CTR1.PMI"]`. Bits no field covers, and the whole of a counter or an unknown
 * MSR, are named by position (`bits 32-47`). Empty when the values are equal.
 *
 * @throws {RangeError} `msr` is not a u32 or a value not a u64.
 */
export function msrFieldDelta(msr: number, a: bigint, b: bigint): string[] {
  const info = msrInfo(msr);
  checkU64(a, `MSR ${hex(msr)} value`);
  checkU64(b, `MSR ${hex(msr)} value`);
  const diff = a ^ b;
  if (diff === 0n) return [];
  const layout = info?.layout ?? PLAIN;
  const out = layout.filter((f) => (diff & f.mask) !== 0n).map((f) => f.name);
  const other = diff & ~layout.reduce((m, f) => m | f.mask, 0n);
  if (other !== 0n) out.push(bitsText(other));
  return out;
}

// ---------------------------------------------------------------------------------------
// Pages, bits, value differences
// ---------------------------------------------------------------------------------------

/**
 * Pages `first` to `last`, both included: the shape of a `PageRun` of the trace's page
 * sets, so that those pass as they are.
 */
export type PageRange = readonly [first: number, last: number];

/**
 * A set of pages: a bitmap (bit i = page i), a list of page numbers in any order, or
 * runs of pages (`[[3, 3], [7, 9]]`, in any order, may overlap). Runs cost memory by the
 * run, so a whole 2^30-page slot is one entry.
 */
export type PageSet = bigint | readonly number[] | readonly PageRange[];

function checkBitmap(bits: bigint): void {
  if (bits < 0n) throw new RangeError(`Cannot read bitmap ${bits}: it is negative`);
}

/** The pages of a bitmap (bit i = page i), ascending. Linear in its hex digits. */
export function pagesOfBitmap(bits: bigint): number[] {
  checkBitmap(bits);
  return setBits(bits);
}

function checkPage(p: unknown, where: string): number {
  if (typeof p !== "number" || !Number.isSafeInteger(p) || p < 0) {
    throw new RangeError(`Cannot ${where}: page ${String(p)} is not a non-negative integer`);
  }
  return p;
}

/** Ascending numbers (repeats allowed) as sorted, disjoint, non-touching runs. */
function runsOfSorted(sorted: readonly number[]): PageRange[] {
  const out: [number, number][] = [];
  for (const p of sorted) {
    const tail = out[out.length - 1];
    if (tail !== undefined && p <= tail[1] + 1) tail[1] = Math.max(tail[1], p);
    else out.push([p, p]);
  }
  return out;
}

/** Any page set as sorted, disjoint, non-touching runs. */
function runsOf(pages: PageSet | Iterable<number>, where: string): PageRange[] {
  if (typeof pages === "bigint") return runsOfSorted(pagesOfBitmap(pages));
  const items = [...pages] as unknown[];
  if (items.length > 0 && Array.isArray(items[0])) {
    const runs = items.map((run, i) => {
      if (!Array.isArray(run) || run.length !== 2) {
        throw new RangeError(`Cannot ${where}: run ${i} is not a [first, last] pair`);
      }
      const first = checkPage(run[0], where), last = checkPage(run[1], where);
      if (first > last) throw new RangeError(`Cannot ${where}: run ${i} runs backwards`);
      return [first, last] as [number, number];
    }).sort((a, b) => a[0] - b[0]);
    const out: [number, number][] = [];
    for (const [first, last] of runs) {
      const tail = out[out.length - 1];
      if (tail !== undefined && first <= tail[1] + 1) tail[1] = Math.max(tail[1], last);
      else out.push([first, last]);
    }
    return out;
  }
  return runsOfSorted(items.map((p) => checkPage(p, where)).sort((a, b) => a - b));
}

/** Pages of `a` not in `b` (both canonical runs). One pass over both. */
function minusRuns(a: readonly PageRange[], b: readonly PageRange[]): PageRange[] {
  const out: [number, number][] = [];
  let j = 0;
  for (const [first, last] of a) {
    let from = first;
    while (j < b.length && b[j]![1] < from) j++;
    for (let k = j; k < b.length && b[k]![0] <= last && from <= last; k++) {
      const [bf, bl] = b[k]!;
      if (bf > from) out.push([from, bf - 1]);
      from = Math.max(from, bl + 1);
    }
    if (from <= last) out.push([from, last]);
  }
  return out;
}

/** Canonical runs as text: `3,7-9`. */
function runsText(runs: readonly PageRange[]): string {
  return runs.map(([first, last]) => first === last ? `${first}` : `${first}-${last}`).join(",");
}

/**
 * Pages as sorted runs, `3,7-9` (the page-list form of the trace format), or `none`.
 * Order and repeats do not matter.
 *
 * @throws {RangeError} A page is not a non-negative safe integer, or the bitmap is negative.
 */
export function pagesText(pages: PageSet | Iterable<number>): string {
  const runs = runsOf(pages, "format pages");
  return runs.length === 0 ? "none" : runsText(runs);
}

/**
 * Which pages `observed` lacks (`missing`: expected, not observed) and which it has too
 * many (`extra`), leaving out the pages of `dontCare`, as sorted runs (print them with
 * `pagesText`). Runs, not page lists, so that a bitmap wrong across a huge slot stays
 * small. Each set may be a bitmap, a page list or runs.
 *
 * @throws {RangeError} A bitmap is negative or a page not a non-negative integer.
 */
export function bitmapDelta(
  observed: PageSet,
  expected: PageSet,
  dontCare: PageSet = 0n,
): { missing: PageRange[]; extra: PageRange[] } {
  const o = runsOf(observed, "compare pages");
  const e = runsOf(expected, "compare pages");
  const dc = runsOf(dontCare, "compare pages");
  return { missing: minusRuns(minusRuns(e, o), dc), extra: minusRuns(minusRuns(o, e), dc) };
}

/**
 * The set bit positions of a value as runs: `bit 5`, `bits 5-6`, `bits 12-20,63`, or
 * `no bits` for 0.
 *
 * @throws {RangeError} `value` is negative.
 */
export function bitsText(value: bigint): string {
  if (value < 0n) throw new RangeError(`Cannot list the bits of ${value}: it is negative`);
  const bits = setBits(value);
  if (bits.length === 0) return "no bits";
  return `${bits.length === 1 ? "bit" : "bits"} ${runsText(runsOfSorted(bits))}`;
}

/**
 * Which bits of two values differ: PTE flag names (`A`, `A|D`, `NX`) when only flag
 * positions differ and both values look like PTEs (present, bits 62:52 clear), else the
 * positions (`bits 12-20`); `none` when they are equal.
 *
 * @throws {RangeError} A value is not a u64.
 */
export function valueDelta(observed: bigint, expected: bigint): string {
  checkU64(observed, "value");
  checkU64(expected, "value");
  const diff = observed ^ expected;
  if (diff === 0n) return "none";
  return looksLikePte(observed) && looksLikePte(expected) ? pteBitsText(diff) : bitsText(diff);
}

// ---------------------------------------------------------------------------------------
// Numbers and long text for humans
// ---------------------------------------------------------------------------------------

function groupThousands(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/**
 * A number for humans, with `unit` after a space: integers with thousands separators
 * (`1,234,567`), others to two decimals from 1 up (`12.35 s`) and two significant digits
 * below (`0.17 s`, `0.0012 s`). NaN and infinities print as JavaScript does.
 */
export function formatNumber(x: number, unit?: string): string {
  const suffix = unit === undefined || unit === "" ? "" : ` ${unit}`;
  if (!Number.isFinite(x)) return `${x}${suffix}`;
  const sign = x < 0 ? "-" : "";
  const abs = Math.abs(x);
  let text: string;
  if (Number.isInteger(abs)) text = groupThousands(abs.toFixed(0));
  else if (abs >= 1) {
    const [whole, frac] = abs.toFixed(2).split(".") as [string, string];
    text = `${groupThousands(whole)}.${frac}`;
  } else text = abs.toPrecision(2);
  return `${sign}${text}${suffix}`;
}

/**
 * Splits a long string into lines of at most `width` characters, after a space or a
 * comma where it can (the space is dropped), mid-token otherwise (a hex bitmap).
 *
 * @throws {RangeError} `width` is not a positive integer.
 */
export function wrapText(s: string, width = 100): string[] {
  if (!Number.isInteger(width) || width < 1) {
    throw new RangeError(`Cannot wrap text: width ${width} is not a positive integer`);
  }
  const lines: string[] = [];
  let rest = s;
  while (rest.length > width) {
    const window = rest.slice(0, width + 1);
    const cut = Math.max(window.lastIndexOf(" "), window.slice(0, width).lastIndexOf(","));
    if (cut <= 0) {
      lines.push(rest.slice(0, width));
      rest = rest.slice(width);
    } else if (rest[cut] === " ") {
      lines.push(rest.slice(0, cut));
      rest = rest.slice(cut + 1);
    } else {
      lines.push(rest.slice(0, cut + 1));
      rest = rest.slice(cut + 1);
    }
  }
  lines.push(rest);
  return lines;
}
