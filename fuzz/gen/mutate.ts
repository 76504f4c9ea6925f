/**
 * @module
 * Mutation of kept traces (coverage guidance): insert, delete, splice and tweak on the
 * choice sequences behind them. Mutating choices, not ops, keeps every mutant a valid
 * and meaningful trace: a later step re-aims at whatever slots and tables exist.
 */
import type { TraceChoices } from "./generate.ts";
import type { Source } from "../model/source.ts";

/** Choices drawn for a brand-new step (longer than any step needs). */
const STEP_CHOICES = 24;
/** Traces stop growing here, so mutation cannot blow up run times. */
const MAX_STEPS = 80;

function randomStep(src: Source): number[] {
  const step: number[] = [];
  for (let i = 0; i < STEP_CHOICES; i++) step.push(src.int(0x1_0000_0000));
  return step;
}

/**
 * A mutant of `parent` (`other` is a second kept trace to splice with). Applies one to
 * four mutations drawn from `src`; the parent is not modified.
 */
export function mutateChoices(
  src: Source,
  parent: TraceChoices,
  other: TraceChoices,
): TraceChoices {
  const steps = parent.steps.map((s) => s.slice());
  let prologue = parent.prologue;
  const n = 1 + src.int(4);
  for (let m = 0; m < n; m++) {
    switch (src.int(6)) {
      case 0: // insert a new step
        if (steps.length < MAX_STEPS) steps.splice(src.int(steps.length + 1), 0, randomStep(src));
        break;
      case 1: // delete a run of steps
        if (steps.length > 1) steps.splice(src.int(steps.length), 1 + src.int(3));
        break;
      case 2: { // splice: our prefix, their suffix
        const cut = src.int(steps.length + 1);
        const from = src.int(other.steps.length + 1);
        const tail = other.steps.slice(from).map((s) => s.slice());
        steps.splice(cut, steps.length - cut, ...tail.slice(0, MAX_STEPS - cut));
        break;
      }
      case 3: { // tweak one decision
        if (steps.length === 0) break;
        const step = steps[src.int(steps.length)]!;
        const i = src.int(Math.max(step.length, 1));
        const old = step[i] ?? 0;
        const how = src.int(3);
        step[i] = how === 0 ? src.int(0x1_0000_0000) : how === 1 ? old + 1 : Math.max(old - 1, 0);
        break;
      }
      case 4: // append fresh steps
        for (let k = 1 + src.int(4); k > 0 && steps.length < MAX_STEPS; k--) {
          steps.push(randomStep(src));
        }
        break;
      default: // another config for the same steps
        prologue = parent.prologue.slice();
        if (prologue.length > 0) prologue[src.int(prologue.length)] = src.int(0x1_0000_0000);
    }
  }
  return { prologue, steps };
}
