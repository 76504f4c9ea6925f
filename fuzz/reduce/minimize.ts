/**
 * @module
 * The predicate-driven minimizer (syzkaller's `Minimize(prog, pred)`): it knows
 * nothing of why a trace fails, only that `pred` must keep holding (the caller makes
 * `pred` "diverges with the same identity"). {@linkcode minimizeTrace} is the reducer
 * (`reduce.ts`, which documents the order every step must descend in) over these
 * passes, cheapest tier first:
 *
 * 1. drop chunks of ops (ddmin: halvings and powers of two, down to single ops); a
 *    smaller MMIO generation, alone or with the ends of a run of slot ops; two 4-byte
 *    halves of a qword merged; memslots bisected to the fewest pages that still do; the
 *    paging passes of `minimize_paging.ts` (table folds and level merges, memslot moves
 *    and merges, page moves, large-leaf collapses, accesses folded into the A/D bits
 *    they set); each op's simpler variants, the op table's value passes (bits cleared,
 *    kernel reads, lower indexes, fewer flags, filter entries and ctl fields, lower
 *    counts);
 * 2. pairs of ops dropped together, direct stores folded into earlier accesses, table
 *    pointers redirected to lower pages (each quadratic in the trace);
 * 3. an op moved one or two places earlier with another op dropped.
 *
 * Every variant is proposed only where it can be smaller in the order (a 4-byte store is
 * never widened to 8, bit 7 is set only with a frame cleared or an op dropped): the
 * order, not a guard in the pass, is what keeps a rewrite from undoing another.
 */
import type { Op, Trace } from "../../src/trace/types.ts";
import { simplerOps } from "../../src/trace/ops.ts";
import {
  accessFolds,
  leafCollapses,
  pageMoves,
  pagingVariants,
  redirects,
  slotVariants,
  storeFolds,
} from "./minimize_paging.ts";
import {
  fromSnapshot,
  type Pass,
  reduce,
  type ReduceContext,
  type ReduceResult,
} from "./reduce.ts";

/** Options of {@linkcode minimizeTrace}. */
export interface MinimizeOptions {
  /** Predicate calls at most (default 5000). */
  maxRuns?: number;
  /** `performance.now()` deadline. */
  deadline?: number;
}

/** The minimized trace and how many predicate calls it took. */
export interface MinimizeResult {
  trace: Trace;
  runs: number;
  /** The reducer's account (stop reason, proposals, per-pass figures). */
  reduced: ReduceResult;
}

/**
 * Simpler variants of one op, most promising first; each is a valid op. The value passes
 * are the op table's (`simplify` in `src/trace/ops.ts`).
 */
export { simplerOps };

/** Chunk sizes for ddmin over `n` ops: halvings and powers of two, largest first. */
export function chunkSizes(n: number): number[] {
  const sizes = new Set<number>();
  for (let c = n >> 1; c >= 1; c >>= 1) sizes.add(c);
  // Powers of two too: generation churn only keeps its meaning when a multiple of the
  // wrap period goes, which a halving of an odd length never is.
  for (let c = 1; c <= n >> 1; c <<= 1) sizes.add(c);
  return [...sizes].sort((a, b) => b - a);
}

const withOps = (t: Trace, ops: Op[]): Trace => ({ ...t, ops });

/** ddmin-style removal: chunks of decreasing size, from the end. */
function* dropChunks(ctx: ReduceContext): Generator<Trace> {
  for (const chunk of chunkSizes(ctx.trace.ops.length)) {
    for (let start = ctx.trace.ops.length - chunk; start >= 0; start -= chunk) {
      const ops = ctx.trace.ops;
      if (start + chunk > ops.length || ops.length <= chunk) continue;
      yield withOps(ctx.trace, ops.slice(0, start).concat(ops.slice(start + chunk)));
    }
  }
}

/** The runs of consecutive slot ops, as `[start, end)`, longest first (ties: earlier first). */
function slotRuns(ops: readonly Op[]): [number, number][] {
  const runs: [number, number][] = [];
  for (let i = 0; i < ops.length;) {
    let j = i;
    while (j < ops.length && ops[j]!.op === "slot") j++;
    if (j - i >= 2) runs.push([i, j]);
    i = j === i ? i + 1 : j;
  }
  return runs.sort((a, b) => (b[1] - b[0]) - (a[1] - a[0]) || a[0] - b[0]);
}

/**
 * A smaller MMIO generation, from 2 bits up: fewer memslot updates reach its
 * wraparound (or, in the core's scaled MMIO-spte layout, alias), so with it the start
 * or the end of a run of slot ops may go too (each op alone breaks the generation's
 * timing). Runs are tried longest first; then, for the two longest, ops from the start
 * of both at once (a wrap timed across an access between two runs of updates).
 */
function* generation(ctx: ReduceContext): Generator<Trace> {
  const at = ctx.accepted;
  for (let bits = 2; bits < ctx.trace.config.mmioGenBits; bits++) {
    const t = ctx.trace;
    const config = { ...t.config, mmioGenBits: bits };
    yield { ...t, config };
    const runs = slotRuns(t.ops);
    for (const [start, end] of runs) {
      for (let k = 1; k < end - start; k++) {
        for (
          const ops of [
            t.ops.slice(0, start).concat(t.ops.slice(start + k)),
            t.ops.slice(0, end - k).concat(t.ops.slice(end)),
          ]
        ) {
          if (ctx.accepted !== at) return;
          yield { ...t, config, ops };
        }
      }
    }
    if (runs.length >= 2) {
      const [a, b] = [runs[0]!, runs[1]!].sort((x, y) => x[0] - y[0]) as [
        [number, number],
        [number, number],
      ];
      for (let ka = 1; ka < a[1] - a[0]; ka++) {
        for (let kb = 1; kb < b[1] - b[0]; kb++) {
          if (ctx.accepted !== at) return;
          const ops = t.ops.slice(0, a[0]).concat(
            t.ops.slice(a[0] + ka, b[0]),
            t.ops.slice(b[0] + kb),
          );
          yield { ...t, config, ops };
        }
      }
    }
    if (ctx.accepted !== at) return;
  }
}

/**
 * Each op's simpler variants, in order; after one is taken, the rest of the new op's
 * list from the same place (the ones before it were refused on this op already).
 */
function* values(ctx: ReduceContext): Generator<Trace> {
  for (let i = 0; i < ctx.trace.ops.length; i++) {
    for (let j = 0;;) {
      const variants = simplerOps(ctx.trace.ops[i]!);
      if (j >= variants.length) break;
      const ops = ctx.trace.ops.slice();
      ops[i] = variants[j]!;
      const at = ctx.accepted;
      yield withOps(ctx.trace, ops);
      // Taken: the list is the new op's, without the variant taken; refused: the next.
      if (ctx.accepted === at) j++;
    }
  }
}

/** Two adjacent 4-byte writes of the halves of one qword merged into one 8-byte write. */
function* mergeHalves(ctx: ReduceContext): Generator<Trace> {
  for (let i = 0; i + 1 < ctx.trace.ops.length; i++) {
    const ops = ctx.trace.ops;
    const a = ops[i]!;
    const b = ops[i + 1]!;
    if (a.op !== "write" || b.op !== "write" || a.size !== 4 || b.size !== 4) continue;
    const [lo, hi] = a.gpa < b.gpa ? [a, b] : [b, a];
    if (hi.gpa !== lo.gpa + 4n || (lo.gpa & 7n) !== 0n) continue;
    const merged: Op = { op: "write", gpa: lo.gpa, size: 8, value: (hi.value << 32n) | lo.value };
    yield withOps(ctx.trace, [...ops.slice(0, i), merged, ...ops.slice(i + 2)]);
  }
}

/**
 * Each memslot size bisected down to the fewest pages that still do (a slot that
 * works is assumed to work larger): every slot op of that id and size changes.
 */
function* slotSizes(ctx: ReduceContext): Generator<Trace> {
  const sizes: [number, number][] = [];
  for (const op of ctx.trace.ops) {
    if (
      op.op === "slot" && op.pages > 1 && !sizes.some(([i, p]) => i === op.id && p === op.pages)
    ) {
      sizes.push([op.id, op.pages]);
    }
  }
  const resize = (id: number, from: number, to: number) =>
    withOps(
      ctx.trace,
      ctx.trace.ops.map((op) =>
        op.op === "slot" && op.id === id && op.pages === from ? { ...op, pages: to } : op
      ),
    );
  for (const [id, pages] of sizes) {
    // Invariant: `hi` pages hold (the current size), `lo` pages did not (or are 0).
    let lo = 0;
    let hi = pages;
    while (hi - lo > 1) {
      const mid = lo === 0 ? 1 : (lo + hi) >> 1;
      const at = ctx.accepted;
      yield resize(id, hi, mid);
      if (ctx.accepted !== at) hi = mid;
      else lo = mid;
    }
  }
}

/** Pairs of ops that only matter together (a slot created and deleted again). */
function* dropPairs(ctx: ReduceContext): Generator<Trace> {
  for (let i = ctx.trace.ops.length - 2; i >= 0; i--) {
    const at = ctx.accepted;
    for (let j = ctx.trace.ops.length - 1; j > i && ctx.accepted === at; j--) {
      const ops = ctx.trace.ops;
      if (j >= ops.length || ops.length <= 2) continue;
      yield withOps(ctx.trace, ops.filter((_, k) => k !== i && k !== j));
    }
  }
}

/**
 * An op moved one or two places earlier so that another one can go (an unlink that a
 * same-value write does too, once it comes before the CR3 load).
 */
function moveAndDrop(t: Trace): Trace[] {
  const out: Trace[] = [];
  const ops = t.ops;
  for (let i = 1; i < ops.length; i++) {
    for (let j = i - 1; j >= Math.max(0, i - 2); j--) {
      const moved = [...ops.slice(0, j), ops[i]!, ...ops.slice(j, i), ...ops.slice(i + 1)];
      for (let k = 0; k < moved.length; k++) {
        if (k !== j) out.push(withOps(t, moved.filter((_, x) => x !== k)));
      }
    }
  }
  return out;
}

/** A pass over whole-trace rewrites of one snapshot (it ends when one is taken). */
function snapshot(name: string, build: (t: Trace) => Iterable<Op[]>): Pass {
  return {
    name,
    propose: (ctx) =>
      fromSnapshot(ctx, function* (t) {
        for (const ops of build(t)) yield withOps(t, ops);
      }),
  };
}

/** The passes of {@linkcode minimizeTrace}, by tier (module doc). */
export const MINIMIZE_TIERS: readonly (readonly Pass[])[] = [
  [
    { name: "drop-chunks", propose: dropChunks },
    { name: "generation", propose: generation },
    { name: "merge-halves", propose: mergeHalves },
    { name: "slot-sizes", propose: slotSizes },
    snapshot("paging-folds", pagingVariants),
    snapshot("slot-moves", (t) => slotVariants(t.ops)),
    snapshot("page-moves", (t) => pageMoves(t.ops)),
    snapshot("leaf-collapses", leafCollapses),
    snapshot("access-folds", accessFolds),
    { name: "values", propose: values },
  ],
  [
    { name: "drop-pairs", propose: dropPairs },
    snapshot("store-folds", storeFolds),
    snapshot("redirects", redirects),
  ],
  [{ name: "move-and-drop", propose: (ctx) => fromSnapshot(ctx, moveAndDrop) }],
];

/** Minimizes `trace` while `pred` holds; `pred(trace)` must hold on entry. */
export function minimizeTrace(
  trace: Trace,
  pred: (t: Trace) => boolean,
  options: MinimizeOptions = {},
): MinimizeResult {
  const reduced = reduce(trace, pred, MINIMIZE_TIERS, options);
  return { trace: reduced.trace, runs: reduced.runs, reduced };
}
