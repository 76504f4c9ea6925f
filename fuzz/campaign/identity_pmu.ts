/**
 * @module
 * The vPMU delta decoding of a finding's identity (docs/identity.md): which counter an
 * op reads or writes, how a counter's value differs from the architecture's modulo its
 * width, an overflow status's delta by counter class, and what an RDPMC the
 * architecture refuses read instead, named relative to ECX. Pure functions of the
 * divergence and the config; the probes that rerun the trace are `identity_probes.ts`.
 */
import type { Divergence } from "../../src/diff.ts";
import {
  INTEL_RDPMC_INDEX_MASK,
  INTEL_RDPMC_TYPE_FIXED,
  INTEL_RDPMC_TYPE_GP,
} from "../../src/x86/pmu.ts";
import type { Config, Op } from "../../src/trace/types.ts";
import { bitRuns, valueDelta } from "./identity_values.ts";
import { msrClass } from "./identity_where.ts";

/** True for a counter delta that cuts or extends a value at a width (a write's bug, not a count's). */
export function isWidthDelta(delta: string): boolean {
  return /truncated|sign-extended/.test(delta);
}

/** The MSR class of a counter write, AMD's K7 and F15H counter aliases as one. */
export function writerClass(msr: number, config: Config): string {
  const cls = msrClass(msr, config.vendor);
  // AMD's K7 and F15H counter MSRs are one counter's aliases with one write path.
  return cls === "K7_PERFCTR" || cls === "F15H_PERF_CTR" ? "AMD counter" : cls;
}

/** The counters' values, GP and fixed, as the architecture holds them. */
export interface CounterValues {
  gp: bigint[];
  fixed: bigint[];
}

/**
 * What an RDPMC the architecture refuses (#GP) read instead, found by matching the
 * value it returned with the counters the reference holds: `GP counter ECX[15:0]`, the
 * fixed one, their low 32 bits (the legacy "fast" read), a counter past the last (reads
 * 0), or `a value no counter holds`. Named relative to ECX, not by index, so that one
 * decoding bug is one identity whichever counter a trace reads. When several readings
 * give the value, the first in this order wins: the counter of the index's own type,
 * then of the other type, then the low halves.
 *
 * Intel ECX (SDM vol. 2B RDPMC; KVM intel_rdpmc_ecx_to_pmc): bit 30 selects the fixed
 * counters, ECX[15:0] is the index. AMD (APM vol. 3 RDPMC): the whole ECX is the index;
 * a core that ignores bits 31:30 reads ECX[29:0].
 */
export function refusedRdpmcRead(
  ecx: number,
  value: bigint,
  counters: CounterValues | undefined,
  config: Config,
): { key: string; text: string } {
  ecx >>>= 0;
  const low32 = (v: bigint) => v & 0xffff_ffffn;
  // Without the ops before it (a backend with no history) only a read past the last
  // counter can be told from the value alone.
  const unknown = { key: "value", text: "" };
  if (config.vendor === "amd") {
    const index = ecx & 0x3fff_ffff;
    const c = counters?.gp[index];
    if (index >= config.pmu.gp) {
      return value === 0n
        ? { key: "reads 0 past the last counter", text: "0, past the last GP counter" }
        : counters === undefined
        ? unknown
        : { key: "a value no counter holds", text: "no counter's value" };
    }
    if (counters === undefined) return unknown;
    if (c === value) return { key: "reads counter ECX[29:0]", text: `counter ${index}` };
    if (c !== undefined && low32(c) === value) {
      return {
        key: "reads the low 32 bits of counter ECX[29:0]",
        text: `low half of counter ${index}`,
      };
    }
    return { key: "a value no counter holds", text: "no counter's value" };
  }
  const index = ecx & INTEL_RDPMC_INDEX_MASK;
  const own = (ecx & INTEL_RDPMC_TYPE_FIXED) !== 0 ? "fixed" : "GP";
  const other = own === "fixed" ? "GP" : "fixed";
  const held = (type: string) => type === "fixed" ? counters?.fixed[index] : counters?.gp[index];
  const exists = (type: string) => index < (type === "fixed" ? config.pmu.fixed : config.pmu.gp);
  if (!exists(own) && value === 0n) {
    return { key: "reads 0 past the last counter", text: `0, past the last ${own} counter` };
  }
  if (counters === undefined) return unknown;
  const order = [own, other].filter(exists);
  for (const type of order) {
    if (held(type) === value) {
      return { key: `reads ${type} counter ECX[15:0]`, text: `${type} counter ${index}` };
    }
  }
  for (const type of order) {
    const v = held(type);
    if (v !== undefined && low32(v) === value) {
      return {
        key: `reads the low 32 bits of ${type} counter ECX[15:0]`,
        text: `low half of ${type} counter ${index}`,
      };
    }
  }
  return { key: "a value no counter holds", text: "no counter's value" };
}

/**
 * Where an RDPMC the architecture refuses stands, in what made the architecture refuse
 * it: on Intel a type in ECX[31:16] other than GP and fixed (the "fast" bit 31, the
 * metrics type, any other), or an index past its type's counters; on AMD bits 31:30
 * set, or an index past the counters. The reserved types are one class: which of them a
 * core accepts is told by what it read ({@linkcode refusedRdpmcRead}).
 */
export function refusedRdpmcWhere(ecx: number, config: Config): string {
  ecx >>>= 0;
  if (config.vendor === "amd") {
    if (ecx >>> 30 !== 0) return "rdpmc AMD bits 31:30 set";
    return `rdpmc index ${ecx < config.pmu.gp ? "in range" : "out of range"}`;
  }
  const type = (ecx & ~INTEL_RDPMC_INDEX_MASK) >>> 0;
  if (type !== INTEL_RDPMC_TYPE_GP && type !== INTEL_RDPMC_TYPE_FIXED) {
    return "rdpmc reserved type";
  }
  const fixed = type === INTEL_RDPMC_TYPE_FIXED;
  const index = ecx & INTEL_RDPMC_INDEX_MASK;
  // One check in KVM bounds the index by its type's count (intel_rdpmc_ecx_to_pmc), so
  // an index past the GP and one past the fixed counters are one class.
  return `rdpmc index ${
    index < (fixed ? config.pmu.fixed : config.pmu.gp) ? "in range" : "out of range"
  }`;
}

/** True for an RDPMC the backend answered with a value where the architecture refuses. */
export function isRefusedRdpmcRead(d: Divergence): boolean {
  return d.op.op === "rdpmc" && "value" in d.observed &&
    d.permitted.every((p) => !("value" in p.outcome));
}

/**
 * How a counter's value differs from the architecture's, modulo the counter's width
 * (`width`): a difference of 2^32 is the sign extension of a write's bit 31 (a legacy
 * PMCn write is sign-extended from bit 31, a full-width A_PMCn write is not: SDM vol. 3B
 * 21.2.6), missing or extra, whatever the counter counted since; otherwise the
 * cut/extend patterns of {@linkcode valueDelta}; otherwise whether the counter counted
 * more or fewer events (the signed difference modulo the width, so that a wrap does not
 * turn "more" into "lower").
 */
export function counterDelta(observed: bigint, expected: bigint, width: number): string {
  if (observed === expected) return "same";
  const w = BigInt(width);
  const m = 1n << w;
  const inWidth = observed < m && expected < m && observed >= 0n && expected >= 0n;
  if (inWidth && w > 33n) {
    const diff = (((observed - expected) % m) + m) % m;
    if (diff === 1n << 32n) return "bit 31 not sign-extended";
    if (diff === m - (1n << 32n)) return "bit 31 sign-extended";
  }
  const pattern = valueDelta(observed, expected, "counter");
  if (pattern !== "higher" && pattern !== "lower" || !inWidth) return pattern;
  const diff = (((observed - expected) % m) + m) % m;
  return diff < m / 2n ? "counts more" : "counts fewer";
}

/** The width of the counter an op reads (GP or fixed), or undefined. */
export function counterWidth(op: Op, config: Config): number | undefined {
  const c = counterOf(op, config);
  if (c === undefined) return undefined;
  return c.startsWith("fixed") ? config.pmu.fixedWidth : config.pmu.gpWidth;
}

/** True for a read of the overflow status (Intel PERF_GLOBAL_STATUS, AMD PERF_CNTR_GLOBAL_STATUS). */
export function isStatusRead(op: Op, config: Config): boolean {
  return op.op === "rdmsr" && msrClass(op.msr, config.vendor).endsWith("GLOBAL_STATUS");
}

/**
 * The counters whose overflow bits differ between a status read's value and the
 * architecture's: bit N is GP counter N, bit 32 + N fixed counter N (SDM vol. 3B
 * Figure 21-9; AMD PERF_CNTR_GLOBAL_STATUS: APM vol. 2 13.2.2, GP bits only).
 */
export function statusCounters(d: Divergence, config: Config): (c: string) => boolean {
  const o = d.observed, q = d.permitted[0]?.outcome;
  if (q === undefined || !("value" in o) || !("value" in q)) return () => true;
  const x = o.value ^ q.value;
  const set = new Set<string>();
  for (let i = 0; i < 32; i++) if ((x >> BigInt(i)) & 1n) set.add(`gp ${i}`);
  if (config.vendor === "intel") {
    for (let i = 0; i < 16; i++) if ((x >> BigInt(32 + i)) & 1n) set.add(`fixed ${i}`);
  }
  return set.size === 0 ? () => true : (c) => set.has(c);
}

/**
 * A status value's delta with its overflow bits named by the counter class they belong
 * to (`GP overflow set`, `fixed overflow clear`) and other bits by position: which GP
 * counter overflowed depends on the trace, not on the bug.
 */
export function statusDelta(observed: bigint, expected: bigint, config: Config): string {
  const x = observed ^ expected;
  const words: string[] = [];
  for (const [what, v] of [["set", observed & x], ["clear", expected & x]] as const) {
    if (v === 0n) continue;
    const gp = (v & 0xffff_ffffn) !== 0n;
    const fixed = config.vendor === "intel" && ((v >> 32n) & 0xffffn) !== 0n;
    const rest = config.vendor === "intel" ? v >> 48n << 48n : v >> 32n << 32n;
    const names = [
      gp ? "GP overflow" : "",
      fixed ? "fixed overflow" : "",
      rest !== 0n ? `bits ${bitRuns(rest)}` : "",
    ]
      .filter((t) => t !== "");
    words.push(`${names.join(" and ")} ${what}`);
  }
  return words.join(", ");
}

/** The value delta of a value-against-value divergence of a vPMU counter read, or "". */
export function valueDeltaOf(d: Divergence, config: Config): string {
  const o = d.observed, q = d.permitted[0]?.outcome;
  if (q === undefined || !("value" in o) || !("value" in q)) return "";
  return counterDelta(o.value, q.value, counterWidth(d.op, config) ?? 64);
}

/**
 * `counter read GP` / `counter read fixed` for a read of a counter's value (an RDMSR of
 * any of its MSRs, or an RDPMC both sides answer with a value), else undefined.
 */
export function counterRead(d: Divergence, config: Config): string | undefined {
  const op = d.op;
  if (op.op === "rdpmc") {
    const values = "value" in d.observed && d.permitted.every((p) => "value" in p.outcome);
    if (!values) return undefined;
  } else if (op.op !== "rdmsr") return undefined;
  const c = counterOf(op, config);
  return c === undefined ? undefined : `counter read ${c.startsWith("fixed") ? "fixed" : "GP"}`;
}

/**
 * The counter an op reads or writes, as `gp N` or `fixed N` (PMCn and A_PMCn alias one
 * GP counter; on AMD K7_PERFCTRn and F15H_PERF_CTRn do), or undefined.
 */
export function counterOf(op: Op, config: Config): string | undefined {
  if (op.op === "rdpmc") {
    const ecx = op.ecx >>> 0;
    if (config.vendor === "amd") return `gp ${ecx}`;
    return (ecx & 0x4000_0000) !== 0 ? `fixed ${ecx & 0xffff}` : `gp ${ecx & 0xffff}`;
  }
  if (op.op !== "rdmsr" && op.op !== "wrmsr") return undefined;
  const m = op.msr;
  if (m >= 0xc1 && m < 0xc9) return `gp ${m - 0xc1}`;
  if (m >= 0x4c1 && m < 0x4c9) return `gp ${m - 0x4c1}`;
  if (m >= 0x309 && m < 0x310) return `fixed ${m - 0x309}`;
  if (m >= 0xc0010004 && m < 0xc0010008) return `gp ${m - 0xc0010004}`;
  if (m >= 0xc0010200 && m < 0xc0010210 && (m & 1) === 1) return `gp ${(m - 0xc0010201) / 2}`;
  return undefined;
}

/** vPMU events that say how a burst of events was counted (or not) in a counter. */
export const COUNTING: readonly string[] = [
  "pmu:filterDenyGp",
  "pmu:filterDenyFixed",
  "pmu:hardwareCounted",
  "pmu:triggerCounted",
];
