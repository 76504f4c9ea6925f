import assert from "node:assert/strict";
import { LineChart, niceTicks, shortNumber, shortTime } from "./chart.tsx";

Deno.test("chart: ticks are round steps from zero that cover the maximum", () => {
  assert.deepEqual(niceTicks(10), [0, 2, 4, 6, 8, 10]);
  assert.deepEqual(niceTicks(273_000), [0, 100_000, 200_000, 300_000]);
  assert.deepEqual(niceTicks(0), [0, 1]);
  assert.deepEqual(niceTicks(0.7), [0, 0.2, 0.4, 0.6, 0.8]);
  assert.deepEqual(niceTicks(1, 5, true), [0, 1]);
  assert.deepEqual(niceTicks(3, 5, true), [0, 1, 2, 3]);
  for (const max of [1, 3, 7, 99, 1234, 5e6]) {
    const t = niceTicks(max);
    assert.ok(t[t.length - 1]! >= max, `${max}: ${t}`);
    assert.ok(t.length <= 8, `${max}: ${t}`);
  }
});

Deno.test("chart: labels are short", () => {
  assert.equal(shortNumber(950), "950");
  assert.equal(shortNumber(1200), "1.2k");
  assert.equal(shortNumber(250_000), "250k");
  assert.equal(shortNumber(3_400_000), "3.4M");
  assert.equal(shortTime(Date.UTC(2026, 10, 21, 14, 5)), "11-21 14:05");
});

Deno.test("chart: points land inside the plot, higher values higher up", async () => {
  const svg = await (
    <LineChart
      title="T"
      yLabel="ops/s"
      points={[{ x: 0, y: 10 }, { x: 3_600_000, y: 40 }, { x: 7_200_000, y: 20 }]}
    />
  ).toString();
  const cys: [number, number][] = [...svg.matchAll(/<circle cx="([\d.]+)" cy="([\d.]+)"/g)]
    .map((m) => [Number(m[1]), Number(m[2])]);
  assert.equal(cys.length, 3);
  const [a, b, c] = cys as [[number, number], [number, number], [number, number]];
  assert.ok(a[0] < b[0] && b[0] < c[0], "x grows with time");
  assert.ok(b[1] < c[1] && c[1] < a[1], "y grows upward");
  for (const [x, y] of cys) assert.ok(x >= 64 && x <= 520 && y >= 28 && y <= 196, `${x},${y}`);
  assert.match(svg, />ops\/s</);
  assert.match(svg, /<polyline/);
});
