/**
 * Tests of shrinking (fast-check on choices), the op minimizer, signatures and the
 * engine, against a deliberately buggy backend with known signatures.
 */
import assert from "node:assert/strict";
import { Engine, findingKey } from "../fuzz/campaign/engine.ts";
import { generateRun, interpret } from "../fuzz/gen/generate.ts";
import { minimizeTrace, simplerOps } from "../fuzz/reduce/minimize.ts";
import { shrinkChoices } from "../fuzz/reduce/shrink.ts";
import { identify, opArea, signatureId, signatureOf } from "../fuzz/campaign/identity.ts";
import { buggyFactory } from "../fuzz/testing/buggy.ts";
import { referenceFactory } from "../src/reference/mod.ts";
import { diffTrace } from "../src/diff.ts";
import { traceFromJson } from "../src/trace/parse.ts";
import { defaultConfig } from "../src/trace/config.ts";
import { formatTrace } from "../src/trace/json.ts";
import { parseTrace } from "../src/trace/parse.ts";
import type { Op, Trace } from "../src/trace/types.ts";
import type { BackendFactory } from "../src/backend.ts";

/** The buggy backend's two bugs, by the start of their signatures (it has no path). */
const MMU_SIG = "mmu/access: core translates, architecture mmio";
const PMU_SIG = "pmu/rdpmc reserved type";

const CONFIG = defaultConfig();

Deno.test("fuzz: a signature is the decoded delta, not the values; ids are its SHA-256 prefix", () => {
  const d = {
    kind: "divergence" as const,
    index: 3,
    op: { op: "access", gva: 0x1000n, kind: "read", user: false, size: 8 } as Op,
    observed: { value: 5n },
    permitted: [{ outcome: { mmio: { gpa: 0x5000n, write: false } }, why: "" }],
  };
  assert.equal(signatureOf(d, "core", CONFIG), MMU_SIG);
  // Other values, same signature.
  assert.equal(signatureOf({ ...d, observed: { value: 9n }, index: 40 }, "core", CONFIG), MMU_SIG);
  assert.equal(signatureId(MMU_SIG), signatureId(MMU_SIG));
  assert.match(signatureId("x"), /^[0-9a-f]{16}$/);
  // Invariants and crashes: numbers out, no op kind.
  const inv = { ...d, kind: "invariant" as const, invariant: "rmap: spte 0x5 not in rmap 12" };
  assert.equal(signatureOf(inv, "core", CONFIG), "invariant: core rmap: spte 0x# not in rmap #");
  const other = {
    ...inv,
    op: { op: "invlpg", gva: 0n } as Op,
    invariant: "rmap: spte 0x9 not in rmap 3",
  };
  assert.equal(signatureOf(other, "core", CONFIG), signatureOf(inv, "core", CONFIG));
  const crash = { ...d, kind: "crash" as const, observed: { crash: "boom at 0x12" }, site: "f" };
  assert.equal(signatureOf(crash, "kvm", CONFIG), "crash: kvm boom at 0x# in f");
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
  // The MMU's areas only: a run of a campaign over every area may focus on the vPMU.
  const areas = { areas: ["mmu", "memslot"] } as const;
  const { choices, trace } = generateRun(4, 17, { areas: [...areas.areas] }, true);
  const hasAccess = (t: Trace) => t.ops.filter((o) => o.op === "access").length >= 2;
  assert.ok(hasAccess(trace));
  const s = shrinkChoices(choices!, (c) => hasAccess(interpret(c, { areas: [...areas.areas] })));
  const shrunk = interpret(s.choices, { areas: [...areas.areas] });
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
  const shrunk = r.findings.filter((f) => f.minimized);
  const pmu = shrunk.find((f) => f.signature.startsWith(PMU_SIG))!;
  const mmu = shrunk.find((f) => f.signature.startsWith(MMU_SIG))!;
  assert.ok(pmu !== undefined && mmu !== undefined, "both planted bugs were found");
  assert.ok(shrunk.every((f) => f === pmu || f === mmu || f.signature.startsWith("pmu/rdpmc")));
  assert.equal(pmu.minimized!.ops, 1);
  // slot, cr3, four table entries, slot create + delete, access: 9 at most.
  assert.ok(mmu.minimized!.ops <= 9, `mmu minimized to ${mmu.minimized!.ops} ops`);
  // The minimized trace still shows the same signature, and the reference agrees
  // with itself on it (the divergence is the planted bug's).
  const t = traceFromJson(mmu.minimized!.trace);
  assert.equal(
    signatureOf(diffTrace(t, buggyFactory).divergence!, "core", t.config),
    mmu.signature,
  );
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
  // Both bugs make RDPMC of a fixed index past the last counter read 0 (one class).
  const firsts = r.findings.filter((f) => f.signature.startsWith("pmu/rdpmc index out of range"));
  const baseline = firsts.find((f) => f.baseline === true);
  const injected = firsts.find((f) => f.baseline === false);
  assert.ok(baseline !== undefined && injected !== undefined, "both kinds were found");
  // The baseline one comes first here: it must not have claimed the signature.
  assert.ok(firsts.indexOf(baseline) < firsts.indexOf(injected));
  // The baseline ones are not shrunk; the injected ones are, to traces on which the
  // uninjected backend agrees with the reference.
  const shrunk = firsts.filter((f) => f.minimized !== undefined);
  assert.ok(shrunk.length >= 1);
  for (const m of shrunk) {
    assert.equal(m.baseline, false);
    const t = traceFromJson(m.minimized!.trace);
    assert.equal(diffTrace(t, factory).divergence, null);
    const d = diffTrace(t, factory, { inject: ["fixed-too"] }).divergence;
    // The engine identifies with probes on the same backend (docs/identity.md "Probes").
    const probes = { factory, trace: t, diff: { inject: ["fixed-too"] } };
    assert.equal(identify(d!, "core", t.config, undefined, probes).signature, m.signature);
  }
  assert.equal(findingKey(baseline), `${baseline.signature} [baseline]`);
  assert.equal(findingKey(injected), injected.signature);
});
