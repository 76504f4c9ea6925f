import assert from "node:assert/strict";
import fc from "fast-check";
import { arbOp, arbOutcome } from "./_arbitraries.ts";
import { opToJson } from "./json.ts";
import { parseOpJson } from "./parse.ts";
import {
  formatOp,
  formatOutcome,
  formatPermitted,
  parseExpect,
  parseOp,
  parseOutcome,
} from "./text.ts";
import type { Op, Outcome } from "./types.ts";

type ErrorClass = typeof SyntaxError | typeof TypeError | typeof RangeError;

function assertThrowsExactly(fn: () => unknown, cls: ErrorClass, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof Error, `not an Error: ${String(error)}`);
    assert.equal(error.constructor, cls, `${error.constructor.name}: ${error.message}`);
    assert.equal(error.message, message);
    return true;
  });
}

Deno.test("parseOp: parseOp(formatOp(op)) deep-equals op", () => {
  fc.assert(
    fc.property(arbOp(), (op) => {
      assert.deepEqual(parseOp(formatOp(op)), op);
    }),
    { numRuns: 3000 },
  );
});

Deno.test("parseOp: the text form and the JSON form accept the same ops", () => {
  fc.assert(
    fc.property(arbOp(), (op) => {
      assert.deepEqual(parseOp(formatOp(op)), parseOpJson(opToJson(op), 0));
    }),
    { numRuns: 1000 },
  );
});

Deno.test("formatOp: output is canonical (lowercase, single spaces, a fixed point)", () => {
  fc.assert(
    fc.property(arbOp(), (op) => {
      const text = formatOp(op);
      assert.doesNotMatch(text, /[A-Z]|\s\s|^\s|\s$/);
      assert.equal(formatOp(parseOp(text)), text);
    }),
    { numRuns: 1000 },
  );
});

/** Canonical lines and the ops they mean. */
const CANONICAL: [string, Op][] = [
  [
    "slot 1 gpa=0x800000 pages=16 hva=0x40000000 log",
    { op: "slot", id: 1, gpa: 0x800000n, pages: 16, hva: 0x40000000n, flags: ["log"] },
  ],
  [
    "slot 65536 gpa=0x0 pages=0 hva=0x0 log ro",
    { op: "slot", id: 0x10000, gpa: 0n, pages: 0, hva: 0n, flags: ["log", "ro"] },
  ],
  ["write 0x1000 0x2003", { op: "write", gpa: 0x1000n, size: 8, value: 0x2003n }],
  ["write 0x1ffe 0xffff size=2", { op: "write", gpa: 0x1ffen, size: 2, value: 0xffffn }],
  ["read 0x1000", { op: "read", gpa: 0x1000n, size: 8 }],
  ["read 0x1003 size=1", { op: "read", gpa: 0x1003n, size: 1 }],
  ["access r 0x7f000 user", { op: "access", gva: 0x7f000n, kind: "read", user: true, size: 8 }],
  [
    "access w 0x7f000 0x5 user size=4",
    { op: "access", gva: 0x7f000n, kind: "write", user: true, size: 4, value: 5n },
  ],
  ["access x 0x400000", { op: "access", gva: 0x400000n, kind: "fetch", user: false, size: 8 }],
  ["invlpg 0xffff800000000000", { op: "invlpg", gva: 0xffff800000000000n }],
  ["cr3 0x1000", { op: "cr3", gpa: 0x1000n }],
  ["ctl wp=0 nx=1 pce=1", { op: "ctl", wp: false, nx: true, pce: true }],
  ["discard 0x100000000 pages=16", { op: "discard", hva: 0x100000000n, pages: 16 }],
  ["dirtylog 3", { op: "dirtylog", id: 3 }],
  ["dirtyclear 3 first=64 pages=36", { op: "dirtyclear", id: 3, first: 64, pages: 36 }],
  ["age 0x0 pages=1024", { op: "age", gpa: 0n, pages: 1024 }],
  ["wrmsr 0x186 0x5300c0", { op: "wrmsr", msr: 0x186, value: 0x5300c0n }],
  ["rdmsr 0xc0010004", { op: "rdmsr", msr: 0xc0010004 }],
  ["rdpmc 0x40000000 user", { op: "rdpmc", ecx: 0x40000000, user: true }],
  ["rdpmc 0x0", { op: "rdpmc", ecx: 0, user: false }],
  ["filter allow", { op: "filter", action: 0, flags: 0, fixed: 0, events: [] }],
  [
    "filter deny fixed=0x1 0xc0 0x1003c",
    { op: "filter", action: 1, flags: 0, fixed: 1, events: [0xc0n, 0x1003cn] },
  ],
  [
    "filter action=2 flags=0x1 0xc0",
    { op: "filter", action: 2, flags: 1, fixed: 0, events: [0xc0n] },
  ],
  [
    "events 0xc0 umask=0x0 count=5 user",
    { op: "events", event: 0xc0, umask: 0, count: 5, user: true },
  ],
  [
    "events 0x3c umask=0x1 count=0",
    { op: "events", event: 0x3c, umask: 1, count: 0, user: false },
  ],
  ["pmis", { op: "pmis" }],
];

for (const [line, op] of CANONICAL) {
  Deno.test(`text: "${line}" parses and formats back`, () => {
    assert.deepEqual(parseOp(line), op);
    assert.equal(formatOp(op), line);
  });
}

/** Accepted non-canonical lines and their canonical form. */
const NORMALIZED: [string, string][] = [
  ["  write   0X1000 0xABC size=8  ", "write 0x1000 0xabc"],
  ["slot 1 hva=0x0 ro log pages=1 gpa=0x0", "slot 1 gpa=0x0 pages=1 hva=0x0 log ro"],
  ["access r 0x0 size=8", "access r 0x0"],
  ["access w 0x0 0x1 size=2 user", "access w 0x0 0x1 user size=2"],
  ["ctl pce=0 wp=1", "ctl wp=1 pce=0"],
  ["filter action=0", "filter allow"],
  ["dirtyclear 1 pages=64 first=0", "dirtyclear 1 first=0 pages=64"],
  ["filter action=1 flags=0x0 0xc0 fixed=0x3", "filter deny fixed=0x3 0xc0"],
  ["events 0xC0 user count=1 umask=0x00", "events 0xc0 umask=0x0 count=1 user"],
  ["dirtylog 007", "dirtylog 7"],
];

for (const [input, canonical] of NORMALIZED) {
  Deno.test(`text: "${input.trim()}" normalizes to "${canonical}"`, () => {
    assert.equal(formatOp(parseOp(input)), canonical);
  });
}

/** [line, error class, exact message detail after `Cannot parse op "<line>": `]. */
const MALFORMED: [string, ErrorClass, string][] = [
  ["wrmsr 0xzz 1", SyntaxError, '"0xzz" is not a hex number'],
  ["wrmsr 0x10 1", SyntaxError, '"1" is not a hex number'],
  ["", SyntaxError, "empty line"],
  ["jump 0x1000", SyntaxError, 'unknown op "jump"'],
  ["write 0x1000", SyntaxError, "missing value"],
  ["read", SyntaxError, "missing gpa"],
  ["read 0x1000 size=3", RangeError, '"size=3" is out of range: must be 1, 2, 4 or 8'],
  ["read 0x1000 size=eight", SyntaxError, '"size=eight": "eight" is not a decimal number'],
  [
    "read 0xffc",
    RangeError,
    '"0xffc" crosses a page boundary: offset 0xffc + size 8 > 4096',
  ],
  [
    "write 0x10000000000000 0x0",
    RangeError,
    '"0x10000000000000" is out of range: must be below 0x10000000000000',
  ],
  ["access w 0x1000", SyntaxError, "missing value"],
  ["access r 0x1000 0x5", SyntaxError, '"0x5" is unexpected'],
  ["access q 0x1000", SyntaxError, '"q" is not r, w or x'],
  ["access r 0x1000 kernel", SyntaxError, '"kernel" is unexpected'],
  ["ctl", SyntaxError, "ctl needs at least one of wp, smep, smap, nx, ac, pce"],
  ["ctl wp=2", SyntaxError, '"wp=2": "2" is not 0 or 1'],
  ["ctl wp=1 wp=0", SyntaxError, '"wp=0" repeats wp'],
  ["slot 1 gpa=0x0 pages=1", SyntaxError, 'missing "hva=..."'],
  ["slot 1 gpa=0x0 pages=1 hva=0x0 log log", SyntaxError, '"log" repeats log'],
  ["slot 1 gpa=0x0 pages=1 hva=0x0 dirty", SyntaxError, '"dirty" is unexpected'],
  ["slot -1 gpa=0x0 pages=1 hva=0x0", SyntaxError, '"-1" is not a decimal number'],
  [
    "slot 4294967296 gpa=0x0 pages=1 hva=0x0",
    RangeError,
    '"4294967296" is out of range: must be an integer from 0 to 4294967295',
  ],
  [
    "discard 0x0 pages=0",
    RangeError,
    '"pages=0" is out of range: must be an integer from 1 to 1048576',
  ],
  ["age 0x0", SyntaxError, 'missing "pages=..."'],
  [
    "rdmsr 0x1ffffffff",
    RangeError,
    '"0x1ffffffff" is out of range: must be an integer from 0x0 to 0xffffffff',
  ],
  ["filter maybe", SyntaxError, '"maybe" is not allow, deny or action=<dec>'],
  ["filter allow 0xzz", SyntaxError, '"0xzz" is not a hex number'],
  [
    "filter allow flags=0x100000000",
    RangeError,
    '"flags=0x100000000" is out of range: must be an integer from 0x0 to 0xffffffff',
  ],
  [
    "events 0x1000 umask=0x0 count=1",
    RangeError,
    '"0x1000" is out of range: must be an integer from 0x0 to 0xfff',
  ],
  ["events 0xc0 umask=0x0", SyntaxError, 'missing "count=..."'],
  ["pmis now", SyntaxError, '"now" is unexpected'],
  ["dirtyclear 1 pages=64", SyntaxError, 'missing "first=..."'],
  ["dirtyclear 1 first=0x40 pages=64", SyntaxError, '"first=0x40": "0x40" is not a decimal number'],
  [
    "dirtyclear 1 first=0 pages=4294967296",
    RangeError,
    '"pages=4294967296" is out of range: must be an integer from 0 to 4294967295',
  ],
  ["invlpg 0x1 0x2", SyntaxError, '"0x2" is unexpected'],
];

for (const [line, cls, detail] of MALFORMED) {
  Deno.test(`parseOp: rejects "${line}" with ${cls.name}`, () => {
    assertThrowsExactly(() => parseOp(line), cls, `Cannot parse op "${line}": ${detail}`);
  });
}

Deno.test("parseOp: a filter event beyond the 1000th is rejected naming the count", () => {
  const line = `filter deny ${Array(1001).fill("0xc0").join(" ")}`;
  assert.throws(() => parseOp(line), (error: unknown) => {
    assert.equal((error as Error).constructor, RangeError);
    assert.match((error as Error).message, /: events has 1001 entries: at most 1000 allowed$/);
    return true;
  });
});

Deno.test("parseOutcome: parseOutcome(formatOutcome(o)) deep-equals o", () => {
  fc.assert(
    fc.property(arbOutcome(), (outcome) => {
      assert.deepEqual(parseOutcome(formatOutcome(outcome)), outcome);
    }),
    { numRuns: 2000 },
  );
});

const OUTCOME_TEXT: [string, Outcome][] = [
  ["ok", { ok: true }],
  ["gp", { gp: true }],
  ["errno EINVAL", { errno: "EINVAL" }],
  ["errno 0", { errno: 0 }],
  ["value 0x23", { value: 0x23n }],
  ["mmio 0xfee00000 r", { mmio: { gpa: 0xfee00000n, write: false } }],
  ["mmio 0x1000 w", { mmio: { gpa: 0x1000n, write: true } }],
  ["pf code=0x7 cr2=0x7f000", { pf: { code: 7, cr2: 0x7f000n } }],
  ["bitmap pages 0,2", { bitmap: [[0, 0], [2, 2]] }],
  ["bitmap pages 3,7-9,1073741823", { bitmap: [[3, 3], [7, 9], [1073741823, 1073741823]] }],
  ["bitmap none", { bitmap: [] }],
  ["young pages 5", { young: [[5, 5]] }],
  ["young none", { young: [] }],
  ["count 3", { count: 3 }],
  ["crash TypeError: x is undefined | at step", { crash: "TypeError: x is undefined | at step" }],
];

for (const [text, outcome] of OUTCOME_TEXT) {
  Deno.test(`text: outcome "${text}" parses and formats back`, () => {
    assert.deepEqual(parseOutcome(text), outcome);
    assert.equal(formatOutcome(outcome), text);
  });
}

const BAD_OUTCOMES: [string, ErrorClass, string][] = [
  ["", SyntaxError, "empty outcome"],
  ["fine", SyntaxError, 'unknown outcome "fine"'],
  ["ok 1", SyntaxError, '"1" is unexpected'],
  ["errno", SyntaxError, 'missing a value after "errno"'],
  [
    "errno EFOO",
    RangeError,
    'errno is out of range: must be "EINVAL", "EEXIST", ' +
    '"ENOENT", "E2BIG", "EFAULT", "ENOMEM" or "EPERM"',
  ],
  ["value 0xzz", SyntaxError, '"0xzz" is not a hex number'],
  ["mmio 0x0 x", SyntaxError, '"x" is not r or w'],
  ["mmio 0x0", SyntaxError, 'missing values after "mmio"'],
  ["pf code=0x7", SyntaxError, 'missing values after "pf"'],
  ["pf cr2=0x0 code=0x7", SyntaxError, '"cr2=0x0" is not code=<hex>'],
  [
    "pf code=0x100000000 cr2=0x0",
    RangeError,
    "pf.code is out of range: must be an integer from 0x0 to 0xffffffff",
  ],
  ["count -1", SyntaxError, '"-1" is not a decimal number'],
  ["bitmap", SyntaxError, 'missing a value after "bitmap"'],
  ["bitmap 5", SyntaxError, '"5" is not none, pages <list> or a hex bitmap'],
  ["bitmap pages", SyntaxError, 'missing values after "bitmap"'],
  ["bitmap pages 9,3", SyntaxError, 'page list "9,3": item "3" is not above the item before it'],
  ["young pages 4-2", SyntaxError, 'page list "4-2": range "4-2" runs backwards'],
  [
    "young pages 1,,2",
    SyntaxError,
    'page list "1,,2": item "" is not a page or a range first-last',
  ],
  [
    "bitmap pages 1099511627776",
    SyntaxError,
    'page list "1099511627776": item "1099511627776" is beyond page 1099511627775',
  ],
  ["bitmap none 1", SyntaxError, '"1" is unexpected'],
];

for (const [text, cls, detail] of BAD_OUTCOMES) {
  Deno.test(`parseOutcome: rejects "${text}" with ${cls.name}`, () => {
    assertThrowsExactly(() => parseOutcome(text), cls, `Cannot parse outcome "${text}": ${detail}`);
  });
}

Deno.test("parseOutcome: a crash message is kept verbatim, even empty", () => {
  assert.deepEqual(parseOutcome("crash "), { crash: "" });
  assert.deepEqual(parseOutcome("crash"), { crash: "" });
  assert.deepEqual(parseOutcome("crash  two  spaces "), { crash: " two  spaces " });
});

Deno.test("parseExpect: splits alternatives on ' | ' and reads '*' as any", () => {
  assert.equal(parseExpect("*"), "*");
  assert.equal(parseExpect(" * "), "*");
  assert.deepEqual(parseExpect("ok"), [{ ok: true }]);
  assert.deepEqual(parseExpect("value 0x1 | mmio 0x1000 r | pf code=0x0 cr2=0x1000"), [
    { value: 1n },
    { mmio: { gpa: 0x1000n, write: false } },
    { pf: { code: 0, cr2: 0x1000n } },
  ]);
  assertThrowsExactly(
    () => parseExpect("ok | nope"),
    SyntaxError,
    'Cannot parse outcome "nope": unknown outcome "nope"',
  );
});

Deno.test("formatPermitted: outcome, then the don't-care mask if any, then why", () => {
  assert.equal(
    formatPermitted({
      outcome: { value: 0x23n },
      dontCare: 0x20n,
      why: "stale until invlpg at op 7",
    }),
    "value 0x23 (don't care 0x20): stale until invlpg at op 7",
  );
  assert.equal(
    formatPermitted({ outcome: { mmio: { gpa: 0x1000n, write: true } }, why: "current walk" }),
    "mmio 0x1000 w: current walk",
  );
  assert.equal(
    formatPermitted({ outcome: { ok: true }, dontCare: 0n, why: "current walk" }),
    "ok: current walk",
  );
  assert.equal(formatPermitted({ outcome: { gp: true }, why: "" }), "gp");
  assert.equal(
    formatPermitted({ outcome: { bitmap: [[3, 3]] }, dontCarePages: [[5, 6]], why: "dirty" }),
    "bitmap pages 3 (don't care pages 5-6): dirty",
  );
  assert.equal(
    formatPermitted({ outcome: { young: [] }, dontCarePages: [], why: "aged" }),
    "young none: aged",
  );
});

Deno.test("parseOutcome: a hex bitmap (the old text form) is still read, any width", () => {
  assert.deepEqual(parseOutcome("bitmap 0x5"), { bitmap: [[0, 0], [2, 2]] });
  assert.deepEqual(parseOutcome("young 0x0"), { young: [] });
  const wide = `0x1${"0".repeat(127)}3`;
  assert.deepEqual(parseOutcome(`bitmap ${wide}`), { bitmap: [[0, 1], [512, 512]] });
  assert.equal(formatOutcome(parseOutcome(`bitmap ${wide}`)), "bitmap pages 0-1,512");
});
