/**
 * @module
 * `deno task minimize TRACE.json|FINDING.json|ID`: shrinks a diverging trace (a trace
 * file, or a finding's minimized trace run the way the finding was found: backend,
 * injected bug, audit) with the reducer (`fuzz/reduce/`), keeping its whole identity,
 * and writes it (`--out FILE`, atomically) or prints it.
 */
import { JUDGED_BACKEND_NAMES } from "../../src/backend.ts";
import { atomicWriteText, isFindingId } from "../../src/corpus/store.ts";
import type { Finding } from "../../src/corpus/types.ts";
import { diffTrace } from "../../src/diff.ts";
import { formatTrace } from "../../src/trace/json.ts";
import type { Trace } from "../../src/trace/types.ts";
import { resolveBackendFlag } from "./backend_ref.ts";
import { identifyTrace } from "../campaign/identity.ts";
import { minimizeTrace } from "../reduce/minimize.ts";
import { corpusOf, injectOf, loadFinding, REPLAY_USAGE, traceOf } from "./replay.ts";
import {
  args,
  checkOutFlag,
  type FlagSpecs,
  injectFlag,
  oneArgument,
  readInputFile,
  SHARED_FLAGS,
  UsageError,
} from "./usage.ts";

const MINIMIZE_HELP_HEAD = `Usage:
  deno task minimize TRACE.json|FINDING.json|ID [--out FILE] [--corpus DIR] [--backend core|kvm] [--inject NAME] [--strict] [--audit]

Shrinks a diverging trace (for up to 60 s) while it keeps its whole identity, and prints the
result or writes it to FILE. Exits 0, or 2 when the trace does not diverge.`;

/** `minimize`'s flags. */
export const MINIMIZE_FLAGS = {
  out: { type: "string", value: "FILE", help: "write the minimized trace here (atomically)" },
  corpus: SHARED_FLAGS.lookupCorpus,
  backend: {
    type: "string",
    value: "NAME",
    help: "core or kvm (default core, or the finding's backend)",
  },
  inject: SHARED_FLAGS.inject,
  strict: SHARED_FLAGS.strict,
  audit: SHARED_FLAGS.audit,
} as const satisfies FlagSpecs;

/** `minimize`. */
export async function cmdMinimize(argv: string[]): Promise<number> {
  const { values, positionals } = args(argv, MINIMIZE_FLAGS, MINIMIZE_HELP_HEAD);
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
  const { factory } = resolveBackendFlag(name, JUDGED_BACKEND_NAMES);
  const inject = injectFlag(values.inject, name) ??
    (finding === null ? [] : injectOf(finding, file));
  const options = {
    strict: values.strict ?? false,
    audit: values.audit ?? finding?.kind === "invariant",
    inject,
  };
  // The whole identity (a core divergence's with the known deviation that explains it).
  const sigOf = (t: Trace) => {
    const d = diffTrace(t, factory, options).divergence;
    return d === null ? null : identifyTrace(t, d, factory, options).signature;
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
