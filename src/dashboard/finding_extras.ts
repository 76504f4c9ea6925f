/**
 * @module
 * The optional fields of a finding that the finding page shows when present: the hit
 * history (`history: {time, seed, hits}[]`, which the store merges from an untracked
 * state file), the known deviation it is (`deviation`), the host record of a kvm
 * finding (`host`, with a `summary`), and other names it is known by (`aliases`).
 *
 * They are read leniently and bounded here, whether or not the store's `Finding` type
 * declares them yet: a malformed entry is shown with what is wrong, never dropped
 * silently and never a crash; long lists show their newest or first entries only.
 */
import type { Finding } from "../corpus/types.ts";
import { clipLine } from "./format.ts";

/** The history rows shown (the newest); the page says how many more there are. */
export const MAX_HISTORY_ROWS = 100;
/** The aliases and host fields shown. */
export const MAX_LIST_ITEMS = 50;
/** The longest alias, seed or host value shown (characters). */
export const MAX_ITEM_CHARS = 300;

/** What a known deviation is, as the lead's `KNOWN_DEVIATIONS` table will say. */
export interface DeviationInfo {
  /** What goes wrong, in KVM's terms. */
  title: string;
  /** The KVM code path. */
  path?: string;
  /** What the architecture says instead. */
  architecture?: string;
  /** What the correction changes. */
  correction?: string;
}

/** Looks up a known deviation by name (the hook of `AppOptions.describeDeviation`). */
export type DescribeDeviation = (name: string) => DeviationInfo | undefined;

/** One row of the hit history. */
export interface HistoryRow {
  time: string;
  seed: string;
  hits: number | null;
  /** Set when the entry is malformed: what is wrong. */
  error?: string;
}

export interface HistoryView {
  /** The newest entries first, at most {@linkcode MAX_HISTORY_ROWS}. */
  rows: HistoryRow[];
  /** Entries in the file. */
  total: number;
  /** Distinct seeds over all entries. */
  seeds: number;
  /** Hits over all well-formed entries. */
  hits: number;
  /** Set when `history` is present but not an array. */
  error?: string;
}

export interface HostView {
  summary: string | null;
  /** Every other field as `[name, text]`, at most {@linkcode MAX_LIST_ITEMS}. */
  details: [string, string][];
  /** Fields in the record besides `summary`. */
  total: number;
  /** Set when `host` is present but not an object. */
  error?: string;
}

/** The fields of a finding this module reads, typed as unknown. */
type Extras = { history?: unknown; deviation?: unknown; host?: unknown; aliases?: unknown };

function extras(f: Finding): Extras {
  return f as unknown as Extras;
}

/** The hit history, or `null` when the finding has none. */
export function historyOf(f: Finding): HistoryView | null {
  const h = extras(f).history;
  if (h === undefined) return null;
  if (!Array.isArray(h)) {
    return { rows: [], total: 0, seeds: 0, hits: 0, error: "the history is not a list" };
  }
  const seeds = new Set<string>();
  let hits = 0;
  for (const e of h) {
    const r = e as { seed?: unknown; hits?: unknown } | null;
    if (typeof r?.seed === "string") seeds.add(r.seed);
    if (typeof r?.hits === "number" && Number.isFinite(r.hits)) hits += r.hits;
  }
  const rows: HistoryRow[] = [];
  for (let i = h.length - 1; i >= 0 && rows.length < MAX_HISTORY_ROWS; i--) {
    rows.push(historyRow(h[i], i));
  }
  return { rows, total: h.length, seeds: seeds.size, hits };
}

function historyRow(e: unknown, i: number): HistoryRow {
  if (typeof e !== "object" || e === null || Array.isArray(e)) {
    return { time: "", seed: "", hits: null, error: `entry ${i} is not an object` };
  }
  const r = e as { time?: unknown; seed?: unknown; hits?: unknown };
  const problems: string[] = [];
  const time = typeof r.time === "string" && !Number.isNaN(Date.parse(r.time))
    ? r.time
    : (problems.push("time is not an ISO 8601 time"), "");
  const seed = typeof r.seed === "string"
    ? clipLine(r.seed, MAX_ITEM_CHARS)
    : (problems.push("seed is not a string"), "");
  const hits = typeof r.hits === "number" && Number.isSafeInteger(r.hits) && r.hits >= 0
    ? r.hits
    : (problems.push("hits is not a non-negative integer"), null);
  const row: HistoryRow = { time, seed, hits };
  if (problems.length > 0) row.error = `entry ${i}: ${problems.join(", ")}`;
  return row;
}

/** The known deviation's name, or `null`; a non-string is shown as its JSON. */
export function deviationOf(f: Finding): string | null {
  const d = extras(f).deviation;
  if (d === undefined || d === null) return null;
  return clipLine(typeof d === "string" ? d : JSON.stringify(d) ?? String(d), MAX_ITEM_CHARS);
}

/** Other names of the finding (ids or signatures it absorbed), or `null`. */
export function aliasesOf(f: Finding): { items: string[]; total: number } | null {
  const a = extras(f).aliases;
  if (a === undefined) return null;
  const list = Array.isArray(a) ? a : [a];
  return {
    items: list.slice(0, MAX_LIST_ITEMS).map((x) =>
      clipLine(typeof x === "string" ? x : JSON.stringify(x) ?? String(x), MAX_ITEM_CHARS)
    ),
    total: list.length,
  };
}

/** The host record of a kvm finding, or `null`. */
export function hostOf(f: Finding): HostView | null {
  const h = extras(f).host;
  if (h === undefined) return null;
  if (typeof h !== "object" || h === null || Array.isArray(h)) {
    return { summary: null, details: [], total: 0, error: "the host record is not an object" };
  }
  const record = h as Record<string, unknown>;
  const summary = typeof record.summary === "string"
    ? clipLine(record.summary, 4 * MAX_ITEM_CHARS)
    : null;
  const keys = Object.keys(record).filter((k) => k !== "summary");
  const details = keys.slice(0, MAX_LIST_ITEMS).map((k): [string, string] => {
    const v = record[k];
    const text = typeof v === "string" ? v : JSON.stringify(v) ?? String(v);
    return [clipLine(k, MAX_ITEM_CHARS), clipLine(text, MAX_ITEM_CHARS)];
  });
  return { summary, details, total: keys.length };
}
