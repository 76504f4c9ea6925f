import assert from "node:assert/strict";
import fc from "fast-check";
import { arbConfig, arbOp, arbOutcome, arbPermitted, arbTrace } from "./_arbitraries.ts";
import { defaultConfig, kvmPvmConfig } from "./config.ts";
import {
  configToJson,
  formatTrace,
  opToJson,
  outcomeFromJson,
  outcomeToJson,
  permittedFromJson,
  permittedToJson,
  traceToJson,
} from "./json.ts";
import { parseConfig, parseOpJson, parseTrace } from "./parse.ts";
import { pageRunsToBigint } from "./pages.ts";
import { type Outcome, type PageRuns, type Trace, TRACE_FORMAT } from "./types.ts";

/** Through real JSON text, so nothing non-JSON (bigint, undefined) survives by accident. */
function viaText(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

Deno.test("formatTrace: parseTrace(formatTrace(t)) deep-equals t", () => {
  fc.assert(
    fc.property(arbTrace(), (trace) => {
      assert.deepEqual(parseTrace(formatTrace(trace)), trace);
    }),
    { numRuns: 300 },
  );
});

Deno.test("formatTrace: the text is plain JSON equal to traceToJson", () => {
  fc.assert(
    fc.property(arbTrace({ maxOps: 5 }), (trace) => {
      assert.deepEqual(JSON.parse(formatTrace(trace)), viaText(traceToJson(trace)));
    }),
    { numRuns: 100 },
  );
});

Deno.test("formatTrace: writes lowercase hex only", () => {
  fc.assert(
    fc.property(arbTrace({ maxOps: 10 }), (trace) => {
      const text = formatTrace({ ...trace, comment: "" });
      assert.doesNotMatch(text, /0x[0-9a-f]*[A-F]/);
    }),
    { numRuns: 100 },
  );
});

Deno.test("formatTrace: lays a trace out with 2-space indent and one op per line", () => {
  const trace: Trace = {
    format: TRACE_FORMAT,
    comment: "a stale translation",
    config: kvmPvmConfig(),
    ops: [
      { op: "slot", id: 0, gpa: 0n, pages: 1024, hva: 0x100000000n, flags: ["log"] },
      { op: "write", gpa: 0x1000n, size: 8, value: 0x2003n },
      { op: "access", gva: 0x400ABCn, kind: "write", user: true, size: 4, value: 0xBEEFn },
      { op: "access", gva: 0x400000n, kind: "read", user: false, size: 8 },
      { op: "wrmsr", msr: 0x186, value: 0x5300c0n },
      { op: "filter", action: 1, flags: 0, fixed: 0, events: [0xc0n] },
      { op: "ctl", wp: false },
      { op: "pmis" },
    ],
  };
  assert.equal(
    formatTrace(trace),
    `{
  "format": "shadowfuzz.trace/1",
  "comment": "a stale translation",
  "config": {
    "vendor": "amd",
    "maxPhyAddr": 48,
    "gbPages": false,
    "smm": false,
    "pmu": { "version": 0 }
  },
  "ops": [
    { "op": "slot", "id": 0, "gpa": "0x0", "pages": 1024, "hva": "0x100000000", "flags": ["log"] },
    { "op": "write", "gpa": "0x1000", "size": 8, "value": "0x2003" },
    { "op": "access", "gva": "0x400abc", "kind": "write", "value": "0xbeef", "user": true, "size": 4 },
    { "op": "access", "gva": "0x400000", "kind": "read", "user": false },
    { "op": "wrmsr", "msr": "0x186", "value": "0x5300c0" },
    { "op": "filter", "action": 1, "flags": 0, "fixed": 0, "events": ["0xc0"] },
    { "op": "ctl", "wp": false },
    { "op": "pmis" }
  ]
}
`,
  );
});

Deno.test("formatTrace: an empty trace on the default machine stays short", () => {
  const text = formatTrace({ format: TRACE_FORMAT, config: defaultConfig(), ops: [] });
  assert.equal(text, `{\n  "format": "shadowfuzz.trace/1",\n  "config": {},\n  "ops": []\n}\n`);
});

Deno.test("opToJson: parseOpJson(opToJson(op)) deep-equals op for every kind", () => {
  fc.assert(
    fc.property(arbOp(), fc.nat(), (op, index) => {
      assert.deepEqual(parseOpJson(viaText(opToJson(op)), index), op);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("opToJson: size is always written for write/read, for access only when not 8", () => {
  assert.deepEqual(opToJson({ op: "read", gpa: 0n, size: 8 }), {
    op: "read",
    gpa: "0x0",
    size: 8,
  });
  assert.deepEqual(opToJson({ op: "access", gva: 0n, kind: "fetch", user: false, size: 8 }), {
    op: "access",
    gva: "0x0",
    kind: "fetch",
    user: false,
  });
  assert.deepEqual(opToJson({ op: "access", gva: 0n, kind: "fetch", user: false, size: 2 }), {
    op: "access",
    gva: "0x0",
    kind: "fetch",
    user: false,
    size: 2,
  });
});

Deno.test("opToJson: msr and ecx are hex strings, the filter action a number", () => {
  assert.deepEqual(opToJson({ op: "rdmsr", msr: 0xc0010004 }), { op: "rdmsr", msr: "0xc0010004" });
  assert.deepEqual(opToJson({ op: "rdpmc", ecx: 0x40000001, user: true }), {
    op: "rdpmc",
    ecx: "0x40000001",
    user: true,
  });
  assert.deepEqual(
    opToJson({ op: "filter", action: 0, flags: 1, fixed: 7, events: [0x1n, 0xABn] }),
    { op: "filter", action: 0, flags: 1, fixed: 7, events: ["0x1", "0xab"] },
  );
});

Deno.test("configToJson: writes only the fields that differ from the defaults", () => {
  assert.deepEqual(configToJson(defaultConfig()), {});
  assert.deepEqual(configToJson(kvmPvmConfig()), {
    vendor: "amd",
    maxPhyAddr: 48,
    gbPages: false,
    smm: false,
    pmu: { version: 0 },
  });
  const oneBit = defaultConfig();
  oneBit.quirks.slotZapAll = false;
  assert.deepEqual(configToJson(oneBit), { quirks: { slotZapAll: false } });
});

Deno.test("configToJson: parseConfig(configToJson(c)) deep-equals c", () => {
  fc.assert(
    fc.property(arbConfig(), (config) => {
      assert.deepEqual(parseConfig(viaText(configToJson(config))), config);
    }),
    { numRuns: 500 },
  );
});

Deno.test("outcomeToJson: outcomeFromJson(outcomeToJson(o)) deep-equals o", () => {
  fc.assert(
    fc.property(arbOutcome(), (outcome) => {
      assert.deepEqual(outcomeFromJson(viaText(outcomeToJson(outcome))), outcome);
    }),
    { numRuns: 1000 },
  );
});

Deno.test("outcomeToJson: writes the documented shapes", () => {
  const cases: [Outcome, unknown][] = [
    [{ errno: "EINVAL" }, { errno: "EINVAL" }],
    [{ errno: 0 }, { errno: 0 }],
    [{ ok: true }, { ok: true }],
    [{ value: 0xABn }, { value: "0xab" }],
    [{ mmio: { gpa: 0xfee00000n, write: false } }, { mmio: { gpa: "0xfee00000", write: false } }],
    [{ pf: { code: 7, cr2: 0x7f000n } }, { pf: { code: "0x7", cr2: "0x7f000" } }],
    [{ gp: true }, { gp: true }],
    [{ bitmap: [[0, 0], [2, 2]] }, { bitmap: "0x5" }],
    [{ young: [] }, { young: "0x0" }],
    // Below page 64 the hex bitmap; from page 64 on a page list.
    [{ young: [[63, 63]] }, { young: "0x8000000000000000" }],
    [{ young: [[63, 64]] }, { young: { pages: "63-64" } }],
    [
      { bitmap: [[3, 3], [7, 9], [1073741823, 1073741823]] },
      { bitmap: { pages: "3,7-9,1073741823" } },
    ],
    [{ count: 3 }, { count: 3 }],
    [{ crash: "msg" }, { crash: "msg" }],
  ];
  for (const [outcome, json] of cases) assert.deepEqual(outcomeToJson(outcome), json);
});

type ErrorClass = typeof TypeError | typeof RangeError;

const BAD_OUTCOMES: [unknown, ErrorClass, string][] = [
  [null, TypeError, "not a JSON object"],
  [{}, TypeError, "needs exactly one key, got 0"],
  [{ ok: true, gp: true }, TypeError, "needs exactly one key, got 2"],
  [{ oops: 1 }, TypeError, 'unknown kind "oops"'],
  [{ errno: "EFOO" }, RangeError, 'field "errno" is not a known errno name: "EFOO"'],
  [{ errno: 22 }, TypeError, 'field "errno" is not an errno name or 0'],
  [{ ok: false }, TypeError, 'field "ok" is not true'],
  [{ value: 35 }, TypeError, 'field "value" is not a 64-bit hex string'],
  [{ mmio: { gpa: "0x0" } }, TypeError, 'field "mmio.write" is missing'],
  [{ mmio: { gpa: "0x0", write: true, size: 4 } }, TypeError, 'unknown field "mmio.size"'],
  [{ mmio: { gpa: "0x0", write: "w" } }, TypeError, 'field "mmio.write" is not a boolean'],
  [
    { pf: { code: "0x100000000", cr2: "0x0" } },
    RangeError,
    'field "pf.code" is out of range: must be an integer from 0x0 to 0xffffffff',
  ],
  [{ pf: { code: 7, cr2: "0x0" } }, TypeError, 'field "pf.code" is not a 64-bit hex string'],
  [
    { count: -1 },
    RangeError,
    'field "count" is out of range: must be an integer from 0 to 9007199254740991',
  ],
  [{ count: "3" }, TypeError, 'field "count" is not a number'],
  [{ crash: 1 }, TypeError, 'field "crash" is not a string'],
  [{ bitmap: 5 }, TypeError, 'field "bitmap" is not a hex bitmap string or a {pages} object'],
  [{ young: "5" }, TypeError, 'field "young" is not a hex bitmap string or a {pages} object'],
  [
    { bitmap: { pages: "3", more: "4" } },
    TypeError,
    'field "bitmap" is an object but not {"pages": "<page list>"}',
  ],
  [
    { bitmap: { pages: [3] } },
    TypeError,
    'field "bitmap" is an object but not {"pages": "<page list>"}',
  ],
  [
    { young: { pages: "7,3" } },
    TypeError,
    'field "young" has a bad page list: item "3" is not above the item before it',
  ],
  [
    { young: { pages: "0x3" } },
    TypeError,
    'field "young" has a bad page list: item "0x3" is not a page or a range first-last',
  ],
];

for (const [json, cls, detail] of BAD_OUTCOMES) {
  Deno.test(`outcomeFromJson: rejects ${JSON.stringify(json)} with ${cls.name}`, () => {
    assert.throws(() => outcomeFromJson(json), (error: unknown) => {
      assert.equal((error as Error).constructor, cls);
      assert.equal((error as Error).message, `Cannot parse outcome: ${detail}`);
      return true;
    });
  });
}

Deno.test("permittedToJson: writes {outcome, dontCare?, why} and reads back", () => {
  assert.deepEqual(
    permittedToJson({ outcome: { value: 0x23n }, dontCare: 0x20n, why: "stale" }),
    { outcome: { value: "0x23" }, dontCare: "0x20", why: "stale" },
  );
  assert.deepEqual(permittedToJson({ outcome: { ok: true }, dontCare: 0n, why: "current walk" }), {
    outcome: { ok: true },
    why: "current walk",
  });
  fc.assert(
    fc.property(arbPermitted(), (permitted) => {
      // A zero mask means "care about every bit" and is not written.
      const expected = permitted.dontCare === 0n
        ? { outcome: permitted.outcome, why: permitted.why }
        : permitted;
      assert.deepEqual(permittedFromJson(viaText(permittedToJson(permitted))), expected);
    }),
    { numRuns: 300 },
  );
});

Deno.test("permittedFromJson: rejects a missing why and a bad mask", () => {
  assert.throws(
    () => permittedFromJson({ outcome: { ok: true } }),
    new TypeError('Cannot parse permitted outcome: field "why" is not a string'),
  );
  assert.throws(
    () => permittedFromJson({ outcome: { ok: true }, dontCare: 32, why: "" }),
    new TypeError('Cannot parse permitted outcome: field "dontCare" is not a hex mask string'),
  );
});

Deno.test("outcomeFromJson: hex bitmaps and masks wider than 64 bits (older files) still read", () => {
  const wide = (1n << 511n) | 1n;
  const text = `0x${wide.toString(16)}`;
  const pages = [[0, 0], [511, 511]];
  assert.deepEqual(outcomeFromJson({ bitmap: text }), { bitmap: pages });
  assert.deepEqual(outcomeFromJson({ young: text }), { young: pages });
  assert.deepEqual(permittedFromJson({ outcome: { bitmap: text }, dontCare: text, why: "x" }), {
    outcome: { bitmap: pages },
    dontCarePages: pages,
    why: "x",
  });
  // Written back as page lists, they read the same.
  const again = permittedToJson(
    permittedFromJson({ outcome: { young: text }, dontCare: text, why: "x" }),
  );
  assert.deepEqual(again, {
    outcome: { young: { pages: "0,511" } },
    dontCare: { pages: "0,511" },
    why: "x",
  });
  assert.throws(() => outcomeFromJson({ value: text }), TypeError);
  assert.throws(
    () => permittedFromJson({ outcome: { value: "0x1" }, dontCare: text, why: "x" }),
    new TypeError('Cannot parse permitted outcome: field "dontCare" is not a hex mask string'),
  );
  assert.throws(
    () => permittedFromJson({ outcome: { bitmap: "0x1" }, dontCare: 3, why: "x" }),
    new TypeError(
      'Cannot parse permitted outcome: field "dontCare" is not a hex bitmap string or a {pages} object',
    ),
  );
});

Deno.test("outcomeFromJson: every hex bitmap means the pages of its set bits", () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: (1n << 700n) - 1n }), (bits) => {
      const json = { bitmap: `0x${bits.toString(16)}` };
      const read = outcomeFromJson(json) as { bitmap: PageRuns };
      assert.equal(pageRunsToBigint(read.bitmap), bits);
      assert.deepEqual(outcomeFromJson(viaText(outcomeToJson(read))), read);
    }),
    { numRuns: 300 },
  );
});
