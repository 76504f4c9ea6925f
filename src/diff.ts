/**
 * @module
 * The diff runner: runs a trace on a backend and on the reference side by side and
 * stops at the first op whose outcome lies outside the reference's permitted set, at
 * the first broken invariant (with `audit`), or at the first exception (a crash).
 */
import type { BackendFactory, Permitted } from "./backend.ts";
import { ReferenceBackend } from "./reference/mod.ts";
import type { Op, Outcome, Trace } from "./trace/types.ts";

/** Where and how a backend disagreed with the reference. */
export interface Divergence {
  kind: "divergence" | "invariant" | "crash";
  /** Index of the op in the trace. */
  index: number;
  op: Op;
  observed: Outcome;
  permitted: Permitted[];
  /** For `invariant`: the broken invariant. */
  invariant?: string;
  /**
   * The backend's named events during the diverging op (its coverage counters that
   * moved, in counter order, or its `trail()`): the path part of the identity.
   */
  path?: string[];
  /** For `crash`: the function that threw (the top stack frame's name), if known. */
  site?: string;
}

export interface DiffOptions {
  strict?: boolean;
  inject?: readonly string[];
  /** Known deviations to correct in the backend (core only; `BackendOptions.fix`). */
  fix?: readonly string[];
  /** Run the backend's `audit()` after every op. */
  audit?: boolean;
}

export interface DiffResult {
  divergence: Divergence | null;
  /** Ops run on both sides (up to and including the diverging one). */
  ops: number;
  /**
   * Ops left out on both sides because the backend cannot run them (`supports`), and
   * the first reason. The rest of the trace is judged as if they were not there.
   */
  skipped: number;
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

/** Runs `trace` on `factory`'s backend against the reference. */
export function diffTrace(
  trace: Trace,
  factory: BackendFactory,
  options: DiffOptions = {},
): DiffResult {
  const reference = new ReferenceBackend(trace.config, { strict: options.strict ?? false });
  const backend = factory.create(trace.config, {
    inject: options.inject ?? [],
    ...(options.fix === undefined ? {} : { fix: options.fix }),
  });
  let skipped = 0;
  let skipReason: string | undefined;
  let skipIndex: number | undefined;
  const names = backend.coverageNames;
  // The counters before the current op, to name the events the diverging op counted.
  const before = names !== undefined && backend.coverage !== undefined
    ? new Uint32Array(backend.coverage.length)
    : null;
  let site: string | undefined;
  const pathOf = (): string[] | undefined => {
    if (before !== null) return movedEvents(before, backend.coverage!, names!);
    const t = backend.trail?.();
    return t === undefined ? undefined : [...t];
  };
  const diverged = (d: Divergence): Divergence => {
    const path = pathOf();
    if (path !== undefined) d.path = path;
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
    for (let i = 0; i < trace.ops.length; i++) {
      const op = trace.ops[i]!;
      const unsupported = backend.supports?.(op) ?? null;
      if (unsupported !== null) {
        skipped++;
        skipReason ??= unsupported;
        skipIndex ??= i;
        continue;
      }
      if (before !== null) before.set(backend.coverage!);
      let observed: Outcome;
      try {
        observed = backend.step(op);
      } catch (e) {
        observed = { crash: e instanceof Error ? e.message : String(e) };
        site = throwSite(e);
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
    backend.close();
  }
}
