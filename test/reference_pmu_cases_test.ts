/**
 * @module
 * The shared suite's PMU cases (`conformance/pmu_cases.ts`) run against a bare
 * {@linkcode ReferencePmu}, the reference's vPMU model on its own (the whole reference
 * backend runs them in `conformance_reference_test.ts`), and the case list's own rules:
 * unique names, a source for each, the PMU area. Moved here from
 * `src/reference/pmu_test.ts`, which must not import `test/` (`layers_test.ts`).
 */
import assert from "node:assert/strict";
import { outcomesEqual } from "../src/trace/outcome.ts";
import { parseConfig } from "../src/trace/parse.ts";
import { formatOutcome, parseExpect, parseOp } from "../src/trace/text.ts";
import type { Outcome } from "../src/trace/types.ts";
import { ReferencePmu } from "../src/reference/pmu.ts";
import { pmuCases } from "./conformance/pmu_cases.ts";
import type { ConformanceCase } from "./conformance/case.ts";

/**
 * Runs one conformance case against a bare ReferencePmu: the PMU ops go to it, `ctl`
 * only tracks CR4.PCE, and a non-PMU MSR #GPs (the cases use PMU MSRs only).
 */
function runCase(c: ConformanceCase): void {
  const config = parseConfig(c.config ?? {});
  const pmu = new ReferencePmu(config);
  let pce = config.cr4.pce;
  c.steps.forEach(([text, expect], i) => {
    const op = parseOp(text);
    let outcome: Outcome;
    switch (op.op) {
      case "wrmsr":
        outcome = pmu.wrmsr(op.msr, op.value);
        break;
      case "rdmsr":
        outcome = pmu.rdmsr(op.msr) ?? { gp: true };
        break;
      case "rdpmc":
        outcome = pmu.rdpmc(op.ecx, op.user, pce);
        break;
      case "filter":
        outcome = pmu.filter(op);
        break;
      case "events":
        outcome = pmu.events(op);
        break;
      case "pmis":
        outcome = pmu.pmis();
        break;
      case "ctl":
        pce = op.pce ?? pce;
        outcome = { ok: true };
        break;
      default:
        throw new TypeError(`Cannot run step ${i} of "${c.name}": "${text}" is not a PMU op`);
    }
    const expected = parseExpect(expect);
    if (expected === "*") return;
    assert.ok(
      expected.some((e) => outcomesEqual(e, outcome)),
      `step ${i} "${text}": got ${formatOutcome(outcome)}, expected ${expect}`,
    );
  });
}

Deno.test("reference: the PMU conformance cases pass against ReferencePmu", async (t) => {
  for (const c of pmuCases) {
    await t.step(c.name, () => runCase(c));
  }
});

Deno.test("reference: the PMU conformance cases have unique names, sources and PMU areas", () => {
  assert.ok(pmuCases.length >= 40, `only ${pmuCases.length} cases`);
  assert.equal(new Set(pmuCases.map((c) => c.name)).size, pmuCases.length);
  for (const c of pmuCases) {
    assert.notEqual(c.source.trim(), "", c.name);
    assert.deepEqual(c.areas, ["pmu"], c.name);
  }
});
