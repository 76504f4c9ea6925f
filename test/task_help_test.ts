/**
 * `--help`, `-h` and an unknown flag on the script tasks that are not `fuzz/cli.ts`
 * subcommands (`bench`, `bench:dashboard`, `kvm-conformance`, `kvm-throughput`,
 * `agent`, `migrate`, `kvm-info`, `dashboard`), each run as its deno.json task line with the task's own permissions (issue
 * 11 item 9): the usage on stdout and exit 0 within seconds, without running the task
 * (the agent's generated module is not rewritten); an unknown flag is one line on
 * stderr and exit 2.
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url).pathname;
const AGENT_BIN = new URL("../src/kvm/agent/agent_bin.ts", import.meta.url).pathname;

/** A task that runs past this is running the task, not printing its help. */
const LIMIT_MS = 30_000;

const TASKS = [
  "bench",
  "bench:dashboard",
  "kvm-conformance",
  "kvm-throughput",
  "agent",
  "migrate",
  "kvm-info",
  "dashboard",
];

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The task's command line from deno.json, run directly (so a task that ignores `--help`
 * can be killed: `deno task` would leave the script running as its child), killed
 * after {@linkcode LIMIT_MS} (code null).
 */
async function task(name: string, ...args: string[]): Promise<Ran> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const entry: string | { command: string } = config.tasks[name];
  const line = typeof entry === "string" ? entry : entry.command;
  const [deno, ...words] = line.split(/\s+/);
  assert.equal(deno, "deno", `task ${name} is not a deno command: ${line}`);
  const child = new Deno.Command(Deno.execPath(), {
    args: [...words, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, LIMIT_MS);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return {
    code: killed ? null : out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

for (const name of TASKS) {
  Deno.test(`task ${name}: --help and -h print the usage and exit 0 at once`, async () => {
    for (const flag of ["--help", "-h"]) {
      const before = await Deno.readTextFile(AGENT_BIN);
      const mtime = (await Deno.stat(AGENT_BIN)).mtime?.getTime();
      const r = await task(name, flag);
      assert.notEqual(r.code, null, `${name} ${flag} still ran after ${LIMIT_MS} ms`);
      assert.equal(r.code, 0, `${name} ${flag}: exit ${r.code}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^Usage: deno task ${name} `), `${name} ${flag}`);
      assert.doesNotMatch(r.stderr, /Error| {4}at /, `${name} ${flag}`);
      // Nothing else ran: the agent's module is untouched (the old `agent` rebuilt it).
      assert.equal(await Deno.readTextFile(AGENT_BIN), before, `${name} ${flag} wrote agent_bin`);
      assert.equal((await Deno.stat(AGENT_BIN)).mtime?.getTime(), mtime, `${name} ${flag}`);
    }
  });

  Deno.test(`task ${name}: an unknown flag is one line on stderr and exit 2`, async () => {
    const r = await task(name, "--no-such-flag");
    assert.notEqual(r.code, null, `${name} --no-such-flag still ran after ${LIMIT_MS} ms`);
    assert.equal(r.code, 2, `${name}: exit ${r.code}: ${r.stderr}`);
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, `${name}: ${r.stderr}`);
    assert.match(
      lines[0]!,
      new RegExp(`^Cannot parse arguments of deno task ${name}: .*--no-such-flag`),
    );
    assert.equal(r.stdout, "", `${name} printed: ${r.stdout}`);
  });
}
