import assert from "node:assert/strict";
import { HostMemory } from "./memory.ts";

Deno.test("reference memory: little-endian reads and writes of 1, 2, 4 and 8 bytes", () => {
  const m = new HostMemory();
  const base = 0x100000000 + 0x7f8; // the last qword of a page, 8-aligned
  m.write(base, 8, 0x8877_6655_4433_2211n);
  // Byte i of the qword is 0x11 * (i + 1), whatever size reads it.
  assert.equal(m.read(base, 1), 0x11n);
  assert.equal(m.read(base + 7, 1), 0x88n);
  assert.equal(m.read(base + 1, 2), 0x3322n);
  assert.equal(m.read(base + 3, 4), 0x7766_5544n); // misaligned
  m.write(base + 2, 2, 0xbeefn);
  m.write(base + 5, 1, 0xaan);
  assert.equal(m.read(base, 8), 0x8877_aa55_beef_2211n);
  m.write(base + 4, 4, 0x1_2345_6789n); // wider than 4 bytes: only the low 4 land
  assert.equal(m.read(base, 8), 0x2345_6789_beef_2211n);
  m.write(base, 8, -1n); // 64-bit two's complement
  assert.equal(m.read(base, 8), 0xffff_ffff_ffff_ffffn);
  assert.equal(m.read(base + 8, 8), 0n, "the next page was never written");
});

Deno.test("reference memory: zero pages stay sparse and a discarded page reads zero", () => {
  const m = new HostMemory();
  m.write(0x5000, 8, 0n);
  assert.equal(m.hasPage(5), false);
  m.write(0x5010, 4, 7n);
  assert.equal(m.hasPage(5), true);
  assert.equal(m.isZeroQword(0x5010), false);
  assert.equal(m.isZeroQword(0x5018), true);
  m.discardPage(5);
  assert.equal(m.read(0x5010, 4), 0n);
  assert.equal(m.isZeroQword(0x5010), true);
});

const sorted = (xs: readonly bigint[]) => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

Deno.test("reference memory: stores that may have landed keep each possible whole value", () => {
  const m = new HostMemory();
  const q = 0x2008;
  m.write(q, 8, 0x2003n);
  // Store 1 may have landed here (the caller wrote it) or elsewhere.
  let before = m.possibleValues(q, 8);
  m.write(q, 8, 0x1011061n);
  m.storeMaybe(q, 8, 0x1011061n, true, before);
  assert.deepEqual(m.alternatives(q), [0x2003n]);
  // Store 2 may have landed here (not written by the caller): either of the two values
  // before it, or its own value.
  before = m.possibleValues(q, 8);
  m.storeMaybe(q, 8, 0x7000001n, false, before);
  assert.equal(m.read(q, 8), 0x1011061n);
  assert.deepEqual(sorted(m.alternatives(q)), [0x2003n, 0x7000001n]);
  // A partial definite store lands in every possible value; a whole one ends them.
  m.write(q + 4, 4, 0x8000_0000n);
  assert.deepEqual(
    sorted(m.alternatives(q)),
    [0x8000_0000_0000_2003n, 0x8000_0000_0700_0001n],
  );
  m.write(q, 8, 5n, true); // an A/D update of the value a walk used keeps them
  assert.equal(m.alternatives(q).length, 2);
  m.write(q, 8, 5n);
  assert.deepEqual(m.alternatives(q), []);
});
