/**
 * @module
 * Choice sources: where a generator's decisions come from. Every decision is one call
 * `int(bound)` returning an integer in [0, bound), where 0 is always the simplest
 * choice. A trace is therefore fully described by its sequence of choices, like
 * Hypothesis's choice sequences:
 * - {@linkcode RandomSource} draws them from the PRNG (the campaign's fast path) and can
 *   record them;
 * - {@linkcode ReplaySource} plays back a recorded sequence, reading past its end as
 *   zeros, so that fast-check can shrink a trace by shrinking its choices (fewer steps,
 *   smaller numbers) and every shrunk sequence still generates a valid, meaningful trace.
 */
import { Sfc32 } from "./rng.ts";

/** A source of decisions. */
export interface Source {
  /** An integer in [0, bound); `bound` is an integer in [1, 2^32]. */
  int(bound: number): number;
}

/** Decisions drawn from sfc32; optionally recorded into `record`. */
export class RandomSource implements Source {
  readonly #rng: Sfc32;
  /** When set, every decision is appended here. */
  record: number[] | null = null;

  constructor(rng: Sfc32) {
    this.#rng = rng;
  }

  int(bound: number): number {
    // Multiply-shift maps 32 random bits onto [0, bound) without division; the bias is
    // below 2^-32 * bound, irrelevant for fuzzing and identical on every machine.
    const r = bound <= 1 ? 0 : Math.floor((this.#rng.next() * bound) / 0x1_0000_0000);
    if (this.record !== null) this.record.push(r);
    return r;
  }
}

/** Decisions played back from a recorded sequence; zeros past its end. */
export class ReplaySource implements Source {
  #choices: readonly number[];
  #i = 0;

  constructor(choices: readonly number[]) {
    this.#choices = choices;
  }

  /** Starts over on another sequence (avoids an allocation per step). */
  reset(choices: readonly number[]): void {
    this.#choices = choices;
    this.#i = 0;
  }

  int(bound: number): number {
    const c = this.#i < this.#choices.length ? this.#choices[this.#i]! : 0;
    this.#i++;
    return bound <= 1 ? 0 : c % bound;
  }
}
