/**
 * Tests of `deno task migrate` (fuzz/commands/migrate.ts): findings move to today's identity with
 * their old ids as aliases, triage and per-run state kept, merges added up, idempotent.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { migrateCorpus } from "../fuzz/commands/migrate.ts";
import { listFindings, readFinding } from "../src/corpus/store.ts";

const SHIPPED = new URL("../corpus/findings/", import.meta.url).pathname;

async function shippedCopy(): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(join(dir, "findings"));
  for await (const e of Deno.readDir(SHIPPED)) {
    if (e.name.endsWith(".json")) {
      await Deno.copyFile(join(SHIPPED, e.name), join(dir, "findings", e.name));
    }
  }
  return dir;
}

Deno.test("migrate: the shipped corpus is already migrated (a run changes nothing)", async () => {
  const dir = await shippedCopy();
  try {
    const r = await migrateCorpus(dir);
    assert.equal(r.written, 0, "the shipped corpus is not under today's identity rules");
    assert.equal(r.removed, 0);
    for (const m of r.migrated) assert.equal(m.oldId, m.newId);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("migrate: an old finding gets its new id, keeps note, status and state, and old ids resolve", async () => {
  const dir = await shippedCopy();
  try {
    const { findings } = await listFindings(dir);
    const core = findings.filter((f) => f.divergence.backend === "core");
    // Two findings of one deviation, turned into old-style files with made-up old ids.
    const [a, b] = core.filter((f) => f.deviation === "np-pf-keeps-stale-spte");
    assert.ok(a !== undefined && b !== undefined);
    const oldA = "00000000000000aa", oldB = "00000000000000bb";
    for (const [f, old, note] of [[a, oldA, "note A"], [b, oldB, "note B"]] as const) {
      const raw = JSON.parse(await Deno.readTextFile(join(dir, "findings", `${f.id}.json`)));
      await Deno.remove(join(dir, "findings", `${f.id}.json`));
      raw.format = "shadowfuzz.finding/1";
      raw.id = old;
      raw.signature = "mmu/access: core=value, permitted={pf}";
      raw.note = note;
      raw.status = old === oldA ? "confirmed" : "new";
      delete raw.aliases;
      delete raw.deviation;
      await Deno.writeTextFile(join(dir, "findings", `${old}.json`), JSON.stringify(raw));
    }
    // Both old ids now map to the same signature (one id): give them the same minimized
    // trace so that the merge is exercised.
    const rawB = JSON.parse(await Deno.readTextFile(join(dir, "findings", `${oldB}.json`)));
    const rawA = JSON.parse(await Deno.readTextFile(join(dir, "findings", `${oldA}.json`)));
    rawB.minimized = rawA.minimized;
    rawB.divergence = rawA.divergence;
    await Deno.writeTextFile(join(dir, "findings", `${oldB}.json`), JSON.stringify(rawB));
    // Per-run state of the old id.
    await Deno.mkdir(join(dir, "state"));
    const state = {
      format: "shadowfuzz.state/1",
      id: oldA,
      hits: 7,
      lastSeen: "2026-11-30T00:00:00.000Z",
      seeds: ["42"],
      history: [{ time: "2026-11-30T00:00:00.000Z", seed: "42", hits: 7 }],
    };
    await Deno.writeTextFile(join(dir, "state", `${oldA}.json`), JSON.stringify(state));
    const r = await migrateCorpus(dir);
    const m = r.migrated.find((x) => x.oldId === oldA)!;
    assert.equal(m.newId, a.id);
    assert.equal(r.migrated.find((x) => x.oldId === oldB)!.newId, a.id, "the two merged");
    const migrated = (await readFinding(dir, a.id))!;
    assert.deepEqual(migrated.aliases?.includes(oldA) && migrated.aliases?.includes(oldB), true);
    assert.equal(migrated.status, "confirmed", "the most advanced status is kept");
    assert.match(migrated.note!, /note A/);
    assert.match(migrated.note!, /note B/);
    assert.equal(migrated.deviation, "np-pf-keeps-stale-spte");
    assert.equal(migrated.hits, a.hits + b.hits + 7, "hits of both files and the state");
    assert.ok(migrated.seeds.includes("42"));
    // The old id still resolves.
    assert.equal((await readFinding(dir, oldB))?.id, a.id);
    // Idempotent.
    const again = await migrateCorpus(dir);
    assert.equal(again.written, 0);
    assert.equal(again.removed, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
