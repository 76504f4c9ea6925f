/**
 * @module
 * The per-run engine, the same in a Worker and in the main thread: for run `r` it makes
 * the trace (fresh from the PRNG, or a mutant of a kept trace), diffs it against the
 * reference, reads the core's coverage, and on a divergence with a signature it has not
 * seen shrinks it (fast-check on choices, then the op minimizer). It never touches the
 * disk: the campaign's main process alone writes the corpus.
 *
 * Determinism: everything about run `r` is a function of the seed, `r` and the pool of
 * kept traces at the start of the epoch, which every worker has identically.
 */
import type { BackendFactory, BackendName } from "../../src/backend.ts";
import { type DiffOptions, diffTrace, type Divergence } from "../../src/diff.ts";
import { outcomeToJson, permittedToJson, traceToJson } from "../../src/trace/json.ts";
import type { Trace } from "../../src/trace/types.ts";
import { type GenConstraints, generateRun, interpret, type TraceChoices } from "../gen/generate.ts";
import { minimizeTrace } from "../reduce/minimize.ts";
import { mutateChoices } from "../gen/mutate.ts";
import { Sfc32 } from "../model/rng.ts";
import { shrinkChoices } from "../reduce/shrink.ts";
import { explainDeviation, identify, type Identity } from "./identity.ts";
import { RandomSource } from "../model/source.ts";

/** What the engine needs to know; plain data, so it crosses to a Worker. */
export interface EngineOptions {
  seed: number;
  constraints: GenConstraints;
  diff: DiffOptions;
  backend: BackendName;
  /** Keep and mutate traces that reach new coverage (default true). */
  guide?: boolean;
  /** Seconds of shrinking per new signature (default 8; 0 disables shrinking). */
  shrinkSeconds?: number;
  /**
   * Also diff a diverging trace without the injected bugs; a divergence that shows
   * there too is a core bug, reported with `baseline: true` (the self-test needs this).
   */
  baselineCheck?: boolean;
}

/** A divergence in JSON form (as the Finding file stores it). */
export interface DivergenceJson {
  kind: Divergence["kind"];
  opIndex: number;
  observed: unknown;
  permitted: unknown[];
  invariant?: string;
}

/** A shrunk trace (JSON form), its length and divergence, and the seconds it took. */
export interface Minimized {
  trace: unknown;
  ops: number;
  divergence: DivergenceJson;
  /** The title of the minimized trace's divergence (its values are the simplest). */
  title: string;
  seconds: number;
}

/** One diverging run. */
export interface RunFinding {
  index: number;
  /** The identity (docs/identity.md): signature, id, title. */
  signature: string;
  id: string;
  title: string;
  /**
   * The known deviation that explains it (`src/core/deviations.ts`): the same trace on
   * the same core with that deviation corrected no longer diverges there.
   */
  deviation?: string;
  /** The full trace (JSON form). */
  trace: unknown;
  /** Set when this engine shrank it: the minimized trace and its divergence. */
  minimized?: Minimized;
  divergence: DivergenceJson;
  /** It diverges without the injected bugs too. */
  baseline?: boolean;
}

/** A run that reached coverage events the epoch started without. */
export interface Interesting {
  index: number;
  events: number[];
  choices: TraceChoices;
}

/** What one slice of an epoch produced. */
export interface EpochResult {
  runs: number;
  /** Number of coverage events the backend has (0 without coverage). */
  coverageSize: number;
  ops: number;
  interesting: Interesting[];
  findings: RunFinding[];
}

/**
 * A slice of run indexes: `start + offset + k * stride < end`; or, with `claim`, the
 * indexes in `[start, end)` this thread claims {@linkcode CLAIM_CHUNK} at a time from a counter shared
 * by every worker of the epoch (dynamic balancing: a worker that drew cheap runs takes
 * more of them). Either way results do not depend on who ran what: the campaign merges
 * them in run-index order.
 */
export interface Slice {
  start: number;
  end: number;
  offset: number;
  stride: number;
  /** The shared next-index counter (`Int32Array` over a `SharedArrayBuffer`). */
  claim?: Int32Array;
}

/** Runs per claim: about a millisecond of work, so an epoch's tail stays short. */
export const CLAIM_CHUNK = 8;

/** The run indexes of `slice`, in increasing order. */
function* sliceIndexes(slice: Slice): Generator<number> {
  const claim = slice.claim;
  if (claim === undefined) {
    for (let i = slice.start + slice.offset; i < slice.end; i += slice.stride) yield i;
    return;
  }
  for (;;) {
    const first = Atomics.add(claim, 0, CLAIM_CHUNK);
    if (first >= slice.end) return;
    const last = Math.min(first + CLAIM_CHUNK, slice.end);
    for (let i = first; i < last; i++) yield i;
  }
}

/** Changes to the shared state, sent at each epoch start (in the same order to all). */
export interface EpochUpdate {
  pool: TraceChoices[];
  events: number[];
  signatures: string[];
}

/** The kept-trace pool stops growing here (then new entries replace old ones). */
export const POOL_MAX = 256;

/** Adds `choices` to a pool deterministically (replacing an entry once full). */
export function poolAdd(pool: TraceChoices[], choices: TraceChoices, serial: number): void {
  if (pool.length < POOL_MAX) pool.push(choices);
  else pool[serial % POOL_MAX] = choices;
}

/** Serializes a divergence. */
export function divergenceJson(d: Divergence): DivergenceJson {
  return {
    kind: d.kind,
    opIndex: d.index,
    observed: outcomeToJson(d.observed),
    permitted: d.permitted.map(permittedToJson),
    ...(d.invariant === undefined ? {} : { invariant: d.invariant }),
  };
}

interface Observed {
  divergence: Divergence | null;
  ops: number;
  coverage: Uint32Array | null;
}

/**
 * What findings are deduplicated by: the signature, or for a divergence the uninjected
 * core shows too (`baseline`, the classic self-test only), the signature marked as such.
 */
export function findingKey(f: { signature: string; baseline?: boolean }): string {
  return f.baseline === true ? `${f.signature} [baseline]` : f.signature;
}

/** The per-run engine. */
export class Engine {
  readonly options: EngineOptions;
  readonly #pool: TraceChoices[] = [];
  #poolSerial = 0;
  readonly #known: Uint8Array = new Uint8Array(1024);
  readonly #signatures = new Set<string>();
  readonly #factory: BackendFactory;

  constructor(factory: BackendFactory, options: EngineOptions) {
    this.options = options;
    this.#factory = factory;
  }

  /** Whether findings are checked against the uninjected core (`baselineCheck`). */
  get #baselineCheck(): boolean {
    return (this.options.baselineCheck ?? false) && (this.options.diff.inject?.length ?? 0) > 0;
  }

  /** Applies an epoch's shared-state changes. */
  update(u: EpochUpdate): void {
    for (const c of u.pool) poolAdd(this.#pool, c, this.#poolSerial++);
    for (const e of u.events) this.#known[e] = 1;
    for (const s of u.signatures) this.#signatures.add(s);
  }

  /** Runs a trace against the reference and reads the backend's coverage. */
  observe(trace: Trace, diff: DiffOptions = this.options.diff): Observed {
    const r = diffTrace(trace, this.#factory, diff);
    return { divergence: r.divergence, ops: r.ops, coverage: r.coverage ?? null };
  }

  /** The signature `trace` diverges with, or null. */
  signature(trace: Trace, diff: DiffOptions = this.options.diff): string | null {
    const d = this.observe(trace, diff).divergence;
    return d === null ? null : this.identity(trace, d, diff).signature;
  }

  /** The identity of the divergence `d` of `trace`, its known deviation and probes included. */
  identity(trace: Trace, d: Divergence, diff: DiffOptions = this.options.diff): Identity {
    return identify(d, this.options.backend, trace.config, this.explain(trace, d), {
      factory: this.#factory,
      trace,
      diff,
    });
  }

  /**
   * The known deviation that explains the divergence `d` of `trace`, or undefined: the
   * first one whose correction alone (same injected bugs, same options) makes the core
   * agree up to and including the diverging op. Only the core can be corrected.
   */
  explain(trace: Trace, d: Divergence): string | undefined {
    return explainDeviation(trace, d, this.#factory, this.options.diff);
  }

  /** The trace of run `index` and, for mutants, its choices. */
  traceOf(index: number): { trace: Trace; choices: TraceChoices | null } {
    const { seed, constraints } = this.options;
    const pool = this.#pool;
    if ((this.options.guide ?? true) && pool.length > 0) {
      const src = new RandomSource(new Sfc32(seed, index, 2));
      // One run in four is a mutant: measured (docs/measurements.md), mutants rarely find a bug
      // sooner than fresh generation, and each one replaces a fresh run that might have.
      if (src.int(4) === 0) {
        const parent = pool[src.int(pool.length)]!;
        const other = pool[src.int(pool.length)]!;
        const choices = mutateChoices(src, parent, other);
        return { trace: interpret(choices, constraints), choices };
      }
    }
    return { trace: generateRun(seed, index, constraints).trace, choices: null };
  }

  /** The choices of run `index` (regenerated with recording for a fresh run). */
  choicesOf(index: number, mutant: TraceChoices | null): TraceChoices {
    if (mutant !== null) return mutant;
    return generateRun(this.options.seed, index, this.options.constraints, true).choices!;
  }

  /** Runs one slice of an epoch. */
  runSlice(slice: Slice, shouldStop: () => boolean = () => false): EpochResult {
    const result: EpochResult = { runs: 0, coverageSize: 0, ops: 0, interesting: [], findings: [] };
    const shrunkHere = new Set<string>();
    // Events an earlier run of this slice already reported: a later run reaching only
    // those can never be kept (the merge keeps the lowest index), so it is not sent.
    const reported = new Uint8Array(this.#known.length);
    for (const i of sliceIndexes(slice)) {
      if (shouldStop()) break;
      const { trace, choices } = this.traceOf(i);
      const obs = this.observe(trace);
      result.runs++;
      result.ops += obs.ops;
      // Coverage is reported with guidance off too (the pool is then never drawn from),
      // so that guided and pure campaigns can be compared.
      if (obs.coverage !== null) {
        let events: number[] | null = null;
        const cov = obs.coverage;
        result.coverageSize = cov.length;
        for (let e = 0; e < cov.length; e++) {
          if (cov[e] !== 0 && this.#known[e] === 0) (events ??= []).push(e);
        }
        if (events !== null && events.some((e) => reported[e] === 0)) {
          for (const e of events) reported[e] = 1;
          result.interesting.push({ index: i, events, choices: this.choicesOf(i, choices) });
        }
      }
      if (obs.divergence !== null) {
        const deviation = this.explain(trace, obs.divergence);
        const identity = identify(obs.divergence, this.options.backend, trace.config, deviation, {
          factory: this.#factory,
          trace,
          diff: this.options.diff,
        });
        const sig = identity.signature;
        const finding: RunFinding = {
          index: i,
          signature: sig,
          id: identity.id,
          title: identity.title,
          trace: traceToJson(trace),
          divergence: divergenceJson(obs.divergence),
          ...(deviation === undefined ? {} : { deviation }),
        };
        // A divergence the uninjected core shows too is a core bug, not the injected one
        // (the classic self-test only: campaigns judge with and without --inject alike).
        if (this.#baselineCheck) {
          finding.baseline = this.signature(trace, { ...this.options.diff, inject: [] }) !== null;
        }
        const key = findingKey(finding);
        // A known deviation's runs are counted, never shrunk; a signature the corpus or an
        // earlier epoch has is a hit.
        if (deviation === undefined && !this.#signatures.has(key) && !shrunkHere.has(key)) {
          shrunkHere.add(key);
          // A baseline finding is not what the self-test hunts: it is not shrunk.
          if ((this.options.shrinkSeconds ?? 8) > 0 && finding.baseline !== true) {
            const m = this.shrink(sig, this.choicesOf(i, choices), trace);
            if (m !== null) finding.minimized = m;
          }
        }
        result.findings.push(finding);
      }
    }
    return result;
  }

  /** Shrinks a diverging trace keeping its signature; null if it does not reproduce. */
  shrink(
    signature: string,
    choices: TraceChoices,
    trace: Trace,
  ): Minimized | null {
    const t0 = performance.now();
    const budget = (this.options.shrinkSeconds ?? 8) * 1000;
    // The injected bug's finding must stay one that the uninjected core agrees on.
    const uninjected = { ...this.options.diff, inject: [] };
    // The same identity: no known deviation explains it either.
    const fresh = (t: Trace): boolean => {
      const d = this.observe(t).divergence;
      return d !== null && this.identity(t, d).signature === signature;
    };
    const same = this.#baselineCheck
      ? (t: Trace) => fresh(t) && this.signature(t, uninjected) === null
      : fresh;
    const constraints = this.options.constraints;
    let best = trace;
    if (same(trace)) {
      const s = shrinkChoices(choices, (c) => same(interpret(c, constraints)), {
        deadline: t0 + budget / 2,
      });
      const candidate = interpret(s.choices, constraints);
      // Smaller choices can interpret to more ops (a shorter burst choice re-rolls into
      // a longer one): keep the original then.
      if (candidate.ops.length <= trace.ops.length && same(candidate)) best = candidate;
    } else return null;
    const m = minimizeTrace(best, same, { deadline: t0 + budget });
    const d = this.observe(m.trace).divergence;
    if (d === null) return null;
    return {
      trace: traceToJson(m.trace),
      ops: m.trace.ops.length,
      divergence: divergenceJson(d),
      title: this.identity(m.trace, d).title,
      seconds: (performance.now() - t0) / 1000,
    };
  }
}
