import assert from "node:assert/strict";
import { SparseMemory } from "./memory.ts";

Deno.test("core: sparse memory reads back little-endian bytes of any size and alignment", () => {
  const m = new SparseMemory(2);
  m.write(0x1000, 8, 0x55667788, 0x11223344);
  m.read(0x1000, 8);
  assert.deepEqual([...m.word], [0x55667788, 0x11223344]);
  m.read(0x1003, 4);
  assert.deepEqual([...m.word], [0x22334455 >>> 0, 0]);
  m.write(0x1006, 4, 0xaabbccdd, 0);
  m.read(0x1008, 2);
  assert.deepEqual([...m.word], [0xaabb, 0]);
  m.read(0x1004, 4);
  assert.deepEqual([...m.word], [0xccdd3344, 0]);
});

Deno.test("core: sparse memory stores only touched words and zeroes a discarded range", () => {
  const m = new SparseMemory(2);
  for (let i = 0; i < 1000; i++) m.write(i * 2 ** 30, 8, i + 1, 0);
  assert.equal(m.size, 1000);
  m.read(999 * 2 ** 30, 8);
  assert.equal(m.word[0], 1000);
  m.zeroRange(0, 2 ** 40); // a 1 TiB discard scans the table, not the range
  m.read(999 * 2 ** 30, 8);
  assert.equal(m.word[0], 0);
  m.write(0x5000, 8, 0, 0); // zero words are not stored
  assert.equal(m.size, 1000);
});
