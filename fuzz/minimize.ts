/**
 * @module
 * The predicate-driven minimizer (syzkaller's `Minimize(prog, pred)`): it knows
 * nothing of why a trace fails, only that `pred` must keep holding (the caller makes
 * `pred` "diverges with the same signature"). It drops ops (ddmin: chunks, then single
 * ops), then simplifies what is left: clears bits of written values one at a time
 * (PTE attribute and reserved bits, MSR bits), makes accesses kernel reads of 8 bytes,
 * drops slot flags, filter entries and ctl fields, and lowers counts.
 */
import type { Op, Trace } from "../src/trace/types.ts";

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

/** Bits worth clearing one by one in a written value: attributes and high bits. */
const CLEAR_BITS: readonly bigint[] = [
  0n,
  1n,
  2n,
  3n,
  4n,
  5n,
  6n,
  7n,
  8n,
  9n,
  10n,
  11n,
  63n,
  62n,
  52n,
  51n,
  48n,
  47n,
  46n,
  40n,
  39n,
  36n,
  35n,
  33n,
  32n,
  31n,
  23n,
  22n,
  21n,
  20n,
  19n,
  18n,
  17n,
  16n,
  13n,
];

/** Simpler variants of one op, most promising first; each is a valid op. */
export function simplerOps(op: Op): Op[] {
  const out: Op[] = [];
  switch (op.op) {
    case "write":
      for (const b of CLEAR_BITS) {
        if ((op.value >> b) & 1n) out.push({ ...op, value: op.value & ~(1n << b) });
      }
      break;
    case "wrmsr":
      if (op.value !== 0n) out.push({ ...op, value: 0n });
      for (const b of CLEAR_BITS) {
        if ((op.value >> b) & 1n) out.push({ ...op, value: op.value & ~(1n << b) });
      }
      break;
    case "access": {
      if (op.user) out.push({ ...op, user: false });
      if (op.kind !== "read") {
        const { value: _value, ...rest } = op;
        out.push({ ...rest, kind: "read" });
      }
      if (op.kind === "write" && op.value !== 0n) out.push({ ...op, value: 0n });
      const offset = op.gva & 0xfffn;
      if (offset !== 0n) out.push({ ...op, gva: op.gva - offset });
      break;
    }
    case "read":
      if ((op.gpa & 0xfffn) !== 0n) out.push({ ...op, gpa: op.gpa & ~0xfffn });
      break;
    case "slot":
      if (op.flags.length > 0) out.push({ ...op, flags: [] });
      break;
    case "ctl": {
      const fields = (["wp", "smep", "smap", "nx", "ac", "pce"] as const).filter((f) =>
        op[f] !== undefined
      );
      if (fields.length > 1) {
        for (const f of fields) {
          const copy = { ...op };
          delete copy[f];
          out.push(copy);
        }
      }
      break;
    }
    case "filter":
      for (let i = 0; i < op.events.length; i++) {
        out.push({ ...op, events: op.events.filter((_, j) => j !== i) });
      }
      if (op.events.length > 8) out.push({ ...op, events: op.events.slice(0, 1) });
      if (op.fixed !== 0) out.push({ ...op, fixed: 0 });
      break;
    case "events":
      if (op.count > 1) out.push({ ...op, count: 1 }, { ...op, count: Math.floor(op.count / 2) });
      if (op.user) out.push({ ...op, user: false });
      break;
    case "rdpmc":
      if (op.user) out.push({ ...op, user: false });
      break;
    case "discard":
    case "age":
      if (op.pages > 1) out.push({ ...op, pages: 1 });
      break;
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
  const test = (candidate: Op[]) => {
    runs++;
    return pred({ ...trace, config, ops: candidate });
  };
  // ddmin-style removal: chunks of halving size, repeated until nothing goes; then a
  // smaller MMIO generation (fewer memslot updates reach its wraparound), and again.
  let changed = true;
  let config = trace.config;
  const ddmin = () => {
    changed = true;
    while (changed && !out()) {
      changed = false;
      for (let chunk = Math.max(1, ops.length >> 1); chunk >= 1 && !out(); chunk >>= 1) {
        for (let start = ops.length - chunk; start >= 0 && !out(); start -= chunk) {
          const candidate = ops.slice(0, start).concat(ops.slice(start + chunk));
          if (candidate.length > 0 && test(candidate)) {
            ops = candidate;
            changed = true;
          }
        }
      }
    }
  };
  ddmin();
  for (let bits = 4; bits < config.mmioGenBits && !out(); bits++) {
    const smaller = { ...config, mmioGenBits: bits };
    runs++;
    if (pred({ ...trace, config: smaller, ops })) {
      config = smaller;
      ddmin();
      break;
    }
  }
  // Pairs of ops that only matter together (a slot created and deleted again).
  if (ops.length <= 40) {
    for (let i = ops.length - 2; i >= 0 && !out(); i--) {
      for (let j = ops.length - 1; j > i && !out(); j--) {
        if (j >= ops.length) continue;
        const candidate = ops.filter((_, k) => k !== i && k !== j);
        if (candidate.length > 0 && test(candidate)) {
          ops = candidate;
          break;
        }
      }
    }
  }
  // Value simplification, op by op, to a fixed point.
  changed = true;
  while (changed && !out()) {
    changed = false;
    for (let i = 0; i < ops.length && !out(); i++) {
      for (const simpler of simplerOps(ops[i]!)) {
        if (out()) break;
        const candidate = ops.slice();
        candidate[i] = simpler;
        if (test(candidate)) {
          ops = candidate;
          changed = true;
          break;
        }
      }
    }
  }
  return { trace: { ...trace, config, ops }, runs };
}
