/**
 * @module
 * The shadow-page-table entry (spte) of the core, in KVM v6.10's non-EPT layout
 * (`arch/x86/kvm/mmu/spte.h`; docs/kvm-facts.md B.1). An spte is held as two `Uint32` halves
 * (`lo` = bits 31:0, `hi` = bits 63:32), like KVM's `split_spte` on 32-bit hosts:
 * V8 runs 32-bit integer arithmetic on small integers without allocation, while every
 * `bigint` operation allocates, and the access hit path must not allocate.
 *
 * | bits  | field                 | why / source                                            |
 * |-------|-----------------------|---------------------------------------------------------|
 * | 0     | P                     | hardware present (x86 PTE bit 0)                        |
 * | 1     | W                     | hardware writable                                       |
 * | 2     | U                     | hardware user                                           |
 * | 5     | A                     | hardware accessed (`shadow_accessed_mask`)              |
 * | 6     | D                     | hardware dirty (`shadow_dirty_mask`)                    |
 * | 7     | PS                    | large spte (never built by the core: guest large pages  |
 * |       |                       | are shadowed by direct SPs of 4 KiB sptes)              |
 * | 9     | host-writable         | `DEFAULT_SPTE_HOST_WRITABLE`: the host mapping allows W |
 * | 10    | MMU-writable          | `DEFAULT_SPTE_MMU_WRITABLE`: the MMU allows W (not      |
 * |       |                       | write-tracked); W may be restored without a walk        |
 * | 11    | MMU-present           | `SPTE_MMU_PRESENT_MASK`: "ignored by all flavors"       |
 * | 51:12 | PFN                   | leaf: host page (hva >> 12); non-leaf: child SP index   |
 * | 63    | NX                    | hardware execute-disable (KVM forces EFER.NX=1)         |
 *
 * MMIO sptes (`make_mmio_spte`): value `BIT(51) | P` (a reserved physical-address bit,
 * so the CPU takes a RSVD #PF that KVM intercepts), never MMU-present, access W|U in
 * bits 1-2 (`shadow_mmio_access_mask`), gfn bits 38:0 in spte bits 50:12, and the
 * memslot generation split: gen[7:0] in bits 10:3 and gen[18:8] in bits 62:52
 * (`MMIO_SPTE_GEN_LOW_START` 3 .. `_END` 10, `MMIO_SPTE_GEN_HIGH_START` 52 .. `_END`
 * 62). KVM relocates the top gfn bits for L1TF; the core instead refuses to cache MMIO
 * for gfns of 2^39 and above (as KVM refuses to cache MMIO when no reserved bit is
 * free), counted as `mmio-uncacheable`.
 */

/** Hardware bits (all in `lo`). */
export const SPTE_P = 1 << 0;
export const SPTE_W = 1 << 1;
export const SPTE_U = 1 << 2;
export const SPTE_A = 1 << 5;
export const SPTE_D = 1 << 6;
export const SPTE_PS = 1 << 7;
/** Software bits of the non-EPT layout (spte.h: DEFAULT_SPTE_HOST/MMU_WRITABLE). */
export const SPTE_HOST_WRITABLE_BIT = 9;
export const SPTE_MMU_WRITABLE_BIT = 10;
export const SPTE_MMU_PRESENT_BIT = 11;
export const SPTE_HOST_WRITABLE = 1 << SPTE_HOST_WRITABLE_BIT;
export const SPTE_MMU_WRITABLE = 1 << SPTE_MMU_WRITABLE_BIT;
export const SPTE_MMU_PRESENT = 1 << SPTE_MMU_PRESENT_BIT;

/** PFN: bits 51:12 (20 bits in lo, 20 bits in hi). */
export const SPTE_PFN_START = 12;
export const SPTE_PFN_END = 51;
export const SPTE_PFN_LO_MASK = genmask32(31, SPTE_PFN_START);
export const SPTE_PFN_HI_MASK = genmask32(SPTE_PFN_END - 32, 0);

/** NX: bit 63 = bit 31 of hi. */
export const SPTE_NX_BIT = 63;
export const SPTE_NX_HI = (1 << (SPTE_NX_BIT - 32)) >>> 0;

/** MMIO marker: bit 51 (hi bit 19) together with P. */
export const MMIO_MARK_BIT = 51;
export const MMIO_MARK_HI = 1 << (MMIO_MARK_BIT - 32);
/** The gfn of an MMIO spte: bits 50:12 hold gfn bits 38:0. */
export const MMIO_GFN_BITS = 39;
export const MMIO_GFN_HI_MASK = genmask32(MMIO_MARK_BIT - 1 - 32, 0);
/** The access bits an MMIO spte keeps (`shadow_mmio_access_mask` = ACC_WRITE|ACC_USER). */
export const MMIO_ACCESS_MASK = SPTE_W | SPTE_U;

/** The memslot generation in MMIO sptes (spte.h, v6.10). */
export const MMIO_SPTE_GEN_LOW_START = 3;
export const MMIO_SPTE_GEN_LOW_END = 10;
export const MMIO_SPTE_GEN_HIGH_START = 52;
export const MMIO_SPTE_GEN_HIGH_END = 62;
export const MMIO_SPTE_GEN_LOW_BITS = MMIO_SPTE_GEN_LOW_END - MMIO_SPTE_GEN_LOW_START + 1;
export const MMIO_SPTE_GEN_HIGH_BITS = MMIO_SPTE_GEN_HIGH_END - MMIO_SPTE_GEN_HIGH_START + 1;
/** 19 = 8 + 11: `MMIO_SPTE_GEN_MASK` is GENMASK(18, 0). */
export const MMIO_SPTE_GEN_BITS = MMIO_SPTE_GEN_LOW_BITS + MMIO_SPTE_GEN_HIGH_BITS;
export const MMIO_SPTE_GEN_LOW_MASK = genmask32(MMIO_SPTE_GEN_LOW_END, MMIO_SPTE_GEN_LOW_START);
export const MMIO_SPTE_GEN_HIGH_MASK = genmask32(
  MMIO_SPTE_GEN_HIGH_END - 32,
  MMIO_SPTE_GEN_HIGH_START - 32,
);

/** Every field of the layout as [name, lo mask, hi mask], for the overlap proof. */
export const SPTE_FIELDS: readonly (readonly [string, number, number])[] = [
  ["P", SPTE_P, 0],
  ["W", SPTE_W, 0],
  ["U", SPTE_U, 0],
  ["A", SPTE_A, 0],
  ["D", SPTE_D, 0],
  ["PS", SPTE_PS, 0],
  ["host-writable", SPTE_HOST_WRITABLE, 0],
  ["MMU-writable", SPTE_MMU_WRITABLE, 0],
  ["MMU-present", SPTE_MMU_PRESENT, 0],
  ["PFN", SPTE_PFN_LO_MASK, SPTE_PFN_HI_MASK],
  ["NX", 0, SPTE_NX_HI],
];

/** The fields of an MMIO spte, which must not overlap each other either. */
export const MMIO_SPTE_FIELDS: readonly (readonly [string, number, number])[] = [
  ["P", SPTE_P, 0],
  ["access", MMIO_ACCESS_MASK, 0],
  ["gen-low", MMIO_SPTE_GEN_LOW_MASK, 0],
  ["gfn", SPTE_PFN_LO_MASK, MMIO_GFN_HI_MASK],
  ["mmio-mark", 0, MMIO_MARK_HI],
  ["gen-high", 0, MMIO_SPTE_GEN_HIGH_MASK],
];

/** Bits hi:lo set in a 32-bit word (like GENMASK), as an unsigned number. */
export function genmask32(hi: number, lo: number): number {
  return ((hi === 31 ? 0xffffffff : (1 << (hi + 1)) - 1) & ~((1 << lo) - 1)) >>> 0;
}

/** The two halves of an encoded 64-bit value, written by the encoders below. */
export const out = new Uint32Array(2);

/** Whether an spte is shadow-present (KVM `is_shadow_present_pte`). */
export function isShadowPresent(lo: number): boolean {
  return (lo & SPTE_MMU_PRESENT) !== 0;
}

/** Whether an spte is an MMIO spte (KVM `is_mmio_spte`): P with the reserved mark. */
export function isMmioSpte(lo: number, hi: number): boolean {
  return (lo & SPTE_P) !== 0 && (hi & MMIO_MARK_HI) !== 0 && (lo & SPTE_MMU_PRESENT) === 0;
}

/** The PFN of a present spte (< 2^40, exact as a number). */
export function sptePfn(lo: number, hi: number): number {
  return (hi & SPTE_PFN_HI_MASK) * 0x100000 + (lo >>> 12);
}

/** Encodes a present spte into `out`: flags in lo, PFN, NX. */
export function encodeSpte(flagsLo: number, pfn: number, nx: boolean): void {
  out[0] = ((flagsLo & 0xfff) | ((pfn & 0xfffff) << 12)) >>> 0;
  out[1] = ((Math.floor(pfn / 0x100000) & SPTE_PFN_HI_MASK) | (nx ? SPTE_NX_HI : 0)) >>> 0;
}

/**
 * How many generation bits the low field holds for a `genBits`-wide generation. With
 * KVM's widths (16 to 19 bits) it is KVM's 8 (`MMIO_SPTE_GEN_LOW_BITS`). A narrower
 * `mmioGenBits` is the core's scaled model of the same layout (not a KVM width): the
 * low field keeps half of the bits and the high field the rest, so that the split, and
 * a wrong split like 34c0f6f2695a's, shows at generation distances a short trace
 * reaches. For a correct encoder the split is invisible (every generation round-trips).
 */
export function mmioGenLowBits(genBits: number): number {
  return genBits >= 16 ? MMIO_SPTE_GEN_LOW_BITS : genBits >>> 1;
}

/**
 * Encodes an MMIO spte into `out`. `gen` is the generation already masked to the
 * configured width; `lowBits` of it go to the low field (see {@linkcode mmioGenLowBits})
 * and `gen >>> highShift` to the high field: `highShift` is `lowBits` (correct) or 1 (the
 * 34c0f6f2695a mutant, which put gen bits 1..11 instead of 8..18 into the high field).
 */
export function encodeMmioSpte(
  gfn: number,
  access: number,
  gen: number,
  lowBits = MMIO_SPTE_GEN_LOW_BITS,
  highShift = lowBits,
): void {
  const lo = SPTE_P | (access & MMIO_ACCESS_MASK) |
    ((gen & ((1 << lowBits) - 1)) << MMIO_SPTE_GEN_LOW_START) | ((gfn & 0xfffff) << 12);
  const hi = (Math.floor(gfn / 0x100000) & MMIO_GFN_HI_MASK) | MMIO_MARK_HI |
    (((gen >>> highShift) & 0x7ff) << (MMIO_SPTE_GEN_HIGH_START - 32));
  out[0] = lo >>> 0;
  out[1] = hi >>> 0;
}

/** The generation stored in an MMIO spte (`get_mmio_spte_generation`). */
export function mmioSpteGen(lo: number, hi: number, lowBits = MMIO_SPTE_GEN_LOW_BITS): number {
  return ((lo & MMIO_SPTE_GEN_LOW_MASK) >>> MMIO_SPTE_GEN_LOW_START) |
    (((hi & MMIO_SPTE_GEN_HIGH_MASK) >>> (MMIO_SPTE_GEN_HIGH_START - 32)) << lowBits);
}

/** The gfn stored in an MMIO spte. */
export function mmioSpteGfn(lo: number, hi: number): number {
  return (hi & MMIO_GFN_HI_MASK) * 0x100000 + (lo >>> 12);
}
