/**
 * @module
 * The predicate-driven minimizer (syzkaller's `Minimize(prog, pred)`): it knows
 * nothing of why a trace fails, only that `pred` must keep holding (the caller makes
 * `pred` "diverges with the same signature"). It drops ops (ddmin: chunks, then single
 * ops), then simplifies what is left with the op table's value passes (`simplerOps`,
 * declared per op in `src/trace/ops.ts`): clears bits of written and stored values one
 * at a time (PTE attribute and reserved bits, MSR bits), makes accesses kernel reads of
 * 8 bytes at lower indexes, drops slot flags, filter entries and ctl fields, and lowers
 * counts. Multi-op and paging rewrites (`minimize_paging.ts`) fold tables, stores and
 * slots together.
 */
import { simplerOps } from "../src/trace/ops.ts";
import type { Op, Trace } from "../src/trace/types.ts";
import { lighter, pageMoves, pagingVariants, slotVariants, storeFolds } from "./minimize_paging.ts";

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
}

const ADDR = 0x000f_ffff_ffff_f000n;

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

/**
 * Rewrites that change several ops at once, each a valid trace: a slot made smaller in
 * all of its ops, two adjacent 4-byte halves of a qword merged into one 8-byte write,
 * and a table pointer redirected to a page the trace already writes (a self-map or a
 * shared table, after which the writes that built the old target can go).
 */
export function multiOpVariants(ops: readonly Op[]): Op[][] {
  const out: Op[][] = [];
  const sizes = new Map<number, Set<number>>();
  for (const op of ops) {
    if (op.op === "slot" && op.pages > 0) {
      let set = sizes.get(op.id);
      if (set === undefined) sizes.set(op.id, set = new Set());
      set.add(op.pages);
    }
  }
  for (const [id, set] of sizes) {
    for (const from of set) {
      for (const to of [1, 16, 64, 512]) {
        if (to >= from) continue;
        out.push(
          ops.map((op) =>
            op.op === "slot" && op.id === id && op.pages === from ? { ...op, pages: to } : op
          ),
        );
      }
    }
  }
  for (let i = 0; i + 1 < ops.length; i++) {
    const a = ops[i]!;
    const b = ops[i + 1]!;
    if (a.op !== "write" || b.op !== "write" || a.size !== 4 || b.size !== 4) continue;
    const [lo, hi] = a.gpa < b.gpa ? [a, b] : [b, a];
    if (hi.gpa !== lo.gpa + 4n || (lo.gpa & 7n) !== 0n) continue;
    const merged: Op = { op: "write", gpa: lo.gpa, size: 8, value: (hi.value << 32n) | lo.value };
    out.push([...ops.slice(0, i), merged, ...ops.slice(i + 2)]);
  }
  const pages: bigint[] = [];
  for (const op of ops) {
    if (op.op === "write" && !pages.includes(op.gpa & ~0xfffn)) pages.push(op.gpa & ~0xfffn);
  }
  if (pages.length <= 12) {
    ops.forEach((op, i) => {
      if (op.op !== "write" || op.size !== 8 || (op.value & 1n) === 0n) return;
      for (const page of pages) {
        // Only downwards: two pages that both work would otherwise swap forever.
        if (page >= (op.value & ADDR)) continue;
        const copy = ops.slice();
        copy[i] = { ...op, value: (op.value & ~ADDR) | page };
        out.push(copy);
      }
    });
  }
  return out;
}

/** Minimizes `trace` while `pred` holds; `pred(trace)` must hold on entry. */
export function minimizeTrace(
  trace: Trace,
  pred: (t: Trace) => boolean,
  options: MinimizeOptions = {},
): MinimizeResult {
  const maxRuns = options.maxRuns ?? 5000;
  const deadline = options.deadline ?? Infinity;
  let runs = 0;
  const out = () => runs >= maxRuns || performance.now() > deadline;
  let ops = trace.ops;
  let config = trace.config;
  const test = (candidate: Op[]) => {
    runs++;
    return pred({ ...trace, config, ops: candidate });
  };
  // ddmin-style removal: chunks of decreasing size, repeated until nothing goes.
  const ddmin = (): boolean => {
    let any = false;
    let changed = true;
    while (changed && !out()) {
      changed = false;
      for (const chunk of chunkSizes(ops.length)) {
        if (out()) break;
        for (let start = ops.length - chunk; start >= 0 && !out(); start -= chunk) {
          const candidate = ops.slice(0, start).concat(ops.slice(start + chunk));
          if (candidate.length > 0 && test(candidate)) {
            ops = candidate;
            changed = any = true;
          }
        }
      }
    }
    return any;
  };
  // A smaller MMIO generation: fewer memslot updates reach its wraparound.
  const smallerGen = (): boolean => {
    for (let bits = 2; bits < config.mmioGenBits && !out(); bits++) {
      const smaller = { ...config, mmioGenBits: bits };
      runs++;
      if (pred({ ...trace, config: smaller, ops })) {
        config = smaller;
        return true;
      }
      // A smaller generation wraps (or, in the core's scaled MMIO-spte layout, aliases)
      // after fewer updates: drop the start or the end of the longest run of consecutive
      // slot ops along with it (each op alone breaks the generation's timing).
      let best = { start: 0, length: 0 };
      for (let i = 0; i < ops.length;) {
        let j = i;
        while (j < ops.length && ops[j]!.op === "slot") j++;
        if (j - i > best.length) best = { start: i, length: j - i };
        i = j === i ? i + 1 : j;
      }
      const end = best.start + best.length;
      for (let k = 1; k < best.length && !out(); k++) {
        for (
          const candidate of [
            ops.slice(0, best.start).concat(ops.slice(best.start + k)),
            ops.slice(0, end - k).concat(ops.slice(end)),
          ]
        ) {
          runs++;
          if (pred({ ...trace, config: smaller, ops: candidate })) {
            config = smaller;
            ops = candidate;
            return true;
          }
        }
      }
    }
    return false;
  };
  // Pairs of ops that only matter together (a slot created and deleted again).
  const pairs = (): boolean => {
    if (ops.length > 40) return false;
    let any = false;
    for (let i = ops.length - 2; i >= 0 && !out(); i--) {
      for (let j = ops.length - 1; j > i && !out(); j--) {
        if (j >= ops.length) continue;
        const candidate = ops.filter((_, k) => k !== i && k !== j);
        if (candidate.length > 0 && test(candidate)) {
          ops = candidate;
          any = true;
          break;
        }
      }
    }
    return any;
  };
  // An op moved one or two places earlier so that another one can go (an unlink that a
  // same-value write does too, once it comes before the CR3 load). Only the shorter
  // result is taken, so this cannot cycle.
  const moves = (): boolean => {
    if (ops.length > 24) return false;
    for (let i = 1; i < ops.length && !out(); i++) {
      for (let j = i - 1; j >= Math.max(0, i - 2) && !out(); j--) {
        const moved = [...ops.slice(0, j), ops[i]!, ...ops.slice(j, i), ...ops.slice(i + 1)];
        for (let k = 0; k < moved.length && !out(); k++) {
          if (k === j) continue;
          const candidate = moved.filter((_, x) => x !== k);
          if (test(candidate)) {
            ops = candidate;
            return true;
          }
        }
      }
    }
    return false;
  };
  const multi = (): boolean => {
    let any = false;
    let changed = true;
    while (changed && !out()) {
      changed = false;
      for (const candidate of [...multiOpVariants(ops), ...storeFolds(ops)]) {
        if (out()) break;
        if (test(candidate)) {
          ops = candidate;
          changed = any = true;
          break;
        }
      }
    }
    return any;
  };
  // Paging and memslot rewrites (fold a table into its parent, merge two self-referencing
  // levels, move a slot to gpa 0 or onto another): each must make the trace lighter, so
  // the loop ends.
  const paging = (): boolean => {
    let any = false;
    let changed = true;
    while (changed && !out()) {
      changed = false;
      for (const candidate of [...pagingVariants(ops), ...slotVariants(ops), ...pageMoves(ops)]) {
        if (out()) break;
        if (lighter(candidate, ops) && test(candidate)) {
          ops = candidate;
          changed = any = true;
          break;
        }
      }
    }
    return any;
  };
  // Value simplification, op by op, to a fixed point.
  const simplify = (): boolean => {
    let any = false;
    let changed = true;
    while (changed && !out()) {
      changed = false;
      for (let i = 0; i < ops.length && !out(); i++) {
        for (const simpler of simplerOps(ops[i]!)) {
          if (out()) break;
          const candidate = ops.slice();
          candidate[i] = simpler;
          if (test(candidate)) {
            ops = candidate;
            changed = any = true;
            break;
          }
        }
      }
    }
    return any;
  };
  // Each pass can open the way for another (a redirected pointer frees the writes
  // behind its old target; a smaller generation frees toggles), so repeat them all.
  let round = true;
  while (round && !out()) {
    round = false;
    if (ddmin()) round = true;
    if (smallerGen()) round = true;
    if (pairs()) round = true;
    if (!round && moves()) round = true;
    if (multi()) round = true;
    if (paging()) round = true;
    if (simplify()) round = true;
  }
  return { trace: { ...trace, config, ops }, runs };
}
