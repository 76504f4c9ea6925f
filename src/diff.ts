/**
 * @module
 * The diff runner: runs a trace on a backend and on the reference side by side and
 * stops at the first op whose outcome lies outside the reference's permitted set, at
 * the first broken invariant (with `audit`), or at the first exception (a crash).
 */
import type { Backend, BackendFactory, Permitted } from "./backend.ts";
import { ReferenceBackend } from "./reference/mod.ts";
import type { Op, Outcome, Trace } from "./trace/types.ts";

/** A backend that can check its own invariants (the core). */
export interface Auditable {
  audit(): string[];
}

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
}

export interface DiffOptions {
  strict?: boolean;
  inject?: readonly string[];
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
}

function hasAudit(b: Backend): b is Backend & Auditable {
  return typeof (b as Partial<Auditable>).audit === "function";
}

/** Runs `trace` on `factory`'s backend against the reference. */
export function diffTrace(
  trace: Trace,
  factory: BackendFactory,
  options: DiffOptions = {},
): DiffResult {
  const reference = new ReferenceBackend(trace.config, { strict: options.strict ?? false });
  const backend = factory.create(trace.config, { inject: options.inject ?? [] });
  let skipped = 0;
  let skipReason: string | undefined;
  const done = (divergence: Divergence | null, ops: number): DiffResult => ({
    divergence,
    ops,
    skipped,
    ...(skipReason === undefined ? {} : { skipReason }),
  });
  try {
    for (let i = 0; i < trace.ops.length; i++) {
      const op = trace.ops[i]!;
      const unsupported = backend.supports?.(op) ?? null;
      if (unsupported !== null) {
        skipped++;
        skipReason ??= unsupported;
        continue;
      }
      let observed: Outcome;
      try {
        observed = backend.step(op);
      } catch (e) {
        observed = { crash: e instanceof Error ? e.message : String(e) };
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
          { kind: "crash", index: i, op, observed, permitted: judgement.permitted },
          i + 1,
        );
      }
      if (judgement.match === -1) {
        return done(
          { kind: "divergence", index: i, op, observed, permitted: judgement.permitted },
          i + 1,
        );
      }
      if (options.audit && hasAudit(backend)) {
        let broken: string[];
        try {
          broken = backend.audit();
        } catch (e) {
          broken = [`audit threw: ${e instanceof Error ? e.message : String(e)}`];
        }
        if (broken.length > 0) {
          return done({
            kind: "invariant",
            index: i,
            op,
            observed,
            permitted: judgement.permitted,
            invariant: broken[0]!,
          }, i + 1);
        }
      }
    }
    return done(null, trace.ops.length);
  } finally {
    backend.close();
  }
}
