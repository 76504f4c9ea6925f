/**
 * @module
 * Outcome helpers: the kind of an outcome and whether an observed outcome lies inside
 * a permitted one. Used by the oracle's judgement and the diff runner.
 */
import { pageRunsProblem, samePagesOutside } from "./pages.ts";
import type { Outcome, OutcomeKind, PageRuns, Permitted } from "./types.ts";

/** The single key of an outcome. */
export function outcomeKind(outcome: Outcome): OutcomeKind {
  return Object.keys(outcome)[0] as OutcomeKind;
}

/** Whether two outcomes are the same, field by field. */
export function outcomesEqual(a: Outcome, b: Outcome): boolean {
  return matchesPermitted({ outcome: a, why: "" }, b);
}

/**
 * Whether `observed` is inside `permitted`: the same kind and fields, where the bits of
 * `permitted.dontCare` (for `value`) or the pages of `permitted.dontCarePages` (for
 * `bitmap` and `young`) may differ. An observed page set that is not canonical (a
 * backend's bug) matches nothing. Linear in the runs of the page sets.
 */
export function matchesPermitted(permitted: Permitted, observed: Outcome): boolean {
  const p = permitted.outcome;
  if ("value" in p) {
    const care = ~(permitted.dontCare ?? 0n);
    return "value" in observed && ((p.value ^ observed.value) & care) === 0n;
  }
  if ("bitmap" in p) {
    return "bitmap" in observed && pagesMatch(p.bitmap, observed.bitmap, permitted.dontCarePages);
  }
  if ("young" in p) {
    return "young" in observed && pagesMatch(p.young, observed.young, permitted.dontCarePages);
  }
  if ("errno" in p) return "errno" in observed && p.errno === observed.errno;
  if ("ok" in p) return "ok" in observed;
  if ("gp" in p) return "gp" in observed;
  if ("count" in p) return "count" in observed && p.count === observed.count;
  if ("crash" in p) return "crash" in observed && p.crash === observed.crash;
  if ("mmio" in p) {
    return "mmio" in observed && p.mmio.gpa === observed.mmio.gpa &&
      p.mmio.write === observed.mmio.write;
  }
  return "pf" in observed && p.pf.code === observed.pf.code && p.pf.cr2 === observed.pf.cr2;
}

/** The index of the first permitted entry `observed` matches, or -1. */
export function findMatch(permitted: readonly Permitted[], observed: Outcome): number {
  return permitted.findIndex((p) => matchesPermitted(p, observed));
}

function pagesMatch(expected: PageRuns, observed: PageRuns, dontCare: PageRuns = []): boolean {
  return pageRunsProblem(observed) === undefined && samePagesOutside(expected, observed, dontCare);
}
