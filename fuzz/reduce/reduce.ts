/**
 * @module
 * The reducer: one driver over candidate-proposing passes. A pass only proposes
 * traces (a generator, no predicate calls and no loop of its own to a fixed point);
 * the driver accepts a candidate when it is strictly smaller than the current trace in
 * the order below and the predicate holds on it, and stops at a fixed point, at the
 * deadline or when the budget of predicate calls (or of proposals) is spent.
 *
 * ## The order
 *
 * Traces are compared lexicographically by {@linkcode traceKey}, first difference
 * decides:
 *
 * 1. `ops`: the number of ops;
 * 2. `config`: the config's weight, `mmioGenBits` (the one config field a pass lowers);
 * 3. `pages`: the number of distinct 4 KiB pages `write` ops store to;
 * 4. `qwords`: the number of distinct 8-byte qwords `write` ops store to;
 * 5. `slots`: the sum over `slot` ops of `gpa + pages * 4096` (how far memslots reach);
 * 6. `pageSum`: the sum of the gpas of those written pages (how high tables sit);
 * 7. `values`: the sum over ops of {@linkcode opWeight}: every field but `op` counts
 *    1 (for being there) plus its magnitude, a number or bigint its absolute value, a
 *    boolean 0 or 1, a string its rank among the field's values (`read` < `write` <
 *    `fetch`; `log` < `ro`), an array the sum of 1 plus the magnitude of each element;
 * 8. `text`: the canonical JSON of config and ops (keys sorted), shortest first, then
 *    by code units.
 *
 * So a variant is simpler only if it never grows what comes first: setting bit 7 of an
 * entry, or storing 8 bytes instead of 4, grows `values` and is refused unless it pays
 * with something earlier (a cleared frame, a dropped op). The last component makes
 * the order total: two traces with equal keys are equal (the canonical JSON is
 * injective on traces).
 *
 * ## Termination
 *
 * The order is a well-order (no infinite descending chain). Components 1-7 are natural
 * numbers (magnitudes are absolute values; sums of naturals are naturals); component 8
 * is shortlex over a finite alphabet (UTF-16 code units), a well-order since only
 * finitely many strings are shorter than or as long as a given one. Take a descending
 * chain t1 > t2 > ...: a lexicographic descent never raises component 1, a natural, so
 * it is constant from some t_k on; from there component 2 never rises, and so on up
 * to component 7; after that every step must descend in component 8, which cannot go
 * on forever. So the chain is finite.
 *
 * Every accepted candidate is strictly smaller than the trace it replaces (the driver
 * checks the order before it calls the predicate), so the accepted traces form such a
 * chain: finitely many acceptances. Between two acceptances the driver reads at most
 * one more stream of each pass of each tier (a stream without an acceptance ends that
 * pass's turn, a sweep without one moves to the next tier, and after the last tier it
 * stops), and each stream of the passes in `minimize.ts` is finite (loops over the ops,
 * bits, pages and slots of one trace; the slot bisection halves an interval). A pass
 * that proposes without end is cut off by the proposal budget and the deadline, both
 * checked before each proposal is read. Hence `reduce` always returns.
 *
 * ## Schedule
 *
 * Passes come in tiers, cheapest first. Each pass runs until one whole stream of its
 * proposals yields no acceptance; a tier is swept until a sweep accepts nothing; then
 * the next tier runs, and any acceptance there sends the driver back to the first
 * tier. Expensive (quadratic) passes thus only see traces the cheap ones cannot
 * shorten, which are short in practice, instead of being held off by size thresholds.
 * A candidate the predicate refused on the way is remembered (by a 53-bit hash of its
 * text; a collision only skips one candidate) and never asked again.
 */
import type { Config, Op, Trace } from "../../src/trace/types.ts";
import { PAGE_OFFSET_MASK } from "../../src/x86/paging.ts";

/** What a pass reads: the latest accepted trace, and how many were accepted so far. */
export interface ReduceContext {
  /** The current trace (replaced on every acceptance). */
  readonly trace: Trace;
  /** Acceptances so far: a pass whose proposals were built from an older trace stops. */
  readonly accepted: number;
}

/**
 * A pass: proposes candidate traces built from `ctx.trace` at the time each is
 * yielded (a generator sees acceptances between its yields). It never calls the
 * predicate and must propose finitely many candidates per call.
 */
export interface Pass {
  /** The name the figures of {@linkcode ReduceResult} go under. */
  readonly name: string;
  /** The candidates, each built from `ctx.trace` when it is yielded. */
  propose(ctx: ReduceContext): Iterable<Trace>;
}

/** Budgets of {@linkcode reduce}. */
export interface ReduceOptions {
  /** Predicate calls at most (default 5000). */
  maxRuns?: number;
  /** `performance.now()` deadline (default none). */
  deadline?: number;
  /** Proposals read at most, refused ones included (default 100 per predicate call). */
  maxProposals?: number;
  /** Called with every accepted candidate and the name of the pass that proposed it. */
  onAccept?: (pass: string, trace: Trace) => void;
}

/** Why the driver stopped. */
export type ReduceStop = "fixpoint" | "runs" | "deadline" | "proposals";

/** What one pass achieved. */
export interface PassStats {
  /** Candidates read. */
  proposals: number;
  /** Predicate calls. */
  runs: number;
  /** Candidates taken. */
  accepted: number;
}

/** The reduced trace and what it cost. */
export interface ReduceResult {
  /** The smallest trace reached on which the predicate holds. */
  trace: Trace;
  /** Predicate calls. */
  runs: number;
  /** Proposals read (refused by the order, remembered, or judged by the predicate). */
  proposals: number;
  /** Candidates taken. */
  accepted: number;
  /** Why the driver stopped. */
  stop: ReduceStop;
  /** Per pass name. */
  passes: Record<string, PassStats>;
}

/** The key of the order (see the module doc), in comparison order. */
export interface TraceKey {
  /** 1: the number of ops. */
  ops: number;
  /** 2: `mmioGenBits`. */
  config: bigint;
  /** 3: distinct pages written. */
  pages: number;
  /** 4: distinct qwords written. */
  qwords: number;
  /** 5: the sum of `gpa + pages * 4096` over slot ops. */
  slots: bigint;
  /** 6: the sum of the written pages' gpas. */
  pageSum: bigint;
  /** 7: the sum of the ops' weights. */
  values: bigint;
}

const PAGE = BigInt(PAGE_OFFSET_MASK);

/** Ranks of string fields: the first is the simplest. */
const STRING_RANK: Readonly<Record<string, readonly string[]>> = {
  kind: ["read", "write", "fetch"],
  flags: ["log", "ro"],
};

function magnitude(field: string, v: unknown): bigint {
  switch (typeof v) {
    case "bigint":
      return v < 0n ? -v : v;
    case "number":
      return BigInt(Math.abs(Math.trunc(v)));
    case "boolean":
      return v ? 1n : 0n;
    case "string": {
      const rank = STRING_RANK[field]?.indexOf(v) ?? -1;
      return rank < 0 ? 0n : BigInt(rank);
    }
    default:
      if (Array.isArray(v)) {
        let sum = 0n;
        for (const x of v) sum += 1n + magnitude(field, x);
        return sum;
      }
      return 0n;
  }
}

/** The weight of one op's values: component 7 of the order (module doc). */
export function opWeight(op: Op): bigint {
  let w = 0n;
  for (const [field, v] of Object.entries(op)) {
    if (field === "op" || v === undefined) continue;
    w += 1n + magnitude(field, v);
  }
  return w;
}

/** The config's weight: component 2 of the order. */
export function configWeight(config: Config): bigint {
  return BigInt(config.mmioGenBits);
}

/** Components 1-7 of the order. */
export function traceKey(trace: Trace): TraceKey {
  const pages = new Set<bigint>();
  const qwords = new Set<bigint>();
  let slots = 0n;
  let values = 0n;
  for (const op of trace.ops) {
    if (op.op === "write") {
      // Every page and qword the store reaches (a straddling store reaches two qwords).
      for (const a of [op.gpa, op.gpa + BigInt(op.size) - 1n]) {
        pages.add(a & ~PAGE);
        qwords.add(a & ~7n);
      }
    } else if (op.op === "slot") slots += op.gpa + BigInt(op.pages) * 4096n;
    values += opWeight(op);
  }
  let pageSum = 0n;
  for (const p of pages) pageSum += p;
  return {
    ops: trace.ops.length,
    config: configWeight(trace.config),
    pages: pages.size,
    qwords: qwords.size,
    slots,
    pageSum,
    values,
  };
}

function canonical(v: unknown): string {
  if (typeof v === "bigint") return `"0x${v.toString(16)}"`;
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonical(x)}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

/** Component 8 of the order: the canonical JSON of config and ops. */
export function traceText(trace: Trace): string {
  return canonical({ config: trace.config, ops: trace.ops });
}

const KEY_ORDER = ["ops", "config", "pages", "qwords", "slots", "pageSum", "values"] as const;

/** A 53-bit hash of `s` (cyrb53, public domain). */
function hash53(s: string): number {
  let h1 = 0xdeadbeef, h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** Compares two keys: negative when `a` comes first, 0 when equal. */
export function compareKeys(a: TraceKey, b: TraceKey): number {
  for (const k of KEY_ORDER) {
    if (a[k] !== b[k]) return a[k] < b[k] ? -1 : 1;
  }
  return 0;
}

/** Compares two texts shortlex: negative when `a` comes first. */
export function compareTexts(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Compares two traces in the order: negative when `a` is smaller, 0 when equal. */
export function compareTraces(a: Trace, b: Trace): number {
  return compareKeys(traceKey(a), traceKey(b)) || compareTexts(traceText(a), traceText(b));
}

/** `a` is strictly smaller than `b` in the order. */
export function less(a: Trace, b: Trace): boolean {
  return compareTraces(a, b) < 0;
}

/** Wraps a proposer built from one snapshot: it stops once anything was accepted since. */
export function* fromSnapshot(
  ctx: ReduceContext,
  build: (t: Trace) => Iterable<Trace>,
): Generator<Trace> {
  const at = ctx.accepted;
  for (const c of build(ctx.trace)) {
    if (ctx.accepted !== at) return;
    yield c;
  }
}

/** What `pass` proposes for `trace` when nothing is accepted (for tests and tools). */
export function proposalsOf(pass: Pass, trace: Trace): Trace[] {
  return [...pass.propose({ trace, accepted: 0 })];
}

/**
 * Reduces `trace` while `pred` holds (`pred(trace)` must hold on entry): the passes of
 * `tiers[0]` first, the later tiers only when the earlier ones are at a fixed point
 * (module doc).
 */
export function reduce(
  trace: Trace,
  pred: (t: Trace) => boolean,
  tiers: readonly (readonly Pass[])[],
  options: ReduceOptions = {},
): ReduceResult {
  const maxRuns = options.maxRuns ?? 5000;
  const deadline = options.deadline ?? Infinity;
  const maxProposals = options.maxProposals ?? 100 * maxRuns;
  let current = trace;
  let currentKey = traceKey(trace);
  let currentText: string | undefined;
  let runs = 0;
  let proposals = 0;
  let accepted = 0;
  let stop: ReduceStop | null = null;
  const refused = new Set<number>();
  const stats: Record<string, PassStats> = {};
  const ctx = {
    get trace() {
      return current;
    },
    get accepted() {
      return accepted;
    },
  };
  const out = (): boolean => {
    if (stop !== null) return true;
    if (runs >= maxRuns) stop = "runs";
    else if (proposals >= maxProposals) stop = "proposals";
    else if (performance.now() > deadline) stop = "deadline";
    return stop !== null;
  };
  /** One stream of `pass`: whether it accepted anything. */
  const stream = (pass: Pass): boolean => {
    const s = stats[pass.name] ??= { proposals: 0, runs: 0, accepted: 0 };
    let any = false;
    if (out()) return false;
    const it = pass.propose(ctx)[Symbol.iterator]();
    try {
      for (;;) {
        if (out()) break;
        const next = it.next();
        if (next.done === true) break;
        proposals++;
        s.proposals++;
        const c = next.value;
        const key = traceKey(c);
        const byKey = compareKeys(key, currentKey);
        if (byKey > 0) continue;
        const text = traceText(c);
        if (byKey === 0 && compareTexts(text, currentText ??= traceText(current)) >= 0) continue;
        const h = hash53(text);
        if (refused.has(h)) continue;
        runs++;
        s.runs++;
        if (pred(c)) {
          current = c;
          currentKey = key;
          currentText = text;
          accepted++;
          s.accepted++;
          any = true;
          options.onAccept?.(pass.name, c);
        } else refused.add(h);
      }
    } finally {
      it.return?.();
    }
    return any;
  };
  /** One sweep over a tier, each pass to its own fixed point. */
  const sweep = (tier: readonly Pass[]): boolean => {
    let any = false;
    for (const pass of tier) {
      while (stream(pass)) any = true;
    }
    return any;
  };
  for (let t = 0; t < tiers.length && !out();) {
    if (sweep(tiers[t]!)) t = 0;
    else t++;
  }
  return {
    trace: current,
    runs,
    proposals,
    accepted,
    stop: stop ?? "fixpoint",
    passes: stats,
  };
}
