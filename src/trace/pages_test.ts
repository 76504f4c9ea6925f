/**
 * @module
 * Page sets against the bitmaps they replace: on random small sets every operation,
 * every written form and the oracle's match agree with the `bigint` bitmap semantics the
 * trace format had before page sets (bit i = page i; a match is
 * `((permitted ^ observed) & ~dontCare) === 0n`).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { matchesPermitted } from "./outcome.ts";
import {
  formatPageList,
  hasPage,
  minusPages,
  pageCount,
  pageRunsFromBigint,
  pageRunsFromHex,
  pageRunsOf,
  pageRunsProblem,
  pageRunsToBigint,
  pagesOf,
  parsePageList,
  samePagesOutside,
  unionPages,
  xorPages,
} from "./pages.ts";
import { outcomeFromJson, outcomeToJson, permittedFromJson, permittedToJson } from "./json.ts";
import { formatOutcome, parseOutcome } from "./text.ts";

/** Small bitmaps: dense, sparse, empty, up to 300 pages. */
const arbBits = fc.oneof(
  fc.bigInt({ min: 0n, max: (1n << 300n) - 1n }),
  fc.array(fc.nat(299), { maxLength: 6 }).map((ps) =>
    ps.reduce((b, p) => b | (1n << BigInt(p)), 0n)
  ),
  fc.constant(0n),
);

Deno.test("pages: runs of a bitmap are canonical and mean its bits", () => {
  fc.assert(
    fc.property(arbBits, (bits) => {
      const runs = pageRunsFromBigint(bits);
      assert.equal(pageRunsProblem(runs), undefined);
      assert.equal(pageRunsToBigint(runs), bits);
      assert.deepEqual(pageRunsFromHex(`0x${bits.toString(16)}`), runs);
      const set = [...pagesOf(runs)];
      assert.equal(pageCount(runs), set.length);
      assert.deepEqual(pageRunsOf([...set].reverse().concat(set)), runs);
      for (let p = 0; p < 300; p++) {
        assert.equal(hasPage(runs, p), ((bits >> BigInt(p)) & 1n) === 1n);
      }
    }),
    { numRuns: 500 },
  );
});

Deno.test("pages: union, difference and xor are the bitmaps' or, and-not and xor", () => {
  fc.assert(
    fc.property(arbBits, arbBits, (a, b) => {
      const ra = pageRunsFromBigint(a), rb = pageRunsFromBigint(b);
      for (
        const [got, want] of [[unionPages(ra, rb), a | b], [minusPages(ra, rb), a & ~b], [
          xorPages(ra, rb),
          a ^ b,
        ]] as const
      ) {
        assert.equal(pageRunsProblem(got), undefined);
        assert.deepEqual(got, pageRunsFromBigint(want));
      }
    }),
    { numRuns: 500 },
  );
});

Deno.test("pages: the oracle's match on bitmaps and young is the old masked compare", () => {
  fc.assert(
    fc.property(arbBits, arbBits, arbBits, fc.boolean(), (p, o, dc, young) => {
      // Observed values near the permitted one, so that matches happen too.
      const observed = (p & ~dc) | (o & dc) ^ (o & 1n);
      const old = ((p ^ observed) & ~dc) === 0n;
      const runs = { p: pageRunsFromBigint(p), o: pageRunsFromBigint(observed) };
      const dcPages = pageRunsFromBigint(dc);
      assert.equal(samePagesOutside(runs.p, runs.o, dcPages), old);
      const permitted = young
        ? { outcome: { young: runs.p }, dontCarePages: dcPages, why: "" }
        : { outcome: { bitmap: runs.p }, dontCarePages: dcPages, why: "" };
      const seen = young ? { young: runs.o } : { bitmap: runs.o };
      assert.equal(matchesPermitted(permitted, seen), old);
      // Through JSON (as findings store them) the judgement stays the same.
      const stored = permittedFromJson(JSON.parse(JSON.stringify(permittedToJson(permitted))));
      const back = outcomeFromJson(JSON.parse(JSON.stringify(outcomeToJson(seen))));
      assert.equal(matchesPermitted(stored, back), old);
    }),
    { numRuns: 1000 },
  );
});

Deno.test("pages: an observed set that is not canonical matches nothing", () => {
  const permitted = { outcome: { bitmap: [[0, 3]] as const }, why: "" };
  assert.equal(matchesPermitted(permitted, { bitmap: [[0, 3]] }), true);
  assert.equal(matchesPermitted(permitted, { bitmap: [[0, 1], [2, 3]] }), false);
  assert.equal(matchesPermitted(permitted, { bitmap: [[2, 3], [0, 1]] }), false);
  assert.equal(matchesPermitted(permitted, { bitmap: [[0, 3], [3, 3]] }), false);
  assert.equal(matchesPermitted(permitted, { young: [[0, 3]] }), false);
});

Deno.test("pages: page lists read back what they write, in text and JSON", () => {
  fc.assert(
    fc.property(arbBits, fc.nat(2 ** 40 - 400), (bits, base) => {
      // The same shape anywhere in a slot of up to 2^40 pages.
      const runs = pageRunsFromBigint(bits).map(([f, l]) => [f + base, l + base] as const);
      const list = formatPageList(runs);
      assert.deepEqual(parsePageList(list), runs);
      assert.deepEqual(parseOutcome(formatOutcome({ bitmap: runs })), { bitmap: runs });
      assert.deepEqual(outcomeFromJson(outcomeToJson({ young: runs })), { young: runs });
      // The text is as long as the runs, whatever the pages' values.
      assert.ok(list.length <= runs.length * 28);
    }),
    { numRuns: 500 },
  );
});

Deno.test("pages: a page list merges adjacent items and refuses disorder", () => {
  assert.deepEqual(parsePageList(""), []);
  assert.deepEqual(parsePageList("1,2,3-5,7"), [[1, 5], [7, 7]]);
  assert.deepEqual(parsePageList("0-1099511627775"), [[0, 1099511627775]]);
  assert.deepEqual(parsePageList("3,2"), { problem: 'item "2" is not above the item before it' });
  assert.deepEqual(parsePageList("1-3,3"), { problem: 'item "3" is not above the item before it' });
  assert.deepEqual(parsePageList("01"), {
    problem: 'item "01" is not a page or a range first-last',
  });
  assert.deepEqual(parsePageList(" 1"), {
    problem: 'item " 1" is not a page or a range first-last',
  });
});
