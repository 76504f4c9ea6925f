/**
 * @module
 * A fast-check generator of ops over a small guest (tables at 0x1000-0x4000, frames in
 * the first 64 KiB, gvas below 4 MiB), dense enough that PTE rewrites, stale
 * translations, memslot changes over page tables, dirty logs and discards meet often.
 * Tests of totality and agreement and `deno task kvm-conformance` use it; the fuzzer's
 * campaigns have their own generators (`gen/`).
 */
import fc from "fast-check";
import type { Op, Size } from "../../src/trace/types.ts";

/** Slot 0 over gpa 0-64 KiB with PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000. */
export const DENSE_SETUP: readonly Op[] = [
  { op: "slot", id: 0, gpa: 0n, pages: 16, hva: 0x100000000n, flags: [] },
  { op: "write", gpa: 0x1000n, size: 8, value: 0x2007n },
  { op: "write", gpa: 0x2000n, size: 8, value: 0x3007n },
  { op: "write", gpa: 0x3000n, size: 8, value: 0x4007n },
  { op: "cr3", gpa: 0x1000n },
];

/** Ops over a small guest: slots at gpa 0-64 KiB, tables at 0x1000-0x8000, gvas < 4 MiB. */
export function arbDenseOp(): fc.Arbitrary<Op> {
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
