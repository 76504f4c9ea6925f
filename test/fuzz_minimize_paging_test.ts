/**
 * @module
 * The minimizer's paging and memslot rewrites: a 4-level path folds onto one
 * self-referencing page, and two slots merge into one, while the predicate (here: what the
 * reference returns) keeps holding.
 */
import assert from "node:assert/strict";
import { minimizeTrace } from "../fuzz/reduce/minimize.ts";
import {
  modelBefore,
  pageMoves,
  slotVariants,
  storeFolds,
} from "../fuzz/reduce/minimize_paging.ts";
import { signatureOf } from "../fuzz/campaign/identity.ts";
import { coreFactory } from "../src/core/mod.ts";
import { diffTrace } from "../src/diff.ts";
import { ReferenceBackend } from "../src/reference/mod.ts";
import { defaultConfig } from "../src/trace/config.ts";
import { formatOp, parseOp } from "../src/trace/text.ts";
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

/** A data page (5) mapped at gva 0 through four distinct tables (1, 2, 3 under root 0). */
const FOUR_LEVELS = [
  "slot 0 gpa=0x0 pages=64 hva=0x100000000",
  "write 0x5000 0x1234",
  "write 0x0 0x1007",
  "write 0x1000 0x2007",
  "write 0x2000 0x3007",
  "write 0x3000 0x5007",
];

Deno.test("fuzz: the minimizer folds a 4-level path onto self-referencing entries", () => {
  const t = trace([
    ...FOUR_LEVELS,
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
  const steps = modelBefore(m.trace, m.trace.ops.length - 1).walk(access.gva).steps;
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

Deno.test("fuzz: a direct store after an access folds into the access as a guest store", () => {
  const t = trace([
    "slot 0 gpa=0x0 pages=64 hva=0x100000000",
    "write 0x0 0x1",
    "write 0x8 0x5001",
    "write 0x5008 0x9001",
    "access r 0x201000",
    "write 0x5008 0x3",
  ]);
  const variants = storeFolds(t).map((v) => v.map(formatOp));
  // The leaf of 0x201000 (entry 0x5008) points at the stored page; the access stores.
  const folded = [
    "slot 0 gpa=0x0 pages=64 hva=0x100000000",
    "write 0x0 0x1",
    "write 0x8 0x5001",
    "write 0x5008 0x5001",
    "access w 0x201008 0x3",
  ];
  assert.ok(variants.some((v) => v.join("\n") === folded.join("\n")), variants.join("\n\n"));
  // And with every present entry made writable, for a supervisor store through them.
  const writable = [
    "slot 0 gpa=0x0 pages=64 hva=0x100000000",
    "write 0x0 0x3",
    "write 0x8 0x5003",
    "write 0x5008 0x5003",
    "access w 0x201008 0x3",
  ];
  assert.ok(variants.some((v) => v.join("\n") === writable.join("\n")), writable.join("\n"));
  // Only pairs of an access and a later write are folded.
  assert.deepEqual(storeFolds({ ...t, ops: t.ops.slice(0, 5) }), []);
});

Deno.test("fuzz: a relink through an alias minimizes to the 8-op guest-store form", () => {
  // Build a page table P under T0 (self-map at 0), read through P[1], change P[1] by a
  // direct store (P goes unsync), alias T0 at PML4 index 2, read through the alias twice:
  // the core without 65855ed8b034 links the PDPT page with P unsync and serves P[1]'s
  // stale spte. 9 ops; the guest store through P[1] itself does the build and the change.
  const t = trace([
    "slot 0 gpa=0x0 pages=64 hva=0x100000000",
    "write 0x0 0x3",
    "write 0x8 0x5003",
    "write 0x5008 0x9003",
    "access r 0x201000",
    "write 0x5008 0x3",
    "write 0x10 0x3",
    "access r 0x10000000000",
    "access r 0x10000201000",
  ]);
  const bug = { inject: ["link-unsync-no-sync"] };
  const sig = (x: Trace, o = bug) => {
    const d = diffTrace(x, coreFactory, o).divergence;
    return d === null ? null : signatureOf(d, "core", t.config);
  };
  const want = sig(t)!;
  assert.ok(want.startsWith("mmu/access: core serves a stale translation"), want);
  assert.equal(sig(t, { inject: [] }), null);
  const m = minimizeTrace(t, (x) => sig(x) === want && sig(x, { inject: [] }) === null);
  assert.ok(m.trace.ops.length <= 8, m.trace.ops.map(formatOp).join("\n"));
  assert.ok(m.trace.ops.some((op) => op.op === "access" && op.kind === "write"));
});

Deno.test("fuzz: a table fold re-indexes the accesses that reach the table through an alias", () => {
  const t = trace([
    ...FOUR_LEVELS,
    "write 0x10 0x1007",
    "access r 0x0",
    "access r 0x10000000000",
  ]);
  // Both accesses must keep reading the data page: neither path can go.
  const both = (x: Trace) =>
    lastOutcome(x).includes("0x1234") &&
    lastOutcome({ ...x, ops: x.ops.slice(0, -1) }).includes("0x1234") &&
    x.ops.filter((op) => op.op === "access").length === 2;
  assert.ok(both(t));
  const m = minimizeTrace(t, both);
  const pages = new Set(m.trace.ops.flatMap((op) => op.op === "write" ? [op.gpa >> 12n] : []));
  // T1..T3 folded into T0 (the alias follows); the data page stays, moved down to page 1.
  assert.deepEqual([...pages].sort(), [0n, 1n], m.trace.ops.map(formatOp).join("\n"));
});

Deno.test("fuzz: a root table moves down to page 0 and its cr3 load can then go", () => {
  const t = trace([
    "slot 0 gpa=0x0 pages=16 hva=0x100000000",
    "cr3 0x3000",
    "write 0x3000 0x3007",
    "write 0x3008 0x5007",
    "write 0x5010 0x1234",
    "access r 0x1010",
  ]);
  const moved = pageMoves(t.ops).map((v) => v.map(formatOp).join("\n"));
  assert.ok(
    moved.includes([
      "slot 0 gpa=0x0 pages=16 hva=0x100000000",
      "cr3 0x0",
      "write 0x0 0x7",
      "write 0x8 0x5007",
      "write 0x5010 0x1234",
      "access r 0x1010",
    ].join("\n")),
    moved.join("\n\n"),
  );
  const want = lastOutcome(t);
  assert.match(want, /0x1234/);
  const m = minimizeTrace(t, (x) => lastOutcome(x) === want);
  assert.ok(!m.trace.ops.some((op) => op.op === "cr3"), m.trace.ops.map(formatOp).join("\n"));
});
