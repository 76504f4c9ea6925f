/**
 * The minimizer's value passes, now declared per op in the op table (`src/trace/ops.ts`),
 * propose exactly the variants, in exactly the order, that `simplerOps` of
 * `fuzz/reduce/minimize.ts` proposed before (`testdata/legacy_simplify.ts`, issue 11): over
 * random ops of every kind the old code knew and over the dense ops the agreement tests
 * use (page-table entries, PTE stores through mappings). The self-test's minimized
 * lengths depend on that order. Two of the old write variants are gone on purpose: the
 * large leaf (bit 7 set) and the 4-byte store widened to 8 grow a trace in the
 * reducer's order (`fuzz/reduce/reduce.ts`); the paging pass makes large leaves instead.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { arbDenseOp } from "../fuzz/gen/arb_dense.ts";
import { simplerOps } from "../fuzz/reduce/minimize.ts";
import { arbOp } from "../src/trace/_arbitraries.ts";
import { formatTrace } from "../src/trace/json.ts";
import { parseTrace } from "../src/trace/parse.ts";
import { defaultConfig } from "../src/trace/config.ts";
import { type Op, OP_KINDS, type OpKind, TRACE_FORMAT } from "../src/trace/types.ts";
import { legacySimplerOps } from "./testdata/legacy_simplify.ts";

const LEGACY_KINDS = OP_KINDS.filter((k): k is OpKind => k !== ("dirtyclear" as OpKind));

/** Whether an old variant of `op` is still proposed (not a large leaf, not a widening). */
function kept(op: Op): (v: Op) => boolean {
  return (v) =>
    !(op.op === "write" && v.op === "write" &&
      (v.size !== op.size || ((v.value & 0x80n) !== 0n && (op.value & 0x80n) === 0n)));
}

/** Ops as comparable text, key order included. */
function text(ops: readonly Op[]): string {
  return JSON.stringify(ops, (_k, v) => typeof v === "bigint" ? `${v.toString(16)}n` : v);
}

/** PTE-like values: frames, attribute bits, PS, NX and reserved bits. */
function arbPteValue(): fc.Arbitrary<bigint> {
  return fc.tuple(
    fc.bigInt({ min: 0n, max: (1n << 40n) - 1n }),
    fc.bigInt({ min: 0n, max: 0xfffn }),
    fc.constantFrom(0n, 1n << 63n, 1n << 51n, 1n << 52n, 3n << 62n),
  ).map(([frame, low, high]) => (frame << 12n) | low | high);
}

Deno.test("op table: the value passes propose the old variants in the old order", () => {
  const arb = fc.oneof(
    arbOp({ kinds: LEGACY_KINDS }),
    arbDenseOp(),
    fc.record({ gpa: fc.bigInt({ min: 0n, max: 0xfff8n }), value: arbPteValue() }, {
      noNullPrototype: true,
    }).chain(({ gpa, value }) =>
      fc.constantFrom<Op>(
        { op: "write", gpa: gpa & ~7n, size: 8, value },
        { op: "write", gpa: gpa & ~7n, size: 4, value: value & 0xffff_ffffn },
        { op: "access", gva: gpa << 12n, kind: "write", user: true, size: 8, value },
        { op: "wrmsr", msr: 0x186, value },
      )
    ),
  );
  let variants = 0;
  fc.assert(
    fc.property(arb, (op) => {
      const now = simplerOps(op);
      assert.equal(text(now), text(legacySimplerOps(op).filter(kept(op))), text([op]));
      variants += now.length;
    }),
    { numRuns: 4000 },
  );
  assert.ok(variants > 4000, `only ${variants} variants were compared`);
});

Deno.test("op table: every proposed variant is a valid op of the same kind", () => {
  fc.assert(
    fc.property(fc.oneof(arbOp(), arbDenseOp()), (op) => {
      for (const s of simplerOps(op)) {
        assert.equal(s.op, op.op);
        assert.notEqual(text([s]), text([op]), "a variant equal to the op");
        const trace = { format: TRACE_FORMAT, config: defaultConfig(), ops: [s] } as const;
        parseTrace(formatTrace({ ...trace, ops: [s] }));
      }
    }),
    { numRuns: 1000 },
  );
});
