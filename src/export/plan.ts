/**
 * @module
 * What a standalone reproducer embeds: the trace's ops the kvm backend can run, and for
 * each the reference's permitted set, computed the way `diffTrace` computes it. Where
 * /dev/kvm can be used at export time the trace runs on the kvm backend beside the
 * reference, exactly as `diff --backend kvm` runs it, and the reference follows the
 * branch the kvm outcomes take; elsewhere it follows its canonical branch (the first
 * permitted outcome), except at a finding's recorded divergence, which it judges with
 * the outcome the finding recorded.
 *
 * Ops the kvm backend cannot run (an unsupported kind, a constraint violation) are
 * refused with {@linkcode ExportRefusal}, or, with `skipUnsupported`, left out on both
 * sides as `diffTrace` leaves them out (the reference judges the rest as if they were not
 * there).
 */
import type { Permitted } from "../backend.ts";
import type { Divergence } from "../diff.ts";
import { ReferenceBackend } from "../reference/mod.ts";
import { staticViolation } from "../kvm/constraints.ts";
import { pmuDefaults } from "../trace/config.ts";
import { permittedToJson } from "../trace/json.ts";
import { formatOp } from "../trace/text.ts";
import type { Config, Op, Outcome, Trace } from "../trace/types.ts";

/**
 * What the kvm backend runs but the C runtime does not (yet): fetches (the backend's
 * fetch check, src/kvm/README.md "Fetches").
 */
function cNotPorted(op: Op): string | null {
  if (op.op === "access" && op.kind === "fetch") {
    return "kvm: instruction fetches would execute trace-controlled bytes in the guest, which " +
      "the C runtime cannot check (the kvm backend's fetch check is not ported to it)";
  }
  return null;
}

/** An op the exporter cannot emit: its index, text and why. */
export class ExportRefusal extends RangeError {
  override name = "ExportRefusal";
  constructor(readonly index: number, readonly op: Op, readonly reason: string) {
    super(
      `Cannot export op ${index} (${formatOp(op)}): ${reason}; --skip-unsupported leaves ` +
        "such ops out, as replay and diff do",
    );
  }
}

/** One op the reproducer runs, with what the reference permits for it. */
export interface PlannedOp {
  /** The op's index in the trace (skipped ops keep their numbers out). */
  index: number;
  op: Op;
  /** The reference's permitted outcomes, in its order (the first is canonical). */
  permitted: Permitted[];
  /** The permitted entry the reference followed (the kvm outcome's, else 0). */
  followed: number;
  /** The outcome the reference committed: the observed one when it matched, else the canonical one. */
  committed: Outcome;
  /** The kvm outcome at export time (or the finding's recorded one), if known. */
  observed?: Outcome;
  /**
   * Whether the reference's later state does not depend on which permitted outcome this
   * op had: true for every op but `access` and `read`, whose commit follows the observed
   * branch (the store's target, A/D updates, a read resolving don't-care bits; see
   * `ReferenceBackend.judge`). For the others the commit is the same for every entry
   * (dirtylog clears the log, an unmodelled MSR keeps no state).
   */
  branchFree: boolean;
}

/** An op left out with `skipUnsupported`. */
export interface SkippedOp {
  index: number;
  op: Op;
  reason: string;
}

/** The first divergence the export-time run saw (kvm or the finding's record). */
export interface ExportDivergence {
  index: number;
  kind: "divergence" | "crash";
  observed: Outcome;
  /** Its signature (docs/identity.md), when a signature function was given. */
  signature?: string;
}

export interface ExportPlan {
  trace: Trace;
  /**
   * The config fields a host must provide for this trace (capabilities.ts
   * kvmConfigMismatch): those some op's permitted set depends on ({@linkcode configNeeds}).
   */
  needs: ConfigNeeds;
  ops: PlannedOp[];
  skipped: SkippedOp[];
  /** null when the kvm backend ran at export time, else why it did not. */
  kvmAbsent: string | null;
  divergence: ExportDivergence | null;
}

/** A kvm backend as the planner needs it (tests substitute their own). */
export interface PlanBackend {
  supports(op: Op): string | null;
  step(op: Op): Outcome;
  close(): void;
}

export interface PlanOptions {
  /** Leave out ops the kvm backend cannot run (as diff does) instead of refusing. */
  skipUnsupported?: boolean;
  /**
   * A kvm backend to run beside the reference, or why there is none (the reference then
   * follows its canonical branch).
   */
  kvm?: PlanBackend | { absent: string };
  /** The finding's recorded divergence of this trace: judged with that outcome. */
  recorded?: { index: number; observed: Outcome };
  /** Whether to check the kvm_pvm-only constraints (needs FFI; `staticViolation`). */
  pvmDiffs?: boolean;
  /** The signature of a divergence, for the report (fuzz/campaign/identity.ts `signatureOf`). */
  signature?: (d: Divergence) => string;
}

/** Runs the reference (and the kvm backend, if given) over `trace`; see the module doc. */
export function planExport(trace: Trace, options: PlanOptions = {}): ExportPlan {
  const kvm = options.kvm !== undefined && "step" in options.kvm ? options.kvm : null;
  const kvmAbsent = kvm !== null
    ? null
    : options.kvm !== undefined && "absent" in options.kvm
    ? options.kvm.absent
    : "no kvm backend was given";
  const reference = new ReferenceBackend(trace.config);
  const ops: PlannedOp[] = [];
  const skipped: SkippedOp[] = [];
  let divergence: ExportDivergence | null = null;
  try {
    for (let i = 0; i < trace.ops.length; i++) {
      const op = trace.ops[i]!;
      const why = cNotPorted(op) ??
        (kvm !== null
          ? kvm.supports(op)
          : staticViolation(op, trace.config, options.pvmDiffs ?? false));
      if (why !== null) {
        if (!options.skipUnsupported) throw new ExportRefusal(i, op, why);
        skipped.push({ index: i, op, reason: why });
        continue;
      }
      let observed: Outcome | undefined;
      if (kvm !== null) {
        try {
          observed = kvm.step(op);
        } catch (e) {
          observed = { crash: e instanceof Error ? e.message : String(e) };
        }
      } else if (options.recorded?.index === i) {
        observed = options.recorded.observed;
      }
      const j = reference.judge(op, observed);
      const followed = j.match === -1 ? 0 : j.match;
      const committed = observed !== undefined && j.match !== -1
        ? observed
        : j.permitted[followed]!.outcome;
      ops.push({
        index: i,
        op,
        permitted: j.permitted,
        followed,
        committed,
        ...(observed === undefined ? {} : { observed }),
        branchFree: op.op !== "access" && op.op !== "read",
      });
      if (divergence === null && observed !== undefined) {
        const crash = "crash" in observed;
        if (crash || j.match === -1) {
          const kind = crash ? "crash" : "divergence";
          const d: Divergence = { kind, index: i, op, observed, permitted: j.permitted };
          divergence = {
            index: i,
            kind,
            observed,
            ...(options.signature === undefined ? {} : { signature: options.signature(d) }),
          };
        }
      }
    }
  } finally {
    kvm?.close();
  }
  return { trace, ops, skipped, kvmAbsent, divergence, needs: configNeeds(trace) };
}

/** Which host-dependent config fields a trace's permitted outcomes depend on. */
export interface ConfigNeeds {
  /** 1 GiB pages (Page1GB): a host without them cannot run the trace faithfully. */
  gbPages: boolean;
  /** The config's vPMU: a host without it (or of another vendor) cannot run the trace. */
  pmu: boolean;
}

/** A permitted set without the `why` texts (they name ops, not outcomes). */
function permittedKey(permitted: readonly Permitted[]): string {
  return JSON.stringify(permitted.map((p) => {
    const { why: _why, ...rest } = permittedToJson(p) as Record<string, unknown>;
    return rest;
  }));
}

/**
 * Whether some op's permitted outcomes differ when the reference runs under `instead`
 * (canonical branches on both sides): whether the trace depends on what `instead` takes
 * away. An op the reference refuses under either config counts as dependent.
 */
export function dependsOn(trace: Trace, instead: Config): boolean {
  const a = new ReferenceBackend(trace.config), b = new ReferenceBackend(instead);
  for (const op of trace.ops) {
    try {
      if (permittedKey(a.judge(op).permitted) !== permittedKey(b.judge(op).permitted)) return true;
    } catch {
      return true;
    }
  }
  return false;
}

/** The config fields a host must provide for `trace` (see {@linkcode ConfigNeeds}). */
export function configNeeds(trace: Trace): ConfigNeeds {
  const c = trace.config;
  return {
    gbPages: c.gbPages && dependsOn(trace, { ...c, gbPages: false }),
    pmu: c.pmu.version > 0 && dependsOn(trace, { ...c, pmu: pmuDefaults(c.vendor, 0) }),
  };
}
