/**
 * @module
 * Parsing and validation of the JSON trace format (docs/trace-format.md).
 *
 * Every check happens before anything is returned, so a caller gets either a whole,
 * valid {@linkcode Trace} or an error that names what is wrong and where:
 * `Cannot parse trace op 12: field "gpa" is not a 64-bit hex string`. Error classes:
 * `SyntaxError` for text that is not JSON, `TypeError` for a missing, unknown or
 * wrongly typed field, `RangeError` for a value outside its range.
 *
 * Each op's fields, their JSON forms and value rules come from the op table (`ops.ts`);
 * the config's rules live in `_rules.ts`. The rules are shared with the text form
 * (`text.ts`), so both forms accept exactly the same ops.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTrace } from "./parse.ts";
 * const trace = parseTrace('{"format": "shadowfuzz.trace/1", "ops": [{"op": "pmis"}]}');
 * assert.deepEqual(trace.ops, [{ op: "pmis" }]);
 * ```
 */
import { defaultConfig, mergeConfig } from "./config.ts";
import { checkConfig, type Problem } from "./_rules.ts";
import { fresh } from "./_fields.ts";
import { type AnyOpSpec, checkOp, isOpKind, normalizeOp, opSpec } from "./ops.ts";
import { type Config, type ConfigInput, type Op, type Trace, TRACE_FORMAT } from "./types.ts";

const TRACE_FIELDS = ["format", "comment", "config", "ops"];

/**
 * Parses and validates a whole trace from its JSON text.
 *
 * @param text The JSON text of a `shadowfuzz.trace/1` trace.
 * @returns The trace, with the config merged over the defaults.
 * @throws {SyntaxError} The text is not JSON.
 * @throws {TypeError} A field is missing, unknown or of the wrong type.
 * @throws {RangeError} A value is out of range.
 */
export function parseTrace(text: string): Trace {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SyntaxError(`Cannot parse trace: ${(error as Error).message}`);
  }
  return traceFromJson(json);
}

/**
 * Validates a trace that is already a JSON value (as stored inside a corpus finding).
 *
 * @throws {TypeError} A field is missing, unknown or of the wrong type.
 * @throws {RangeError} A value is out of range.
 */
export function traceFromJson(json: unknown): Trace {
  const where = "Cannot parse trace";
  if (!isObject(json)) throw new TypeError(`${where}: not a JSON object`);
  for (const key of Object.keys(json)) {
    if (!TRACE_FIELDS.includes(key)) throw new TypeError(`${where}: unknown field "${key}"`);
  }
  if (!Object.hasOwn(json, "format")) throw new TypeError(`${where}: field "format" is missing`);
  if (json.format !== TRACE_FORMAT) {
    const got = typeof json.format === "string" ? ` (got "${json.format}")` : "";
    throw new TypeError(`${where}: field "format" is not "${TRACE_FORMAT}"${got}`);
  }
  const { comment, ops } = json;
  if (comment !== undefined && typeof comment !== "string") {
    throw new TypeError(`${where}: field "comment" is not a string`);
  }
  if (ops === undefined) throw new TypeError(`${where}: field "ops" is missing`);
  if (!Array.isArray(ops)) throw new TypeError(`${where}: field "ops" is not an array`);
  const config = parseConfig(json.config);
  return {
    format: TRACE_FORMAT,
    ...(comment === undefined ? {} : { comment }),
    config,
    ops: ops.map((op: unknown, i) => parseOpJson(op, i)),
  };
}

/**
 * Parses and validates one op in its JSON form.
 *
 * @param json The op object, e.g. `{"op": "read", "gpa": "0x1000", "size": 8}`.
 * @param index The op's index in its trace, for error messages.
 * @throws {TypeError} The kind is unknown, or a field is missing, unknown or mistyped.
 * @throws {RangeError} A value is out of range or the access crosses a page.
 */
export function parseOpJson(json: unknown, index: number): Op {
  const where = `Cannot parse trace op ${index}`;
  if (!isObject(json)) throw new TypeError(`${where}: not a JSON object`);
  if (!Object.hasOwn(json, "op")) throw new TypeError(`${where}: field "op" is missing`);
  const kind = json.op;
  if (typeof kind !== "string") throw new TypeError(`${where}: field "op" is not a string`);
  if (!isOpKind(kind)) throw new TypeError(`${where}: unknown kind "${kind}"`);
  const spec = opSpec(kind);
  for (const key of Object.keys(json)) {
    if (key !== "op" && !Object.hasOwn(spec.fields, key)) {
      throw new TypeError(`${where}: unknown field "${key}" for kind "${kind}"`);
    }
  }
  const op = readOp(where, spec, json);
  const problem = checkOp(op);
  if (problem) throw problemError(where, problem);
  return normalizeOp(op);
}

/**
 * Reads the typed fields of one JSON op object, in the table's read order, into an op
 * in field order. Types only: ranges are `checkOp`'s job. A field without a default
 * (or with one the JSON form does not take) is required; an optional one may be absent.
 */
function readOp(where: string, spec: AnyOpSpec, json: Record<string, unknown>): Op {
  const values = new Map<string, unknown>();
  const names = Object.keys(spec.fields);
  for (const name of spec.jsonRead ?? spec.json ?? names) {
    const f = spec.fields[name]!;
    if (!Object.hasOwn(json, name)) {
      if (f.optional) continue;
      if (f.default === undefined || f.jsonRequired) {
        throw new TypeError(`${where}: field "${name}" is missing`);
      }
      values.set(name, fresh(f.default));
      continue;
    }
    const read = f.codec.fromJson(json[name]);
    if (!("value" in read)) {
      const Error = read.range ? RangeError : TypeError;
      throw new Error(`${where}: field "${name}${read.at ?? ""}" ${read.fail}`);
    }
    values.set(name, read.value);
  }
  const op: Record<string, unknown> = { op: spec.kind };
  for (const name of names) if (values.has(name)) op[name] = values.get(name);
  return op as unknown as Op;
}

/**
 * Parses and validates a (partial) config and merges it over `defaultConfig()`.
 * `undefined` (no `config` in the trace) gives the defaults.
 *
 * Besides ranges, the vPMU must be self-consistent: `pmu.version: 0` (no vPMU)
 * requires `gp: 0` and `fixed: 0`, Intel fixed counters need version 2, and AMD takes
 * 0, 4 or 6 GP counters, no fixed counters and 48-bit widths. Those are checked after
 * merging, so `{"vendor": "amd"}` alone is rejected (the default vPMU has 3 fixed
 * counters): write the whole `pmu` you mean.
 *
 * @throws {TypeError} A field is unknown or of the wrong type.
 * @throws {RangeError} A value is out of range or the vPMU is inconsistent.
 */
export function parseConfig(json: unknown): Config {
  const where = "Cannot parse trace config";
  if (json === undefined) return defaultConfig();
  if (!isObject(json)) throw new TypeError(`${where}: not a JSON object`);
  const defaults = defaultConfig() as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(json)) {
    if (!Object.hasOwn(defaults, key)) throw new TypeError(`${where}: unknown field "${key}"`);
    const def = defaults[key];
    if (!isObject(def)) {
      checkSameType(where, key, value, def);
      continue;
    }
    if (!isObject(value)) throw new TypeError(`${where}: field "${key}" is not an object`);
    for (const [sub, subValue] of Object.entries(value)) {
      if (!Object.hasOwn(def, sub)) {
        throw new TypeError(`${where}: unknown field "${key}.${sub}"`);
      }
      checkSameType(where, `${key}.${sub}`, subValue, def[sub]);
    }
  }
  const config = mergeConfig(json as ConfigInput);
  const problem = checkConfig(config);
  if (problem) throw problemError(where, problem);
  return config;
}

/** The error for a broken value rule, worded for the JSON form. */
function problemError(where: string, problem: Problem): Error {
  const subject = problem.field === undefined ? "" : `field "${problem.field}" `;
  return new problem.error(`${where}: ${subject}${problem.detail}`);
}

function checkSameType(where: string, field: string, value: unknown, def: unknown): void {
  if (typeof value !== typeof def) {
    throw new TypeError(`${where}: field "${field}" is not a ${typeof def}`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
