/**
 * @module
 * `deno task replay FINDING.json|ID` and `deno task minimize TRACE.json`.
 * - replay: diffs the finding's minimized trace (then its full trace) on the backend
 *   that found it, with its injected bug and, for invariant findings, the audit; exit
 *   1 while it still diverges, 0 once it agrees (fixed), 2 for a bad file or id.
 * - minimize: shrinks a diverging trace (a trace file, or a finding's minimized trace
 *   run the way the finding was found: backend, injected bug, audit) with the op-level
 *   minimizer, keeping its signature, and writes it (`--out FILE`, atomically) or
 *   prints it.
 */
import type { BackendName } from "../src/backend.ts";
import { join } from "node:path";
import {
  atomicWriteText,
  findingsDir,
  isFindingId,
  parseFindingFile,
  readFinding,
} from "../src/corpus/store.ts";
import type { Finding } from "../src/corpus/types.ts";
import { diffTrace } from "../src/diff.ts";
import { formatTrace } from "../src/trace/json.ts";
import { traceFromJson } from "../src/trace/parse.ts";
import { formatOp, formatOutcome, formatPermitted } from "../src/trace/text.ts";
import type { Trace } from "../src/trace/types.ts";
import { resolveBackendFlag } from "./backend_ref.ts";
import { minimizeTrace } from "./minimize.ts";
import { signatureOf } from "./identity.ts";
import {
  args,
  bugNamesProblem,
  checkOutFlag,
  injectFlag,
  MAX_INPUT_BYTES,
  oneArgument,
  readInputFile,
  UsageError,
} from "./usage.ts";

export const REPLAY_USAGE = `Usage:
  deno task replay FINDING.json|ID [--corpus DIR] [--backend core|kvm] [--strict] [--json]
  deno task minimize TRACE.json|FINDING.json|ID [--out FILE] [--corpus DIR] [--backend core|kvm] [--inject NAME] [--strict] [--audit]`;

/** `--corpus` of replay and minimize (read only): not empty, `corpus` by default. */
function corpusOf(value: string | undefined): string {
  if (value === "") throw new UsageError(`--corpus must not be empty`);
  return value ?? "corpus";
}

/**
 * A finding by id (in `corpus`) or file, and the file it came from; every problem is a
 * usage error naming the file. Files over `MAX_INPUT_BYTES` are refused by size.
 */
async function loadFinding(
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
function injectOf(finding: Finding, file: string): string[] {
  if (finding.inject === undefined) return [];
  const problem = bugNamesProblem([finding.inject]);
  if (problem !== null) throw new UsageError(`${file}: field "inject": ${problem}`);
  return [finding.inject];
}

function traceOf(json: unknown, what: string): Trace {
  try {
    return traceFromJson(json);
  } catch (e) {
    throw new UsageError(`${what}: ${(e as Error).message}`);
  }
}

/** `replay`. */
export async function cmdReplay(argv: string[]): Promise<number> {
  const { values, positionals } = args(argv, {
    corpus: { type: "string" },
    backend: { type: "string" },
    strict: { type: "boolean" },
    json: { type: "boolean" },
  }, REPLAY_USAGE);
  const target = oneArgument(positionals, "replay", "FINDING.json or ID", REPLAY_USAGE);
  const { finding, file } = await loadFinding(target, corpusOf(values.corpus));
  const inject = injectOf(finding, file);
  const minimized = traceOf(finding.minimized, `${target}: field "minimized"`);
  const full = traceOf(finding.trace, `${target}: field "trace"`);
  const name = values.backend ?? finding.divergence.backend;
  const { factory } = await resolveBackendFlag(name, ["core", "kvm"]);
  const options = {
    strict: values.strict ?? false,
    audit: finding.kind === "invariant",
    inject,
  };
  for (const [label, trace] of [["minimized", minimized], ["full", full]] as const) {
    const d = diffTrace(trace, factory, options).divergence;
    if (d === null) continue;
    const sig = signatureOf(d, name as BackendName, trace.config);
    if (values.json) {
      console.log(
        JSON.stringify({
          id: finding.id,
          reproduces: true,
          trace: label,
          signature: sig,
          same: sig === finding.signature,
        }),
      );
    } else {
      console.log(
        `reproduces (${label} trace): ${sig}${
          sig === finding.signature ? "" : ` (recorded: ${finding.signature})`
        }`,
      );
      console.log(`  ${d.kind} at op ${d.index}: ${formatOp(d.op)}`);
      console.log(`  ${name} returned: ${formatOutcome(d.observed)}`);
      if (d.invariant !== undefined) console.log(`  broken invariant: ${d.invariant}`);
      for (const p of d.permitted) console.log(`  permitted: ${formatPermitted(p)}`);
    }
    return 1;
  }
  if (values.json) console.log(JSON.stringify({ id: finding.id, reproduces: false }));
  else {console.log(
      `does not reproduce: ${finding.id} (${finding.signature}) agrees on ${name} now`,
    );}
  return 0;
}

/** `minimize`. */
export async function cmdMinimize(argv: string[]): Promise<number> {
  const { values, positionals } = args(argv, {
    out: { type: "string" },
    corpus: { type: "string" },
    backend: { type: "string" },
    inject: { type: "string" },
    strict: { type: "boolean" },
    audit: { type: "boolean" },
  }, REPLAY_USAGE);
  const path = oneArgument(positionals, "minimize", "TRACE.json", REPLAY_USAGE);
  const corpus = corpusOf(values.corpus);
  // Where the result goes is checked before the work that produces it.
  if (values.out !== undefined) await checkOutFlag(values.out);
  let json: unknown;
  if (isFindingId(path)) json = null;
  else {
    const text = readInputFile(path, "trace");
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`${path}: Cannot parse JSON: ${(e as Error).message}`);
    }
  }
  // A finding (an id, or a file with a "signature"): its minimized trace, run the way
  // it was found unless flags say otherwise.
  let finding: Finding | null = null;
  let file = path;
  if (json === null || (typeof json === "object" && json !== null && "signature" in json)) {
    ({ finding, file } = await loadFinding(path, corpus));
  }
  const trace = finding === null
    ? traceOf(json, path)
    : traceOf(finding.minimized, `${path}: field "minimized"`);
  const name = values.backend ?? finding?.divergence.backend ?? "core";
  const { factory } = await resolveBackendFlag(name, ["core", "kvm"]);
  const inject = injectFlag(values.inject, name) ??
    (finding === null ? [] : injectOf(finding, file));
  const options = {
    strict: values.strict ?? false,
    audit: values.audit ?? finding?.kind === "invariant",
    inject,
  };
  const sigOf = (t: Trace) => {
    const d = diffTrace(t, factory, options).divergence;
    return d === null ? null : signatureOf(d, name as BackendName, t.config);
  };
  const signature = sigOf(trace);
  if (signature === null) {
    throw new UsageError(`${path}: the trace does not diverge on ${name}: nothing to minimize`);
  }
  const m = minimizeTrace(trace, (t) => sigOf(t) === signature, {
    deadline: performance.now() + 60_000,
  });
  const out = formatTrace({ ...m.trace, comment: `minimized: ${signature}` });
  if (values.out !== undefined) await atomicWriteText(values.out, out);
  else console.log(out.trimEnd());
  console.error(
    `minimized ${trace.ops.length} -> ${m.trace.ops.length} ops (${m.runs} runs): ${signature}`,
  );
  return 0;
}
