/**
 * Bad input to the CLI (issue 13, items 5, 8 and 9): every case exits 2 with a one-line
 * error naming the flag, file or field, and fails before any work (no fuzzing, no
 * minimizing, nothing written). Also the note limit of the store and the dashboard,
 * counted in characters (code points).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { backendFactory } from "../src/backends.ts";
import { readFinding, updateFinding, writeFinding } from "../src/corpus/store.ts";
import { createApp } from "../src/dashboard/app.tsx";
import { sampleFinding, sampleId } from "../src/dashboard/_sample.ts";
import { parseFuzzFlags } from "../fuzz/commands/fuzz.ts";
import { UsageError } from "../fuzz/commands/usage.ts";

const CLI = new URL("../fuzz/cli.ts", import.meta.url).pathname;
const ROOT = new URL("..", import.meta.url).pathname;
/** The documented limit of a trace or finding file (README, "Traces"). */
const MAX_INPUT_BYTES = 16 * 1024 * 1024;

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs the CLI; `asUser` drops root's permission overrides (`setpriv`), so that a
 * read-only directory is read-only for the child as well. A child still running after
 * `killAfterMs` is killed (code -1): the input was not refused fast.
 */
async function cli(
  args: string[],
  opts: { cwd?: string; asUser?: boolean; killAfterMs?: number } = {},
): Promise<Ran> {
  const deno = [Deno.execPath(), "run", "-A", CLI, ...args];
  const argv = opts.asUser && Deno.uid() === 0
    ? ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", ...deno]
    : deno;
  const t0 = performance.now();
  const child = new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
  }).spawn();
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, opts.killAfterMs ?? 60_000);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return {
    code: killed ? -1 : out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    ms: performance.now() - t0,
  };
}

/** Asserts a usage error: exit 2, one line on stderr matching `message`, no stack. */
function assertUsage(r: Ran, message: RegExp, what: string): void {
  assert.equal(r.code, 2, `${what}: exit ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, message, what);
  assert.doesNotMatch(r.stderr, /internal error| {4}at /, what);
  assert.equal(r.stderr.trimEnd().split("\n").length, 1, `${what}: not one line: ${r.stderr}`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Whether a child can be kept from writing into a read-only directory. */
async function canDropWrite(): Promise<string | null> {
  if (Deno.uid() !== 0) return null;
  try {
    const r = await new Deno.Command("setpriv", { args: ["--version"] }).output();
    return r.success ? null : "setpriv --version failed";
  } catch {
    return "running as root without setpriv: a read-only directory is writable to root";
  }
}

const DIVERGING = JSON.stringify({
  format: "shadowfuzz.trace/1",
  config: {},
  ops: [
    { op: "wrmsr", msr: "0x186", value: "0x43003c" },
    { op: "pmis" },
    { op: "rdpmc", ecx: "0x80000001", user: false },
  ],
});

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shadowfuzz-cli-input-" });
  try {
    await fn(dir);
  } finally {
    // Read-only test directories must become writable again to be removed.
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory) await Deno.chmod(join(dir, e.name), 0o755).catch(() => {});
    }
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("cli input: backend names that are Object.prototype keys are unknown backends", async () => {
  for (const name of ["constructor", "toString", "valueOf", "__proto__", "hasOwnProperty"]) {
    assert.throws(() => backendFactory(name), RangeError, name);
  }
  await withDir(async (dir) => {
    const trace = join(dir, "t.json");
    await Deno.writeTextFile(trace, DIVERGING);
    for (const [cmd, name] of [["run", "constructor"], ["diff", "toString"], ["run", "valueOf"]]) {
      const r = await cli([cmd!, trace, "--backend", name!]);
      assertUsage(r, new RegExp(`Unknown backend "${name}": expected one of`), `${cmd} ${name}`);
    }
  });
});

Deno.test("cli input: --inject names in diff and minimize are catalogue bugs", async () => {
  await withDir(async (dir) => {
    const trace = join(dir, "t.json");
    await Deno.writeTextFile(trace, DIVERGING);
    const cases: [string[], RegExp][] = [
      [["diff", trace, "--inject", ""], /--inject: empty bug name/],
      [["diff", trace, "--inject", "nope"], /--inject: unknown bug "nope" \(see/],
      [["diff", trace, "--inject", "rdpmc-fast-intel,"], /--inject: empty bug name/],
      [["diff", trace, "--inject", "rdpmc-fast-intel", "--backend", "reference"], /--backend core/],
      [["minimize", trace, "--inject", ""], /--inject: empty bug name/],
      [["minimize", trace, "--inject", "nope,rdpmc-fast-intel"], /--inject: unknown bug "nope"/],
    ];
    for (const [args, message] of cases) assertUsage(await cli(args), message, args.join(" "));
    // A good name still works.
    const ok = await cli(["diff", trace, "--inject", "rdpmc-fast-intel"]);
    assert.equal(ok.code, 1, ok.stderr);
  });
});

Deno.test("cli input: a finding whose inject field is no catalogue bug is refused, naming file and field", async () => {
  // A shipped finding, by an id it had under earlier identity rules (kept in its aliases).
  const finding = await readFinding(join(ROOT, "corpus"), "35395db6eeee43ef");
  assert.ok(finding !== null, "no shipped finding has id or alias 35395db6eeee43ef");
  const id = finding.id;
  await withDir(async (dir) => {
    await Deno.mkdir(join(dir, "findings"));
    const file = join(dir, "findings", `${id}.json`);
    for (const inject of ["nope", ""]) {
      await Deno.writeTextFile(file, JSON.stringify({ ...finding, inject }));
      const field = new RegExp(
        `${
          file.replace(/[.\/]/g, "\\$&")
        }: field "inject": (unknown bug "${inject}"|empty bug name)`,
      );
      for (
        const args of [
          ["replay", file],
          ["replay", id, "--corpus", dir],
          ["minimize", file],
          ["minimize", id, "--corpus", dir],
        ]
      ) assertUsage(await cli(args), field, `${args.join(" ")} (inject "${inject}")`);
    }
  });
});

Deno.test("cli input: fuzz checks at start that --corpus is a writable directory", async () => {
  const noDrop = await canDropWrite();
  await withDir(async (dir) => {
    // A budget the old code would spend before noticing: the check must come first.
    const fuzz = (corpus: string) => [
      "fuzz",
      "--seconds",
      "600",
      "--workers",
      "0",
      "--backend",
      "reference",
      "--corpus",
      corpus,
    ];
    const file = join(dir, "file");
    await Deno.writeTextFile(file, "x");
    assertUsage(
      await cli(fuzz(file), { killAfterMs: 30_000 }),
      /Cannot use corpus .*file: not a directory/,
      "file",
    );
    assertUsage(
      await cli(fuzz(join(file, "sub")), { killAfterMs: 30_000 }),
      /--corpus .*file\/sub: .*file is not a directory/,
      "through a file",
    );

    // "" would be the working directory: refused, and nothing written there.
    const cwd = join(dir, "cwd");
    await Deno.mkdir(cwd);
    assertUsage(
      await cli(fuzz(""), { cwd, killAfterMs: 30_000 }),
      /--corpus must not be empty/,
      "empty",
    );
    assert.deepEqual(
      [...Deno.readDirSync(cwd)],
      [],
      '--corpus "" wrote into the working directory',
    );

    // A missing parent is not created.
    const deep = join(dir, "none", "a", "b");
    assertUsage(
      await cli(fuzz(deep), { killAfterMs: 30_000 }),
      /--corpus .*none\/a\/b: the parent directory .*none\/a does not exist/,
      "missing parent",
    );
    assert.equal(await exists(join(dir, "none")), false, "created the missing parents");

    if (noDrop !== null) {
      console.log(`skipping the read-only corpus cases: ${noDrop}`);
      return;
    }
    // A read-only corpus, a read-only findings/ in a writable corpus, and a new corpus
    // in a read-only directory.
    const ro = join(dir, "ro");
    await Deno.mkdir(ro);
    await Deno.chmod(ro, 0o555);
    const ro2 = join(dir, "ro2");
    await Deno.mkdir(join(ro2, "findings"), { recursive: true });
    await Deno.chmod(join(ro2, "findings"), 0o555);
    for (
      const [corpus, where] of [[ro, ""], [ro2, ` (${ro2}/findings)`], [
        join(ro, "new"),
        ` (${ro})`,
      ]]
    ) {
      const r = await cli(fuzz(corpus!), { asUser: true, killAfterMs: 30_000 });
      assertUsage(
        r,
        new RegExp(
          `Cannot write corpus ${corpus}${
            where?.replace(/[()]/g, "\\$&")
          }: permission denied \\(EACCES\\)\n`,
        ),
        corpus!,
      );
      assert.equal(r.stdout, "", `${corpus}: printed a summary`);
    }
    await Deno.chmod(join(ro2, "findings"), 0o755);
  });
});

Deno.test("cli input: --workers above the cores is refused with the cap in the message", async () => {
  const cores = navigator.hardwareConcurrency || 1;
  assert.equal(parseFuzzFlags(["--workers", String(cores)]).workers, cores);
  assert.equal(parseFuzzFlags([]).workers, cores);
  assert.throws(
    () => parseFuzzFlags(["--workers", String(cores + 1)]),
    (e) => e instanceof UsageError && new RegExp(`from 0 to ${cores} \\(the cores`).test(e.message),
  );
  const r = await cli(["fuzz", "--workers", "256", "--corpus", "/nonexistent"]);
  assertUsage(r, new RegExp(`--workers must be an integer from 0 to ${cores} \\(the cores`), "256");
});

Deno.test("cli input: minimize checks --out before minimizing", async () => {
  const noDrop = await canDropWrite();
  await withDir(async (dir) => {
    const trace = join(dir, "t.json");
    await Deno.writeTextFile(trace, DIVERGING);
    const min = (out: string) => ["minimize", trace, "--inject", "rdpmc-fast-intel", "--out", out];
    const cases: [string, RegExp][] = [
      ["", /--out must not be empty/],
      [join(dir, "none", "m.json"), /--out .*none\/m\.json: the directory .*none does not exist/],
      [dir, /--out .*: is a directory/],
      [join(trace, "m.json"), /--out .*t\.json\/m\.json: .*t\.json is not a directory/],
    ];
    for (const [out, message] of cases) {
      const r = await cli(min(out));
      assertUsage(r, message, `--out ${out}`);
      assert.doesNotMatch(r.stderr, /minimized/, out);
    }
    if (noDrop !== null) {
      console.log(`skipping the read-only --out case: ${noDrop}`);
      return;
    }
    const ro = join(dir, "ro");
    await Deno.mkdir(ro);
    await Deno.chmod(ro, 0o555);
    const r = await cli(min(join(ro, "m.json")), { asUser: true });
    assertUsage(
      r,
      new RegExp(
        `--out ${ro}/m\\.json: cannot write to ${ro}: Permission denied \\(os error 13\\)\n`,
      ),
      "ro",
    );
    assert.deepEqual([...Deno.readDirSync(ro)], [], "left a probe file");
  });
});

Deno.test("cli input: trace files over the size limit and endless streams are refused fast", async () => {
  await withDir(async (dir) => {
    const big = join(dir, "big.json");
    // A sparse file: 16 MiB + 1 byte without writing them.
    const f = await Deno.open(big, { write: true, create: true });
    await f.truncate(MAX_INPUT_BYTES + 1);
    f.close();
    const cases: [string[], RegExp][] = [
      [["run", "/dev/zero"], /Cannot read trace \/dev\/zero: larger than the 16 MiB limit/],
      [["diff", "/dev/zero"], /Cannot read trace \/dev\/zero: larger than the 16 MiB limit/],
      [["run", big], /Cannot read trace .*big\.json: 16777217 bytes, over the 16 MiB limit/],
      [["minimize", big], /Cannot read trace .*big\.json: 16777217 bytes, over the 16 MiB limit/],
      [["minimize", "/dev/zero"], /Cannot read trace \/dev\/zero: larger than the 16 MiB limit/],
      [["replay", big], /Cannot read finding .*big\.json: 16777217 bytes, over the 16 MiB limit/],
      [["replay", "/dev/zero"], /Cannot read finding \/dev\/zero: larger than the 16 MiB limit/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args, { killAfterMs: 20_000 });
      assertUsage(r, message, args.join(" "));
    }
    // A finding by id over the limit too.
    await Deno.mkdir(join(dir, "findings"));
    await Deno.rename(big, join(dir, "findings", "0123456789abcdef.json"));
    assertUsage(
      await cli(["replay", "0123456789abcdef", "--corpus", dir]),
      /Cannot read finding .*0123456789abcdef\.json: 16777217 bytes, over the 16 MiB limit/,
      "replay id",
    );
  });
});

Deno.test("cli input: run, diff, replay and minimize refuse an extra argument", async () => {
  await withDir(async (dir) => {
    const trace = join(dir, "t.json");
    await Deno.writeTextFile(trace, DIVERGING);
    for (const cmd of ["run", "diff", "replay", "minimize"]) {
      assertUsage(await cli([cmd, trace, "extra"]), /Unexpected argument "extra"/, cmd);
    }
  });
});

Deno.test("cli input: --help and -h win over bad input in every subcommand", async () => {
  const cases: [string[], RegExp][] = [
    [["run", "/dev/zero", "extra", "--help"], /deno task run TRACE.json/],
    [["diff", "t.json", "--inject", "", "-h"], /deno task diff TRACE.json/],
    [["fuzz", "--workers", "256", "--corpus", "", "--help"], /deno task fuzz/],
    [["replay", "/dev/zero", "-h"], /deno task replay/],
    [["minimize", "x.json", "--out", "", "--help"], /deno task minimize/],
    [["selftest", "-h"], /deno task selftest/],
  ];
  for (const [args, usage] of cases) {
    const r = await cli(args);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stdout, usage, args.join(" "));
    assert.equal(r.stderr, "", args.join(" "));
  }
});

Deno.test("notes: the limit counts characters, not UTF-16 units or form bytes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shadowfuzz-note-" });
  const token = "t".repeat(64);
  try {
    const id = sampleId(1);
    await writeFinding(dir, sampleFinding(1));
    const app = createApp({ corpusDir: dir, token });
    const post = (note: string) =>
      app.request(`/findings/${id}/status`, {
        method: "POST",
        headers: {
          "Content-Type": "application/x-www-form-urlencoded",
          Origin: "http://localhost",
          "Sec-Fetch-Site": "same-origin",
        },
        body: new URLSearchParams({ csrf: token, status: "confirmed", note }).toString(),
      });
    // 2,000 CJK characters: 6,000 UTF-8 bytes, 18,000 bytes URL-encoded.
    const cjk = "漢字".repeat(1000);
    assert.equal((await post(cjk)).status, 303);
    assert.equal((await readFinding(dir, id))?.note, cjk);
    // 4,000 characters outside the BMP (8,000 UTF-16 units, 48,000 bytes encoded).
    const astral = "𠀀".repeat(4000);
    assert.equal((await post(astral)).status, 303);
    assert.equal((await readFinding(dir, id))?.note, astral);
    const over = await post(astral + "𠀀");
    assert.equal(over.status, 400);
    assert.match(await over.text(), /The note is longer than 4000 characters/);
    // The store itself: 4,000 characters are accepted, 4,001 refused.
    await updateFinding(dir, id, { note: "😀".repeat(4000) });
    assert.equal([...(await readFinding(dir, id))!.note!].length, 4000);
    await assert.rejects(
      () => updateFinding(dir, id, { note: "😀".repeat(4001) }),
      /note is longer than 4000 characters/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli input: a finding nested deeper than the store allows is refused by field, not a stack overflow", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const shipped = [...Deno.readDirSync("corpus/findings")].find((e) => e.name.endsWith(".json"))!;
    const f = JSON.parse(await Deno.readTextFile(`corpus/findings/${shipped.name}`));
    // 100,000 levels in a field the validator does not look into.
    let deep = "0";
    for (let i = 0; i < 100_000; i++) deep = `[${deep}]`;
    const text = JSON.stringify(f).replace(/"observed":/, `"observed":${deep},"was":`);
    const file = `${dir}/${f.id}.json`;
    await Deno.writeTextFile(file, text);
    const cmd = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "fuzz/cli.ts", "replay", file],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    });
    const out = await cmd.output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 2, stderr);
    assert.match(stderr, /field "divergence\.observed" nests deeper than 64 levels/);
    assert.doesNotMatch(stderr, /Maximum call stack/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
