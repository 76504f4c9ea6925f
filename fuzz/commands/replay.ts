/**
 * @module
 * `deno task replay FINDING.json|ID`: diffs the finding's minimized trace, then its full trace, on the backend
 *   that found it (or `--backend`), with its injected bug and, for invariant findings,
 *   the audit, and says exactly what happened ({@linkcode replayVerdict}):
 *   `reproduces` (exit 1), `diverges differently` (exit 5, both identities printed),
 *   `fixed` (exit 0) or `cannot test here` (exit 4, naming the op or capability); 2 for
 *   a bad file or id.
 */
import { type BackendFactory, type BackendName, JUDGED_BACKEND_NAMES } from "../../src/backend.ts";
import { join } from "node:path";
import { findingsDir, isFindingId, parseFindingFile, readFinding } from "../../src/corpus/store.ts";
import type { Finding } from "../../src/corpus/types.ts";
import { type DiffOptions, type DiffResult, diffTrace, type Divergence } from "../../src/diff.ts";
import { coreFactory } from "../../src/core/mod.ts";
import { isKvmPvm, kvmConfigMismatch, kvmHost } from "../../src/kvm/mod.ts";
import { ReferenceBackend } from "../../src/reference/mod.ts";
import { pmuDefaults } from "../../src/trace/config.ts";
import { outcomeToJson, permittedToJson } from "../../src/trace/json.ts";
import { traceFromJson } from "../../src/trace/parse.ts";
import { annotateOp, annotateOutcome, annotatePermitted, formatOp } from "../../src/trace/text.ts";
import type { Config, Trace } from "../../src/trace/types.ts";
import { wrapText } from "../../src/x86/decode.ts";
import { resolveBackendFlag } from "./backend_ref.ts";
import { identify, identifyTrace, type Identity } from "../campaign/identity.ts";
import {
  args,
  bugNamesProblem,
  type FlagSpecs,
  MAX_INPUT_BYTES,
  oneArgument,
  readInputFile,
  SHARED_FLAGS,
  UsageError,
} from "./usage.ts";

export const REPLAY_USAGE_LINES = `Usage:
  deno task replay FINDING.json|ID [--corpus DIR] [--backend core|kvm] [--strict] [--json]
  deno task minimize TRACE.json|FINDING.json|ID [--out FILE] [--corpus DIR] [--backend core|kvm] [--inject NAME] [--strict] [--audit]`;

/** replay's exit codes ({@linkcode VERDICT_EXIT}), for its --help and the README. */
export const REPLAY_EXITS =
  `replay runs the finding's minimized trace, then its full trace, and exits
  1 reproduces: a trace diverges with the finding's identity (on another backend than
    the one that found it: the same where and delta, the path being each backend's own)
  5 diverges differently: a trace diverges with another identity (both are printed)
  4 cannot test here: the backend is unavailable, the finding needs a config field or a
    capability missing here (vPMU, 1 GiB pages, MMIO caching, ...), or an op at or before
    the diverging op had to be skipped (the op is named)
  0 fixed: both traces agree on every op, none skipped up to the diverging op
  the first of 1, 5, 4 that either trace shows decides; 2 bad file or id, 3 shadowfuzz failed`;

/** The usage of replay and minimize (what their usage errors print). */
export const REPLAY_USAGE = `${REPLAY_USAGE_LINES}

${REPLAY_EXITS}`;

const REPLAY_HELP_HEAD = `Usage:
  deno task replay FINDING.json|ID [--corpus DIR] [--backend core|kvm] [--strict] [--json]

Replays a finding (its file, or its id in the corpus) the way it was found (backend, injected
bug, audit) and says exactly what happened.`;

/** `replay`'s flags. */
export const REPLAY_FLAGS = {
  corpus: SHARED_FLAGS.lookupCorpus,
  backend: {
    type: "string",
    value: "NAME",
    help: "core or kvm (default the backend that found it): where the finding is replayed",
  },
  strict: SHARED_FLAGS.strict,
  json: { type: "boolean", help: "print the verdict as one JSON object on stdout" },
} as const satisfies FlagSpecs;

/** `--corpus` of replay and minimize (read only): not empty, `corpus` by default. */
export function corpusOf(value: string | undefined): string {
  if (value === "") throw new UsageError(`--corpus must not be empty`);
  return value ?? "corpus";
}

/**
 * A finding by id (in `corpus`) or file, and the file it came from; every problem is a
 * usage error naming the file. Files over `MAX_INPUT_BYTES` are refused by size.
 */
export async function loadFinding(
  target: string,
  corpus: string,
): Promise<{ finding: Finding; file: string }> {
  if (isFindingId(target)) {
    const file = join(findingsDir(corpus), `${target}.json`);
    let info: Deno.FileInfo | null = null;
    try {
      info = await Deno.stat(file);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) {
        throw new UsageError(`Cannot read finding ${file}: ${(e as Error).message}`);
      }
    }
    if (info !== null && !info.isFile) {
      throw new UsageError(`Cannot read finding ${file}: not a regular file`);
    }
    if (info !== null && info.size > MAX_INPUT_BYTES) {
      throw new UsageError(
        `Cannot read finding ${file}: ${info.size} bytes, over the ${
          MAX_INPUT_BYTES / (1024 * 1024)
        } MiB limit`,
      );
    }
    let f: Finding | null;
    try {
      f = await readFinding(corpus, target);
    } catch (e) {
      throw new UsageError(`Cannot read finding ${target}: ${(e as Error).message}`);
    }
    if (f === null) throw new UsageError(`No finding ${target} in ${corpus}/findings`);
    return { finding: f, file };
  }
  const text = readInputFile(target, "finding");
  try {
    return { finding: parseFindingFile(text), file: target };
  } catch (e) {
    throw new UsageError(`${target}: ${(e as Error).message}`);
  }
}

/** The bug a finding was found with, checked against the catalogue (none: `[]`). */
export function injectOf(finding: Finding, file: string): string[] {
  if (finding.inject === undefined) return [];
  const problem = bugNamesProblem([finding.inject]);
  if (problem !== null) throw new UsageError(`${file}: field "inject": ${problem}`);
  return [finding.inject];
}

export function traceOf(json: unknown, what: string): Trace {
  try {
    return traceFromJson(json);
  } catch (e) {
    throw new UsageError(`${what}: ${(e as Error).message}`);
  }
}

// ------------------------------------------------------------------ console text

/** The width console text wraps at (the project's line width). */
export const TEXT_WIDTH = 100;

/**
 * `prefix` then `text`, wrapped with `wrapText` so that no line passes `width`; the
 * continuation lines are indented under the text.
 */
export function wrapped(prefix: string, text: string, width = TEXT_WIDTH): string[] {
  const room = Math.max(24, width - prefix.length);
  return wrapText(text, room).map((line, i) =>
    (i === 0 ? prefix : " ".repeat(prefix.length)) + line
  );
}

/**
 * A divergence for humans: the op, what the backend returned and every permitted
 * outcome, decoded (`annotateOp`, `annotateOutcome`, `annotatePermitted`: #PF error-code
 * bits, MSRs and their fields by name, page-table entries, page lists) and wrapped.
 */
export function divergenceLines(
  d: Divergence,
  backend: string,
  config: Config,
  indent = "",
): string[] {
  const out = wrapped(`${indent}${d.kind} at op ${d.index}: `, annotateOp(d.op, config));
  out.push(
    ...wrapped(`${indent}  ${backend} returned: `, annotateOutcome(d.observed, d.op, config)),
  );
  if (d.invariant !== undefined) out.push(...wrapped(`${indent}  broken invariant: `, d.invariant));
  for (const p of d.permitted) {
    out.push(...wrapped(`${indent}  permitted: `, annotatePermitted(p, d.op, config)));
  }
  return out;
}

// ------------------------------------------------------------------ replay: what a backend lacks

/** Why a finding, or one of its traces, cannot be tested on a backend here. */
export interface CannotTest {
  /**
   * What is missing: the backend itself, a config field the trace needs, a capability
   * the finding needs, an op the backend had to skip, or the kind of finding (an
   * injected bug, a crash or broken invariant of another backend's own code).
   */
  cause: "backend" | "config" | "capability" | "skipped-op" | "finding";
  /** One sentence, naming the op or capability. */
  reason: string;
  /** The op it is about, when there is one: its index and text. */
  index?: number;
  op?: string;
}

/** A config field the backend cannot provide here, and the config it does provide instead. */
export interface ConfigGap {
  field: string;
  reason: string;
  instead: Config;
}

/** The backend a replay runs on, and what it lacks on this machine. */
export interface ReplayTarget {
  name: BackendName;
  /** The factory, or why the backend cannot run here. */
  factory: BackendFactory | { unavailable: string };
  /** The config fields of `config` this backend cannot provide here. */
  configGaps(config: Config): ConfigGap[];
  /** Why this backend makes no MMIO sptes here, or null. */
  noMmioCaching(): string | null;
}

/**
 * kvm_pvm sets CR4.SMEP/SMAP although CPUID lacks them (measured 2026-11-21;
 * corpus/regressions/kvm-pvm-cr4-smep-without-cpuid.json), so a config without them is
 * one it cannot provide.
 */
const KVM_PVM_FEATURES = "kvm_pvm: CR4.SMEP and CR4.SMAP can be set although CPUID lacks them " +
  "(corpus/regressions/kvm-pvm-cr4-smep-without-cpuid.json)";
/** kvm_pvm VMs have no SMM address space (corpus/regressions/kvm-pvm-no-smm-slots.json). */
const KVM_PVM_SMM = "kvm_pvm: the VM has no SMM address space, slot ids >= 0x10000 are EINVAL " +
  "(corpus/regressions/kvm-pvm-no-smm-slots.json)";

/**
 * The backend `name` for a replay. An unknown name is a usage error; an unavailable
 * backend is not (the replay says it cannot test here).
 */
export function replayTarget(name: string): ReplayTarget {
  const allowed = JUDGED_BACKEND_NAMES;
  if (!(allowed as readonly string[]).includes(name)) {
    throw new UsageError(`Unknown backend "${name}": expected one of ${allowed.join(", ")}`);
  }
  let factory: ReplayTarget["factory"];
  try {
    factory = resolveBackendFlag(name, allowed).factory;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    factory = { unavailable: e.message };
  }
  if (name === "core") {
    return { name: "core", factory, configGaps: () => [], noMmioCaching: () => null };
  }
  return {
    name: "kvm",
    factory,
    configGaps(config) {
      const m = kvmConfigMismatch(config);
      const gaps: ConfigGap[] = [];
      if (m.gbPages !== undefined) {
        gaps.push({ field: "gbPages", reason: m.gbPages, instead: { ...config, gbPages: false } });
      }
      if (m.pmu !== undefined) {
        gaps.push({
          field: "pmu",
          reason: m.pmu,
          instead: { ...config, pmu: pmuDefaults(config.vendor, 0) },
        });
      }
      if (isKvmPvm()) {
        if (!config.features.smep || !config.features.smap) {
          gaps.push({
            field: "features",
            reason: KVM_PVM_FEATURES,
            instead: { ...config, features: { smep: true, smap: true } },
          });
        }
        if (config.smm) {
          gaps.push({ field: "smm", reason: KVM_PVM_SMM, instead: { ...config, smm: false } });
        }
      }
      return gaps;
    },
    noMmioCaching() {
      // With kvm.mmio_caching=N KVM makes no MMIO sptes: kvm_handle_noslot_fault()
      // emulates at once when !enable_mmio_caching (arch/x86/kvm/mmu/mmu.c, v6.10). It
      // still fills the emulator's MMIO gva cache (vcpu_cache_mmio_info() just before),
      // so such a finding may still diverge here; only an agreement proves nothing.
      const value = kvmHost().modules["kvm"]?.["mmio_caching"];
      return value === "N"
        ? "kvm: no MMIO caching here (kvm.mmio_caching=N), so KVM makes no MMIO sptes"
        : null;
    },
  };
}

/** A permitted set without the `why` texts (they name ops, not outcomes). */
function permittedKey(permitted: readonly Parameters<typeof permittedToJson>[0][]): string {
  return JSON.stringify(permitted.map((p) => {
    const { why: _why, ...rest } = permittedToJson(p) as Record<string, unknown>;
    return rest;
  }));
}

/**
 * The first op at or before `upTo` whose permitted outcomes differ when the reference
 * runs under `instead` rather than the trace's config, or null: whether the trace
 * depends on what the backend cannot provide. An op the reference refuses under either
 * config counts as dependent.
 */
export function firstDependentOp(trace: Trace, upTo: number, instead: Config): number | null {
  let a: ReferenceBackend, b: ReferenceBackend;
  try {
    a = new ReferenceBackend(trace.config);
    b = new ReferenceBackend(instead);
  } catch {
    return 0;
  }
  for (let i = 0; i <= upTo && i < trace.ops.length; i++) {
    const op = trace.ops[i]!;
    try {
      if (permittedKey(a.judge(op).permitted) !== permittedKey(b.judge(op).permitted)) return i;
    } catch {
      return i;
    }
  }
  return null;
}

/** The first op at or before `upTo` that the core serves from a cached MMIO spte, or null. */
function firstMmioHit(trace: Trace, inject: readonly string[], upTo: number): number | null {
  const core = coreFactory.create(trace.config, { inject });
  try {
    const k = core.coverageNames?.indexOf("mmio-hit") ?? -1;
    if (k < 0 || core.coverage === undefined) return null;
    for (let i = 0; i <= upTo && i < trace.ops.length; i++) {
      try {
        core.step(trace.ops[i]!);
      } catch {
        return null;
      }
      if (core.coverage[k]! > 0) return i;
    }
    return null;
  } finally {
    core.close();
  }
}

// ------------------------------------------------------------------ replay: the verdict

/** What one trace showed. */
export type TraceResult = "reproduces" | "diverges-differently" | "agrees" | "cannot-test";
/** What a replay says: the exit code is {@linkcode VERDICT_EXIT}. */
export type Verdict = "reproduces" | "diverges-differently" | "fixed" | "cannot-test";

/** The exit code of each verdict (4 like kselftest's skip; 5 its own). */
export const VERDICT_EXIT: Readonly<Record<Verdict, 0 | 1 | 4 | 5>> = {
  "reproduces": 1,
  "diverges-differently": 5,
  "cannot-test": 4,
  "fixed": 0,
};

/** One trace of a replay, as run (the input of {@linkcode replayVerdict}). */
export interface TraceRun {
  label: "minimized" | "full";
  trace: Trace;
  /**
   * The op the finding is about in this trace: the minimized trace's recorded diverging
   * op; in the full trace, where the core diverges with the recorded identity now (a
   * core finding replayed elsewhere), else null (not known: every op counts).
   */
  recordedIndex: number | null;
  /** Why it was not run at all. */
  cannot?: CannotTest;
  /** The diff, when it ran. */
  diff?: DiffResult;
  /**
   * The identity of the diff's divergence as the runner found it (the core's with the
   * known deviation that explains it, `identifyTrace`); `identify` of it when absent.
   */
  identity?: Identity;
  /** Why agreement would prove nothing here (a capability the finding needs is missing). */
  agreementGap?: CannotTest;
  /**
   * The first op after the recorded one that needs what the backend lacks here: the
   * diff ran only the ops before it.
   */
  cut?: CannotTest;
}

/** What one trace showed, judged. */
export interface TraceVerdict {
  label: "minimized" | "full";
  result: TraceResult;
  recordedIndex: number | null;
  /** The trace's config (decodes its ops and outcomes). */
  config: Config;
  /** Ops judged (up to and including a divergence) and ops skipped, when it ran. */
  ops?: number;
  skipped?: number;
  /** The first skipped op. */
  skip?: { index: number; op: string; reason: string };
  divergence?: Divergence;
  identity?: Identity;
  cannot?: CannotTest;
  /** The ops from here on were not run ({@linkcode TraceRun.cut}). */
  notRun?: CannotTest;
  /** One sentence for humans. */
  summary: string;
}

/** A replay's verdict: what happened, the trace that decided it, and both traces. */
export interface ReplayVerdict {
  verdict: Verdict;
  exit: 0 | 1 | 4 | 5;
  backend: BackendName;
  recorded: { backend: BackendName; signature: string; id: string; title: string };
  decidedBy: "minimized" | "full";
  /** One sentence for humans. */
  summary: string;
  traces: TraceVerdict[];
}

/** The where and delta of a signature, with the backend named in it made neutral. */
function whereAndDelta(signature: string, backend: string): string {
  return signature.split(" | ")[0]!.replace(`: ${backend} `, ": <backend> ");
}

/**
 * Whether a divergence with signature `now` on `backend` has the recorded identity
 * (found on `recordedBackend`): on the same backend, the same signature; on another,
 * the same where and delta with the backend's name swapped, since the path is each
 * backend's own (the core's events; the kvm backend reports none).
 */
export function sameIdentity(
  recorded: string,
  recordedBackend: BackendName,
  now: string,
  backend: BackendName,
): boolean {
  if (recordedBackend === backend) return recorded === now;
  return whereAndDelta(recorded, recordedBackend) === whereAndDelta(now, backend);
}

function opText(trace: Trace, i: number): string {
  const op = trace.ops[i];
  return op === undefined ? "?" : formatOp(op);
}

/** One trace's result (see {@linkcode replayVerdict}). */
function judgeTrace(
  recorded: ReplayVerdict["recorded"],
  backend: BackendName,
  run: TraceRun,
): TraceVerdict {
  const base = {
    label: run.label,
    recordedIndex: run.recordedIndex,
    config: run.trace.config,
    ...(run.cut === undefined ? {} : { notRun: run.cut }),
  };
  const n = run.trace.ops.length;
  if (run.cannot !== undefined || run.diff === undefined) {
    const cannot = run.cannot ??
      { cause: "backend" as const, reason: `the ${run.label} trace was not run` };
    return { ...base, result: "cannot-test", cannot, summary: `cannot test: ${cannot.reason}` };
  }
  const diff = run.diff;
  const ran = { ops: diff.ops, skipped: diff.skipped };
  const skip = diff.skipIndex === undefined ? undefined : {
    index: diff.skipIndex,
    op: opText(run.trace, diff.skipIndex),
    reason: diff.skipReason ?? "",
  };
  const withSkip = skip === undefined ? {} : { skip };
  // A skipped op at or before the op the finding is about (any op, when that is not
  // known): the finding was not tested.
  const r = run.recordedIndex;
  const blind: CannotTest | undefined = skip !== undefined && (r === null || skip.index <= r)
    ? {
      cause: "skipped-op",
      reason: `op ${skip.index} (\`${skip.op}\`) was skipped${
        r === null ? "" : `, at or before the diverging op ${r}`
      }: ${skip.reason}`,
      index: skip.index,
      op: skip.op,
    }
    : undefined;
  const d = diff.divergence;
  if (d !== null) {
    const identity = run.identity ?? identify(d, backend, run.trace.config);
    const found = { ...base, ...ran, ...withSkip, divergence: d, identity };
    if (sameIdentity(recorded.signature, recorded.backend, identity.signature, backend)) {
      return {
        ...found,
        result: "reproduces",
        summary: `reproduces at op ${d.index}${
          blind === undefined ? "" : ` (although op ${blind.index} was skipped)`
        }`,
      };
    }
    if (blind !== undefined) {
      return {
        ...found,
        result: "cannot-test",
        cannot: blind,
        summary: `cannot test: ${blind.reason}; it then diverges at op ${d.index} with another ` +
          `identity`,
      };
    }
    const where = r === null || d.index === r
      ? ""
      : d.index < r
      ? `, before the diverging op ${r}`
      : `, after the diverging op ${r} agreed`;
    return {
      ...found,
      result: "diverges-differently",
      summary: `diverges differently at op ${d.index}${where}`,
    };
  }
  if (blind !== undefined) {
    return {
      ...base,
      ...ran,
      ...withSkip,
      result: "cannot-test",
      cannot: blind,
      summary: `cannot test: ${blind.reason}`,
    };
  }
  if (run.agreementGap !== undefined) {
    return {
      ...base,
      ...ran,
      ...withSkip,
      result: "cannot-test",
      cannot: run.agreementGap,
      summary: `agrees, but that proves nothing here: ${run.agreementGap.reason}`,
    };
  }
  const later = diff.skipped === 0 ? "" : `, ${diff.skipped} op(s) after op ${r} skipped`;
  const cut = run.cut === undefined
    ? ""
    : `; ops ${run.cut.index} to ${n - 1} not run (${run.cut.reason})`;
  return {
    ...base,
    ...ran,
    ...withSkip,
    result: "agrees",
    summary: run.cut === undefined && diff.skipped === 0
      ? `agrees on all ${n} ops`
      : `agrees on every op up to and past the diverging op ${r}${later}${cut}`,
  };
}

const PRIORITY: readonly TraceResult[] = [
  "reproduces",
  "diverges-differently",
  "cannot-test",
  "agrees",
];

/**
 * The verdict of a replay, a pure function of the finding and what its traces showed.
 * Each trace:
 * - **reproduces**: it diverges with the recorded identity ({@linkcode sameIdentity});
 * - **diverges differently**: it diverges with another identity, and no op at or before
 *   the recorded diverging op was skipped;
 * - **cannot test**: it could not run here (backend, config, the kind of finding), an op
 *   at or before the recorded diverging op was skipped, or it agrees although the
 *   finding needs a capability the backend lacks here;
 * - **agrees**: it agrees on every op it ran and skipped none up to the diverging op.
 *
 * The replay's verdict is the first of reproduces, diverges differently, cannot test
 * that either trace shows (the minimized trace first), else **fixed**: a bug either
 * trace still shows is there; a different divergence is news to triage; fixed needs
 * both traces to agree.
 */
export function replayVerdict(
  finding: Pick<Finding, "id" | "signature" | "title" | "divergence">,
  backend: BackendName,
  runs: readonly TraceRun[],
): ReplayVerdict {
  const recorded = {
    backend: finding.divergence.backend,
    signature: finding.signature,
    id: finding.id,
    title: finding.title,
  };
  const traces = runs.map((r) => judgeTrace(recorded, backend, r));
  let decided = traces[0];
  for (const result of PRIORITY) {
    const t = traces.find((t) => t.result === result);
    if (t !== undefined) {
      decided = t;
      break;
    }
  }
  if (decided === undefined) throw new RangeError("Cannot judge a replay: no trace was run");
  const verdict: Verdict = decided.result === "agrees" ? "fixed" : decided.result;
  const summary = verdict === "fixed"
    ? `fixed: agrees on ${backend} on every op of ${
      traces.length === 1 ? "the trace" : "both traces"
    }`
    : verdict === "reproduces"
    ? `reproduces on ${backend}: the ${decided.label} trace diverges with the recorded identity`
    : verdict === "diverges-differently"
    ? `diverges differently on ${backend}: the ${decided.label} trace diverges with another identity`
    : `cannot test on ${backend} here: ${
      traces.length === 1 ? "" : `the ${decided.label} trace: `
    }${decided.cannot?.reason ?? "unknown"}${
      traces.filter((t) => t.result === "agrees").map((t) => `; the ${t.label} trace agrees`)
        .join("")
    }`;
  return {
    verdict,
    exit: VERDICT_EXIT[verdict],
    backend,
    recorded,
    decidedBy: decided.label,
    summary,
    traces,
  };
}

// ------------------------------------------------------------------ replay: running it

/** Why the whole finding cannot be tested on `target` here, or null. */
function findingCannot(finding: Finding, target: ReplayTarget): CannotTest | null {
  if ("unavailable" in target.factory) {
    return { cause: "backend", reason: target.factory.unavailable };
  }
  const own = finding.divergence.backend;
  if (finding.inject !== undefined && target.name !== "core") {
    return {
      cause: "finding",
      reason: `it was found with the injected bug ${finding.inject}, which only the core has`,
    };
  }
  if ((finding.kind === "crash" || finding.kind === "invariant") && target.name !== own) {
    return {
      cause: "finding",
      reason: `a ${finding.kind === "crash" ? "crash" : "broken invariant"} of the ${own} ` +
        `backend is about its own code, which ${target.name} does not run`,
    };
  }
  return null;
}

/**
 * The first op of `trace` that needs a config field `target` cannot provide here (the
 * earliest over every such field), as a {@linkcode CannotTest}, or null.
 */
function configLimit(trace: Trace, target: ReplayTarget): CannotTest | null {
  let first: CannotTest | null = null;
  for (const gap of target.configGaps(trace.config)) {
    const i = firstDependentOp(trace, first?.index ?? trace.ops.length - 1, gap.instead);
    if (i === null || (first !== null && i >= first.index!)) continue;
    const op = opText(trace, i);
    first = {
      cause: "config",
      reason: `config field ${gap.field} is needed from op ${i} (\`${op}\`): ${gap.reason}`,
      index: i,
      op,
    };
  }
  return first;
}

/** Runs both traces of `finding` on `target` ({@linkcode TraceRun}s for the verdict). */
export function runReplay(
  finding: Finding,
  target: ReplayTarget,
  traces: readonly { label: "minimized" | "full"; trace: Trace }[],
  options: DiffOptions,
): TraceRun[] {
  const whole = findingCannot(finding, target);
  const own = finding.divergence.backend;
  const runs: TraceRun[] = [];
  for (const { label, trace } of traces) {
    const last = Math.max(0, trace.ops.length - 1);
    let recordedIndex: number | null = null;
    if (label === "minimized") {
      recordedIndex = Math.min(Math.max(0, finding.divergence.opIndex), last);
    } else if (whole === null && own === "core" && target.name !== "core") {
      // Where the core diverges on the full trace now, with the recorded identity.
      const d = diffTrace(trace, coreFactory, options).divergence;
      if (
        d !== null &&
        identifyTrace(trace, d, coreFactory, options).signature === finding.signature
      ) {
        recordedIndex = d.index;
      }
    }
    if (whole !== null) {
      runs.push({ label, trace, recordedIndex, cannot: whole });
      continue;
    }
    // A config field the backend lacks here, needed at or before the op the finding is
    // about: the trace cannot be tested; needed only after it: the ops from there on are
    // not run (their outcomes would say nothing about this backend).
    const limit = configLimit(trace, target);
    if (limit !== null && limit.index! <= (recordedIndex ?? last)) {
      runs.push({ label, trace, recordedIndex, cannot: limit });
      continue;
    }
    const ran = limit === null ? trace : { ...trace, ops: trace.ops.slice(0, limit.index) };
    const factory = target.factory as BackendFactory;
    const diff = diffTrace(ran, factory, options);
    const run: TraceRun = { label, trace, recordedIndex, diff };
    if (diff.divergence !== null) {
      run.identity = identifyTrace(ran, diff.divergence, factory, options);
    }
    if (limit !== null) run.cut = limit;
    const noMmio = own !== target.name && diff.divergence === null ? target.noMmioCaching() : null;
    if (noMmio !== null) {
      const i = firstMmioHit(trace, options.inject ?? [], recordedIndex ?? last);
      if (i !== null) {
        const op = opText(trace, i);
        run.agreementGap = {
          cause: "capability",
          reason: `${noMmio}, and the core serves op ${i} (\`${op}\`) from a cached MMIO spte`,
          index: i,
          op,
        };
      }
    }
    runs.push(run);
  }
  return runs;
}

// ------------------------------------------------------------------ replay: output

function identityLines(label: string, id: string, signature: string, title: string): string[] {
  const pad = " ".repeat(label.length);
  return [...wrapped(`${label}${id} `, signature), ...wrapped(`${pad}title: `, title)];
}

/** The replay's verdict for humans. */
export function replayText(v: ReplayVerdict): string[] {
  const out: string[] = [];
  out.push(...wrapped(`finding ${v.recorded.id}: `, v.recorded.title));
  out.push(...wrapped(`  recorded on ${v.recorded.backend}: `, v.recorded.signature));
  for (const t of v.traces) {
    out.push(...wrapped(`${t.label} trace on ${v.backend}: `, t.summary));
    if (t.divergence !== undefined && t.identity !== undefined) {
      out.push(...divergenceLines(t.divergence, v.backend, t.config, "  "));
      out.push(...wrapped(`  identity now: ${t.identity.id} `, t.identity.signature));
    }
  }
  out.push(...wrapped("", `${v.summary} (exit ${v.exit})`));
  if (v.verdict === "diverges-differently") {
    const t = v.traces.find((t) => t.label === v.decidedBy)!;
    out.push(
      ...identityLines("  recorded: ", v.recorded.id, v.recorded.signature, v.recorded.title),
    );
    out.push(
      ...identityLines("  now:      ", t.identity!.id, t.identity!.signature, t.identity!.title),
    );
  }
  if (v.verdict === "reproduces" && v.decidedBy === "full") {
    const min = v.traces.find((t) => t.label === "minimized");
    if (min !== undefined && min.result !== "reproduces") {
      out.push("  the minimized trace does not show it: minimize the full trace again");
    }
  }
  return out;
}

/** The replay's verdict as one JSON object. */
export function replayJson(v: ReplayVerdict): unknown {
  return {
    id: v.recorded.id,
    title: v.recorded.title,
    verdict: v.verdict,
    exit: v.exit,
    reproduces: v.verdict === "reproduces",
    backend: v.backend,
    recorded: v.recorded,
    decidedBy: v.decidedBy,
    summary: v.summary,
    traces: v.traces.map((t) => ({
      trace: t.label,
      result: t.result,
      recordedIndex: t.recordedIndex,
      ...(t.ops === undefined ? {} : { ops: t.ops, skipped: t.skipped }),
      ...(t.skip === undefined
        ? {}
        : { skip: { i: t.skip.index, op: t.skip.op, reason: t.skip.reason } }),
      ...(t.cannot === undefined ? {} : { cannot: cannotJson(t.cannot) }),
      ...(t.notRun === undefined ? {} : { notRun: cannotJson(t.notRun) }),
      ...(t.divergence === undefined || t.identity === undefined ? {} : {
        divergence: {
          kind: t.divergence.kind,
          i: t.divergence.index,
          op: formatOp(t.divergence.op),
          observed: outcomeToJson(t.divergence.observed),
          permitted: t.divergence.permitted.map(permittedToJson),
          ...(t.divergence.invariant === undefined ? {} : { invariant: t.divergence.invariant }),
          signature: t.identity.signature,
          id: t.identity.id,
          title: t.identity.title,
        },
      }),
      summary: t.summary,
    })),
  };
}

function cannotJson(c: CannotTest): unknown {
  return {
    cause: c.cause,
    reason: c.reason,
    ...(c.index === undefined ? {} : { i: c.index, op: c.op }),
  };
}

/** What `cmdReplay` needs from its surroundings (tests pass a fake backend). */
export interface ReplayDeps {
  target?: (name: string) => ReplayTarget | Promise<ReplayTarget>;
  print?: (line: string) => void;
}

/** `replay`. */
export async function cmdReplay(argv: string[], deps: ReplayDeps = {}): Promise<number> {
  const { values, positionals } = args(argv, REPLAY_FLAGS, REPLAY_HELP_HEAD, REPLAY_EXITS);
  const print = deps.print ?? ((line: string) => console.log(line));
  const target = oneArgument(positionals, "replay", "FINDING.json or ID", REPLAY_USAGE);
  const { finding, file } = await loadFinding(target, corpusOf(values.corpus));
  const inject = injectOf(finding, file);
  const minimized = traceOf(finding.minimized, `${target}: field "minimized"`);
  const full = traceOf(finding.trace, `${target}: field "trace"`);
  const name = values.backend ?? finding.divergence.backend;
  const backend = await (deps.target ?? replayTarget)(name);
  const options: DiffOptions = {
    strict: values.strict ?? false,
    audit: finding.kind === "invariant",
    inject,
  };
  const traces = [
    { label: "minimized" as const, trace: minimized },
    { label: "full" as const, trace: full },
  ];
  const runs = runReplay(finding, backend, traces, options);
  const v = replayVerdict(finding, backend.name, runs);
  if (values.json) print(JSON.stringify(replayJson(v)));
  else for (const line of replayText(v)) print(line);
  return v.exit;
}
