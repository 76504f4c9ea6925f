/**
 * A finding's content apart from its per-run state (issue 14 section 5): hits, last seen,
 * seeds and the hit history go to the untracked `corpus/state/<id>.json`; triage goes to
 * the tracked `corpus/findings/<id>.json`; readers see both merged. Ordinary runs leave
 * `git status` clean.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  findFindingByAlias,
  listFindings,
  modifyFinding,
  readFinding,
  readFindingState,
  recordSighting,
  updateFinding,
  writeFinding,
  writeRun,
} from "../src/corpus/store.ts";
import { MAX_HISTORY, RUN_FORMAT } from "../src/corpus/types.ts";
import { addHits, type FindingContext } from "../fuzz/campaign/corpus.ts";
import { sampleFinding, sampleId, sampleRun } from "../src/dashboard/_sample.ts";

const ROOT = new URL("..", import.meta.url).pathname;
/** A finding of the shipped corpus (the first by name), whose file git tracks. */
const TRACKED = [...Deno.readDirSync(join(ROOT, "corpus", "findings"))]
  .map((e) => e.name).filter((n) => /^[0-9a-f]{16}\.json$/.test(n)).sort()[0]!.slice(0, 16);

async function withCorpus(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shadowfuzz-state-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function ctx(seed: string, now: string): FindingContext {
  return { seed, backend: "core", harness: "unknown", now };
}

async function copyTracked(dir: string): Promise<string> {
  await Deno.mkdir(join(dir, "findings"), { recursive: true });
  const path = join(dir, "findings", `${TRACKED}.json`);
  await Deno.copyFile(join(ROOT, "corpus", "findings", `${TRACKED}.json`), path);
  return path;
}

Deno.test("corpus state: a hit on a tracked finding leaves its file byte-identical", async () => {
  await withCorpus(async (dir) => {
    const path = await copyTracked(dir);
    const before = await Deno.readFile(path);
    const base = (await readFinding(dir, TRACKED))!;
    assert.equal(await addHits(dir, TRACKED, 3, ctx("77", "2030-01-01T00:00:00.000Z")), true);
    assert.equal(await addHits(dir, TRACKED, 2, ctx("78", "2030-01-02T00:00:00.000Z")), true);
    assert.deepEqual(await Deno.readFile(path), before, "the tracked file is unchanged");
    const after = (await readFinding(dir, TRACKED))!;
    assert.equal(after.hits, base.hits + 5, "the state adds to the tracked baseline");
    assert.equal(after.lastSeen, "2030-01-02T00:00:00.000Z");
    assert.deepEqual(after.seeds, [...base.seeds, "77", "78"].slice(-20));
    assert.deepEqual(after.history, [
      { time: "2030-01-01T00:00:00.000Z", seed: "77", hits: 3 },
      { time: "2030-01-02T00:00:00.000Z", seed: "78", hits: 2 },
    ]);
    const state = (await readFindingState(dir, TRACKED))!;
    assert.equal(state.hits, 5);
    const { findings, errors } = await listFindings(dir);
    assert.deepEqual(errors, []);
    assert.deepEqual(findings, [after]);
    // Everything else of the finding is the tracked file's.
    const { hits: _h, lastSeen: _l, seeds: _s, history: _y, ...rest } = after;
    const { hits: _h2, lastSeen: _l2, seeds: _s2, ...baseRest } = base;
    assert.deepEqual(rest, baseRest);
  });
});

Deno.test("corpus state: a triage change writes the finding file and leaves the state alone", async () => {
  await withCorpus(async (dir) => {
    const path = await copyTracked(dir);
    await addHits(dir, TRACKED, 4, ctx("5", "2030-01-01T00:00:00.000Z"));
    const statePath = join(dir, "state", `${TRACKED}.json`);
    const stateBefore = await Deno.readFile(statePath);
    const hits = (await readFinding(dir, TRACKED))!.hits;
    const updated = await updateFinding(dir, TRACKED, { status: "wontfix", note: "known" });
    assert.equal(updated?.status, "wontfix");
    assert.equal(updated?.hits, hits);
    assert.deepEqual(await Deno.readFile(statePath), stateBefore);
    const content = JSON.parse(await Deno.readTextFile(path));
    assert.equal(content.status, "wontfix");
    assert.equal(content.note, "known");
    assert.equal(content.hits, hits - 4, "the file keeps its baseline hits");
    assert.equal(content.history, undefined);
  });
});

Deno.test("corpus state: a new finding is one file, its later hits go to the state", async () => {
  await withCorpus(async (dir) => {
    const f = sampleFinding(3, { hits: 2, seeds: ["1"], lastSeen: "2030-01-01T00:00:00.000Z" });
    const sighting = { hits: 2, seed: "1", time: "2030-01-01T00:00:00.000Z" };
    assert.equal(await recordSighting(dir, f.id, sighting, () => f), "new");
    assert.deepEqual(await readFinding(dir, f.id), f);
    assert.equal(await readFindingState(dir, f.id), null);
    const path = join(dir, "findings", `${f.id}.json`);
    const before = await Deno.readFile(path);
    assert.equal(
      await recordSighting(dir, f.id, { ...sighting, hits: 1, seed: "2" }, () => f),
      "hit",
    );
    assert.deepEqual(await Deno.readFile(path), before);
    assert.equal((await readFinding(dir, f.id))?.hits, 3);
  });
});

Deno.test("corpus state: a new finding does not inherit the state of a removed one", async () => {
  await withCorpus(async (dir) => {
    const f = sampleFinding(8, { hits: 1, seeds: ["1"] });
    await writeFinding(dir, f);
    await addHits(dir, f.id, 40, ctx("2", "2030-01-01T00:00:00.000Z"));
    await Deno.remove(join(dir, "findings", `${f.id}.json`));
    const sighting = { hits: 1, seed: "3", time: "2030-02-01T00:00:00.000Z" };
    assert.equal(await recordSighting(dir, f.id, sighting, () => f), "new");
    assert.deepEqual(await readFinding(dir, f.id), f);
    const names = [...Deno.readDirSync(join(dir, "state"))].map((e) => e.name);
    assert.equal(names.length, 1);
    assert.match(names[0]!, new RegExp(`^${f.id}\\.json\\.orphan-\\d+$`));
  });
});

Deno.test("corpus state: the hit history keeps the newest 50 sightings", async () => {
  await withCorpus(async (dir) => {
    const f = sampleFinding(4, { hits: 1, seeds: ["0"] });
    await writeFinding(dir, f);
    for (let i = 1; i <= MAX_HISTORY + 7; i++) {
      await addHits(
        dir,
        f.id,
        1,
        ctx(String(i), new Date(Date.UTC(2030, 0, 1, 0, i)).toISOString()),
      );
    }
    const after = (await readFinding(dir, f.id))!;
    assert.equal(after.hits, 1 + MAX_HISTORY + 7);
    assert.equal(after.history?.length, MAX_HISTORY);
    assert.equal(after.history?.[0]?.seed, "8");
    assert.equal(after.history?.at(-1)?.seed, String(MAX_HISTORY + 7));
    assert.equal(after.seeds.length, 20);
    assert.equal(after.seeds.at(-1), String(MAX_HISTORY + 7));
  });
});

Deno.test("corpus state: an old id listed in aliases resolves to its finding", async () => {
  await withCorpus(async (dir) => {
    const old = sampleId(0xabc);
    const f = sampleFinding(5, { aliases: [old, sampleId(0xabd)], status: "new" });
    await writeFinding(dir, f);
    assert.equal((await readFinding(dir, old))?.id, f.id);
    assert.equal((await findFindingByAlias(dir, sampleId(0xabd)))?.id, f.id);
    assert.equal(await readFinding(dir, sampleId(0xabe)), null);
    assert.equal((await updateFinding(dir, old, { status: "confirmed" }))?.id, f.id);
    assert.equal((await readFinding(dir, f.id))?.status, "confirmed");
    // A campaign that still computes the old id adds its hits to the finding.
    const hits = f.hits;
    assert.equal(await addHits(dir, old, 2, ctx("9", "2030-01-01T00:00:00.000Z")), true);
    assert.equal((await readFinding(dir, f.id))?.hits, hits + 2);
    assert.deepEqual([...Deno.readDirSync(join(dir, "findings"))].map((e) => e.name), [
      `${f.id}.json`,
    ]);
  });
});

Deno.test("corpus state: a corrupt state file hides nothing and is set aside, not lost", async () => {
  await withCorpus(async (dir) => {
    const f = sampleFinding(6);
    await writeFinding(dir, f);
    await Deno.mkdir(join(dir, "state"));
    await Deno.writeTextFile(join(dir, "state", `${f.id}.json`), "{ not json");
    const { findings, errors } = await listFindings(dir);
    assert.deepEqual(findings, [f]);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.file, `../state/${f.id}.json`);
    assert.match(errors[0]!.error, /Cannot parse JSON/);
    assert.deepEqual(await readFinding(dir, f.id), f);
    await addHits(dir, f.id, 1, ctx("3", "2030-01-01T00:00:00.000Z"));
    assert.equal((await readFinding(dir, f.id))?.hits, f.hits + 1);
    const names = [...Deno.readDirSync(join(dir, "state"))].map((e) => e.name).sort();
    assert.equal(names.length, 2);
    assert.equal(names[0], `${f.id}.json`);
    assert.match(names[1]!, new RegExp(`^${f.id}\\.json\\.corrupt-\\d+$`));
    assert.equal(await Deno.readTextFile(join(dir, "state", names[1]!)), "{ not json");
  });
});

Deno.test("corpus state: a change that lowers hits below the finding file's is refused", async () => {
  await withCorpus(async (dir) => {
    const f = sampleFinding(7, { hits: 10 });
    await writeFinding(dir, f);
    await assert.rejects(
      () => modifyFinding(dir, f.id, (x) => ({ ...x, hits: 3 })),
      /"hits" \(3\) is below the finding file's 10/,
    );
    assert.deepEqual(await readFinding(dir, f.id), f);
  });
});

async function git(cwd: string, ...args: string[]): Promise<string> {
  const r = await new Deno.Command("git", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const err = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, `git ${args.join(" ")}: ${err}`);
  return new TextDecoder().decode(r.stdout);
}

Deno.test("corpus state: hits and a new run record leave git status clean", async () => {
  const gitOk = await new Deno.Command("git", { args: ["--version"], stdout: "null" }).output()
    .then((r) => r.success, () => false);
  if (!gitOk) {
    console.log("skipped: git is not installed");
    return;
  }
  await withCorpus(async (repo) => {
    // A repository like ours: the project's .gitignore, a tracked finding and run record.
    await Deno.copyFile(join(ROOT, ".gitignore"), join(repo, ".gitignore"));
    const corpus = join(repo, "corpus");
    await copyTracked(corpus);
    await writeRun(corpus, sampleRun(1));
    await git(repo, "init", "-q");
    await git(repo, "add", "-f", ".gitignore", "corpus");
    await git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "corpus");
    // What an ordinary campaign writes: hits on the tracked finding, a new run record.
    await addHits(corpus, TRACKED, 7, ctx("1234", new Date().toISOString()));
    await writeRun(corpus, { ...sampleRun(2), format: RUN_FORMAT });
    assert.equal(await git(repo, "status", "--porcelain"), "");
    assert.ok(await readFinding(corpus, TRACKED));
    assert.ok((await readFindingState(corpus, TRACKED))!.hits === 7);
  });
});
