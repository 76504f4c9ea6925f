/**
 * @module
 * A fuzzing campaign: runs epochs of {@linkcode EPOCH_RUNS} run indexes in Workers (or
 * inline), merges their results in run-index order (so coverage guidance and findings
 * do not depend on the worker count), records findings in the corpus (the main process
 * is the only writer), and reports progress.
 */
import type { BackendFactory } from "../../src/backend.ts";
import type { RunFinding } from "./engine.ts";
import {
  Engine,
  type EngineOptions,
  type EpochResult,
  type EpochUpdate,
  findingKey,
  poolAdd,
  type Slice,
} from "./engine.ts";
import type { TraceChoices } from "../gen/generate.ts";
import type { BackendRef, ToWorker } from "./worker.ts";

/** Runs per epoch: fixed, so that results do not depend on the worker count. */
export const EPOCH_RUNS = 1024;

/** How a campaign runs. */
export interface CampaignOptions {
  engine: EngineOptions;
  /** 0 runs inline in this thread (needs `factory`). */
  workers: number;
  backend: BackendRef;
  /** The factory for inline runs. */
  factory?: BackendFactory;
  seconds?: number;
  runs?: number;
  /** Signatures already in the corpus (not shrunk again). */
  knownSignatures?: string[];
  /** Stop at the first divergence that is not a baseline one (the self-test). */
  stopOnFinding?: boolean;
  /** Called after every epoch. */
  onProgress?: (p: Progress) => void;
  /** Called with every new signature, in run order, before the next epoch starts. */
  onFinding?: (f: CampaignFinding) => Promise<void> | void;
}

/** Progress so far. */
export interface Progress {
  elapsed: number;
  runs: number;
  ops: number;
  coverage: number;
  coverageTotal: number;
  findings: number;
}

/** One signature seen in the campaign. */
export interface CampaignFinding {
  /** The first run that showed it (with the minimized trace). */
  first: RunFinding;
  hits: number;
  /** Seconds from the campaign start to its first sighting. */
  seconds: number;
}

/** The outcome of a campaign. */
export interface CampaignResult {
  runs: number;
  ops: number;
  seconds: number;
  workers: number;
  coverageEvents: number[];
  coverageTotal: number;
  pool: number;
  findings: CampaignFinding[];
  /**
   * Runs whose divergence a known deviation explains (`src/core/deviations.ts`), by
   * deviation name. Those runs are in `findings` too, marked with `first.deviation`.
   */
  deviations: Record<string, number>;
  interrupted: boolean;
}

/** Something that runs an epoch's slices. */
interface Runner {
  run(update: EpochUpdate, start: number, end: number, budgetMs: number): Promise<EpochResult[]>;
  close(): void;
}

class InlineRunner implements Runner {
  readonly #engine: Engine;
  readonly #stop: Int32Array;
  constructor(engine: Engine, stop: Int32Array) {
    this.#engine = engine;
    this.#stop = stop;
  }
  run(update: EpochUpdate, start: number, end: number, budgetMs: number): Promise<EpochResult[]> {
    this.#engine.update(update);
    const deadline = performance.now() + budgetMs;
    const slice: Slice = { start, end, offset: 0, stride: 1 };
    return Promise.resolve([
      this.#engine.runSlice(
        slice,
        () => Atomics.load(this.#stop, 0) !== 0 || performance.now() > deadline,
      ),
    ]);
  }
  close(): void {}
}

type FromWorker =
  | { type: "ready" }
  | { type: "result"; result: EpochResult }
  | { type: "error"; message: string };

class WorkerRunner implements Runner {
  readonly #workers: Worker[] = [];
  readonly #pending: ((m: FromWorker) => void)[] = [];
  /** The epoch's next unclaimed run index, shared by the workers. */
  readonly #claim = new Int32Array(new SharedArrayBuffer(4));

  static async start(
    n: number,
    options: EngineOptions,
    backend: BackendRef,
    stop: SharedArrayBuffer,
  ): Promise<WorkerRunner> {
    const r = new WorkerRunner();
    for (let i = 0; i < n; i++) {
      const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
      r.#workers.push(w);
      w.onmessage = (ev: MessageEvent<FromWorker>) => r.#pending[i]?.(ev.data);
      w.onerror = (ev) => {
        ev.preventDefault();
        r.#pending[i]?.({ type: "error", message: ev.message });
      };
    }
    await Promise.all(r.#workers.map((w, i) => {
      const msg: ToWorker = { type: "init", options, backend, stop };
      const p = r.#next(i);
      w.postMessage(msg);
      return p;
    }));
    return r;
  }

  #next(i: number): Promise<FromWorker> {
    return new Promise<FromWorker>((resolve) => {
      this.#pending[i] = resolve;
    }).then((m) => {
      if (m.type === "error") throw new Error(`Worker ${i} failed: ${m.message}`);
      return m;
    });
  }

  async run(
    update: EpochUpdate,
    start: number,
    end: number,
    budgetMs: number,
  ): Promise<EpochResult[]> {
    Atomics.store(this.#claim, 0, start);
    const replies = this.#workers.map((w, i) => {
      const p = this.#next(i);
      const msg: ToWorker = {
        type: "epoch",
        update,
        slice: { start, end, offset: 0, stride: 1, claim: this.#claim },
        budgetMs,
      };
      w.postMessage(msg);
      return p;
    });
    const results = await Promise.all(replies);
    return results.map((m) => (m as { result: EpochResult }).result);
  }

  close(): void {
    for (const w of this.#workers) w.terminate();
  }
}

/** Runs a campaign. `stop` (a shared Int32 flag, set on Ctrl-C) ends it cleanly. */
export async function runCampaign(
  options: CampaignOptions,
  stopBuffer: SharedArrayBuffer = new SharedArrayBuffer(4),
): Promise<CampaignResult> {
  const stop = new Int32Array(stopBuffer);
  const t0 = performance.now();
  let runner: Runner;
  if (options.workers <= 0) {
    if (options.factory === undefined) throw new TypeError("An inline campaign needs a factory");
    runner = new InlineRunner(new Engine(options.factory, options.engine), stop);
  } else {
    runner = await WorkerRunner.start(options.workers, options.engine, options.backend, stopBuffer);
  }
  const known = new Uint8Array(1024);
  const coverageEvents: number[] = [];
  const pool: TraceChoices[] = [];
  let serial = 0;
  const bySignature = new Map<string, CampaignFinding>();
  const findings: CampaignFinding[] = [];
  const deviations: Record<string, number> = {};
  let update: EpochUpdate = { pool: [], events: [], signatures: options.knownSignatures ?? [] };
  let runs = 0;
  let ops = 0;
  let coverageTotal = 0;
  let interrupted = false;
  const limitRuns = options.runs ?? Infinity;
  const deadline = options.seconds === undefined ? Infinity : t0 + options.seconds * 1000;
  try {
    for (let epoch = 0;; epoch++) {
      const start = epoch * EPOCH_RUNS;
      const end = Math.min(start + EPOCH_RUNS, limitRuns);
      if (start >= end) break;
      if (Atomics.load(stop, 0) !== 0) {
        interrupted = true;
        break;
      }
      const now = performance.now();
      if (now >= deadline) break;
      const results = await runner.run(update, start, end, Math.min(deadline - now, 2 ** 31));
      const next: EpochUpdate = { pool: [], events: [], signatures: [] };
      const interesting = results.flatMap((r) => r.interesting).sort((a, b) => a.index - b.index);
      for (const r of results) {
        runs += r.runs;
        ops += r.ops;
        coverageTotal = Math.max(coverageTotal, r.coverageSize);
      }
      for (const it of interesting) {
        const fresh = it.events.filter((e) => known[e] === 0);
        if (fresh.length === 0) continue;
        for (const e of fresh) {
          known[e] = 1;
          coverageEvents.push(e);
          next.events.push(e);
        }
        poolAdd(pool, it.choices, serial++);
        next.pool.push(it.choices);
      }
      const found = results.flatMap((r) => r.findings).sort((a, b) => a.index - b.index);
      let stopNow = false;
      for (const f of found) {
        const key = findingKey(f);
        const seen = bySignature.get(key);
        if (f.deviation !== undefined) {
          deviations[f.deviation] = (deviations[f.deviation] ?? 0) + 1;
        }
        if (seen !== undefined) {
          seen.hits++;
          continue;
        }
        const cf: CampaignFinding = { first: f, hits: 1, seconds: (performance.now() - t0) / 1000 };
        bySignature.set(key, cf);
        findings.push(cf);
        next.signatures.push(key);
        if (options.stopOnFinding && f.baseline !== true && f.deviation === undefined) {
          stopNow = true;
        }
      }
      // Report after the hits of this epoch are counted, in run order.
      for (const cf of findings) {
        if (cf.first.index >= start && cf.first.index < end) await options.onFinding?.(cf);
      }
      update = next;
      options.onProgress?.({
        elapsed: (performance.now() - t0) / 1000,
        runs,
        ops,
        coverage: coverageEvents.length,
        coverageTotal,
        findings: findings.length,
      });
      if (stopNow) break;
    }
    if (Atomics.load(stop, 0) !== 0) interrupted = true;
  } finally {
    runner.close();
  }
  return {
    runs,
    ops,
    seconds: (performance.now() - t0) / 1000,
    workers: options.workers,
    coverageEvents: coverageEvents.sort((a, b) => a - b),
    coverageTotal,
    pool: pool.length,
    findings,
    deviations,
    interrupted,
  };
}
