/**
 * What `replay` and `diff` say happened (issue 14 section 6): the replay verdict
 * (reproduces 1, diverges differently 5, cannot test here 4, fixed 0) as a pure function
 * of the finding and its traces' diffs, the same verdicts through `cmdReplay` with a
 * fake backend that cannot fetch (any machine) and through the CLI on the core and,
 * where /dev/kvm works, on the real KVM; and `diff` that skipped ops saying so.
 *
 * The finding is built the way a campaign records one, from the known deviation
 * `np-pf-keeps-stale-spte`'s trace (corpus/deviations/, pinned by
 * src/core/deviations_test.ts): the uninjected core diverges at its last op, and the op
 * before it is a fetch, which the fake kvm backend cannot run. The real kvm backend runs
 * that fetch (src/kvm/README.md "Fetches"): its cases put an `age` op, which it never
 * runs, before the diverging op instead.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Backend, BackendFactory } from "../src/backend.ts";
import { coreFactory } from "../src/core/mod.ts";
import { type Finding, FINDING_FORMAT_V2 } from "../src/corpus/types.ts";
import { type DiffResult, diffTrace } from "../src/diff.ts";
import { kvmFactory } from "../src/kvm/mod.ts";
import { outcomeToJson, permittedToJson, traceToJson } from "../src/trace/json.ts";
import { parseTrace } from "../src/trace/parse.ts";
import { formatOp } from "../src/trace/text.ts";
import type { Op, Trace } from "../src/trace/types.ts";
import { cmdDiff } from "../fuzz/cli.ts";
import {
  cmdReplay,
  type ReplayTarget,
  replayText,
  replayVerdict,
  sameIdentity,
  type TraceRun,
} from "../fuzz/commands/replay.ts";
import { identifyTrace } from "../fuzz/campaign/identity.ts";

const CLI = new URL("../fuzz/cli.ts", import.meta.url).pathname;
const TRACE = new URL("../corpus/deviations/np-pf-keeps-stale-spte.json", import.meta.url);

const KVM_SKIP = kvmFactory.available();

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * The deviation's trace (or `edit` of it) and a finding of it on the core, as a campaign
 * would record it.
 */
async function coreFinding(
  edit: (t: Trace) => Trace = (t) => t,
): Promise<{ trace: Trace; finding: Finding }> {
  const trace = edit(parseTrace(await Deno.readTextFile(TRACE)));
  const d = diffTrace(trace, coreFactory).divergence;
  assert.ok(d !== null, "the deviation's trace no longer diverges on the core");
  const id = identifyTrace(trace, d, coreFactory);
  const now = new Date().toISOString();
  const finding: Finding = {
    format: FINDING_FORMAT_V2,
    id: id.id,
    signature: id.signature,
    area: "mmu",
    kind: "divergence",
    title: id.title,
    status: "confirmed",
    firstSeen: now,
    lastSeen: now,
    hits: 1,
    seeds: ["1"],
    trace: traceToJson(trace),
    minimized: traceToJson(trace),
    divergence: {
      opIndex: d.index,
      backend: "core",
      observed: outcomeToJson(d.observed),
      permitted: d.permitted.map(permittedToJson),
    },
    harness: "test",
  };
  return { trace, finding };
}

/** The trace with `age 0x0 pages=1` (never run on kvm) before its last op. */
function agedBeforeLast(trace: Trace): Trace {
  const last = trace.ops.length - 1;
  const age: Op = { op: "age", gpa: 0n, pages: 1 };
  return { ...trace, ops: [...trace.ops.slice(0, last), age, trace.ops[last]!] };
}

function fetchIndex(trace: Trace): number {
  const i = trace.ops.findIndex((op) => op.op === "access" && op.kind === "fetch");
  assert.ok(i >= 0, "the trace has no fetch");
  return i;
}

const NO_FETCH = "fake kvm: no instruction fetches";

/**
 * A backend named kvm that runs the core (with `inject`) but, like the kvm backend,
 * refuses fetches through `supports()` (unless `fetches`), as the kvm backend did before
 * it could check them.
 */
function fakeKvm(opts: { inject?: string[]; fetches?: boolean } = {}): BackendFactory {
  return {
    name: "kvm",
    available: () => null,
    create(config) {
      const inner = coreFactory.create(config, { inject: opts.inject ?? [] });
      const b: Backend = {
        name: "kvm",
        supports: (op: Op) =>
          !opts.fetches && op.op === "access" && op.kind === "fetch" ? NO_FETCH : null,
        step: (op: Op) => inner.step(op),
        close: () => inner.close(),
      };
      return b;
    },
  };
}

function fakeTarget(factory: BackendFactory): ReplayTarget {
  return { name: "kvm", factory, configGaps: () => [], noMmioCaching: () => null };
}

function run(label: "minimized" | "full", trace: Trace, diff: DiffResult, r: number | null) {
  return { label, trace, recordedIndex: r, diff } satisfies TraceRun;
}

/** The trace run on the core: it diverges, with the identity a campaign gives it. */
function coreRun(label: "minimized" | "full", trace: Trace, r: number | null): TraceRun {
  const diff = diffTrace(trace, coreFactory);
  return {
    ...run(label, trace, diff, r),
    identity: identifyTrace(trace, diff.divergence!, coreFactory),
  };
}

/** The same divergence with another outcome: another identity. */
function otherRun(label: "minimized" | "full", trace: Trace, r: number | null): TraceRun {
  const diff = diffTrace(trace, coreFactory);
  return run(
    label,
    trace,
    { ...diff, divergence: { ...diff.divergence!, observed: { gp: true } } },
    r,
  );
}

// ------------------------------------------------------------------ the pure verdict

Deno.test("replay verdict: the same identity reproduces (exit 1), on both traces or either", async () => {
  const { trace, finding } = await coreFinding();
  const r = finding.divergence.opIndex;
  const agrees: DiffResult = { divergence: null, ops: trace.ops.length, skipped: 0 };
  let v = replayVerdict(finding, "core", [
    coreRun("minimized", trace, r),
    coreRun("full", trace, null),
  ]);
  assert.equal(v.verdict, "reproduces");
  assert.equal(v.exit, 1);
  assert.equal(v.decidedBy, "minimized");
  // Only the full trace still shows it: reproduces, and the text says to re-minimize.
  v = replayVerdict(finding, "core", [
    run("minimized", trace, agrees, r),
    coreRun("full", trace, null),
  ]);
  assert.equal(v.exit, 1);
  assert.equal(v.decidedBy, "full");
  assert.match(replayText(v).join("\n"), /minimize the full trace again/);
  // Reproducing on one trace wins over another identity on the other.
  v = replayVerdict(finding, "core", [
    otherRun("minimized", trace, r),
    coreRun("full", trace, null),
  ]);
  assert.equal(v.exit, 1);
});

Deno.test("replay verdict: another identity diverges differently (exit 5) and names both", async () => {
  const { trace, finding } = await coreFinding();
  const r = finding.divergence.opIndex;
  const recorded = { ...finding, signature: "mmu/access: core ok, recorded elsewhere" };
  const v = replayVerdict(recorded, "core", [coreRun("minimized", trace, r)]);
  assert.equal(v.verdict, "diverges-differently");
  assert.equal(v.exit, 5);
  const text = replayText(v).join("\n").replace(/\s+/g, " ");
  assert.ok(text.includes(`recorded: ${recorded.id} ${recorded.signature}`), text);
  assert.ok(text.includes(`now: ${finding.id} ${finding.signature}`), text);
  assert.ok(text.includes(`title: ${finding.title}`), text);
  // Another identity on one trace wins over agreeing on the other.
  const agrees: DiffResult = { divergence: null, ops: trace.ops.length, skipped: 0 };
  const w = replayVerdict(finding, "core", [
    run("minimized", trace, agrees, r),
    otherRun("full", trace, null),
  ]);
  assert.equal(w.exit, 5);
  assert.equal(w.decidedBy, "full");
});

Deno.test("replay verdict: agreeing on every op with none skipped is fixed (exit 0)", async () => {
  const { trace, finding } = await coreFinding();
  const agrees: DiffResult = { divergence: null, ops: trace.ops.length, skipped: 0 };
  const v = replayVerdict(finding, "kvm", [
    run("minimized", trace, agrees, finding.divergence.opIndex),
    run("full", trace, agrees, null),
  ]);
  assert.equal(v.verdict, "fixed");
  assert.equal(v.exit, 0);
  // A skip only after the diverging op still tests it.
  const later: DiffResult = { ...agrees, skipped: 1, skipReason: NO_FETCH, skipIndex: 6 };
  assert.equal(replayVerdict(finding, "kvm", [run("minimized", trace, later, 5)]).exit, 0);
});

Deno.test("replay verdict: an op skipped at or before the diverging op is cannot test (exit 4), naming it", async () => {
  const { trace, finding } = await coreFinding();
  const f = fetchIndex(trace);
  const r = finding.divergence.opIndex;
  assert.ok(f <= r);
  const skipped: DiffResult = {
    divergence: null,
    ops: trace.ops.length,
    skipped: 1,
    skipReason: NO_FETCH,
    skipIndex: f,
  };
  const v = replayVerdict(finding, "kvm", [run("minimized", trace, skipped, r)]);
  assert.equal(v.verdict, "cannot-test");
  assert.equal(v.exit, 4);
  const t = v.traces[0]!;
  assert.equal(t.cannot?.cause, "skipped-op");
  assert.equal(t.cannot?.index, f);
  assert.equal(t.cannot?.op, formatOp(trace.ops[f]!));
  assert.ok(v.summary.includes(`op ${f} (\`${formatOp(trace.ops[f]!)}\`)`), v.summary);
  assert.ok(v.summary.includes(NO_FETCH), v.summary);
  // The full trace's diverging op is not known: any skip counts. One agreeing trace
  // and one that cannot be tested is not "fixed".
  const agrees: DiffResult = { divergence: null, ops: trace.ops.length, skipped: 0 };
  const w = replayVerdict(finding, "kvm", [
    run("minimized", trace, agrees, r),
    run("full", trace, { ...skipped, skipIndex: trace.ops.length - 1 }, null),
  ]);
  assert.equal(w.exit, 4);
  assert.match(w.summary, /the minimized trace agrees/);
  // A trace that could not run at all, or agrees without a capability the finding needs.
  const cannot = { cause: "capability" as const, reason: "fake: no MMIO caching" };
  assert.equal(
    replayVerdict(finding, "kvm", [{ ...run("minimized", trace, agrees, r), agreementGap: cannot }])
      .exit,
    4,
  );
  assert.equal(
    replayVerdict(finding, "kvm", [{ label: "minimized", trace, recordedIndex: r, cannot }]).exit,
    4,
  );
});

Deno.test("replay verdict: on another backend the where and delta must match, the path is its own", () => {
  const core = "mmu/access: core translates, architecture not-present #PF | path access-hit";
  assert.ok(
    sameIdentity(core, "core", "mmu/access: kvm translates, architecture not-present #PF", "kvm"),
  );
  assert.ok(!sameIdentity(core, "core", "mmu/access: kvm mmio, architecture translates", "kvm"));
  // On the same backend the whole signature counts.
  assert.ok(
    !sameIdentity(
      core,
      "core",
      "mmu/access: core translates, architecture not-present #PF",
      "core",
    ),
  );
  assert.ok(sameIdentity(core, "core", core, "core"));
});

// ------------------------------------------------------------------ through cmdReplay

Deno.test("replay: a backend that cannot fetch says cannot test, naming the skipped op (exit 4)", async () => {
  const { trace, finding } = await coreFinding();
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "finding.json");
    await Deno.writeTextFile(file, JSON.stringify(finding));
    const f = fetchIndex(trace);
    const lines: string[] = [];
    const target = () => Promise.resolve(fakeTarget(fakeKvm()));
    const code = await cmdReplay([file, "--backend", "kvm"], {
      target,
      print: (l) => lines.push(l),
    });
    const text = lines.join("\n");
    assert.equal(code, 4, text);
    assert.match(text, /cannot test on kvm here/);
    assert.ok(text.replace(/\s+/g, " ").includes(`op ${f} (\`${formatOp(trace.ops[f]!)}\`)`), text);
    assert.ok(text.includes(finding.title), "the finding's title is printed");
    const json: string[] = [];
    await cmdReplay([file, "--backend", "kvm", "--json"], { target, print: (l) => json.push(l) });
    const v = JSON.parse(json.join(""));
    assert.equal(v.verdict, "cannot-test");
    assert.equal(v.exit, 4);
    assert.deepEqual(v.traces[0].cannot.i, f);
    // The same backend with fetches reproduces it (where and delta; it has no path).
    const all = () => Promise.resolve(fakeTarget(fakeKvm({ fetches: true })));
    assert.equal(await cmdReplay([file, "--backend", "kvm"], { target: all, print: () => {} }), 1);
    // An unavailable backend cannot test either.
    const none = () =>
      Promise.resolve<ReplayTarget>({
        ...fakeTarget(fakeKvm()),
        factory: { unavailable: "Backend kvm is not available here: fake" },
      });
    const out: string[] = [];
    assert.equal(await cmdReplay([file], { target: none, print: (l) => out.push(l) }), 4);
    assert.match(out.join("\n"), /cannot test .*not available here: fake/s);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "replay --backend kvm: a finding with an op kvm cannot run before its diverging op cannot be tested (exit 4)",
  ignore: KVM_SKIP !== null,
  async fn() {
    const { trace, finding } = await coreFinding(agedBeforeLast);
    const dir = await Deno.makeTempDir();
    try {
      const file = join(dir, "finding.json");
      await Deno.writeTextFile(file, JSON.stringify(finding));
      const r = await cli("replay", file, "--backend", "kvm");
      assert.equal(r.code, 4, r.stdout + r.stderr);
      assert.match(r.stdout, /cannot test/);
      const f = trace.ops.length - 2;
      assert.ok(r.stdout.replace(/\s+/g, " ").includes(`op ${f} (\`${formatOp(trace.ops[f]!)}\`)`));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
if (KVM_SKIP !== null) console.log(`replay_verdict_test: real-kvm cases skipped: ${KVM_SKIP}`);

Deno.test("replay cli: reproduces (1) with the title, diverges differently (5) with both identities", async () => {
  const { finding } = await coreFinding();
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "finding.json");
    await Deno.writeTextFile(file, JSON.stringify(finding));
    const same = await cli("replay", file);
    assert.equal(same.code, 1, same.stdout + same.stderr);
    assert.match(same.stdout, /^reproduces on core: /m);
    assert.ok(same.stdout.includes(finding.title));
    const sameJson = JSON.parse((await cli("replay", file, "--json")).stdout);
    assert.equal(sameJson.verdict, "reproduces");
    assert.equal(sameJson.title, finding.title);

    const other = { ...finding, signature: "mmu/access: core ok, recorded by an older harness" };
    await Deno.writeTextFile(file, JSON.stringify(other));
    const diff = await cli("replay", file);
    assert.equal(diff.code, 5, diff.stdout + diff.stderr);
    const flat = diff.stdout.replace(/\s+/g, " ");
    assert.match(flat, /diverges differently on core/);
    assert.ok(flat.includes(`recorded: ${other.id} ${other.signature}`), diff.stdout);
    assert.ok(flat.includes(`now: ${finding.id} ${finding.signature}`), diff.stdout);
    const json = JSON.parse((await cli("replay", file, "--json")).stdout);
    assert.equal(json.verdict, "diverges-differently");
    assert.equal(json.recorded.signature, other.signature);
    assert.equal(json.traces[0].divergence.signature, finding.signature);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("replay cli: a finding of an injected bug is fixed (0) once the bug is gone", async () => {
  // One RDPMC with the legacy "fast" flag: the core with rdpmc-fast-intel diverges.
  const trace = parseTrace(JSON.stringify({
    format: "shadowfuzz.trace/1",
    config: {},
    ops: [{ op: "rdpmc", ecx: "0x80000001", user: false }],
  }));
  const inject = ["rdpmc-fast-intel"];
  const d = diffTrace(trace, coreFactory, { inject }).divergence!;
  const id = identifyTrace(trace, d, coreFactory, { inject });
  const { finding: base } = await coreFinding();
  const finding: Finding = {
    ...base,
    id: id.id,
    signature: id.signature,
    area: "pmu",
    title: id.title,
    inject: inject[0]!,
    trace: traceToJson(trace),
    minimized: traceToJson(trace),
    divergence: { ...base.divergence, opIndex: 0, observed: outcomeToJson(d.observed) },
  };
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "finding.json");
    await Deno.writeTextFile(file, JSON.stringify(finding));
    assert.equal((await cli("replay", file)).code, 1);
    // On a backend without the injected bug it cannot be tested.
    const lines: string[] = [];
    const target = () => Promise.resolve(fakeTarget(fakeKvm({ inject })));
    assert.equal(
      await cmdReplay([file, "--backend", "kvm"], { target, print: (l) => lines.push(l) }),
      4,
    );
    assert.match(lines.join(" "), /injected bug rdpmc-fast-intel, which only the core has/);
    delete finding.inject;
    await Deno.writeTextFile(file, JSON.stringify(finding));
    const fixed = await cli("replay", file);
    assert.equal(fixed.code, 0, fixed.stdout + fixed.stderr);
    assert.match(fixed.stdout, /^fixed: agrees on core on every op of both traces \(exit 0\)$/m);
    assert.equal(JSON.parse((await cli("replay", file, "--json")).stdout).verdict, "fixed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ------------------------------------------------------------------ diff that skipped ops

Deno.test("diff: skipped ops are reported with the first one and its reason; exit 4 unless --allow-skips", async () => {
  const { trace } = await coreFinding();
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "t.json");
    // Up to the fetch and one op after it: the fake agrees on every op it runs.
    const f = fetchIndex(trace);
    await Deno.writeTextFile(
      file,
      JSON.stringify(traceToJson({ ...trace, ops: trace.ops.slice(0, f + 1) })),
    );
    const deps = (lines: string[]) => ({
      factory: () => fakeKvm(),
      print: (l: string) => lines.push(l),
    });
    const text: string[] = [];
    assert.equal(cmdDiff([file, "--backend", "kvm"], deps(text)), 4, text.join("\n"));
    const joined = text.join("\n").replace(/\s+/g, " ");
    assert.match(joined, /1 of \d+ ops skipped/);
    assert.ok(joined.includes(`op ${f} \`${formatOp(trace.ops[f]!)}\`: ${NO_FETCH}`), joined);
    assert.doesNotMatch(joined, /agree on all/);
    const json: string[] = [];
    assert.equal(cmdDiff([file, "--backend", "kvm", "--json"], deps(json)), 4);
    const j = JSON.parse(json.join(""));
    assert.equal(j.skipped, 1);
    assert.deepEqual(j.skip, { i: f, op: formatOp(trace.ops[f]!), reason: NO_FETCH });
    assert.equal(cmdDiff([file, "--backend", "kvm", "--allow-skips"], deps([])), 0);
    // A divergence is still exit 1 (the whole trace: the core diverges at its last op).
    const whole = join(dir, "whole.json");
    await Deno.writeTextFile(whole, JSON.stringify(traceToJson(trace)));
    const lines: string[] = [];
    const code = cmdDiff([whole, "--backend", "kvm"], {
      factory: () => fakeKvm({ fetches: true }),
      print: (l) => lines.push(l),
    });
    assert.equal(code, 1, lines.join("\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "diff --backend kvm: a trace with an op kvm cannot run says it was skipped (exit 4)",
  ignore: KVM_SKIP !== null,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const file = join(dir, "t.json");
      await Deno.writeTextFile(
        file,
        JSON.stringify({
          format: "shadowfuzz.trace/1",
          config: {
            vendor: "amd",
            maxPhyAddr: 48,
            gbPages: false,
            smm: false,
            pmu: { version: 0 },
          },
          ops: [
            { op: "slot", id: 0, gpa: "0x0", pages: 16, hva: "0x100000000", flags: [] },
            { op: "age", gpa: "0x0", pages: 1 },
            { op: "read", gpa: "0x0", size: 8 },
          ],
        }),
      );
      const r = await cli("diff", file, "--backend", "kvm");
      assert.equal(r.code, 4, r.stdout + r.stderr);
      const flat = r.stdout.replace(/\s+/g, " ");
      assert.match(flat, /1 of 3 ops skipped/);
      assert.match(flat, /the first is op 1 `age 0x0 pages=1`: kvm: no userspace interface/);
      const j = JSON.parse((await cli("diff", file, "--backend", "kvm", "--json")).stdout);
      assert.equal(j.skipped, 1);
      assert.equal(j.skip.i, 1);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
