/**
 * @module
 * The CLI's usage error (exit code 2), strict flag parsing and the input checks shared by
 * every subcommand: unknown flags, missing values, malformed numbers, unknown bug names,
 * oversized input files and unwritable output places are usage errors, found before any
 * work.
 */
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { checkWritable } from "../../src/corpus/store.ts";
import { catalogue } from "../campaign/catalogue.ts";

/** A usage error: printed without a stack, exit code 2. */
export class UsageError extends Error {}

/** `--help` or `-h`: the usage (the message) goes to stdout, exit code 0. */
export class HelpRequest extends Error {}

/**
 * One flag of a subcommand: its parse type and what `--help` says of it. Every flag a
 * subcommand accepts is declared with its help, so none can go undocumented.
 */
export interface FlagSpec {
  type: "string" | "boolean";
  /** The value's placeholder in the help, e.g. `N` or `DIR` (string flags). */
  value?: string;
  /** One sentence: what the flag does, its default. */
  help: string;
}

/** A subcommand's flags by name (without the leading `--`). */
export type FlagSpecs = Record<string, FlagSpec>;

/** Width of the flag column in `--help`. */
const FLAG_COLUMN = 26;

/** The `Flags:` section of a subcommand's `--help`: one entry per flag, wrapped at 100. */
export function flagsHelp(flags: FlagSpecs): string {
  const lines = ["Flags:"];
  for (const [name, spec] of Object.entries(flags)) {
    const left = `  --${name}${spec.value === undefined ? "" : ` ${spec.value}`}`;
    const words = spec.help.split(/\s+/);
    let line = left.length < FLAG_COLUMN
      ? left.padEnd(FLAG_COLUMN)
      : `${left}\n${"".padEnd(FLAG_COLUMN)}`;
    let width = line.length - line.lastIndexOf("\n") - 1;
    for (const w of words) {
      if (width > FLAG_COLUMN && width + 1 + w.length > 100) {
        line += `\n${"".padEnd(FLAG_COLUMN)}`;
        width = FLAG_COLUMN;
      }
      line += width > FLAG_COLUMN ? ` ${w}` : w;
      width += (width > FLAG_COLUMN ? 1 : 0) + w.length;
    }
    lines.push(line);
  }
  lines.push(`${"  --help, -h".padEnd(FLAG_COLUMN)}print this help and exit 0`);
  return lines.join("\n");
}

/**
 * Parses `argv` strictly against `flags`; any problem is a UsageError followed by
 * `usage`. `--help` or `-h` before a `--` asks for `usage` and the flags' help alone (a
 * {@linkcode HelpRequest}); `more` follows them (exit codes, notes).
 */
export function args<const O extends FlagSpecs>(
  argv: string[],
  flags: O,
  usage: string,
  more = "",
) {
  const end = argv.indexOf("--");
  const given = end < 0 ? argv : argv.slice(0, end);
  if (given.includes("--help") || given.includes("-h")) {
    throw new HelpRequest(`${usage}\n\n${flagsHelp(flags)}${more === "" ? "" : `\n\n${more}`}`);
  }
  const options = Object.fromEntries(
    Object.entries(flags).map(([name, spec]) => [name, { type: spec.type }]),
  ) as { [K in keyof O]: { type: O[K]["type"] } };
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n${usage}`);
  }
}

/**
 * Flags several subcommands share, with one help text each (a subcommand spreads the
 * ones it takes into its own {@linkcode FlagSpecs}).
 */
export const SHARED_FLAGS = {
  json: { type: "boolean", help: "print one JSON object on stdout instead of text" },
  strict: {
    type: "boolean",
    help: "the reference permits only the canonical outcome of each op (the current walk): no " +
      "stale translation, no spurious fault, no don't-care bits; the core and the real KVM do " +
      "serve stale translations, so against them it reports permitted behaviour",
  },
  audit: {
    type: "boolean",
    help: "after every op, run the backend's own invariant check (the core's rmaps, sptes, write " +
      "tracking, unsync levels, MMIO generations); a broken invariant is a finding of kind " +
      "invariant. Only the core has one",
  },
  inject: {
    type: "string",
    value: "NAME",
    help: "plant catalogue bugs (comma-separated) into the core; `deno task fuzz --inject list` " +
      "prints the catalogue. Core only",
  },
  /** `--corpus` of the commands that only look a finding up (replay, minimize, export). */
  lookupCorpus: {
    type: "string",
    value: "DIR",
    help: "the corpus an ID is looked up in (default corpus); read only",
  },
} as const satisfies FlagSpecs;

/** A decimal integer flag in [min, max], or `undefined` when absent. */
export function intFlag(
  name: string,
  value: string | undefined,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[0-9]+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, not "${value}"`);
  }
  return Number(value);
}

/**
 * The cap of `fuzz --workers`: the cores this machine reports
 * (`navigator.hardwareConcurrency`). More workers than cores only compete for them, and
 * each one holds its own isolate (256 of them passed 4 GiB before the first run).
 */
export function maxWorkers(): number {
  return navigator.hardwareConcurrency || 1;
}

/** `--workers`: 0 (inline) to {@linkcode maxWorkers}, the cores by default. */
export function workersFlag(value: string | undefined): number {
  const max = maxWorkers();
  if (value === undefined) return max;
  if (!/^[0-9]+$/.test(value) || Number(value) > max) {
    throw new UsageError(
      `--workers must be an integer from 0 to ${max} (the cores of this machine), not "${value}"`,
    );
  }
  return Number(value);
}

/** The largest trace or finding file the CLI reads, in bytes (16 MiB; README "Traces"). */
export const MAX_INPUT_BYTES = 16 * 1024 * 1024;

/**
 * Reads a trace or finding file of at most {@linkcode MAX_INPUT_BYTES}: a regular file
 * is refused by its size before it is read, anything else (`/dev/zero`, a pipe) is read
 * only up to the limit. Every problem is a usage error naming the file: `Cannot read
 * trace /dev/zero: larger than the 16 MiB limit`.
 *
 * @param what What the file should be, for the message (`trace`, `finding`).
 */
export function readInputFile(path: string, what: string, limit = MAX_INPUT_BYTES): string {
  const mib = `${limit / (1024 * 1024)} MiB`;
  const problem = (detail: string) => new UsageError(`Cannot read ${what} ${path}: ${detail}`);
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (e) {
    throw problem((e as Error).message);
  }
  try {
    const info = file.statSync();
    if (info.isDirectory) throw problem("is a directory");
    if (info.isFile && info.size > limit) {
      throw problem(`${info.size} bytes, over the ${mib} limit`);
    }
    // One byte more than the limit tells "exactly at the limit" from "over it".
    const buf = new Uint8Array(info.isFile ? info.size + 1 : Math.min(limit + 1, 1 << 20));
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const n = file.readSync(buf);
      if (n === null) break;
      total += n;
      if (total > limit) throw problem(`larger than the ${mib} limit`);
      chunks.push(buf.slice(0, n));
    }
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const c of chunks) {
      bytes.set(c, at);
      at += c.length;
    }
    return new TextDecoder().decode(bytes);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw problem((e as Error).message);
  } finally {
    file.close();
  }
}

/**
 * Why bug names are not all in the injected-bug catalogue (`--inject list`), or `null`
 * when they are: the first empty or unknown name.
 */
export function bugNamesProblem(names: readonly string[]): string | null {
  const known = new Set(catalogue().map((b) => b.name));
  for (const name of names) {
    if (name === "") return "empty bug name (see --inject list)";
    if (!known.has(name)) return `unknown bug "${name}" (see --inject list)`;
  }
  return null;
}

/**
 * `--inject a,b` of `diff` and `minimize`: catalogue bug names, for the core only.
 *
 * @returns The names, or `undefined` when the flag is absent.
 */
export function injectFlag(value: string | undefined, backend: string): string[] | undefined {
  if (value === undefined) return undefined;
  const names = value.split(",");
  const problem = bugNamesProblem(names);
  if (problem !== null) throw new UsageError(`--inject: ${problem}`);
  if (backend !== "core") throw new UsageError(`--inject needs --backend core, not ${backend}`);
  return names;
}

/**
 * Why a file cannot be created in `dir`, or `null` when it can: the directory is written
 * to (a probe file is created, written, flushed and removed), so a read-only directory,
 * a read-only file system and, mostly, a full disk are found before any work.
 */
export async function probeWritable(dir: string): Promise<string | null> {
  const probe = join(dir, `.shadowfuzz-probe.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`);
  try {
    const file = await Deno.open(probe, { write: true, createNew: true });
    try {
      await file.write(new Uint8Array(1));
      await file.sync();
    } finally {
      file.close();
      await Deno.remove(probe).catch(() => {});
    }
    return null;
  } catch (e) {
    // Deno's message ends with the probe's path (`: open '...'`): not the user's file.
    const text = (e as Error).message.split("\n")[0]!.replace(/: \w+ '[^']*'$/, "");
    return `cannot write to ${dir}: ${text}`;
  }
}

/**
 * The kind of what is at `path`: a directory, something else, or nothing (also for a
 * path through a file). Another failure (no search permission) is a usage error.
 */
async function kindOf(path: string): Promise<"dir" | "other" | "none"> {
  try {
    return (await Deno.stat(path)).isDirectory ? "dir" : "other";
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.NotADirectory) {
      return "none";
    }
    throw new UsageError(`Cannot use ${path}: ${(e as Error).message.split("\n")[0]}`);
  }
}

/**
 * Checks that `--corpus DIR` can take the campaign's findings and run record, before
 * the campaign starts: not empty (that would be the working directory), a directory or
 * a new one whose parent exists (parents are not created), and writable where the store
 * writes (the store's `checkWritable`: the corpus and its existing folders each take a
 * probe file).
 *
 * @throws {UsageError} Naming the corpus and the reason.
 */
export async function checkCorpusFlag(dir: string): Promise<void> {
  if (dir === "") throw new UsageError(`--corpus must not be empty`);
  if (await kindOf(dir) === "none") {
    const parent = dirname(dir);
    const kind = await kindOf(parent);
    if (kind === "none") {
      throw new UsageError(`--corpus ${dir}: the parent directory ${parent} does not exist`);
    }
    if (kind === "other") throw new UsageError(`--corpus ${dir}: ${parent} is not a directory`);
  }
  const why = await checkWritable(dir);
  if (why !== null) throw new UsageError(why);
}

/**
 * Checks that `--out FILE` can be written (atomically, by a temporary file beside it)
 * before the work that produces it: not empty, not a directory, in an existing,
 * writable directory.
 *
 * @throws {UsageError} Naming `--out`, the file and the reason.
 */
export async function checkOutFlag(path: string): Promise<void> {
  if (path === "") throw new UsageError(`--out must not be empty`);
  const fail = (detail: string) => new UsageError(`--out ${path}: ${detail}`);
  if (await kindOf(path) === "dir") throw fail("is a directory");
  const dir = dirname(path);
  const kind = await kindOf(dir);
  if (kind === "none") throw fail(`the directory ${dir} does not exist`);
  if (kind === "other") throw fail(`${dir} is not a directory`);
  const problem = await probeWritable(dir);
  if (problem !== null) throw fail(problem);
}

/**
 * The one positional argument of a command (`run TRACE.json`): a missing one is a usage
 * error followed by `usage`, an extra one a one-line usage error.
 *
 * @param command The command, for the message (`run`).
 * @param what What the argument is (`TRACE.json`).
 */
export function oneArgument(
  positionals: readonly string[],
  command: string,
  what: string,
  usage: string,
): string {
  const first = positionals[0];
  if (first === undefined) throw new UsageError(`Missing ${what}\n${usage}`);
  if (positionals.length > 1) {
    throw new UsageError(`Unexpected argument "${positionals[1]}": ${command} takes one ${what}`);
  }
  return first;
}
