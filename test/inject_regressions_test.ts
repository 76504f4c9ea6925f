/**
 * @module
 * Every bug of the injected-bug catalogue has a regression trace in
 * `corpus/regressions/inject/<name>.json` that diverges from the reference with the
 * bug injected into the core and agrees without it (issue 3).
 */
import assert from "node:assert/strict";
import { MMU_BUGS } from "../src/core/inject_mmu.ts";
import { PMU_BUGS } from "../src/core/inject_pmu.ts";
import { coreFactory } from "../src/core/mod.ts";
import { diffTrace } from "../src/diff.ts";
import { parseTrace } from "../src/trace/parse.ts";
import { formatOp, formatOutcome } from "../src/trace/text.ts";

const DIR = new URL("../corpus/regressions/inject/", import.meta.url);

for (const bug of [...MMU_BUGS, ...PMU_BUGS]) {
  Deno.test(`catalogue ${bug.name}: its regression trace diverges only with the bug`, () => {
    const trace = parseTrace(Deno.readTextFileSync(new URL(`${bug.name}.json`, DIR)));
    assert.ok(trace.comment?.includes(bug.name), "the comment says what the trace proves");
    const clean = diffTrace(trace, coreFactory, { audit: true });
    assert.equal(
      clean.divergence,
      null,
      clean.divergence === null ? "" : `without the bug: ${clean.divergence.kind} at op ` +
        `${clean.divergence.index} ${formatOp(clean.divergence.op)}: ` +
        formatOutcome(clean.divergence.observed),
    );
    const buggy = diffTrace(trace, coreFactory, { inject: [bug.name] });
    assert.notEqual(buggy.divergence, null, "with the bug the core must diverge");
  });
}

Deno.test("catalogue: no regression file without a catalogue entry", () => {
  const names = new Set<string>([...MMU_BUGS, ...PMU_BUGS].map((b) => b.name));
  for (const entry of Deno.readDirSync(DIR)) {
    assert.ok(names.has(entry.name.replace(/\.json$/, "")), `stray file ${entry.name}`);
  }
});
