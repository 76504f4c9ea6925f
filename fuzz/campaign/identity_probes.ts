/**
 * @module
 * The probes of a finding's identity (docs/identity.md "Probes"): reruns of the trace
 * prefix, with read-only or verified probe ops appended, on the reference (what a
 * correct machine held where the backend went wrong) and on the diverging backend made
 * as the diff made it. They name the counter write that went wrong, what the counters
 * hold at an overflow status or PMI count, and how the backend decodes a refused
 * RDPMC's ECX. Probes a backend cannot run are skipped. The façade is `identity.ts`.
 */
import type { Backend, BackendFactory, StepResult } from "../../src/backend.ts";
import { backendOptionsOf, type DiffOptions, type Divergence } from "../../src/diff.ts";
import { outcomeKind } from "../../src/trace/outcome.ts";
import { ReferenceBackend } from "../../src/reference/mod.ts";
import { opArea } from "../../src/trace/ops.ts";
import {
  INTEL_RDPMC_TYPE_FIXED,
  MSR_F15H_PERF_CTR0,
  MSR_IA32_FIXED_CTR0,
  MSR_IA32_PMC0,
  MSR_K7_PERFCTR0,
} from "../../src/x86/pmu.ts";
import type { Config, Op, Outcome, Trace } from "../../src/trace/types.ts";
import {
  counterDelta,
  counterOf,
  counterRead,
  type CounterValues,
  isStatusRead,
  isWidthDelta,
  statusCounters,
  writerClass,
} from "./identity_pmu.ts";

/**
 * The canonical outcomes the reference gives for `ops` run from reset, or undefined when
 * it throws. The identity reads the architecture's state with probe ops appended after
 * (or inserted between) the ops before a divergence: what a correct machine held where
 * the backend went wrong. Only the outcomes are used, never the reference's internals.
 */
export function referenceOutcomes(config: Config, ops: readonly Op[]): Outcome[] | undefined {
  try {
    const ref = new ReferenceBackend(config);
    return ops.map((op) => ref.step(op));
  } catch {
    return undefined;
  }
}

/** The ops before the diverging one, when the backend recorded them (its history). */
export function opsBefore(d: Divergence): Op[] | undefined {
  return d.history?.map((h) => h.op);
}

/**
 * What the identity needs to run probes (docs/identity.md "Probes"): the backend that
 * diverged, made as the diff made it (same injected bugs, same corrections), and the
 * trace. Without it the identity decodes from the divergence and the reference alone.
 */
export interface Probes {
  /** The diverging backend's factory. */
  factory: BackendFactory;
  /** The diverging trace (its ops before the divergence are the probes' prefix). */
  trace: Trace;
  /** The diff's options: the probes' backend gets the same `inject` and `fix`. */
  diff?: DiffOptions;
}

/** The outcomes of a probe run's last ops, on the backend and on the reference. */
interface ProbeResult {
  backend: Outcome[];
  reference: Outcome[];
}

/** The ops before the diverging one: the history's, else the trace's (a backend without one). */
function prefixOf(d: Divergence, probes: Probes): Op[] {
  return opsBefore(d) ?? probes.trace.ops.slice(0, d.index);
}

/**
 * Runs `ops` then `tail` on a fresh backend (as the diff made it) and on a fresh
 * reference, and returns the outcomes of `tail` on both, or undefined when the backend
 * cannot run a probe op (it refuses it, throws, or crashes: the probe is skipped).
 * Ops of `ops` the backend refuses are left out on both sides, as the diff does.
 * Probes are read-only or verified by the caller; both sides run the same ops.
 */
function runProbe(probes: Probes, config: Config, ops: readonly Op[], tail: readonly Op[]):
  | ProbeResult
  | undefined {
  const all = [...ops, ...tail];
  let backend: Backend;
  try {
    backend = probes.factory.create(config, backendOptionsOf(probes.diff ?? {}));
  } catch {
    return undefined;
  }
  let results: StepResult[];
  try {
    if (backend.stepMany !== undefined) results = backend.stepMany(all);
    else {
      results = [];
      for (const op of all) {
        const why = backend.supports?.(op) ?? null;
        results.push(why === null ? backend.step(op) : { skip: why });
      }
    }
  } catch {
    return undefined;
  } finally {
    backend.close();
  }
  const out = results.slice(ops.length);
  if (out.length !== tail.length || out.some((r) => "skip" in r || "crash" in r)) return undefined;
  const ran = all.filter((_, i) => !("skip" in results[i]!));
  const ref = referenceOutcomes(config, ran);
  if (ref === undefined) return undefined;
  return { backend: out as Outcome[], reference: ref.slice(ran.length - tail.length) };
}

/**
 * A CPL-0 RDPMC of every counter (GP, then fixed on an Intel version-2 vPMU), each as
 * `gp N` / `fixed N`. A read has no effect on a counter.
 */
function counterReads(config: Config): { counter: string; op: Op }[] {
  const reads: { counter: string; op: Op }[] = [];
  for (let i = 0; i < config.pmu.gp; i++) {
    reads.push({ counter: `gp ${i}`, op: { op: "rdpmc", ecx: i, user: false } });
  }
  const fixed = config.vendor === "intel" && config.pmu.version >= 2 ? config.pmu.fixed : 0;
  for (let i = 0; i < fixed; i++) {
    reads.push({
      counter: `fixed ${i}`,
      op: { op: "rdpmc", ecx: (INTEL_RDPMC_TYPE_FIXED | i) >>> 0, user: false },
    });
  }
  return reads;
}

/**
 * The probe of a counter's writes: for each counter that matters, its last write before
 * the diverging op, latest first (at most four), the prefix is run up to just after it
 * with an RDMSR of the MSR it wrote appended, on the backend and on the reference. The
 * first whose value the backend holds cut or extended at a width against the
 * architecture's (`bit 31 not sign-extended`, `not truncated to 32 bits`, ...) is the
 * write that went wrong, whatever was counted or signalled after it. A count that is
 * off right after the write (the WRMSR itself is an instruction KVM may count) is not
 * a write's delta and is passed over.
 */
function wrongWrite(
  d: Divergence,
  config: Config,
  probes: Probes,
  matters: (c: string) => boolean,
): { counter: string; writer: string; delta: string; held: bigint; arch: bigint } | undefined {
  const ops = prefixOf(d, probes);
  const last = new Map<string, number>();
  for (let i = ops.length - 1; i >= 0; i--) {
    const op = ops[i]!;
    if (op.op !== "wrmsr") continue;
    const c = counterOf(op, config);
    if (c === undefined || !matters(c) || last.has(c)) continue;
    last.set(c, i);
  }
  const writes = [...last].sort((a, b) => b[1] - a[1]).slice(0, 4);
  for (const [counter, i] of writes) {
    const w = ops[i]!;
    if (w.op !== "wrmsr") continue;
    const r = runProbe(probes, config, ops.slice(0, i + 1), [{ op: "rdmsr", msr: w.msr }]);
    const b = r?.backend[0], a = r?.reference[0];
    if (b === undefined || a === undefined || !("value" in b) || !("value" in a)) continue;
    const width = counter.startsWith("fixed") ? config.pmu.fixedWidth : config.pmu.gpWidth;
    const delta = counterDelta(b.value, a.value, width);
    if (!isWidthDelta(delta)) continue;
    return { counter, writer: writerClass(w.msr, config), delta, held: b.value, arch: a.value };
  }
  return undefined;
}

/**
 * The write that went wrong behind a vPMU divergence, by probe ({@linkcode wrongWrite}):
 * for a counter read (both sides a value) the read counter's last write, for an
 * overflow status the counters whose bits differ, for a PMI count every counter's.
 * Such a divergence is the write's bug, whichever way it showed later (a value cut at
 * a width, a spurious overflow, a PMI more or fewer), and is identified by the write.
 */
export function wrongWriteOf(d: Divergence, config: Config, probes: Probes) {
  if (d.kind !== "divergence" || opArea(d.op.op) !== "pmu") return undefined;
  if (d.op.op === "pmis") return wrongWrite(d, config, probes, () => true);
  if (isStatusRead(d.op, config)) return wrongWrite(d, config, probes, statusCounters(d, config));
  const counter = counterRead(d, config) === undefined ? undefined : counterOf(d.op, config);
  if (counter === undefined) return undefined;
  return wrongWrite(d, config, probes, (c) => c === counter);
}

/**
 * The origin of a divergence on a backend without a history (the kvm one), by probe
 * only: what the counters hold at an overflow status or PMI count.
 */
export function probedOrigin(d: Divergence, config: Config, probes: Probes): string | undefined {
  if (d.kind !== "divergence") return undefined;
  if (d.op.op === "pmis") return countersAtOp(d, config, probes, () => true);
  if (isStatusRead(d.op, config)) return countersAtOp(d, config, probes, statusCounters(d, config));
  return undefined;
}

/**
 * The probe of the counters at the diverging op (an overflow status or a PMI count):
 * the prefix with a CPL-0 RDPMC of every counter that matters appended, on the backend
 * and on the reference. `counters agree` when the backend holds every value the
 * architecture does (the overflow or PMI went wrong on its own), else how they differ
 * by counter class (`GP counts more`, `fixed bit 31 not sign-extended`), or undefined.
 */
export function countersAtOp(
  d: Divergence,
  config: Config,
  probes: Probes,
  matters: (c: string) => boolean,
): string | undefined {
  const reads = counterReads(config).filter((r) => matters(r.counter));
  if (reads.length === 0) return undefined;
  const r = runProbe(probes, config, prefixOf(d, probes), reads.map((x) => x.op));
  if (r === undefined) return undefined;
  const words = new Set<string>();
  reads.forEach((x, k) => {
    const b = r.backend[k]!, a = r.reference[k]!;
    if (!("value" in b) || !("value" in a)) return;
    const fixed = x.counter.startsWith("fixed");
    const delta = counterDelta(
      b.value,
      a.value,
      fixed ? config.pmu.fixedWidth : config.pmu.gpWidth,
    );
    // A count that is off is named without its direction: how much a counter counted
    // by the op follows the trace; a value cut or extended at a width is named.
    const word = /^counts (more|fewer)$/.test(delta) ? "count differs" : delta;
    if (delta !== "same") words.add(`${fixed ? "fixed" : "GP"} ${word}`);
  });
  return words.size === 0 ? "counters agree" : `counters ${[...words].sort().join(", ")}`;
}

/**
 * The values the probe of a refused RDPMC writes: every counter a distinct value, with
 * distinct low 32 bits and distinct bits above them, so that what a refused RDPMC read
 * names one counter and one way of reading it even where the trace left every counter
 * 0. Intel GP counters get a legacy PMCn write of a value with bit 31 set (sign-extended
 * by the architecture to the width: SDM vol. 3B 21.2.6), fixed counters and AMD
 * counters a value above 2^32.
 */
function distinctWrites(config: Config): { counter: string; op: Op }[] {
  const writes: { counter: string; op: Op }[] = [];
  const low = (base: number, i: number) => BigInt(base + (i + 1) * 0x0102_0000);
  for (let i = 0; i < config.pmu.gp; i++) {
    if (config.vendor === "intel") {
      writes.push({
        counter: `gp ${i}`,
        op: { op: "wrmsr", msr: MSR_IA32_PMC0 + i, value: low(0x8000_0000, i) },
      });
    } else {
      // K7_PERFCTR0..3 alias counters 0-3 on every AMD vPMU; the others exist only as
      // F15H PERF_CTRn (PerfCtrExtCore; APM vol. 2 13.2; src/reference/pmu.ts amdRole).
      const msr = i < 4 ? MSR_K7_PERFCTR0 + i : MSR_F15H_PERF_CTR0 + 2 * i;
      writes.push({
        counter: `gp ${i}`,
        op: { op: "wrmsr", msr, value: (BigInt(0x20 + i) << 32n) | low(0x2000_0000, i) },
      });
    }
  }
  const fixed = config.vendor === "intel" && config.pmu.version >= 2 ? config.pmu.fixed : 0;
  for (let i = 0; i < fixed; i++) {
    writes.push({
      counter: `fixed ${i}`,
      op: {
        op: "wrmsr",
        msr: MSR_IA32_FIXED_CTR0 + i,
        value: (BigInt(0x10 + i) << 32n) | low(0x4000_0000, i),
      },
    });
  }
  return writes;
}

/**
 * How far a probe's read may be from the value a counter was read with: the counters
 * may count the probe's own instructions (KVM counts the instructions it emulates).
 */
const PROBE_SLACK = 4096n;

/**
 * The ECX values a refused RDPMC's probe tries, by what made the architecture refuse
 * the trace's: on Intel one per reserved type KVM's history has decoded wrongly (the
 * "fast" bit 31, bits 31:30 as the old fixed flag, an unknown type in ECX[31:16], the
 * metrics type bit 29: SDM vol. 2B RDPMC; KVM intel_rdpmc_ecx_to_pmc), on AMD bits
 * 31:30 (APM vol. 3 RDPMC), and the first index past each type's counters.
 */
function decoderProbes(where: string, config: Config): { ecx: number; name: string }[] {
  const hex = (ecx: number) => ({ ecx, name: `0x${ecx.toString(16)}` });
  // 0xC0000000 is aimed at fixed counter 0: without fixed counters no decoder reads it.
  const fixed = config.vendor === "intel" && config.pmu.version >= 2 && config.pmu.fixed > 0;
  if (where === "rdpmc reserved type") {
    // 0x80000000 is aimed at GP counter 0: without GP counters no decoder reads it.
    const gp = config.pmu.gp > 0 ? [0x8000_0000] : [];
    return [...gp, ...(fixed ? [0xc000_0000] : []), 0x0001_0000, 0x2000_0000].map(hex);
  }
  if (where === "rdpmc AMD bits 31:30 set") return [0x8000_0000, 0x4000_0000, 0xc000_0000].map(hex);
  if (where === "rdpmc index out of range") {
    // Named by what they are, not by number: the counts are the config's.
    const gp = { ecx: config.pmu.gp, name: "GP count" };
    return fixed
      ? [gp, { ecx: (INTEL_RDPMC_TYPE_FIXED | config.pmu.fixed) >>> 0, name: "fixed count" }]
      : [gp];
  }
  return [];
}

/**
 * How the backend decodes the refused RDPMC's kind of ECX, by probe: the prefix, a
 * distinct value written to every counter ({@linkcode distinctWrites}), the refused
 * RDPMC itself, a CPL-0 RDPMC of each of {@linkcode decoderProbes}, then a CPL-0 RDPMC of
 * every counter, on the backend and on the reference. The writes must not change the
 * divergence: the probe counts only when the reference still refuses the trace's RDPMC
 * and the backend still answers it with a value. Each probe's answer is matched with the
 * values the backend itself then holds (so the backend's own write bugs do not hide the
 * reading): `GP 0`, `low half of fixed 0`, `0` (no counter, nothing read), `#GP`,
 * `other`. The answers over the fixed probe set name the decoder, not the trace: one
 * decoding bug is one identity whichever ECX and values a trace used. When every probe
 * is refused, what the trace's own RDPMC read is added (its counter relative to ECX).
 * Undefined when the backend cannot run the probe.
 */
export function probedRefusedRead(
  d: Divergence,
  config: Config,
  probes: Probes,
  where: string,
): string | undefined {
  if (d.op.op !== "rdpmc" || config.pmu.version === 0) return undefined;
  const ecxs = decoderProbes(where, config);
  if (ecxs.length === 0) return undefined;
  const writes = distinctWrites(config);
  const reads = counterReads(config);
  const tail: Op[] = [
    ...writes.map((w) => w.op),
    d.op,
    ...ecxs.map(({ ecx }): Op => ({ op: "rdpmc", ecx, user: false })),
    ...reads.map((x) => x.op),
  ];
  const r = runProbe(probes, config, prefixOf(d, probes), tail);
  if (r === undefined) return undefined;
  const at = writes.length;
  const own = r.backend[at]!, ownArch = r.reference[at]!;
  if (!("value" in own) || "value" in ownArch) return undefined;
  const held = reads.map((x, k) => {
    const v = r.backend[at + 1 + ecxs.length + k]!;
    return { counter: x.counter.replace(/^gp/, "GP"), value: "value" in v ? v.value : undefined };
  });
  const near = (x: bigint, y: bigint) => (x > y ? x - y : y - x) <= PROBE_SLACK;
  const reading = (o: Outcome): string => {
    if (!("value" in o)) return "gp" in o ? "#GP" : outcomeKind(o);
    const whole = held.filter((h) => h.value !== undefined && near(o.value, h.value));
    const low = held.filter((h) =>
      h.value !== undefined && h.value > 0xffff_ffffn && near(o.value, h.value & 0xffff_ffffn)
    );
    if (whole.length === 1 && low.length === 0) return whole[0]!.counter;
    if (low.length === 1 && whole.length === 0) return `low half of ${low[0]!.counter}`;
    return o.value === 0n ? "0" : "other";
  };
  const answers = ecxs.map(({ ecx, name }, k) => ({
    ecx,
    name,
    read: reading(r.backend[at + 1 + k]!),
  }));
  // The answers as behaviours of the decoder, so that which probes a config can run
  // (no fixed counters, no GP counters) and the counters' widths (a 32-bit counter's low
  // half is the whole) change the name as little as they can: a reserved type read as a
  // GP counter; the high bits (Intel bit 31, AMD bits 31:30) ignored, whichever counter
  // the rest selects; the low 32 bits returned; a read past the last counter.
  const answered = (a: { read: string }) => a.read !== "#GP";
  const behaviours: string[] = [];
  if (where === "rdpmc index out of range") {
    if (answers.some(answered)) behaviours.push("reads past the last counter");
  } else if (config.vendor === "intel") {
    const unknown = answers.some((a) =>
      (a.ecx === 0x0001_0000 || a.ecx === 0x2000_0000) && /GP 0$/.test(a.read)
    );
    const high = answers.some((a) =>
      (a.ecx === 0x8000_0000 && /GP 0$/.test(a.read)) ||
      (a.ecx === 0xc000_0000 && /fixed 0$/.test(a.read))
    );
    if (unknown) behaviours.push("reads a reserved type as GP");
    else if (high) behaviours.push("ignores bit 31");
  } else {
    const bit30 = answers.some((a) => a.ecx === 0x4000_0000 && /GP 0$/.test(a.read));
    const bit31 = answers.some((a) => a.ecx === 0x8000_0000 && /GP 0$/.test(a.read));
    if (bit30) behaviours.push("ignores bits 31:30");
    else if (bit31) behaviours.push("ignores bit 31");
  }
  if (answers.some((a) => a.read.startsWith("low half"))) {
    behaviours.push("returns the low 32 bits");
  }
  if (answers.some((a) => a.read === "other")) behaviours.push("reads a value no counter holds");
  if (behaviours.length > 0) return `decoder ${behaviours.join(", ")}`;
  // Every probe refused: the trace's ECX is another reserved value; what it read, with
  // the counter named relative to ECX[15:0] (Intel) or ECX[29:0] (AMD).
  const index = config.vendor === "amd" ? (d.op.ecx >>> 0) & 0x3fff_ffff : d.op.ecx & 0xffff;
  const ownRead = reading(own).replace(new RegExp(`(GP|fixed) ${index}$`), "$1 ECX-index");
  return `decoder refuses the probes, reads ${ownRead}`;
}

/**
 * Every counter's value just before the diverging op, read from the reference with a
 * CPL-0 RDPMC of each (a read has no side effect on a counter), or undefined.
 */
export function counterValuesBefore(d: Divergence, config: Config): CounterValues | undefined {
  const ops = opsBefore(d);
  if (ops === undefined || config.pmu.version === 0) return undefined;
  const fixed = config.vendor === "intel" ? config.pmu.fixed : 0;
  const probes: Op[] = [];
  for (let i = 0; i < config.pmu.gp; i++) probes.push({ op: "rdpmc", ecx: i, user: false });
  for (let i = 0; i < fixed; i++) {
    probes.push({ op: "rdpmc", ecx: (INTEL_RDPMC_TYPE_FIXED | i) >>> 0, user: false });
  }
  const out = referenceOutcomes(config, [...ops, ...probes]);
  if (out === undefined) return undefined;
  const values = out.slice(ops.length).map((o) => "value" in o ? o.value : -1n);
  return { gp: values.slice(0, config.pmu.gp), fixed: values.slice(config.pmu.gp) };
}
