/**
 * @module
 * A finding's identity (docs/identity.md): its root cause as far as the tool can see it.
 * The signature is one line built from three parts, and the finding id is the first 16
 * hex digits of its SHA-256:
 *
 * - **where**: area, op kind and what kind of op it is (access kind and privilege, the
 *   MSR's register class, the RDPMC counter class), e.g. `mmu/access w user`;
 * - **the delta**, decoded: which outcome the backend gave against the permitted ones,
 *   in named terms that do not depend on the trace's values: #PF error-code bits, the
 *   PTE bits two values differ in, a dirty log that misses or over-reports pages, an
 *   MSR field, a counter that is truncated or counts more;
 * - **the path**: the backend's named events during the diverging op (the core's
 *   decisive shadow-MMU and vPMU events; the kvm backend's exits), the counterpart of
 *   the stack frames syzkaller builds crash titles from. Incidental events (rmap shapes,
 *   shadow-page allocation, prefetch) are left out: they depend on history, not on the
 *   bug.
 *
 * Invariant breaks are identified by the invariant with its numbers taken out, crashes
 * by the message with its numbers taken out and the throw site, both without the op
 * kind (one broken invariant or one throw is one finding whichever op met it).
 *
 * The title is the human sentence for the same divergence, with this trace's values.
 */
import { createHash } from "node:crypto";
import type {
  Backend,
  BackendFactory,
  BackendName,
  Permitted,
  StepResult,
} from "../../src/backend.ts";
import { DEVIATIONS } from "../../src/core/deviations.ts";
import { type DiffOptions, diffTrace } from "../../src/diff.ts";
import type { Divergence } from "../../src/diff.ts";
import { outcomeKind } from "../../src/trace/outcome.ts";
import { annotateOp } from "../../src/trace/text.ts";
import { ReferenceBackend } from "../../src/reference/mod.ts";
import { opArea } from "../../src/trace/ops.ts";
import { msrName } from "../../src/x86/decode.ts";
import {
  INTEL_RDPMC_INDEX_MASK,
  INTEL_RDPMC_TYPE_FIXED,
  INTEL_RDPMC_TYPE_GP,
  MSR_F15H_PERF_CTR0,
  MSR_IA32_FIXED_CTR0,
  MSR_IA32_PMC0,
  MSR_K7_PERFCTR0,
} from "../../src/x86/pmu.ts";
import {
  formatPageList,
  hasPage,
  minusPages,
  NO_PAGES,
  pageCount,
  pagesOf,
  xorPages,
} from "../../src/trace/pages.ts";
import type { Config, Op, Outcome, PageRuns, Trace } from "../../src/trace/types.ts";

/** A divergence's identity: the signature, its id, and a title for humans. */
export interface Identity {
  signature: string;
  id: string;
  title: string;
}

/** The area an op kind exercises (the op table's `area`, `src/trace/ops.ts`). */
export { opArea };

/** The finding id of a signature: the first 16 hex digits of its SHA-256. */
export function signatureId(signature: string): string {
  return createHash("sha256").update(signature).digest("hex").slice(0, 16);
}

/**
 * Core events that say how the core got somewhere rather than what it decided: they
 * vary with the trace's history (how many aliases an rmap has, whether a shadow page
 * already existed, which neighbours were prefetched), so they stay out of the path.
 * `bug-fired` is the injected-bug switch's own counter: a bug planted in the code by
 * hand has none, so identities must not depend on it.
 */
const INCIDENTAL: ReadonlySet<string> = new Set([
  "rmap-single",
  "rmap-desc",
  "rmap-desc-chain",
  "rmap-recycle",
  "parent-desc",
  "prefetch",
  "bug-fired",
  "zap-oldest",
  "zap-obsolete-batch",
  "sp-create-indirect",
  "sp-create-direct",
  "sp-lookup-hit",
  "sp-link",
  "walk-ad-update",
  "dirty-mark",
  "root-load",
  "pmu:reprogram",
  "pmu:reprogramResume",
  "pmu:reprogramCreate",
]);

/** The decisive events of a path, in the backend's order. */
export function decisivePath(path: readonly string[] | undefined): string[] {
  return (path ?? []).filter((e) => !INCIDENTAL.has(e));
}

/** A message with its numbers replaced, so that gfns, counts and values do not split it. */
export function messageTemplate(message: string): string {
  return message
    .replace(/0x[0-9a-f]+/gi, "0x#")
    .replace(/\b\d+\b/g, "#")
    .replace(/\s+/g, " ")
    .trim();
}

// ------------------------------------------------------------------ named bits

/** #PF error-code bits (SDM vol. 3A 4.7, Figure 4-12). */
const PFEC_BITS: readonly [number, string][] = [
  [1 << 0, "P"],
  [1 << 1, "W"],
  [1 << 2, "U"],
  [1 << 3, "RSVD"],
  [1 << 4, "I/D"],
  [1 << 5, "PK"],
  [1 << 6, "SS"],
  [1 << 15, "SGX"],
];

/** A #PF error code as named bits, "0" when none is set. */
export function pfecText(code: number): string {
  const names = PFEC_BITS.filter(([bit]) => (code & bit) !== 0).map(([, n]) => n);
  return names.length === 0 ? "0" : names.join("|");
}

/** PTE flag bits (SDM vol. 3A 4.5, Tables 4-14 to 4-20): the ones a value delta names. */
const PTE_BITS: readonly [bigint, string][] = [
  [1n << 0n, "P"],
  [1n << 1n, "R/W"],
  [1n << 2n, "U/S"],
  [1n << 3n, "PWT"],
  [1n << 4n, "PCD"],
  [1n << 5n, "A"],
  [1n << 6n, "D"],
  [1n << 7n, "PS"],
  [1n << 8n, "G"],
  [1n << 63n, "XD"],
];
const PTE_FLAGS = PTE_BITS.reduce((m, [b]) => m | b, 0n);

/** The positions of the set bits of `x`, as runs ("5", "32-47"). */
function bitRuns(x: bigint): string {
  const bits: number[] = [];
  for (let i = 0; x !== 0n; i++, x >>= 1n) if ((x & 1n) !== 0n) bits.push(i);
  const runs: string[] = [];
  for (let i = 0; i < bits.length;) {
    let j = i;
    while (j + 1 < bits.length && bits[j + 1] === bits[j]! + 1) j++;
    runs.push(i === j ? `${bits[i]}` : `${bits[i]}-${bits[j]}`);
    i = j + 1;
  }
  return runs.join(",");
}

/**
 * How two 64-bit values differ, in words that do not depend on the values:
 * - `pte`: memory that may hold page-table entries: the PTE flags when only flag bits
 *   differ (`D clear`), else `other data`;
 * - `counter`: `truncated to N bits` / `sign-extended from bit N` when one is the other
 *   cut or extended at a counter width, else `higher` / `lower`;
 * - `bits`: a control register: which bit positions are set or clear against it.
 */
export function valueDelta(
  observed: bigint,
  expected: bigint,
  as: "pte" | "ad" | "counter" | "bits",
): string {
  const x = observed ^ expected;
  if (x === 0n) return "same";
  if (as === "ad") {
    // A load through a translation: only A/D differences (a walk that did not set them)
    // are named; any other difference is data of another page or another store.
    if ((x & ~0x60n) !== 0n) return "other data";
  }
  if (as === "pte" || as === "ad") {
    if ((x & ~PTE_FLAGS) !== 0n) return "other data";
    const flags = PTE_BITS.filter(([b]) => (x & b) !== 0n).map(([, n]) => n).join("|");
    return `${flags} ${(observed & x) === 0n ? "clear" : "set"}`;
  }
  if (as === "bits") {
    const set = observed & x, clear = expected & x;
    return [
      set !== 0n ? `bits ${bitRuns(set)} set` : "",
      clear !== 0n ? `bits ${bitRuns(clear)} clear` : "",
    ]
      .filter((t) => t !== "").join(", ");
  }
  for (const w of [32n, 40n, 44n, 48n]) {
    const mask = (1n << w) - 1n;
    const sign = 1n << (w - 1n);
    const ext = (v: bigint) => (v & sign) !== 0n ? (v | ~mask) & ((1n << 64n) - 1n) : v & mask;
    if (observed === (expected & mask)) return `truncated to ${w} bits`;
    if (expected === (observed & mask)) return `not truncated to ${w} bits`;
    if (observed === ext(expected)) return `sign-extended from bit ${w - 1n}`;
    if (expected === ext(observed)) return `not sign-extended from bit ${w - 1n}`;
  }
  return observed > expected ? "higher" : "lower";
}

/** How a value an op returns is compared: as memory, a counter or control bits. */
function valueKind(op: Op): "pte" | "ad" | "counter" | "bits" {
  if (op.op === "access") return "ad";
  if (op.op === "rdpmc") return "counter";
  if (op.op === "rdmsr") {
    // Counters (PMCn, A_PMCn, FIXED_CTRn, K7_PERFCTRn, F15H_PERF_CTRn) read as counts;
    // every other MSR as control bits.
    const m = op.msr;
    const counter = (m >= 0xc1 && m < 0xc9) || (m >= 0x4c1 && m < 0x4c9) ||
      (m >= 0x309 && m < 0x310) || (m >= 0xc0010004 && m < 0xc0010008) ||
      (m >= 0xc0010200 && m < 0xc0010210 && (m & 1) === 1);
    return counter ? "counter" : "bits";
  }
  return "pte";
}

// ------------------------------------------------------------------ the reference's state

/**
 * The canonical outcomes the reference gives for `ops` run from reset, or undefined when
 * it throws. The identity reads the architecture's state with probe ops appended after
 * (or inserted between) the ops before a divergence: what a correct machine held where
 * the backend went wrong. Only the outcomes are used, never the reference's internals.
 */
function referenceOutcomes(config: Config, ops: readonly Op[]): Outcome[] | undefined {
  try {
    const ref = new ReferenceBackend(config);
    return ops.map((op) => ref.step(op));
  } catch {
    return undefined;
  }
}

/** The ops before the diverging one, when the backend recorded them (its history). */
function opsBefore(d: Divergence): Op[] | undefined {
  return d.history?.map((h) => h.op);
}

// ------------------------------------------------------------------ probes

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
    backend = probes.factory.create(config, {
      inject: probes.diff?.inject ?? [],
      ...(probes.diff?.fix === undefined ? {} : { fix: probes.diff.fix }),
    });
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

/** True for a counter delta that cuts or extends a value at a width (a write's bug, not a count's). */
function isWidthDelta(delta: string): boolean {
  return /truncated|sign-extended/.test(delta);
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
function wrongWriteOf(d: Divergence, config: Config, probes: Probes) {
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
function probedOrigin(d: Divergence, config: Config, probes: Probes): string | undefined {
  if (d.kind !== "divergence") return undefined;
  if (d.op.op === "pmis") return countersAtOp(d, config, probes, () => true);
  if (isStatusRead(d.op, config)) return countersAtOp(d, config, probes, statusCounters(d, config));
  return undefined;
}

/** The MSR class of a counter write, AMD's K7 and F15H counter aliases as one. */
function writerClass(msr: number, config: Config): string {
  const cls = msrClass(msr, config.vendor);
  // AMD's K7 and F15H counter MSRs are one counter's aliases with one write path.
  return cls === "K7_PERFCTR" || cls === "F15H_PERF_CTR" ? "AMD counter" : cls;
}

/**
 * The probe of the counters at the diverging op (an overflow status or a PMI count):
 * the prefix with a CPL-0 RDPMC of every counter that matters appended, on the backend
 * and on the reference. `counters agree` when the backend holds every value the
 * architecture does (the overflow or PMI went wrong on its own), else how they differ
 * by counter class (`GP counts more`, `fixed bit 31 not sign-extended`), or undefined.
 */
function countersAtOp(
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
function probedRefusedRead(
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

/** The counters' values, GP and fixed, as the architecture holds them. */
interface CounterValues {
  gp: bigint[];
  fixed: bigint[];
}

/**
 * Every counter's value just before the diverging op, read from the reference with a
 * CPL-0 RDPMC of each (a read has no side effect on a counter), or undefined.
 */
function counterValuesBefore(d: Divergence, config: Config): CounterValues | undefined {
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
function refusedRdpmcRead(
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
function refusedRdpmcWhere(ecx: number, config: Config): string {
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
function isRefusedRdpmcRead(d: Divergence): boolean {
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
function counterWidth(op: Op, config: Config): number | undefined {
  const c = counterOf(op, config);
  if (c === undefined) return undefined;
  return c.startsWith("fixed") ? config.pmu.fixedWidth : config.pmu.gpWidth;
}

// ------------------------------------------------------------------ where

/**
 * The register class of an MSR: its name (`src/x86/decode.ts`) with the counter index
 * left out (`PMC`, `PERFEVTSEL`, `K7_PERFCTR`, `PERF_GLOBAL_CTRL`), or the number for an
 * MSR the decoder does not name.
 */
export function msrClass(msr: number, vendor: Config["vendor"]): string {
  const name = msrName(msr);
  return name === null ? `${vendor} MSR 0x${msr.toString(16)}` : name.replace(/\d+$/, "");
}

/**
 * The counter class RDPMC's ECX selects, as the decoding rules see it: on Intel the
 * type in ECX[31:16] (0 GP, 0x4000 fixed, bit 31 the legacy "fast" flag, bit 29 the
 * metrics type; any other bit of 31:16 an unknown type) and whether ECX[15:0] is below
 * the count of that type (SDM vol. 2B RDPMC; KVM intel_rdpmc_ecx_to_pmc); on AMD the
 * whole ECX is the index, and bits 31:30 set are named (APM vol. 3 RDPMC; KVM
 * amd_rdpmc_ecx_to_pmc).
 */
function rdpmcClass(ecx: number, config: Config): string {
  ecx >>>= 0;
  if (config.vendor === "amd") {
    const high = ecx >>> 30;
    const index = ecx & 0x3fffffff;
    return `AMD ${high === 0 ? "" : `bits 31:30=${high} `}` +
      (index < config.pmu.gp ? "index in range" : "index out of range");
  }
  const type = ecx >>> 16;
  const index = ecx & INTEL_RDPMC_INDEX_MASK;
  const parts: string[] = [];
  if ((type & 0x8000) !== 0) parts.push("fast");
  if ((type & 0x4000) !== 0) parts.push("fixed");
  if ((type & 0x2000) !== 0) parts.push("metrics");
  if ((type & 0x1fff) !== 0) parts.push("unknown type");
  const fixed = (type & 0x4000) !== 0;
  const count = fixed ? config.pmu.fixed : config.pmu.gp;
  return `${parts.length === 0 ? "GP" : parts.join(" ")} ` +
    (index < count ? "index in range" : "index out of range");
}

/** MSR counter/eventsel classes past the vCPU's counters are named `(absent)`. */
function msrWhere(msr: number, config: Config): string {
  const cls = msrClass(msr, config.vendor);
  const gp = config.pmu.gp, fixed = config.pmu.fixed;
  const index: Record<string, [number, number]> = {
    PMC: [0xc1, gp],
    A_PMC: [0x4c1, gp],
    PERFEVTSEL: [0x186, gp],
    FIXED_CTR: [0x309, fixed],
    K7_EVNTSEL: [0xc0010000, Math.min(gp, 4)],
    K7_PERFCTR: [0xc0010004, Math.min(gp, 4)],
  };
  const r = index[cls];
  if (r !== undefined && msr - r[0] >= r[1]) return `${cls} (absent)`;
  if (cls.startsWith("F15H") && Math.floor((msr - 0xc0010200) / 2) >= gp) return `${cls} (absent)`;
  return cls;
}

/** What kind of op it is, in the identity's words (no addresses or values). */
function where(op: Op, config: Config): string {
  switch (op.op) {
    case "access":
      return "access";
    case "wrmsr":
    case "rdmsr":
      return `${op.op} ${msrWhere(op.msr, config)}`;
    case "rdpmc":
      return `rdpmc ${rdpmcClass(op.ecx, config)}`;
    case "write":
    case "read":
      return op.op;
    default:
      return op.op;
  }
}

// ------------------------------------------------------------------ the delta

/** The class of a #PF: not present, a reserved bit, or a protection fault (SDM 4.7). */
function faultClass(code: number): string {
  if ((code & 1) === 0) return "not-present";
  return (code & 8) !== 0 ? "reserved-bit" : "protection";
}

/**
 * An outcome's kind in the identity's words. For accesses the access kind and privilege
 * are left out (they are the fuzzer's choice, not the bug's): a load's value and a
 * store's success are both `translates`, and a #PF is named by its class.
 */
function kindText(o: Outcome, op: Op): string {
  if (op.op === "access") {
    if ("pf" in o) return `${faultClass(o.pf.code)} #PF`;
    if ("ok" in o || "value" in o) return "translates";
  }
  if ("pf" in o) return `#PF ${pfecText(o.pf.code)}`;
  if ("errno" in o) return `errno ${o.errno}`;
  if ("mmio" in o) return "mmio";
  return outcomeKind(o);
}

/** The permitted entry closest to `observed`: same kind first, then fewest bits apart. */
function nearest(observed: Outcome, permitted: readonly Permitted[]): Permitted | undefined {
  const kind = outcomeKind(observed);
  const same = permitted.filter((p) => outcomeKind(p.outcome) === kind);
  if (same.length === 0) return permitted[0];
  let best = same[0]!, bestBits = Infinity;
  for (const p of same) {
    const bits = distance(observed, p);
    if (bits < bestBits) (best = p), (bestBits = bits);
  }
  return best;
}

function popcount(x: bigint): number {
  let n = 0;
  for (; x !== 0n; x &= x - 1n) n++;
  return n;
}

function distance(o: Outcome, p: Permitted): number {
  const care = ~(p.dontCare ?? 0n);
  const q = p.outcome;
  if ("value" in o && "value" in q) return popcount((o.value ^ q.value) & care);
  if ("bitmap" in o && "bitmap" in q) return pageDiff(o.bitmap, q.bitmap, p.dontCarePages);
  if ("young" in o && "young" in q) return pageDiff(o.young, q.young, p.dontCarePages);
  if ("pf" in o && "pf" in q) return popcount(BigInt(o.pf.code ^ q.pf.code));
  if ("count" in o && "count" in q) return Math.abs(o.count - q.count);
  return 0;
}

/** How many pages two page sets differ in, outside the don't-care pages. */
function pageDiff(a: PageRuns, b: PageRuns, dontCare: PageRuns = NO_PAGES): number {
  return pageCount(minusPages(xorPages(a, b), dontCare));
}

interface Delta {
  /** Value-free, for the signature. */
  key: string;
  /** With this trace's values, for the title. */
  text: string;
}

/** How the observed outcome differs from the permitted ones. */
function delta(d: Divergence, backend: BackendName, config: Config, probes?: Probes): Delta {
  const o = d.observed;
  const kinds = [...new Set(d.permitted.map((p) => kindText(p.outcome, d.op)))].sort();
  const p = nearest(o, d.permitted);
  const arch = d.permitted.length === 1 ? "architecture" : "architecture permits";
  if (p === undefined) return { key: `${backend} ${kindText(o, d.op)}, none permitted`, text: "" };
  const q = p.outcome;
  const care = ~(p.dontCare ?? 0n);
  // An access the core served from a cached spte, where the architecture also
  // translates but elsewhere (another page, RAM against MMIO, either way): the cached
  // translation is stale, whatever the data or the exit shows (A/D-only differences
  // aside, which are a walk's, not a translation's).
  const hit = d.path?.includes("access-hit") === true || d.path?.includes("mmio-hit") === true;
  const translated = (x: Outcome) => "value" in x || "ok" in x || "mmio" in x;
  const adOnly = "value" in o && "value" in q && ((o.value ^ q.value) & care & ~0x60n) === 0n;
  if (
    d.op.op === "access" && hit && translated(o) && !adOnly &&
    d.permitted.every((x) => translated(x.outcome))
  ) {
    return {
      key: `${backend} serves a stale translation`,
      text: `${backend} ${outcomeText(o)}, ${arch} ${
        d.permitted.map((x) => outcomeText(x.outcome)).join(" or ")
      }`,
    };
  }
  if (isRefusedRdpmcRead(d) && "value" in o && d.op.op === "rdpmc") {
    const read = refusedRdpmcRead(d.op.ecx, o.value, counterValuesBefore(d, config), config);
    const decoded = probes === undefined
      ? undefined
      : probedRefusedRead(d, config, probes, refusedRdpmcWhere(d.op.ecx, config));
    return {
      key: `${backend} ${decoded ?? read.key}, architecture #GP`,
      text: `${backend} 0x${o.value.toString(16)}${read.text === "" ? "" : ` (${read.text})`}, ` +
        `${arch} #GP`,
    };
  }
  if ("value" in o && "value" in q) {
    const exp = (q.value & care) | (o.value & ~care);
    const kind = valueKind(d.op);
    const width = counterWidth(d.op, config);
    const named = isStatusRead(d.op, config)
      ? statusDelta(o.value, exp, config)
      : kind === "counter"
      ? counterDelta(o.value, exp, width ?? 64)
      : valueDelta(o.value, exp, kind);
    return {
      key: `${backend} value ${named}`,
      text: `${backend} 0x${o.value.toString(16)}, ${arch} 0x${exp.toString(16)}`,
    };
  }
  if (("bitmap" in o && "bitmap" in q) || ("young" in o && "young" in q)) {
    const [ob, qb, what] = "bitmap" in o && "bitmap" in q
      ? [o.bitmap, q.bitmap, "dirty"]
      : [(o as { young: PageRuns }).young, (q as { young: PageRuns }).young, "young"];
    const dontCare = p.dontCarePages ?? NO_PAGES;
    const missing = minusPages(minusPages(qb, ob), dontCare);
    const extra = minusPages(minusPages(ob, qb), dontCare);
    const m = pageCount(missing), x = pageCount(extra);
    const key = [m > 0 ? `misses ${what} pages` : "", x > 0 ? `extra ${what} pages` : ""]
      .filter((t) => t !== "").join(" and ");
    const text = [
      m > 0 ? `${backend} misses ${what} page${m > 1 ? "s" : ""} ${formatPageList(missing)}` : "",
      x > 0 ? `${backend} reports page${x > 1 ? "s" : ""} ${formatPageList(extra)} ${what}` : "",
    ].filter((t) => t !== "").join(", ");
    return { key: `${backend} ${key}`, text };
  }
  if ("pf" in o && "pf" in q) {
    const cr2 = o.pf.cr2 !== q.pf.cr2 ? " (other cr2)" : "";
    const oc = faultClass(o.pf.code), qc = faultClass(q.pf.code);
    const key = oc !== qc
      ? `${backend} ${oc} #PF, architecture ${qc} #PF${cr2}`
      : `${backend} #PF, architecture #PF: ${pfecText(o.pf.code ^ q.pf.code)} differ${cr2}`;
    return {
      key,
      text: `${backend} #PF 0x${o.pf.code.toString(16)} (${pfecText(o.pf.code)}), ${arch} #PF ` +
        `0x${q.pf.code.toString(16)} (${pfecText(q.pf.code)})${cr2}`,
    };
  }
  if ("count" in o && "count" in q) {
    return {
      key: `${backend} counts ${o.count > q.count ? "more" : "fewer"}`,
      text: `${backend} ${o.count}, ${arch} ${q.count}`,
    };
  }
  if ("mmio" in o && "mmio" in q) {
    return {
      key: `${backend} mmio at another gpa`,
      text: `${backend} MMIO at 0x${o.mmio.gpa.toString(16)}, ${arch} 0x${q.mmio.gpa.toString(16)}`,
    };
  }
  const archText = kinds.join(" or ");
  return {
    key: `${backend} ${kindText(o, d.op)}, architecture ${archText}`,
    text: `${backend} ${outcomeText(o)}, ${arch} ${
      d.permitted.map((p) => outcomeText(p.outcome)).join(" or ")
    }`,
  };
}

function outcomeText(o: Outcome): string {
  if ("gp" in o) return "#GP";
  if ("pf" in o) return `#PF 0x${o.pf.code.toString(16)} (${pfecText(o.pf.code)})`;
  if ("mmio" in o) return `MMIO at 0x${o.mmio.gpa.toString(16)}`;
  if ("value" in o) return `0x${o.value.toString(16)}`;
  if ("errno" in o) return o.errno === 0 ? "success" : o.errno;
  if ("count" in o) return `${o.count}`;
  if ("crash" in o) return "a crash";
  return outcomeKind(o);
}

// ------------------------------------------------------------------ the origin

/**
 * The events that say a leaf spte was made in an unusual way: installed by a vCPU racing
 * a memslot update (before or after its in-progress phase), or re-made by a sync. How
 * an ordinary spte was built (by a read or a write, writable or write-protected, or by
 * the CR0.WP=0 trick: measured, it only split ids) is left out: the same bug builds its
 * stale spte from many different traces, and the minimizer must stay free to change how.
 */
const SPTE_MAKERS: ReadonlySet<string> = new Set([
  "mmio-racing-install",
  "mmio-racing-install-in-progress",
  "sync-spte-update",
]);

/** A guest store: a `write`, or an `access` of kind write. */
function isStore(op: Op): boolean {
  return op.op === "write" || (op.op === "access" && op.kind === "write");
}

/** The ways a guest store can go that matter to what a dirty log reports, most specific first. */
const STORE_PATHS: readonly string[] = [
  "spte-wp0-trick",
  "spte-wp0-smap-emulate",
  "write-unsync-direct",
  "emulate-write",
  "mmio-hit",
  "access-hit",
];

/**
 * Zaps a cached spte can outlive: a stale spte that survived a slot's zap and one that
 * survived a fast zap are different bugs with the same symptom.
 */
const ZAPS: readonly string[] = ["slot-zap-slot", "fast-zap", "notifier-zap"];

/** Memslot changes: what an MMIO spte's generation must not outlive. */
const MEMSLOT_UPDATES: readonly string[] = [
  "slot-create",
  "slot-delete",
  "slot-move",
  "slot-flags",
];

/**
 * Where the state the diverging op used came from: for an access the core served from
 * a cached spte, an unusual way the op that last set that spte made it (`from
 * mmio-racing-install`) and what it outlived; for a dirty log, the stores' paths; for a
 * counter read, the write path or how its events were counted (`counted emulated`). Bugs that leave the same
 * wrong state behind differ here in how they built it.
 */
function originOf(d: Divergence, config: Config, probes?: Probes): string | undefined {
  const history = d.history;
  if (history === undefined) {
    return probes === undefined ? undefined : probedOrigin(d, config, probes);
  }
  if (d.origin !== undefined && d.origin !== d.index) {
    const o = history[d.origin];
    if (o === undefined) return undefined;
    const made = o.events.filter((e) => SPTE_MAKERS.has(e));
    // What the spte outlived after it was set: zaps (a cached spte), or a memslot update
    // (an MMIO spte, whose generation should then no longer match).
    const seen = new Set<string>();
    const mmio = d.path?.includes("mmio-hit") === true;
    for (let i = d.origin + 1; i < history.length; i++) {
      for (const e of history[i]!.events) {
        if (mmio && MEMSLOT_UPDATES.includes(e)) seen.add("memslot-update");
        else if (!mmio && ZAPS.includes(e)) seen.add(e);
      }
    }
    const since = [...ZAPS, "memslot-update"].filter((e) => seen.has(e));
    const parts = [
      made.length === 0 ? "" : `from ${made.join(",")}`,
      since.length === 0 ? "" : `outlived ${since.join(",")}`,
    ].filter((t) => t !== "");
    return parts.length === 0 ? undefined : parts.join(" | ");
  }
  if (d.op.op === "dirtylog" || d.op.op === "age") {
    // How the stores since the last dirty log (or age) went: a page the log misses was
    // written through some path that did not mark it. When the reference can say which
    // stores dirtied the pages the log misses, only theirs count (a run's other stores
    // vary); else every store's since the last log.
    const seen = new Set<string>();
    const dirtied = storesDirtyingMissed(d, config);
    for (let i = history.length - 1; i >= 0 && history[i]!.op.op !== d.op.op; i--) {
      const h = history[i]!;
      if (dirtied !== undefined && !dirtied.has(i)) continue;
      if (isStore(h.op)) { for (const e of h.events) if (STORE_PATHS.includes(e)) seen.add(e); }
    }
    // The most specific one (the list is ordered so), not all: a run's other stores vary.
    const path = STORE_PATHS.find((e) => seen.has(e));
    return path === undefined ? undefined : `stores ${path}`;
  }
  if (d.op.op !== "rdmsr" && d.op.op !== "pmis" && d.op.op !== "rdpmc") return undefined;
  // An RDPMC the architecture refuses is a decoding bug: what it read is in the delta.
  if (
    d.op.op === "rdpmc" &&
    !("value" in d.observed && d.permitted.every((p) => "value" in p.outcome))
  ) {
    return undefined;
  }
  // A counter, status or PMI read: how the counters got their values. The MSR class of
  // the last write to the counter that matters (a legacy PMCn write and a full-width
  // A_PMCn write are different paths), and how the events after it were counted.
  const counter = counterOf(d.op, config);
  const status = isStatusRead(d.op, config);
  if (counter === undefined && !status && d.op.op !== "pmis") return undefined;
  // The counters that matter: the one read; for a status read, those whose overflow
  // bits differ; for a PMI count, whichever was written last.
  const matters: (c: string) => boolean = counter !== undefined
    ? (c) => c === counter
    : status
    ? statusCounters(d, config)
    : () => true;
  let writer: string | undefined;
  let since = 0;
  for (let i = history.length - 1; i >= 0; i--) {
    const h = history[i]!;
    if (h.op.op !== "wrmsr") continue;
    const c = counterOf(h.op, config);
    if (c === undefined || !matters(c)) continue;
    const cls = msrClass(h.op.msr, config.vendor);
    // AMD's K7 and F15H counter MSRs are one counter's aliases with one write path.
    writer = cls === "K7_PERFCTR" || cls === "F15H_PERF_CTR" ? "AMD counter" : cls;
    since = i + 1;
    break;
  }
  // Events are counted by an events op in hardware or by an instruction KVM emulates
  // (any op), so every op since the write is looked at.
  const counted = new Set<string>();
  for (let i = since; i < history.length; i++) {
    for (const e of history[i]!.events) if (COUNTING.includes(e)) counted.add(e);
  }
  const none = !counted.has("pmu:triggerCounted") && !counted.has("pmu:hardwareCounted");
  if (status || d.op.op === "pmis") {
    // What overflowed and how it was signalled varies with how the trace counted; the
    // write path does not, nor, for an overflow the backend misses, whether it counted
    // anything at all (an extra overflow may come from the write alone).
    const o = d.observed, q = d.permitted[0]?.outcome;
    const fewer = q !== undefined &&
      ("count" in o && "count" in q ? o.count < q.count : "value" in o && "value" in q &&
        (q.value & ~o.value) !== 0n);
    // With probes, what the counters hold at the op says more than the write's class
    // (which only told legacy from full-width writes, now the write probe's job):
    // `counters agree` is an overflow or PMI that went wrong on its own.
    const held = probes === undefined
      ? undefined
      : countersAtOp(d, config, probes, status ? matters : () => true);
    const parts = [
      writer === undefined
        ? ""
        : held === undefined
        ? `after wrmsr ${writer}`
        : "after a counter write",
      none && fewer ? "nothing counted" : "",
      held ?? "",
    ].filter((t) => t !== "");
    return parts.length === 0 ? undefined : parts.join(" | ");
  }
  // The write path matters to a value cut or extended at a width (legacy against
  // full-width writes); how the events were counted matters to a count that is off.
  const width = /truncated|sign-extended/.test(valueDeltaOf(d, config));
  let how = counted.has("pmu:triggerCounted")
    ? "emulated"
    : counted.has("pmu:hardwareCounted")
    ? "in hardware"
    : "";
  const denied = counted.has("pmu:filterDenyGp") || counted.has("pmu:filterDenyFixed");
  if (how !== "" && denied) how += " under a denying filter";
  // With probes: a count that is off where nothing was counted at all, but a filter
  // denied, is the filter's (a counter that never counts is not).
  if (how === "" && denied && probes !== undefined) how = "nothing, under a denying filter";
  const parts = [
    writer === undefined || !width ? "" : `after wrmsr ${writer}`,
    how === "" || width ? "" : `counted ${how}`,
  ].filter((t) => t !== "");
  return parts.length === 0 ? undefined : parts.join(" | ");
}

/**
 * The stores since the last dirty log of the slot that, on the reference, dirtied a page
 * the backend's log misses (by history index), or undefined when that cannot be told.
 * The reference runs the ops before the log with a dirty-log probe of the slot after
 * every such store: the pages each probe newly reports are that store's (its data page,
 * or a page table whose A/D bits it set). A probe only splits the reference's log; with
 * manual protection the log is not cleared, so a page is the first reporting store's.
 */
function storesDirtyingMissed(d: Divergence, config: Config): Set<number> | undefined {
  const ops = opsBefore(d);
  const o = d.observed;
  if (ops === undefined || d.op.op !== "dirtylog" || !("bitmap" in o)) return undefined;
  const p = nearest(o, d.permitted);
  if (p === undefined || !("bitmap" in p.outcome)) return undefined;
  const missing = minusPages(minusPages(p.outcome.bitmap, o.bitmap), p.dontCarePages ?? NO_PAGES);
  if (pageCount(missing) === 0) return undefined;
  let start = ops.length;
  while (start > 0 && !(ops[start - 1]!.op === "dirtylog" && sameSlot(ops[start - 1]!, d.op))) {
    start--;
  }
  const probe: Op = { op: "dirtylog", id: d.op.id };
  const run: Op[] = ops.slice(0, start);
  const at: number[] = [];
  run.push(probe);
  const baseline = run.length - 1;
  for (let i = start; i < ops.length; i++) {
    run.push(ops[i]!);
    if (isStore(ops[i]!)) {
      run.push(probe);
      at.push(i);
    }
  }
  const out = referenceOutcomes(config, run);
  if (out === undefined) return undefined;
  const manual = config.dirtyLog.manualProtect;
  const stores = new Set<number>();
  let before = out[baseline]!;
  let k = 0;
  for (let j = baseline + 1; j < run.length; j++) {
    if (run[j] !== probe) continue;
    const now = out[j]!;
    if ("bitmap" in now) {
      const fresh = manual && "bitmap" in before
        ? minusPages(now.bitmap, before.bitmap)
        : now.bitmap;
      for (const page of pagesOf(missing)) {
        if (hasPage(fresh, page)) {
          stores.add(at[k]!);
          break;
        }
      }
    }
    before = now;
    k++;
  }
  return stores.size === 0 ? undefined : stores;
}

/** True when two ops name one memslot. */
function sameSlot(a: Op, b: Op): boolean {
  return "id" in a && "id" in b && a.id === b.id;
}

/** True for a read of the overflow status (Intel PERF_GLOBAL_STATUS, AMD PERF_CNTR_GLOBAL_STATUS). */
function isStatusRead(op: Op, config: Config): boolean {
  return op.op === "rdmsr" && msrClass(op.msr, config.vendor).endsWith("GLOBAL_STATUS");
}

/**
 * The counters whose overflow bits differ between a status read's value and the
 * architecture's: bit N is GP counter N, bit 32 + N fixed counter N (SDM vol. 3B
 * Figure 21-9; AMD PERF_CNTR_GLOBAL_STATUS: APM vol. 2 13.2.2, GP bits only).
 */
function statusCounters(d: Divergence, config: Config): (c: string) => boolean {
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
function statusDelta(observed: bigint, expected: bigint, config: Config): string {
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
function valueDeltaOf(d: Divergence, config: Config): string {
  const o = d.observed, q = d.permitted[0]?.outcome;
  if (q === undefined || !("value" in o) || !("value" in q)) return "";
  return counterDelta(o.value, q.value, counterWidth(d.op, config) ?? 64);
}

/**
 * `counter read GP` / `counter read fixed` for a read of a counter's value (an RDMSR of
 * any of its MSRs, or an RDPMC both sides answer with a value), else undefined.
 */
function counterRead(d: Divergence, config: Config): string | undefined {
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
function counterOf(op: Op, config: Config): string | undefined {
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
const COUNTING: readonly string[] = [
  "pmu:filterDenyGp",
  "pmu:filterDenyFixed",
  "pmu:hardwareCounted",
  "pmu:triggerCounted",
];

// ------------------------------------------------------------------ the identity

/**
 * The identity of a divergence found on `backend` under `config`. `deviation` is the
 * known deviation that explains it, if any ({@linkcode explainDeviation}): a divergence
 * a deviation explains and one with the same signature that it does not explain are
 * different findings (a planted bug can look exactly like a known deviation).
 */
export function identify(
  d: Divergence,
  backend: BackendName,
  config: Config,
  deviation?: string,
  probes?: Probes,
): Identity {
  const id = identifyBase(d, backend, config, probes);
  if (deviation === undefined) return id;
  const signature = `${id.signature} | deviation ${deviation}`;
  return { signature, id: signatureId(signature), title: id.title };
}

/**
 * The known deviations a divergence could be, in the order they are tried: those of
 * its area (the memslot area's divergences are the MMU's).
 */
function candidateDeviations(d: Divergence): string[] {
  const area = opArea(d.op.op) === "pmu" ? "pmu" : "mmu";
  return DEVIATIONS.filter((x) => x.area === area).map((x) => x.name);
}

/**
 * The known deviation that explains the divergence `d` of `trace` on the core, or
 * undefined: the first one whose correction alone (same injected bugs, same options)
 * makes the core agree up to and including the diverging op (docs/identity.md).
 */
export function explainDeviation(
  trace: Trace,
  d: Divergence,
  factory: BackendFactory,
  diff: DiffOptions = {},
): string | undefined {
  if (factory.name !== "core") return undefined;
  const explains = (fix: string[]) => {
    const r = diffTrace(trace, factory, { ...diff, fix, path: false });
    return r.divergence === null || r.divergence.index > d.index;
  };
  const names = candidateDeviations(d);
  for (const name of names) if (explains([name])) return name;
  // Two known deviations can compound (a counter written after it counted, whose
  // eventsel also has IN_TXCP: each correction alone leaves the PMI missing). Only when
  // every correction together explains it is the smallest pair searched for, so an
  // unexplained divergence costs one more run, not one per pair.
  if (names.length < 2 || !explains(names)) return undefined;
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      if (explains([names[i]!, names[j]!])) return `${names[i]}+${names[j]}`;
    }
  }
  return names.join("+");
}

/** The whole identity of a divergence of `trace` on `factory`'s backend, deviation included. */
export function identifyTrace(
  trace: Trace,
  d: Divergence,
  factory: BackendFactory,
  diff: DiffOptions = {},
): Identity {
  return identify(d, factory.name, trace.config, explainDeviation(trace, d, factory, diff), {
    factory,
    trace,
    diff,
  });
}

function identifyBase(
  d: Divergence,
  backend: BackendName,
  config: Config,
  probes?: Probes,
): Identity {
  const area = opArea(d.op.op);
  const opText = annotateOp(d.op, config);
  let signature: string, title: string;
  if (d.kind === "crash") {
    const message = "crash" in d.observed ? d.observed.crash : "";
    const site = d.site === undefined ? "" : ` in ${d.site}`;
    signature = `crash: ${backend} ${messageTemplate(message)}${site}`;
    title = `${backend} crashed${site} at \`${opText}\`: ${message}`;
  } else if (d.kind === "invariant") {
    const inv = d.invariant ?? "unknown";
    signature = `invariant: ${backend} ${messageTemplate(inv)}`;
    title = `${backend} invariant broken after \`${opText}\`: ${inv}`;
  } else {
    const wrong = probes === undefined ? undefined : wrongWriteOf(d, config, probes);
    if (wrong !== undefined) {
      signature = `${area}/counter write ${wrong.counter.startsWith("fixed") ? "fixed" : "GP"}: ` +
        `${backend} holds ${wrong.delta} | after wrmsr ${wrong.writer}`;
      title = `${opText}: ${delta(d, backend, config).text} (after the last write, ${backend} ` +
        `0x${wrong.held.toString(16)}, architecture 0x${wrong.arch.toString(16)})`;
      return { signature, id: signatureId(signature), title };
    }
    const dl = delta(d, backend, config, probes);
    const counter = counterRead(d, config);
    // A counter's value is read the same wrong way through any of its aliases (PMCn,
    // A_PMCn, RDPMC; K7_PERFCTRn, F15H_PERF_CTRn), and reading it takes no decision but
    // the decoding: the read's own events are the deferred reprogramming's.
    // A refused RDPMC decides only how to decode ECX: the deferred reprogramming it
    // runs first (and what the filter says there) is the trace's history.
    const refused = isRefusedRdpmcRead(d) && d.op.op === "rdpmc";
    const path = decisivePath(d.path).filter((e) =>
      (counter === undefined || !e.startsWith("pmu:")) &&
      (!refused || !e.startsWith("pmu:reprogram"))
    );
    const from = originOf(d, config, probes);
    const at = refused && d.op.op === "rdpmc"
      ? refusedRdpmcWhere(d.op.ecx, config)
      : counter ?? where(d.op, config);
    signature = `${area}/${at}: ${dl.key}` +
      (path.length > 0 ? ` | path ${path.join(",")}` : "") +
      (from === undefined ? "" : ` | ${from}`);
    title = `${opText}: ${dl.text}`;
  }
  return { signature, id: signatureId(signature), title };
}

/**
 * The signature of a divergence without the deviation part (use
 * {@linkcode identifyTrace} for the whole identity of a core divergence).
 */
export function signatureOf(d: Divergence, backend: BackendName, config: Config): string {
  return identify(d, backend, config).signature;
}
