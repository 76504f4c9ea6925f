/**
 * Tests of the campaign and the corpus recording: worker-count independence, findings
 * recorded once with their hits, concurrent hit updates, a stop flag.
 */
import assert from "node:assert/strict";
import { type CampaignResult, runCampaign } from "../fuzz/campaign/campaign.ts";
import { addHits, type FindingContext, recordFinding } from "../fuzz/campaign/corpus.ts";
import { Engine, type RunFinding } from "../fuzz/campaign/engine.ts";
import { generateRun } from "../fuzz/gen/generate.ts";
import { coreFactory } from "../src/core/mod.ts";
import { traceToJson } from "../src/trace/json.ts";
import { buggyFactory } from "../fuzz/testing/buggy.ts";
import { listFindings, readFinding } from "../src/corpus/store.ts";

const BUGGY = {
  name: "core",
  module: new URL("../fuzz/testing/buggy.ts", import.meta.url).href,
  export: "buggyFactory",
};

function campaign(workers: number, runs: number, seed = 5): Promise<CampaignResult> {
  return runCampaign({
    engine: {
      seed,
      constraints: { areas: ["memslot", "pmu"] },
      diff: {},
      backend: "core",
      shrinkSeconds: 1,
    },
    workers,
    backend: BUGGY,
    factory: buggyFactory,
    runs,
  });
}

function shape(r: CampaignResult) {
  return {
    runs: r.runs,
    ops: r.ops,
    coverage: r.coverageEvents,
    pool: r.pool,
    findings: r.findings.map((f) => [f.first.signature, f.first.index, f.hits]),
  };
}

Deno.test("fuzz: a campaign's results do not depend on the worker count", async () => {
  const inline = await campaign(0, 2500);
  const one = await campaign(1, 2500);
  const two = await campaign(2, 2500);
  assert.deepEqual(shape(one), shape(inline));
  assert.deepEqual(shape(two), shape(inline));
  assert.equal(inline.runs, 2500);
  // The buggy backend's two bugs (fuzz/testing/buggy.ts): a stale MMIO translation, and
  // RDPMC with ECX bit 31 (one finding per counter class it shows through).
  const sigs = inline.findings.map((f) => f.first.signature);
  assert.ok(sigs.includes("mmu/access: core translates, architecture mmio"), sigs.join("\n"));
  assert.ok(sigs.some((s) => s.startsWith("pmu/rdpmc")), sigs.join("\n"));
  assert.ok(
    sigs.every((s) => s.startsWith("mmu/access: core translates") || s.startsWith("pmu/rdpmc")),
    sigs.join("\n"),
  );
  assert.ok(inline.findings.every((f) => f.first.minimized !== undefined));
});

Deno.test("fuzz: a raised stop flag ends a campaign early and cleanly", async () => {
  const stop = new SharedArrayBuffer(4);
  Atomics.store(new Int32Array(stop), 0, 1);
  const r = await runCampaign({
    engine: { seed: 1, constraints: {}, diff: {}, backend: "core" },
    workers: 0,
    backend: BUGGY,
    factory: buggyFactory,
    runs: 10_000,
  }, stop);
  assert.equal(r.interrupted, true);
  assert.equal(r.runs, 0);
});

function runFinding(signature: string, id: string): RunFinding {
  const trace = { format: "shadowfuzz.trace/1", config: {}, ops: [{ op: "pmis" }] };
  return {
    index: 0,
    signature,
    id,
    title: `pmis: ${signature}`,
    trace,
    divergence: { kind: "divergence", opIndex: 0, observed: { count: 1 }, permitted: [] },
  };
}

const CTX: FindingContext = {
  seed: "1",
  backend: "core",
  harness: "unknown",
  now: "2026-01-01T00:00:00.000Z",
};

Deno.test("fuzz: the same signature found again updates one file, losing no hit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const f = runFinding("pmu/pmis: core=count, permitted={count}", "00112233aabbccdd");
    assert.equal(await recordFinding(dir, f, 3, CTX), true);
    assert.equal(
      await recordFinding(dir, f, 2, { ...CTX, seed: "9", now: "2026-02-01T00:00:00.000Z" }),
      false,
    );
    // Twenty concurrent writers, one hit each.
    await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) => addHits(dir, f.id, 1, { ...CTX, seed: String(100 + i) }),
      ),
    );
    const { findings, errors } = await listFindings(dir);
    assert.deepEqual(errors, []);
    assert.equal(findings.length, 1);
    const stored = (await readFinding(dir, f.id))!;
    assert.equal(stored.hits, 25);
    assert.equal(stored.lastSeen, "2026-02-01T00:00:00.000Z");
    assert.equal(stored.firstSeen, "2026-01-01T00:00:00.000Z");
    assert.equal(stored.seeds.length, 20, "at most 20 seeds kept");
    assert.equal(stored.area, "pmu");
    assert.equal(stored.status, "new");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("campaign: without guidance every run is a fresh trace, and coverage is still reported", () => {
  const options = {
    seed: 3,
    constraints: {},
    diff: {},
    backend: "core" as const,
    shrinkSeconds: 0,
  };
  const pure = new Engine(coreFactory, { ...options, guide: false });
  const guided = new Engine(coreFactory, options);
  // A non-empty pool: the guided engine draws mutants from it, the pure one never does.
  const first = pure.runSlice({ start: 0, end: 400, offset: 0, stride: 1 });
  assert.ok(first.interesting.length > 0, "coverage events are reported without guidance");
  const update = { pool: first.interesting.map((i) => i.choices), events: [], signatures: [] };
  pure.update(update);
  guided.update(update);
  let mutants = 0;
  for (let i = 1024; i < 1124; i++) {
    const fresh = traceToJson(generateRun(3, i).trace);
    assert.deepEqual(traceToJson(pure.traceOf(i).trace), fresh, `run ${i}`);
    if (guided.traceOf(i).choices !== null) mutants++;
  }
  assert.ok(mutants > 0 && mutants < 100, `guided mutants in 100 runs: ${mutants}`);
});
