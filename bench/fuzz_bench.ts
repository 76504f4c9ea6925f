/**
 * Benchmarks of the fuzzer's hot path (`deno bench bench/fuzz_bench.ts`): trace
 * generation alone, and generation + diff against the reference for the reference
 * itself and for the core (end-to-end diffed throughput per core is `fuzz --json`'s
 * `opsPerSec`). Each iteration is one 64-run slice of a fixed seed.
 */
import { Engine } from "../fuzz/campaign/engine.ts";
import { generateRun } from "../fuzz/gen/generate.ts";
import { coreFactory } from "../src/core/mod.ts";
import { referenceFactory } from "../src/reference/mod.ts";

const RUNS = 64;
let index = 0;

Deno.bench("fuzz: generate 64 traces", { group: "fuzz" }, () => {
  for (let i = 0; i < RUNS; i++) generateRun(1, index++);
});

const vsReference = new Engine(referenceFactory, {
  seed: 1,
  constraints: {},
  diff: {},
  backend: "reference",
  shrinkSeconds: 0,
});
Deno.bench("fuzz: generate + diff 64 traces, reference vs reference", { group: "fuzz" }, () => {
  const s = index;
  index += RUNS;
  vsReference.runSlice({ start: s, end: s + RUNS, offset: 0, stride: 1 });
});

const vsCore = new Engine(coreFactory, {
  seed: 1,
  constraints: {},
  diff: {},
  backend: "core",
  shrinkSeconds: 0,
});
Deno.bench("fuzz: generate + diff 64 traces, core vs reference", {
  group: "fuzz",
  baseline: true,
}, () => {
  const s = index;
  index += RUNS;
  vsCore.runSlice({ start: s, end: s + RUNS, offset: 0, stride: 1 });
});
