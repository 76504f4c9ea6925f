import assert from "node:assert/strict";
import { join } from "node:path";
import {
  atomicWriteText,
  isFindingId,
  listFindings,
  listRuns,
  MAX_NOTE_LENGTH,
  modifyFinding,
  readFinding,
  readSelfTest,
  updateFinding,
  writeFinding,
  writeRun,
} from "./store.ts";
import type { FindingStatus, RunRecord } from "./types.ts";
import { sampleFinding, sampleId, sampleRun, sampleSelfTest } from "../dashboard/_sample.ts";

async function withCorpus(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shadowfuzz-store-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("store: a written finding reads back equal and is listed", async () => {
  await withCorpus(async (dir) => {
    const f = sampleFinding(1);
    await writeFinding(dir, f);
    assert.deepEqual(await readFinding(dir, f.id), f);
    const { findings, errors } = await listFindings(dir);
    assert.deepEqual(findings, [f]);
    assert.deepEqual(errors, []);
    assert.deepEqual(await names(join(dir, "findings")), [`${f.id}.json`]);
  });
});

Deno.test("store: a corpus without findings/ lists nothing and reads null", async () => {
  await withCorpus(async (dir) => {
    assert.deepEqual(await listFindings(dir), { findings: [], errors: [] });
    assert.equal(await readFinding(dir, sampleId(5)), null);
    assert.deepEqual(await listRuns(dir), { runs: [], errors: [] });
    assert.equal(await readSelfTest(dir), null);
  });
});

Deno.test("store: malformed ids are refused before any file is touched", async () => {
  await withCorpus(async (dir) => {
    await Deno.mkdir(join(dir, "findings"));
    // A file the traversal would reach if the id were used as a path.
    await Deno.writeTextFile(join(dir, "secret.json"), JSON.stringify(sampleFinding(2)));
    for (
      const id of [
        "../secret",
        "..%2Fsecret",
        "0000000000000001/..",
        "ABCDEF0123456789",
        "123",
        "",
        "000000000000000g",
        "0000000000000001 ",
      ]
    ) {
      assert.equal(isFindingId(id), false, id);
      await assert.rejects(() => readFinding(dir, id), TypeError);
      await assert.rejects(() => updateFinding(dir, id, { status: "fixed" }), TypeError);
    }
    assert.deepEqual(await names(join(dir, "findings")), []);
  });
});

Deno.test("store: corrupt, invalid and misnamed files are reported by name and skipped", async () => {
  await withCorpus(async (dir) => {
    const good = sampleFinding(3);
    await writeFinding(dir, good);
    const base = join(dir, "findings");
    await Deno.writeTextFile(join(base, "aaaaaaaaaaaaaaaa.json"), "{ not json");
    const invalid = { ...sampleFinding(4), status: "bogus" };
    await Deno.writeTextFile(join(base, `${sampleId(4)}.json`), JSON.stringify(invalid));
    await Deno.writeTextFile(join(base, "bbbbbbbbbbbbbbbb.json"), JSON.stringify(sampleFinding(6)));
    await Deno.writeTextFile(join(base, "notes.txt"), "ignored");
    await Deno.writeTextFile(join(base, ".x.json.123.tmp"), "ignored");
    const { findings, errors } = await listFindings(dir);
    assert.deepEqual(findings, [good]);
    assert.deepEqual(errors.map((e) => e.file), [
      `${sampleId(4)}.json`,
      "aaaaaaaaaaaaaaaa.json",
      "bbbbbbbbbbbbbbbb.json",
    ]);
    assert.match(errors[0]!.error, /"status"/);
    assert.match(errors[1]!.error, /Cannot parse JSON/);
    assert.match(errors[2]!.error, /does not match the file name/);
    await assert.rejects(() => readFinding(dir, "aaaaaaaaaaaaaaaa"), SyntaxError);
    await assert.rejects(() => readFinding(dir, sampleId(4)), TypeError);
  });
});

Deno.test("store: structural validation names the bad field", async () => {
  await withCorpus(async (dir) => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ hits: -1 }, /"hits"/],
      [{ area: "gpu" }, /"area"/],
      [{ minimized: { ops: "no" } }, /"minimized.ops"/],
      [{ divergence: { opIndex: 0, backend: "core", permitted: [] } }, /"divergence.observed"/],
      [{ firstSeen: "yesterday" }, /"firstSeen"/],
      [{ format: "shadowfuzz.finding/2" }, /"format"/],
      [{ id: "../../etc/passwd" }, /"id"/],
    ];
    for (const [override, re] of cases) {
      const f = { ...sampleFinding(7), ...override };
      // deno-lint-ignore no-explicit-any
      await assert.rejects(() => writeFinding(dir, f as any), re);
    }
    assert.deepEqual(await listFindings(dir), { findings: [], errors: [] });
  });
});

Deno.test("store: updateFinding sets status and note, and an empty note clears it", async () => {
  await withCorpus(async (dir) => {
    const f = sampleFinding(8, { status: "new" });
    await writeFinding(dir, f);
    const updated = await updateFinding(dir, f.id, { status: "confirmed", note: "seen <b>x</b>" });
    assert.equal(updated?.status, "confirmed");
    assert.equal((await readFinding(dir, f.id))?.note, "seen <b>x</b>");
    await updateFinding(dir, f.id, { note: "" });
    const after = await readFinding(dir, f.id);
    assert.equal(after?.note, undefined);
    assert.equal(after?.status, "confirmed");
    assert.deepEqual(await names(join(dir, "findings")), [`${f.id}.json`]);
    assert.equal(await updateFinding(dir, sampleId(99), { status: "fixed" }), null);
  });
});

Deno.test("store: a bad status or an over-long note writes nothing", async () => {
  await withCorpus(async (dir) => {
    const f = sampleFinding(9);
    await writeFinding(dir, f);
    const path = join(dir, "findings", `${f.id}.json`);
    const before = await Deno.readTextFile(path);
    await assert.rejects(
      () => updateFinding(dir, f.id, { status: "pwned" as FindingStatus }),
      /status must be one of/,
    );
    await assert.rejects(
      () => updateFinding(dir, f.id, { note: "x".repeat(MAX_NOTE_LENGTH + 1) }),
      /longer than/,
    );
    assert.equal(await Deno.readTextFile(path), before);
    assert.deepEqual(await names(join(dir, "findings")), [`${f.id}.json`]);
  });
});

Deno.test("store: concurrent read-modify-writes lose no hit", async () => {
  await withCorpus(async (dir) => {
    const f = sampleFinding(10, { hits: 1 });
    await writeFinding(dir, f);
    await Promise.all(
      Array.from({ length: 25 }, () =>
        modifyFinding(dir, f.id, (x) => {
          x.hits += 1;
          return x;
        })),
    );
    assert.equal((await readFinding(dir, f.id))?.hits, 26);
    assert.deepEqual(await names(join(dir, "findings")), [`${f.id}.json`]);
  });
});

Deno.test("store: modifyFinding refuses to change the id", async () => {
  await withCorpus(async (dir) => {
    const f = sampleFinding(11);
    await writeFinding(dir, f);
    await assert.rejects(
      () => modifyFinding(dir, f.id, (x) => ({ ...x, id: sampleId(12) })),
      /cannot change/,
    );
    assert.deepEqual(await readFinding(dir, f.id), f);
  });
});

Deno.test("store: atomicWriteText replaces the file and leaves no temp file", async () => {
  await withCorpus(async (dir) => {
    const path = join(dir, "x.json");
    await atomicWriteText(path, "one");
    await atomicWriteText(path, "two");
    assert.equal(await Deno.readTextFile(path), "two");
    assert.deepEqual(await names(dir), ["x.json"]);
  });
});

Deno.test("store: runs are written, listed oldest first, and a corrupt one is reported", async () => {
  await withCorpus(async (dir) => {
    const later = sampleRun(5);
    const earlier = sampleRun(1);
    const file = await writeRun(dir, later);
    assert.match(file, /^[0-9A-Za-z-]+\.json$/);
    await writeRun(dir, earlier);
    await Deno.writeTextFile(join(dir, "runs", "broken.json"), '{"format": "shadowfuzz.run/1"}');
    const { runs, errors } = await listRuns(dir);
    assert.deepEqual(runs, [earlier, later]);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.file, "broken.json");
    await assert.rejects(
      () => writeRun(dir, { ...earlier, opsPerSec: "fast" } as unknown as RunRecord),
      /opsPerSec/,
    );
  });
});

Deno.test("store: self-test results are read and validated", async () => {
  await withCorpus(async (dir) => {
    const s = sampleSelfTest();
    await Deno.writeTextFile(join(dir, "selftest.json"), JSON.stringify(s));
    assert.deepEqual(await readSelfTest(dir), s);
    await Deno.writeTextFile(join(dir, "selftest.json"), JSON.stringify({ ...s, bugs: [{}] }));
    await assert.rejects(() => readSelfTest(dir), /bugs\[0\]\.name/);
    await Deno.writeTextFile(join(dir, "selftest.json"), "[");
    await assert.rejects(() => readSelfTest(dir), SyntaxError);
  });
});

Deno.test("store: read-modify-writes from two processes lose no hit (lock file)", async () => {
  await withCorpus(async (dir) => {
    const f = sampleFinding(13, { hits: 0 });
    await writeFinding(dir, f);
    const store = new URL("./store.ts", import.meta.url).href;
    const code = `
      const { modifyFinding } = await import(${JSON.stringify(store)});
      for (let i = 0; i < 15; i++) {
        await modifyFinding(${JSON.stringify(dir)}, ${JSON.stringify(f.id)}, (x) => {
          x.hits += 1;
          return x;
        });
      }`;
    const run = () =>
      new Deno.Command(Deno.execPath(), {
        args: ["eval", "--no-check", code],
        stdout: "null",
        stderr: "piped",
      }).output();
    const results = await Promise.all([run(), run(), run()]);
    for (const r of results) assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    assert.equal((await readFinding(dir, f.id))?.hits, 45);
    assert.deepEqual(await names(join(dir, "findings")), [`${f.id}.json`]);
  });
});

Deno.test("store: modifying a finding in a corpus without findings/ returns null", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { modifyFinding } = await import("./store.ts");
    assert.equal(await modifyFinding(dir, "0123456789abcdef", (f) => f), null);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("store: a corrupt finding read by id names its file in the error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { readFinding } = await import("./store.ts");
    await Deno.mkdir(join(dir, "findings"));
    await Deno.writeTextFile(join(dir, "findings", "0123456789abcdef.json"), "{ not json");
    await assert.rejects(
      () => readFinding(dir, "0123456789abcdef"),
      (e: Error) => e instanceof SyntaxError && e.message.includes("0123456789abcdef.json"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("store: a finding whose trace would not replay is refused and nothing is written", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { writeFinding } = await import("./store.ts");
    const f = sampleFinding(1);
    const bad = {
      ...f,
      minimized: {
        format: "shadowfuzz.trace/1",
        ops: [{ op: "access", gva: "0x10000000000000000", kind: "read", user: false }],
      },
    };
    await assert.rejects(
      () => writeFinding(dir, bad),
      (e: Error) => e instanceof TypeError && e.message.includes('field "minimized"'),
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
