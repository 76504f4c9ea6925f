/**
 * End-to-end tests of `fuzz`, `replay`, `minimize` and `selftest` through the CLI in a
 * subprocess: exit codes, the JSON summary, the corpus it leaves, clear usage errors
 * that write nothing, corrupt corpus files, and SIGKILL at random moments.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { listFindings, listRuns, readFinding } from "../src/corpus/store.ts";
import { DIFF_FLAGS, RUN_FLAGS } from "../fuzz/cli.ts";
import { EXPORT_FLAGS } from "../fuzz/commands/export.ts";
import { FUZZ_FLAGS } from "../fuzz/commands/fuzz.ts";
import { MINIMIZE_FLAGS } from "../fuzz/commands/minimize.ts";
import { REPLAY_FLAGS } from "../fuzz/commands/replay.ts";
import { SELFTEST_FLAGS } from "../fuzz/commands/selftest.ts";

const CLI = new URL("../fuzz/cli.ts", import.meta.url).pathname;

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(...args: string[]): Promise<Ran> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

Deno.test("fuzz cli: malformed flags and inputs exit 2 with a clear error and write nothing", async () => {
  const dir = await Deno.makeTempDir();
  const corpus = join(dir, "corpus");
  const bad = join(dir, "bad.json");
  await Deno.writeTextFile(bad, '{"format": "shadowfuzz.trace/1", "ops": [{"op": "jump"}]}');
  const cases: [string[], RegExp][] = [
    [["fuzz", "--runs", "0", "--corpus", corpus], /--runs must be an integer/],
    [["fuzz", "--seconds", "abc", "--corpus", corpus], /--seconds must be an integer/],
    [["fuzz", "--areas", "mmu,tlb", "--corpus", corpus], /unknown area "tlb"/],
    [["fuzz", "--inject", "nope", "--corpus", corpus], /unknown bug "nope"/],
    [["fuzz", "--backend", "qemu", "--corpus", corpus], /Unknown backend "qemu"/],
    [["fuzz", "--frobnicate", "--corpus", corpus], /Unknown option '--frobnicate'/],
    [["fuzz", "stray", "--corpus", corpus], /Unexpected argument "stray"/],
    [["replay"], /Missing FINDING.json or ID/],
    [["replay", "0123456789abcdef", "--corpus", corpus], /No finding 0123456789abcdef/],
    [["replay", bad], /Cannot read corpus file/],
    [["minimize", join(dir, "missing.json")], /Cannot read trace/],
    [["minimize", bad], /Cannot parse trace op 0/],
    [["selftest", "--bugs", "nope", "--corpus", corpus], /unknown bug "nope"/],
    [["nonsense"], /Unknown command "nonsense"/],
  ];
  try {
    for (const [args, message] of cases) {
      const r = await cli(...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(" "));
      assert.doesNotMatch(r.stderr, /internal error| {4}at /, args.join(" "));
      assert.equal(await exists(corpus), false, `${args.join(" ")} wrote the corpus`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fuzz cli: --help and -h print the usage on stdout and exit 0", async () => {
  const cases: [string[], RegExp][] = [
    [["--help"], /deno task fuzz .*deno task selftest/s],
    [["fuzz", "--help"], /deno task fuzz \[--seconds N/],
    [["fuzz", "--seconds", "5", "-h"], /deno task fuzz/],
    [["replay", "--help"], /deno task replay/],
    [["minimize", "-h"], /deno task minimize/],
    [["selftest", "--help"], /deno task selftest/],
    [["run", "--help"], /deno task run TRACE.json/],
    [["diff", "--help"], /deno task diff TRACE.json/],
  ];
  for (const [args, usage] of cases) {
    const r = await cli(...args);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stdout, usage, args.join(" "));
    assert.equal(r.stderr, "", args.join(" "));
  }
  // After "--" it is an argument, not a flag.
  const r = await cli("diff", "--", "--help");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Cannot read trace --help/);
});

Deno.test("fuzz cli: every subcommand's --help explains every flag it accepts", async () => {
  // Each subcommand parses exactly the flags of its spec (usage.ts `args`), so a flag
  // the help does not list cannot be accepted; the help must give each one a sentence.
  const specs: [string, Record<string, { help: string }>][] = [
    ["run", RUN_FLAGS],
    ["diff", DIFF_FLAGS],
    ["fuzz", FUZZ_FLAGS],
    ["replay", REPLAY_FLAGS],
    ["minimize", MINIMIZE_FLAGS],
    ["selftest", SELFTEST_FLAGS],
    ["export", EXPORT_FLAGS],
  ];
  for (const [command, flags] of specs) {
    const r = await cli(command, "--help");
    assert.equal(r.code, 0, `${command} --help: ${r.stderr}`);
    assert.match(r.stdout, /^Usage:/, command);
    const section = r.stdout.slice(r.stdout.indexOf("\nFlags:\n"));
    assert.ok(section.length > 8, `${command} --help has no Flags: section`);
    for (const [name, spec] of Object.entries(flags)) {
      assert.match(
        section,
        new RegExp(`\\n  --${name}\\b[^\\n]* {2,}\\S`),
        `${command} --help does not explain --${name}`,
      );
      assert.ok(spec.help.length > 10, `${command} --${name}: help too short`);
      // The help's first words are on the flag's line (or the next, for long flags).
      const first = spec.help.split(/\s+/).slice(0, 2).join(" ");
      assert.ok(section.includes(first), `${command} --${name}: "${first}" not printed`);
    }
    // A flag not in the spec is refused.
    const bad = await cli(command, "--no-such-flag");
    assert.equal(bad.code, 2, `${command} --no-such-flag`);
  }
});

Deno.test("fuzz cli: a campaign records a finding once, replay exits 1 until fixed", async () => {
  const dir = await Deno.makeTempDir();
  const args = [
    "fuzz",
    "--runs",
    "1200",
    "--seed",
    "3",
    "--workers",
    "1",
    "--areas",
    "pmu",
    "--inject",
    "rdpmc-fast-intel",
    "--corpus",
    dir,
    "--json",
  ];
  try {
    const first = await cli(...args);
    assert.equal(first.code, 1, first.stderr);
    const summary = JSON.parse(first.stdout);
    for (
      const key of ["seed", "seconds", "runs", "ops", "opsPerSec", "workers", "backend", "coverage"]
    ) {
      assert.ok(key in summary, key);
    }
    assert.equal(summary.runs, 1200);
    assert.equal(summary.seed, "3");
    // The shortest of the planted bug's findings (the identity may name the op before
    // the RDPMC too, docs/identity.md, so it can have several).
    const rdpmc = summary.findings
      .filter((f: { signature: string }) =>
        f.signature.startsWith("pmu/rdpmc reserved type: core decoder ignores bit 31")
      )
      .sort((a: { ops: number }, b: { ops: number }) => a.ops - b.ops)[0];
    assert.ok(rdpmc, first.stdout);
    assert.equal(rdpmc.new, true);
    assert.equal(rdpmc.ops, 1);
    assert.match(
      first.stderr,
      new RegExp(`replay: deno task replay ${dir}/findings/${rdpmc.id}.json`),
    );
    // Found again: no new finding, one file, more hits.
    const second = await cli(...args);
    assert.equal(second.code, 0, second.stderr);
    const again = JSON.parse(second.stdout);
    assert.ok(again.findings.every((f: { new: boolean }) => !f.new));
    const { findings, errors } = await listFindings(dir);
    assert.deepEqual(errors, []);
    const file = findings.find((f) => f.id === rdpmc.id)!;
    assert.equal(file.hits, rdpmc.hits * 2);
    assert.equal(file.inject, "rdpmc-fast-intel");
    assert.equal((await listRuns(dir)).runs.length, 2);
    // Replay: reproduces with the bug injected...
    const path = join(dir, "findings", `${rdpmc.id}.json`);
    const replay = await cli("replay", path);
    assert.equal(replay.code, 1, replay.stdout + replay.stderr);
    assert.match(replay.stdout, /^minimized trace on core: reproduces at op 0$/m);
    assert.match(
      replay.stdout,
      /^reproduces on core: the minimized trace diverges with the recorded/m,
    );
    // ...and not once the bug is gone ("fixed").
    const fixed = JSON.parse(await Deno.readTextFile(path));
    delete fixed.inject;
    await Deno.writeTextFile(path, JSON.stringify(fixed));
    const after = await cli("replay", rdpmc.id, "--corpus", dir);
    assert.equal(after.code, 0, after.stdout + after.stderr);
    assert.match(after.stdout, /^fixed: agrees on core on every op of both traces/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fuzz cli: a corrupt corpus file is reported by name and skipped", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "findings"));
    const corrupt = join(dir, "findings", "00000000deadbeef.json");
    await Deno.writeTextFile(corrupt, "{ not json");
    const r = await cli(
      "fuzz",
      "--runs",
      "50",
      "--workers",
      "1",
      "--backend",
      "reference",
      "--corpus",
      dir,
      "--json",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /skipping corrupt corpus file findings\/00000000deadbeef\.json/);
    assert.equal(JSON.parse(r.stdout).corpusErrors[0].file, "00000000deadbeef.json");
    assert.equal(await Deno.readTextFile(corrupt), "{ not json");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fuzz cli: minimize keeps the signature and writes --out atomically", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const trace = join(dir, "t.json");
    await Deno.writeTextFile(
      trace,
      JSON.stringify({
        format: "shadowfuzz.trace/1",
        config: {},
        ops: [
          { op: "wrmsr", msr: "0x186", value: "0x43003c" },
          { op: "pmis" },
          { op: "rdpmc", ecx: "0x80000001", user: false },
          { op: "rdmsr", msr: "0xc1" },
        ],
      }),
    );
    const out = join(dir, "min.json");
    const r = await cli("minimize", trace, "--inject", "rdpmc-fast-intel", "--out", out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /minimized 4 -> 1 ops/);
    const min = JSON.parse(await Deno.readTextFile(out));
    assert.deepEqual(min.ops, [{ op: "rdpmc", ecx: "0x80000001", user: false }]);
    const none = await cli("minimize", trace);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /does not diverge/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fuzz cli: minimize takes a finding by id or file and keeps its signature", async () => {
  // The IN_TXCP deviation's finding, by an id it had under earlier identity rules
  // (35395db6eeee43ef; kept in its aliases, so it resolves whatever its id is now).
  const alias = "35395db6eeee43ef";
  const finding = await readFinding("corpus", alias);
  assert.ok(finding !== null, `no finding has id or alias ${alias}`);
  const id = finding.id;
  const file = join("corpus", "findings", `${id}.json`);
  const before = await Deno.readTextFile(file);
  for (const target of [id, alias, file]) {
    const r = await cli("minimize", target, "--corpus", "corpus");
    assert.equal(r.code, 0, r.stderr);
    const m = /minimized (\d+) -> (\d+) ops \(\d+ runs\): (.*)$/m.exec(r.stderr);
    assert.ok(m, r.stderr);
    assert.equal(Number(m[1]), (finding.minimized as { ops: unknown[] }).ops.length);
    assert.ok(Number(m[2]) <= Number(m[1]));
    assert.equal(m[3], finding.signature);
    assert.equal(JSON.parse(r.stdout).ops.length, Number(m[2]));
  }
  // Printing only: the finding file is untouched.
  assert.equal(await Deno.readTextFile(file), before);
  const missing = await cli("minimize", "0000000000000000", "--corpus", "corpus");
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /No finding 0000000000000000 in corpus/);
});

Deno.test("fuzz cli: SIGKILL at random moments leaves no corrupt or missing finding", async () => {
  const dir = await Deno.makeTempDir();
  try {
    let reported = 0;
    for (let i = 0; i < 6; i++) {
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          CLI,
          "fuzz",
          "--seconds",
          "30",
          "--seed",
          String(i),
          "--workers",
          "1",
          "--areas",
          "pmu",
          "--inject",
          "rdpmc-fast-intel",
          "--corpus",
          dir,
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // Kill during startup, campaign and finding writes alike; the last round waits
      // for the first reported finding (no timing), so some report is always checked.
      const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
      let stderr = "";
      const drain = (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          stderr += value;
        }
      })();
      if (i < 5) {
        await new Promise((r) => setTimeout(r, 700 + ((i * 397) % 1500)));
      } else {
        let ended = false;
        drain.then(() => ended = true);
        while (!ended && !/(?:new|known) finding [0-9a-f]{16}/.test(stderr)) {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      child.kill("SIGKILL");
      await child.status;
      await drain;
      await child.stdout.cancel();
      const { findings, errors } = await listFindings(dir);
      assert.deepEqual(errors, [], `after kill ${i}`);
      for (const m of stderr.matchAll(/(?:new|known) finding ([0-9a-f]{16})/g)) {
        reported++;
        assert.ok(findings.some((f) => f.id === m[1]), `reported ${m[1]} is missing`);
      }
      if (await exists(join(dir, "findings"))) {
        for await (const e of Deno.readDir(join(dir, "findings"))) {
          assert.ok(!e.name.endsWith(".json") || /^[0-9a-f]{16}\.json$/.test(e.name), e.name);
        }
      }
    }
    assert.ok(reported > 0, "no finding was reported before any kill: the test proved nothing");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
