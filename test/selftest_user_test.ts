/**
 * `deno task selftest --as-user` measures what a user sees: one ordinary campaign per
 * planted bug over a copy of the corpus, and campaigns with no bug. A short run over
 * one bug must report the bug as new (exit 1, a finding the uninjected core agrees on),
 * leave the shipped corpus untouched, and a partial run must not replace the record.
 */
import assert from "node:assert/strict";
import { join } from "node:path";

const ROOT = new URL("../", import.meta.url).pathname;

async function tree(dir: string): Promise<string> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort().join("\n");
}

Deno.test("selftest --as-user: a planted bug is reported new and the shipped corpus is untouched", async () => {
  const before = await tree(join(ROOT, "corpus/findings"));
  const record = await Deno.readTextFile(join(ROOT, "corpus/selftest.json"));
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(ROOT, "fuzz/cli.ts"),
      "selftest",
      "--as-user",
      "--bugs",
      "rdpmc-fast-intel",
      "--seconds",
      "8",
      "--clean-seeds",
      "0",
      "--json",
    ],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  });
  const out = await cmd.output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  const view = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
  assert.equal(view.total, 1);
  const bug = view.bugs[0];
  assert.equal(bug.name, "rdpmc-fast-intel");
  assert.equal(bug.exit, 1);
  assert.ok(bug.caused >= 1, JSON.stringify(bug));
  assert.ok(bug.seconds !== null);
  assert.equal(bug.pass, true);
  // The campaign ran over a copy: the shipped corpus and the recorded table are as before.
  assert.equal(await tree(join(ROOT, "corpus/findings")), before);
  assert.equal(await Deno.readTextFile(join(ROOT, "corpus/selftest.json")), record);
});
