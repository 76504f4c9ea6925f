/**
 * @module
 * Decision helpers over a {@linkcode Source}: weighted picks, chances, 64-bit values.
 * Option 0 of every pick is the simplest one, so a shrunk choice (0) means "simplest".
 */
import type { Source } from "../model/source.ts";

/** An element of `items` (index 0 is the simplest). */
export function pick<T>(src: Source, items: readonly T[]): T {
  return items[src.int(items.length)]!;
}

/**
 * An index into `weights`, drawn with those relative weights. A drawn 0 falls in the
 * first bucket, so shrinking a choice toward 0 moves toward option 0.
 */
export function weighted(src: Source, weights: readonly number[]): number {
  let total = 0;
  for (const w of weights) total += w;
  let r = src.int(total);
  for (let i = 0; i < weights.length; i++) {
    r -= weights[i]!;
    if (r < 0) return i;
  }
  return weights.length - 1;
}

/**
 * True with probability `percent`/100. A shrunk choice (0) gives `false`: the default
 * is always "do not add the complication".
 */
export function chance(src: Source, percent: number): boolean {
  return src.int(100) >= 100 - percent;
}

/** An integer in [min, max] (both at most 2^32 apart). */
export function between(src: Source, min: number, max: number): number {
  return min + src.int(max - min + 1);
}

/** A uniform 64-bit value. */
export function u64(src: Source): bigint {
  const hi = BigInt(src.int(0x1_0000_0000));
  const lo = BigInt(src.int(0x1_0000_0000));
  return (hi << 32n) | lo;
}

/** A value near a power of two: `2^bit + delta` with delta in [-8, 8], wrapped to 64 bits. */
export function nearPower(src: Source, bit: number): bigint {
  const delta = BigInt(between(src, 0, 16) - 8);
  return ((1n << BigInt(bit)) + delta) & 0xffff_ffff_ffff_ffffn;
}
