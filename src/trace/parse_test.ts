import assert from "node:assert/strict";
import { defaultConfig, kvmPvmConfig, mergeConfig } from "./config.ts";
import { parseConfig, parseOpJson, parseTrace, traceFromJson } from "./parse.ts";
import { TRACE_FORMAT } from "./types.ts";

type ErrorClass = typeof SyntaxError | typeof TypeError | typeof RangeError;

/** Asserts that `fn` throws exactly `cls` (not a subclass or sibling) with `message`. */
function assertThrowsExactly(fn: () => unknown, cls: ErrorClass, message: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof Error, `not an Error: ${String(error)}`);
    assert.equal(error.constructor, cls, `${error.constructor.name}: ${error.message}`);
    assert.equal(error.message, message);
    return true;
  });
}

/** A trace whose op 0 is valid and op 1 is `bad`, so messages must name index 1. */
function withOp(bad: unknown): string {
  return JSON.stringify({ format: TRACE_FORMAT, ops: [{ op: "pmis" }, bad] });
}

function withConfig(config: unknown): string {
  return JSON.stringify({ format: TRACE_FORMAT, config, ops: [] });
}

const op1 = "Cannot parse trace op 1";
const cfg = "Cannot parse trace config";

/** [what, trace text, error class, exact message]. */
const MALFORMED: [string, string, ErrorClass, string][] = [
  // The document.
  ["not JSON", "{", SyntaxError, ""],
  ["not an object", "[]", TypeError, "Cannot parse trace: not a JSON object"],
  [
    "wrong format tag",
    JSON.stringify({ format: "shadowfuzz.trace/2", ops: [] }),
    TypeError,
    'Cannot parse trace: field "format" is not "shadowfuzz.trace/1" (got "shadowfuzz.trace/2")',
  ],
  [
    "missing format tag",
    JSON.stringify({ ops: [] }),
    TypeError,
    'Cannot parse trace: field "format" is missing',
  ],
  [
    "unknown top-level field",
    JSON.stringify({ format: TRACE_FORMAT, ops: [], opz: [] }),
    TypeError,
    'Cannot parse trace: unknown field "opz"',
  ],
  [
    "missing ops",
    JSON.stringify({ format: TRACE_FORMAT }),
    TypeError,
    'Cannot parse trace: field "ops" is missing',
  ],
  [
    "ops not an array",
    JSON.stringify({ format: TRACE_FORMAT, ops: {} }),
    TypeError,
    'Cannot parse trace: field "ops" is not an array',
  ],
  [
    "comment not a string",
    JSON.stringify({ format: TRACE_FORMAT, comment: 7, ops: [] }),
    TypeError,
    'Cannot parse trace: field "comment" is not a string',
  ],
  // Op shape.
  ["op not an object", withOp(5), TypeError, `${op1}: not a JSON object`],
  ["op without kind", withOp({ gpa: "0x0" }), TypeError, `${op1}: field "op" is missing`],
  ["kind not a string", withOp({ op: 3 }), TypeError, `${op1}: field "op" is not a string`],
  ["unknown kind", withOp({ op: "wrmsr2" }), TypeError, `${op1}: unknown kind "wrmsr2"`],
  [
    "unknown op field",
    withOp({ op: "read", gpa: "0x0", size: 8, gpaa: "0x0" }),
    TypeError,
    `${op1}: unknown field "gpaa" for kind "read"`,
  ],
  [
    "field of pmis",
    withOp({ op: "pmis", count: 1 }),
    TypeError,
    `${op1}: unknown field "count" for kind "pmis"`,
  ],
  // 64-bit hex strings.
  [
    "gpa as a number",
    withOp({ op: "cr3", gpa: 4096 }),
    TypeError,
    `${op1}: field "gpa" is not a 64-bit hex string`,
  ],
  [
    "gpa with bad digits",
    withOp({ op: "cr3", gpa: "0xzz" }),
    TypeError,
    `${op1}: field "gpa" is not a 64-bit hex string`,
  ],
  [
    "gpa without 0x",
    withOp({ op: "cr3", gpa: "1000" }),
    TypeError,
    `${op1}: field "gpa" is not a 64-bit hex string`,
  ],
  [
    "gpa with 17 digits",
    withOp({ op: "cr3", gpa: "0x10000000000000000" }),
    TypeError,
    `${op1}: field "gpa" is not a 64-bit hex string`,
  ],
  [
    "write without gpa",
    withOp({ op: "write", size: 8, value: "0x1" }),
    TypeError,
    `${op1}: field "gpa" is missing`,
  ],
  [
    "write without size",
    withOp({ op: "write", gpa: "0x0", value: "0x1" }),
    TypeError,
    `${op1}: field "size" is missing`,
  ],
  [
    "write without value",
    withOp({ op: "write", gpa: "0x0", size: 8 }),
    TypeError,
    `${op1}: field "value" is missing`,
  ],
  // Sizes and page crossing.
  [
    "size 3",
    withOp({ op: "read", gpa: "0x0", size: 3 }),
    RangeError,
    `${op1}: field "size" is out of range: must be 1, 2, 4 or 8`,
  ],
  [
    "size as a string",
    withOp({ op: "read", gpa: "0x0", size: "8" }),
    TypeError,
    `${op1}: field "size" is not a number`,
  ],
  [
    "write gpa at 2^52",
    withOp({ op: "write", gpa: "0x10000000000000", size: 1, value: "0x0" }),
    RangeError,
    `${op1}: field "gpa" is out of range: must be below 0x10000000000000`,
  ],
  [
    "write across a page",
    withOp({ op: "write", gpa: "0xffe", size: 4, value: "0x0" }),
    RangeError,
    `${op1}: field "gpa" crosses a page boundary: offset 0xffe + size 4 > 4096`,
  ],
  [
    "read across a page",
    withOp({ op: "read", gpa: "0x1fff", size: 2 }),
    RangeError,
    `${op1}: field "gpa" crosses a page boundary: offset 0xfff + size 2 > 4096`,
  ],
  [
    "access across a page with the default size 8",
    withOp({ op: "access", gva: "0xffff800000000ff9", kind: "read" }),
    RangeError,
    `${op1}: field "gva" crosses a page boundary: offset 0xff9 + size 8 > 4096`,
  ],
  // Access.
  [
    "access write without value",
    withOp({ op: "access", gva: "0x0", kind: "write" }),
    TypeError,
    `${op1}: field "value" is missing: an access of kind "write" needs one`,
  ],
  [
    "access read with value",
    withOp({ op: "access", gva: "0x0", kind: "read", value: "0x1" }),
    TypeError,
    `${op1}: field "value" is not allowed: only an access of kind "write" has a value`,
  ],
  [
    "access kind exec",
    withOp({ op: "access", gva: "0x0", kind: "exec" }),
    RangeError,
    `${op1}: field "kind" is out of range: must be "read", "write" or "fetch"`,
  ],
  [
    "access user not a boolean",
    withOp({ op: "access", gva: "0x0", kind: "read", user: "yes" }),
    TypeError,
    `${op1}: field "user" is not a boolean`,
  ],
  // Slots.
  [
    "slot id -1",
    withOp({ op: "slot", id: -1, gpa: "0x0", pages: 1, hva: "0x0" }),
    RangeError,
    `${op1}: field "id" is out of range: must be an integer from 0 to 4294967295`,
  ],
  [
    "slot id 1.5",
    withOp({ op: "slot", id: 1.5, gpa: "0x0", pages: 1, hva: "0x0" }),
    RangeError,
    `${op1}: field "id" is out of range: must be an integer from 0 to 4294967295`,
  ],
  [
    "slot pages above 2^40",
    withOp({ op: "slot", id: 0, gpa: "0x0", pages: 2 ** 40 + 1, hva: "0x0" }),
    RangeError,
    `${op1}: field "pages" is out of range: must be an integer from 0 to 1099511627776`,
  ],
  [
    "slot flag unknown",
    withOp({ op: "slot", id: 0, gpa: "0x0", pages: 1, hva: "0x0", flags: ["dirty"] }),
    RangeError,
    `${op1}: field "flags[0]" is out of range: must be "log" or "ro"`,
  ],
  [
    "slot flag repeated",
    withOp({ op: "slot", id: 0, gpa: "0x0", pages: 1, hva: "0x0", flags: ["log", "log"] }),
    RangeError,
    `${op1}: field "flags[1]" repeats "log"`,
  ],
  [
    "slot flags not an array",
    withOp({ op: "slot", id: 0, gpa: "0x0", pages: 1, hva: "0x0", flags: "log" }),
    TypeError,
    `${op1}: field "flags" is not an array`,
  ],
  [
    "slot flag not a string",
    withOp({ op: "slot", id: 0, gpa: "0x0", pages: 1, hva: "0x0", flags: [1] }),
    TypeError,
    `${op1}: field "flags[0]" is not a string`,
  ],
  // Host ranges.
  [
    "discard of 0 pages",
    withOp({ op: "discard", hva: "0x0", pages: 0 }),
    RangeError,
    `${op1}: field "pages" is out of range: must be an integer from 1 to 1048576`,
  ],
  [
    "age of 2^20 + 1 pages",
    withOp({ op: "age", gpa: "0x0", pages: 2 ** 20 + 1 }),
    RangeError,
    `${op1}: field "pages" is out of range: must be an integer from 1 to 1048576`,
  ],
  [
    "dirtylog id 2^32",
    withOp({ op: "dirtylog", id: 2 ** 32 }),
    RangeError,
    `${op1}: field "id" is out of range: must be an integer from 0 to 4294967295`,
  ],
  // ctl.
  [
    "ctl with no field",
    withOp({ op: "ctl" }),
    TypeError,
    `${op1}: ctl needs at least one of wp, smep, smap, nx, ac, pce`,
  ],
  [
    "ctl with an unknown field",
    withOp({ op: "ctl", pke: true }),
    TypeError,
    `${op1}: unknown field "pke" for kind "ctl"`,
  ],
  [
    "ctl bit as a number",
    withOp({ op: "ctl", wp: 1 }),
    TypeError,
    `${op1}: field "wp" is not a boolean`,
  ],
  // MSRs and RDPMC.
  [
    "msr hex above u32",
    withOp({ op: "wrmsr", msr: "0x100000000", value: "0x0" }),
    RangeError,
    `${op1}: field "msr" is out of range: must be an integer from 0x0 to 0xffffffff`,
  ],
  [
    "msr negative number",
    withOp({ op: "rdmsr", msr: -1 }),
    RangeError,
    `${op1}: field "msr" is out of range: must be an integer from 0x0 to 0xffffffff`,
  ],
  [
    "msr as a boolean",
    withOp({ op: "rdmsr", msr: true }),
    TypeError,
    `${op1}: field "msr" is not a number or a hex string`,
  ],
  ["rdpmc without ecx", withOp({ op: "rdpmc" }), TypeError, `${op1}: field "ecx" is missing`],
  // Filter and events.
  [
    "filter action word unknown",
    withOp({ op: "filter", action: "block" }),
    RangeError,
    `${op1}: field "action" is not "allow", "deny" or a number`,
  ],
  [
    "filter action as a boolean",
    withOp({ op: "filter", action: true }),
    TypeError,
    `${op1}: field "action" is not "allow", "deny" or a number`,
  ],
  [
    "filter of 1001 events",
    withOp({ op: "filter", action: 0, events: Array(1001).fill("0xc0") }),
    RangeError,
    `${op1}: field "events" has 1001 entries: at most 1000 allowed`,
  ],
  [
    "filter event not a hex string",
    withOp({ op: "filter", action: 1, events: ["0xc0", 60] }),
    TypeError,
    `${op1}: field "events[1]" is not a 64-bit hex string`,
  ],
  [
    "filter flags above u32",
    withOp({ op: "filter", action: 0, flags: 2 ** 32 }),
    RangeError,
    `${op1}: field "flags" is out of range: must be an integer from 0x0 to 0xffffffff`,
  ],
  [
    "events select above 12 bits",
    withOp({ op: "events", event: 0x1000, umask: 0, count: 1 }),
    RangeError,
    `${op1}: field "event" is out of range: must be an integer from 0x0 to 0xfff`,
  ],
  [
    "events umask above 8 bits",
    withOp({ op: "events", event: 0xc0, umask: 0x100, count: 1 }),
    RangeError,
    `${op1}: field "umask" is out of range: must be an integer from 0x0 to 0xff`,
  ],
  [
    "events without count",
    withOp({ op: "events", event: 0xc0, umask: 0 }),
    TypeError,
    `${op1}: field "count" is missing`,
  ],
  // Config.
  ["config not an object", withConfig([]), TypeError, `${cfg}: not a JSON object`],
  [
    "unknown config field",
    withConfig({ vendorr: "amd" }),
    TypeError,
    `${cfg}: unknown field "vendorr"`,
  ],
  [
    "unknown nested config field",
    withConfig({ pmu: { gpp: 4 } }),
    TypeError,
    `${cfg}: unknown field "pmu.gpp"`,
  ],
  [
    "prototype key in config",
    '{"format": "shadowfuzz.trace/1", "ops": [], "config": {"__proto__": {"x": 1}}}',
    TypeError,
    `${cfg}: unknown field "__proto__"`,
  ],
  [
    "vendor unknown",
    withConfig({ vendor: "via" }),
    RangeError,
    `${cfg}: field "vendor" is out of range: must be "intel" or "amd"`,
  ],
  [
    "maxPhyAddr 53",
    withConfig({ maxPhyAddr: 53 }),
    RangeError,
    `${cfg}: field "maxPhyAddr" is out of range: must be an integer from 36 to 52`,
  ],
  [
    "mmioGenBits 1",
    withConfig({ mmioGenBits: 1 }),
    RangeError,
    `${cfg}: field "mmioGenBits" is out of range: must be an integer from 2 to 19`,
  ],
  [
    "gbPages as a string",
    withConfig({ gbPages: "yes" }),
    TypeError,
    `${cfg}: field "gbPages" is not a boolean`,
  ],
  ["pmu not an object", withConfig({ pmu: 2 }), TypeError, `${cfg}: field "pmu" is not an object`],
  [
    "pmu version 3",
    withConfig({ pmu: { version: 3 } }),
    RangeError,
    `${cfg}: field "pmu.version" is out of range: must be 0, 1 or 2`,
  ],
  [
    "no vPMU but GP counters",
    withConfig({ pmu: { version: 0, gp: 4 } }),
    RangeError,
    `${cfg}: field "pmu.gp" must be 0 when pmu.version is 0 (no vPMU)`,
  ],
  [
    "no vPMU but fixed counters",
    withConfig({ pmu: { version: 0, gp: 0, fixed: 3 } }),
    RangeError,
    `${cfg}: field "pmu.fixed" must be 0 when pmu.version is 0 (no vPMU)`,
  ],
  [
    "intel v1 with fixed counters",
    withConfig({ pmu: { version: 1, fixed: 3 } }),
    RangeError,
    `${cfg}: field "pmu.fixed" must be 0 unless pmu.version is 2 (fixed counters came with v2)`,
  ],
  [
    "intel with 9 GP counters",
    withConfig({ pmu: { gp: 9 } }),
    RangeError,
    `${cfg}: field "pmu.gp" is out of range: must be an integer from 0 to 8`,
  ],
  [
    "intel 31-bit counters",
    withConfig({ pmu: { gpWidth: 31 } }),
    RangeError,
    `${cfg}: field "pmu.gpWidth" is out of range: must be an integer from 32 to 48`,
  ],
  [
    "initially-all-set dirty logs without manual protect",
    withConfig({ dirtyLog: { initiallySet: true } }),
    RangeError,
    `${cfg}: field "dirtyLog.initiallySet" must be false unless dirtyLog.manualProtect is true`,
  ],
  [
    "a dirty-log clear without pages",
    withOp({ op: "dirtyclear", id: 1, first: 0 }),
    TypeError,
    `${op1}: field "pages" is missing`,
  ],
  [
    "a dirty-log clear past 2^40",
    withOp({ op: "dirtyclear", id: 1, first: 2 ** 40 + 64, pages: 64 }),
    RangeError,
    `${op1}: field "first" is out of range: must be an integer from 0 to 1099511627776`,
  ],
  [
    "amd with fixed counters",
    withConfig({ vendor: "amd", pmu: { fixed: 3 } }),
    RangeError,
    `${cfg}: field "pmu.fixed" must be 0 on amd (no fixed counters)`,
  ],
  [
    "amd with 5 GP counters",
    withConfig({ vendor: "amd", pmu: { gp: 5, fixed: 0 } }),
    RangeError,
    `${cfg}: field "pmu.gp" must be 0, 4 or 6 on amd`,
  ],
  [
    "amd 40-bit counters",
    withConfig({ vendor: "amd", pmu: { fixed: 0, gpWidth: 40 } }),
    RangeError,
    `${cfg}: field "pmu.gpWidth" must be 48 on amd`,
  ],
];

for (const [what, text, cls, message] of MALFORMED) {
  Deno.test(`parseTrace: rejects ${what} with ${cls.name}`, () => {
    if (cls === SyntaxError) {
      // The JSON engine words the reason; we own the prefix.
      assert.throws(() => parseTrace(text), (error: unknown) => {
        assert.equal((error as Error).constructor, SyntaxError);
        assert.match((error as Error).message, /^Cannot parse trace: \S/);
        return true;
      });
      return;
    }
    assertThrowsExactly(() => parseTrace(text), cls, message);
  });
}

Deno.test("parseTrace: reads the design's example trace, every default spelled out", () => {
  const trace = parseTrace(`{
    "format": "shadowfuzz.trace/1",
    "comment": "why this trace exists (optional)",
    "config": {
      "vendor": "intel",
      "maxPhyAddr": 46,
      "gbPages": true,
      "cr0": { "wp": true },
      "cr4": { "smep": false, "smap": false, "pce": false },
      "efer": { "nx": true },
      "pmu": { "version": 2, "gp": 4, "fixed": 3, "gpWidth": 48, "fixedWidth": 48, "fullWidthWrites": true },
      "quirks": { "slotZapAll": true },
      "mmioGenBits": 19
    },
    "ops": [
      { "op": "slot", "id": 0, "gpa": "0x0", "pages": 1024, "hva": "0x100000000", "flags": [] },
      { "op": "write", "gpa": "0x1000", "size": 8, "value": "0x2003" },
      { "op": "cr3", "gpa": "0x1000" },
      { "op": "access", "gva": "0x400000", "kind": "read", "user": false }
    ]
  }`);
  assert.deepEqual(trace, {
    format: TRACE_FORMAT,
    comment: "why this trace exists (optional)",
    config: defaultConfig(),
    ops: [
      { op: "slot", id: 0, gpa: 0n, pages: 1024, hva: 0x100000000n, flags: [] },
      { op: "write", gpa: 0x1000n, size: 8, value: 0x2003n },
      { op: "cr3", gpa: 0x1000n },
      { op: "access", gva: 0x400000n, kind: "read", user: false, size: 8 },
    ],
  });
});

Deno.test("parseTrace: a trace without config gets the default config and no comment key", () => {
  const trace = parseTrace(`{"format": "shadowfuzz.trace/1", "ops": []}`);
  assert.deepEqual(trace, { format: TRACE_FORMAT, config: defaultConfig(), ops: [] });
  assert.equal(Object.hasOwn(trace, "comment"), false);
});

Deno.test("parseOpJson: optional fields take their defaults", () => {
  assert.deepEqual(parseOpJson({ op: "access", gva: "0x1000", kind: "fetch" }, 0), {
    op: "access",
    gva: 0x1000n,
    kind: "fetch",
    user: false,
    size: 8,
  });
  assert.deepEqual(parseOpJson({ op: "filter", action: "deny" }, 0), {
    op: "filter",
    action: 1,
    flags: 0,
    fixed: 0,
    events: [],
  });
  assert.deepEqual(parseOpJson({ op: "slot", id: 2, gpa: "0x0", pages: 0, hva: "0x0" }, 0), {
    op: "slot",
    id: 2,
    gpa: 0n,
    pages: 0,
    hva: 0n,
    flags: [],
  });
  assert.deepEqual(parseOpJson({ op: "rdpmc", ecx: "0x40000000" }, 0), {
    op: "rdpmc",
    ecx: 0x40000000,
    user: false,
  });
  assert.deepEqual(parseOpJson({ op: "events", event: 0xc0, umask: 0, count: 3 }, 0), {
    op: "events",
    event: 0xc0,
    umask: 0,
    count: 3,
    user: false,
  });
});

Deno.test("parseOpJson: absent optional fields stay absent (no undefined keys)", () => {
  const access = parseOpJson({ op: "access", gva: "0x0", kind: "read" }, 0);
  assert.equal(Object.hasOwn(access, "value"), false);
  const ctl = parseOpJson({ op: "ctl", nx: false }, 0);
  assert.deepEqual(Object.keys(ctl), ["op", "nx"]);
});

Deno.test("parseOpJson: msr and ecx accept a hex string or a number alike", () => {
  assert.deepEqual(
    parseOpJson({ op: "wrmsr", msr: 0x186, value: "0x1" }, 0),
    parseOpJson({ op: "wrmsr", msr: "0x186", value: "0x1" }, 0),
  );
  assert.deepEqual(parseOpJson({ op: "rdpmc", ecx: 1, user: true }, 0), {
    op: "rdpmc",
    ecx: 1,
    user: true,
  });
});

Deno.test("parseOpJson: hex digits are case-insensitive and leading zeros are fine", () => {
  assert.deepEqual(parseOpJson({ op: "cr3", gpa: "0X00ABCdef" }, 0), {
    op: "cr3",
    gpa: 0xabcdefn,
  });
  assert.deepEqual(parseOpJson({ op: "invlpg", gva: "0xFFFFFFFFFFFFFFFF" }, 0), {
    op: "invlpg",
    gva: 0xffffffffffffffffn,
  });
});

Deno.test("parseOpJson: the last byte of a page is accessible, one past is not", () => {
  assert.deepEqual(parseOpJson({ op: "read", gpa: "0xfff", size: 1 }, 0), {
    op: "read",
    gpa: 0xfffn,
    size: 1,
  });
  assert.deepEqual(parseOpJson({ op: "write", gpa: "0xff8", size: 8, value: "0x0" }, 0), {
    op: "write",
    gpa: 0xff8n,
    size: 8,
    value: 0n,
  });
  assertThrowsExactly(
    () => parseOpJson({ op: "read", gpa: "0xff9", size: 8 }, 7),
    RangeError,
    'Cannot parse trace op 7: field "gpa" crosses a page boundary: offset 0xff9 + size 8 > 4096',
  );
});

Deno.test("parseOpJson: slot flags come out in canonical order log, ro", () => {
  const op = parseOpJson(
    { op: "slot", id: 1, gpa: "0x0", pages: 1, hva: "0x0", flags: ["ro", "log"] },
    0,
  );
  assert.deepEqual(op, { op: "slot", id: 1, gpa: 0n, pages: 1, hva: 0n, flags: ["log", "ro"] });
});

Deno.test("parseOpJson: a filter may hold exactly 1000 events", () => {
  const op = parseOpJson({ op: "filter", action: 0, events: Array(1000).fill("0xc0") }, 0);
  assert.equal(op.op === "filter" && op.events.length, 1000);
});

Deno.test("parseConfig: undefined gives the defaults and a partial config merges over them", () => {
  assert.deepEqual(parseConfig(undefined), defaultConfig());
  assert.deepEqual(
    parseConfig({ maxPhyAddr: 39, cr4: { smep: true } }),
    mergeConfig({ maxPhyAddr: 39, cr4: { smep: true } }),
  );
});

Deno.test("parseConfig: the kvm_pvm machine's config parses to kvmPvmConfig()", () => {
  // The config measured on kvm_pvm (docs/measurements.md), with no SMM address space.
  const json = { vendor: "amd", maxPhyAddr: 48, gbPages: false, smm: false, pmu: { version: 0 } };
  assert.deepEqual(parseConfig(json), kvmPvmConfig());
});

Deno.test("parseConfig: amd with a PerfCtrExtCore vPMU is accepted", () => {
  const config = parseConfig({ vendor: "amd", pmu: { version: 1, gp: 6, fixed: 0 } });
  assert.deepEqual(config.pmu, { ...defaultConfig().pmu, version: 1, gp: 6, fixed: 0 });
});

Deno.test("parseConfig: does not alias the input objects", () => {
  const input = { pmu: { gp: 2 } };
  const config = parseConfig(input);
  config.pmu.gp = 5;
  assert.equal(input.pmu.gp, 2);
});

Deno.test("traceFromJson: validates an already-parsed trace value", () => {
  assertThrowsExactly(
    () => traceFromJson({ format: TRACE_FORMAT, ops: [{ op: "pmis" }, { op: "nope" }] }),
    TypeError,
    'Cannot parse trace op 1: unknown kind "nope"',
  );
});
