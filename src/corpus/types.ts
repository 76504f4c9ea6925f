/**
 * @module
 * The corpus file formats (docs/corpus.md): findings and campaign run records.
 * Types only; the store that reads and writes them atomically is `store.ts`.
 */
import type { BackendName, FindingKind } from "../backend.ts";
import type { Area } from "../trace/types.ts";

/** The format tags of corpus files. */
export const FINDING_FORMAT = "shadowfuzz.finding/1";
/** Finding files under the root-cause identity rules (docs/identity.md); same fields. */
export const FINDING_FORMAT_V2 = "shadowfuzz.finding/2";
export const RUN_FORMAT = "shadowfuzz.run/1";
/** The per-run state of a finding (`corpus/state/<id>.json`, untracked). */
export const STATE_FORMAT = "shadowfuzz.state/1";

/** At most this many entries of a finding's hit history are kept (the newest). */
export const MAX_HISTORY = 50;

/** One sighting in a finding's hit history. */
export interface HitRecord {
  /** ISO 8601 time of the sighting. */
  time: string;
  /** The campaign's seed (a decimal string). */
  seed: string;
  /** How many runs of that campaign hit it (at least 1). */
  hits: number;
}

export type FindingStatus = "new" | "confirmed" | "fixed" | "wontfix" | "invalid";
export const FINDING_STATUSES: readonly FindingStatus[] = [
  "new",
  "confirmed",
  "fixed",
  "wontfix",
  "invalid",
];

/** A finding's area is the diverging op's; defined with the trace types. */
export { type Area, AREAS } from "../trace/types.ts";

/** What kind of disagreement it is; defined with the backend contract. */
export { FINDING_KINDS, type FindingKind } from "../backend.ts";

/**
 * One finding, stored as `corpus/findings/<id>.json`. Traces are stored in their JSON
 * form (hex strings), exactly as `formatTrace` writes them, so a finding file is also
 * readable by `deno task run`.
 */
export interface Finding {
  format: typeof FINDING_FORMAT | typeof FINDING_FORMAT_V2;
  /** 16 hex digits: the hash of the signature; also the file name. */
  id: string;
  /** Semantic signature, e.g. `mmu/access: core=value, permitted={mmio}`. */
  signature: string;
  area: Area;
  kind: FindingKind;
  title: string;
  status: FindingStatus;
  /** A human triage note (set from the dashboard). */
  note?: string;
  /**
   * ISO 8601 timestamps. `lastSeen`, `hits`, `seeds` and `history` change on every run:
   * the store keeps their changes in the untracked state file `corpus/state/<id>.json`
   * and merges it in when it reads the finding (the values in this file are the base).
   */
  firstSeen: string;
  lastSeen: string;
  hits: number;
  /** Seeds (decimal strings) of the campaigns that found it, at most 20 kept. */
  seeds: string[];
  /**
   * The sightings recorded since the finding's file was written (the newest
   * {@linkcode MAX_HISTORY}); the first sighting is `firstSeen` and `seeds[0]`.
   */
  history?: HitRecord[];
  /** Ids (16 hex digits) this finding had under earlier identity rules. */
  aliases?: string[];
  /** The name of the known KVM deviation that explains it (`src/core/deviations.ts`). */
  deviation?: string;
  /** A record of the kvm host it was found on (a plain object, at most 64 KiB as JSON). */
  host?: Record<string, unknown>;
  /** The injected bug the campaign ran with, if any. */
  inject?: string;
  /** The full trace (JSON form) that first showed it. */
  trace: unknown;
  /** The minimized trace (JSON form). */
  minimized: unknown;
  divergence: {
    /** Index of the diverging op in the minimized trace. */
    opIndex: number;
    backend: BackendName;
    /** Observed outcome (JSON form). */
    observed: unknown;
    /** Permitted outcomes (JSON form: `{outcome, dontCare?, why}`). */
    permitted: unknown[];
    /** For `invariant` findings: the broken invariant. */
    invariant?: string;
  };
  /** `git rev-parse HEAD` of the harness that found it, or "unknown". */
  harness: string;
}

/**
 * What changes on every run of a finding, stored as `corpus/state/<id>.json` (not
 * tracked by git) beside the tracked `corpus/findings/<id>.json`. A reader merges the
 * two: `hits` adds to the finding file's, `lastSeen` is the later of the two, `seeds`
 * follow the finding file's (the newest 20 kept), `history` is this file's.
 */
export interface FindingState {
  format: typeof STATE_FORMAT;
  id: string;
  /** Hits on top of the finding file's `hits`. */
  hits: number;
  lastSeen: string;
  /** Seeds not already in the finding file's `seeds`, the newest 20. */
  seeds: string[];
  history: HitRecord[];
}

/** One campaign, stored as `corpus/runs/<time>-<seed>.json`. */
export interface RunRecord {
  format: typeof RUN_FORMAT;
  /** ISO 8601 start time. */
  time: string;
  seed: string;
  seconds: number;
  runs: number;
  ops: number;
  opsPerSec: number;
  workers: number;
  backend: BackendName;
  inject?: string;
  /** Number of distinct core coverage events reached. */
  coverage: number;
  /** The kvm host record (`src/kvm/host.ts`) of a campaign on the kvm backend. */
  host?: Record<string, unknown>;
  /** Runs per known deviation (`src/core/deviations.ts`). */
  knownDeviations?: Record<string, number>;
  findings: { id: string; signature: string; new: boolean }[];
}
