/**
 * @module
 * The findings list's view of a finding: the columns of the list page and of
 * `/api/findings`, small enough to keep 10,000 of them in memory.
 */
import type { BackendName } from "../backend.ts";
import type { Area, Finding, FindingKind, FindingStatus } from "../corpus/types.ts";
import { isFindingId } from "../corpus/store.ts";
import { clipLine } from "./format.ts";

/** Longest title or signature kept for the list (characters); the page has the rest. */
export const MAX_SUMMARY_TEXT = 300;

/** One row of the findings list. */
export interface FindingSummary {
  id: string;
  area: Area;
  kind: FindingKind;
  status: FindingStatus;
  /** The backend that diverged (`divergence.backend`): core or kvm. */
  backend: BackendName;
  title: string;
  signature: string;
  firstSeen: string;
  lastSeen: string;
  hits: number;
  /** Number of ops of the minimized trace. */
  minimizedOps: number;
  note?: string;
  /** Ids it had under earlier identity rules (at most 50), for redirects from them. */
  aliases?: string[];
}

/** The list row of a (validated) finding. */
export function summarize(f: Finding): FindingSummary {
  const ops = (f.minimized as { ops: unknown[] }).ops;
  const s: FindingSummary = {
    id: f.id,
    area: f.area,
    kind: f.kind,
    status: f.status,
    backend: f.divergence.backend,
    title: clipLine(f.title, MAX_SUMMARY_TEXT),
    signature: clipLine(f.signature, MAX_SUMMARY_TEXT),
    firstSeen: f.firstSeen,
    lastSeen: f.lastSeen,
    hits: f.hits,
    minimizedOps: ops.length,
  };
  if (f.note !== undefined) s.note = f.note;
  const aliases = (f as { aliases?: unknown }).aliases;
  if (Array.isArray(aliases)) {
    const ids = aliases.filter((a): a is string => typeof a === "string" && isFindingId(a));
    if (ids.length > 0) s.aliases = ids.slice(0, 50);
  }
  return s;
}

/**
 * Whether a title already shows its signature (today's titles are the signature and the
 * op), so that the list prints it once.
 */
export function titleShowsSignature(title: string, signature: string): boolean {
  return signature !== "" && title.includes(signature);
}
