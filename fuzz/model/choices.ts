/**
 * @module
 * The decisions behind one trace ({@linkcode TraceChoices}): the program model every
 * stage shares. Generation interprets them (`gen/generate.ts`), the PRNG or a mutant
 * supplies them, and reduction shrinks them with fast-check ({@linkcode choicesArbitrary}).
 */
import fc from "fast-check";

/** The decisions behind one trace. */
export interface TraceChoices {
  /** Config and prologue decisions. */
  prologue: number[];
  /** One decision list per step. */
  steps: number[][];
}

/** The arbitrary whose shrinker is used (generation goes through the PRNG instead). */
export function choicesArbitrary(): fc.Arbitrary<TraceChoices> {
  const choice = fc.nat({ max: 0xffff_ffff });
  return fc.record({
    prologue: fc.array(choice, { maxLength: 4096 }),
    steps: fc.array(fc.array(choice, { maxLength: 4096 }), { maxLength: 4096 }),
  }, { noNullPrototype: true });
}
