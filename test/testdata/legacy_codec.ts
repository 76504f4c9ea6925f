/**
 * @module
 * The op codec as it was before the op table (`ops.ts`, issue 11): the JSON reader of
 * `parse.ts`, `opToJson` of `json.ts`, the text form of `text.ts` and `checkOp` of
 * `_rules.ts`, copied verbatim from commit 94fad73 with only their imports and exports
 * changed (and the kinds added since left out). Test-only: `ops_equivalence_test.ts`
 * checks that the table gives the same JSON, text, parse results and error messages for
 * every op these accept or refuse. Nothing else imports it.
 */
import { hex, parseHex64, U64_MAX } from "../../src/trace/_hex.ts";
import type { AccessKind, CtlOp, Op as AnyOp, Size, SlotFlag } from "../../src/trace/types.ts";
import { FILTER_ALLOW, FILTER_DENY, OP_KINDS as ALL_KINDS } from "../../src/trace/types.ts";

/** The op kinds of commit 94fad73 (kinds the table gained since are not known here). */
export type LegacyOp = Exclude<AnyOp, { op: "dirtyclear" }>;
type Op = LegacyOp;
type OpKind = Op["op"];
/** The op kinds the legacy codec knows. */
export const LEGACY_OP_KINDS = ALL_KINDS.filter((k): k is OpKind => (k as string) !== "dirtyclear");
const OP_KINDS = LEGACY_OP_KINDS;

interface Problem {
  field?: string;
  detail: string;
  error: typeof TypeError | typeof RangeError;
}
const PAGE_SIZE = 4096;
const U32_MAX = 0xffff_ffff;
const GPA_LIMIT = 1n << 52n;
const SLOT_PAGES_MAX = 2 ** 40;
const RANGE_PAGES_MAX = 2 ** 20;
const FILTER_EVENTS_MAX = 1000;
const EVENT_MAX = 0xfff;
const UMASK_MAX = 0xff;
const SIZES: readonly number[] = [1, 2, 4, 8];
const ACCESS_KINDS: readonly AccessKind[] = ["read", "write", "fetch"];
const SLOT_FLAGS: readonly SlotFlag[] = ["log", "ro"];
const CTL_FIELDS = ["wp", "smep", "smap", "nx", "ac", "pce"] as const;

// ---- _rules.ts

/** The first broken rule of a typed op, or `undefined` if the op is valid. */
function checkOp(op: Op): Problem | undefined {
  switch (op.op) {
    case "slot":
      return intIn("id", op.id, 0, U32_MAX) ?? u64("gpa", op.gpa) ?? u64("hva", op.hva) ??
        intIn("pages", op.pages, 0, SLOT_PAGES_MAX) ?? slotFlags(op.flags);
    case "write":
      return directGpa(op.gpa) ?? size(op.size) ?? inPage("gpa", op.gpa, op.size) ??
        u64("value", op.value);
    case "read":
      return directGpa(op.gpa) ?? size(op.size) ?? inPage("gpa", op.gpa, op.size);
    case "access":
      return u64("gva", op.gva) ?? size(op.size) ?? inPage("gva", op.gva, op.size) ??
        accessValue(op.kind, op.value);
    case "invlpg":
      return u64("gva", op.gva);
    case "cr3":
      return u64("gpa", op.gpa);
    case "ctl":
      return CTL_FIELDS.some((f) => op[f] !== undefined) ? undefined : {
        detail: `ctl needs at least one of ${CTL_FIELDS.join(", ")}`,
        error: TypeError,
      };
    case "discard":
      return u64("hva", op.hva) ?? intIn("pages", op.pages, 1, RANGE_PAGES_MAX);
    case "dirtylog":
      return intIn("id", op.id, 0, U32_MAX);
    case "age":
      return u64("gpa", op.gpa) ?? intIn("pages", op.pages, 1, RANGE_PAGES_MAX);
    case "wrmsr":
      return intIn("msr", op.msr, 0, U32_MAX, true) ?? u64("value", op.value);
    case "rdmsr":
      return intIn("msr", op.msr, 0, U32_MAX, true);
    case "rdpmc":
      return intIn("ecx", op.ecx, 0, U32_MAX, true);
    case "filter":
      return intIn("action", op.action, 0, U32_MAX) ??
        intIn("flags", op.flags, 0, U32_MAX, true) ??
        intIn("fixed", op.fixed, 0, U32_MAX, true) ?? filterEvents(op.events);
    case "events":
      return intIn("event", op.event, 0, EVENT_MAX, true) ??
        intIn("umask", op.umask, 0, UMASK_MAX, true) ?? intIn("count", op.count, 0, U32_MAX);
    case "pmis":
      return undefined;
  }
}

function rule(field: string, detail: string): Problem {
  return { field, detail, error: RangeError };
}

/** `value` must be an integer in [min, max]; `hexBounds` words the bounds in hex. */
function intIn(
  field: string,
  value: number,
  min: number,
  max: number,
  hexBounds = false,
): Problem | undefined {
  if (Number.isInteger(value) && value >= min && value <= max) return undefined;
  const [lo, hi] = hexBounds ? [hex(min), hex(max)] : [String(min), String(max)];
  return rule(field, `is out of range: must be an integer from ${lo} to ${hi}`);
}

function oneOf<T>(field: string, value: T, allowed: readonly T[]): Problem | undefined {
  if (allowed.includes(value)) return undefined;
  const words = allowed.map((a) => JSON.stringify(a));
  return rule(
    field,
    `is out of range: must be ${words.slice(0, -1).join(", ")} or ${words.at(-1)}`,
  );
}

function u64(field: string, value: bigint): Problem | undefined {
  return value >= 0n && value <= U64_MAX ? undefined : rule(field, "is not a 64-bit value");
}

function directGpa(gpa: bigint): Problem | undefined {
  if (gpa >= 0n && gpa < GPA_LIMIT) return undefined;
  return rule("gpa", `is out of range: must be below ${hex(GPA_LIMIT)}`);
}

function size(value: number): Problem | undefined {
  return oneOf("size", value, SIZES);
}

function inPage(field: string, address: bigint, bytes: number): Problem | undefined {
  const offset = Number(address & BigInt(PAGE_SIZE - 1));
  if (address >= 0n && address <= U64_MAX && offset + bytes <= PAGE_SIZE) return undefined;
  return rule(
    field,
    `crosses a page boundary: offset ${hex(offset)} + size ${bytes} > ${PAGE_SIZE}`,
  );
}

function accessValue(kind: AccessKind, value: bigint | undefined): Problem | undefined {
  const problem = oneOf("kind", kind, ACCESS_KINDS);
  if (problem) return problem;
  if (kind === "write" && value === undefined) {
    return {
      field: "value",
      detail: 'is missing: an access of kind "write" needs one',
      error: TypeError,
    };
  }
  if (kind !== "write" && value !== undefined) {
    return {
      field: "value",
      detail: 'is not allowed: only an access of kind "write" has a value',
      error: TypeError,
    };
  }
  return value === undefined ? undefined : u64("value", value);
}

function slotFlags(flags: readonly SlotFlag[]): Problem | undefined {
  for (const [i, flag] of flags.entries()) {
    const problem = oneOf(`flags[${i}]`, flag, SLOT_FLAGS);
    if (problem) return problem;
    if (flags.indexOf(flag) !== i) return rule(`flags[${i}]`, `repeats "${flag}"`);
  }
  return undefined;
}

function filterEvents(events: readonly bigint[]): Problem | undefined {
  if (events.length > FILTER_EVENTS_MAX) {
    return rule("events", `has ${events.length} entries: at most ${FILTER_EVENTS_MAX} allowed`);
  }
  for (const [i, event] of events.entries()) {
    const problem = u64(`events[${i}]`, event);
    if (problem) return problem;
  }
  return undefined;
}

// ---- parse.ts

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

/**
 * Parses and validates one op in its JSON form.
 *
 * @param json The op object, e.g. `{"op": "read", "gpa": "0x1000", "size": 8}`.
 * @param index The op's index in its trace, for error messages.
 * @throws {TypeError} The kind is unknown, or a field is missing, unknown or mistyped.
 * @throws {RangeError} A value is out of range or the access crosses a page.
 */
export function legacyParseOpJson(json: unknown, index: number): Op {
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
  const op = readJsonOp(kind as OpKind, new FieldReader(where, json));
  const problem = checkOp(op);
  if (problem) throw problemError(where, problem);
  if (op.op === "slot") op.flags = SLOT_FLAGS.filter((f) => op.flags.includes(f));
  return op;
}

/** The error for a broken value rule, worded for the JSON form. */
function problemError(where: string, problem: Problem): Error {
  const subject = problem.field === undefined ? "" : `field "${problem.field}" `;
  return new problem.error(`${where}: ${subject}${problem.detail}`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function readJsonOp(kind: OpKind, r: FieldReader): Op {
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

// ---- json.ts

/**
 * The JSON value of one op. Optional fields with defaults are written out (except an
 * access `size` of 8) so a reader need not know the defaults; MSR indexes and ECX are
 * hex strings, the filter action a number.
 */
export function legacyOpToJson(op: Op): unknown {
  switch (op.op) {
    case "slot":
      return {
        op: op.op,
        id: op.id,
        gpa: hex(op.gpa),
        pages: op.pages,
        hva: hex(op.hva),
        flags: [...op.flags],
      };
    case "write":
      return { op: op.op, gpa: hex(op.gpa), size: op.size, value: hex(op.value) };
    case "read":
      return { op: op.op, gpa: hex(op.gpa), size: op.size };
    case "access":
      return {
        op: op.op,
        gva: hex(op.gva),
        kind: op.kind,
        ...(op.value === undefined ? {} : { value: hex(op.value) }),
        user: op.user,
        ...(op.size === 8 ? {} : { size: op.size }),
      };
    case "invlpg":
      return { op: op.op, gva: hex(op.gva) };
    case "cr3":
      return { op: op.op, gpa: hex(op.gpa) };
    case "ctl": {
      const out: Record<string, unknown> = { op: op.op };
      for (const field of CTL_FIELDS) {
        if (op[field] !== undefined) out[field] = op[field];
      }
      return out;
    }
    case "discard":
      return { op: op.op, hva: hex(op.hva), pages: op.pages };
    case "dirtylog":
      return { op: op.op, id: op.id };
    case "age":
      return { op: op.op, gpa: hex(op.gpa), pages: op.pages };
    case "wrmsr":
      return { op: op.op, msr: hex(op.msr), value: hex(op.value) };
    case "rdmsr":
      return { op: op.op, msr: hex(op.msr) };
    case "rdpmc":
      return { op: op.op, ecx: hex(op.ecx), user: op.user };
    case "filter":
      return {
        op: op.op,
        action: op.action,
        flags: op.flags,
        fixed: op.fixed,
        events: op.events.map(hex),
      };
    case "events":
      return { op: op.op, event: op.event, umask: op.umask, count: op.count, user: op.user };
    case "pmis":
      return { op: op.op };
  }
}

// ---- text.ts

const ACCESS_LETTERS: Record<AccessKind, string> = { read: "r", write: "w", fetch: "x" };
const ACCESS_KINDS_BY_LETTER: Record<string, AccessKind> = { r: "read", w: "write", x: "fetch" };

/** The canonical one-line text of an op. */
export function legacyFormatOp(op: Op): string {
  switch (op.op) {
    case "slot":
      return words(
        `slot ${op.id} gpa=${hex(op.gpa)} pages=${op.pages} hva=${hex(op.hva)}`,
        ...SLOT_FLAGS.filter((f) => op.flags.includes(f)),
      );
    case "write":
      return words(`write ${hex(op.gpa)} ${hex(op.value)}`, sizeWord(op.size));
    case "read":
      return words(`read ${hex(op.gpa)}`, sizeWord(op.size));
    case "access":
      return words(
        `access ${ACCESS_LETTERS[op.kind]} ${hex(op.gva)}`,
        op.value === undefined ? "" : hex(op.value),
        op.user ? "user" : "",
        sizeWord(op.size),
      );
    case "invlpg":
      return `invlpg ${hex(op.gva)}`;
    case "cr3":
      return `cr3 ${hex(op.gpa)}`;
    case "ctl":
      return words(
        "ctl",
        ...CTL_FIELDS.map((f) => op[f] === undefined ? "" : `${f}=${op[f] ? 1 : 0}`),
      );
    case "discard":
      return `discard ${hex(op.hva)} pages=${op.pages}`;
    case "dirtylog":
      return `dirtylog ${op.id}`;
    case "age":
      return `age ${hex(op.gpa)} pages=${op.pages}`;
    case "wrmsr":
      return `wrmsr ${hex(op.msr)} ${hex(op.value)}`;
    case "rdmsr":
      return `rdmsr ${hex(op.msr)}`;
    case "rdpmc":
      return words(`rdpmc ${hex(op.ecx)}`, op.user ? "user" : "");
    case "filter":
      return words(
        "filter",
        op.action === FILTER_ALLOW
          ? "allow"
          : op.action === FILTER_DENY
          ? "deny"
          : `action=${op.action}`,
        op.flags === 0 ? "" : `flags=${hex(op.flags)}`,
        op.fixed === 0 ? "" : `fixed=${hex(op.fixed)}`,
        ...op.events.map(hex),
      );
    case "events":
      return words(
        `events ${hex(op.event)} umask=${hex(op.umask)} count=${op.count}`,
        op.user ? "user" : "",
      );
    case "pmis":
      return "pmis";
  }
}

/**
 * Parses one op from its text form.
 *
 * @param line One op, e.g. `slot 1 gpa=0x800000 pages=16 hva=0x40000000 log`.
 * @throws {SyntaxError} A token is missing, unknown, repeated or malformed.
 * @throws {RangeError} A value is out of range or the access crosses a page.
 */
export function legacyParseOp(line: string): Op {
  const r = new OpLine(line);
  const op = readTextOp(r);
  r.done();
  const problem = checkOp(op);
  if (problem) throw r.problemError(problem);
  if (op.op === "slot") op.flags = SLOT_FLAGS.filter((f) => op.flags.includes(f));
  return op;
}

/** Joins the non-empty words with single spaces. */
function words(...parts: string[]): string {
  return parts.filter((p) => p !== "").join(" ");
}

function sizeWord(size: Size): string {
  return size === 8 ? "" : `size=${size}`;
}

function readTextOp(r: OpLine): Op {
  const kind = r.kind;
  switch (kind) {
    case "slot": {
      const id = r.dec("id");
      r.options(["gpa", "pages", "hva"], ["log", "ro"]);
      return {
        op: kind,
        id,
        gpa: r.keyHex("gpa"),
        pages: r.keyDec("pages"),
        hva: r.keyHex("hva"),
        flags: SLOT_FLAGS.filter((f) => r.word(f)) as SlotFlag[],
      };
    }
    case "write": {
      const gpa = r.hex("gpa");
      const value = r.hex("value");
      r.options(["size"], []);
      return { op: kind, gpa, size: r.keyDec("size", 8) as Size, value };
    }
    case "read": {
      const gpa = r.hex("gpa");
      r.options(["size"], []);
      return { op: kind, gpa, size: r.keyDec("size", 8) as Size };
    }
    case "access": {
      const letter = r.next("kind");
      const accessKind = ACCESS_KINDS_BY_LETTER[letter];
      if (accessKind === undefined) r.fail(`${JSON.stringify(letter)} is not r, w or x`);
      const gva = r.hex("gva");
      const value = accessKind === "write" ? r.hex("value") : undefined;
      r.options(["size"], ["user"]);
      return {
        op: kind,
        gva,
        kind: accessKind,
        user: r.word("user"),
        size: r.keyDec("size", 8) as Size,
        ...(value === undefined ? {} : { value }),
      };
    }
    case "invlpg":
      return { op: kind, gva: r.hex("gva") };
    case "cr3":
      return { op: kind, gpa: r.hex("gpa") };
    case "ctl": {
      r.options(CTL_FIELDS, []);
      const op: CtlOp = { op: kind };
      for (const field of CTL_FIELDS) {
        const value = r.keyBit(field);
        if (value !== undefined) op[field] = value;
      }
      return op;
    }
    case "discard": {
      const hva = r.hex("hva");
      r.options(["pages"], []);
      return { op: kind, hva, pages: r.keyDec("pages") };
    }
    case "dirtylog":
      return { op: kind, id: r.dec("id") };
    case "age": {
      const gpa = r.hex("gpa");
      r.options(["pages"], []);
      return { op: kind, gpa, pages: r.keyDec("pages") };
    }
    case "wrmsr":
      // Up to 16 digits convert exactly enough for checkOp to reject >= 2^32.
      return { op: kind, msr: Number(r.hex("msr")), value: r.hex("value") };
    case "rdmsr":
      return { op: kind, msr: Number(r.hex("msr")) };
    case "rdpmc": {
      const ecx = Number(r.hex("ecx"));
      r.options([], ["user"]);
      return { op: kind, ecx, user: r.word("user") };
    }
    case "filter": {
      const action = r.action();
      const events = r.options(["flags", "fixed"], [], "events");
      return {
        op: kind,
        action,
        flags: Number(r.keyHex("flags", 0n)),
        fixed: Number(r.keyHex("fixed", 0n)),
        events,
      };
    }
    case "events": {
      const event = Number(r.hex("event"));
      r.options(["umask", "count"], ["user"]);
      return {
        op: kind,
        event,
        umask: Number(r.keyHex("umask")),
        count: r.keyDec("count"),
        user: r.word("user"),
      };
    }
    case "pmis":
      return { op: kind };
    default:
      return r.fail(`unknown op ${JSON.stringify(kind)}`);
  }
}

/**
 * The tokens of one op line: positional tokens first, then options (`key=value` and
 * words). Remembers which token each field came from, to name it in errors.
 */
class OpLine {
  readonly kind: string;
  readonly #where: string;
  readonly #tokens: string[];
  #next = 1;
  /** The token each field came from (`gpa` -> `0x1000`, `size` -> `size=2`). */
  readonly #tokenOf = new Map<string, string>();
  /** Option values by key (`size` -> `2`) and words by themselves (`user` -> ``). */
  readonly #options = new Map<string, string>();

  constructor(line: string) {
    const trimmed = line.trim();
    this.#where = `Cannot parse op ${JSON.stringify(trimmed)}`;
    this.#tokens = trimmed === "" ? [] : trimmed.split(/\s+/);
    this.kind = this.#tokens[0] ?? "";
    if (this.kind === "") this.fail("empty line");
  }

  fail(detail: string): never {
    throw new SyntaxError(`${this.#where}: ${detail}`);
  }

  /** The next positional token, for `field`. */
  next(field: string): string {
    const token = this.#tokens[this.#next];
    if (token === undefined) this.fail(`missing ${field}`);
    this.#next++;
    this.#tokenOf.set(field, token);
    return token;
  }

  hex(field: string): bigint {
    const token = this.next(field);
    return parseHex64(token) ?? this.fail(`${JSON.stringify(token)} is not a hex number`);
  }

  dec(field: string): number {
    const token = this.next(field);
    if (!/^[0-9]+$/.test(token)) this.fail(`${JSON.stringify(token)} is not a decimal number`);
    return Number(token);
  }

  /** The filter action: `allow`, `deny` or `action=<dec>`. */
  action(): number {
    const token = this.next("action");
    if (token === "allow") return FILTER_ALLOW;
    if (token === "deny") return FILTER_DENY;
    const match = /^action=([0-9]+)$/.exec(token);
    if (!match) this.fail(`${JSON.stringify(token)} is not allow, deny or action=<dec>`);
    return Number(match[1]);
  }

  /**
   * Reads every remaining token as an option: `key=value` for `keys`, or one of
   * `words`. With `loose`, other tokens are hex numbers collected under that field
   * name (`events[0]`, ...) and returned.
   */
  options(keys: readonly string[], words: readonly string[], loose?: string): bigint[] {
    const collected: bigint[] = [];
    for (const token of this.#tokens.slice(this.#next)) {
      const eq = token.indexOf("=");
      const key = eq < 0 ? token : token.slice(0, eq);
      const known = eq < 0 ? words.includes(key) : keys.includes(key);
      if (!known && loose !== undefined && eq < 0) {
        const value = parseHex64(token);
        if (value === undefined) this.fail(`${JSON.stringify(token)} is not a hex number`);
        this.#tokenOf.set(`${loose}[${collected.length}]`, token);
        collected.push(value);
        continue;
      }
      if (!known) this.fail(`${JSON.stringify(token)} is unexpected`);
      if (this.#options.has(key)) this.fail(`${JSON.stringify(token)} repeats ${key}`);
      this.#options.set(key, eq < 0 ? "" : token.slice(eq + 1));
      this.#tokenOf.set(key, token);
    }
    this.#next = this.#tokens.length;
    return collected;
  }

  /** Whether the word option is present. */
  word(name: string): boolean {
    return this.#options.has(name);
  }

  keyHex(key: string, fallback?: bigint): bigint {
    const value = this.#key(key, fallback);
    if (typeof value === "bigint") return value;
    return parseHex64(value) ?? this.#badValue(key, value, "is not a hex number");
  }

  keyDec(key: string, fallback?: number): number {
    const value = this.#key(key, fallback);
    if (typeof value === "number") return value;
    if (!/^[0-9]+$/.test(value)) this.#badValue(key, value, "is not a decimal number");
    return Number(value);
  }

  /** A `key=0|1` option, or `undefined` if absent. */
  keyBit(key: string): boolean | undefined {
    const value = this.#options.get(key);
    if (value === undefined) return undefined;
    if (value !== "0" && value !== "1") this.#badValue(key, value, "is not 0 or 1");
    return value === "1";
  }

  /** Fails if tokens are left over. */
  done(): void {
    const token = this.#tokens[this.#next];
    if (token !== undefined) this.fail(`${JSON.stringify(token)} is unexpected`);
  }

  /** The error for a broken value rule, naming the token the field came from. */
  problemError(problem: Problem): Error {
    const token = problem.field === undefined ? undefined : this.#tokenOf.get(problem.field);
    const subject = token !== undefined
      ? `${JSON.stringify(token)} `
      : problem.field !== undefined
      ? `${problem.field} `
      : "";
    // A missing or contradictory token is a syntax error in the text form.
    const error = problem.error === TypeError ? SyntaxError : problem.error;
    return new error(`${this.#where}: ${subject}${problem.detail}`);
  }

  #key<T>(key: string, fallback: T | undefined): string | T {
    const value = this.#options.get(key);
    if (value !== undefined) return value;
    if (fallback === undefined) this.fail(`missing "${key}=..."`);
    return fallback;
  }

  #badValue(key: string, value: string, detail: string): never {
    return this.fail(`${JSON.stringify(`${key}=${value}`)}: ${JSON.stringify(value)} ${detail}`);
  }
}
