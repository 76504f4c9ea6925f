/**
 * Tests of shrinking (fast-check on choices), the op minimizer, signatures and the
 * engine, against a deliberately buggy backend with known signatures.
 */
import assert from "node:assert/strict";
import { Engine, findingKey } from "../fuzz/engine.ts";
import { generateRun, interpret } from "../fuzz/generate.ts";
import { minimizeTrace, simplerOps } from "../fuzz/minimize.ts";
import { shrinkChoices } from "../fuzz/shrink.ts";
import { invariantName, opArea, signatureId, signatureOf } from "../fuzz/signature.ts";
import { buggyFactory } from "../fuzz/testing/buggy.ts";
import { referenceFactory } from "../src/reference/mod.ts";
import { diffTrace } from "../src/diff.ts";
import { traceFromJson } from "../src/trace/parse.ts";
import { defaultConfig } from "../src/trace/config.ts";
import { formatTrace } from "../src/trace/json.ts";
import { parseTrace } from "../src/trace/parse.ts";
import type { Op, Trace } from "../src/trace/types.ts";
import type { BackendFactory } from "../src/backend.ts";

const MMU_SIG = "mmu/access: core=value, permitted={mmio}";
const PMU_SIG = "pmu/rdpmc: core=value, permitted={gp}";

Deno.test("fuzz: signatures are semantic and ids are their SHA-256 prefix", () => {
  const d = {
    kind: "divergence" as const,
    index: 3,
    op: { op: "access", gva: 0x1000n, kind: "read", user: false, size: 8 } as Op,
    observed: { value: 5n },
    permitted: [{ outcome: { mmio: { gpa: 0x5000n, write: false } }, why: "" }],
  };
  assert.equal(signatureOf(d, "core"), MMU_SIG);
  // Other values, same signature.
  assert.equal(signatureOf({ ...d, observed: { value: 9n }, index: 40 }, "core"), MMU_SIG);
  assert.equal(signatureId(MMU_SIG), "3ecc40a8bd494cac");
  assert.match(signatureId("x"), /^[0-9a-f]{16}$/);
  assert.equal(
    signatureOf({ ...d, kind: "invariant", invariant: "rmap: spte 0x5 not in rmap" }, "core"),
    "mmu/access: invariant rmap",
  );
  assert.equal(
    signatureOf({ ...d, kind: "crash", observed: { crash: "boom" } }, "kvm"),
    "mmu/access: kvm=crash",
  );
  assert.equal(invariantName("no colon here"), "no colon here");
  assert.equal(opArea("slot"), "memslot");
  assert.equal(opArea("filter"), "pmu");
  assert.equal(opArea("invlpg"), "mmu");
});

Deno.test("fuzz: the minimizer keeps only what the predicate needs", () => {
  const ops: Op[] = [
    { op: "slot", id: 0, gpa: 0n, pages: 16, hva: 0x1_0000_0000n, flags: ["log", "ro"] },
    { op: "write", gpa: 0x1000n, size: 8, value: 0x8000_0000_0000_2067n },
    { op: "rdpmc", ecx: 0x8000_0001, user: true },
    { op: "pmis" },
    { op: "invlpg", gva: 0n },
  ];
  const trace: Trace = { format: "shadowfuzz.trace/1", config: defaultConfig(), ops };
  // Needs the write, with bit 1 set, and the rdpmc.
  const pred = (t: Trace) =>
    t.ops.some((o) => o.op === "write" && (o.value & 2n) !== 0n) &&
    t.ops.some((o) => o.op === "rdpmc");
  const m = minimizeTrace(trace, pred);
  assert.deepEqual(m.trace.ops, [
    // Moved to page 0: nothing else in the trace uses it.
    { op: "write", gpa: 0n, size: 8, value: 2n },
    { op: "rdpmc", ecx: 0x8000_0001, user: false },
  ]);
  // Every simplification is a valid op.
  for (const op of ops) {
    for (const s of simplerOps(op)) parseTrace(formatTrace({ ...trace, ops: [s] }));
  }
});

Deno.test("fuzz: fast-check shrinking on choices keeps the failure and shortens the trace", () => {
  const { choices, trace } = generateRun(4, 17, {}, true);
  const hasAccess = (t: Trace) => t.ops.filter((o) => o.op === "access").length >= 2;
  assert.ok(hasAccess(trace));
  const s = shrinkChoices(choices!, (c) => hasAccess(interpret(c)));
  const shrunk = interpret(s.choices);
  assert.ok(hasAccess(shrunk));
  assert.ok(s.choices.steps.length <= 2, `steps ${s.choices.steps.length}`);
  assert.ok(shrunk.ops.length < trace.ops.length);
});

Deno.test("fuzz: the engine finds both planted bugs and shrinks them to their core", () => {
  const e = new Engine(buggyFactory, {
    seed: 1,
    constraints: { areas: ["memslot", "pmu"] },
    diff: {},
    backend: "core",
    shrinkSeconds: 4,
  });
  const r = e.runSlice({ start: 0, end: 3000, offset: 0, stride: 1 });
  const sigs = new Map(r.findings.filter((f) => f.minimized).map((f) => [f.signature, f]));
  assert.deepEqual([...sigs.keys()].sort(), [MMU_SIG, PMU_SIG]);
  const pmu = sigs.get(PMU_SIG)!;
  assert.equal(pmu.minimized!.ops, 1);
  const mmu = sigs.get(MMU_SIG)!;
  // slot, cr3, four table entries, slot create + delete, access: 9 at most.
  assert.ok(mmu.minimized!.ops <= 9, `mmu minimized to ${mmu.minimized!.ops} ops`);
  // The minimized trace still shows the same signature, and the reference agrees
  // with itself on it (the divergence is the planted bug's).
  const t = traceFromJson(mmu.minimized!.trace);
  assert.equal(signatureOf(diffTrace(t, buggyFactory).divergence!, "core"), MMU_SIG);
  assert.equal(diffTrace(t, referenceFactory).divergence, null);
  // A trace that diverges carries a deletion (what the planted bug needs).
  assert.ok(t.ops.some((o) => o.op === "slot" && o.pages === 0));
});

Deno.test("fuzz: the engine with guidance keeps runs that reach new coverage", () => {
  const e = new Engine(buggyFactory, {
    seed: 2,
    constraints: {},
    diff: {},
    backend: "core",
    shrinkSeconds: 0,
  });
  const r = e.runSlice({ start: 0, end: 300, offset: 0, stride: 1 });
  const events = new Set(r.interesting.flatMap((i) => i.events));
  // The buggy backend counts 3 events; each is reported by its first run only.
  assert.deepEqual([...events].sort(), [0, 1, 2]);
  assert.ok(r.interesting.length <= 3);
  for (const it of r.interesting) {
    assert.equal(formatTrace(interpret(it.choices)), formatTrace(generateRun(2, it.index).trace));
  }
});

Deno.test("fuzz: a baseline divergence does not hide the injected bug's runs of the same signature", () => {
  // The buggy backend's RDPMC bug is always there (a "baseline" core bug); injecting
  // "fixed-too" adds a second bug with the same coarse signature: RDPMC of a fixed
  // counter past the last one (ECX bit 30, no bit 31) also returns 0 instead of #GP.
  const factory: BackendFactory = {
    ...buggyFactory,
    create: (config, options) => {
      const b = buggyFactory.create(config);
      if (!(options?.inject ?? []).includes("fixed-too")) return b;
      return {
        name: b.name,
        step(op) {
          const o = b.step(op);
          const fixed = op.op === "rdpmc" && (op.ecx & 0xc000_0000) === 0x4000_0000;
          return fixed && "gp" in o ? { value: 0n } : o;
        },
        close: () => b.close(),
      };
    },
  };
  const e = new Engine(factory, {
    seed: 3,
    constraints: { areas: ["pmu"] },
    diff: { inject: ["fixed-too"] },
    backend: "core",
    baselineCheck: true,
    shrinkSeconds: 2,
  });
  const r = e.runSlice({ start: 0, end: 4000, offset: 0, stride: 1 });
  const firsts = r.findings.filter((f) => f.signature === PMU_SIG);
  const baseline = firsts.find((f) => f.baseline === true);
  const injected = firsts.find((f) => f.baseline === false);
  assert.ok(baseline !== undefined && injected !== undefined, "both kinds were found");
  // The baseline one comes first here: it must not have claimed the signature.
  assert.ok(firsts.indexOf(baseline) < firsts.indexOf(injected));
  // The baseline one is not shrunk; the injected one is, to a trace on which the
  // uninjected backend agrees with the reference.
  assert.equal(firsts.filter((f) => f.minimized !== undefined).length, 1);
  const m = firsts.find((f) => f.minimized !== undefined)!;
  assert.equal(m.baseline, false);
  const t = traceFromJson(m.minimized!.trace);
  assert.equal(diffTrace(t, factory).divergence, null);
  const d = diffTrace(t, factory, { inject: ["fixed-too"] }).divergence;
  assert.equal(signatureOf(d!, "core"), PMU_SIG);
  assert.equal(findingKey(baseline), `${PMU_SIG} [baseline]`);
  assert.equal(findingKey(injected), PMU_SIG);
});
