/**
 * @module
 * The diff runner: runs a trace on a backend and on the reference side by side and
 * stops at the first op whose outcome lies outside the reference's permitted set, at
 * the first broken invariant (with `audit`), or at the first exception (a crash).
 */
import type {
  Backend,
  BackendFactory,
  BackendOptions,
  FindingKind,
  Permitted,
  StepResult,
} from "./backend.ts";
import { ReferenceBackend } from "./reference/mod.ts";
import type { Op, Outcome, Trace } from "./trace/types.ts";

/** One op of a diverging run as the identity sees it: the op and its events. */
export interface HistoryEntry {
  /** The op. */
  op: Op;
  /** The backend's named events during the op, as in {@linkcode Divergence.path}. */
  events: string[];
}

/** Where and how a backend disagreed with the reference. */
export interface Divergence {
  /**
   * `divergence`: the outcome is outside the permitted set; `invariant`: the outcome
   * was permitted but the backend's `audit()` failed after the op (with
   * {@linkcode DiffOptions.audit}); `crash`: the backend threw.
   */
  kind: FindingKind;
  /** Index of the op in the trace. */
  index: number;
  /** The op at `index`. */
  op: Op;
  /** The backend's outcome (`{crash: message}` for a crash). */
  observed: Outcome;
  /** What the reference permits for the op, the canonical outcome first. */
  permitted: Permitted[];
  /** For `invariant`: the broken invariant. */
  invariant?: string;
  /**
   * The backend's named events during the diverging op (its coverage counters that
   * moved, in counter order, or its `trail()`, both from a rerun of the trace up to that
   * op): the path part of the identity.
   */
  path?: string[];
  /** Every op before the diverging one: its kind and events (same source as `path`). */
  history?: HistoryEntry[];
  /**
   * The op whose state the diverging op used, when the backend knows (the core: the op
   * that last set the leaf spte an access hit).
   */
  origin?: number;
  /** For `crash`: the function that threw (the top stack frame's name), if known. */
  site?: string;
}

/** How {@linkcode diffTrace} runs a trace. */
export interface DiffOptions {
  /** Keep only the canonical outcome of each permitted set, the current walk (`--strict`). */
  strict?: boolean;
  /** Injected bugs to plant in the backend (core only; `BackendOptions.inject`). */
  inject?: readonly string[];
  /** Known deviations to correct in the backend (core only; `BackendOptions.fix`). */
  fix?: readonly string[];
  /**
   * Read the diverging op's path and history (default true). A caller that asks only
   * whether or where a trace diverges (the known-deviation check) saves the rerun.
   */
  path?: boolean;
  /** Run the backend's `audit()` after every op. */
  audit?: boolean;
}

/** The result of {@linkcode diffTrace}. */
export interface DiffResult {
  /** The first disagreement, or null when the backend agreed on every op it ran. */
  divergence: Divergence | null;
  /** Ops run on both sides (up to and including the diverging one). */
  ops: number;
  /**
   * Ops left out on both sides because the backend cannot run them (`supports`), and
   * the first reason. The rest of the trace is judged as if they were not there.
   */
  skipped: number;
  /** Why the first skipped op was skipped (the backend's `supports` answer). */
  skipReason?: string;
  /** The op index of the first skipped op. */
  skipIndex?: number;
  /** The backend's coverage counters at the end (a copy), when it has them. */
  coverage?: Uint32Array;
}

/** The name of the function at the top of an error's stack ("ShadowMmu.zapPage"). */
export function throwSite(e: unknown): string | undefined {
  if (!(e instanceof Error) || e.stack === undefined) return undefined;
  for (const line of e.stack.split("\n").slice(1)) {
    const m = /^\s*at (?:new )?([\w$.#<>]+) \(/.exec(line);
    if (m !== null) return m[1];
  }
  return undefined;
}

/** The names of the counters that moved between `before` and `after`. */
function movedEvents(
  before: Uint32Array,
  after: Uint32Array,
  names: readonly string[],
): string[] {
  const path: string[] = [];
  for (let e = 0; e < after.length; e++) {
    if (after[e] !== before[e]) path.push(names[e] ?? `event ${e}`);
  }
  return path;
}

/** The diverging op's events, every earlier op's, and the op its state came from. */
interface PathInfo {
  path: string[];
  history?: HistoryEntry[];
  origin?: number;
}

/**
 * The events the backend counted during op `index`, and each earlier op's: the trace is
 * run again on a new backend up to that op, op by op (only diverging runs need it, and
 * the backends with events are deterministic), reading the counters around every op,
 * or for a backend without counters its `trail()` after every op (created with
 * `trail: true`, so that it records one; the kvm backend's batched run has none).
 */
function pathOf(
  trace: Trace,
  factory: BackendFactory,
  options: DiffOptions,
  backend: Backend,
  index: number,
): PathInfo | undefined {
  const names = backend.coverageNames;
  const counters = names !== undefined && backend.coverage !== undefined;
  if (!counters && backend.trail === undefined) return undefined;
  const again = factory.create(trace.config, {
    ...backendOptionsOf(options),
    ...(counters ? {} : { trail: true }),
  });
  try {
    const history: HistoryEntry[] = [];
    // The trace index of each op the backend ran (skipped ops do not count).
    const ran: number[] = [];
    let before = counters ? again.coverage!.slice() : new Uint32Array(0);
    for (let i = 0; i <= index; i++) {
      const op = trace.ops[i]!;
      if ((again.supports?.(op) ?? null) !== null) {
        history.push({ op, events: [] });
        continue;
      }
      ran.push(i);
      try {
        again.step(op);
      } catch {
        // A crash's path is the events up to the throw.
        if (i < index) return undefined;
      }
      if (!counters) {
        history.push({ op, events: [...(again.trail?.() ?? [])] });
        continue;
      }
      const after = again.coverage!;
      history.push({ op, events: movedEvents(before, after, names!) });
      before = after.slice();
    }
    const serial = again.origin?.() ?? null;
    const origin = serial === null ? undefined : ran[serial];
    return {
      path: history[index]!.events,
      history: history.slice(0, index),
      ...(origin === undefined ? {} : { origin }),
    };
  } finally {
    again.close();
  }
}

/**
 * The options a backend is made with for a diff with `options` (its injected bugs and
 * corrections): the diff's own backend, its path rerun, and the identity's probes are
 * all made so.
 */
export function backendOptionsOf(options: DiffOptions): BackendOptions {
  return {
    inject: options.inject ?? [],
    ...(options.fix === undefined ? {} : { fix: options.fix }),
  };
}

/** Runs `trace` on `factory`'s backend against the reference. */
export function diffTrace(
  trace: Trace,
  factory: BackendFactory,
  options: DiffOptions = {},
): DiffResult {
  const reference = new ReferenceBackend(trace.config, { strict: options.strict ?? false });
  const backend = factory.create(trace.config, backendOptionsOf(options));
  let skipped = 0;
  let skipReason: string | undefined;
  let skipIndex: number | undefined;
  let site: string | undefined;
  let closed = false;
  const diverged = (d: Divergence): Divergence => {
    // A backend without counters is done with once it diverged: closing it first hands
    // its resources to the rerun (the kvm backend's VM goes back to its pool, so the
    // rerun does not build a VM of its own).
    if (options.path !== false && backend.coverage === undefined) {
      closed = true;
      backend.close();
    }
    const info = options.path === false
      ? undefined
      : pathOf(trace, factory, options, backend, d.index);
    if (info !== undefined) {
      d.path = info.path;
      if (info.history !== undefined) d.history = info.history;
      if (info.origin !== undefined) d.origin = info.origin;
    }
    if (site !== undefined && d.kind === "crash") d.site = site;
    return d;
  };
  const done = (divergence: Divergence | null, ops: number): DiffResult => ({
    divergence,
    ops,
    skipped,
    ...(skipReason === undefined ? {} : { skipReason, skipIndex: skipIndex ?? 0 }),
    ...(backend.coverage === undefined ? {} : { coverage: backend.coverage.slice() }),
  });
  try {
    // A backend that runs ops together (stepMany) runs the whole trace first; the ops are
    // then judged one by one exactly as below, with its skips as supports' refusals.
    // Not with audit (it runs after every op), nor for a backend whose coverage the
    // campaign reads after every run. A trail comes from pathOf's rerun.
    let batch: StepResult[] | null = null;
    if (
      backend.stepMany !== undefined && !(options.audit && backend.audit !== undefined) &&
      backend.coverage === undefined
    ) {
      try {
        batch = backend.stepMany(trace.ops);
      } catch (e) {
        // Nothing says which op threw: the first one gets the crash.
        const message = e instanceof Error ? e.message : String(e);
        batch = trace.ops.map(() => ({ crash: message }));
        site = throwSite(e);
      }
    }
    for (let i = 0; i < trace.ops.length; i++) {
      const op = trace.ops[i]!;
      const result = batch?.[i];
      const unsupported = batch === null
        ? backend.supports?.(op) ?? null
        : result !== undefined && "skip" in result
        ? result.skip
        : null;
      if (unsupported !== null) {
        skipped++;
        skipReason ??= unsupported;
        skipIndex ??= i;
        continue;
      }
      let observed: Outcome;
      if (batch !== null) {
        observed = result === undefined || "skip" in result
          ? { crash: `${backend.name}: stepMany gave no result for op ${i}` }
          : result;
      } else {
        try {
          observed = backend.step(op);
        } catch (e) {
          observed = { crash: e instanceof Error ? e.message : String(e) };
          site = throwSite(e);
        }
      }
      let judgement;
      try {
        judgement = reference.judge(op, observed);
      } catch (e) {
        // The oracle itself failed: a harness bug, not a finding about the backend.
        throw new Error(`Reference failed at op ${i}: ${e instanceof Error ? e.message : e}`, {
          cause: e,
        });
      }
      if ("crash" in observed) {
        return done(
          diverged({ kind: "crash", index: i, op, observed, permitted: judgement.permitted }),
          i + 1,
        );
      }
      if (judgement.match === -1) {
        return done(
          diverged({ kind: "divergence", index: i, op, observed, permitted: judgement.permitted }),
          i + 1,
        );
      }
      if (options.audit && backend.audit !== undefined) {
        let broken: string[];
        try {
          broken = backend.audit();
        } catch (e) {
          broken = [`audit threw: ${e instanceof Error ? e.message : String(e)}`];
        }
        if (broken.length > 0) {
          return done(
            diverged({
              kind: "invariant",
              index: i,
              op,
              observed,
              permitted: judgement.permitted,
              invariant: broken[0]!,
            }),
            i + 1,
          );
        }
      }
    }
    return done(null, trace.ops.length);
  } finally {
    if (!closed) backend.close();
  }
}
