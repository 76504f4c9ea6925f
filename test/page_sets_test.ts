/**
 * @module
 * Dirty logs, aging and discards of large slots and ranges (issue 13 item 4): their
 * outcomes are page sets (`src/trace/pages.ts`) and their cost follows the pages a trace
 * touched, never the slot's or the range's size. The assertions are on behaviour: the
 * outcomes, and the `pagesVisited` counters of the reference and the core, which must
 * not change when only the slot and the range grow. No wall-clock time is asserted.
 *
 * Also: every finding file in `corpus/findings/` (written with hex bitmaps) still reads,
 * and replays to the outcome it stored.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Permitted } from "../src/backend.ts";
import { listFindings } from "../src/corpus/store.ts";
import { CoreBackend, coreFactory } from "../src/core/mod.ts";
import { diffTrace } from "../src/diff.ts";
import { kvmFactory } from "../src/kvm/mod.ts";
import { ReferenceBackend } from "../src/reference/mod.ts";
import {
  outcomeFromJson,
  outcomeToJson,
  permittedFromJson,
  permittedToJson,
} from "../src/trace/json.ts";
import { parseTrace, traceFromJson } from "../src/trace/parse.ts";
import { formatOutcome, formatPermitted, parseOp } from "../src/trace/text.ts";
import type { BackendFactory } from "../src/backend.ts";
import { defaultConfig } from "../src/trace/config.ts";
import type { Op, Trace } from "../src/trace/types.ts";

const CORPUS = new URL("../corpus/", import.meta.url).pathname;
const LARGE = join(CORPUS, "regressions", "large");

interface Lockstep {
  /** Per op: the core's outcome and the reference's permitted set, as text. */
  lines: string[];
  refVisited: number;
  coreVisited: number;
}

/** Runs `ops` on the core and judges each outcome with the reference; fails on a mismatch. */
function lockstep(ops: readonly Op[]): Lockstep {
  const ref = new ReferenceBackend(defaultConfig());
  const core = new CoreBackend(defaultConfig());
  const lines = ops.map((op, i) => {
    const observed = core.step(op);
    const j = ref.judge(op, observed);
    const permitted = j.permitted.map(formatPermitted).join(" | ");
    assert.notEqual(
      j.match,
      -1,
      `op ${i}: core ${formatOutcome(observed)}, permitted ${permitted}`,
    );
    return `${formatOutcome(observed)} in ${permitted}`;
  });
  return { lines, refVisited: ref.pagesVisited, coreVisited: core.pagesVisited };
}

Deno.test("page sets: the corpus's 2^30-page dirty logs run on the reference and the core", async () => {
  const files: string[] = [];
  for await (const e of Deno.readDir(LARGE)) if (e.name.endsWith(".json")) files.push(e.name);
  assert.ok(files.includes("dirtylog-2p30-pages.json"), `no dirtylog-2p30-pages.json in ${LARGE}`);
  for (const name of files.sort()) {
    const trace = parseTrace(await Deno.readTextFile(join(LARGE, name)));
    assert.ok(trace.comment !== undefined && trace.comment.length > 0, `${name} has no comment`);
    const d = diffTrace(trace, coreFactory).divergence;
    assert.equal(d, null, d === null ? "" : `${name}: ${d.kind} at op ${d.index}`);
  }
  // The repro itself: one page, however large the slot, in every form.
  const trace = parseTrace(await Deno.readTextFile(join(LARGE, "dirtylog-2p30-pages.json")));
  const run = lockstep(trace.ops);
  assert.equal(
    run.lines.at(-1),
    "bitmap pages 1073741823 in bitmap pages 1073741823: " +
      "pages written since the last GET (don't care: mapped writable on a read)",
  );
  const core = new CoreBackend(trace.config);
  const last = trace.ops.map((op) => core.step(op)).at(-1)!;
  assert.deepEqual(last, { bitmap: [[2 ** 30 - 1, 2 ** 30 - 1]] });
  assert.deepEqual(outcomeToJson(last), { bitmap: { pages: "1073741823" } });
  // Its cost: the one dirty page.
  assert.equal(run.refVisited, 1);
});

/**
 * A logged slot of `pages` pages at gpa 0 with page tables at 0x1000-0x4000 mapping gvas
 * 0, 0x1000 and 0x2000 to pages 5, 600 and 1000; accesses through them, stores to two
 * more pages, then age and discard over the whole slot (twice), reads, a dirty log.
 */
function agingAndDiscard(pages: number): Op[] {
  return [
    `slot 0 gpa=0x0 pages=${pages} hva=0x100000000 log`,
    "write 0x1000 0x2007",
    "write 0x2000 0x3007",
    "write 0x3000 0x4007",
    "write 0x4000 0x5007",
    "write 0x4008 0x258007",
    "write 0x4010 0x3e8007",
    "cr3 0x1000",
    "access r 0x0",
    "access w 0x1000 0x77",
    "access r 0x2000",
    "write 0x7008 0x1234",
    "write 0x2f0000 0x1 size=1",
    `age 0x0 pages=${pages}`,
    `age 0x0 pages=${pages}`,
    "access r 0x0",
    `age 0x0 pages=${pages}`,
    "dirtylog 0",
    `discard 0x100000000 pages=${pages}`,
    "read 0x7008",
    "read 0x258000",
    `discard 0x100000000 pages=${pages}`,
    `age 0x0 pages=${pages}`,
    "dirtylog 0",
  ].map(parseOp);
}

Deno.test("page sets: age and discard of 2^20 pages cost what is mapped, not the range", () => {
  const small = lockstep(agingAndDiscard(2 ** 10));
  const large = lockstep(agingAndDiscard(2 ** 20));
  // The same outcomes (the ranges differ only in pages nothing touched)...
  const sizeFree = (lines: string[]) => lines.map((l) => l.replace(/pages=\d+/g, "pages=N"));
  assert.deepEqual(sizeFree(large.lines), sizeFree(small.lines));
  assert.match(small.lines[13]!, /^young pages 5,600,1000 in young pages 1-5,7,600,752,1000 /);
  assert.match(small.lines[19]!, /^value 0x0 /);
  // ...for the same work: a range 1024 times larger visits nothing more.
  assert.equal(large.refVisited, small.refVisited);
  assert.equal(large.coreVisited, small.coreVisited);
  assert.ok(small.refVisited > 0 && small.coreVisited > 0, "the counters count nothing");
});

const kvmWhy = kvmFactory.available();
if (kvmWhy !== null) console.log(`page sets: the kvm large-slot test is skipped: ${kvmWhy}`);

Deno.test({
  name: "page sets: the kvm backend reads the dirty log of a 2^26-page slot as its pages",
  ignore: kvmWhy !== null,
  fn() {
    // 256 GiB at gpa 256 GiB: inside the agent's 512 GiB direct map and the hva window.
    const trace: Trace = {
      format: "shadowfuzz.trace/1",
      config: defaultConfig(),
      ops: [
        "slot 3 gpa=0x4000000000 pages=67108864 hva=0x1000000000 log",
        "dirtylog 3",
        "write 0x7ffffff000 0x1",
        "write 0x4000003000 0x1",
        "write 0x4000004000 0x1",
        "dirtylog 3",
        "dirtylog 3",
      ].map(parseOp),
    };
    const factory: BackendFactory = kvmFactory;
    const d = diffTrace(trace, factory);
    assert.equal(d.divergence, null, d.divergence === null ? "" : `op ${d.divergence.index}`);
    assert.equal(d.skipped, 0, d.skipReason);
    const kvm = factory.create(trace.config);
    try {
      const out = trace.ops.map((op) => formatOutcome(kvm.step(op)));
      assert.deepEqual(out, [
        "errno 0",
        "bitmap none",
        "ok",
        "ok",
        "ok",
        "bitmap pages 3-4,67108863",
        "bitmap none",
      ]);
    } finally {
      kvm.close();
    }
  },
});

Deno.test("page sets: every finding file reads and replays to the outcome it stored", async () => {
  const { findings, errors } = await listFindings(CORPUS);
  assert.deepEqual(errors, [], "corrupt finding files");
  const factories = new Map<string, BackendFactory>([["core", coreFactory]]);
  if (kvmWhy === null) factories.set("kvm", kvmFactory);
  let replayed = 0;
  for (const f of findings) {
    const where = `finding ${f.id}`;
    const observed = outcomeFromJson(f.divergence.observed);
    const permitted: Permitted[] = f.divergence.permitted.map(permittedFromJson);
    // The codec reads back what it writes (page lists or hex, whichever it picks).
    assert.deepEqual(outcomeFromJson(outcomeToJson(observed)), observed, where);
    assert.deepEqual(permitted.map((p) => permittedFromJson(permittedToJson(p))), permitted, where);
    const factory = factories.get(f.divergence.backend);
    if (factory === undefined) {
      console.log(`page sets: ${where} not replayed: backend ${f.divergence.backend} unavailable`);
      continue;
    }
    if (f.status === "fixed" || f.status === "invalid" || f.status === "wontfix") continue;
    const d = diffTrace(traceFromJson(f.minimized), factory, {
      inject: f.inject === undefined ? [] : [f.inject],
      audit: f.kind === "invariant",
    }).divergence;
    assert.notEqual(d, null, `${where} no longer reproduces`);
    assert.equal(d!.index, f.divergence.opIndex, where);
    assert.deepEqual(d!.observed, observed, where);
    replayed++;
  }
  assert.ok(replayed > 0, "no finding was replayed");
});
