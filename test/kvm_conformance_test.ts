/**
 * `deno task kvm-conformance` (bench/kvm_conformance.ts, issue 12 item 5): its argument
 * handling; that the traces are a function of the seed (in process, and on /dev/kvm
 * through the task: two runs of one seed run the same traces, and a random seed is
 * printed and reruns them); and that each disagreement becomes a trace file that
 * replays. No disagreement of the real kernel is easy to provoke with these traces (2,300
 * traces of seeds 1 and 7 all agree on this machine), so the disagreements are made
 * through the run's backend seam: a backend that returns a wrong value for the second
 * guest-physical read of each trace.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Backend, BackendFactory } from "../src/backend.ts";
import { BACKENDS } from "../src/backends.ts";
import { diffTrace } from "../src/diff.ts";
import { kvmFactory } from "../src/kvm/mod.ts";
import { formatTrace } from "../src/trace/json.ts";
import { parseTrace } from "../src/trace/parse.ts";
import type { Outcome } from "../src/trace/types.ts";
import { TaskArgsError } from "../bench/args.ts";
import {
  type ConformanceFlags,
  conformanceTraces,
  main,
  parseConformanceArgs,
  runConformance,
  tracesDigest,
} from "../bench/kvm_conformance.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const kvmWhy = kvmFactory.available();
if (kvmWhy !== null) console.log(`kvm-conformance: the /dev/kvm tests are skipped: ${kvmWhy}`);

Deno.test("kvm-conformance args: defaults, a random seed, and one-line errors naming the flag", () => {
  assert.equal(parseConformanceArgs(["--help"]), null);
  assert.equal(parseConformanceArgs(["--seed", "x", "-h"]), null, "--help wins over bad input");
  assert.deepEqual(parseConformanceArgs([], () => 77), {
    seed: 77,
    randomSeed: true,
    traces: 10000,
    json: false,
  });
  assert.deepEqual(
    parseConformanceArgs(["--seed", "4294967295", "--traces", "3", "--out", "d", "--json"]),
    { seed: 4294967295, randomSeed: false, traces: 3, out: "d", json: true },
  );
  assert.equal(parseConformanceArgs(["--seed=0"], () => 5)?.seed, 0);
  const bad: [string[], RegExp][] = [
    [["--seed", "x"], /--seed must be an integer from 0 to 4294967295, not "x"/],
    [["--seed", "4294967296"], /--seed must be an integer/],
    [["--seed", "1.5"], /--seed must be an integer/],
    [["--traces", "0"], /--traces must be an integer from 1 to 1000000, not "0"/],
    [["--traces", "1e3"], /--traces must be an integer/],
    [["--out", ""], /--out must not be empty/],
    [["--frob"], /unknown option '--frob'/],
    [["--json=yes"], /'--json' does not take an argument/],
    [["--seed"], /'--seed <value>' argument missing/],
    [["extra"], /unexpected argument 'extra'/],
  ];
  for (const [argv, message] of bad) {
    assert.throws(() => parseConformanceArgs(argv), (e: unknown) => {
      assert.ok(e instanceof TaskArgsError, argv.join(" "));
      assert.match(e.message, /^Cannot parse arguments of deno task kvm-conformance: /);
      assert.match(e.message, message, argv.join(" "));
      assert.doesNotMatch(e.message, /\n/, argv.join(" "));
      return true;
    });
  }
});

Deno.test("kvm-conformance: the traces and their digest are a function of the seed", async () => {
  const a = conformanceTraces(5, 12);
  const b = conformanceTraces(5, 12);
  const c = conformanceTraces(6, 12);
  assert.equal(a.length, 12);
  assert.deepEqual(a.map(formatTrace), b.map(formatTrace));
  assert.notDeepEqual(a.map(formatTrace), c.map(formatTrace));
  assert.equal(await tracesDigest(a), await tracesDigest(b));
  assert.notEqual(await tracesDigest(a), await tracesDigest(c));
  assert.notEqual(await tracesDigest(a), await tracesDigest(a.slice(1)));
});

/** `base`, except that the second guest-physical read of each trace returning a value is off by one bit. */
function faulty(base: BackendFactory): BackendFactory {
  return {
    name: base.name,
    available: () => base.available(),
    create(config, options): Backend {
      const b = base.create(config, options);
      let reads = 0;
      return {
        name: b.name,
        supports: (op) => b.supports?.(op) ?? null,
        close: () => b.close(),
        step(op): Outcome {
          const out = b.step(op);
          if (op.op === "read" && "value" in out && ++reads === 2) return { value: out.value ^ 1n };
          return out;
        },
      };
    },
  };
}

/** The task's command line from deno.json, run with its own permissions. */
async function task(name: string, ...args: string[]) {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const entry: string | { command: string } = config.tasks[name];
  const [deno, ...words] = (typeof entry === "string" ? entry : entry.command).split(/\s+/);
  assert.equal(deno, "deno");
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...words, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * A run over `base` made faulty: every disagreement is a file that parses, says in its
 * comment what diverged, holds the trace up to the diverging op, and reproduces the same
 * divergence when replayed on the same backend; on `base` itself (what `deno task diff
 * FILE --backend NAME` runs) it agrees, so the fault was the seam's.
 */
async function disagreementsReplay(base: BackendFactory, name: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shadowfuzz-kvm-conformance-test-" });
  try {
    const flags: ConformanceFlags = { seed: 3, randomSeed: false, traces: 6, out: dir, json: true };
    const seam = { factory: faulty(base), replayFlags: `--backend ${name}` };
    const s = await runConformance(flags, seam);
    assert.ok(s.disagreed >= 3, `only ${s.disagreed} of 6 traces disagreed`);
    assert.equal(s.disagreements.length, s.disagreed);
    assert.equal(s.out, dir);
    assert.equal(s.replay, `deno task diff FILE --backend ${name}`);
    const traces = conformanceTraces(3, 6);
    const files = [];
    for await (const e of Deno.readDir(dir)) files.push(e.name);
    assert.deepEqual(
      files.sort(),
      s.disagreements.map((d) => `seed-3-trace-${d.trace}.json`).sort(),
    );
    for (const d of s.disagreements) {
      const file = parseTrace(await Deno.readTextFile(d.file));
      assert.deepEqual(file.config, traces[d.trace]!.config);
      assert.deepEqual(file.ops, traces[d.trace]!.ops.slice(0, d.at + 1));
      assert.ok(file.comment?.includes(`op ${d.at} (${d.op})`), file.comment);
      assert.ok(file.comment?.includes(`${name} returned ${d.got}`), file.comment);
      for (const p of d.permitted) assert.ok(file.comment?.includes(p), file.comment);
      const again = diffTrace(file, faulty(base)).divergence;
      assert.equal(again?.index, d.at, d.file);
      assert.equal(again?.kind, d.kind);
      assert.deepEqual(
        again?.observed,
        diffTrace(traces[d.trace]!, faulty(base)).divergence?.observed,
      );
    }
    // The first file through the CLI on the real backend: it runs, and agrees (exit 0, or
    // 4 where the CLI says that ops the backend cannot run were left out).
    const first = s.disagreements[0]!;
    const r = await task("diff", first.file, "--backend", name, "--json");
    assert.ok(r.code === 0 || r.code === 4, `exit ${r.code}: ${r.stdout}${r.stderr}`);
    const verdict = JSON.parse(r.stdout);
    assert.equal(verdict.agree, true);
    assert.equal(verdict.ops, first.at + 1);

    // main: exit 1 with the disagreements, 0 without.
    const logged: string[] = [];
    const log = console.log;
    console.log = (...a: unknown[]) => logged.push(a.join(" "));
    let codes;
    try {
      const argv = ["--seed", "3", "--traces", "6", "--out", dir, "--json"];
      codes = [await main(argv, seam), await main(argv, { factory: base, replayFlags: "" })];
    } finally {
      console.log = log;
    }
    assert.deepEqual(codes, [1, 0]);
    assert.equal(JSON.parse(logged[0]!).disagreed, s.disagreed);
    assert.equal(JSON.parse(logged[1]!).disagreed, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("kvm-conformance: disagreements (made by a faulty core) are replayable trace files", async () => {
  await disagreementsReplay(BACKENDS.core!, "core");
});

Deno.test({
  name: "kvm-conformance: disagreements (made by a faulty kvm backend) are replayable trace files",
  ignore: kvmWhy !== null,
  fn: () => disagreementsReplay(kvmFactory, "kvm"),
});

Deno.test({
  name: "kvm-conformance on /dev/kvm: one seed runs the same traces; a random seed is printed",
  ignore: kvmWhy !== null,
  fn: async () => {
    const runs = [];
    for (let i = 0; i < 2; i++) {
      const r = await task("kvm-conformance", "--seed", "11", "--traces", "8", "--json");
      assert.ok(r.code === 0 || r.code === 1, r.stderr);
      runs.push(JSON.parse(r.stdout));
    }
    const [a, b] = runs;
    assert.equal(a.digest, await tracesDigest(conformanceTraces(11, 8)));
    assert.equal(b.digest, a.digest);
    for (const k of ["seed", "traces", "ops", "skippedOps", "agreed"]) assert.equal(b[k], a[k], k);
    const where = (s: { disagreements: { trace: number; at: number; got: string }[] }) =>
      s.disagreements.map((d) => [d.trace, d.at, d.got]);
    assert.deepEqual(where(b), where(a));
    assert.equal(typeof a.host?.kernel, "string", "the host record");

    const r = await task("kvm-conformance", "--traces", "2");
    assert.ok(r.code === 0 || r.code === 1, r.stderr);
    const m = /^kvm-conformance: seed (\d+) \(random\)$/m.exec(r.stdout);
    assert.ok(m !== null, r.stdout);
    const digest = /\(digest ([0-9a-f]{16})\)/.exec(r.stdout)?.[1];
    assert.equal(digest, await tracesDigest(conformanceTraces(Number(m[1]), 2)));
  },
});
