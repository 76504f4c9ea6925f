import assert from "node:assert/strict";
import { MAX_OTHERS, QWORD_MASK, Uncertain, unknownSubsets } from "./uncertain.ts";

const sorted = (xs: readonly bigint[]) => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
const LOW_WORD = 0xffffn;

Deno.test("uncertain: a known value has one possible value and nothing to flip", () => {
  const u = Uncertain.known(0x2003n);
  assert.equal(u.isKnown, true);
  assert.deepEqual(u.possible(), [0x2003n]);
  assert.deepEqual(u.otherValues(0n), []);
  assert.equal(u.withUnknownBits(0n), u, "adding no bits changes nothing");
});

Deno.test("uncertain: unknown bits alone give every subset flipped, ignored bits left out", () => {
  const u = Uncertain.of(0x2003n, 0x1000n | 0x20n);
  assert.equal(u.isKnown, false);
  assert.deepEqual(u.possible(), [0x2003n], "nothing listed");
  assert.deepEqual(sorted(u.otherValues(0n)), [0x2023n, 0x3003n, 0x3023n]);
  // A walk ignores A (bit 5): only bit 12 is left to flip.
  assert.deepEqual(u.otherValues(0x20n), [0x3003n]);
  assert.deepEqual(u.otherValues(0x1020n), [], "every unknown bit ignored");
  assert.equal(u.withKnownBits(0x1000n).unknown, 0x20n);
  assert.equal(u.withKnownBits(0x1020n).isKnown, true);
});

Deno.test("uncertain: unknown bits give every subset to flip, by bit or else by byte", () => {
  assert.deepEqual(unknownSubsets(0x100001000n), [0x1000n, 0x1_0000_0000n, 0x1_0000_1000n]);
  assert.equal(unknownSubsets(0x3fn).length, 63);
  // Seven bits in two bytes: subsets of the bytes.
  assert.deepEqual(unknownSubsets(0x3f01n), [0x01n, 0x3f00n, 0x3f01n]);
});

Deno.test("uncertain: a store that certainly landed takes its bytes in every listed value", () => {
  const u = Uncertain.known(0x2003n).mayStore(QWORD_MASK, 0x7000001n, false);
  assert.deepEqual(u.others, [0x7000001n]);
  const partial = u.withUnknownBits(0xff00_0000_0000n).stored(0xffff_0000_0000n, 0x1234_0000_0000n);
  assert.equal(partial.value, 0x1234_0000_2003n);
  assert.deepEqual(partial.others, [0x1234_0700_0001n]);
  assert.equal(partial.unknown, u.unknown, "the stored bytes are known again");
  const whole = partial.stored(QWORD_MASK, 5n);
  assert.equal(whole.isKnown, true, "a whole qword stored is known exactly");
  assert.equal(whole.value, 5n);
});

Deno.test("uncertain: a store that may have landed keeps both values, the older first", () => {
  const before = Uncertain.known(0x2003n);
  // Followed: the store did not land here.
  const missed = before.mayStore(LOW_WORD, 0x1061n, false);
  assert.equal(missed.value, 0x2003n);
  assert.deepEqual(missed.others, [0x1061n]);
  assert.equal(missed.unknown, 0x2003n ^ 0x1061n, "every bit the store would change");
  // Followed: it landed.
  const landed = before.mayStore(LOW_WORD, 0x1061n, true);
  assert.equal(landed.value, 0x1061n);
  assert.deepEqual(landed.others, [0x2003n]);
  assert.equal(landed.unknown, missed.unknown);
  // A second store over a listed value: each value before it, then each after it.
  const twice = landed.mayStore(0xffn, 0x77n, false);
  assert.deepEqual(twice.possible(), [0x1061n, 0x2003n, 0x1077n, 0x2077n]);
  assert.deepEqual(twice.otherValues(0n), [0x2003n, 0x1077n, 0x2077n], "listed, not subsets");
});

Deno.test("uncertain: a join unites unknown bits and the bits in which the values differ", () => {
  const a = Uncertain.of(0x10n, 0x1n);
  const b = Uncertain.of(0x30n, 0x100n);
  const j = Uncertain.join(a, b, "a");
  assert.equal(j.value, 0x10n);
  assert.equal(j.unknown, 0x121n);
  assert.deepEqual(j.others, [0x30n]);
  assert.equal(Uncertain.join(a, b, "b").value, 0x30n);
  assert.deepEqual(Uncertain.join(a, a, "a").others, [], "the same value is not listed twice");
});

/** A qword that may hold `n + 1` values: `1` followed, and 2..n+1 listed. */
function listing(n: number): Uncertain {
  let u = Uncertain.known(1n);
  for (let v = 2n; v <= BigInt(n + 1); v++) u = u.mayStore(QWORD_MASK, v, false);
  return u;
}

Deno.test("uncertain: at most MAX_OTHERS values are listed; one more overflows", () => {
  const full = listing(MAX_OTHERS);
  assert.equal(full.others.length, MAX_OTHERS);
  assert.equal(full.overflowed, false);
  const over = full.mayStore(QWORD_MASK, 0x100n, false);
  assert.equal(over.overflowed, true);
  assert.deepEqual(over.others, [], "an overflowed qword lists nothing");
  assert.equal(over.value, 1n);
  assert.equal(over.unknown, full.unknown | 0x101n, "the unknown bits still say what it may hold");
  // With nothing listed, a reader flips subsets of the unknown bits.
  assert.deepEqual(over.otherValues(0n), unknownSubsets(over.unknown).map((f) => 1n ^ f));
});

Deno.test("uncertain: an overflow stays until a whole store makes the followed value known", () => {
  const over = listing(MAX_OTHERS + 1);
  assert.equal(over.overflowed, true);
  // Stores that do not replace the followed value whole keep it overflowed.
  assert.equal(over.mayStore(QWORD_MASK, 0x200n, false).overflowed, true);
  assert.equal(over.mayStore(0xffn, 0x44n, true).overflowed, true);
  assert.equal(over.stored(0xffn, 0x44n).overflowed, true);
  assert.equal(over.withValue(0x21n).overflowed, true, "an A/D update keeps it");
  assert.equal(over.narrowed(() => false, 0n), over, "nothing listed: nothing to narrow");
  // A whole store that certainly landed ends it.
  assert.equal(over.stored(QWORD_MASK, 7n).isKnown, true);
  // A whole store the oracle follows but that may not have landed starts a new list from
  // the value before it: the overflowed values are kept only as unknown bits.
  const restart = over.mayStore(QWORD_MASK, 7n, true);
  assert.equal(restart.overflowed, false);
  assert.deepEqual(restart.others, [1n]);
  assert.equal(restart.unknown, over.unknown | 6n);
});

Deno.test("uncertain: narrowing keeps the accepted values; none left makes the rest known", () => {
  const u = listing(3).withUnknownBits(0x60n); // 1 followed; 2, 3, 4 listed
  const two = u.narrowed((v) => v !== 3n, 0x60n);
  assert.deepEqual(two.others, [2n, 4n]);
  assert.equal(two.unknown, u.unknown, "values are left: nothing is known yet");
  const none = u.narrowed(() => false, 0x60n);
  assert.deepEqual(none.others, []);
  assert.equal(none.unknown, 0x60n, "only the bits still unknown stay");
  assert.equal(u.withValue(0x21n).value, 0x21n);
  assert.deepEqual(u.withValue(0x21n).others, u.others, "an A/D update keeps the others");
});
