/**
 * @module
 * The command-line entry point: `deno task run|diff|...` land here with the subcommand
 * as the first argument. Exit codes (docs/design.md): 0 success / no new finding,
 * 1 divergence or new finding, 2 usage error (bad flags, unreadable or malformed
 * input), 3 internal error; and, like kselftest's skip, 4 "cannot test (everything)
 * here": `diff` that skipped ops (unless `--allow-skips`), `replay` that cannot test the
 * finding on this backend here; 5 `replay` of a finding that now diverges with another
 * identity.
 */
import type { Backend, BackendFactory } from "../src/backend.ts";
import { backendFactory } from "../src/backends.ts";
import { diffTrace } from "../src/diff.ts";
import { outcomeToJson, permittedToJson } from "../src/trace/json.ts";
import { parseTrace } from "../src/trace/parse.ts";
import { annotateOp, annotateOutcome, annotatePermitted, formatOp } from "../src/trace/text.ts";
import type { Op, Trace } from "../src/trace/types.ts";
import { ReferenceBackend } from "../src/reference/mod.ts";
import { cmdFuzz, FUZZ_USAGE } from "./commands/fuzz.ts";
import { cmdExport, EXPORT_USAGE } from "./commands/export.ts";
import { cmdMinimize } from "./commands/minimize.ts";
import {
  cmdReplay,
  divergenceLines,
  REPLAY_EXITS,
  REPLAY_USAGE_LINES,
  wrapped,
} from "./commands/replay.ts";
import { cmdSelftest, SELFTEST_USAGE } from "./commands/selftest.ts";
import {
  args as parseFlags,
  type FlagSpecs,
  HelpRequest,
  injectFlag,
  oneArgument,
  readInputFile,
  SHARED_FLAGS,
  UsageError,
} from "./commands/usage.ts";

export { UsageError };

const RUN_DIFF_USAGE = `Usage:
  deno task run TRACE.json [--backend reference|core|kvm] [--json] [--strict]
  deno task diff TRACE.json [--backend core|kvm] [--json] [--strict] [--audit] [--inject NAME] [--allow-skips]`;

/** diff's exit codes, for its --help. */
const DIFF_EXITS = `diff exits
  0 agree: the backend agrees with the reference on every op
  1 a divergence (also a crash, or a broken invariant with --audit)
  4 agrees on every op it ran, but skipped ops it cannot run here (named); 0 with --allow-skips
  2 usage error, 3 shadowfuzz failed`;

const USAGE = `${RUN_DIFF_USAGE}
${FUZZ_USAGE.replace("Usage:\n", "")}
${REPLAY_USAGE_LINES.replace("Usage:\n", "")}
${SELFTEST_USAGE.replace("Usage:\n", "")}
${EXPORT_USAGE.replace("Usage:\n", "")}

${DIFF_EXITS}

${REPLAY_EXITS}`;

/** `run`'s flags. */
export const RUN_FLAGS = {
  backend: {
    type: "string",
    value: "NAME",
    help: "reference (default), core or kvm: the backend whose outcomes are printed",
  },
  json: SHARED_FLAGS.json,
  strict: SHARED_FLAGS.strict,
} as const satisfies FlagSpecs;

/** `diff`'s flags. */
export const DIFF_FLAGS = {
  backend: {
    type: "string",
    value: "NAME",
    help: "core (default) or kvm: the backend diffed against the reference",
  },
  json: SHARED_FLAGS.json,
  strict: SHARED_FLAGS.strict,
  audit: SHARED_FLAGS.audit,
  inject: SHARED_FLAGS.inject,
  "allow-skips": {
    type: "boolean",
    help: "exit 0 instead of 4 when the backend agrees on every op it ran but skipped ops it " +
      "cannot run here",
  },
} as const satisfies FlagSpecs;

const RUN_USAGE = `Usage:
  deno task run TRACE.json [--backend reference|core|kvm] [--json] [--strict]

Runs the trace on one backend and prints one outcome per op (with the permitted set where
the reference permits several).`;

const DIFF_USAGE = `Usage:
  deno task diff TRACE.json [--backend core|kvm] [--json] [--strict] [--audit] [--inject NAME] [--allow-skips]

Runs the trace on the reference and a backend side by side and stops at the first op whose
outcome the reference does not permit.`;

function args<const O extends FlagSpecs>(argv: string[], flags: O, usage: string, more = "") {
  return parseFlags(argv, flags, usage, more);
}

/**
 * Reads and parses a trace file of at most `MAX_INPUT_BYTES` (16 MiB); every problem is
 * a usage error naming the file.
 */
export function loadTrace(path: string): Trace {
  const text = readInputFile(path, "trace");
  try {
    return parseTrace(text);
  } catch (e) {
    throw new UsageError(`${path}: ${(e as Error).message}`);
  }
}

function out(line: string): void {
  console.log(line);
}

function jsonLine(value: unknown): string {
  return JSON.stringify(value);
}

/** `run`: one outcome per op (with the permitted set where it has several entries). */
function cmdRun(argv: string[]): number {
  const { values, positionals } = args(argv, RUN_FLAGS, RUN_USAGE);
  const trace = loadTrace(oneArgument(positionals, "run", "TRACE.json", USAGE));
  const name = values.backend ?? "reference";
  let factory;
  try {
    factory = backendFactory(name);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const why = factory.available();
  if (why !== null) throw new UsageError(`Backend ${name} is not available here: ${why}`);
  const reference = name === "reference"
    ? new ReferenceBackend(trace.config, { strict: values.strict ?? false })
    : null;
  const backend = reference ?? factory.create(trace.config);
  const config = trace.config;
  // The human lines decode the op and its outcome (annotateOp, annotateOutcome); the
  // JSON lines keep the machine format `{"i": N, "op": "...", ...outcome}`.
  const human = (i: number, op: Op, outcome: string) =>
    wrapped(`#${i} `, `${annotateOp(op, config)}  ->  ${outcome}`).forEach(out);
  try {
    trace.ops.forEach((op, i) => {
      const text = formatOp(op);
      if (reference !== null) {
        const j = reference.judge(op);
        const outcome = j.permitted[0]!.outcome;
        if (values.json) {
          const line: Record<string, unknown> = {
            i,
            op: text,
            ...outcomeToJson(outcome) as object,
          };
          if (j.permitted.length > 1) line.permitted = j.permitted.map(permittedToJson);
          out(jsonLine(line));
        } else {
          human(i, op, annotateOutcome(outcome, op, config));
          if (j.permitted.length > 1) {
            for (const p of j.permitted) {
              wrapped("      permitted: ", annotatePermitted(p, op, config)).forEach(out);
            }
          }
        }
      } else {
        // An op the backend cannot run: the human output says so; the JSON line stays
        // what it always was (the backend's refusal as a crash outcome).
        const unsupported = values.json ? null : (backend as Backend).supports?.(op) ?? null;
        if (unsupported !== null) {
          human(i, op, `skipped: ${unsupported}`);
          return;
        }
        let outcome;
        try {
          outcome = backend.step(op);
        } catch (e) {
          outcome = { crash: (e as Error).message };
        }
        if (values.json) out(jsonLine({ i, op: text, ...outcomeToJson(outcome) as object }));
        else human(i, op, annotateOutcome(outcome, op, config));
      }
    });
  } finally {
    backend.close();
  }
  return 0;
}

/** What `cmdDiff` needs from its surroundings (tests pass a fake backend). */
export interface DiffDeps {
  factory?: (name: string) => BackendFactory;
  print?: (line: string) => void;
}

/**
 * `diff`: reference vs a backend. Exit 1 at the first divergence; 4 when it agrees on
 * every op it ran but had to skip some (it could not test everything here) unless
 * `--allow-skips`; 0 when it agrees on every op.
 */
export function cmdDiff(argv: string[], deps: DiffDeps = {}): number {
  const { values, positionals } = args(argv, DIFF_FLAGS, DIFF_USAGE, DIFF_EXITS);
  const print = deps.print ?? out;
  const name = values.backend ?? "core";
  let factory;
  try {
    factory = (deps.factory ?? backendFactory)(name);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const inject = injectFlag(values.inject, name) ?? [];
  const trace = loadTrace(oneArgument(positionals, "diff", "TRACE.json", USAGE));
  const why = factory.available();
  if (why !== null) throw new UsageError(`Backend ${name} is not available here: ${why}`);
  const result = diffTrace(trace, factory, {
    strict: values.strict ?? false,
    audit: values.audit ?? false,
    inject,
  });
  const d = result.divergence;
  const skip = result.skipIndex === undefined ? undefined : {
    i: result.skipIndex,
    op: formatOp(trace.ops[result.skipIndex]!),
    reason: result.skipReason ?? "",
  };
  const code = d !== null ? 1 : result.skipped > 0 && !values["allow-skips"] ? 4 : 0;
  if (values.json) {
    print(jsonLine({
      backend: name,
      ops: result.ops,
      agree: d === null,
      skipped: result.skipped,
      ...(skip === undefined ? {} : { skip }),
      ...(d === null ? {} : {
        divergence: {
          kind: d.kind,
          i: d.index,
          op: formatOp(d.op),
          observed: outcomeToJson(d.observed),
          permitted: d.permitted.map(permittedToJson),
          ...(d.invariant === undefined ? {} : { invariant: d.invariant }),
        },
      }),
    }));
    return code;
  }
  const ran = result.ops - result.skipped;
  if (d === null && result.skipped === 0) {
    print(`agree: reference and ${name} agree on all ${result.ops} ops`);
  } else if (d === null) {
    wrapped(
      "",
      `agree, but not everything was tested: reference and ${name} agree on the ${ran} ` +
        `ops ${name} ran, ${result.skipped} of ${result.ops} ops skipped` +
        (code === 4 ? " (exit 4; --allow-skips: exit 0)" : ""),
    ).forEach(print);
  } else {
    divergenceLines(d, name, trace.config).forEach(print);
  }
  if (skip !== undefined) {
    const n = result.skipped;
    wrapped(
      "  ",
      `${n} op${n === 1 ? "" : "s"} skipped${
        d === null ? "" : " before it"
      }; the first is op ${skip.i} \`${
        annotateOp(trace.ops[skip.i]!, trace.config)
      }\`: ${skip.reason}`,
    ).forEach(print);
  }
  return code;
}

const COMMANDS: Record<string, (argv: string[]) => number | Promise<number>> = {
  run: cmdRun,
  diff: cmdDiff,
  fuzz: cmdFuzz,
  replay: cmdReplay,
  minimize: cmdMinimize,
  selftest: cmdSelftest,
  export: cmdExport,
};

/** Runs a subcommand and returns its exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const fn = command === undefined ? undefined : COMMANDS[command];
  try {
    if (command === "--help" || command === "-h" || command === "help") {
      throw new HelpRequest(USAGE);
    }
    if (fn === undefined) {
      throw new UsageError(`Unknown command "${command ?? ""}"\n${USAGE}`);
    }
    return await fn(rest);
  } catch (e) {
    if (e instanceof HelpRequest) {
      console.log(e.message);
      return 0;
    }
    if (e instanceof UsageError) {
      console.error(`shadowfuzz: ${e.message}`);
      return 2;
    }
    console.error(`shadowfuzz: internal error: ${(e as Error).stack ?? e}`);
    return 3;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
