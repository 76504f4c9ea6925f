/**
 * @module
 * The one backend contract (like Hono's `router.ts`): the reference, the core and the
 * kvm backend each implement {@linkcode Backend}, and one conformance suite in `test/`
 * holds all of them to the same cases. The reference also implements
 * {@linkcode Oracle}: it judges another backend's outcome against the set of outcomes
 * the architecture and the KVM uAPI permit, and follows the branch that was taken.
 *
 * Backends share constants and types only, never logic (docs/design.md).
 */
import type { Config, Op, Outcome, Permitted } from "./trace/types.ts";

/** Re-exported for importers of the contract; defined with the trace types. */
export type { Permitted };

/**
 * An op {@linkcode Backend.stepMany} did not run, and why: what `supports` would have
 * answered in that state, or a refusal the backend could only make while running the op
 * (the kvm backend's fetch check). Runners treat it as a skip.
 */
export interface Skipped {
  /** Why the op was not run. */
  skip: string;
}

/** The result of one op of {@linkcode Backend.stepMany}: its outcome, or a skip. */
export type StepResult = Outcome | Skipped;

/**
 * The names of the backends: the one list. The registry (`src/backends.ts`) is typed
 * against it, so a backend is registered exactly under the names here.
 */
export const BACKEND_NAMES = ["reference", "core", "kvm"] as const;

/** The name of one backend. */
export type BackendName = (typeof BACKEND_NAMES)[number];

/** A backend that findings are about: every one but the reference, which judges them. */
export type JudgedBackendName = Exclude<BackendName, "reference">;

/** The backends findings are about, in {@linkcode BACKEND_NAMES} order. */
export const JUDGED_BACKEND_NAMES: readonly JudgedBackendName[] = BACKEND_NAMES.filter(
  (n): n is JudgedBackendName => n !== "reference",
);

/** True if `name` is one of {@linkcode BACKEND_NAMES}. */
export function isBackendName(name: string): name is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(name);
}

/**
 * The kinds of disagreement a runner reports, the one list: `divergence` (an outcome
 * the reference does not permit), `invariant` (a permitted outcome after which the
 * backend's {@linkcode Backend.audit} failed), `crash` ({@linkcode Backend.step} threw).
 */
export const FINDING_KINDS = ["divergence", "invariant", "crash"] as const;

/** One of {@linkcode FINDING_KINDS}. */
export type FindingKind = (typeof FINDING_KINDS)[number];

/** One executable machine. Created for one trace config, then fed ops in order. */
export interface Backend {
  /** Which backend this is. */
  readonly name: BackendName;
  /**
   * Runs one op and returns its outcome. Total over valid ops: it never throws for an
   * op that parsed (an exception is a finding of kind `crash`).
   */
  step(op: Op): Outcome;
  /**
   * Why this backend cannot run `op` in its current state (the kvm backend cannot
   * fetch, age or count hardware events from userspace), or null. Runners call it
   * before `step` and skip with the printed reason; `step` throws on such an op.
   */
  supports?(op: Op): string | null;
  /**
   * Runs `ops` in order, as `supports` then `step` per op would, and returns one result
   * per op: its outcome, or `{skip}` for an op `supports` refuses in the state the ops
   * before it left (the op is then not run, as a runner that skips it would do). The
   * outcome of every op is the one `step` would give after the same ops; a backend
   * offers it when running ops together is cheaper (the kvm backend: one KVM_RUN for
   * many guest ops). It leaves no per-op `trail` or `coverage`: runners use it only for
   * backends without `coverage`, and read a diverging op's trail from a rerun with
   * {@linkcode BackendOptions.trail}. Total over valid ops like `step`.
   */
  stepMany?(ops: readonly Op[]): StepResult[];
  /** Releases OS resources (the kvm backend's VM); a no-op elsewhere. */
  close(): void;
  /**
   * Named event counters (the core: shadow-MMU and vPMU events); `coverageNames[i]`
   * names `coverage[i]`. The fuzzer guides on them, and the events one op counted are
   * the "path" part of a finding's identity (docs/identity.md).
   */
  readonly coverage?: Uint32Array;
  /** The names of the `coverage` counters, index for index. */
  readonly coverageNames?: readonly string[];
  /**
   * What the backend saw of the last `step` when it has no counters (the kvm backend:
   * the ioctls it issued, the exits of its KVM_RUNs, the KVM stats that moved), in
   * order, for a backend created with {@linkcode BackendOptions.trail}; part of a
   * finding's identity like `coverage` (docs/identity.md).
   */
  trail?(): readonly string[];
  /**
   * The index, among the ops this backend ran, of the op that built the state the last
   * step used (the core: the op that last set the leaf spte an access hit), or null.
   */
  origin?(): number | null;
  /** The backend's own invariants, broken ones as messages (the core's audit). */
  audit?(): string[];
}

/** How a backend is made; `available()` says why it cannot run here, or `null`. */
export interface BackendFactory {
  /** The name of the backends it creates. */
  readonly name: BackendName;
  /** Why this backend cannot run on this machine (no usable `/dev/kvm`), or null. */
  available(): string | null;
  /**
   * Why the backend can never run `op` under `config`, whatever the state (a static
   * check runners use to skip a whole case or avoid an op up front), or null.
   */
  cannotRun?(op: Op, config: Config): string | null;
  /** A fresh machine for `config`, in its reset state. */
  create(config: Config, options?: BackendOptions): Backend;
}

/** How {@linkcode BackendFactory.create} sets a backend up beyond its config. */
export interface BackendOptions {
  /** Injected bug names (core only). */
  inject?: readonly string[];
  /**
   * Known deviations of KVM from the architecture to correct (core only;
   * `src/core/deviations.ts`): the fuzzer asks whether a divergence is one of them by
   * running the trace again with the deviation corrected.
   */
  fix?: readonly string[];
  /**
   * Record the trail of each `step` (backends with `trail`; the kvm backend then pays
   * a settling KVM_RUN and stats reads per op). `diffTrace` sets it on the rerun that
   * reads a diverging op's path.
   */
  trail?: boolean;
}

/** The reference's verdict on one op. */
export interface Judgement {
  /** Every permitted outcome; the first is the canonical one (strict mode keeps only it). */
  permitted: Permitted[];
  /** The index of the permitted entry the observed outcome matched, or -1. */
  match: number;
}

/** A backend that knows every permitted outcome (the reference). */
export interface Oracle {
  /**
   * Judges `observed` for `op` and advances along the branch it took. Without
   * `observed`, takes the canonical outcome. On a mismatch (match -1) the state
   * advances along the canonical outcome. `observed` may also be a function that picks
   * an outcome once the permitted set is known (tests use it to walk every branch).
   */
  judge(op: Op, observed?: Outcome | ((permitted: readonly Permitted[]) => Outcome)): Judgement;
}
