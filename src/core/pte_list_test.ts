import assert from "node:assert/strict";
import { PTE_LIST_EXT, PteListPool } from "./pte_list.ts";

function contents(pool: PteListPool, head: number): number[] {
  const into = { buf: new Int32Array(1) };
  const n = pool.collect(head, into);
  return [...into.buf.subarray(0, n)].sort((a, b) => a - b);
}

Deno.test("core: a pte_list grows from a single entry to chains of 14-entry descs", () => {
  const pool = new PteListPool();
  let head = pool.add(0, 7);
  assert.equal(head & 1, 0, "one entry is stored inline");
  head = pool.add(head, 8);
  assert.equal(head & 1, 1, "two entries need a desc");
  for (let i = 0; i < 40; i++) head = pool.add(head, 100 + i);
  assert.equal(pool.length(head), 42);
  assert.ok(pool.isChain(head));
  assert.equal(pool.inUse, Math.ceil(42 / PTE_LIST_EXT));
  assert.deepEqual(contents(pool, head), [7, 8, ...Array.from({ length: 40 }, (_, i) => 100 + i)]);
});

Deno.test("core: pte_list removal keeps the tail descs full and frees empty heads", () => {
  const pool = new PteListPool();
  let head = 0;
  const all = Array.from({ length: 30 }, (_, i) => i * 3);
  for (const x of all) head = pool.add(head, x);
  const left = new Set(all);
  for (const x of [0, 87, 42, 3, 60, 15, 84, 81, 78, 75, 72, 69, 66, 63, 57, 54]) {
    head = pool.remove(head, x);
    left.delete(x);
    assert.deepEqual(contents(pool, head), [...left].sort((a, b) => a - b));
  }
  assert.throws(() => pool.remove(head, 1000), /BUG/);
  for (const x of [...left]) head = pool.remove(head, x);
  assert.equal(head, 0);
  assert.equal(pool.inUse, 0);
});
