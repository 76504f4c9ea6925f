/**
 * @module
 * The reference is total over valid traces (DESIGN.md section 2: an exception would be
 * a crash finding): thousands of random traces, uniform over the format and dense over
 * a small guest, never make it throw, and following any permitted branch (with any
 * value of the don't-care bits) is always judged a match.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { ReferenceBackend } from "../src/reference/mod.ts";
import type { Op, Outcome, Size } from "../src/trace/types.ts";
import { arbConfig, arbTrace } from "./arbitraries.ts";

/** Ops over a small guest: slots at gpa 0-64 KiB, tables at 0x1000-0x8000, gvas < 4 MiB. */
function arbDenseOp(): fc.Arbitrary<Op> {
  // Mostly the entries the gvas below use (PD 0x3000-0x3008, PT 0x4000-0x4038), else
  // anywhere in the first 64 KiB.
  const gpa = fc.oneof(
    fc.integer({ min: 0, max: 3 }).map((q) => 0x4000n + BigInt(q * 8)),
    fc.integer({ min: 0, max: 1 }).map((q) => 0x3000n + BigInt(q * 8)),
    fc.integer({ min: 0, max: 15 }).map((frame) => BigInt(frame) << 12n),
    fc.integer({ min: 0, max: 0x1fff }).map((q) => BigInt(q * 8)),
  );
  const size = fc.constantFrom<Size>(1, 2, 4, 8);
  const pte = fc.tuple(
    fc.integer({ min: 0, max: 15 }),
    fc.constantFrom(0n, 0x1n, 0x3n, 0x5n, 0x7n, 0x27n, 0x67n, 0x87n, 0xe7n),
    fc.constantFrom(0n, 1n << 63n, 1n << 51n, 1n << 8n, 1n << 13n),
  ).map(([frame, low, high]) => (BigInt(frame) << 12n) | low | high);
  const gva = fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 3 }))
    .map(([pd, pt]) => (BigInt(pd) << 21n) | (BigInt(pt) << 12n));
  return fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        op: fc.constant("write" as const),
        gpa,
        size: fc.constant<Size>(8),
        value: pte,
      }, { noNullPrototype: true }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        op: fc.constant("write" as const),
        gpa,
        size,
        value: fc.bigInt({ min: 0n, max: 0xffffn }),
      }, { noNullPrototype: true }).map((w) => ({ ...w, gpa: w.gpa - (w.gpa % BigInt(w.size)) })),
    },
    {
      weight: 2,
      arbitrary: fc.record({ op: fc.constant("read" as const), gpa, size: fc.constant<Size>(8) }, {
        noNullPrototype: true,
      }),
    },
    {
      weight: 5,
      arbitrary: fc.record({
        gva,
        kind: fc.constantFrom("read" as const, "write" as const, "fetch" as const),
        user: fc.boolean(),
      }, { noNullPrototype: true }).map(({ gva, kind, user }): Op =>
        kind === "write"
          ? { op: "access", gva, kind, user, size: 8, value: 0x5an }
          : { op: "access", gva, kind, user, size: 8 }
      ),
    },
    { weight: 1, arbitrary: gva.map((g): Op => ({ op: "invlpg", gva: g })) },
    {
      weight: 1,
      arbitrary: fc.constantFrom<Op>({ op: "cr3", gpa: 0x1000n }, { op: "cr3", gpa: 0x2000n }),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom<Op>({ op: "ctl", wp: false }, { op: "ctl", wp: true }, {
        op: "ctl",
        smap: true,
      }, { op: "ctl", ac: true }),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom<Op>(
        { op: "slot", id: 0, gpa: 0n, pages: 16, hva: 0x100000000n, flags: [] },
        { op: "slot", id: 0, gpa: 0n, pages: 16, hva: 0x100000000n, flags: ["log"] },
        { op: "slot", id: 0, gpa: 0n, pages: 0, hva: 0x100000000n, flags: [] },
        { op: "slot", id: 0, gpa: 0x10000n, pages: 16, hva: 0x100000000n, flags: [] },
        { op: "slot", id: 1, gpa: 0x8000n, pages: 8, hva: 0x200000000n, flags: ["ro"] },
        { op: "slot", id: 1, gpa: 0x8000n, pages: 0, hva: 0x200000000n, flags: [] },
        { op: "dirtylog", id: 0 },
        { op: "age", gpa: 0n, pages: 16 },
        { op: "discard", hva: 0x100004000n, pages: 1 },
      ),
    },
  );
}

/** Picks a permitted outcome (and random values for its don't-care bits). */
function choose(permitted: { outcome: Outcome; dontCare?: bigint }[], r: number): Outcome {
  const p = permitted[r % permitted.length]!;
  const noise = BigInt(r) * 0x9e3779b97f4a7c15n & ((1n << 64n) - 1n);
  const dc = p.dontCare ?? 0n;
  const o = p.outcome;
  if ("value" in o) return { value: (o.value & ~dc) | (noise & dc) };
  if ("bitmap" in o) return { bitmap: (o.bitmap & ~dc) | (noise & dc) };
  if ("young" in o) return { young: (o.young & ~dc) | (noise & dc) };
  return o;
}

Deno.test("reference: random valid traces never make it throw", () => {
  fc.assert(
    fc.property(arbTrace({ maxOps: 30 }), (trace) => {
      const ref = new ReferenceBackend(trace.config);
      for (const op of trace.ops) ref.step(op);
    }),
    { numRuns: 2000, seed: 0x5eed },
  );
});

Deno.test("reference: dense random traces never throw, and every permitted branch matches", () => {
  const setup: Op[] = [
    { op: "slot", id: 0, gpa: 0n, pages: 16, hva: 0x100000000n, flags: [] },
    { op: "write", gpa: 0x1000n, size: 8, value: 0x2007n },
    { op: "write", gpa: 0x2000n, size: 8, value: 0x3007n },
    { op: "write", gpa: 0x3000n, size: 8, value: 0x4007n },
    { op: "cr3", gpa: 0x1000n },
  ];
  let multi = 0;
  fc.assert(
    fc.property(
      arbConfig(),
      fc.array(arbDenseOp(), { minLength: 5, maxLength: 60 }),
      fc.array(fc.nat(), { minLength: 65, maxLength: 65 }),
      (config, ops, picks) => {
        const ref = new ReferenceBackend(config);
        [...setup, ...ops].forEach((op, i) => {
          const verdict = ref.judge(op, (permitted) => {
            if (permitted.length > 1 || permitted.some((p) => p.why.includes("stale"))) multi++;
            return choose([...permitted], picks[i]!);
          });
          assert.notEqual(verdict.match, -1, `op ${i} did not match its own permitted set`);
        });
      },
    ),
    { numRuns: 3000, seed: 0xacce55 },
  );
  console.log(`ops judged with several permitted outcomes or stale branches: ${multi}`);
  assert.ok(multi > 0, "the dense traces must reach permitted sets with several outcomes");
});
