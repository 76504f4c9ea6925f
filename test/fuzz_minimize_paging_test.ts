/**
 * @module
 * The minimizer's paging and memslot rewrites: a 4-level path folds onto one
 * self-referencing page, and two slots merge into one, while the predicate (here: what the
 * reference returns) keeps holding.
 */
import assert from "node:assert/strict";
import { minimizeTrace } from "../fuzz/minimize.ts";
import { memoryBefore, slotVariants, walk } from "../fuzz/minimize_paging.ts";
import { ReferenceBackend } from "../src/reference/mod.ts";
import { defaultConfig } from "../src/trace/config.ts";
import { parseOp } from "../src/trace/text.ts";
import { type Trace, TRACE_FORMAT } from "../src/trace/types.ts";

function trace(lines: string[]): Trace {
  return { format: TRACE_FORMAT, config: defaultConfig(), ops: lines.map(parseOp) };
}

/** The text of the outcome of the last op on the reference. */
function lastOutcome(t: Trace): string {
  const ref = new ReferenceBackend(t.config, { strict: false });
  let last = "";
  for (const op of t.ops) {
    last = JSON.stringify(
      ref.step(op),
      (_k, v) => typeof v === "bigint" ? `0x${v.toString(16)}` : v,
    );
  }
  return last;
}

Deno.test("fuzz: the minimizer folds a 4-level path onto self-referencing entries", () => {
  const t = trace([
    "slot 0 gpa=0x0 pages=64 hva=0x100000000",
    "write 0x5000 0x1234",
    "write 0x0 0x1007",
    "write 0x1000 0x2007",
    "write 0x2000 0x3007",
    "write 0x3000 0x5007",
    "access r 0x0",
  ]);
  const want = lastOutcome(t);
  assert.match(want, /1234/);
  const m = minimizeTrace(t, (c) => lastOutcome(c) === want);
  const writes = m.trace.ops.filter((op) => op.op === "write");
  // The data write, one self-referencing entry serving PML4, PDPT and PD, and the leaf.
  assert.equal(writes.length, 3);
  const access = m.trace.ops.at(-1)!;
  assert.ok(access.op === "access");
  const steps = walk(memoryBefore(m.trace.ops, m.trace.ops.length - 1), 0n, access.gva);
  assert.equal(steps.length, 4);
  assert.equal(new Set(steps.map((s) => s.table)).size, 1);
});

Deno.test("fuzz: two slots merge into one over both ranges, created where the first was", () => {
  const t = trace([
    "slot 0 gpa=0x0 pages=1 hva=0x100000000",
    "write 0x0 0x7",
    "slot 1 gpa=0x200000 pages=512 hva=0x200000000 log",
    "dirtylog 1",
  ]);
  const merged = slotVariants(t.ops).map((ops) =>
    ops.map((op) => op.op === "slot" ? `${op.id}@${op.gpa}:${op.pages}` : op.op)
  );
  assert.deepEqual(merged[0], ["1@0:1024", "write", "dirtylog"]);
});
