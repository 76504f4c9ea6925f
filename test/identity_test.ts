/**
 * Tests of a finding's identity (docs/identity.md, fuzz/campaign/identity.ts): what separates two
 * bugs, what keeps one bug under one id, and that a campaign with a planted bug behind a
 * known coarse signature reports it as new.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { catalogue } from "../fuzz/campaign/catalogue.ts";
import { Engine } from "../fuzz/campaign/engine.ts";
import { explainDeviation, identify } from "../fuzz/campaign/identity.ts";
import type { BackendFactory } from "../src/backend.ts";
import { coreFactory } from "../src/core/mod.ts";
import { DEVIATIONS } from "../src/core/deviations.ts";
import { listFindings } from "../src/corpus/store.ts";
import { generateRun } from "../fuzz/gen/generate.ts";
import { diffTrace } from "../src/diff.ts";
import { defaultConfig } from "../src/trace/config.ts";
import { traceFromJson } from "../src/trace/parse.ts";
import type { Op } from "../src/trace/types.ts";

const ROOT = new URL("../", import.meta.url).pathname;

function load(path: string) {
  return traceFromJson(JSON.parse(Deno.readTextFileSync(join(ROOT, path))));
}

Deno.test("identity: the catalogue's regression traces give one id per bug", () => {
  const byId = new Map<string, string[]>();
  for (const bug of catalogue()) {
    const trace = load(`corpus/regressions/inject/${bug.name}.json`);
    const d = diffTrace(trace, coreFactory, { inject: [bug.name] }).divergence;
    assert.ok(d !== null, `${bug.name}: its regression trace does not diverge`);
    const id = identify(d, "core", trace.config);
    byId.set(id.signature, [...(byId.get(id.signature) ?? []), bug.name]);
  }
  const shared = [...byId].filter(([, bugs]) => bugs.length > 1);
  assert.deepEqual(shared, [], "catalogue bugs that share an identity");
});

Deno.test("identity: no planted bug's regression trace has a known deviation's identity", async () => {
  const { findings } = await listFindings(join(ROOT, "corpus"));
  const known = new Set(findings.map((f) => f.signature));
  for (const bug of catalogue()) {
    const trace = load(`corpus/regressions/inject/${bug.name}.json`);
    const d = diffTrace(trace, coreFactory, { inject: [bug.name] }).divergence!;
    const id = identify(d, "core", trace.config);
    assert.ok(!known.has(id.signature), `${bug.name} looks like a corpus finding: ${id.signature}`);
    // And no known deviation's correction explains it.
    const engine = new Engine(coreFactory, {
      seed: 0,
      constraints: {},
      diff: { inject: [bug.name] },
      backend: "core",
    });
    assert.equal(engine.explain(trace, d), undefined, `${bug.name} is taken for a deviation`);
  }
});

Deno.test("identity: each known deviation's trace is explained by it and has a corpus finding", async () => {
  const { findings } = await listFindings(join(ROOT, "corpus"));
  for (const { name } of DEVIATIONS) {
    const trace = load(`corpus/deviations/${name}.json`);
    const d = diffTrace(trace, coreFactory).divergence!;
    const engine = new Engine(coreFactory, { seed: 0, constraints: {}, diff: {}, backend: "core" });
    assert.equal(engine.explain(trace, d), name);
    assert.ok(
      findings.some((f) => f.deviation === name),
      `no corpus finding is marked with deviation ${name}`,
    );
  }
});

Deno.test("identity: values, addresses and access kinds do not split a signature", () => {
  const config = defaultConfig();
  const access = (gva: bigint, kind: "read" | "write", user: boolean): Op =>
    kind === "write"
      ? { op: "access", gva, kind, user, size: 8, value: 0n }
      : { op: "access", gva, kind, user, size: 8 };
  const a = identify(
    {
      kind: "divergence",
      index: 4,
      op: access(0x400000n, "read", false),
      observed: { value: 0x1234n },
      permitted: [{ outcome: { pf: { code: 0x1, cr2: 0x400000n } }, why: "current walk" }],
      path: ["access-hit", "rmap-single", "prefetch"],
    },
    "core",
    config,
  );
  const b = identify(
    {
      kind: "divergence",
      index: 9,
      op: access(0x7f000000n, "write", true),
      observed: { ok: true },
      permitted: [{ outcome: { pf: { code: 0x7, cr2: 0x7f000000n } }, why: "current walk" }],
      path: ["access-hit", "rmap-desc"],
    },
    "core",
    config,
  );
  assert.equal(
    a.signature,
    "mmu/access: core translates, architecture protection #PF | path access-hit",
  );
  assert.equal(a.signature, b.signature);
  assert.match(a.title, /core 0x1234, architecture #PF 0x1 \(P\)/);
  // A not-present fault is another class.
  const c = identify(
    {
      kind: "divergence",
      index: 4,
      op: access(0x400000n, "read", false),
      observed: { value: 0x1234n },
      permitted: [{ outcome: { pf: { code: 0x0, cr2: 0x400000n } }, why: "current walk" }],
      path: ["access-hit"],
    },
    "core",
    config,
  );
  assert.notEqual(c.signature, a.signature);
});

Deno.test("identity: MSRs by register class, RDPMC by counter class", () => {
  const config = defaultConfig();
  const rd = (msr: number) =>
    identify(
      {
        kind: "divergence",
        index: 0,
        op: { op: "rdmsr", msr },
        observed: { value: 3n },
        permitted: [{ outcome: { value: 1n }, why: "" }],
      },
      "core",
      config,
    ).signature;
  assert.equal(rd(0x38f), "pmu/rdmsr PERF_GLOBAL_CTRL: core value bits 1 set");
  assert.equal(rd(0xc1), rd(0xc2), "PMC0 and PMC1 are one class");
  const rdpmc = (ecx: number) =>
    identify(
      {
        kind: "divergence",
        index: 0,
        op: { op: "rdpmc", ecx, user: false },
        observed: { value: 0n },
        permitted: [{ outcome: { gp: true }, why: "" }],
      },
      "core",
      config,
    ).signature;
  // The reserved types are one class (what a core read tells the decoding bugs apart,
  // see below), and so is an index past the GP or the fixed counters (one check in KVM).
  assert.equal(rdpmc(0x8000_0000), rdpmc(0x0001_0000), "fast and unknown types are one class");
  assert.equal(
    rdpmc(0x8000_0000),
    "pmu/rdpmc reserved type: core value, architecture #GP",
    "without history nothing says what the core read",
  );
  assert.equal(rdpmc(0x4000_0003), rdpmc(0x0000_0004), "an index past either type's counters");
  assert.notEqual(rdpmc(0x4000_0000), rdpmc(0x8000_0000), "a reserved type and a valid one differ");
});

/** A trace from JSON-style ops on a config (`{}` is the default Intel machine). */
function traceOf(config: Record<string, unknown>, ops: Record<string, unknown>[]) {
  return traceFromJson({ format: "shadowfuzz.trace/1", config, ops });
}

/** The signature of the first divergence of `trace` with `bug` planted. */
function signatureWith(trace: ReturnType<typeof traceOf>, bug: string): string {
  const d = diffTrace(trace, coreFactory, { inject: [bug] }).divergence;
  assert.ok(d !== null, `${bug}: the trace does not diverge`);
  return identify(d, "core", trace.config).signature;
}

Deno.test("identity: RDPMC decoding bugs that accept one ECX differ by what the core read", () => {
  // Intel ECX 0x80000000 ("fast", a reserved type since 5728a4a0ea79) with GP counter 0
  // above 32 bits: the fast read returns its low half, the unknown-type read all of it.
  const fast = traceOf({}, [
    { op: "wrmsr", msr: "0x4c1", value: "0x123456789" },
    { op: "rdpmc", ecx: "0x80000000", user: false },
  ]);
  const a = signatureWith(fast, "rdpmc-fast-intel");
  const b = signatureWith(fast, "rdpmc-unknown-type");
  assert.notEqual(a, b);
  assert.match(a, /reads the low 32 bits of GP counter ECX\[15:0\]/);
  assert.match(b, /reads GP counter ECX\[15:0\]/);
  // ECX 0xC0000000 with GP counter 0 and fixed counter 0 apart: bit 30 as a flag reads
  // the fixed counter, an unknown type reads the GP one, the fast read the fixed one's
  // low half: three bugs, three ids.
  const fixed = traceOf({}, [
    { op: "wrmsr", msr: "0x4c1", value: "0x7" },
    { op: "wrmsr", msr: "0x309", value: "0x100000005" },
    { op: "rdpmc", ecx: "0xc0000000", user: false },
  ]);
  const ids = ["rdpmc-fast-intel", "rdpmc-type-flag", "rdpmc-unknown-type"].map((bug) =>
    signatureWith(fixed, bug)
  );
  assert.equal(new Set(ids).size, 3, ids.join("\n"));
  // AMD ECX 0x80000000: the fast read (d652981db08f) returns counter 0's low half,
  // ignoring bits 31:30 (ecb490770ad4) all of it.
  const amd = traceOf({ vendor: "amd", pmu: { version: 1 } }, [
    { op: "wrmsr", msr: "0xc0010004", value: "0x100000007" },
    { op: "rdpmc", ecx: "0x80000000", user: false },
  ]);
  const c = signatureWith(amd, "rdpmc-fast-amd");
  const e = signatureWith(amd, "rdpmc-amd-ignore-31-30");
  assert.notEqual(c, e);
  assert.match(c, /low 32 bits of counter/);
});

Deno.test("identity: one decoding or width bug over other values and ECX gives one id", () => {
  // rdpmc-unknown-type reads GP counter ECX[15:0] whatever reserved type ECX names.
  const unknown = [
    ["0x10000", "0x5"],
    ["0x20000001", "0x77"],
    ["0x80000002", "0xabcdef"],
    ["0xc0000000", "0x3"],
  ].map(([ecx, value]) => {
    const index = Number(ecx) & 0xffff;
    return signatureWith(
      traceOf({}, [
        { op: "wrmsr", msr: `0x${(0x4c1 + index).toString(16)}`, value },
        { op: "rdpmc", ecx, user: false },
      ]),
      "rdpmc-unknown-type",
    );
  });
  assert.equal(new Set(unknown).size, 1, unknown.join("\n"));
  // rdpmc-index-off-by-one past the GP and past the fixed counters, on Intel and AMD.
  const past = [
    [{}, "0x4"],
    [{}, "0x40000003"],
    [{ vendor: "amd", pmu: { version: 1 } }, "0x4"],
  ].map(([config, ecx]) =>
    signatureWith(
      traceOf(config as Record<string, unknown>, [{ op: "rdpmc", ecx, user: false }]),
      "rdpmc-index-off-by-one",
    )
  );
  assert.equal(new Set(past).size, 1, past.join("\n"));
  // legacy-no-sign-extend: a PMC0 write of 0x80000000 read back at once, and one of
  // 0xfffffff8 read after 16 events (the architecture's counter wraps, the core's
  // carries into bit 32): both are bit 31 not sign-extended.
  const legacy = [
    [{ op: "wrmsr", msr: "0xc1", value: "0x80000000" }],
    [
      { op: "wrmsr", msr: "0x186", value: "0x4300c0" },
      { op: "wrmsr", msr: "0x38f", value: "0x1" },
      { op: "wrmsr", msr: "0xc1", value: "0xfffffff8" },
      { op: "events", event: 0xc0, umask: 0, count: 16, user: false },
    ],
  ].map((ops) =>
    signatureWith(traceOf({}, [...ops, { op: "rdmsr", msr: "0xc1" }]), "legacy-no-sign-extend")
  );
  assert.equal(new Set(legacy).size, 1, legacy.join("\n"));
  assert.match(legacy[0]!, /bit 31 not sign-extended \| after wrmsr PMC/);
});

Deno.test("identity: a planted bug behind a known coarse signature is reported new", async () => {
  // sp-wrong-access diverges as `core=pf, permitted={pf}` or `core=ok, permitted={pf}`,
  // coarse signatures the shipped corpus holds (np-pf-keeps-stale-spte): with outcome
  // kinds for identity the campaign said "0 new" and exited 0.
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "findings"));
    for await (const e of Deno.readDir(join(ROOT, "corpus/findings"))) {
      await Deno.copyFile(join(ROOT, "corpus/findings", e.name), join(dir, "findings", e.name));
    }
    const cmd = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        join(ROOT, "fuzz/cli.ts"),
        "fuzz",
        "--inject",
        "sp-wrong-access",
        "--areas",
        "mmu,memslot",
        "--runs",
        "2500",
        "--seed",
        "6",
        "--workers",
        "1",
        "--corpus",
        dir,
        "--json",
      ],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    });
    const out = await cmd.output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, stderr);
    const summary = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
    const fresh = summary.findings.filter((f: { new: boolean }) => f.new);
    assert.ok(fresh.length > 0);
    // At least one of them is the planted bug's: the uninjected core agrees on it.
    let caused = 0;
    for (const f of fresh) {
      const json = JSON.parse(await Deno.readTextFile(join(dir, "findings", `${f.id}.json`)));
      if (diffTrace(traceFromJson(json.minimized), coreFactory).divergence === null) caused++;
    }
    assert.ok(caused > 0, "no new finding is the planted bug's");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("identity: two known deviations that compound are explained together, by name", () => {
  // A counter with IN_TXCP written after its perf event counted: the period is computed
  // from the offset counter (pmc-write-period-from-offset) and IN_TXCP events get no
  // period at all (in-txcp-counter-no-pmi); either correction alone leaves the PMI
  // missing. Found by a campaign with no bug (seed 3), 2026-12-01.
  const trace = traceFromJson({
    format: "shadowfuzz.trace/1",
    config: { "pmu": { "tsx": true }, "mmioGenBits": 2 },
    ops: [
      { "op": "wrmsr", "msr": "0x4c2", "value": "0xfffffffffff0" },
      { "op": "wrmsr", "msr": "0x187", "value": "0x41003c" },
      { "op": "wrmsr", "msr": "0x188", "value": "0x20051003c" },
      { "op": "events", "event": 60, "umask": 0, "count": 8, "user": true },
      { "op": "wrmsr", "msr": "0x4c3", "value": "0xfffffffffff8" },
      { "op": "events", "event": 60, "umask": 0, "count": 8, "user": true },
      { "op": "pmis" },
    ],
  });
  const d = diffTrace(trace, coreFactory).divergence!;
  assert.equal(
    explainDeviation(trace, d, coreFactory),
    "pmc-write-period-from-offset+in-txcp-counter-no-pmi",
  );
  // Each alone does not explain it.
  for (const fix of ["pmc-write-period-from-offset", "in-txcp-counter-no-pmi"]) {
    assert.notEqual(diffTrace(trace, coreFactory, { fix: [fix] }).divergence, null, fix);
  }
});

// ------------------------------------------------------------------ probes (docs/identity.md "Probes")

/**
 * The identity of the first divergence of run `run` of `seed`'s ordinary campaign with
 * `bug` planted, without probes (`old`, today's identity before probes) and with them.
 * The sightings were found by `selftest --identity`'s own loop; each test first checks
 * that its sightings still share one id without probes, so a generator change that
 * moves them fails with that message rather than passing vacuously.
 */
function sighting(bug: string, seed: number, run: number, factory: BackendFactory = coreFactory) {
  const { trace } = generateRun(seed, run, {});
  const diff = { inject: [bug] };
  const d = diffTrace(trace, factory, diff).divergence;
  assert.ok(d !== null, `${bug}: run ${run} of seed ${seed} no longer diverges`);
  return {
    old: identify(d, "core", trace.config).signature,
    probed: identify(d, "core", trace.config, undefined, { factory, trace, diff }).signature,
  };
}

function probesSeparate(cases: [string, number, number][]) {
  const seen = cases.map(([bug, seed, run]) => ({ bug, ...sighting(bug, seed, run) }));
  assert.equal(
    new Set(seen.map((s) => s.old)).size,
    1,
    `premise: these sightings share one id without probes: ${seen.map((s) => s.old).join(" / ")}`,
  );
  const probed = new Map(seen.map((s) => [s.probed, s.bug]));
  assert.equal(probed.size, cases.length, `probed ids: ${seen.map((s) => s.probed).join(" / ")}`);
}

Deno.test("identity probes: a counter write bug is told from a spurious overflow behind one PMI count", () => {
  // Both "pmis: core counts more | after wrmsr PMC" without probes.
  probesSeparate([["write-no-truncate", 1, 78], ["fullwidth-sign-extend", 6, 217]]);
  const s = sighting("fullwidth-sign-extend", 6, 217);
  assert.equal(
    s.probed,
    "pmu/counter write GP: core holds bit 31 sign-extended | after wrmsr A_PMC",
  );
  assert.match(sighting("write-no-truncate", 1, 78).probed, /\| counters agree$/);
});

Deno.test("identity probes: Intel RDPMC decoding bugs that read one counter value get one id each", () => {
  probesSeparate([["rdpmc-fast-intel", 1, 21], ["rdpmc-type-flag", 1, 21], [
    "rdpmc-unknown-type",
    1,
    5,
  ]]);
});

Deno.test("identity probes: AMD RDPMC decoding bugs that read one counter value get one id each", () => {
  probesSeparate([["rdpmc-fast-amd", 1, 34], ["rdpmc-amd-ignore-31-30", 1, 17]]);
});

Deno.test("identity probes: a count a filter denied is told from a counter that never counts", () => {
  probesSeparate([["filter-mask-in-tx", 1, 589], ["v1-global-ctrl-check", 1, 84]]);
});

Deno.test("identity probes: a backend that cannot run the probe ops gets the identity without them", () => {
  // A core that refuses every RDPMC and RDMSR (as a kvm backend refuses what it cannot
  // run): the prefix's reads are left out as the diff leaves them out, and the probes,
  // which are reads, are skipped.
  const refusing: BackendFactory = {
    ...coreFactory,
    create(config, options) {
      const b = coreFactory.create(config, options);
      return new Proxy(b, {
        get(t, k) {
          if (k === "supports") {
            return (op: Op) =>
              op.op === "rdpmc" || op.op === "rdmsr" ? "refused by the test" : null;
          }
          const v = Reflect.get(t, k);
          return typeof v === "function" ? v.bind(t) : v;
        },
      });
    },
  };
  const s = sighting("write-no-truncate", 1, 78, refusing);
  assert.equal(s.probed, s.old);
});
