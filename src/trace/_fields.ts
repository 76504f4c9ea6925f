/**
 * @module
 * The building blocks of the op table (`ops.ts`): field codecs (how a field's value is
 * typed, checked and written in JSON and in the text form), the value rules that are
 * not one field's (cross-field rules), the text syntax items, and the simplifiers the
 * minimizer tries. Private to `src/trace`: the table is the public face.
 */
import { hex, parseHex64, U64_MAX } from "./_hex.ts";

/** One broken rule: the field it concerns (if one), what is wrong, and the error class. */
export interface Problem {
  /** A field name (`gpa`), an element (`events[3]`) or a config path (`pmu.gp`). */
  field?: string;
  /** Follows the field name: `is out of range: must be ...`. Without a field, a sentence. */
  detail: string;
  /** `TypeError` for a missing or mistyped value, `RangeError` for one out of range. */
  error: typeof TypeError | typeof RangeError;
}

/** A value that is out of range for `field`. */
export function rule(field: string, detail: string): Problem {
  return { field, detail, error: RangeError };
}

/** `value` must be an integer in [min, max]; `hexBounds` words the bounds in hex. */
export function intIn(
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

/** `value` must be one of `allowed` (worded as JSON values: `1, 2, 4 or 8`). */
export function oneOf<T>(field: string, value: T, allowed: readonly T[]): Problem | undefined {
  if (allowed.includes(value)) return undefined;
  const words = allowed.map((a) => JSON.stringify(a));
  return rule(
    field,
    `is out of range: must be ${words.slice(0, -1).join(", ")} or ${words.at(-1)}`,
  );
}

/** `value` must be a 64-bit value. */
export function u64Rule(field: string, value: bigint): Problem | undefined {
  return value >= 0n && value <= U64_MAX ? undefined : rule(field, "is not a 64-bit value");
}

// ------------------------------------------------------------------------------ codecs

/** A JSON value read for a field: the value, or why it has the wrong type. */
export type JsonRead<T> =
  | { readonly value: T }
  | {
    /** What follows the field name: `is not a number`. */
    readonly fail: string;
    /** An element of the field (`[3]`), appended to its name in the message. */
    readonly at?: string;
    /** The value has the right type but no meaning (a `RangeError`, not a `TypeError`). */
    readonly range?: true;
  };

/**
 * How one field's value is typed and written. `kind` says which text syntax items may
 * hold it: a `token` codec is one token (positional or `key=value`), `bool` a word or a
 * `key=0|1` bit, `flags` a set of words, `list` the bare tokens left over.
 */
export interface Codec<T> {
  /** What the text syntax shows for the value: `hex`, `dec`, `r|w|x`. */
  readonly token: string;
  /** The text token kinds this codec fills (see above). */
  readonly kind: "token" | "bool" | "flags" | "list";
  /** The field's value from its JSON value (types only: ranges are `check`'s). */
  fromJson(json: unknown): JsonRead<T>;
  /** The field's JSON value. */
  toJson(value: T): unknown;
  /** The value of one text token, or `undefined` if the token is not one. */
  fromToken(token: string): T | undefined;
  /** Why a token is not a value, after the token: `is not a hex number`. */
  readonly tokenDetail: string;
  /** The text token of a value. */
  toToken(value: T): string;
  /** The field's own value rule, worded for `field` (a range, a set, a length). */
  check?(field: string, value: T): Problem | undefined;
  /** The canonical form of a valid value (flags in canonical order), if any. */
  normalize?(value: T): T;
  /** For `flags`: the words, in canonical order. */
  readonly words?: readonly string[];
  /** Every value, for a codec with few (an enum, access sizes): generators draw from it. */
  readonly values?: readonly T[];
  /** The smallest and largest value, for a numeric codec: generators draw from it. */
  readonly range?: readonly [T, T];
  /** For `list`: each element's codec. */
  readonly element?: Codec<bigint>;
}

const DEC = /^[0-9]+$/;

function hexToken(token: string): bigint | undefined {
  return parseHex64(token);
}

/** A 64-bit value: a hex string in JSON, a hex token in text. */
export function u64(options: { below?: bigint } = {}): Codec<bigint> {
  const below = options.below;
  return {
    token: "hex",
    kind: "token",
    range: [0n, below === undefined ? U64_MAX : below - 1n],
    fromJson: (json) => {
      const value = typeof json === "string" ? parseHex64(json) : undefined;
      return value === undefined ? { fail: "is not a 64-bit hex string" } : { value };
    },
    toJson: (value) => hex(value),
    fromToken: hexToken,
    tokenDetail: "is not a hex number",
    toToken: (value) => hex(value),
    check: below === undefined
      ? (field, value) => u64Rule(field, value)
      : (field, value) =>
        value >= 0n && value < below
          ? undefined
          : rule(field, `is out of range: must be below ${hex(below)}`),
  };
}

/** Options of {@linkcode int}. */
export interface IntOptions {
  /** The smallest value (default 0). */
  min?: number;
  /** The largest value. */
  max: number;
  /** The text token: decimal (default) or hex. */
  token?: "dec" | "hex";
  /**
   * The JSON form: a number (default), or `u32` (read as a number or a hex string, written
   * as a hex string: MSR indexes and ECX read better in hex).
   */
  json?: "number" | "u32";
  /** Word the range in hex in errors (default: as the token is written). */
  hexBounds?: boolean;
}

/** An integer in a range (a JavaScript number). */
export function int(options: IntOptions): Codec<number> {
  const min = options.min ?? 0, max = options.max;
  const hexText = options.token === "hex";
  const u32 = options.json === "u32";
  const hexBounds = options.hexBounds ?? hexText;
  return {
    token: hexText ? "hex" : "dec",
    kind: "token",
    range: [min, max],
    fromJson: (json) => {
      if (typeof json === "number") return { value: json };
      if (!u32) return { fail: "is not a number" };
      const parsed = typeof json === "string" ? parseHex64(json) : undefined;
      // Up to 16 hex digits convert exactly enough for the range rule to reject >= 2^32.
      return parsed === undefined
        ? { fail: "is not a number or a hex string" }
        : { value: Number(parsed) };
    },
    toJson: (value) => u32 ? hex(value) : value,
    fromToken: (token) => {
      if (hexText) {
        const v = hexToken(token);
        // Up to 16 digits convert exactly enough for the range rule to reject >= 2^32.
        return v === undefined ? undefined : Number(v);
      }
      return DEC.test(token) ? Number(token) : undefined;
    },
    tokenDetail: hexText ? "is not a hex number" : "is not a decimal number",
    toToken: (value) => hexText ? hex(value) : String(value),
    check: (field, value) => intIn(field, value, min, max, hexBounds),
  };
}

/** A number from a short list (access sizes): a JSON number, a decimal token. */
export function numberOf<const T extends number>(values: readonly T[]): Codec<T> {
  return {
    token: values.join("|"),
    kind: "token",
    values,
    fromJson: (json) =>
      typeof json === "number" ? { value: json as T } : { fail: "is not a number" },
    toJson: (value) => value,
    fromToken: (token) => DEC.test(token) ? Number(token) as T : undefined,
    tokenDetail: "is not a decimal number",
    toToken: (value) => String(value),
    check: (field, value) => oneOf(field, value, values),
  };
}

/**
 * A name from a list: a JSON string; in text, by a letter each when `letters` are given
 * (`r`, `w`, `x` for read, write, fetch).
 */
export function enumOf<const T extends string>(
  values: readonly T[],
  letters?: Readonly<Record<T, string>>,
): Codec<T> {
  const byLetter = new Map<string, T>(values.map((v) => [letters?.[v] ?? v, v]));
  const shown = [...byLetter.keys()];
  return {
    token: shown.join("|"),
    kind: "token",
    values,
    fromJson: (json) =>
      typeof json === "string" ? { value: json as T } : { fail: "is not a string" },
    toJson: (value) => value,
    fromToken: (token) => byLetter.get(token),
    tokenDetail: `is not ${shown.slice(0, -1).join(", ")} or ${shown.at(-1)}`,
    toToken: (value) => letters?.[value] ?? value,
    check: (field, value) => oneOf(field, value, values),
  };
}

/** A boolean: JSON `true`/`false`; in text a word (present: true) or a `key=0|1` bit. */
export function bool(): Codec<boolean> {
  return {
    token: "0|1",
    kind: "bool",
    fromJson: (json) => typeof json === "boolean" ? { value: json } : { fail: "is not a boolean" },
    toJson: (value) => value,
    fromToken: (token) => token === "1" ? true : token === "0" ? false : undefined,
    tokenDetail: "is not 0 or 1",
    toToken: (value) => value ? "1" : "0",
  };
}

/**
 * A set of flags: a JSON array of names; in text each flag present is a word. Each flag
 * at most once; the canonical order is `words`' order.
 */
export function flags<const T extends string>(words: readonly T[]): Codec<T[]> {
  return {
    token: words.join(" "),
    kind: "flags",
    words,
    fromJson: (json) => {
      if (!Array.isArray(json)) return { fail: "is not an array" };
      for (const [i, item] of json.entries()) {
        if (typeof item !== "string") return { fail: "is not a string", at: `[${i}]` };
      }
      return { value: json as T[] };
    },
    toJson: (value) => [...value],
    fromToken: () => undefined,
    tokenDetail: "is not a flag",
    toToken: (value) => value.join(" "),
    check: (field, value) => {
      for (const [i, flag] of value.entries()) {
        const problem = oneOf(`${field}[${i}]`, flag, words);
        if (problem) return problem;
        if (value.indexOf(flag) !== i) return rule(`${field}[${i}]`, `repeats "${flag}"`);
      }
      return undefined;
    },
    normalize: (value) => words.filter((w) => value.includes(w)),
  };
}

/** A list of 64-bit values: a JSON array of hex strings; in text the bare hex tokens left. */
export function u64List(options: { max: number }): Codec<bigint[]> {
  const element = u64();
  return {
    token: "hex ...",
    kind: "list",
    element,
    fromJson: (json) => {
      if (!Array.isArray(json)) return { fail: "is not an array" };
      const out: bigint[] = [];
      for (const [i, item] of json.entries()) {
        const read = element.fromJson(item);
        if (!("value" in read)) return { fail: read.fail, at: `[${i}]` };
        out.push(read.value);
      }
      return { value: out };
    },
    toJson: (value) => value.map(hex),
    fromToken: () => undefined,
    tokenDetail: "is not a hex number",
    toToken: (value) => value.map(hex).join(" "),
    check: (field, value) => {
      if (value.length > options.max) {
        return rule(field, `has ${value.length} entries: at most ${options.max} allowed`);
      }
      for (const [i, item] of value.entries()) {
        const problem = u64Rule(`${field}[${i}]`, item);
        if (problem) return problem;
      }
      return undefined;
    },
  };
}

/**
 * A u32 with two named values (the filter action: 0 `allow`, 1 `deny`): in JSON a number
 * or a name, written as a number; in text a name or `<key>=<dec>`.
 */
export function namedU32(
  key: string,
  names: readonly [string, string],
  max: number,
): Codec<number> {
  const [zero, one] = names;
  const expected = `${zero}, ${one} or ${key}=<dec>`;
  return {
    token: `${zero}|${one}|${key}=<dec>`,
    kind: "token",
    range: [0, max],
    fromJson: (json) => {
      if (typeof json === "number") return { value: json };
      if (json === zero) return { value: 0 };
      if (json === one) return { value: 1 };
      const fail = `is not "${zero}", "${one}" or a number`;
      return typeof json === "string" ? { fail, range: true } : { fail };
    },
    toJson: (value) => value,
    fromToken: (token) => {
      if (token === zero) return 0;
      if (token === one) return 1;
      const match = new RegExp(`^${key}=([0-9]+)$`).exec(token);
      return match === null ? undefined : Number(match[1]);
    },
    tokenDetail: `is not ${expected}`,
    toToken: (value) => value === 0 ? zero : value === 1 ? one : `${key}=${value}`,
    check: (field, value) => intIn(field, value, 0, max),
  };
}

// ------------------------------------------------------------------------------ fields

/** One field of an op: its codec and how it may be left out. */
export interface FieldSpec<T> {
  /** How the value is typed, checked and written. */
  readonly codec: Codec<T>;
  /**
   * The value when the field is absent, in both forms; the text form leaves a default
   * out, JSON writes it unless {@linkcode FieldSpec.jsonOmitDefault}.
   */
  readonly default?: T;
  /** JSON requires the field although the text form has a default. */
  readonly jsonRequired?: boolean;
  /** JSON leaves the field out when it holds its default. */
  readonly jsonOmitDefault?: boolean;
  /** The field may be absent from the op (then it is not a key of the op object). */
  readonly optional?: boolean;
}

/** A default value as an op's own: a list default is copied (ops may be mutated). */
export function fresh<T>(value: T): T {
  return Array.isArray(value) ? [...value] as T : value;
}

/** A required field (or one with `default`). */
export function field<T>(
  codec: Codec<T>,
  options: Omit<FieldSpec<NoInfer<T>>, "codec" | "optional"> = {},
): FieldSpec<T> {
  return { codec, ...options };
}

/** A field that may be absent from the op. */
export function optional<T>(codec: Codec<T>): FieldSpec<T> & { readonly optional: true } {
  return { codec, optional: true };
}

// ------------------------------------------------------------------------- text syntax

/**
 * One item of an op's text syntax, in the order the text form writes them: positional
 * tokens first (`pos`, read only `when` the fields before it allow), then options in any
 * order on input: `key=value` (`key`), a boolean word (`word`: the field's name), a
 * set of flag words (`words`) and the bare tokens left over (`rest`).
 */
export type TextItem<F extends string, O> =
  | { readonly pos: F; readonly when?: (op: Partial<O>) => boolean }
  | { readonly key: F }
  | { readonly word: F }
  | { readonly words: F }
  | { readonly rest: F };

// --------------------------------------------------------------------------- simplifiers

/**
 * Proposes simpler variants of an op for the minimizer (each a valid op of the same
 * kind), most promising first. A simplifier never proposes the op itself.
 */
export type Simplifier<O> = (op: O) => O[];

type WithField<F extends string, T> = { [K in F]?: T };

/** `field` from true to false. */
export function toFalse<F extends string>(
  field: F,
): <O extends WithField<F, boolean>>(op: O) => O[] {
  return (op) => op[field] === true ? [{ ...op, [field]: false }] : [];
}

/** `field` to `value` (when it holds something else). */
export function toValue<F extends string, T>(
  field: F,
  value: T,
): <O extends WithField<F, T>>(op: O) => O[] {
  return (op) => op[field] !== undefined && op[field] !== value ? [{ ...op, [field]: value }] : [];
}

/** Each set bit of `bits` (in that order) of a bigint field cleared, one at a time. */
export function clearBits<F extends string>(
  field: F,
  bits: readonly bigint[],
): <O extends WithField<F, bigint>>(op: O) => O[] {
  return (op) => {
    const v = op[field];
    if (v === undefined) return [];
    return bits.filter((b) => ((v >> b) & 1n) !== 0n).map((b) => ({
      ...op,
      [field]: v & ~(1n << b),
    }));
  };
}

/** The bits of `mask` cleared in a bigint field, when any is set. */
export function clearMask<F extends string>(
  field: F,
  mask: bigint,
): <O extends WithField<F, bigint>>(op: O) => O[] {
  return (op) => {
    const v = op[field];
    return v !== undefined && (v & mask) !== 0n ? [{ ...op, [field]: v & ~mask }] : [];
  };
}

/** A list (or flag set) field emptied, when it holds anything. */
export function toEmpty<F extends string>(
  field: F,
): <O extends WithField<F, readonly unknown[]>>(op: O) => O[] {
  return (op) => (op[field]?.length ?? 0) > 0 ? [{ ...op, [field]: [] }] : [];
}

/** Each element of a list field dropped, one at a time. */
export function dropEach<F extends string>(
  field: F,
): <O extends WithField<F, readonly unknown[]>>(op: O) => O[] {
  return (op) =>
    (op[field] ?? []).map((_, i) => ({ ...op, [field]: op[field]!.filter((_, j) => j !== i) }));
}

/** A list field cut to its first element, when it has more than `over`. */
export function firstOnly<F extends string>(
  field: F,
  over: number,
): <O extends WithField<F, readonly unknown[]>>(op: O) => O[] {
  return (op) =>
    (op[field]?.length ?? 0) > over ? [{ ...op, [field]: op[field]!.slice(0, 1) }] : [];
}

/** A count field made 1, then halved, when above 1 (`halve: false`: only 1). */
export function lowerCount<F extends string>(
  field: F,
  options: { halve?: boolean } = {},
): <O extends WithField<F, number>>(op: O) => O[] {
  return (op) => {
    const v = op[field];
    if (v === undefined || v <= 1) return [];
    return options.halve === false
      ? [{ ...op, [field]: 1 }]
      : [{ ...op, [field]: 1 }, { ...op, [field]: Math.floor(v / 2) }];
  };
}

/** With more than one of `fields` present, each present one left out in turn. */
export function dropOneOf<F extends string>(
  fields: readonly F[],
): <O extends WithField<F, unknown>>(op: O) => O[] {
  return (op) => {
    const present = fields.filter((f) => op[f] !== undefined);
    if (present.length <= 1) return [];
    return present.map((f) => {
      const copy = { ...op };
      delete copy[f];
      return copy;
    });
  };
}
