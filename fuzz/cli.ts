/**
 * @module
 * The command-line entry point: `deno task run|diff|...` land here with the subcommand
 * as the first argument. Exit codes (docs/design.md): 0 success / no new finding,
 * 1 divergence or new finding, 2 usage error (bad flags, unreadable or malformed
 * input), 3 internal error.
 */
import type { ParseArgsOptionsConfig } from "node:util";
import { backendFactory } from "../src/backends.ts";
import { diffTrace } from "../src/diff.ts";
import { outcomeToJson, permittedToJson } from "../src/trace/json.ts";
import { parseTrace } from "../src/trace/parse.ts";
import { formatOp, formatOutcome, formatPermitted } from "../src/trace/text.ts";
import type { Trace } from "../src/trace/types.ts";
import { ReferenceBackend } from "../src/reference/mod.ts";
import { cmdFuzz, FUZZ_USAGE } from "./cmd_fuzz.ts";
import { cmdExport, EXPORT_USAGE } from "./cmd_export.ts";
import { cmdMinimize, cmdReplay, REPLAY_USAGE } from "./cmd_replay.ts";
import { cmdSelftest, SELFTEST_USAGE } from "./selftest.ts";
import {
  args as parseFlags,
  HelpRequest,
  injectFlag,
  oneArgument,
  readInputFile,
  UsageError,
} from "./usage.ts";

export { UsageError };

const USAGE = `Usage:
  deno task run TRACE.json [--backend reference|core|kvm] [--json] [--strict]
  deno task diff TRACE.json [--backend core|kvm] [--json] [--strict] [--audit] [--inject NAME]
${FUZZ_USAGE.replace("Usage:\n", "")}
${REPLAY_USAGE.replace("Usage:\n", "")}
${SELFTEST_USAGE.replace("Usage:\n", "")}
${EXPORT_USAGE.replace("Usage:\n", "")}`;

function args<const O extends ParseArgsOptionsConfig>(argv: string[], options: O) {
  return parseFlags(argv, options, USAGE);
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
  const { values, positionals } = args(argv, {
    backend: { type: "string" },
    json: { type: "boolean" },
    strict: { type: "boolean" },
  });
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
          out(`#${i} ${text}  ->  ${formatOutcome(outcome)}`);
          if (j.permitted.length > 1) {
            for (const p of j.permitted) out(`      permitted: ${formatPermitted(p)}`);
          }
        }
      } else {
        let outcome;
        try {
          outcome = backend.step(op);
        } catch (e) {
          outcome = { crash: (e as Error).message };
        }
        if (values.json) out(jsonLine({ i, op: text, ...outcomeToJson(outcome) as object }));
        else out(`#${i} ${text}  ->  ${formatOutcome(outcome)}`);
      }
    });
  } finally {
    backend.close();
  }
  return 0;
}

/** `diff`: reference vs a backend; exit 1 at the first divergence. */
function cmdDiff(argv: string[]): number {
  const { values, positionals } = args(argv, {
    backend: { type: "string" },
    json: { type: "boolean" },
    strict: { type: "boolean" },
    audit: { type: "boolean" },
    inject: { type: "string" },
  });
  const name = values.backend ?? "core";
  let factory;
  try {
    factory = backendFactory(name);
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
  if (values.json) {
    out(jsonLine({
      backend: name,
      ops: result.ops,
      agree: d === null,
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
  } else if (d === null) {
    out(`agree: reference and ${name} agree on all ${result.ops} ops`);
  } else {
    out(`${d.kind} at op ${d.index}: ${formatOp(d.op)}`);
    out(`  ${name} returned: ${formatOutcome(d.observed)}`);
    if (d.invariant !== undefined) out(`  broken invariant: ${d.invariant}`);
    for (const p of d.permitted) out(`  permitted: ${formatPermitted(p)}`);
  }
  return d === null ? 0 : 1;
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
