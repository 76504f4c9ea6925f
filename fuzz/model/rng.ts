/**
 * @module
 * The fuzzer's random numbers: a small, fast, portable PRNG (sfc32) seeded from a
 * campaign seed and a run index, so that run `r` of seed `s` is the same trace on every
 * machine and for every worker count (fuzz/README.md). Only 32-bit integer
 * arithmetic (`Math.imul`, `>>> 0`) is used: the sequence does not depend on floating
 * point or on the JavaScript engine.
 */

/** The campaign seed: a non-negative integer below 2^53, as typed on the command line. */
export type Seed = number;

/** murmur3's 32-bit finalizer: a bijective avalanche mix of one word. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A PRNG with 128 bits of state (Chris Doty-Humphrey's sfc32, public domain): passes
 * PractRand to 2^42 bytes, and is a handful of 32-bit operations per draw.
 */
export class Sfc32 {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** Seeds from a campaign seed, a stream (run index) and a salt (what it is for). */
  constructor(seed: Seed, stream: number, salt = 0) {
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 0x1_0000_0000) >>> 0;
    this.#a = fmix32(lo ^ 0x9e3779b9);
    this.#b = fmix32(hi ^ fmix32(stream >>> 0) ^ 0x243f6a88);
    this.#c = fmix32(Math.floor(stream / 0x1_0000_0000) ^ fmix32(salt ^ 0xb7e15162));
    this.#d = 1;
    // Discard the first outputs so that close seeds diverge at once.
    for (let i = 0; i < 12; i++) this.next();
  }

  /** The next 32-bit unsigned value. */
  next(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }
}
