/**
 * @module
 * Sets of pages, as the `bitmap` (dirty log) and `young` (aging) outcomes and their
 * don't-care sets hold them: page i of a slot, or of an age range, is in the set where
 * KVM's bitmap would have bit i set.
 *
 * In memory a set is {@linkcode PageRuns}: sorted runs of consecutive pages, so it grows
 * with the pages a trace touched, never with the size of the slot (a one-page dirty log
 * of a 2^30-page slot is `[[1073741823, 1073741823]]`, not a 2^30-bit number). The
 * canonical form (sorted, disjoint, not adjacent) makes two equal sets deep-equal.
 *
 * Written forms:
 * - page lists: decimal pages and inclusive ranges joined by commas, `3,7-9`;
 * - hex bitmaps (bit i = page i, the format before page lists, still read), up to
 *   {@linkcode HEX_BITMAP_DIGITS} digits.
 *
 * Every operation here is linear in the number of runs (or of hex digits), whatever the
 * pages' values.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatPageList, pageRunsFromHex, parsePageList } from "./pages.ts";
 * assert.deepEqual(parsePageList("3,7-9"), [[3, 3], [7, 9]]);
 * assert.equal(formatPageList(pageRunsFromHex("0x388")!), "3,7-9");
 * ```
 */
import type { PageRuns } from "./types.ts";

/**
 * The largest page index: a slot holds fewer than 2^40 pages (`SLOT_PAGES_MAX` in
 * `_rules.ts`), an age range fewer still.
 */
export const PAGE_INDEX_MAX = 2 ** 40 - 1;
/** Hex bitmaps are read up to 262,144 digits (a million pages), as before page lists. */
export const HEX_BITMAP_DIGITS = 262_144;
/** The empty set. */
export const NO_PAGES: PageRuns = Object.freeze([]) as PageRuns;

/**
 * Why `runs` is not a canonical page set (a detail for "field ... <detail>"), or
 * `undefined`: each run a pair of integers 0 <= first <= last <= PAGE_INDEX_MAX, each run
 * starting after the page that follows the previous run's last.
 */
export function pageRunsProblem(runs: unknown): string | undefined {
  if (!Array.isArray(runs)) return "is not a list of page runs";
  let next = 0;
  for (let i = 0; i < runs.length; i++) {
    const run = runs[i];
    if (!Array.isArray(run) || run.length !== 2) return `run ${i} is not a [first, last] pair`;
    const [first, last] = run as unknown[];
    if (!Number.isInteger(first) || !Number.isInteger(last)) {
      return `run ${i} is not a pair of integers`;
    }
    const f = first as number, l = last as number;
    if (f < 0 || l > PAGE_INDEX_MAX || f > l) {
      return `run ${i} is out of range: must be 0 <= first <= last <= ${PAGE_INDEX_MAX}`;
    }
    if (i > 0 && f < next) {
      return `run ${i} is not sorted after the previous one (or touches it)`;
    }
    next = l + 2;
  }
  return undefined;
}

/** The number of pages in the set. */
export function pageCount(runs: PageRuns): number {
  let n = 0;
  for (const [first, last] of runs) n += last - first + 1;
  return n;
}

/** Whether page `page` is in the set (binary search). */
export function hasPage(runs: PageRuns, page: number): boolean {
  let lo = 0, hi = runs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [first, last] = runs[mid]!;
    if (page < first) hi = mid - 1;
    else if (page > last) lo = mid + 1;
    else return true;
  }
  return false;
}

/** Every page of the set, ascending (for small sets: tests and the old bitmap form). */
export function* pagesOf(runs: PageRuns): Generator<number> {
  for (const [first, last] of runs) for (let p = first; p <= last; p++) yield p;
}

/** The canonical set of any pages, in any order, repeats allowed. O(n log n). */
export function pageRunsOf(pages: Iterable<number>): PageRuns {
  const sorted = [...pages].sort((a, b) => a - b);
  const out: [number, number][] = [];
  for (const p of sorted) {
    const tail = out[out.length - 1];
    if (tail !== undefined && p <= tail[1] + 1) tail[1] = Math.max(tail[1], p);
    else out.push([p, p]);
  }
  return out;
}

/**
 * Combines two sets page by page: a page is in the result when `keep(inA, inB)` (never
 * for a page in neither). A sweep over the runs' boundaries, O(runs of a + runs of b).
 */
function combine(
  a: PageRuns,
  b: PageRuns,
  keep: (inA: boolean, inB: boolean) => boolean,
): PageRuns {
  // Boundary k of a set: even k, run k/2 starts there; odd k, its pages end just before.
  const at = (r: PageRuns, k: number): number =>
    k >= 2 * r.length ? Infinity : (k & 1) === 0 ? r[k >> 1]![0] : r[k >> 1]![1] + 1;
  const out: [number, number][] = [];
  let i = 0, j = 0, inA = false, inB = false, start = -1;
  for (;;) {
    const here = Math.min(at(a, i), at(b, j));
    if (here === Infinity) return out;
    while (at(a, i) === here) inA = (i++ & 1) === 0;
    while (at(b, j) === here) inB = (j++ & 1) === 0;
    const now = keep(inA, inB);
    if (now && start < 0) start = here;
    else if (!now && start >= 0) {
      out.push([start, here - 1]);
      start = -1;
    }
  }
}

/** Pages in `a` or `b`. */
export function unionPages(a: PageRuns, b: PageRuns): PageRuns {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  return combine(a, b, (x, y) => x || y);
}

/** Pages in `a` but not in `b`. */
export function minusPages(a: PageRuns, b: PageRuns): PageRuns {
  if (a.length === 0 || b.length === 0) return a;
  return combine(a, b, (x, y) => x && !y);
}

/** Pages in exactly one of `a` and `b`. */
export function xorPages(a: PageRuns, b: PageRuns): PageRuns {
  if (b.length === 0) return a;
  if (a.length === 0) return b;
  return combine(a, b, (x, y) => x !== y);
}

/** Whether the two sets hold the same pages. */
export function samePages(a: PageRuns, b: PageRuns): boolean {
  return xorPages(a, b).length === 0;
}

/**
 * Whether `observed` and `expected` differ only in pages of `dontCare` (a page there may
 * be in either set or both).
 */
export function samePagesOutside(
  expected: PageRuns,
  observed: PageRuns,
  dontCare: PageRuns,
): boolean {
  return minusPages(xorPages(expected, observed), dontCare).length === 0;
}

/** The page list of a set: `3,7-9`, the empty string for no page. */
export function formatPageList(runs: PageRuns): string {
  return runs.map(([first, last]) => first === last ? `${first}` : `${first}-${last}`).join(",");
}

const PAGE_LIST_ITEM = /^(0|[1-9][0-9]{0,12})(?:-(0|[1-9][0-9]{0,12}))?$/;

/**
 * Parses a page list (`3,7-9`; the empty string is no page): each item a decimal page or
 * an inclusive range `first-last`, items ascending and not overlapping (adjacent items
 * merge). Returns the set, or why the text is not one.
 */
export function parsePageList(text: string): PageRuns | { problem: string } {
  if (text === "") return NO_PAGES;
  const out: [number, number][] = [];
  const items = text.split(",");
  for (let i = 0; i < items.length; i++) {
    const m = PAGE_LIST_ITEM.exec(items[i]!);
    if (m === null) {
      return { problem: `item ${JSON.stringify(items[i])} is not a page or a range first-last` };
    }
    const first = Number(m[1]), last = m[2] === undefined ? first : Number(m[2]);
    if (last > PAGE_INDEX_MAX) {
      return { problem: `item ${JSON.stringify(items[i])} is beyond page ${PAGE_INDEX_MAX}` };
    }
    if (first > last) return { problem: `range ${JSON.stringify(items[i])} runs backwards` };
    const tail = out[out.length - 1];
    if (tail !== undefined && first <= tail[1]) {
      return { problem: `item ${JSON.stringify(items[i])} is not above the item before it` };
    }
    if (tail !== undefined && first === tail[1] + 1) tail[1] = last;
    else out.push([first, last]);
  }
  return out;
}

const HEX_BITMAP = new RegExp(`^0x[0-9a-f]{1,${HEX_BITMAP_DIGITS}}$`, "i");

/**
 * The set of a hex bitmap (`0x388`: pages 3 and 7-9), or `undefined` if `text` is not
 * `0x` and 1 to {@linkcode HEX_BITMAP_DIGITS} hex digits. Linear in the digits: no
 * `bigint` is made.
 */
export function pageRunsFromHex(text: string): PageRuns | undefined {
  return HEX_BITMAP.test(text) ? runsOfHexDigits(text.slice(2)) : undefined;
}

/** The set of a string of hex digits, most significant first. */
function runsOfHexDigits(digits: string): PageRuns {
  const out: [number, number][] = [];
  for (let d = 0; d < digits.length; d++) {
    const nibble = parseInt(digits[digits.length - 1 - d]!, 16);
    if (nibble === 0) continue;
    for (let b = 0; b < 4; b++) {
      if (((nibble >> b) & 1) === 0) continue;
      const page = 4 * d + b;
      const tail = out[out.length - 1];
      if (tail !== undefined && tail[1] + 1 === page) tail[1] = page;
      else out.push([page, page]);
    }
  }
  return out;
}

/**
 * The hex bitmap of a set (`0x0` when empty). Its length grows with the highest page:
 * writers use it only for sets below page 64 (see `json.ts`).
 */
export function pageRunsToHex(runs: PageRuns): string {
  return "0x" + pageRunsToBigint(runs).toString(16);
}

/** The set as a bitmap number (bit i = page i). For small sets: tests, hex output. */
export function pageRunsToBigint(runs: PageRuns): bigint {
  let out = 0n;
  for (const [first, last] of runs) {
    out |= ((1n << BigInt(last - first + 1)) - 1n) << BigInt(first);
  }
  return out;
}

/** The set of a bitmap number (bit i = page i; not negative). For small bitmaps: tests. */
export function pageRunsFromBigint(bitmap: bigint): PageRuns {
  if (bitmap < 0n) throw new RangeError(`Cannot read bitmap ${bitmap}: it is negative`);
  return runsOfHexDigits(bitmap.toString(16));
}
