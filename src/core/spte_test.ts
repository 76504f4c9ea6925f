import assert from "node:assert/strict";
import {
  encodeMmioSpte,
  encodeSpte,
  genmask32,
  isMmioSpte,
  isShadowPresent,
  MMIO_SPTE_FIELDS,
  MMIO_SPTE_GEN_BITS,
  MMIO_SPTE_GEN_HIGH_MASK,
  MMIO_SPTE_GEN_LOW_MASK,
  mmioGenLowBits,
  mmioSpteGen,
  mmioSpteGfn,
  out,
  SPTE_FIELDS,
  SPTE_MMU_PRESENT,
  SPTE_NX_HI,
  SPTE_P,
  SPTE_U,
  SPTE_W,
  sptePfn,
} from "./spte.ts";

function assertDisjoint(fields: readonly (readonly [string, number, number])[]) {
  for (let i = 0; i < fields.length; i++) {
    for (let j = i + 1; j < fields.length; j++) {
      const [a, alo, ahi] = fields[i]!, [b, blo, bhi] = fields[j]!;
      assert.equal((alo & blo) | (ahi & bhi), 0, `${a} overlaps ${b}`);
    }
  }
}

Deno.test("core: no two spte fields overlap", () => {
  assertDisjoint(SPTE_FIELDS);
  assertDisjoint(MMIO_SPTE_FIELDS);
});

Deno.test("core: the spte masks match the documented bit positions", () => {
  assert.equal(genmask32(31, 12), 0xfffff000);
  assert.equal(SPTE_MMU_PRESENT, 1 << 11);
  assert.equal(SPTE_NX_HI, 0x80000000);
  // MMIO generation: 8 bits at 10:3, 11 bits at 62:52 = 19 bits (v6.10).
  assert.equal(MMIO_SPTE_GEN_LOW_MASK, 0x7f8);
  assert.equal(MMIO_SPTE_GEN_HIGH_MASK, 0x7ff00000);
  assert.equal(MMIO_SPTE_GEN_BITS, 19);
});

Deno.test("core: a present spte round-trips pfn, rights and NX", () => {
  for (const pfn of [0, 1, 0xfffff, 0x100000, 0x7ffffffff, 2 ** 40 - 1]) {
    for (const nx of [false, true]) {
      encodeSpte(SPTE_P | SPTE_W | SPTE_U | SPTE_MMU_PRESENT, pfn, nx);
      const [lo, hi] = [out[0]!, out[1]!];
      assert.equal(sptePfn(lo, hi), pfn);
      assert.equal((hi & SPTE_NX_HI) !== 0, nx);
      assert.ok(isShadowPresent(lo));
      assert.ok(!isMmioSpte(lo, hi));
    }
  }
});

Deno.test("core: an MMIO spte round-trips gfn and every 19-bit generation bit", () => {
  for (const gfn of [0, 0x100, 0xfffff, 0x100000, 2 ** 39 - 1]) {
    for (let bit = 0; bit < 19; bit++) {
      const gen = 1 << bit;
      encodeMmioSpte(gfn, SPTE_W, gen);
      const [lo, hi] = [out[0]!, out[1]!];
      assert.ok(isMmioSpte(lo, hi));
      assert.ok(!isShadowPresent(lo));
      assert.equal(mmioSpteGen(lo, hi), gen);
      assert.equal(mmioSpteGfn(lo, hi), gfn);
      assert.equal(lo & (SPTE_W | SPTE_U), SPTE_W);
    }
  }
});

Deno.test("core: the 34c0f6f2695a shift aliases generations 2 and 258", () => {
  encodeMmioSpte(1, 0, 2, 8, 1);
  assert.equal(mmioSpteGen(out[0]!, out[1]!), 258);
  encodeMmioSpte(1, 0, 2);
  assert.equal(mmioSpteGen(out[0]!, out[1]!), 2);
});

Deno.test("core: at every mmioGenBits width, every generation round-trips", () => {
  for (let bits = 2; bits <= 19; bits++) {
    const low = mmioGenLowBits(bits);
    // KVM's own widths keep KVM's 8-bit low field; narrower ones split in half.
    assert.equal(low, bits >= 16 ? 8 : Math.floor(bits / 2), `width ${bits}`);
    const step = bits <= 12 ? 1 : 97;
    for (let gen = 0; gen < 2 ** bits; gen += step) {
      encodeMmioSpte(5, 0, gen, low);
      assert.equal(mmioSpteGen(out[0]!, out[1]!, low), gen, `width ${bits} gen ${gen}`);
    }
  }
});

Deno.test("core: in a 4-bit generation the 34c0f6f2695a shift aliases generations 2 and 6", () => {
  // Low field 2 bits: gen 2 = 0b0010 stores low 0b10 and, shifted by 1 instead of 2,
  // high 0b01, which reads back as 0b0110 = 6.
  encodeMmioSpte(1, 0, 2, 2, 1);
  assert.equal(mmioSpteGen(out[0]!, out[1]!, 2), 6);
  encodeMmioSpte(1, 0, 2, 2);
  assert.equal(mmioSpteGen(out[0]!, out[1]!, 2), 2);
});

Deno.test("core: the MMIO generation lands in SPTE bits 3-10 and 52-62, written by hand", () => {
  // docs/kvm-facts.md B.1 (v6.10): gen[7:0] -> SPTE bits 10:3, gen[18:8] -> SPTE bits 62:52.
  // The expected positions are spelled out here, not derived from spte.ts, so a shift
  // wrong in both encode and decode (the 34c0f6f2695a class) cannot pass.
  const cases: [gen: number, word: 0 | 1, bit: number][] = [
    [1 << 0, 0, 3],
    [1 << 7, 0, 10],
    [1 << 8, 1, 52 - 32],
    [1 << 12, 1, 56 - 32],
    [1 << 18, 1, 62 - 32],
  ];
  for (const [gen, word, bit] of cases) {
    encodeMmioSpte(0, 0, gen);
    const genBits = [out[0]! & 0x7f8, out[1]! & 0x7ff00000];
    assert.equal(genBits[word], (1 << bit) >>> 0, `gen ${gen.toString(16)}`);
    assert.equal(genBits[1 - word], 0, `gen ${gen.toString(16)}: nothing in the other word`);
  }
});
