import assert from "node:assert/strict";
import { bytesOver, HostMemory } from "./memory.ts";

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
  // Store 1 may have landed here (the followed value takes it) or elsewhere.
  m.mayStore(q, 8, 0x1011061n, true);
  assert.equal(m.read(q, 8), 0x1011061n);
  assert.deepEqual(m.qword(q).others, [0x2003n]);
  // Store 2 may have landed here (the followed value does not take it): either of the two
  // values before it, or its own value.
  m.mayStore(q, 8, 0x7000001n, false);
  assert.equal(m.read(q, 8), 0x1011061n);
  assert.deepEqual(sorted(m.qword(q).others), [0x2003n, 0x7000001n]);
  // A partial definite store lands in every possible value; a whole one ends them.
  m.write(q + 4, 4, 0x8000_0000n);
  assert.deepEqual(
    sorted(m.qword(q).others),
    [0x8000_0000_0000_2003n, 0x8000_0000_0700_0001n],
  );
  m.setQword(q, m.qword(q).withValue(5n)); // an A/D update of the value a walk used keeps them
  assert.equal(m.read(q, 8), 5n);
  assert.equal(m.qword(q).others.length, 2);
  m.write(q, 8, 5n);
  assert.deepEqual(m.qword(q).others, []);
  assert.equal(m.qword(q).isKnown, true);
});

Deno.test("reference memory: a load reports the unknown bits of the bytes it reads", () => {
  const m = new HostMemory();
  const q = 0x3000;
  m.write(q, 8, 0x1122_3344_5566_7788n);
  m.setQword(q, m.qword(q).withUnknownBits(0x0f00_0000_0000_00f0n));
  m.setQword(q + 8, m.qword(q + 8).withUnknownBits(0x3n));
  assert.deepEqual([m.load(q, 8).value, m.load(q, 8).unknown], [
    0x1122_3344_5566_7788n,
    0x0f00_0000_0000_00f0n,
  ]);
  assert.equal(m.load(q + 1, 2).unknown, 0n);
  assert.equal(m.load(q + 4, 8).unknown, 0x3_0f00_0000n, "across two qwords");
  // An observed value pins the unknown bits and only them.
  m.resolve(q, 8, 0xffff_ffff_ffff_ffffn);
  assert.equal(m.read(q, 8), 0x1f22_3344_5566_77f8n);
  assert.equal(m.load(q, 8).unknown, 0n);
  assert.equal(m.load(q + 8, 1).unknown, 0x3n, "the next qword keeps its own");
  // A discarded page reads zero and known.
  m.discardPage(3);
  assert.equal(m.qword(q + 8).isKnown, true);
  assert.deepEqual(m.pagesIn(0, 16), []);
});

Deno.test("reference memory: bytesOver places a value's bytes where a read would see them", () => {
  assert.deepEqual(bytesOver(0x1004, 4, 0xaabb_ccddn, 0x1000, 8), {
    mask: 0xffff_ffff_0000_0000n,
    bits: 0xaabb_ccdd_0000_0000n,
  });
  assert.deepEqual(bytesOver(0x1000, 8, 0x1122_3344_5566_7788n, 0x1006, 4), {
    mask: 0xffffn,
    bits: 0x1122n,
  });
  assert.deepEqual(bytesOver(0x1000, 2, 0x1_2345n, 0x1000, 8), { mask: 0xffffn, bits: 0x2345n });
  assert.deepEqual(bytesOver(0x1000, 8, -1n, 0x1008, 8), { mask: 0n, bits: 0n });
});
