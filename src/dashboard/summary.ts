/**
 * @module
 * The findings list's view of a finding: the columns of the list page and of
 * `/api/findings`, small enough to keep 10,000 of them in memory.
 */
import type { Area, Finding, FindingKind, FindingStatus } from "../corpus/types.ts";

/** One row of the findings list. */
export interface FindingSummary {
  id: string;
  area: Area;
  kind: FindingKind;
  status: FindingStatus;
  title: string;
  signature: string;
  firstSeen: string;
  lastSeen: string;
  hits: number;
  /** Number of ops of the minimized trace. */
  minimizedOps: number;
  note?: string;
}

/** The list row of a (validated) finding. */
export function summarize(f: Finding): FindingSummary {
  const ops = (f.minimized as { ops: unknown[] }).ops;
  const s: FindingSummary = {
    id: f.id,
    area: f.area,
    kind: f.kind,
    status: f.status,
    title: f.title,
    signature: f.signature,
    firstSeen: f.firstSeen,
    lastSeen: f.lastSeen,
    hits: f.hits,
    minimizedOps: ops.length,
  };
  if (f.note !== undefined) s.note = f.note;
  return s;
}
