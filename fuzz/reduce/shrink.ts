/**
 * @module
 * Shrinking on choices with fast-check: a trace is shrunk by shrinking the decisions
 * behind it (fewer steps, simpler decisions) with fast-check's own array and integer
 * shrinkers, keeping the first candidate that still fails, as `fc.assert` does. Every
 * candidate is a valid trace ({@linkcode interpret}), so shrinking never leaves the
 * space of meaningful traces. The op-level minimizer (`minimize.ts`) runs after it.
 */
import { choicesArbitrary, type TraceChoices } from "../model/choices.ts";

/** How much shrinking may cost. */
export interface ShrinkBudget {
  /** Predicate calls at most (default 2000). */
  maxRuns?: number;
  /** `performance.now()` deadline. */
  deadline?: number;
}

/** A shrunk choice sequence and how many predicate calls it took. */
export interface ShrinkResult {
  choices: TraceChoices;
  runs: number;
}

/**
 * Shrinks `choices` while `fails` holds: first the shortest failing prefix of steps,
 * then fast-check's shrinker to a local minimum (or until the budget runs out).
 */
export function shrinkChoices(
  choices: TraceChoices,
  fails: (c: TraceChoices) => boolean,
  budget: ShrinkBudget = {},
): ShrinkResult {
  const maxRuns = budget.maxRuns ?? 2000;
  const deadline = budget.deadline ?? Infinity;
  let runs = 0;
  const out = () => runs >= maxRuns || performance.now() > deadline;
  const test = (c: TraceChoices) => {
    runs++;
    return fails(c);
  };
  // Cut everything after the step that diverges: the shortest failing prefix.
  let best = choices;
  let lo = 0;
  let hi = choices.steps.length;
  while (lo < hi && !out()) {
    const mid = (lo + hi) >> 1;
    const prefix = { prologue: choices.prologue, steps: choices.steps.slice(0, mid) };
    if (test(prefix)) {
      best = prefix;
      hi = mid;
    } else lo = mid + 1;
  }
  const arb = choicesArbitrary();
  let context: unknown = undefined;
  let stream = arb.shrink(best, context);
  outer: while (!out()) {
    for (const candidate of stream) {
      if (out()) break outer;
      if (test(candidate.value)) {
        best = candidate.value;
        context = candidate.context;
        stream = arb.shrink(best, context);
        continue outer;
      }
    }
    break;
  }
  return { choices: best, runs };
}
