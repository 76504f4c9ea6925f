/**
 * @module
 * The one-line text form of ops and outcomes, for humans: the console, the corpus
 * comments, the dashboard and the conformance cases all print and read it.
 *
 * ```
 * slot <id> gpa=<hex> pages=<dec> hva=<hex> [log] [ro]
 * write <gpa> <value> [size=<1|2|4|8>]
 * read <gpa> [size=<n>]
 * access <r|w|x> <gva> [<value>] [user] [size=<n>]      (value present iff w)
 * invlpg <gva>
 * cr3 <hex>
 * ctl [wp=0|1] [smep=0|1] [smap=0|1] [nx=0|1] [ac=0|1] [pce=0|1]   (at least one)
 * discard <hva> pages=<dec>
 * dirtylog <id>
 * age <gpa> pages=<dec>
 * wrmsr <msr hex> <value hex>
 * rdmsr <msr hex>
 * rdpmc <ecx hex> [user]
 * filter <allow|deny|action=<dec>> [flags=<hex>] [fixed=<hex>] [<event hex> ...]
 * events <event hex> umask=<hex> count=<dec> [user]
 * pmis
 * ```
 *
 * Each op's syntax is declared in the op table (`ops.ts`, `opSyntax` prints it); the
 * code here reads and writes any op by it. Hex numbers are `0x` and 1..16 hex digits
 * (any case on input). Output is canonical: lowercase hex, defaults omitted (size 8,
 * user off, filter flags and fixed 0), slot flags in the order log, ro and ctl fields in
 * the order wp smep smap nx ac pce. On input, the `key=value` and word options after the
 * positional tokens may come in any order. The value rules are the JSON form's (the
 * table's), so `parseOp(formatOp(op))` deep-equals `op` and the two forms accept the
 * same ops.
 *
 * Outcomes: `ok | gp | errno <NAME|0> | value <hex> | mmio <gpa hex> <r|w> |
 * pf code=<hex> cr2=<hex> | bitmap <pages> | young <pages> | count <dec> | crash <message>`,
 * where `<pages>` is `none` or `pages <list>` with a decimal page list (`pages 3,7-9`:
 * pages 3, 7, 8 and 9; `pages.ts`), readable for any slot size. A hex bitmap
 * (`bitmap 0x388`, bit i = page i) is still read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatOp, parseOp } from "./text.ts";
 * const op = parseOp("access w 0x7f000 0x5 user");
 * assert.equal(op.op === "access" && op.value, 5n);
 * assert.equal(formatOp(op), "access w 0x7f000 0x5 user");
 * ```
 */
import { hex, parseHex64 } from "./_hex.ts";
import { type Codec, type FieldSpec, fresh } from "./_fields.ts";
import { formatPageList, pageRunsFromHex, parsePageList } from "./pages.ts";
import { checkOutcome, type Problem } from "./_rules.ts";
import { checkOp, isOpKind, normalizeOp, opSpec } from "./ops.ts";
import type { Errno, Op, Outcome, PageRuns, Permitted } from "./types.ts";
// For the annotations at the end of this file.
import type { Config } from "./types.ts";
import {
  formatNumber,
  msrFieldDelta,
  msrFields,
  msrName,
  msrText,
  type PageSet,
  pagesText,
  pfecNames,
  pteBitsText,
  pteText,
} from "../x86/decode.ts";
import {
  INTEL_RDPMC_INDEX_MASK,
  INTEL_RDPMC_TYPE_FIXED,
  INTEL_RDPMC_TYPE_GP,
  RDPMC_FAST,
} from "../x86/pmu.ts";

/** The canonical one-line text of an op (its syntax in the op table, `ops.ts`). */
export function formatOp(op: Op): string {
  const spec = opSpec(op.op);
  const values = op as unknown as Record<string, unknown>;
  const parts: string[] = [op.op];
  for (const item of spec.text) {
    if ("pos" in item) {
      const value = values[item.pos];
      if (value !== undefined) parts.push(spec.fields[item.pos]!.codec.toToken(value));
    } else if ("key" in item) {
      const f = spec.fields[item.key]!;
      const value = values[item.key];
      if (value !== undefined && value !== f.default) {
        parts.push(`${item.key}=${f.codec.toToken(value)}`);
      }
    } else if ("word" in item) {
      if (values[item.word] === true) parts.push(item.word);
    } else if ("words" in item) {
      const set = values[item.words] as readonly string[];
      for (const w of spec.fields[item.words]!.codec.words!) if (set.includes(w)) parts.push(w);
    } else {
      const list = values[item.rest] as readonly bigint[];
      const element = spec.fields[item.rest]!.codec.element!;
      for (const v of list) parts.push(element.toToken(v));
    }
  }
  return parts.join(" ");
}

/**
 * Parses one op from its text form.
 *
 * @param line One op, e.g. `slot 1 gpa=0x800000 pages=16 hva=0x40000000 log`.
 * @throws {SyntaxError} A token is missing, unknown, repeated or malformed.
 * @throws {RangeError} A value is out of range or the access crosses a page.
 */
export function parseOp(line: string): Op {
  const r = new OpLine(line);
  const op = readOp(r);
  const problem = checkOp(op);
  if (problem) throw r.problemError(problem);
  return normalizeOp(op);
}

/** The text of an outcome: `value 0x23`, `pf code=0x7 cr2=0x7f000`, `errno EINVAL`. */
export function formatOutcome(outcome: Outcome): string {
  if ("errno" in outcome) return `errno ${outcome.errno}`;
  if ("ok" in outcome) return "ok";
  if ("gp" in outcome) return "gp";
  if ("value" in outcome) return `value ${hex(outcome.value)}`;
  if ("mmio" in outcome) return `mmio ${hex(outcome.mmio.gpa)} ${outcome.mmio.write ? "w" : "r"}`;
  if ("pf" in outcome) return `pf code=${hex(outcome.pf.code)} cr2=${hex(outcome.pf.cr2)}`;
  if ("bitmap" in outcome) return `bitmap ${formatPages(outcome.bitmap)}`;
  if ("young" in outcome) return `young ${formatPages(outcome.young)}`;
  if ("count" in outcome) return `count ${outcome.count}`;
  return `crash ${outcome.crash}`;
}

/**
 * Parses an outcome from its text form. A `crash` message is everything after
 * `crash `, kept verbatim.
 *
 * @throws {SyntaxError} Unknown kind, or a missing, extra or malformed token.
 * @throws {RangeError} A value out of range (an unknown errno name, a 33-bit code).
 */
export function parseOutcome(text: string): Outcome {
  const where = `Cannot parse outcome ${JSON.stringify(text)}`;
  const start = text.trimStart();
  if (start === "crash" || start.startsWith("crash ")) return { crash: start.slice(6) };
  const tokens = start.trim().split(/\s+/);
  const kind = tokens[0] as string;
  const fail = (detail: string): never => {
    throw new SyntaxError(`${where}: ${detail}`);
  };
  const arity = (n: number): string[] => {
    if (tokens.length < n + 1) fail(`missing ${n === 1 ? "a value" : "values"} after "${kind}"`);
    if (tokens.length > n + 1) fail(`${JSON.stringify(tokens[n + 1])} is unexpected`);
    return tokens.slice(1);
  };
  /** A hex token, or a `code=<hex>` style one when `prefix` is given. */
  const hexToken = (token: string, prefix = ""): bigint => {
    const value = token.startsWith(prefix) ? parseHex64(token.slice(prefix.length)) : undefined;
    if (value !== undefined) return value;
    const expected = prefix === "" ? "a hex number" : `${prefix}<hex>`;
    return fail(`${JSON.stringify(token)} is not ${expected}`);
  };
  /** `none`, `pages <list>` or a hex bitmap. */
  const pagesTokens = (): PageRuns => {
    if (tokens[1] === "pages") {
      const [, list] = arity(2) as [string, string];
      const runs = parsePageList(list);
      return "problem" in runs ? fail(`page list ${JSON.stringify(list)}: ${runs.problem}`) : runs;
    }
    const [token] = arity(1) as [string];
    if (token === "none") return [];
    return pageRunsFromHex(token) ??
      fail(`${JSON.stringify(token)} is not none, pages <list> or a hex bitmap`);
  };
  let outcome: Outcome;
  switch (kind) {
    case "":
      return fail("empty outcome");
    case "ok":
      arity(0);
      return { ok: true };
    case "gp":
      arity(0);
      return { gp: true };
    case "errno": {
      const [name] = arity(1) as [string];
      outcome = { errno: name === "0" ? 0 : name as Errno };
      break;
    }
    case "value":
      outcome = { value: hexToken(arity(1)[0] as string) };
      break;
    case "bitmap":
      outcome = { bitmap: pagesTokens() };
      break;
    case "young":
      outcome = { young: pagesTokens() };
      break;
    case "mmio": {
      const [gpa, rw] = arity(2) as [string, string];
      if (rw !== "r" && rw !== "w") fail(`${JSON.stringify(rw)} is not r or w`);
      outcome = { mmio: { gpa: hexToken(gpa), write: rw === "w" } };
      break;
    }
    case "pf": {
      const [code, cr2] = arity(2) as [string, string];
      // Up to 16 digits convert exactly enough for checkOutcome to reject >= 2^32.
      outcome = { pf: { code: Number(hexToken(code, "code=")), cr2: hexToken(cr2, "cr2=") } };
      break;
    }
    case "count": {
      const [count] = arity(1) as [string];
      if (!/^[0-9]+$/.test(count)) fail(`${JSON.stringify(count)} is not a decimal number`);
      outcome = { count: Number(count) };
      break;
    }
    default:
      return fail(`unknown outcome ${JSON.stringify(kind)}`);
  }
  const problem = checkOutcome(outcome);
  if (problem) {
    throw new problem.error(`${where}: ${problem.field ?? kind} ${problem.detail}`);
  }
  return outcome;
}

/**
 * A permitted outcome for humans:
 * `value 0x23 (don't care 0x20): stale until invlpg at op 7`,
 * `bitmap pages 3 (don't care pages 5-6): pages written since the last GET`.
 */
export function formatPermitted(permitted: Permitted): string {
  const { dontCare, dontCarePages, why } = permitted;
  const pages = "bitmap" in permitted.outcome || "young" in permitted.outcome;
  const care = pages
    ? (dontCarePages === undefined || dontCarePages.length === 0
      ? ""
      : ` (don't care ${formatPages(dontCarePages)})`)
    : (dontCare === undefined || dontCare === 0n ? "" : ` (don't care ${hex(dontCare)})`);
  return `${formatOutcome(permitted.outcome)}${care}${why === "" ? "" : `: ${why}`}`;
}

/** A page set for humans: `none`, or `pages 3,7-9`. */
export function formatPages(runs: PageRuns): string {
  return runs.length === 0 ? "none" : `pages ${formatPageList(runs)}`;
}

/**
 * Parses the expectation of a conformance step: outcome alternatives separated by
 * ` | `, or `*` for "any outcome".
 *
 * @throws {SyntaxError} An alternative is not an outcome.
 * @throws {RangeError} An alternative has a value out of range.
 */
export function parseExpect(text: string): Outcome[] | "*" {
  if (text.trim() === "*") return "*";
  return text.split(" | ").map(parseOutcome);
}

/** Joins the non-empty words with single spaces. */
function words(...parts: string[]): string {
  return parts.filter((p) => p !== "").join(" ");
}

/**
 * Reads one op by its syntax in the op table: the positional tokens in order (each
 * only `when` the fields before it allow), then the options in any order; the op's
 * fields in field order, defaults filled in.
 */
function readOp(r: OpLine): Op {
  const kind = r.kind;
  if (!isOpKind(kind)) return r.fail(`unknown op ${JSON.stringify(kind)}`);
  const spec = opSpec(kind);
  const values: Record<string, unknown> = {};
  const keys: string[] = [], words: string[] = [];
  let rest: string | undefined;
  for (const item of spec.text) {
    if ("pos" in item) {
      if (item.when !== undefined && !item.when(values)) continue;
      values[item.pos] = r.token(item.pos, spec.fields[item.pos]!.codec);
    } else if ("key" in item) keys.push(item.key);
    else if ("word" in item) words.push(item.word);
    else if ("words" in item) words.push(...spec.fields[item.words]!.codec.words!);
    else rest = item.rest;
  }
  if (keys.length === 0 && words.length === 0 && rest === undefined) r.done();
  else {
    const element = rest === undefined ? undefined : spec.fields[rest]!.codec.element;
    const loose = r.options(keys, words, rest, element);
    for (const item of spec.text) {
      if ("key" in item) {
        const f = spec.fields[item.key]!;
        const value = r.key(item.key, f);
        if (value !== undefined) values[item.key] = value;
      } else if ("word" in item) values[item.word] = r.word(item.word);
      else if ("words" in item) {
        values[item.words] = spec.fields[item.words]!.codec.words!.filter((w) => r.word(w));
      } else if ("rest" in item) values[item.rest] = loose;
    }
  }
  const op: Record<string, unknown> = { op: kind };
  for (const [name, f] of Object.entries(spec.fields)) {
    const value = name in values ? values[name] : f.optional ? undefined : fresh(f.default);
    if (value !== undefined) op[name] = value;
  }
  return op as unknown as Op;
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

  /** The next positional token as `field`'s value. */
  token<T>(field: string, codec: Codec<T>): T {
    const token = this.next(field);
    const value = codec.fromToken(token);
    if (value === undefined) this.fail(`${JSON.stringify(token)} ${codec.tokenDetail}`);
    return value;
  }

  /**
   * Reads every remaining token as an option: `key=value` for `keys`, or one of
   * `words`. With `loose`, other tokens are hex numbers collected under that field
   * name (`events[0]`, ...) and returned.
   */
  options(
    keys: readonly string[],
    words: readonly string[],
    loose?: string,
    element?: Codec<bigint>,
  ): bigint[] {
    const collected: bigint[] = [];
    for (const token of this.#tokens.slice(this.#next)) {
      const eq = token.indexOf("=");
      const key = eq < 0 ? token : token.slice(0, eq);
      const known = eq < 0 ? words.includes(key) : keys.includes(key);
      if (!known && loose !== undefined && element !== undefined && eq < 0) {
        const value = element.fromToken(token);
        if (value === undefined) this.fail(`${JSON.stringify(token)} ${element.tokenDetail}`);
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

  /**
   * The `key=value` option `key` as field `f`'s value: its default (or, for an optional
   * field, `undefined`) when absent; a field with neither must be there.
   */
  key<T>(key: string, f: FieldSpec<T>): T | undefined {
    const value = this.#options.get(key);
    if (value === undefined) {
      if (f.optional) return undefined;
      if (f.default === undefined) this.fail(`missing "${key}=..."`);
      return fresh(f.default);
    }
    const parsed = f.codec.fromToken(value);
    if (parsed === undefined) this.#badValue(key, value, f.codec.tokenDetail);
    return parsed;
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

  #badValue(key: string, value: string, detail: string): never {
    return this.fail(`${JSON.stringify(`${key}=${value}`)}: ${JSON.stringify(value)} ${detail}`);
  }
}

// ---------------------------------------------------------------------------------------
// Annotations: ops and outcomes decoded for humans (the console, replay, diff, the
// finding page). Not the text form: nothing parses them back, and `formatOp` /
// `formatOutcome` above stay the stable, parseable text. The bit names come from
// `src/x86/decode.ts`.
// ---------------------------------------------------------------------------------------

/**
 * An op for humans: MSRs by name and written MSR values by field, RDPMC's counter,
 * 8-byte stores decoded as page-table entries, counts with thousands separators; other
 * ops as `formatOp` prints them. `config` gives MAXPHYADDR (reserved entry bits) and the
 * vendor (RDPMC's ECX encoding).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { annotateOp } from "./text.ts";
 * assert.equal(
 *   annotateOp({ op: "wrmsr", msr: 0x186, value: 0x4300c0n }),
 *   "wrmsr PERFEVTSEL0 (0x186) 0x4300c0 [event=0xc0 umask=0x0 USR OS EN]",
 * );
 * ```
 */
export function annotateOp(op: Op, config?: Config): string {
  switch (op.op) {
    case "wrmsr":
      return `wrmsr ${msrText(op.msr)} ${hex(op.value)}${msrBrackets(op.msr, op.value)}`;
    case "rdmsr":
      return `rdmsr ${msrText(op.msr)}`;
    case "rdpmc": {
      const counter = rdpmcCounter(op.ecx, config);
      return words(
        `rdpmc ${hex(op.ecx)}`,
        counter === "" ? "" : `(${counter})`,
        op.user ? "user" : "",
      );
    }
    case "write":
      return `${formatOp(op)}${entryBrackets(op.size, op.value, config)}`;
    case "access":
      return op.value === undefined
        ? formatOp(op)
        : `${formatOp(op)}${entryBrackets(op.size, op.value, config)}`;
    case "events":
      return words(
        `events ${hex(op.event)} umask=${hex(op.umask)} count=${formatNumber(op.count)}`,
        op.user ? "user" : "",
      );
    default:
      return formatOp(op);
  }
}

/**
 * An outcome for humans, decoded where the op says what the value is:
 * `#PF 0x5 (P|U) cr2=0x400000`, `#GP`, `value 0x3 [PMC0 PMC1]` (an rdmsr of a known
 * MSR), `value 0x8000000000400067 [P W U A D NX frame=0x400000]` (an 8-byte load),
 * `dirty pages 3,7-9`, `young pages none`, `mmio write 0xfee00000`, `count 1,234`.
 * Long page lists are one line: wrap them with `wrapText` (`src/x86/decode.ts`).
 */
export function annotateOutcome(outcome: Outcome, op?: Op, config?: Config): string {
  if ("pf" in outcome) {
    const { code, cr2 } = outcome.pf;
    return `#PF ${hex(code)} (${pfecNames(code)}) cr2=${hex(cr2)}`;
  }
  if ("gp" in outcome) return "#GP";
  if ("value" in outcome) {
    const v = outcome.value;
    if (op?.op === "rdmsr") return `value ${hex(v)}${msrBrackets(op.msr, v)}`;
    const load = op?.op === "read" || (op?.op === "access" && op.kind !== "write");
    return `value ${hex(v)}${load ? entryBrackets(op.size, v, config) : ""}`;
  }
  if ("mmio" in outcome) {
    return `mmio ${outcome.mmio.write ? "write" : "read"} ${hex(outcome.mmio.gpa)}`;
  }
  if ("bitmap" in outcome) return `dirty pages ${pagesText(outcome.bitmap)}`;
  if ("young" in outcome) return `young pages ${pagesText(outcome.young)}`;
  if ("count" in outcome) return `count ${formatNumber(outcome.count)}`;
  if ("crash" in outcome) return `crash: ${outcome.crash}`;
  return formatOutcome(outcome);
}

/**
 * A permitted outcome for humans: `annotateOutcome`, then the don't-care part by name
 * (`(don't care A|D)` for an entry, `(don't care pages 5-6)` for a bitmap) and why.
 */
export function annotatePermitted(permitted: Permitted, op?: Op, config?: Config): string {
  const { outcome, why } = permitted;
  let care = "";
  if ("bitmap" in outcome || "young" in outcome) {
    // Page sets may carry their don't-care pages apart from `dontCare` (page runs).
    const pages = (permitted as { dontCarePages?: PageSet }).dontCarePages ?? permitted.dontCare;
    const text = pages === undefined ? "none" : pagesText(pages);
    if (text !== "none") care = ` (don't care pages ${text})`;
  } else if (permitted.dontCare !== undefined && permitted.dontCare !== 0n) {
    const mask = permitted.dontCare;
    const named = op?.op === "rdmsr" && msrName(op.msr) !== null
      ? msrFieldDelta(op.msr, 0n, mask).join(" ")
      : op !== undefined && loadsOrStoresEntry(op)
      ? pteBitsText(mask)
      : hex(mask);
    care = ` (don't care ${named})`;
  }
  return `${annotateOutcome(outcome, op, config)}${care}${why === "" ? "" : `: ${why}`}`;
}

/** ` [fields]` for an MSR whose value has named fields, else nothing. */
function msrBrackets(msr: number, value: bigint): string {
  const fields = msrFields(msr, value);
  return fields === hex(value) ? "" : ` [${fields}]`;
}

/** ` [entry]` for a non-zero 8-byte value, which may be a page-table entry. */
function entryBrackets(size: number, value: bigint, config: Config | undefined): string {
  if (size !== 8 || value === 0n) return "";
  const opts = config === undefined ? {} : { maxPhyAddr: config.maxPhyAddr };
  return ` [${pteText(value, opts)}]`;
}

function loadsOrStoresEntry(op: Op): boolean {
  return (op.op === "read" || op.op === "write" || op.op === "access") && op.size === 8;
}

/**
 * The counter an RDPMC ECX names (docs/kvm-facts.md C.6): Intel ECX[31:16] is the type (0 GP,
 * 0x4000 fixed), ECX[15:0] the index, bit 31 the "fast" read; AMD ECX is the GP index.
 * Empty without a config or for an AMD index beyond any counter.
 */
function rdpmcCounter(ecx: number, config: Config | undefined): string {
  if (config === undefined) return "";
  if (config.vendor === "amd") return ecx < 32 ? `PMC${ecx}` : "";
  const fast = (ecx & RDPMC_FAST) !== 0 ? "fast " : "";
  const type = (ecx & ~RDPMC_FAST & ~INTEL_RDPMC_INDEX_MASK) >>> 0;
  const index = ecx & INTEL_RDPMC_INDEX_MASK;
  if (type === INTEL_RDPMC_TYPE_GP) return `${fast}PMC${index}`;
  if (type === INTEL_RDPMC_TYPE_FIXED) return `${fast}FIXED_CTR${index}`;
  return `${fast}type ${hex(type >>> 16)} index ${index}`;
}
