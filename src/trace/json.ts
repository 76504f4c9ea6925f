/**
 * @module
 * The JSON form of traces, ops, configs and outcomes (docs/trace-format.md): 64-bit
 * values as lowercase `0x` hex strings, small counts as numbers.
 *
 * `parseTrace(formatTrace(t))` deep-equals `t` for every valid trace; the config is
 * written as its difference from `defaultConfig()` so traces stay short, and each op
 * sits on one line so that traces read and diff well.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatTrace } from "./json.ts";
 * import { defaultConfig, mergeConfig } from "./config.ts";
 * const text = formatTrace({
 *   format: "shadowfuzz.trace/1",
 *   config: defaultConfig(),
 *   ops: [{ op: "read", gpa: 0x1000n, size: 8 }],
 * });
 * assert.ok(text.includes('{ "op": "read", "gpa": "0x1000", "size": 8 }'));
 * ```
 */
import { defaultConfig, mergeConfig } from "./config.ts";
import { hex, parseHex64 } from "./_hex.ts";
import { checkOutcome, ERRNO_NAMES } from "./_rules.ts";
import { opSpec } from "./ops.ts";
import { formatPageList, pageRunsFromHex, pageRunsToHex, parsePageList } from "./pages.ts";
import type {
  Config,
  ConfigInput,
  Errno,
  Op,
  Outcome,
  PageRuns,
  Permitted,
  Trace,
} from "./types.ts";

/** The JSON value of a trace (config reduced to its non-default fields). */
export function traceToJson(trace: Trace): unknown {
  return {
    format: trace.format,
    ...(trace.comment === undefined ? {} : { comment: trace.comment }),
    config: configToJson(trace.config),
    ops: trace.ops.map(opToJson),
  };
}

/**
 * A trace as JSON text: 2-space indent, one op per line, lowercase hex, a trailing
 * newline.
 */
export function formatTrace(trace: Trace): string {
  const json = traceToJson(trace) as Record<string, unknown>;
  const lines = Object.entries(json).map(([key, value]) => {
    const body = key === "config" || key === "ops" ? block(value) : inline(value);
    return `  ${JSON.stringify(key)}: ${body}`;
  });
  return `{\n${lines.join(",\n")}\n}\n`;
}

/** The fields of `config` that differ from `defaultConfig()`, nested one level deep. */
export function configToJson(config: Config): ConfigInput {
  // The PMU defaults depend on the vendor and PMU version (`mergeConfig`): compare with
  // the defaults a reader will fill in, and always keep the version when it differs.
  const defaults = mergeConfig({
    vendor: config.vendor,
    pmu: { version: config.pmu.version },
  }) as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const plain = defaultConfig();
  if (config.vendor !== plain.vendor) out.vendor = config.vendor;
  for (const [key, value] of Object.entries(config)) {
    const def = defaults[key];
    if (typeof value !== "object" || value === null || typeof def !== "object" || def === null) {
      if (value !== def) out[key] = value;
      continue;
    }
    const changed: Record<string, unknown> = {};
    for (const [sub, subValue] of Object.entries(value)) {
      if (subValue !== (def as Record<string, unknown>)[sub]) changed[sub] = subValue;
    }
    if (key === "pmu" && config.pmu.version !== plain.pmu.version) {
      changed.version = config.pmu.version;
    }
    if (Object.keys(changed).length > 0) out[key] = changed;
  }
  return out as ConfigInput;
}

/**
 * The JSON value of one op, in the op table's JSON order (`ops.ts`). Fields with defaults
 * are written out (except where the table says `jsonOmitDefault`: an access `size` of 8)
 * so a reader need not know the defaults; absent optional fields are left out.
 */
export function opToJson(op: Op): unknown {
  const spec = opSpec(op.op);
  const values = op as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = { op: op.op };
  for (const name of spec.json ?? Object.keys(spec.fields)) {
    const f = spec.fields[name]!;
    const value = values[name];
    if (value === undefined) continue;
    if (f.jsonOmitDefault && value === f.default) continue;
    out[name] = f.codec.toJson(value);
  }
  return out;
}

/**
 * The JSON value of a page set: below page 64, the hex bitmap the format always had
 * (`"0x388"`, `"0x0"`); otherwise a page list, `{"pages": "3,7-9,1073741823"}`, whose
 * length grows with the runs, not with the highest page.
 */
export function pagesToJson(runs: PageRuns): unknown {
  const last = runs.length === 0 ? -1 : runs[runs.length - 1]![1];
  return last < 64 ? pageRunsToHex(runs) : { pages: formatPageList(runs) };
}

/**
 * Reads either form of {@linkcode pagesToJson} (a hex bitmap of up to 262,144 digits, or
 * `{"pages": "<list>"}`); `fail` words the problem.
 */
export function pagesFromJson(json: unknown, fail: (detail: string) => never): PageRuns {
  if (typeof json === "string") {
    return pageRunsFromHex(json) ?? fail("is not a hex bitmap string or a {pages} object");
  }
  if (!isObject(json)) return fail("is not a hex bitmap string or a {pages} object");
  const keys = Object.keys(json);
  if (keys.length !== 1 || keys[0] !== "pages" || typeof json.pages !== "string") {
    return fail('is an object but not {"pages": "<page list>"}');
  }
  const runs = parsePageList(json.pages);
  return "problem" in runs ? fail(`has a bad page list: ${runs.problem}`) : runs;
}

/** The JSON value of an outcome: `{"errno": "EINVAL"}`, `{"value": "0x23"}`, ... */
export function outcomeToJson(outcome: Outcome): unknown {
  if ("value" in outcome) return { value: hex(outcome.value) };
  if ("bitmap" in outcome) return { bitmap: pagesToJson(outcome.bitmap) };
  if ("young" in outcome) return { young: pagesToJson(outcome.young) };
  if ("mmio" in outcome) return { mmio: { gpa: hex(outcome.mmio.gpa), write: outcome.mmio.write } };
  if ("pf" in outcome) return { pf: { code: hex(outcome.pf.code), cr2: hex(outcome.pf.cr2) } };
  // errno, ok, gp, count and crash are JSON values already.
  return { ...outcome };
}

/**
 * Parses and validates an outcome in its JSON form.
 *
 * @throws {TypeError} Not exactly one known key, or a field of the wrong type.
 * @throws {RangeError} A value out of range (an unknown errno name, a 33-bit `pf.code`).
 */
export function outcomeFromJson(json: unknown): Outcome {
  const where = "Cannot parse outcome";
  if (!isObject(json)) throw new TypeError(`${where}: not a JSON object`);
  const keys = Object.keys(json);
  if (keys.length !== 1) {
    throw new TypeError(`${where}: needs exactly one key, got ${keys.length}`);
  }
  const key = keys[0] as string;
  const value = json[key];
  const outcome = readOutcome(where, key, value);
  const problem = checkOutcome(outcome);
  if (problem) {
    const subject = problem.field === undefined ? "" : `field "${problem.field}" `;
    throw new problem.error(`${where}: ${subject}${problem.detail}`);
  }
  return outcome;
}

/**
 * The JSON value of a permitted outcome: `{outcome, dontCare?, why}`. `dontCare` is a hex
 * mask for a value, a page set (as {@linkcode pagesToJson}) for a bitmap or young.
 */
export function permittedToJson(permitted: Permitted): unknown {
  const { dontCare, dontCarePages } = permitted;
  const pages = "bitmap" in permitted.outcome || "young" in permitted.outcome;
  const mask = pages
    ? (dontCarePages === undefined || dontCarePages.length === 0
      ? {}
      : { dontCare: pagesToJson(dontCarePages) })
    : (dontCare === undefined || dontCare === 0n ? {} : { dontCare: hex(dontCare) });
  return { outcome: outcomeToJson(permitted.outcome), ...mask, why: permitted.why };
}

/**
 * Parses a permitted outcome in its JSON form (as stored in a finding's divergence).
 *
 * @throws {TypeError} A field is missing, unknown or of the wrong type.
 * @throws {RangeError} The outcome has a value out of range.
 */
export function permittedFromJson(json: unknown): Permitted {
  const where = "Cannot parse permitted outcome";
  if (!isObject(json)) throw new TypeError(`${where}: not a JSON object`);
  for (const key of Object.keys(json)) {
    if (!["outcome", "dontCare", "why"].includes(key)) {
      throw new TypeError(`${where}: unknown field "${key}"`);
    }
  }
  if (typeof json.why !== "string") throw new TypeError(`${where}: field "why" is not a string`);
  const outcome = outcomeFromJson(json.outcome);
  if (json.dontCare === undefined) return { outcome, why: json.why };
  if ("bitmap" in outcome || "young" in outcome) {
    const dontCarePages = pagesFromJson(json.dontCare, (detail): never => {
      throw new TypeError(`${where}: field "dontCare" ${detail}`);
    });
    return dontCarePages.length === 0
      ? { outcome, why: json.why }
      : { outcome, dontCarePages, why: json.why };
  }
  const dontCare = typeof json.dontCare === "string" ? parseHex64(json.dontCare) : undefined;
  if (dontCare === undefined) {
    throw new TypeError(`${where}: field "dontCare" is not a hex mask string`);
  }
  return { outcome, dontCare, why: json.why };
}

function readOutcome(where: string, key: string, value: unknown): Outcome {
  const fail = (field: string, detail: string): never => {
    throw new TypeError(`${where}: field "${field}" ${detail}`);
  };
  const hex64 = (field: string, v: unknown): bigint =>
    (typeof v === "string" ? parseHex64(v) : undefined) ??
      fail(field, "is not a 64-bit hex string");
  const pageSet = (field: string, v: unknown): PageRuns =>
    pagesFromJson(v, (detail) => fail(field, detail));
  switch (key) {
    case "errno":
      if (value === 0) return { errno: 0 };
      if (typeof value !== "string") return fail(key, "is not an errno name or 0");
      if (!(ERRNO_NAMES as readonly string[]).includes(value)) {
        throw new RangeError(`${where}: field "errno" is not a known errno name: "${value}"`);
      }
      return { errno: value as Errno };
    case "ok":
    case "gp":
      if (value !== true) fail(key, "is not true");
      return key === "ok" ? { ok: true } : { gp: true };
    case "value":
      return { value: hex64(key, value) };
    case "bitmap":
      return { bitmap: pageSet(key, value) };
    case "young":
      return { young: pageSet(key, value) };
    case "mmio": {
      const obj = exactObject(where, key, value, ["gpa", "write"]);
      if (typeof obj.write !== "boolean") fail("mmio.write", "is not a boolean");
      return { mmio: { gpa: hex64("mmio.gpa", obj.gpa), write: obj.write as boolean } };
    }
    case "pf": {
      const obj = exactObject(where, key, value, ["code", "cr2"]);
      const code = hex64("pf.code", obj.code);
      // Up to 16 digits convert exactly enough for checkOutcome to reject >= 2^32.
      return { pf: { code: Number(code), cr2: hex64("pf.cr2", obj.cr2) } };
    }
    case "count":
      if (typeof value !== "number") fail(key, "is not a number");
      return { count: value as number };
    case "crash":
      if (typeof value !== "string") fail(key, "is not a string");
      return { crash: value as string };
    default:
      throw new TypeError(`${where}: unknown kind "${key}"`);
  }
}

/** `value` as an object with exactly the keys `fields`. */
function exactObject(
  where: string,
  name: string,
  value: unknown,
  fields: readonly string[],
): Record<string, unknown> {
  if (!isObject(value)) throw new TypeError(`${where}: field "${name}" is not an object`);
  for (const field of fields) {
    if (!Object.hasOwn(value, field)) {
      throw new TypeError(`${where}: field "${name}.${field}" is missing`);
    }
  }
  for (const key of Object.keys(value)) {
    if (!fields.includes(key)) throw new TypeError(`${where}: unknown field "${name}.${key}"`);
  }
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A JSON value on one line, with a space inside braces and after colons and commas. */
function inline(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(inline).join(", ")}]`;
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value);
    if (entries.length === 0) return "{}";
    return `{ ${entries.map(([k, v]) => `${JSON.stringify(k)}: ${inline(v)}`).join(", ")} }`;
  }
  return JSON.stringify(value);
}

/** An object or array with one entry per line (at indent 4), each entry inline. */
function block(value: unknown): string {
  const [open, close, items] = Array.isArray(value) ? ["[", "]", value.map(inline)] : [
    "{",
    "}",
    Object.entries(value as object).map(([k, v]) => `${JSON.stringify(k)}: ${inline(v)}`),
  ];
  if (items.length === 0) return open + close;
  return `${open}\n${items.map((item) => `    ${item}`).join(",\n")}\n  ${close}`;
}
