/**
 * @module
 * The dashboard's limits on what it reads and renders (issue 13 item 7), so that one
 * hostile or huge finding file cannot exhaust the stack, the heap or the event loop:
 * a cap on a finding file's size, a cap on how deeply its JSON nests, and the folding
 * of long op lists into a head, the ops around the diverging op and a tail, with the
 * rest reachable page by page.
 */

/**
 * The largest finding file the dashboard reads (bytes): the CLI's limit too
 * (`MAX_INPUT_BYTES`, `fuzz/commands/usage.ts`). 100,000 ops take 1.4 to 7 MB of JSON; a larger
 * file is refused with a message that points to `deno task replay`.
 */
export const MAX_FINDING_BYTES = 16 * 1024 * 1024;

export { MAX_JSON_DEPTH, tooDeepAt } from "../corpus/depth.ts";

/** Ops per page of `/findings/:id/ops`. */
export const OPS_PAGE = 500;

/** How a long op list folds: shown when it has more than `threshold` ops. */
export interface FoldOptions {
  /** Lists up to this many ops are shown whole. */
  threshold: number;
  /** Ops shown from the start. */
  head: number;
  /** Ops shown on each side of the marked (diverging) op. */
  around: number;
  /** Ops shown from the end. */
  tail: number;
}

export const DEFAULT_FOLD: FoldOptions = { threshold: 120, head: 30, around: 10, tail: 10 };

/** A run of consecutive op indices, `from` inclusive, `to` exclusive. */
export interface Span {
  from: number;
  to: number;
}

/**
 * The spans of a list of `total` ops to show: all of them when the list is short,
 * else the head, the ops around `mark` and the tail, merged where they touch. A gap of
 * fewer than 3 ops between two spans is shown rather than folded.
 */
export function foldSpans(
  total: number,
  mark: number | undefined,
  options: FoldOptions = DEFAULT_FOLD,
): Span[] {
  if (total <= options.threshold) return total === 0 ? [] : [{ from: 0, to: total }];
  const spans: Span[] = [{ from: 0, to: Math.min(options.head, total) }];
  if (mark !== undefined && Number.isSafeInteger(mark) && mark >= 0 && mark < total) {
    spans.push({
      from: Math.max(0, mark - options.around),
      to: Math.min(total, mark + options.around + 1),
    });
  }
  spans.push({ from: Math.max(0, total - options.tail), to: total });
  spans.sort((a, b) => a.from - b.from);
  const merged: Span[] = [];
  for (const s of spans) {
    const last = merged[merged.length - 1];
    if (last !== undefined && s.from - last.to < 3) last.to = Math.max(last.to, s.to);
    else merged.push({ ...s });
  }
  return merged;
}
