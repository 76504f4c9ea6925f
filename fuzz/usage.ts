/**
 * @module
 * The CLI's usage error (exit code 2) and strict flag parsing shared by every
 * subcommand: unknown flags, missing values and malformed numbers are usage errors.
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/** A usage error: printed without a stack, exit code 2. */
export class UsageError extends Error {}

/** `--help` or `-h`: the usage (the message) goes to stdout, exit code 0. */
export class HelpRequest extends Error {}

/**
 * Parses `argv` strictly; any problem is a UsageError followed by `usage`. `--help` or
 * `-h` before a `--` asks for `usage` alone (a {@linkcode HelpRequest}).
 */
export function args<const O extends ParseArgsOptionsConfig>(
  argv: string[],
  options: O,
  usage: string,
) {
  const end = argv.indexOf("--");
  const flags = end < 0 ? argv : argv.slice(0, end);
  if (flags.includes("--help") || flags.includes("-h")) throw new HelpRequest(usage);
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n${usage}`);
  }
}

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
