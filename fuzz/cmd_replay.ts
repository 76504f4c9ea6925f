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
import {
  atomicWriteText,
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
import { signatureOf } from "./signature.ts";
import { args, UsageError } from "./usage.ts";

export const REPLAY_USAGE = `Usage:
  deno task replay FINDING.json|ID [--corpus DIR] [--backend core|kvm] [--strict] [--json]
  deno task minimize TRACE.json|FINDING.json|ID [--out FILE] [--corpus DIR] [--backend core|kvm] [--inject NAME] [--strict] [--audit]`;

async function loadFinding(target: string, corpus: string): Promise<Finding> {
  if (isFindingId(target)) {
    let f: Finding | null;
    try {
      f = await readFinding(corpus, target);
    } catch (e) {
      throw new UsageError(`Cannot read finding ${target}: ${(e as Error).message}`);
    }
    if (f === null) throw new UsageError(`No finding ${target} in ${corpus}/findings`);
    return f;
  }
  let text: string;
  try {
    text = await Deno.readTextFile(target);
  } catch (e) {
    throw new UsageError(`Cannot read finding ${target}: ${(e as Error).message}`);
  }
  try {
    return parseFindingFile(text);
  } catch (e) {
    throw new UsageError(`${target}: ${(e as Error).message}`);
  }
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
  const target = positionals[0];
  if (target === undefined) throw new UsageError(`Missing FINDING.json or ID\n${REPLAY_USAGE}`);
  const finding = await loadFinding(target, values.corpus ?? "corpus");
  const minimized = traceOf(finding.minimized, `${target}: field "minimized"`);
  const full = traceOf(finding.trace, `${target}: field "trace"`);
  const name = values.backend ?? finding.divergence.backend;
  const { factory } = await resolveBackendFlag(name, ["core", "kvm"]);
  const options = {
    strict: values.strict ?? false,
    audit: finding.kind === "invariant",
    inject: finding.inject === undefined ? [] : [finding.inject],
  };
  for (const [label, trace] of [["minimized", minimized], ["full", full]] as const) {
    const d = diffTrace(trace, factory, options).divergence;
    if (d === null) continue;
    const sig = signatureOf(d, name as BackendName);
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
  const path = positionals[0];
  if (path === undefined) throw new UsageError(`Missing TRACE.json\n${REPLAY_USAGE}`);
  let json: unknown;
  if (isFindingId(path)) json = null;
  else {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      throw new UsageError(`Cannot read trace ${path}: ${(e as Error).message}`);
    }
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`${path}: Cannot parse JSON: ${(e as Error).message}`);
    }
  }
  // A finding (an id, or a file with a "signature"): its minimized trace, run the way
  // it was found unless flags say otherwise.
  let finding: Finding | null = null;
  if (json === null || (typeof json === "object" && json !== null && "signature" in json)) {
    finding = await loadFinding(path, values.corpus ?? "corpus");
  }
  const trace = finding === null
    ? traceOf(json, path)
    : traceOf(finding.minimized, `${path}: field "minimized"`);
  const name = values.backend ?? finding?.divergence.backend ?? "core";
  const { factory } = await resolveBackendFlag(name, ["core", "kvm"]);
  const inject = values.inject?.split(",") ??
    (finding?.inject === undefined ? [] : [finding.inject]);
  const options = {
    strict: values.strict ?? false,
    audit: values.audit ?? finding?.kind === "invariant",
    inject,
  };
  const sigOf = (t: Trace) => {
    const d = diffTrace(t, factory, options).divergence;
    return d === null ? null : signatureOf(d, name as BackendName);
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
