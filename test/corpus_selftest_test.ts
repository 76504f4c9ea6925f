/**
 * The self-test record (issue 14 section 5): `selftest --bugs X` never replaces the full
 * record `corpus/selftest.json` with a partial table; its table goes to the untracked
 * `corpus/state/selftest-partial.json`. A full run replaces the table and keeps the
 * fields it does not set.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cmdSelftest } from "../fuzz/commands/selftest.ts";
import { catalogue } from "../fuzz/campaign/catalogue.ts";
import {
  PARTIAL_SELFTEST,
  readSelfTest,
  type SelfTest,
  stateDir,
  writeSelfTest,
} from "../src/corpus/store.ts";
import { sampleSelfTest } from "../src/dashboard/_sample.ts";

async function withCorpus(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shadowfuzz-selftest-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A full record with a field another mode of the self-test added. */
function fullRecord(): SelfTest & { asUser: unknown } {
  return { ...sampleSelfTest(), asUser: { passed: 3, total: 3 } };
}

Deno.test("selftest record: a run of one bug leaves the full record byte-identical", async () => {
  await withCorpus(async (dir) => {
    const path = join(dir, "selftest.json");
    await Deno.writeTextFile(path, JSON.stringify(fullRecord(), null, 2) + "\n");
    const before = await Deno.readFile(path);
    const bug = catalogue()[0]!.name;
    const log = console.log;
    console.log = () => {};
    try {
      await cmdSelftest(["--bugs", bug, "--seconds", "1", "--corpus", dir, "--json"]);
    } finally {
      console.log = log;
    }
    assert.deepEqual(await Deno.readFile(path), before, "selftest.json is unchanged");
    const partial = JSON.parse(await Deno.readTextFile(join(stateDir(dir), PARTIAL_SELFTEST)));
    assert.deepEqual(partial.bugs.map((b: { name: string }) => b.name), [bug]);
    assert.equal(partial.total, 1);
    assert.equal(partial.partial, true);
  });
});

Deno.test("selftest record: the store sends a partial table elsewhere, a full one keeps extra fields", async () => {
  await withCorpus(async (dir) => {
    const path = join(dir, "selftest.json");
    const one: SelfTest = {
      bugs: [{ name: "x", found: true, seconds: 1, minimizedOps: 3 }],
      found: 1,
      total: 1,
      medianSeconds: 1,
      time: "2030-01-01T00:00:00.000Z",
    };
    // No record yet: a partial run does not make one.
    assert.equal(
      await writeSelfTest(dir, one, { partial: true }),
      join(stateDir(dir), PARTIAL_SELFTEST),
    );
    assert.equal(await readSelfTest(dir), null);
    await Deno.writeTextFile(path, JSON.stringify(fullRecord(), null, 2) + "\n");
    const before = await Deno.readFile(path);
    await writeSelfTest(dir, one, { partial: true });
    assert.deepEqual(await Deno.readFile(path), before);
    // A full run replaces the table and keeps what it does not set.
    const full = { ...sampleSelfTest(), time: "2030-02-01T00:00:00.000Z" };
    assert.equal(await writeSelfTest(dir, full, { partial: false }), path);
    const after = JSON.parse(await Deno.readTextFile(path));
    assert.deepEqual(after, { ...full, asUser: { passed: 3, total: 3 } });
    await assert.rejects(
      () => writeSelfTest(dir, { ...full, found: -1 }, { partial: false }),
      /"found"/,
    );
  });
});
