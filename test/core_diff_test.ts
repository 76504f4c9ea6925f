/**
 * @module
 * The core agrees with the reference: thousands of random valid traces (fixed seeds),
 * uniform over the format and dense over a small guest, never make the core throw,
 * never produce an outcome outside the reference's permitted set, and never break an
 * invariant of `audit()` after any op (issue 3, "done means").
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { coreFactory } from "../src/core/mod.ts";
import { diffTrace } from "../src/diff.ts";
import { formatOp, formatOutcome, formatPermitted } from "../src/trace/text.ts";
import { type Trace, TRACE_FORMAT } from "../src/trace/types.ts";
import { mergeConfig } from "../src/trace/config.ts";
import { arbConfig, arbTrace } from "../src/trace/_arbitraries.ts";
import { arbDenseOp, DENSE_SETUP } from "../fuzz/gen/arb_dense.ts";

function check(trace: Trace): void {
  const { divergence: d } = diffTrace(trace, coreFactory, { audit: true });
  if (d === null) return;
  const lines = trace.ops.map((op, i) => `${i === d.index ? ">" : " "} ${i} ${formatOp(op)}`);
  assert.fail(
    `${d.kind} at op ${d.index}: core ${formatOutcome(d.observed)}` +
      (d.invariant === undefined ? "" : ` (invariant: ${d.invariant})`) +
      `\npermitted: ${d.permitted.map(formatPermitted).join(" | ")}\n${lines.join("\n")}`,
  );
}

Deno.test("core: dense random traces agree with the reference and keep every invariant", () => {
  fc.assert(
    fc.property(
      arbConfig(),
      fc.array(arbDenseOp(), { minLength: 1, maxLength: 80 }),
      (config, ops) => {
        check({ format: TRACE_FORMAT, config, ops: [...DENSE_SETUP, ...ops] });
      },
    ),
    { numRuns: 3000, seed: 0xc07e },
  );
});

Deno.test("core: uniform random traces agree with the reference and keep every invariant", () => {
  fc.assert(fc.property(arbTrace({ maxOps: 30 }), check), { numRuns: 2000, seed: 0xc07f });
});

Deno.test("diff: a backend whose audit throws gives an invariant finding, not an exception", () => {
  const throwing = {
    name: "core" as const,
    available: () => null,
    create: () => ({
      name: "core" as const,
      step: () => ({ ok: true as const }),
      audit: (): string[] => {
        throw new Error("rmap walk hit a freed desc");
      },
      close() {},
    }),
  };
  const trace: Trace = {
    format: TRACE_FORMAT,
    config: mergeConfig({}),
    ops: [{ op: "invlpg" as const, gva: 0n }],
  };
  const d = diffTrace(trace, throwing, { audit: true }).divergence;
  assert.equal(d?.kind, "invariant");
  assert.equal(d?.invariant, "audit threw: rmap walk hit a freed desc");
});
