/**
 * @module
 * Recording findings in the corpus, on top of the corpus store (`src/corpus/store.ts`,
 * which owns atomic writes and per-finding locks): a new signature becomes a new file
 * named by its id; the same signature found again updates `hits`, `lastSeen` and
 * `seeds` of that one finding under its lock, so no hit is lost and no second file
 * appears (`recordSighting`).
 */
import type { BackendName } from "../../src/backend.ts";
import { recordSighting } from "../../src/corpus/store.ts";
import { type Finding, FINDING_FORMAT_V2, type FindingKind } from "../../src/corpus/types.ts";
import type { Minimized, RunFinding } from "./engine.ts";
import { opArea } from "./identity.ts";

/** What a campaign knows when it records a finding. */
export interface FindingContext {
  seed: string;
  backend: BackendName;
  inject?: string;
  harness: string;
  /** ISO 8601. */
  now: string;
  /** The kvm host record (`src/kvm/host.ts`) when the backend is kvm. */
  host?: Record<string, unknown>;
}

/** Builds the Finding file of a newly found signature. */
export function makeFinding(f: RunFinding, ctx: FindingContext, hits: number): Finding {
  const min: Minimized = f.minimized ?? {
    trace: f.trace,
    ops: (f.trace as { ops: unknown[] }).ops.length,
    divergence: f.divergence,
    title: f.title,
    seconds: 0,
  };
  const d = min.divergence;
  const kind: FindingKind = d.kind;
  const opKind =
    ((min.trace as { ops: { op: string }[] }).ops[d.opIndex]?.op ?? "access") as Parameters<
      typeof opArea
    >[0];
  return {
    format: FINDING_FORMAT_V2,
    id: f.id,
    signature: f.signature,
    area: opArea(opKind),
    kind,
    title: min.title,
    status: "new",
    firstSeen: ctx.now,
    lastSeen: ctx.now,
    hits,
    seeds: [ctx.seed],
    ...(ctx.inject === undefined ? {} : { inject: ctx.inject }),
    ...(f.deviation === undefined ? {} : { deviation: f.deviation }),
    ...(ctx.host === undefined ? {} : { host: ctx.host }),
    trace: f.trace,
    minimized: min.trace,
    divergence: {
      opIndex: d.opIndex,
      backend: ctx.backend,
      observed: d.observed,
      permitted: d.permitted,
      ...(d.invariant === undefined ? {} : { invariant: d.invariant }),
    },
    harness: ctx.harness,
  };
}

/** Adds `hits` sightings to an existing finding; false when it does not exist. */
export async function addHits(
  dir: string,
  id: string,
  hits: number,
  ctx: FindingContext,
): Promise<boolean> {
  return await recordSighting(dir, id, { hits, time: ctx.now, seed: ctx.seed }) !== null;
}

/**
 * Records a sighting: a hit on the existing file, or a new file, in one step under the
 * store's lock (two processes finding the same new signature create it once).
 *
 * @returns true when the file is new.
 */
export async function recordFinding(
  dir: string,
  f: RunFinding,
  hits: number,
  ctx: FindingContext,
): Promise<boolean> {
  const r = await recordSighting(
    dir,
    f.id,
    { hits, time: ctx.now, seed: ctx.seed },
    () => makeFinding(f, ctx, hits),
  );
  return r === "new";
}
