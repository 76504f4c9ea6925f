/**
 * @module
 * Named bits for a finding's identity (docs/identity.md): #PF error-code bits, PTE
 * flags, and how two 64-bit values differ in words that do not depend on the values
 * (the PTE flags they differ in, a value cut or extended at a counter width, the
 * control bits set or clear). The façade is `identity.ts`.
 */

/** #PF error-code bits (SDM vol. 3A 4.7, Figure 4-12). */
const PFEC_BITS: readonly [number, string][] = [
  [1 << 0, "P"],
  [1 << 1, "W"],
  [1 << 2, "U"],
  [1 << 3, "RSVD"],
  [1 << 4, "I/D"],
  [1 << 5, "PK"],
  [1 << 6, "SS"],
  [1 << 15, "SGX"],
];

/** A #PF error code as named bits, "0" when none is set. */
export function pfecText(code: number): string {
  const names = PFEC_BITS.filter(([bit]) => (code & bit) !== 0).map(([, n]) => n);
  return names.length === 0 ? "0" : names.join("|");
}

/** PTE flag bits (SDM vol. 3A 4.5, Tables 4-14 to 4-20): the ones a value delta names. */
const PTE_BITS: readonly [bigint, string][] = [
  [1n << 0n, "P"],
  [1n << 1n, "R/W"],
  [1n << 2n, "U/S"],
  [1n << 3n, "PWT"],
  [1n << 4n, "PCD"],
  [1n << 5n, "A"],
  [1n << 6n, "D"],
  [1n << 7n, "PS"],
  [1n << 8n, "G"],
  [1n << 63n, "XD"],
];

const PTE_FLAGS = PTE_BITS.reduce((m, [b]) => m | b, 0n);

/** The positions of the set bits of `x`, as runs ("5", "32-47"). */
export function bitRuns(x: bigint): string {
  const bits: number[] = [];
  for (let i = 0; x !== 0n; i++, x >>= 1n) if ((x & 1n) !== 0n) bits.push(i);
  const runs: string[] = [];
  for (let i = 0; i < bits.length;) {
    let j = i;
    while (j + 1 < bits.length && bits[j + 1] === bits[j]! + 1) j++;
    runs.push(i === j ? `${bits[i]}` : `${bits[i]}-${bits[j]}`);
    i = j + 1;
  }
  return runs.join(",");
}

/**
 * How two 64-bit values differ, in words that do not depend on the values:
 * - `pte`: memory that may hold page-table entries: the PTE flags when only flag bits
 *   differ (`D clear`), else `other data`;
 * - `counter`: `truncated to N bits` / `sign-extended from bit N` when one is the other
 *   cut or extended at a counter width, else `higher` / `lower`;
 * - `bits`: a control register: which bit positions are set or clear against it.
 */
export function valueDelta(
  observed: bigint,
  expected: bigint,
  as: "pte" | "ad" | "counter" | "bits",
): string {
  const x = observed ^ expected;
  if (x === 0n) return "same";
  if (as === "ad") {
    // A load through a translation: only A/D differences (a walk that did not set them)
    // are named; any other difference is data of another page or another store.
    if ((x & ~0x60n) !== 0n) return "other data";
  }
  if (as === "pte" || as === "ad") {
    if ((x & ~PTE_FLAGS) !== 0n) return "other data";
    const flags = PTE_BITS.filter(([b]) => (x & b) !== 0n).map(([, n]) => n).join("|");
    return `${flags} ${(observed & x) === 0n ? "clear" : "set"}`;
  }
  if (as === "bits") {
    const set = observed & x, clear = expected & x;
    return [
      set !== 0n ? `bits ${bitRuns(set)} set` : "",
      clear !== 0n ? `bits ${bitRuns(clear)} clear` : "",
    ]
      .filter((t) => t !== "").join(", ");
  }
  for (const w of [32n, 40n, 44n, 48n]) {
    const mask = (1n << w) - 1n;
    const sign = 1n << (w - 1n);
    const ext = (v: bigint) => (v & sign) !== 0n ? (v | ~mask) & ((1n << 64n) - 1n) : v & mask;
    if (observed === (expected & mask)) return `truncated to ${w} bits`;
    if (expected === (observed & mask)) return `not truncated to ${w} bits`;
    if (observed === ext(expected)) return `sign-extended from bit ${w - 1n}`;
    if (expected === ext(observed)) return `not sign-extended from bit ${w - 1n}`;
  }
  return observed > expected ? "higher" : "lower";
}
