/**
 * The reducer's driver and order (`fuzz/reduce/reduce.ts`): it terminates on passes that
 * propose cycles or never stop proposing, it judges and accepts only candidates strictly
 * smaller in the order, it keeps its budgets, and the minimizer's "simpler" variants
 * never grow a trace in the order.
 */
import assert from "node:assert/strict";
import { minimizeTrace, simplerOps } from "../fuzz/reduce/minimize.ts";
import { identifyTrace } from "../fuzz/campaign/identity.ts";
import { coreFactory } from "../src/core/mod.ts";
import { diffTrace } from "../src/diff.ts";
import { traceFromJson } from "../src/trace/parse.ts";
import {
  compareTraces,
  less,
  type Pass,
  reduce,
  type ReduceContext,
  traceKey,
} from "../fuzz/reduce/reduce.ts";
import { Sfc32 } from "../fuzz/model/rng.ts";
import { defaultConfig } from "../src/trace/config.ts";
import { formatOp, parseOp } from "../src/trace/text.ts";
import { type Op, type Trace, TRACE_FORMAT } from "../src/trace/types.ts";

function trace(lines: string[]): Trace {
  return { format: TRACE_FORMAT, config: defaultConfig(), ops: lines.map(parseOp) };
}

const withValue = (t: Trace, i: number, value: bigint): Trace => ({
  ...t,
  ops: t.ops.map((op, j) => j === i && op.op === "write" ? { ...op, value } : op),
});

const valueOf = (t: Trace, i: number): bigint => (t.ops[i] as Op & { op: "write" }).value;

Deno.test("reduce: a pass that toggles bit 7 back and forth is taken once and then refused", () => {
  const t = trace(["write 0x0 0x81", "access r 0x0"]);
  let judged = 0;
  // Each call proposes the current value with bit 7 flipped: without the order this
  // "simplification" undoes itself forever (the old minimizer's bit-7 cycle).
  const toggle: Pass = {
    name: "toggle",
    *propose(ctx) {
      yield withValue(ctx.trace, 0, valueOf(ctx.trace, 0) ^ 0x80n);
    },
  };
  const r = reduce(t, () => {
    judged++;
    return true;
  }, [[toggle]]);
  assert.equal(r.stop, "fixpoint");
  assert.equal(r.accepted, 1);
  assert.equal(judged, 1);
  assert.equal(valueOf(r.trace, 0), 0x1n);
});

Deno.test("reduce: two passes that undo each other (swap forever) end at the smaller one", () => {
  const t = trace(["write 0x0 0x3001", "write 0x2000 0x7", "write 0x3000 0x7"]);
  const to = (page: bigint): Pass => ({
    name: `to-${page}`,
    *propose(ctx) {
      yield withValue(ctx.trace, 0, page | 1n);
    },
  });
  const r = reduce(t, () => true, [[to(0x3000n), to(0x2000n)], [to(0x3000n)]]);
  assert.equal(r.stop, "fixpoint");
  assert.equal(r.accepted, 1);
  assert.equal(valueOf(r.trace, 0), 0x2001n);
});

Deno.test("reduce: a pass that never stops proposing is cut off by the proposal budget", () => {
  const t = trace(["write 0x0 0x1"]);
  let judged = 0;
  // Ever larger values: none is smaller, so none reaches the predicate.
  const forever: Pass = {
    name: "forever",
    *propose(ctx: ReduceContext) {
      for (let v = 2n;; v++) yield withValue(ctx.trace, 0, v);
    },
  };
  const r = reduce(
    t,
    () => {
      judged++;
      return true;
    },
    [[forever]],
    { maxProposals: 10_000 },
  );
  assert.equal(r.stop, "proposals");
  assert.equal(r.proposals, 10_000);
  assert.equal(judged, 0);
  assert.equal(r.trace, t);
  // And by the deadline when proposals are unbounded.
  const d = reduce(t, () => true, [[forever]], {
    maxProposals: Infinity,
    deadline: performance.now() + 50,
  });
  assert.equal(d.stop, "deadline");
});

/** A pass of random rewrites: ops dropped, duplicated, values up or down, ops added. */
function randomPass(seed: number, perCall: number): Pass {
  const rng = new Sfc32(seed, 0, 0);
  const int = (n: number) => rng.next() % n;
  return {
    name: "random",
    *propose(ctx) {
      for (let k = 0; k < perCall; k++) {
        const ops = ctx.trace.ops.slice();
        const i = int(ops.length);
        switch (int(4)) {
          case 0:
            if (ops.length > 1) ops.splice(i, 1);
            break;
          case 1:
            ops.splice(i, 0, ops[i]!);
            break;
          case 2: {
            const op = ops[i]!;
            if (op.op === "write") ops[i] = { ...op, value: op.value ^ (1n << BigInt(int(64))) };
            if (op.op === "access") ops[i] = { ...op, gva: op.gva ^ (1n << BigInt(12 + int(35))) };
            break;
          }
          default:
            ops.push({ op: "write", gpa: BigInt(int(16)) << 12n, size: 8, value: BigInt(int(99)) });
        }
        yield { ...ctx.trace, ops };
      }
    },
  };
}

Deno.test("reduce: every judged and every accepted candidate is strictly smaller than the current trace", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const start = trace([
      "slot 0 gpa=0x0 pages=16 hva=0x100000000",
      "write 0x0 0x1007",
      "write 0x1000 0x2007",
      "access r 0x1234",
      "write 0x2000 0x8000000000000003",
    ]);
    let current = start;
    let judged = 0;
    const accepted: Trace[] = [start];
    const pred = (c: Trace) => {
      judged++;
      assert.ok(less(c, current), `seed ${seed}: judged a candidate not smaller than the trace`);
      // An arbitrary but deterministic verdict.
      const key = traceKey(c);
      return Number((key.values + BigInt(key.ops)) % 3n) !== 0;
    };
    const r = reduce(start, pred, [[randomPass(seed, 40)], [randomPass(seed + 100, 40)]], {
      maxRuns: 400,
      onAccept: (_pass, t) => {
        accepted.push(t);
        current = t;
      },
    });
    assert.ok(judged <= 400 && r.runs === judged, `seed ${seed}: ${judged} predicate calls`);
    for (let k = 1; k < accepted.length; k++) {
      assert.ok(compareTraces(accepted[k]!, accepted[k - 1]!) < 0, `seed ${seed}: step ${k} grew`);
    }
    assert.equal(r.trace, accepted.at(-1));
  }
});

Deno.test("reduce: the order is total and puts fewer ops before any value", () => {
  const a = trace(["write 0x0 0xffffffffffffffff", "pmis"]);
  const b = trace(["write 0x0 0x1", "pmis", "pmis"]);
  assert.ok(less(a, b));
  // Set bit 7 grows a trace; size 4 -> 8 does too.
  assert.ok(less(trace(["write 0x0 0x1"]), trace(["write 0x0 0x81"])));
  assert.ok(less(trace(["write 0x0 0x1 size=4"]), trace(["write 0x0 0x1"])));
  // Distinct traces never compare equal, and the comparison is antisymmetric.
  const rng = new Sfc32(7, 0, 0);
  const ts = Array.from({ length: 40 }, () =>
    trace([
      `write 0x${(rng.next() % 4).toString(16)}000 0x${(rng.next() % 5).toString(16)}`,
      rng.next() % 2 === 0 ? "pmis" : `access r 0x${(rng.next() % 3).toString(16)}000`,
    ]));
  for (const x of ts) {
    for (const y of ts) {
      const same = JSON.stringify(x.ops, (_k, v) => typeof v === "bigint" ? `${v}` : v) ===
        JSON.stringify(y.ops, (_k, v) => typeof v === "bigint" ? `${v}` : v);
      assert.equal(compareTraces(x, y) === 0, same);
      assert.ok(Math.sign(compareTraces(x, y)) === -Math.sign(compareTraces(y, x)));
    }
  }
});

Deno.test("reduce: the minimizer's simpler variants of an op are all smaller in the order", () => {
  const ops = [
    "write 0x1000 0x2007",
    "write 0x1000 0x2007 size=4",
    "write 0x0 0x1",
    "write 0x8 0x8000000000200083",
    "wrmsr 0x186 0x430000",
    "access w 0xffff800000201008 0x1003 user",
    "access x 0x7000 size=2",
    "read 0x1234",
    "slot 0 gpa=0x0 pages=16 hva=0x100000000 log ro",
    "ctl wp=0 smap=1",
    "filter deny 0x3c 0x2e 0x412e fixed=0x3",
    "events 0xc0 umask=0x1 count=100 user",
    "rdpmc 0x40000000 user",
    "discard 0x100000000 pages=4",
    "age 0x0 pages=8",
    "dirtyclear 1 first=64 pages=256",
  ].map(parseOp);
  for (const op of ops) {
    const t: Trace = { ...trace([]), ops: [op] };
    for (const s of simplerOps(op)) {
      assert.ok(
        less({ ...t, ops: [s] }, t),
        `${formatOp(s)} is not simpler than ${formatOp(op)}`,
      );
    }
  }
});

Deno.test("reduce: the predicate budget holds, and a past deadline judges nothing", () => {
  const t = trace(Array.from({ length: 30 }, (_, i) => `write 0x${i.toString(16)}000 0x7`));
  const drops: Pass = {
    name: "drops",
    *propose(ctx) {
      for (let i = ctx.trace.ops.length - 1; i >= 0; i--) {
        yield { ...ctx.trace, ops: ctx.trace.ops.filter((_, j) => j !== i) };
      }
    },
  };
  let judged = 0;
  const r = reduce(t, () => (judged++, false), [[drops]], { maxRuns: 7 });
  assert.equal(judged, 7);
  assert.equal(r.stop, "runs");
  const d = reduce(t, () => true, [[drops]], { deadline: performance.now() - 1 });
  assert.equal(d.runs, 0);
  assert.equal(d.stop, "deadline");
});

Deno.test("reduce: a later tier runs only when the earlier ones are stuck, then sends the driver back", () => {
  const t = trace(["write 0x0 0x7", "write 0x1000 0x7", "write 0x2000 0x7"]);
  const log: string[] = [];
  // Tier 0 drops the last op, but only once tier 1 cleared bit 2 of the first write.
  const drop: Pass = {
    name: "drop",
    *propose(ctx) {
      log.push(`drop ${ctx.trace.ops.length}`);
      if (ctx.trace.ops.length > 1) yield { ...ctx.trace, ops: ctx.trace.ops.slice(0, -1) };
    },
  };
  const clear: Pass = {
    name: "clear",
    *propose(ctx) {
      log.push(`clear ${valueOf(ctx.trace, 0)}`);
      yield withValue(ctx.trace, 0, valueOf(ctx.trace, 0) & ~4n);
    },
  };
  const pred = (c: Trace) => (valueOf(c, 0) & 4n) === 0n || c.ops.length === 3;
  const r = reduce(t, pred, [[drop], [clear]]);
  assert.deepEqual(r.trace.ops.length, 1);
  // Each pass is run again while it takes something; a sweep that took something is
  // repeated; the last sweep of every tier takes nothing.
  assert.deepEqual(log, [
    "drop 3",
    "clear 7",
    "clear 3",
    "drop 3",
    "drop 2",
    "drop 1",
    "drop 1",
    "clear 3",
  ]);
});

Deno.test("reduce: a wrap timed by two runs of slot updates around an access shrinks to the few ops it needs", () => {
  // fast-zap-double-toggle as the classic self-test found it on seed 1 (19 ops): the
  // generation pass tried only the longest run of slot ops and stopped there.
  const trace = traceFromJson(
    JSON.parse(
      Deno.readTextFileSync(
        new URL("./testdata/fast-zap-wrap-across-access.json", import.meta.url),
      ),
    ),
  );
  const options = { inject: ["fast-zap-double-toggle"] };
  const sig = (t: Trace) => {
    const d = diffTrace(t, coreFactory, options).divergence;
    return d === null ? null : identifyTrace(t, d, coreFactory, options).signature;
  };
  const signature = sig(trace);
  assert.notEqual(signature, null);
  const m = minimizeTrace(trace, (t) => sig(t) === signature, {
    deadline: performance.now() + 60_000,
  });
  assert.ok(m.trace.ops.length <= 8, `minimized to ${m.trace.ops.length} ops`);
});
