/**
 * @module
 * `deno task kvm-conformance [--seed S] [--traces N] [--out DIR] [--json]`: a conformance
 * campaign of random traces over paging, memslots, dirty logging and discards, each run
 * on the real KVM and judged by the reference (issue 6, issue 12 item 5). Ops the kvm
 * backend cannot run (fetches, aging, reserved ranges) are left out on both sides and
 * counted.
 *
 * The traces are a function of the seed alone (the summary's `digest` says which traces
 * ran). Each disagreement is written to `--out DIR` (default: a new temp dir, made at
 * the first one) as a `shadowfuzz.trace/1` file: the trace up to the diverging op, with a
 * comment naming the op, the kvm outcome and the permitted set; `deno task diff FILE
 * --backend kvm` replays it. Exit 0 when every trace agrees, 1 on a disagreement, 2 on a
 * bad argument, 3 on an internal error, 4 when /dev/kvm cannot be used here.
 */
import { join } from "node:path";
import fc from "fast-check";
import type { BackendFactory } from "../src/backend.ts";
import { kvmFactory } from "../src/kvm/mod.ts";
import { diffTrace, type Divergence } from "../src/diff.ts";
import { kvmPvmConfig } from "../src/trace/config.ts";
import { formatTrace } from "../src/trace/json.ts";
import { formatOp, formatOutcome, formatPermitted } from "../src/trace/text.ts";
import { type Config, type Op, type Trace, TRACE_FORMAT } from "../src/trace/types.ts";
import { arbDenseOp, DENSE_SETUP } from "../fuzz/gen/arb_dense.ts";
import { probeWritable } from "../fuzz/commands/usage.ts";
import { parseTaskArgs, TaskArgsError, taskArgsMessage } from "./args.ts";

export const USAGE =
  `Usage: deno task kvm-conformance [--seed S] [--traces N] [--out DIR] [--json] [--help]

Runs N random paging, memslot, dirty-log and discard traces on the real KVM
(/dev/kvm) and judges every outcome by the reference.

  --seed S     the seed of the traces, 0 to 4294967295 (default: random, printed);
               the same seed gives the same traces (the summary's digest)
  --traces N   how many traces, 1 to 1000000 (default 10000)
  --out DIR    where each disagreement is written as a trace file that
               \`deno task diff FILE --backend kvm\` replays (default: a new
               temp dir, made at the first disagreement and printed at the end)
  --json       print the summary as one JSON object
  --help, -h   print this help

Exit status: 0 every trace agreed, 1 a disagreement (written to DIR), 2 a bad
argument, 3 an internal error, 4 /dev/kvm cannot be used here.`;

/** The largest seed: fast-check's seeds are 32-bit. */
const MAX_SEED = 0xffff_ffff;
const MAX_TRACES = 1_000_000;

/** Parsed command line. */
export interface ConformanceFlags {
  seed: number;
  /** Whether the seed was drawn at random (it is printed either way). */
  randomSeed: boolean;
  traces: number;
  /** `--out`, or undefined for a new temp dir. */
  out?: string;
  json: boolean;
}

/** A decimal integer in [min, max], or a one-line error naming the flag. */
function intArg(name: string, text: string, min: number, max: number): number {
  if (!/^[0-9]{1,16}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new TaskArgsError(
      taskArgsMessage(
        "kvm-conformance",
        `--${name} must be an integer from ${min} to ${max}, not "${text}"`,
      ),
    );
  }
  return Number(text);
}

/**
 * Parses the command line.
 *
 * @returns The flags, or `null` for `--help`/`-h`.
 * @throws {TaskArgsError} With a one-line message naming the flag.
 */
export function parseConformanceArgs(
  argv: readonly string[],
  random: () => number = () => crypto.getRandomValues(new Uint32Array(1))[0]!,
): ConformanceFlags | null {
  const values = parseTaskArgs("kvm-conformance", argv, {
    seed: { type: "string" },
    traces: { type: "string", default: "10000" },
    out: { type: "string" },
    json: { type: "boolean", default: false },
  });
  if (values === null) return null;
  if (values.out === "") {
    throw new TaskArgsError(taskArgsMessage("kvm-conformance", "--out must not be empty"));
  }
  const seed = values.seed === undefined ? random() : intArg("seed", values.seed, 0, MAX_SEED);
  return {
    seed,
    randomSeed: values.seed === undefined,
    traces: intArg("traces", values.traces, 1, MAX_TRACES),
    ...(values.out === undefined ? {} : { out: values.out }),
    json: values.json,
  };
}

/** Configs this kernel can provide: the kvm_pvm machine with varied control bits. */
function arbKvmConfig(): fc.Arbitrary<Config> {
  return fc.record({
    vendor: fc.constantFrom("amd" as const, "intel" as const),
    maxPhyAddr: fc.constantFrom(36, 40, 46, 48),
    wp: fc.boolean(),
    smep: fc.boolean(),
    smap: fc.boolean(),
    nx: fc.boolean(),
    ac: fc.boolean(),
  }).map((r) => {
    const c = kvmPvmConfig();
    return {
      ...c,
      vendor: r.vendor,
      maxPhyAddr: r.maxPhyAddr,
      cr0: { wp: r.wp },
      cr4: { ...c.cr4, smep: r.smep, smap: r.smap },
      efer: { nx: r.nx },
      rflags: { ac: r.ac },
    };
  });
}

/** The `n` traces of `seed`: a function of both alone. */
export function conformanceTraces(seed: number, n: number): Trace[] {
  return fc.sample(
    fc.tuple(arbKvmConfig(), fc.array(arbDenseOp(), { minLength: 20, maxLength: 80, size: "max" })),
    { numRuns: n, seed },
  ).map(([config, body]) => ({ format: TRACE_FORMAT, config, ops: [...DENSE_SETUP, ...body] }));
}

async function sha256(text: string | Uint8Array): Promise<Uint8Array> {
  const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

/**
 * Which traces ran: SHA-256 (hex, first 16 digits) over the SHA-256 of each trace's
 * JSON text, in order.
 */
export async function tracesDigest(traces: readonly Trace[]): Promise<string> {
  const all = new Uint8Array(32 * traces.length);
  for (let i = 0; i < traces.length; i++) all.set(await sha256(formatTrace(traces[i]!)), 32 * i);
  return [...await sha256(all)].map((b) => b.toString(16).padStart(2, "0")).join("").slice(0, 16);
}

/** One disagreement, and where its trace file is. */
export interface Disagreement {
  /** The trace's number in the run (0-based). */
  trace: number;
  /** The diverging op's index in the trace. */
  at: number;
  kind: Divergence["kind"];
  op: string;
  /** What the backend returned. */
  got: string;
  permitted: string[];
  /** The trace file (the trace up to and including the diverging op). */
  file: string;
}

/** What a run found. */
export interface ConformanceSummary {
  seed: number;
  traces: number;
  /** Which traces ran ({@linkcode tracesDigest}). */
  digest: string;
  agreed: number;
  disagreed: number;
  agreement: number;
  ops: number;
  skippedOps: number;
  seconds: number;
  opsPerSec: number;
  /** Disagreements by op and outcome kinds: `access: kvm=pf, permitted={ok}`. */
  kinds: Record<string, number>;
  /** Where the trace files are, or null when nothing was written. */
  out: string | null;
  /** The replay command of a file (FILE stands for its path). */
  replay: string;
  disagreements: Disagreement[];
  /** The kvm host record (`deno task kvm-info --json`), when the backend has one. */
  host?: unknown;
}

/** What the run uses: tests pass another backend, to make disagreements on purpose. */
export interface ConformanceSeam {
  factory: BackendFactory & { host?(): unknown };
  /** The flags of `deno task diff FILE ...` that replay a file on that backend. */
  replayFlags: string;
}

const KVM_SEAM: ConformanceSeam = { factory: kvmFactory, replayFlags: "--backend kvm" };

/** The outcome kind of an outcome (its one key). */
function kindOf(o: object): string {
  return Object.keys(o)[0] ?? "?";
}

/** The trace file of a disagreement: the trace up to the diverging op, and why. */
export function disagreementTrace(
  trace: Trace,
  d: Divergence,
  where: { seed: number; trace: number; traces: number; backend: string },
): Trace {
  const permitted = d.permitted.map(formatPermitted);
  return {
    format: TRACE_FORMAT,
    comment: `kvm-conformance --seed ${where.seed}, trace ${where.trace} of ${where.traces}: ` +
      `${d.kind} at op ${d.index} (${formatOp(d.op)}): ${where.backend} returned ` +
      `${formatOutcome(d.observed)}; permitted: ${
        permitted.length === 0 ? "nothing" : permitted.join(" | ")
      }`,
    config: trace.config,
    ops: trace.ops.slice(0, d.index + 1) as Op[],
  };
}

/**
 * Runs the campaign of `flags` and writes each disagreement's trace file. The caller has
 * checked that the backend is available.
 */
export async function runConformance(
  flags: ConformanceFlags,
  seam: ConformanceSeam = KVM_SEAM,
): Promise<ConformanceSummary> {
  const { factory } = seam;
  const traces = conformanceTraces(flags.seed, flags.traces);
  const digest = await tracesDigest(traces);
  let out = flags.out ?? null;
  if (out !== null) await Deno.mkdir(out, { recursive: true });
  let agreed = 0, ops = 0, skippedOps = 0;
  const kinds: Record<string, number> = {};
  const disagreements: Disagreement[] = [];
  const t0 = performance.now();
  for (let t = 0; t < traces.length; t++) {
    const trace = traces[t]!;
    const r = diffTrace(trace, factory);
    ops += r.ops;
    skippedOps += r.skipped;
    const d = r.divergence;
    if (d === null) {
      agreed++;
      continue;
    }
    const key = `${d.op.op}: ${factory.name}=${kindOf(d.observed)}, permitted={${
      [...new Set(d.permitted.map((p) => kindOf(p.outcome)))].join(",")
    }}`;
    kinds[key] = (kinds[key] ?? 0) + 1;
    out ??= await Deno.makeTempDir({ prefix: "shadowfuzz-kvm-conformance-" });
    const file = join(out, `seed-${flags.seed}-trace-${t}.json`);
    const where = { seed: flags.seed, trace: t, traces: traces.length, backend: factory.name };
    await Deno.writeTextFile(file, formatTrace(disagreementTrace(trace, d, where)));
    disagreements.push({
      trace: t,
      at: d.index,
      kind: d.kind,
      op: formatOp(d.op),
      got: formatOutcome(d.observed),
      permitted: d.permitted.map(formatPermitted),
      file,
    });
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    seed: flags.seed,
    traces: traces.length,
    digest,
    agreed,
    disagreed: traces.length - agreed,
    agreement: agreed / traces.length,
    ops,
    skippedOps,
    seconds: Math.round(seconds * 10) / 10,
    opsPerSec: Math.round(ops / Math.max(seconds, 1e-9)),
    kinds,
    out,
    replay: `deno task diff FILE ${seam.replayFlags}`,
    disagreements,
    ...(factory.host === undefined ? {} : { host: factory.host() }),
  };
}

/** The summary for humans. */
export function formatSummary(s: ConformanceSummary, detail = 10): string {
  const lines = [
    `seed ${s.seed}: ${s.traces} traces (digest ${s.digest}), ${s.ops} ops ` +
    `(${s.skippedOps} left out on both sides) in ${s.seconds} s, ${s.opsPerSec} ops/s`,
    `agreed ${s.agreed}, disagreed ${s.disagreed} (agreement ${s.agreement})`,
  ];
  for (const [k, n] of Object.entries(s.kinds)) lines.push(`  ${n} x ${k}`);
  for (const d of s.disagreements.slice(0, detail)) {
    lines.push(``, `--- trace ${d.trace}: ${d.kind} at op ${d.at}: ${d.op}`, `    got: ${d.got}`);
    for (const p of d.permitted) lines.push(`    permitted: ${p}`);
    lines.push(`    ${s.replay.replace("FILE", d.file)}`);
  }
  if (s.disagreements.length > detail) {
    lines.push(``, `(${s.disagreements.length - detail} more disagreements in ${s.out})`);
  }
  lines.push(
    ``,
    s.out === null
      ? "no disagreement: no trace file written"
      : `${s.disagreements.length} trace file(s) in ${s.out}; replay one with ${s.replay}`,
  );
  return lines.join("\n");
}

/**
 * Runs the command; returns the exit status (see the module doc).
 *
 * @param seam The backend (tests only).
 */
export async function main(
  argv: readonly string[],
  seam: ConformanceSeam = KVM_SEAM,
): Promise<number> {
  let flags;
  try {
    flags = parseConformanceArgs(argv);
  } catch (e) {
    if (!(e instanceof TaskArgsError)) throw e;
    console.error(e.message);
    return 2;
  }
  if (flags === null) {
    console.log(USAGE);
    return 0;
  }
  if (!flags.json) {
    console.log(`kvm-conformance: seed ${flags.seed}${flags.randomSeed ? " (random)" : ""}`);
  }
  const why = seam.factory.available();
  if (why !== null) {
    console.error(`kvm-conformance: the ${seam.factory.name} backend cannot run here: ${why}`);
    return 4;
  }
  if (flags.out !== undefined) {
    // Before any trace: an --out that cannot take the files is a bad argument.
    let problem: string | null;
    try {
      await Deno.mkdir(flags.out, { recursive: true });
      problem = await probeWritable(flags.out);
    } catch (e) {
      problem = `cannot create ${flags.out}: ${(e as Error).message.split("\n")[0]}`;
    }
    if (problem !== null) {
      console.error(taskArgsMessage("kvm-conformance", `--out: ${problem}`));
      return 2;
    }
  }
  let summary;
  try {
    summary = await runConformance(flags, seam);
  } catch (e) {
    const where = flags.out === undefined ? "" : ` (--out ${flags.out})`;
    console.error(
      `kvm-conformance: internal error${where}: ${e instanceof Error ? e.message : String(e)}`,
    );
    return 3;
  }
  console.log(flags.json ? JSON.stringify(summary) : formatSummary(summary));
  return summary.disagreed === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
