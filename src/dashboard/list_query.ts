/**
 * @module
 * The findings list's query: filter by area, status and backend, search signature and title,
 * sort by any column, page. Parsed leniently from URL parameters (a bad value falls
 * back to its default, so a hand-edited URL still shows a list) and shared by the list
 * page and `/api/findings`, which therefore return the same rows.
 */
import { type BackendName, JUDGED_BACKEND_NAMES } from "../backend.ts";
import type { Area, FindingStatus } from "../corpus/types.ts";
import { AREAS, FINDING_STATUSES } from "../corpus/types.ts";
import type { FindingSummary } from "./summary.ts";

export { AREAS };

/** The backends a finding can diverge on, as in `?backend=`. */
export const LIST_BACKENDS: readonly BackendName[] = JUDGED_BACKEND_NAMES;

/** The sortable columns, as they appear in `?sort=`. */
export const SORT_KEYS = [
  "area",
  "status",
  "backend",
  "title",
  "signature",
  "firstSeen",
  "lastSeen",
  "hits",
  "ops",
] as const;
export type SortKey = typeof SORT_KEYS[number];

/** Rows per page unless `?per=` says otherwise, and the most it may say. */
export const DEFAULT_PER_PAGE = 50;
export const MAX_PER_PAGE = 500;
/** Longest search text kept: longer input is cut, not refused. */
export const MAX_SEARCH_LENGTH = 200;

export interface ListQuery {
  area: Area | null;
  status: FindingStatus | null;
  backend: BackendName | null;
  /** Case-insensitive substring of the signature or title (or the id); "" for all. */
  q: string;
  sort: SortKey;
  dir: "asc" | "desc";
  /** 1-based. */
  page: number;
  per: number;
}

export const DEFAULT_QUERY: ListQuery = {
  area: null,
  status: null,
  backend: null,
  q: "",
  sort: "lastSeen",
  dir: "desc",
  page: 1,
  per: DEFAULT_PER_PAGE,
};

/** One page of the filtered, sorted list. */
export interface ListPage {
  rows: FindingSummary[];
  /** Rows that pass the filters, over all pages. */
  total: number;
  page: number;
  pages: number;
}

/** Reads a query from URL parameters; unknown or bad values take their defaults. */
export function parseListQuery(params: URLSearchParams): ListQuery {
  const q: ListQuery = { ...DEFAULT_QUERY };
  const area = params.get("area");
  if (area !== null && (AREAS as readonly string[]).includes(area)) q.area = area as Area;
  const status = params.get("status");
  if (status !== null && (FINDING_STATUSES as readonly string[]).includes(status)) {
    q.status = status as FindingStatus;
  }
  const backend = params.get("backend");
  if (backend !== null && (LIST_BACKENDS as readonly string[]).includes(backend)) {
    q.backend = backend as BackendName;
  }
  q.q = (params.get("q") ?? "").trim().slice(0, MAX_SEARCH_LENGTH);
  const sort = params.get("sort");
  if (sort !== null && (SORT_KEYS as readonly string[]).includes(sort)) q.sort = sort as SortKey;
  const dir = params.get("dir");
  if (dir === "asc" || dir === "desc") q.dir = dir;
  else if (sort !== null) q.dir = defaultDir(q.sort);
  q.page = boundedInt(params.get("page"), 1, Number.MAX_SAFE_INTEGER, 1);
  q.per = boundedInt(params.get("per"), 1, MAX_PER_PAGE, DEFAULT_PER_PAGE);
  return q;
}

/** Numbers and times read best largest-first; text reads best A to Z. */
export function defaultDir(sort: SortKey): "asc" | "desc" {
  return sort === "hits" || sort === "ops" || sort === "firstSeen" || sort === "lastSeen"
    ? "desc"
    : "asc";
}

/** Filters, sorts (ties broken by id, so pages are stable) and cuts one page. */
export function applyListQuery(all: readonly FindingSummary[], query: ListQuery): ListPage {
  const needle = query.q.toLowerCase();
  const rows = all.filter((s) =>
    (query.area === null || s.area === query.area) &&
    (query.status === null || s.status === query.status) &&
    (query.backend === null || s.backend === query.backend) &&
    (needle === "" || s.signature.toLowerCase().includes(needle) ||
      s.title.toLowerCase().includes(needle) || s.id.includes(needle))
  );
  const key = sortValue(query.sort);
  const sign = query.dir === "asc" ? 1 : -1;
  // Keys are computed once per row, not once per comparison (10,000 rows).
  const keyed = rows.map((s) => ({ k: key(s), s }));
  keyed.sort((a, b) => {
    const c = a.k < b.k ? -1 : a.k > b.k ? 1 : 0;
    return c !== 0 ? sign * c : a.s.id < b.s.id ? -1 : a.s.id > b.s.id ? 1 : 0;
  });
  const pages = Math.max(1, Math.ceil(keyed.length / query.per));
  const page = Math.min(query.page, pages);
  const start = (page - 1) * query.per;
  const slice = keyed.slice(start, start + query.per).map((x) => x.s);
  return { rows: slice, total: keyed.length, page, pages };
}

/**
 * The URL query string of `query` with `changes` applied, omitting defaults, for the
 * list page's links (sort headers, pager).
 */
export function queryString(query: ListQuery, changes: Partial<ListQuery> = {}): string {
  const q = { ...query, ...changes };
  const p = new URLSearchParams();
  if (q.area !== null) p.set("area", q.area);
  if (q.status !== null) p.set("status", q.status);
  if (q.backend !== null) p.set("backend", q.backend);
  if (q.q !== "") p.set("q", q.q);
  if (q.sort !== DEFAULT_QUERY.sort || q.dir !== DEFAULT_QUERY.dir) {
    p.set("sort", q.sort);
    p.set("dir", q.dir);
  }
  if (q.page !== 1) p.set("page", String(q.page));
  if (q.per !== DEFAULT_PER_PAGE) p.set("per", String(q.per));
  const s = p.toString();
  return s === "" ? "" : `?${s}`;
}

function sortValue(sort: SortKey): (s: FindingSummary) => string | number {
  switch (sort) {
    case "area":
      return (s) => s.area;
    case "status":
      // Triage order, not alphabetical: new work first.
      return (s) => FINDING_STATUSES.indexOf(s.status);
    case "backend":
      return (s) => s.backend;
    case "title":
      return (s) => s.title.toLowerCase();
    case "signature":
      return (s) => s.signature;
    case "firstSeen":
      return (s) => Date.parse(s.firstSeen);
    case "lastSeen":
      return (s) => Date.parse(s.lastSeen);
    case "hits":
      return (s) => s.hits;
    case "ops":
      return (s) => s.minimizedOps;
  }
}

function boundedInt(text: string | null, min: number, max: number, fallback: number): number {
  if (text === null || !/^\d{1,16}$/.test(text)) return fallback;
  const n = Number(text);
  return n < min ? fallback : Math.min(n, max);
}
