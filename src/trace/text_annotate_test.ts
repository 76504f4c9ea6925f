/**
 * Tests of the annotations in `text.ts` (`annotateOp`, `annotateOutcome`,
 * `annotatePermitted`): the decoded, human-only text. Expected names are the manuals'
 * (see `src/x86/decode_test.ts` for the tables they come from).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { arbConfig, arbOp, arbOutcome } from "./_arbitraries.ts";
import { defaultConfig } from "./config.ts";
import { annotateOp, annotateOutcome, annotatePermitted, formatOp, parseOutcome } from "./text.ts";
import type { Op, Permitted } from "./types.ts";

const intel = defaultConfig();
const amd = { ...defaultConfig(), vendor: "amd" as const };
const read8: Op = { op: "read", gpa: 0x1000n, size: 8 };

Deno.test("annotateOutcome: #PF with the error code's bits named, #GP", () => {
  assert.equal(
    annotateOutcome({ pf: { code: 0x5, cr2: 0x400000n } }),
    "#PF 0x5 (P|U) cr2=0x400000",
  );
  assert.equal(annotateOutcome({ pf: { code: 0x0, cr2: 0x0n } }), "#PF 0x0 (none) cr2=0x0");
  assert.equal(
    annotateOutcome({ pf: { code: 0xb, cr2: 0x7f000n } }),
    "#PF 0xb (P|W|RSVD) cr2=0x7f000",
  );
  assert.equal(annotateOutcome({ gp: true }), "#GP");
});

Deno.test("annotateOutcome: an 8-byte load shows the value as a page-table entry", () => {
  assert.equal(
    annotateOutcome({ value: 0x8000000000400067n }, read8),
    "value 0x8000000000400067 [P W U A D NX frame=0x400000]",
  );
  const fetch8: Op = { op: "access", gva: 0x400000n, kind: "fetch", user: false, size: 8 };
  assert.equal(annotateOutcome({ value: 0x1003n }, fetch8), "value 0x1003 [P W frame=0x1000]");
  // MAXPHYADDR from the config: 46 reserves bits 51:46.
  assert.equal(
    annotateOutcome({ value: 0x4000_0000_1001n }, read8, { ...intel, maxPhyAddr: 46 }),
    "value 0x400000001001 [P frame=0x1000 rsvd=0x400000000000]",
  );
  // Other sizes, zero and no op: plain hex.
  assert.equal(annotateOutcome({ value: 0x67n }, { ...read8, size: 4 }), "value 0x67");
  assert.equal(annotateOutcome({ value: 0x0n }, read8), "value 0x0");
  assert.equal(annotateOutcome({ value: 0x67n }), "value 0x67");
});

Deno.test("annotateOutcome: an rdmsr value decoded by field for known MSRs", () => {
  const rdmsr = (msr: number): Op => ({ op: "rdmsr", msr });
  assert.equal(annotateOutcome({ value: 0x3n }, rdmsr(0x38f)), "value 0x3 [PMC0 PMC1]");
  assert.equal(
    annotateOutcome({ value: 0x4300c0n }, rdmsr(0x186)),
    "value 0x4300c0 [event=0xc0 umask=0x0 USR OS EN]",
  );
  assert.equal(annotateOutcome({ value: 0xbn }, rdmsr(0x38d)), "value 0xb [FIXED_CTR0=OS|USR|PMI]");
  // Counters and unknown MSRs stay plain values.
  assert.equal(annotateOutcome({ value: 0xffff80000000n }, rdmsr(0xc1)), "value 0xffff80000000");
  assert.equal(annotateOutcome({ value: 0x5n }, rdmsr(0x1234)), "value 0x5");
});

Deno.test("annotateOutcome: page sets as page lists, mmio, counts, the rest", () => {
  assert.equal(annotateOutcome(parseOutcome("bitmap 0x388")), "dirty pages 3,7-9");
  assert.equal(annotateOutcome(parseOutcome("bitmap 0x0")), "dirty pages none");
  assert.equal(annotateOutcome(parseOutcome("young 0xf")), "young pages 0-3");
  assert.equal(
    annotateOutcome({ mmio: { gpa: 0xfee00000n, write: true } }),
    "mmio write 0xfee00000",
  );
  assert.equal(annotateOutcome({ mmio: { gpa: 0x1000n, write: false } }), "mmio read 0x1000");
  assert.equal(annotateOutcome({ count: 1234567 }), "count 1,234,567");
  assert.equal(annotateOutcome({ errno: "EINVAL" }), "errno EINVAL");
  assert.equal(annotateOutcome({ ok: true }), "ok");
  assert.equal(annotateOutcome({ crash: "boom: at x" }), "crash: boom: at x");
});

Deno.test("annotateOp: MSRs by name, written values by field", () => {
  assert.equal(
    annotateOp({ op: "wrmsr", msr: 0x186, value: 0x4300c0n }),
    "wrmsr PERFEVTSEL0 (0x186) 0x4300c0 [event=0xc0 umask=0x0 USR OS EN]",
  );
  assert.equal(
    annotateOp({ op: "wrmsr", msr: 0x38f, value: 0x700000003n }),
    "wrmsr PERF_GLOBAL_CTRL (0x38f) 0x700000003 [PMC0 PMC1 FIXED_CTR0-2]",
  );
  assert.equal(
    annotateOp({ op: "wrmsr", msr: 0xc0010200, value: 0x1004300c2n }, amd),
    "wrmsr F15H_PERF_CTL0 (0xc0010200) 0x1004300c2 [event=0x1c2 umask=0x0 USR OS EN]",
  );
  assert.equal(
    annotateOp({ op: "wrmsr", msr: 0xc1, value: 0x80000000n }),
    "wrmsr PMC0 (0xc1) 0x80000000",
  );
  assert.equal(annotateOp({ op: "wrmsr", msr: 0x1234, value: 0x5n }), "wrmsr 0x1234 0x5");
  assert.equal(annotateOp({ op: "rdmsr", msr: 0x38e }), "rdmsr PERF_GLOBAL_STATUS (0x38e)");
});

Deno.test("annotateOp: RDPMC's counter by the vendor's ECX encoding", () => {
  // SDM RDPMC: ECX[31:16] type (0 GP, 0x4000 fixed), ECX[15:0] index; bit 31 "fast".
  const rdpmc = (ecx: number, user = false): Op => ({ op: "rdpmc", ecx, user });
  assert.equal(annotateOp(rdpmc(0x40000001, true), intel), "rdpmc 0x40000001 (FIXED_CTR1) user");
  assert.equal(annotateOp(rdpmc(0x2), intel), "rdpmc 0x2 (PMC2)");
  assert.equal(annotateOp(rdpmc(0x80000000), intel), "rdpmc 0x80000000 (fast PMC0)");
  assert.equal(annotateOp(rdpmc(0x20000000), intel), "rdpmc 0x20000000 (type 0x2000 index 0)");
  // AMD: ECX is the counter index.
  assert.equal(annotateOp(rdpmc(0x3), amd), "rdpmc 0x3 (PMC3)");
  assert.equal(annotateOp(rdpmc(0xc0000000), amd), "rdpmc 0xc0000000");
  assert.equal(annotateOp(rdpmc(0x1, true)), "rdpmc 0x1 user");
});

Deno.test("annotateOp: 8-byte stores as entries, counts with separators, others as formatOp", () => {
  assert.equal(
    annotateOp({ op: "write", gpa: 0x2000n, size: 8, value: 0x3067n }),
    "write 0x2000 0x3067 [P W U A D frame=0x3000]",
  );
  assert.equal(
    annotateOp({ op: "access", gva: 0x7f000n, kind: "write", user: true, size: 8, value: 0x1n }),
    "access w 0x7f000 0x1 user [P frame=0x0]",
  );
  assert.equal(
    annotateOp({ op: "write", gpa: 0x2000n, size: 4, value: 0x3067n }),
    "write 0x2000 0x3067 size=4",
  );
  assert.equal(
    annotateOp({ op: "events", event: 0xc0, umask: 0, count: 2147483648, user: true }),
    "events 0xc0 umask=0x0 count=2,147,483,648 user",
  );
  const plain: Op[] = [
    { op: "slot", id: 1, gpa: 0x800000n, pages: 16, hva: 0x40000000n, flags: ["log"] },
    { op: "invlpg", gva: 0x1000n },
    { op: "dirtylog", id: 1 },
    { op: "pmis" },
    { op: "access", gva: 0x1000n, kind: "read", user: false, size: 8 },
  ];
  for (const op of plain) assert.equal(annotateOp(op, intel), formatOp(op));
});

Deno.test("annotatePermitted: don't-care bits by name, then why", () => {
  const p = (permitted: Permitted, op?: Op) => annotatePermitted(permitted, op);
  assert.equal(
    p({ outcome: { value: 0x400067n }, dontCare: 0x60n, why: "current walk" }, read8),
    "value 0x400067 [P W U A D frame=0x400000] (don't care A|D): current walk",
  );
  assert.equal(
    p({ outcome: { value: 0x1n }, dontCare: 0x3n, why: "" }, { op: "rdmsr", msr: 0x38e }),
    "value 0x1 [PMC0] (don't care PMC0 PMC1)",
  );
  assert.equal(
    p({ outcome: { value: 0x1n }, dontCare: 0x300n, why: "x" }),
    "value 0x1 (don't care 0x300): x",
  );
  // Page sets: don't-care pages as a list, whether held as a bitmap or as page runs.
  const bitmap = parseOutcome("bitmap 0x388");
  assert.equal(
    p({ outcome: bitmap, dontCare: 0x60n, why: "written" }),
    "dirty pages 3,7-9 (don't care pages 5-6): written",
  );
  const runs = { outcome: bitmap, dontCarePages: [[5, 6]], why: "written" };
  assert.equal(
    p(runs as unknown as Permitted),
    "dirty pages 3,7-9 (don't care pages 5-6): written",
  );
  assert.equal(p({ outcome: bitmap, why: "" }), "dirty pages 3,7-9");
});

Deno.test("annotations: total over every valid op, outcome and config", () => {
  fc.assert(
    fc.property(arbOp(), arbOutcome(), fc.option(arbConfig(), { nil: undefined }), (op, o, c) => {
      assert.equal(typeof annotateOp(op, c), "string");
      assert.equal(typeof annotateOutcome(o, op, c), "string");
      assert.equal(typeof annotatePermitted({ outcome: o, why: "w" }, op, c), "string");
    }),
    { numRuns: 2000 },
  );
});
