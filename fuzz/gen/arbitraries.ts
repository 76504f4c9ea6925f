/**
 * @module
 * The fuzzer's generators as fast-check arbitraries, for property tests and for
 * anyone driving them with `fc.assert`: each is a choice sequence mapped through the
 * generator, so fast-check's shrinking of the choices shrinks the ops meaningfully.
 * - {@linkcode arbStep}: the ops of one step kind (e.g. "rewrite", "filter") after the
 *   prologue, with the constraints object of the generator;
 * - {@linkcode arbFuzzTrace}: a whole trace.
 */
import fc from "fast-check";
import type { Op, Trace } from "../../src/trace/types.ts";
import { type GenConstraints, interpret, STEP_NAMES, type StepName } from "./generate.ts";
import { choicesArbitrary } from "../model/choices.ts";

const choice = fc.nat({ max: 0xffff_ffff });

/**
 * The ops one step of kind `name` appends to a trace after `setup` earlier random
 * steps (default 6), under `constraints`.
 */
export function arbStep(
  name: StepName,
  constraints: GenConstraints & { setup?: number } = {},
): fc.Arbitrary<Op[]> {
  if (!STEP_NAMES.includes(name)) throw new RangeError(`arbStep: unknown step "${name}"`);
  const setup = constraints.setup ?? 6;
  return fc.record({
    prologue: fc.array(choice, { minLength: 16, maxLength: 16 }),
    steps: fc.array(fc.array(choice, { maxLength: 24 }), { minLength: setup, maxLength: setup }),
    last: fc.array(choice, { maxLength: 24 }),
  }, { noNullPrototype: true }).map(({ prologue, steps, last }) => {
    const before = interpret({ prologue, steps }, constraints).ops.length;
    const trace = interpret({ prologue, steps: [...steps, last] }, {
      ...constraints,
      forceLast: name,
    });
    return trace.ops.slice(before);
  });
}

/** A whole generated trace. */
export function arbFuzzTrace(constraints: GenConstraints = {}): fc.Arbitrary<Trace> {
  return choicesArbitrary().map((c) => interpret(c, constraints));
}
