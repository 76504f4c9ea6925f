/**
 * A corpus that fills up mid-campaign (issue: nothing lost): the campaign stops, prints
 * its summary and every finding it could not save (whole, as finding JSON), names the
 * file the store could not write, and exits 4; nothing on disk is left half-written.
 */
import assert from "node:assert/strict";
import { cmdFuzz, EXIT_NOT_SAVED } from "../fuzz/commands/fuzz.ts";
import { listFindings, setWriteFnForTesting } from "../src/corpus/store.ts";
import { validateFinding } from "../src/corpus/store.ts";

function enospc(): Error {
  return Object.assign(new Error("No space left on device (os error 28)"), { code: "ENOSPC" });
}

Deno.test("fuzz: a write failing mid-campaign stops it and prints what it could not save", async () => {
  const dir = await Deno.makeTempDir({ prefix: "shadowfuzz-full-" });
  const out: string[] = [], err: string[] = [];
  const log = console.log, error = console.error;
  let calls = 0;
  try {
    // The start check's probe gets through; every finding write after it fails.
    setWriteFnForTesting((file, bytes) => {
      if (calls++ < 1) return file.write(bytes);
      return Promise.reject(enospc());
    });
    console.log = (...a: unknown[]) => out.push(a.join(" "));
    console.error = (...a: unknown[]) => err.push(a.join(" "));
    const code = await cmdFuzz([
      "--runs",
      "3000",
      "--seed",
      "3",
      "--workers",
      "0",
      "--areas",
      "pmu",
      "--inject",
      "rdpmc-fast-intel",
      "--corpus",
      dir,
    ]);
    console.log = log;
    console.error = error;
    setWriteFnForTesting(null);
    assert.equal(code, EXIT_NOT_SAVED, [...out, ...err].join("\n"));
    assert.ok(
      err.some((l) => /Cannot write .*: no space left on device \(ENOSPC\)/.test(l)),
      err.join("\n"),
    );
    // The summary, then each unsaved finding as one JSON line a user can keep.
    assert.ok(out.some((l) => l.startsWith("seed 3:")), out.join("\n"));
    const saved = out.filter((l) => l.startsWith("{")).map((l) => validateFinding(JSON.parse(l)));
    assert.ok(saved.length >= 1, "no unsaved finding was printed");
    assert.ok(saved.every((f) => f.signature.startsWith("pmu/rdpmc")));
    // The campaign stopped at the first failed write: it did not run its whole budget.
    const runs = Number(/(\d+) runs/.exec(out.find((l) => l.startsWith("seed 3:"))!)![1]);
    assert.ok(runs < 3000, `${runs} runs`);
    // Nothing half-written was left in the corpus.
    const { errors } = await listFindings(dir);
    assert.deepEqual(errors, []);
  } finally {
    console.log = log;
    console.error = error;
    setWriteFnForTesting(null);
    await Deno.remove(dir, { recursive: true });
  }
});
