/**
 * @module
 * Placement of trace hvas in a VM's hva window (hva.ts): pure bookkeeping, no /dev/kvm.
 */
import assert from "node:assert/strict";
import { HvaMap } from "./hva.ts";

const GIB = 1n << 30n;
/** A window of 16 GiB whose legacy identity placement starts at 4 GiB. */
const map = () => new HvaMap(16n * GIB, 4n * GIB);

Deno.test("hva map: hvas in the legacy window keep their identity placement", () => {
  const m = map();
  assert.equal(m.place(0x1_0000_0000n, 0x400000n), 0n);
  assert.equal(m.place(0x1_0100_0000n, 0x1000n), 0x100_0000n);
  assert.equal(m.place(7n * GIB + 0x5000n, 0x1000n), 3n * GIB + 0x5000n);
});

Deno.test("hva map: hva 0 and other hvas outside the legacy window are placed, keeping offsets", () => {
  const m = map();
  const a = m.place(0n, 0x400000n);
  assert.equal(typeof a, "bigint");
  // A high chunk (the legacy chunks stay free for later slots) with a quarter of the
  // window above it for slots that extend it.
  assert.equal(a, 11n * GIB);
  // The same hva again (another slot aliasing it) lands at the same place.
  assert.equal(m.place(0n, 0x1000n), a);
  assert.equal(m.place(0x2000n, 0x1000n), (a as bigint) + 0x2000n);
  assert.equal(m.offsetOf(0x3000n), (a as bigint) + 0x3000n);
  // Far away (100 TiB): its own chunk; alignment modulo 1 GiB kept.
  const far = m.place(100n * 1024n * GIB + 0x20_0000n, 0x20_0000n);
  assert.equal(far, 10n * GIB + 0x20_0000n);
  // A legacy hva still gets its identity chunk.
  assert.equal(m.place(0x1_0000_0000n, 0x1000n), 0n);
});

Deno.test("hva map: a slot over two regions stays contiguous with what is placed", () => {
  const m = map();
  const a = m.place(GIB - 0x1000n, 0x2000n) as bigint; // regions 0 and 1, a new run
  assert.equal(a, 11n * GIB - 0x1000n);
  assert.equal(m.offsetOf(GIB), a + 0x1000n);
  // Extends region 1's neighbour 2 next to it.
  assert.equal(m.place(GIB + 0x1000n, GIB), a + 0x2000n);
  assert.equal(m.offsetOf(2n * GIB), a + 0x1000n + GIB);
});

Deno.test("hva map: a slot that cannot stay contiguous is refused with the reason", () => {
  const m = map();
  m.place(0n, 0x1000n); // region 0 at chunk 11
  m.place(20n * GIB, 0x1000n); // region 20 at chunk 10
  // Regions 0 and 1: chunk 12 is free.
  assert.equal(m.whyNot(GIB - 0x1000n, 0x2000n), null);
  // Regions 19 and 20: 20 sits at 10, so 19 needs 9, which is free.
  assert.equal(m.whyNot(20n * GIB - 0x1000n, 0x2000n), null);
  // Regions 20 and 21: 21 needs chunk 11, which region 0 holds.
  assert.match(m.whyNot(21n * GIB - 0x1000n, 0x2000n)!, /taken by other regions/);
  assert.match(String(m.place(21n * GIB - 0x1000n, 0x2000n)), /taken by other regions/);
  // Region 1 on its own goes to chunk 9: a slot over regions 0 and 1 is no longer
  // contiguous.
  assert.equal(m.place(GIB, 0x1000n), 9n * GIB);
  assert.match(m.whyNot(GIB - 0x1000n, 0x2000n)!, /placed apart/);
  // More regions than the window has.
  assert.match(m.whyNot(0n, 20n * GIB + 1n)!, /more than the 16 of the hva window/);
  // Regions 19-22 at chunks 8-11: nine regions from 19 would need chunks 8-16.
  const top = new HvaMap(16n * GIB, 4n * GIB);
  assert.equal(top.place(19n * GIB, 4n * GIB), 8n * GIB);
  assert.equal(top.whyNot(19n * GIB, 8n * GIB), null);
  assert.match(top.whyNot(19n * GIB, 9n * GIB)!, /no room next to the regions/);
  // Region 0 and 20 apart: one slot over 21 regions does not fit the 16 GiB window.
  assert.match(m.whyNot(0n, 21n * GIB)!, /more than the 16 of the hva window/);
  const full = new HvaMap(2n * GIB, 4n * GIB);
  full.place(0n, 1n);
  full.place(50n * GIB, 1n);
  assert.match(full.whyNot(90n * GIB, 1n)!, /no 1 free GiB left/);
  assert.equal(full.regions, 2);
});

Deno.test("hva map: runs for a discard cover placed regions only, merged where adjacent", () => {
  const m = map();
  const a = m.place(GIB - 0x2000n, 0x4000n) as bigint; // regions 0 and 1
  assert.deepEqual(m.runs(GIB - 0x2000n, 0x4000n), [[a, 0x4000n]]);
  // Regions 2-5 hold nothing (never placed): only the placed part is listed.
  assert.deepEqual(m.runs(GIB - 0x1000n, 5n * GIB), [[a + 0x1000n, GIB + 0x1000n]]);
  assert.deepEqual(m.runs(40n * GIB, 0x1000n), []);
  m.clear();
  assert.equal(m.regions, 0);
  assert.equal(m.offsetOf(GIB), null);
});
