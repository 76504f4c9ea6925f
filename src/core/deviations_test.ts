import assert from "node:assert/strict";
import { diffTrace } from "../diff.ts";
import { traceFromJson } from "../trace/parse.ts";
import { coreFactory } from "./mod.ts";
import { DEVIATION_NAMES, DEVIATIONS } from "./deviations.ts";

const DIR = new URL("../../corpus/deviations/", import.meta.url);

function load(name: string) {
  return traceFromJson(JSON.parse(Deno.readTextFileSync(new URL(`${name}.json`, DIR))));
}

Deno.test("deviations: every known deviation has its trace in corpus/deviations/", () => {
  const files = [...Deno.readDirSync(DIR)].map((e) => e.name.replace(/\.json$/, "")).sort();
  assert.deepEqual(files, DEVIATIONS.map((d) => d.name).sort());
});

Deno.test("deviations: the uninjected core diverges on each trace; the correction alone agrees", () => {
  for (const { name } of DEVIATIONS) {
    const trace = load(name);
    const plain = diffTrace(trace, coreFactory);
    assert.notEqual(plain.divergence, null, `${name}: the uninjected core agrees`);
    const fixed = diffTrace(trace, coreFactory, { fix: [name] });
    assert.equal(fixed.divergence, null, `${name}: still diverges with the correction`);
  }
});

Deno.test("deviations: each correction explains only its own trace", () => {
  for (const { name: trace } of DEVIATIONS) {
    for (const { name: fix } of DEVIATIONS) {
      if (fix === trace) continue;
      const r = diffTrace(load(trace), coreFactory, { fix: [fix] });
      assert.notEqual(r.divergence, null, `correcting ${fix} hides ${trace}`);
    }
  }
});

Deno.test("deviations: an unknown correction is refused by name", () => {
  assert.ok(!DEVIATION_NAMES.has("no-such"));
  assert.throws(
    () => coreFactory.create(load(DEVIATIONS[0].name).config, { fix: ["no-such"] }),
    /Cannot correct deviation "no-such"/,
  );
});
