/**
 * Two real processes recording the same new signatures at once (issue 13 item 2): the
 * first write of a finding and every hit update are under the store's lock, so every
 * hit is kept and exactly one process reports each finding as new.
 */
import assert from "node:assert/strict";
import { listFindings } from "../src/corpus/store.ts";

const SIGNATURES = 100;
const PROCESSES = 2;
const ROUNDS = 3;

/** The script each process runs: waits for "go" on stdin, then records every signature once. */
function childCode(dir: string): string {
  const corpus = new URL("../fuzz/campaign/corpus.ts", import.meta.url).href;
  return `
    const { recordFinding } = await import(${JSON.stringify(corpus)});
    const dir = ${JSON.stringify(dir)};
    const ctx = { seed: String(Deno.pid), backend: "core", harness: "unknown",
      now: new Date().toISOString() };
    const trace = { format: "shadowfuzz.trace/1", config: {}, ops: [{ op: "pmis" }] };
    console.log("ready");
    await Deno.stdin.read(new Uint8Array(1));
    const fresh = [];
    for (let i = 0; i < ${SIGNATURES}; i++) {
      const id = (0xace000 + i).toString(16).padStart(16, "0");
      const f = {
        index: 0, signature: "pmu/pmis: race " + i, id, trace, title: "race " + i,
        divergence: { kind: "divergence", opIndex: 0, observed: { count: 1 }, permitted: [] },
      };
      if (await recordFinding(dir, f, 1, ctx)) fresh.push(id);
    }
    console.log(JSON.stringify(fresh));`;
}

/** Reads lines from a child's stdout. */
async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      yield buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
    }
  }
  if (buffered !== "") yield buffered;
}

async function round(): Promise<{ hits: number; files: number; reportedNew: string[] }> {
  const dir = await Deno.makeTempDir({ prefix: "shadowfuzz-race-" });
  try {
    const children = Array.from({ length: PROCESSES }, () =>
      new Deno.Command(Deno.execPath(), {
        args: ["eval", "--no-check", childCode(dir)],
        env: { NO_COLOR: "1" },
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn());
    const outs = children.map((c) => lines(c.stdout));
    // Start both at once, after both have loaded the store.
    for (const out of outs) assert.equal((await out.next()).value, "ready");
    for (const c of children) {
      const w = c.stdin.getWriter();
      await w.write(new TextEncoder().encode("g"));
      await w.close();
    }
    const reportedNew: string[] = [];
    for (const [i, c] of children.entries()) {
      const last = await outs[i]!.next();
      const status = await c.status;
      const stderr = await new Response(c.stderr).text();
      assert.equal(status.code, 0, stderr);
      reportedNew.push(...JSON.parse(last.value as string) as string[]);
    }
    const { findings, errors } = await listFindings(dir);
    assert.deepEqual(errors, []);
    return {
      hits: findings.reduce((s, f) => s + f.hits, 0),
      files: findings.length,
      reportedNew,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("corpus: two processes recording the same new signatures keep every hit", async () => {
  const want = SIGNATURES * PROCESSES;
  const kept: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const { hits, files, reportedNew } = await round();
    kept.push(hits);
    console.log(
      `round ${r + 1}: ${hits}/${want} hits kept, ${files} findings, ` +
        `${reportedNew.length} reported new, ${
          reportedNew.length - new Set(reportedNew).size
        } reported new by both`,
    );
    assert.equal(files, SIGNATURES);
    assert.equal(hits, want, `round ${r + 1}: hits kept`);
    assert.equal(reportedNew.length, SIGNATURES, "each finding is reported new once");
    assert.equal(new Set(reportedNew).size, SIGNATURES);
  }
});
