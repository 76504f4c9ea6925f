import assert from "node:assert/strict";
import { join } from "node:path";
import {
  atomicWriteText,
  checkWritable,
  CorpusWriteError,
  isFindingId,
  listFindings,
  listRuns,
  lockStats,
  MAX_HOST_BYTES,
  MAX_NOTE_LENGTH,
  modifyFinding,
  parseFindingFile,
  readFinding,
  readSelfTest,
  setWriteFnForTesting,
  updateFinding,
  validateFinding,
  writeFinding,
  writeRun,
} from "./store.ts";
import { type Finding, FINDING_FORMAT_V2, type FindingStatus, type RunRecord } from "./types.ts";
import { addHits } from "../../fuzz/campaign/corpus.ts";
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
      [{ format: "shadowfuzz.finding/3" }, /"format"/],
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

/** A finding of about 18 KB (the size of the example), valid and replayable. */
function bigFinding(n: number): Finding {
  const f = sampleFinding(n);
  const trace = f.trace as { ops: unknown[] };
  const ops = [...trace.ops];
  for (let i = 0; ops.length < 250; i++) {
    ops.splice(ops.length - 1, 0, { op: "invlpg", gva: `0x${(0x10000 + i * 4096).toString(16)}` });
  }
  return { ...f, trace: { ...trace, ops } };
}

/** An error like the one Deno throws for a failed write(2). */
function osError(code: string, no: number, text: string): Error {
  return Object.assign(new Error(`${text} (os error ${no})`), { code });
}

Deno.test("store: a write that takes fewer bytes than given is continued until the file is whole", async () => {
  await withCorpus(async (dir) => {
    const f = bigFinding(20);
    let calls = 0;
    setWriteFnForTesting((file, bytes) => {
      calls++;
      return file.write(bytes.subarray(0, Math.min(bytes.length, 1000)));
    });
    try {
      await writeFinding(dir, f);
    } finally {
      setWriteFnForTesting(null);
    }
    const text = await Deno.readTextFile(join(dir, "findings", `${f.id}.json`));
    assert.ok(text.length > 18_000, `${text.length} bytes`);
    assert.equal(calls, Math.ceil(new TextEncoder().encode(text).length / 1000));
    assert.deepEqual(await readFinding(dir, f.id), f);
  });
});

Deno.test("store: a short write then ENOSPC leaves the old file byte-identical and says why", async () => {
  await withCorpus(async (dir) => {
    const f = bigFinding(21);
    await writeFinding(dir, f);
    const path = join(dir, "findings", `${f.id}.json`);
    const before = await Deno.readFile(path);
    // What the kernel does on a full disk: the first write takes what fits, the next fails.
    let calls = 0;
    setWriteFnForTesting((file, bytes) => {
      if (calls++ === 0) return file.write(bytes.subarray(0, 4096));
      return Promise.reject(osError("ENOSPC", 28, "No space left on device"));
    });
    try {
      await assert.rejects(
        () => updateFinding(dir, f.id, { status: "confirmed" }),
        (e: Error) =>
          e instanceof CorpusWriteError &&
          e.message === `Cannot write ${path}: no space left on device (ENOSPC)`,
      );
      await assert.rejects(
        () => writeFinding(dir, bigFinding(22)),
        /no space left on device \(ENOSPC\)/,
      );
    } finally {
      setWriteFnForTesting(null);
    }
    assert.deepEqual(await Deno.readFile(path), before);
    assert.deepEqual(await names(join(dir, "findings")), [`${f.id}.json`]);
  });
});

Deno.test("store: write errors name the file and the errno class on one line", () => {
  const cases: [unknown, string][] = [
    [osError("EROFS", 30, "Read-only file system"), "read-only file system (EROFS)"],
    [osError("EACCES", 13, "Permission denied"), "permission denied (EACCES)"],
    [new Error("No space left on device (os error 28)"), "no space left on device (ENOSPC)"],
    [new Error("weird\nsecond line"), "weird"],
  ];
  for (const [cause, text] of cases) {
    const e = new CorpusWriteError("corpus/findings/ab.json", cause);
    assert.equal(e.message, `Cannot write corpus/findings/ab.json: ${text}`);
  }
});

/** Fills the file system of `path` with a file, then frees `spare` bytes of it. */
async function fill(path: string, spare: number): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true });
  const chunk = new Uint8Array(65536);
  let size = 0;
  try {
    for (;;) size += await file.write(chunk);
  } catch (e) {
    assert.equal((e as { code?: string }).code, "ENOSPC");
  }
  try {
    if (spare > 0) await file.truncate(Math.max(0, size - spare));
  } finally {
    file.close();
  }
}

/** Runs a command as root; returns its error text, or null when it succeeded. */
async function sh(cmd: string, ...args: string[]): Promise<string | null> {
  try {
    const r = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
    return r.success ? null : new TextDecoder().decode(r.stderr).trim() || `exit ${r.code}`;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

Deno.test("store: on a full 2 MiB tmpfs an update fails clearly and the old finding is kept whole", async () => {
  const mnt = await Deno.makeTempDir({ prefix: "shadowfuzz-tmpfs-" });
  const why = await sh("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt);
  if (why !== null) {
    console.log(`skipped: cannot mount a tmpfs (${why})`);
    await Deno.remove(mnt);
    return;
  }
  try {
    const dir = join(mnt, "corpus");
    const f = bigFinding(23);
    await writeFinding(dir, f);
    const path = join(dir, "findings", `${f.id}.json`);
    const before = await Deno.readFile(path);
    // Fill the file system but for two pages: a write of the 18 KB file then takes
    // 8 KiB and the next write fails (the short write that used to be renamed over it).
    await fill(join(mnt, "filler"), 8192);
    await assert.rejects(
      () => updateFinding(dir, f.id, { status: "confirmed" }),
      (e: Error) => e.message === `Cannot write ${path}: no space left on device (ENOSPC)`,
    );
    await assert.rejects(() => writeFinding(dir, bigFinding(24)), /\(ENOSPC\)/);
    // Full to the last byte: even a small file cannot be written.
    await fill(join(mnt, "filler2"), 0);
    await assert.rejects(
      () =>
        addHits(dir, f.id, 1, { seed: "1", backend: "core", harness: "unknown", now: f.lastSeen }),
      /no space left on device \(ENOSPC\)/,
    );
    const after = await Deno.readFile(path);
    console.log(`full disk: ${after.length} of ${before.length} bytes kept`);
    assert.deepEqual(after, before);
    assert.deepEqual(await names(join(dir, "findings")), [`${f.id}.json`]);
    assert.deepEqual(await readFinding(dir, f.id), f);
    // Read-only: the same, with its own errno class.
    await Deno.remove(join(mnt, "filler"));
    await Deno.remove(join(mnt, "filler2"));
    const ro = await sh("mount", "-o", "remount,ro", mnt);
    if (ro !== null) {
      console.log(`read-only part skipped: cannot remount read-only (${ro})`);
    } else {
      await assert.rejects(
        () => updateFinding(dir, f.id, { status: "confirmed" }),
        (e: Error) => e.message === `Cannot write ${path}: read-only file system (EROFS)`,
      );
      assert.deepEqual(await Deno.readFile(path), before);
    }
  } finally {
    await sh("umount", mnt);
    await Deno.remove(mnt, { recursive: true });
  }
});

/** A pid that was just used by a process that has exited. */
async function deadPid(): Promise<number> {
  // A pid above pid_max can never be alive (an exited child's pid can be reused at once
  // on a busy machine, by a process or a thread: /proc/<tid> exists for threads too).
  try {
    const max = Number((await Deno.readTextFile("/proc/sys/kernel/pid_max")).trim());
    if (Number.isSafeInteger(max) && max > 0) return max + 1;
  } catch {
    // no procfs: fall back to an exited child's pid
  }
  const child = new Deno.Command("true", { stdout: "null", stderr: "null" }).spawn();
  await child.status;
  return child.pid;
}

/** Settles `p` or fails after `ms` (a guard against the old 30 s wait, not a measurement). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, guard]);
  } finally {
    clearTimeout(timer);
  }
}

/** Starts a process that takes the finding's lock through the store and holds it. */
async function lockHolder(dir: string, id: string): Promise<Deno.ChildProcess> {
  const store = new URL("./store.ts", import.meta.url).href;
  const code = `
    const { modifyFinding } = await import(${JSON.stringify(store)});
    await modifyFinding(${JSON.stringify(dir)}, ${JSON.stringify(id)}, (f) => {
      Deno.stdout.writeSync(new TextEncoder().encode("locked\\n"));
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
      return f;
    });`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", code],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  assert.equal(new TextDecoder().decode(value), "locked\n");
  return child;
}

Deno.test("store: a live holder's lock makes others wait; a killed holder's lock is free at once", async () => {
  await withCorpus(async (dir) => {
    const f = sampleFinding(30, { status: "new" });
    await writeFinding(dir, f);
    const lock = join(dir, "findings", `${f.id}.json.lock`);
    // Alive: an update waits for it.
    const holder = await lockHolder(dir, f.id);
    const waits = lockStats.waits;
    let settled = false;
    const pending = updateFinding(dir, f.id, { status: "confirmed" }).finally(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(settled, false, "an update does not run while another process holds the lock");
    assert.equal(lockStats.waits, waits + 1);
    // Killed while holding it: the waiting update proceeds.
    holder.kill("SIGKILL");
    await holder.status;
    await within(pending, 10_000, "the update after the holder was killed");
    assert.equal((await readFinding(dir, f.id))?.status, "confirmed");
    // Killed, with nobody waiting: its lock file stays behind and costs no wait at all.
    const second = await lockHolder(dir, f.id);
    second.kill("SIGKILL");
    await second.status;
    assert.ok(await Deno.stat(lock), "the killed holder's lock file is left behind");
    const before = lockStats.waits;
    await within(updateFinding(dir, f.id, { status: "fixed" }), 10_000, "the update");
    assert.equal(lockStats.waits, before, "the dead holder's lock was taken without waiting");
    assert.equal((await readFinding(dir, f.id))?.status, "fixed");
  });
});

Deno.test("store: a fresh lock file naming a dead pid (the old O_EXCL lock) costs no wait", async () => {
  await withCorpus(async (dir) => {
    const f = sampleFinding(31, { status: "new" });
    await writeFinding(dir, f);
    // What the old store left when its campaign was killed: an existing file, just made.
    await Deno.writeTextFile(join(dir, "findings", `${f.id}.json.lock`), `${await deadPid()}\n`);
    const before = lockStats.waits;
    await within(updateFinding(dir, f.id, { status: "fixed" }), 10_000, "the update");
    assert.equal(lockStats.waits, before);
    assert.equal((await readFinding(dir, f.id))?.status, "fixed");
    assert.deepEqual(await names(join(dir, "findings")), [`${f.id}.json`]);
  });
});

Deno.test("store: opening a directory for writing removes dead writers' temp and lock files", async () => {
  await withCorpus(async (dir) => {
    const base = join(dir, "findings");
    await Deno.mkdir(base);
    const dead = await deadPid();
    const old = new Date(Date.now() - 5 * 60_000);
    const files = {
      deadWriter: `.${sampleId(1)}.json.${dead}.0123abcd.tmp`,
      liveWriter: `.${sampleId(2)}.json.1.0123abcd.tmp`,
      oldNoPid: `.${sampleId(3)}.json.0b6c7c2e-7c4e-4a8e-9d5e-2f1b3c4d5e6f.tmp`,
      freshNoPid: `.${sampleId(4)}.json.9b6c7c2e-7c4e-4a8e-9d5e-2f1b3c4d5e6f.tmp`,
      oldLiveWriter: `.${sampleId(5)}.json.1.4567cdef.tmp`,
      leftLock: `${sampleId(6)}.json.lock`,
    };
    for (const name of Object.values(files)) await Deno.writeTextFile(join(base, name), "x");
    await Deno.utime(join(base, files.oldNoPid), old, old);
    await Deno.utime(join(base, files.oldLiveWriter), old, old);
    const f = sampleFinding(7);
    await writeFinding(dir, f);
    // Deno lets only --allow-all read /proc: under the tasks' permissions a writer's pid
    // cannot be checked, so its fresh temp file is kept until it is a minute old.
    const proc = await Deno.stat("/proc/self").then(() => true, () => false);
    if (!proc) {
      console.log(
        "store test: /proc is not readable with these permissions (Deno needs " +
          "--allow-all for it): a dead writer's fresh temp file is left to the age rule",
      );
    }
    // pid 1 is alive and its fresh temp files are kept.
    assert.deepEqual(
      await names(base),
      [`${f.id}.json`, files.freshNoPid, files.liveWriter, ...(proc ? [] : [files.deadWriter])]
        .sort(),
    );
  });
});

Deno.test("store: checkWritable says why a corpus cannot be written, in one line", async () => {
  await withCorpus(async (dir) => {
    assert.equal(await checkWritable(dir), null);
    assert.equal(await checkWritable(join(dir, "not", "yet")), null, "a corpus to be created");
    await writeFinding(dir, sampleFinding(1));
    assert.equal(await checkWritable(dir), null);
    assert.deepEqual(await names(join(dir, "findings")), [`${sampleId(1)}.json`], "no probe left");
    const file = join(dir, "c.json");
    await Deno.writeTextFile(file, "{}");
    assert.equal(await checkWritable(file), `Cannot use corpus ${file}: not a directory`);
    assert.equal(
      await checkWritable(join(file, "sub")),
      `Cannot use corpus ${join(file, "sub")}: ${file} is not a directory`,
    );
    const other = join(dir, "other");
    await Deno.mkdir(other);
    await Deno.writeTextFile(join(other, "runs"), "");
    assert.equal(
      await checkWritable(other),
      `Cannot use corpus ${other}: ${join(other, "runs")} is not a directory`,
    );
  });
  const mnt = await Deno.makeTempDir({ prefix: "shadowfuzz-tmpfs-" });
  const why = await sh("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt);
  if (why !== null) {
    console.log(`full and read-only parts skipped: cannot mount a tmpfs (${why})`);
    await Deno.remove(mnt);
    return;
  }
  try {
    assert.equal(await checkWritable(mnt), null);
    await fill(join(mnt, "filler"), 0);
    assert.equal(
      await checkWritable(mnt),
      `Cannot write corpus ${mnt}: no space left on device (ENOSPC)`,
    );
    await Deno.remove(join(mnt, "filler"));
    const ro = await sh("mount", "-o", "remount,ro", mnt);
    if (ro !== null) {
      console.log(`read-only part skipped: cannot remount read-only (${ro})`);
    } else {
      assert.equal(
        await checkWritable(mnt),
        `Cannot write corpus ${mnt}: read-only file system (EROFS)`,
      );
    }
  } finally {
    await sh("umount", mnt);
    await Deno.remove(mnt, { recursive: true });
  }
});

Deno.test("store: every shipped finding file still validates", async () => {
  const base = new URL("../../corpus/findings/", import.meta.url).pathname;
  let n = 0;
  for await (const e of Deno.readDir(base)) {
    if (!e.name.endsWith(".json")) continue;
    parseFindingFile(await Deno.readTextFile(join(base, e.name)), e.name);
    n++;
  }
  assert.ok(n > 0, "the shipped corpus has findings");
});

Deno.test("store: the optional fields of format /2 are accepted and checked", async () => {
  await withCorpus(async (dir) => {
    const good = sampleFinding(40, {
      format: FINDING_FORMAT_V2,
      aliases: [sampleId(41)],
      deviation: "spurious-pmi-after-write",
      host: { kernel: "6.10.0", cpu: { vendor: "GenuineIntel" } },
      history: [{ time: "2026-11-01T00:00:00.000Z", seed: "1", hits: 2 }],
    });
    await writeFinding(dir, good);
    assert.deepEqual(await readFinding(dir, good.id), good);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ aliases: ["ABC"] }, /"aliases"/],
      [{ aliases: "0000000000000001" }, /"aliases"/],
      [{ deviation: 3 }, /"deviation"/],
      [{ host: [1] }, /"host" is not a plain object/],
      [{ host: null }, /"host" is not a plain object/],
      [{ host: new Date(0) }, /"host" is not a plain object/],
      [{ host: { blob: "x".repeat(MAX_HOST_BYTES) } }, /"host" is larger than 64 KiB/],
      [{ history: [{ time: "x", seed: "1", hits: 1 }] }, /"history\[0\]\.time"/],
      [{ history: [{ time: good.firstSeen, seed: "1", hits: 0 }] }, /"history\[0\]\.hits"/],
    ];
    for (const [override, re] of cases) {
      assert.throws(() => validateFinding({ ...good, ...override }), re);
    }
  });
});
