import assert from "node:assert/strict";
import {
  LEVEL_SHIFT,
  levelShift,
  MAX_PHYS_ADDR_BITS,
  PAGE_OFFSET_MASK,
  PAGE_SHIFT,
  PAGE_SIZE,
  PT_ENTRIES,
  PT_INDEX_BITS,
  PTE_ADDR_MASK,
  PTE_ADDR_MASK_HI,
  PTE_ADDR_MASK_LO,
} from "./paging.ts";

Deno.test("x86 paging: a level-L leaf maps 4 KiB * 512^(L-1), its index starts at levelShift(L)", () => {
  assert.equal(2 ** PAGE_SHIFT, PAGE_SIZE);
  assert.equal(2 ** PT_INDEX_BITS, PT_ENTRIES);
  assert.equal(PAGE_OFFSET_MASK, PAGE_SIZE - 1);
  // SDM 4.5: 4 KiB, 2 MiB, 1 GiB pages; a PML4E covers 512 GiB.
  const bytes = [4096, 2 * 1024 ** 2, 1024 ** 3, 512 * 1024 ** 3];
  for (const [i, size] of bytes.entries()) {
    const level = i + 1;
    assert.equal(2 ** levelShift(level), size, `level ${level}`);
    assert.equal(LEVEL_SHIFT[level], levelShift(level));
  }
});

Deno.test("x86 paging: PTE_ADDR_MASK is bits 51:12, and its u32 halves are the same bits", () => {
  const bits51to12 = ((1n << BigInt(MAX_PHYS_ADDR_BITS)) - 1n) & ~BigInt(PAGE_OFFSET_MASK);
  assert.equal(PTE_ADDR_MASK, bits51to12);
  assert.equal(BigInt(PTE_ADDR_MASK_LO), PTE_ADDR_MASK & 0xffff_ffffn);
  assert.equal(BigInt(PTE_ADDR_MASK_HI), PTE_ADDR_MASK >> 32n);
});
