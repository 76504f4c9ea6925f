/**
 * @module
 * The reference is total over valid traces (docs/design.md: an exception would be
 * a crash finding): thousands of random traces, uniform over the format and dense over
 * a small guest, never make it throw, and following any permitted branch (with any
 * value of the don't-care bits) is always judged a match.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { ReferenceBackend } from "../src/reference/mod.ts";
import type { Permitted } from "../src/backend.ts";
import { minusPages, pageRunsOf, pagesOf, unionPages } from "../src/trace/pages.ts";
import type { Outcome, PageRuns } from "../src/trace/types.ts";
import { arbConfig, arbTrace } from "../src/trace/_arbitraries.ts";
import { arbDenseOp, DENSE_SETUP } from "../fuzz/gen/arb_dense.ts";

/** Picks a permitted outcome (and random values for its don't-care bits and pages). */
function choose(permitted: readonly Permitted[], r: number): Outcome {
  const p = permitted[r % permitted.length]!;
  const noise = BigInt(r) * 0x9e3779b97f4a7c15n & ((1n << 64n) - 1n);
  const dc = p.dontCare ?? 0n;
  const o = p.outcome;
  if ("value" in o) return { value: (o.value & ~dc) | (noise & dc) };
  // Each don't-care page goes in or out by one noise bit (the pages repeat past 64).
  const some = (pages: PageRuns): PageRuns => {
    const dcPages = [...pagesOf(p.dontCarePages ?? [])];
    const picked = dcPages.filter((_, i) => ((noise >> BigInt(i % 64)) & 1n) === 1n);
    return unionPages(minusPages(pages, p.dontCarePages ?? []), pageRunsOf(picked));
  };
  if ("bitmap" in o) return { bitmap: some(o.bitmap) };
  if ("young" in o) return { young: some(o.young) };
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
  const setup = DENSE_SETUP;
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
