import assert from "node:assert/strict";
import { DEFAULT_FOLD, foldSpans, MAX_JSON_DEPTH, tooDeepAt } from "./bounds.ts";
import { clip, formatBytes, formatFixed, formatInt, formatSeconds } from "./format.ts";

Deno.test("bounds: a short trace is shown whole, a long one as head, divergence and tail", () => {
  assert.deepEqual(foldSpans(0, undefined), []);
  assert.deepEqual(foldSpans(DEFAULT_FOLD.threshold, 3), [{ from: 0, to: DEFAULT_FOLD.threshold }]);
  assert.deepEqual(foldSpans(100_000, 50_000), [
    { from: 0, to: 30 },
    { from: 49_990, to: 50_011 },
    { from: 99_990, to: 100_000 },
  ]);
  // The divergence near the end merges with the tail; near the start, with the head.
  assert.deepEqual(foldSpans(1000, 995), [{ from: 0, to: 30 }, { from: 985, to: 1000 }]);
  assert.deepEqual(foldSpans(1000, 25), [{ from: 0, to: 36 }, { from: 990, to: 1000 }]);
  // A gap of 1 or 2 ops is shown, not folded.
  assert.deepEqual(foldSpans(1000, 42), [{ from: 0, to: 53 }, { from: 990, to: 1000 }]);
  // A mark outside the trace is ignored.
  assert.deepEqual(foldSpans(1000, 5000), [{ from: 0, to: 30 }, { from: 990, to: 1000 }]);
  const shown = foldSpans(100_000, 0).reduce((n, s) => n + s.to - s.from, 0);
  assert.ok(shown <= DEFAULT_FOLD.head + 2 * DEFAULT_FOLD.around + 1 + DEFAULT_FOLD.tail);
});

Deno.test("bounds: the depth check names the too-deep field and never recurses", () => {
  const nest = (depth: number): unknown => {
    let v: unknown = 1;
    for (let i = 0; i < depth; i++) v = [v];
    return v;
  };
  assert.equal(tooDeepAt({ a: { b: [1, { c: 2 }] } }), null);
  // The finding itself is level 1, `divergence` level 2.
  assert.equal(
    tooDeepAt({ divergence: { observed: nest(MAX_JSON_DEPTH - 2) } }),
    null,
  );
  assert.equal(
    tooDeepAt({ divergence: { observed: nest(MAX_JSON_DEPTH - 1) } }),
    "divergence.observed",
  );
  // 1,000,000 levels: a recursive walk would overflow the stack.
  const deep = JSON.parse("[".repeat(1_000_000) + "]".repeat(1_000_000));
  assert.equal(tooDeepAt({ trace: { ops: [{ op: "pmis" }, deep] } }), "trace.ops");
  assert.equal(tooDeepAt(deep), "[0][0]");
  assert.equal(tooDeepAt(nest(3), 2), "[0][0]");
  assert.equal(tooDeepAt(nest(2), 1), "[0]");
  assert.equal(tooDeepAt([], 0), "(top level)");
});

Deno.test("format: numbers get separators and fixed decimals, text is clipped safely", () => {
  assert.equal(formatInt(1234567), "1,234,567");
  assert.equal(formatInt(0), "0");
  assert.equal(formatInt(-1234.6), "-1,235");
  assert.equal(formatInt(999), "999");
  assert.equal(formatInt(1e21), "1e+21");
  assert.equal(formatFixed(-0.004), "-0.00");
  assert.equal(formatFixed(1234567.891, 1), "1,234,567.9");
  assert.equal(formatFixed(0.17439878400000086), "0.17");
  assert.equal(formatFixed(1234.5), "1,234.50");
  assert.equal(formatSeconds(60), "60.00 s");
  assert.equal(formatBytes(1_821_299), "1.8 MB");
  assert.equal(formatBytes(512), "512 B");
  assert.deepEqual(clip("abc", 5), { text: "abc", cut: 0 });
  assert.deepEqual(clip("abcdef", 4), { text: "abcd", cut: 2 });
  // Never half a surrogate pair.
  assert.deepEqual(clip("ab😀cd", 3), { text: "ab", cut: 4 });
});
