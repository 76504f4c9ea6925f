/**
 * The op table's generic codecs against the hand-written ones they replaced
 * (`_legacy_codec.ts`, issue 11): for random valid ops and traces they write the same
 * JSON and text, and for random ops, valid or broken by a few mutations, in either form,
 * they parse to the same op (key order included) or throw the same error class with the
 * same message.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { arbOp, arbTrace } from "../src/trace/_arbitraries.ts";
import {
  LEGACY_OP_KINDS,
  legacyFormatOp,
  type LegacyOp,
  legacyOpToJson,
  legacyParseOp,
  legacyParseOpJson,
} from "./testdata/legacy_codec.ts";
import { opToJson } from "../src/trace/json.ts";
import { parseOpJson } from "../src/trace/parse.ts";
import { formatOp, parseOp } from "../src/trace/text.ts";
import { type Op, OP_KINDS, type OpKind } from "../src/trace/types.ts";

const LEGACY_KINDS: readonly OpKind[] = LEGACY_OP_KINDS;

/** A parse result as one comparable string: the op with its key order, or the error. */
function outcome(parse: () => Op): string {
  try {
    return `ok ${
      JSON.stringify(parse(), (_k, v) => typeof v === "bigint" ? `${v.toString(16)}n` : v)
    }`;
  } catch (e) {
    if (!(e instanceof Error)) return `non-error ${String(e)}`;
    return `${e.constructor.name}: ${e.message}`;
  }
}

/** JSON values that meet the parsers' type and range checks. */
const JSON_VALUES: readonly unknown[] = [
  0,
  1,
  -1,
  1.5,
  3,
  8,
  64,
  4096,
  2 ** 20,
  2 ** 20 + 1,
  2 ** 32,
  2 ** 40,
  2 ** 40 + 1,
  2 ** 53,
  "0x0",
  "0x1",
  "0xff8",
  "0xfff",
  "0x1000",
  "0x10000000000000",
  "0xffffffffffffffff",
  "0x10000000000000000",
  "0x100000000",
  "zz",
  "",
  "allow",
  "deny",
  "read",
  "write",
  "fetch",
  "log",
  "ro",
  true,
  false,
  null,
  [],
  ["log"],
  ["ro", "log"],
  ["log", "log"],
  ["bogus"],
  [1],
  ["0x1", "0x2"],
  ["zz"],
  new Array(1001).fill("0x1"),
  {},
  { pages: "1" },
];

/** Field names of every kind, and some of none. */
const FIELD_NAMES = [
  ...new Set([
    "op",
    "id",
    "gpa",
    "pages",
    "hva",
    "flags",
    "size",
    "value",
    "gva",
    "kind",
    "user",
    "wp",
    "smep",
    "smap",
    "nx",
    "ac",
    "pce",
    "msr",
    "ecx",
    "action",
    "fixed",
    "events",
    "event",
    "umask",
    "count",
    "first",
    "bogus",
  ]),
];

type JsonMutation =
  | { del: string }
  | { set: string; value: unknown }
  | { own: number; value: unknown }
  | { kind: OpKind | "nope" };

function arbJsonMutation(): fc.Arbitrary<JsonMutation> {
  const value = fc.constantFrom(...JSON_VALUES);
  return fc.oneof(
    fc.constantFrom(...FIELD_NAMES).map((del) => ({ del })),
    fc.record({ set: fc.constantFrom(...FIELD_NAMES), value }),
    // Most often a field the op has, so that two broken fields of one op meet.
    { weight: 4, arbitrary: fc.record({ own: fc.nat(), value }) },
    fc.constantFrom<OpKind | "nope">(...OP_KINDS, "nope").map((kind) => ({ kind })),
  );
}

function mutateJson(json: Record<string, unknown>, mutations: JsonMutation[]): unknown {
  const out: Record<string, unknown> = { ...json };
  for (const m of mutations) {
    if ("del" in m) delete out[m.del];
    else if ("set" in m) out[m.set] = m.value;
    else if ("own" in m) {
      const keys = Object.keys(out).filter((k) => k !== "op");
      if (keys.length > 0) out[keys[m.own % keys.length]!] = m.value;
    } else out.op = m.kind;
  }
  return out;
}

/** Tokens that meet the text parser's token, option and range checks. */
const TOKENS: readonly string[] = [
  "user",
  "log",
  "ro",
  "size=2",
  "size=3",
  "size=x",
  "size=",
  "pages=",
  "pages=5",
  "pages=0",
  "pages=1048577",
  "gpa=0x1000",
  "gpa=zz",
  "hva=0x1000",
  "0x1",
  "0xfff",
  "0x10000000000000",
  "0xffffffffffffffff",
  "0x100000000",
  "zz",
  "7",
  "4294967296",
  "wp=1",
  "wp=2",
  "nx=0",
  "flags=0x1",
  "flags=0x100000000",
  "fixed=0x1",
  "action=5",
  "action=4294967296",
  "action=x",
  "allow",
  "deny",
  "r",
  "w",
  "x",
  "umask=0x100",
  "umask=0x1",
  "count=1",
  "count=4294967296",
  "first=64",
  "=",
  "user=1",
];

type TextMutation =
  | { del: number }
  | { dup: number }
  | { insert: number; token: string }
  | { replace: number; token: string }
  | { kind: OpKind | "nope" };

function arbTextMutation(): fc.Arbitrary<TextMutation> {
  const at = fc.nat(8);
  const token = fc.constantFrom(...TOKENS);
  return fc.oneof(
    at.map((del) => ({ del })),
    at.map((dup) => ({ dup })),
    fc.record({ insert: at, token }),
    fc.record({ replace: at, token }),
    fc.constantFrom<OpKind | "nope">(...OP_KINDS, "nope").map((kind) => ({ kind })),
  );
}

function mutateText(line: string, mutations: TextMutation[]): string {
  const t = line.split(" ");
  for (const m of mutations) {
    if ("kind" in m) t[0] = m.kind;
    else if ("del" in m) t.splice(1 + (m.del % Math.max(1, t.length - 1)), 1);
    else if ("dup" in m) {
      const i = m.dup % t.length;
      t.splice(i, 0, t[i]!);
    } else if ("insert" in m) t.splice(1 + (m.insert % t.length), 0, m.token);
    else t[m.replace % t.length] = m.token;
  }
  return t.join(" ");
}

const legacyOp = () => arbOp({ kinds: LEGACY_KINDS }) as fc.Arbitrary<LegacyOp>;

Deno.test("op table: every op is written as the old codec wrote it, in JSON and in text", () => {
  fc.assert(
    fc.property(legacyOp(), (op) => {
      assert.equal(JSON.stringify(opToJson(op)), JSON.stringify(legacyOpToJson(op)));
      assert.equal(formatOp(op), legacyFormatOp(op));
    }),
    { numRuns: 3000 },
  );
});

Deno.test("op table: random traces write the same op JSON and text as before", () => {
  fc.assert(
    fc.property(arbTrace({ kinds: LEGACY_KINDS, maxOps: 30 }), (t) => {
      const trace = t as typeof t & { ops: LegacyOp[] };
      assert.equal(
        JSON.stringify(trace.ops.map(opToJson)),
        JSON.stringify(trace.ops.map(legacyOpToJson)),
      );
      assert.equal(trace.ops.map(formatOp).join("\n"), trace.ops.map(legacyFormatOp).join("\n"));
    }),
    { numRuns: 200 },
  );
});

Deno.test("op table: valid ops parse to the same op, key order included, in both forms", () => {
  fc.assert(
    fc.property(legacyOp(), fc.nat(50), (op, index) => {
      const json = legacyOpToJson(op);
      assert.equal(
        outcome(() => parseOpJson(json, index)),
        outcome(() => legacyParseOpJson(json, index)),
      );
      const line = legacyFormatOp(op);
      assert.equal(outcome(() => parseOp(line)), outcome(() => legacyParseOp(line)));
    }),
    { numRuns: 3000 },
  );
});

Deno.test("op table: broken JSON ops give the same error, class and message, as before", () => {
  let errors = 0;
  fc.assert(
    fc.property(
      legacyOp(),
      fc.array(arbJsonMutation(), { minLength: 1, maxLength: 3 }),
      fc.nat(50),
      (op, mutations, index) => {
        const json = mutateJson(legacyOpToJson(op) as Record<string, unknown>, mutations);
        // The legacy reader does not know kinds added since: skip those.
        const kind = (json as { op?: unknown }).op;
        if (typeof kind === "string" && !LEGACY_KINDS.includes(kind as OpKind)) {
          if ((OP_KINDS as readonly string[]).includes(kind)) return;
        }
        const now = outcome(() => parseOpJson(json, index));
        assert.equal(now, outcome(() => legacyParseOpJson(json, index)), JSON.stringify(json));
        if (!now.startsWith("ok ")) errors++;
      },
    ),
    { numRuns: 20000 },
  );
  // The mutations mostly break the op: the errors were compared, not skipped.
  assert.ok(errors > 10000, `only ${errors} of 20000 mutated ops were refused`);
});

Deno.test("op table: broken text ops give the same error, class and message, as before", () => {
  let errors = 0;
  fc.assert(
    fc.property(
      legacyOp(),
      fc.array(arbTextMutation(), { minLength: 1, maxLength: 3 }),
      (op, mutations) => {
        const line = mutateText(legacyFormatOp(op), mutations);
        const kind = line.split(" ")[0]!;
        if (!LEGACY_KINDS.includes(kind as OpKind) && (OP_KINDS as string[]).includes(kind)) {
          return;
        }
        const now = outcome(() => parseOp(line));
        assert.equal(now, outcome(() => legacyParseOp(line)), line);
        if (!now.startsWith("ok ")) errors++;
      },
    ),
    { numRuns: 20000 },
  );
  assert.ok(errors > 7000, `only ${errors} of 20000 mutated lines were refused`);
});
