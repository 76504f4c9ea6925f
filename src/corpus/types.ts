/**
 * @module
 * The corpus file formats (DESIGN.md section 7): findings and campaign run records.
 * Types only; the store that reads and writes them atomically is `store.ts`.
 */
import type { BackendName } from "../backend.ts";

/** The format tags of corpus files. */
export const FINDING_FORMAT = "shadowfuzz.finding/1";
export const RUN_FORMAT = "shadowfuzz.run/1";

export type FindingStatus = "new" | "confirmed" | "fixed" | "wontfix" | "invalid";
export const FINDING_STATUSES: readonly FindingStatus[] = [
  "new",
  "confirmed",
  "fixed",
  "wontfix",
  "invalid",
];

/** The area of a finding: which part of KVM the diverging op exercises. */
export type Area = "mmu" | "memslot" | "pmu";
/** Every area, in the order the CLI and the dashboard list them. */
export const AREAS: readonly Area[] = ["mmu", "memslot", "pmu"];

/** What kind of disagreement it is. */
export type FindingKind = "divergence" | "invariant" | "crash";

/**
 * One finding, stored as `corpus/findings/<id>.json`. Traces are stored in their JSON
 * form (hex strings), exactly as `formatTrace` writes them, so a finding file is also
 * readable by `deno task run`.
 */
export interface Finding {
  format: typeof FINDING_FORMAT;
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
  /** ISO 8601 timestamps. */
  firstSeen: string;
  lastSeen: string;
  hits: number;
  /** Seeds (decimal strings) of the campaigns that found it, at most 20 kept. */
  seeds: string[];
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
  findings: { id: string; signature: string; new: boolean }[];
}
