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
 * The value rules (ranges, page crossing, vPMU shape) live in `_rules.ts` and are shared
 * with the text form (`text.ts`), so both forms accept exactly the same ops.
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
import { parseHex64 } from "./_hex.ts";
import { checkConfig, checkOp, CTL_FIELDS, type Problem, SLOT_FLAGS } from "./_rules.ts";
import {
  type AccessKind,
  type Config,
  type ConfigInput,
  type CtlOp,
  FILTER_ALLOW,
  FILTER_DENY,
  type Op,
  OP_KINDS,
  type OpKind,
  type Size,
  type SlotFlag,
  type Trace,
  TRACE_FORMAT,
} from "./types.ts";

/** The JSON fields of each op kind besides `op` (optional ones have defaults). */
const OP_FIELDS: Record<OpKind, readonly string[]> = {
  slot: ["id", "gpa", "pages", "hva", "flags"],
  write: ["gpa", "size", "value"],
  read: ["gpa", "size"],
  access: ["gva", "kind", "value", "user", "size"],
  invlpg: ["gva"],
  cr3: ["gpa"],
  ctl: CTL_FIELDS,
  discard: ["hva", "pages"],
  dirtylog: ["id"],
  age: ["gpa", "pages"],
  wrmsr: ["msr", "value"],
  rdmsr: ["msr"],
  rdpmc: ["ecx", "user"],
  filter: ["action", "flags", "fixed", "events"],
  events: ["event", "umask", "count", "user"],
  pmis: [],
};

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
  if (!(OP_KINDS as readonly string[]).includes(kind)) {
    throw new TypeError(`${where}: unknown kind "${kind}"`);
  }
  const fields = OP_FIELDS[kind as OpKind];
  for (const key of Object.keys(json)) {
    if (key !== "op" && !fields.includes(key)) {
      throw new TypeError(`${where}: unknown field "${key}" for kind "${kind}"`);
    }
  }
  const op = readOp(kind as OpKind, new FieldReader(where, json));
  const problem = checkOp(op);
  if (problem) throw problemError(where, problem);
  if (op.op === "slot") op.flags = SLOT_FLAGS.filter((f) => op.flags.includes(f));
  return op;
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

function readOp(kind: OpKind, r: FieldReader): Op {
  switch (kind) {
    case "slot":
      return {
        op: kind,
        id: r.number("id"),
        gpa: r.hex64("gpa"),
        pages: r.number("pages"),
        hva: r.hex64("hva"),
        flags: r.stringArray("flags") as SlotFlag[],
      };
    case "write":
      return {
        op: kind,
        gpa: r.hex64("gpa"),
        size: r.number("size") as Size,
        value: r.hex64("value"),
      };
    case "read":
      return { op: kind, gpa: r.hex64("gpa"), size: r.number("size") as Size };
    case "access": {
      const value = r.optional("value") ? r.hex64("value") : undefined;
      return {
        op: kind,
        gva: r.hex64("gva"),
        kind: r.string("kind") as AccessKind,
        user: r.boolean("user", false),
        size: r.number("size", 8) as Size,
        ...(value === undefined ? {} : { value }),
      };
    }
    case "invlpg":
      return { op: kind, gva: r.hex64("gva") };
    case "cr3":
      return { op: kind, gpa: r.hex64("gpa") };
    case "ctl": {
      const op: CtlOp = { op: kind };
      for (const field of CTL_FIELDS) {
        if (r.optional(field)) op[field] = r.boolean(field);
      }
      return op;
    }
    case "discard":
      return { op: kind, hva: r.hex64("hva"), pages: r.number("pages") };
    case "dirtylog":
      return { op: kind, id: r.number("id") };
    case "age":
      return { op: kind, gpa: r.hex64("gpa"), pages: r.number("pages") };
    case "wrmsr":
      return { op: kind, msr: r.u32("msr"), value: r.hex64("value") };
    case "rdmsr":
      return { op: kind, msr: r.u32("msr") };
    case "rdpmc":
      return { op: kind, ecx: r.u32("ecx"), user: r.boolean("user", false) };
    case "filter":
      return {
        op: kind,
        action: r.action("action"),
        flags: r.number("flags", 0),
        fixed: r.number("fixed", 0),
        events: r.hex64Array("events"),
      };
    case "events":
      return {
        op: kind,
        event: r.number("event"),
        umask: r.number("umask"),
        count: r.number("count"),
        user: r.boolean("user", false),
      };
    case "pmis":
      return { op: kind };
  }
}

/**
 * Reads typed fields of one JSON op object. Types only: ranges are `checkOp`'s job.
 * A field read without a default is required.
 */
class FieldReader {
  readonly #where: string;
  readonly #obj: Record<string, unknown>;

  constructor(where: string, obj: Record<string, unknown>) {
    this.#where = where;
    this.#obj = obj;
  }

  /** Whether the field is present. */
  optional(name: string): boolean {
    return Object.hasOwn(this.#obj, name);
  }

  hex64(name: string): bigint {
    const value = this.#required(name);
    const parsed = typeof value === "string" ? parseHex64(value) : undefined;
    if (parsed === undefined) this.#fail(name, "is not a 64-bit hex string");
    return parsed;
  }

  number(name: string, fallback?: number): number {
    const value = this.#get(name, fallback);
    if (typeof value !== "number") this.#fail(name, "is not a number");
    return value;
  }

  boolean(name: string, fallback?: boolean): boolean {
    const value = this.#get(name, fallback);
    if (typeof value !== "boolean") this.#fail(name, "is not a boolean");
    return value;
  }

  string(name: string): string {
    const value = this.#required(name);
    if (typeof value !== "string") this.#fail(name, "is not a string");
    return value;
  }

  /** A u32 as a number or a hex string (MSR indexes read better in hex). */
  u32(name: string): number {
    const value = this.#required(name);
    if (typeof value === "number") return value;
    const parsed = typeof value === "string" ? parseHex64(value) : undefined;
    if (parsed === undefined) this.#fail(name, "is not a number or a hex string");
    // Up to 16 hex digits convert exactly enough for checkOp to reject anything >= 2^32.
    return Number(parsed);
  }

  /** The filter action: a number, or "allow" / "deny" for KVM_PMU_EVENT_ALLOW / DENY. */
  action(name: string): number {
    const value = this.#required(name);
    if (typeof value === "number") return value;
    if (value === "allow") return FILTER_ALLOW;
    if (value === "deny") return FILTER_DENY;
    if (typeof value === "string") {
      throw new RangeError(`${this.#where}: field "${name}" is not "allow", "deny" or a number`);
    }
    this.#fail(name, 'is not "allow", "deny" or a number');
  }

  stringArray(name: string): string[] {
    return this.#array(name).map((item, i) => {
      if (typeof item !== "string") this.#fail(`${name}[${i}]`, "is not a string");
      return item;
    });
  }

  hex64Array(name: string): bigint[] {
    return this.#array(name).map((item, i) => {
      const parsed = typeof item === "string" ? parseHex64(item) : undefined;
      if (parsed === undefined) this.#fail(`${name}[${i}]`, "is not a 64-bit hex string");
      return parsed;
    });
  }

  /** An optional array field; absent means empty. */
  #array(name: string): unknown[] {
    const value = this.#get(name, []);
    if (!Array.isArray(value)) this.#fail(name, "is not an array");
    return value;
  }

  #required(name: string): unknown {
    if (!this.optional(name)) this.#fail(name, "is missing");
    return this.#obj[name];
  }

  #get(name: string, fallback: unknown): unknown {
    if (this.optional(name)) return this.#obj[name];
    if (fallback === undefined) this.#fail(name, "is missing");
    return fallback;
  }

  #fail(field: string, detail: string): never {
    throw new TypeError(`${this.#where}: field "${field}" ${detail}`);
  }
}
