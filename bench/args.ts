/**
 * @module
 * Argument handling shared by the bench scripts (`deno task bench`, `bench:dashboard`,
 * `kvm-conformance`): `--help` or `-h` asks for the usage before anything else runs, and a
 * bad flag is one line naming the task, then exit 2.
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/** A bad command line: the message is one line that names the task. */
export class TaskArgsError extends Error {}

/** The one-line message of a bad flag of `deno task TASK`. */
export function taskArgsMessage(task: string, problem: string): string {
  return `Cannot parse arguments of deno task ${task}: ${problem} (see --help)`;
}

/** `node:util` parseArgs' message as a clause: its first sentence, lower-cased. */
function clause(e: unknown): string {
  const text = (e instanceof Error ? e.message : String(e)).split("\n")[0]!.split(". ")[0]!;
  const first = text.replace(/\.$/, "");
  return first.charAt(0).toLowerCase() + first.slice(1);
}

/**
 * Parses `argv` strictly (no positionals). `--help` or `-h` before a `--` wins over
 * anything else on the line.
 *
 * @returns The values, or `null` when the usage was asked for.
 * @throws {TaskArgsError} On an unknown flag, a missing or extra value, or a positional.
 */
export function parseTaskArgs<const O extends ParseArgsOptionsConfig>(
  task: string,
  argv: readonly string[],
  options: O,
): ReturnType<typeof parseArgs<{ options: O; strict: true }>>["values"] | null {
  const end = argv.indexOf("--");
  const flags = end < 0 ? argv : argv.slice(0, end);
  if (flags.includes("--help") || flags.includes("-h")) return null;
  try {
    return parseArgs({ args: [...argv], options, strict: true }).values;
  } catch (e) {
    throw new TaskArgsError(taskArgsMessage(task, clause(e)));
  }
}

/**
 * {@linkcode parseTaskArgs} for a script's entry point: prints `usage` and exits 0 on
 * `--help`, prints the one-line message and exits 2 on a bad flag.
 */
export function taskArgsOrExit<const O extends ParseArgsOptionsConfig>(
  task: string,
  argv: readonly string[],
  options: O,
  usage: string,
): NonNullable<ReturnType<typeof parseTaskArgs<O>>> {
  let values;
  try {
    values = parseTaskArgs(task, argv, options);
  } catch (e) {
    if (!(e instanceof TaskArgsError)) throw e;
    console.error(e.message);
    Deno.exit(2);
  }
  if (values === null) {
    console.log(usage);
    Deno.exit(0);
  }
  return values;
}
