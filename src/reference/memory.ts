/**
 * @module
 * The reference's host memory: bytes owned by host-virtual pages (memslots map guest-
 * physical ranges onto them, possibly aliased), plus "don't care" bits: bits of guest
 * memory whose value the oracle cannot know because the architecture let the backend
 * choose (an A bit that a cached translation may have left unset). Reads report those
 * bits as don't care; a write or an observed read pins them down again.
 */
import { PAGE_SIZE } from "../x86/paging.ts";

/** More possible values than this for one qword fall back to don't-care bits alone. */
const MAX_ALTERNATIVES = 16;
const NONE: readonly bigint[] = [];

/** `qword` (the 8 bytes at `qwordHva`) after a store of `size` bytes of `value` at `hva`. */
export function storeInto(
  qword: bigint,
  qwordHva: number,
  hva: number,
  size: number,
  value: bigint,
): bigint {
  let out = qword;
  for (let i = 0; i < size; i++) {
    const at = hva + i - qwordHva;
    if (at < 0 || at > 7) continue;
    const shift = BigInt(8 * at);
    out = (out & ~(0xffn << shift)) | (((value >> BigInt(8 * i)) & 0xffn) << shift);
  }
  return out;
}

/** Host memory, sparse by page. All memory starts zero. */
export class HostMemory {
  /** Each page's bytes, little-endian, read and written through a DataView. */
  readonly #pages = new Map<number, DataView>();
  /** hva / 8 -> bits of that qword whose value is unknown. */
  readonly #fuzzy = new Map<number, bigint>();
  /**
   * hva / 8 -> the other whole values that qword may hold: where stores that may have
   * landed elsewhere leave it (at most {@linkcode MAX_ALTERNATIVES}; beyond that only the
   * don't-care bits are kept).
   */
  readonly #alts = new Map<number, bigint[]>();
  /** Qwords whose alternatives overflowed: only their don't-care bits say what they hold. */
  readonly #overflowed = new Set<number>();
  /**
   * Pages or qword keys {@linkcode HostMemory.pagesIn} looked at, in all: tests check
   * that a range costs what memory holds, not what the range spans.
   */
  scanned = 0;

  /** Reads `size` bytes at `hva` (little-endian). Never crosses a page (the trace forbids it). */
  read(hva: number, size: number): bigint {
    const page = this.#pages.get(Math.floor(hva / PAGE_SIZE));
    if (page === undefined) return 0n;
    const off = hva % PAGE_SIZE;
    switch (size) {
      case 8:
        return page.getBigUint64(off, true);
      case 4:
        return BigInt(page.getUint32(off, true));
      case 2:
        return BigInt(page.getUint16(off, true));
      default: // 1: the trace allows only sizes 1, 2, 4 and 8
        return BigInt(page.getUint8(off));
    }
  }

  /** Whether the 8 bytes at 8-aligned `hva` are all zero (no bigint made). */
  isZeroQword(hva: number): boolean {
    const page = this.#pages.get(Math.floor(hva / PAGE_SIZE));
    if (page === undefined) return true;
    const off = hva % PAGE_SIZE;
    return page.getUint32(off, true) === 0 && page.getUint32(off + 4, true) === 0;
  }

  /**
   * Writes `size` bytes at `hva`; written bits are no longer don't care. The qwords'
   * other possible values take the same bytes (a whole qword written has none left),
   * unless `keepAlternatives` (an A/D update of the value a walk used).
   */
  write(hva: number, size: number, value: bigint, keepAlternatives = false): void {
    if (this.#overflowed.size > 0 && !keepAlternatives && size === 8 && hva % 8 === 0) {
      this.#overflowed.delete(hva / 8);
    }
    if (this.#alts.size > 0 && !keepAlternatives) {
      for (let q = Math.floor(hva / 8); q <= Math.floor((hva + size - 1) / 8); q++) {
        const alts = this.#alts.get(q);
        if (alts === undefined) continue;
        if (size === 8 && hva === q * 8) this.#alts.delete(q);
        else this.#alts.set(q, alts.map((v) => storeInto(v, q * 8, hva, size, value)));
      }
    }
    const key = Math.floor(hva / PAGE_SIZE);
    let page = this.#pages.get(key);
    if (page === undefined) {
      if (value === 0n) {
        this.#clearFuzzy(hva, size);
        return;
      }
      page = new DataView(new ArrayBuffer(PAGE_SIZE));
      this.#pages.set(key, page);
    }
    const off = hva % PAGE_SIZE;
    switch (size) {
      case 8:
        page.setBigUint64(off, BigInt.asUintN(64, value), true);
        break;
      case 4:
        page.setUint32(off, Number(BigInt.asUintN(32, value)), true);
        break;
      case 2:
        page.setUint16(off, Number(BigInt.asUintN(16, value)), true);
        break;
      default: // 1
        page.setUint8(off, Number(BigInt.asUintN(8, value)));
    }
    this.#clearFuzzy(hva, size);
  }

  /** Drops a page (MADV_DONTNEED): it reads back as zero, all of it known. */
  discardPage(hvaPage: number): void {
    this.#pages.delete(hvaPage);
    if (this.#fuzzy.size + this.#alts.size + this.#overflowed.size === 0) return;
    for (let q = 0; q < PAGE_SIZE / 8; q++) {
      this.#fuzzy.delete(hvaPage * (PAGE_SIZE / 8) + q);
      this.#alts.delete(hvaPage * (PAGE_SIZE / 8) + q);
      this.#overflowed.delete(hvaPage * (PAGE_SIZE / 8) + q);
    }
  }

  /**
   * The host pages in [first, first + count) that hold anything (bytes, don't-care
   * bits, other possible values), ascending. Costs the smaller of the range (a probe of
   * each of its qwords per map that holds any) and the entries memory holds.
   */
  pagesIn(first: number, count: number): number[] {
    const qwordMaps = (this.#fuzzy.size > 0 ? 1 : 0) + (this.#alts.size > 0 ? 1 : 0) +
      (this.#overflowed.size > 0 ? 1 : 0);
    const perPage = 1 + qwordMaps * (PAGE_SIZE / 8);
    const stored = this.#pages.size + this.#fuzzy.size + this.#alts.size + this.#overflowed.size;
    const end = first + count;
    if (count * perPage <= stored) {
      const out: number[] = [];
      for (let p = first; p < end; p++) {
        this.scanned += perPage;
        if (this.#pages.has(p) || (qwordMaps > 0 && this.#anyQword(p))) out.push(p);
      }
      return out;
    }
    this.scanned += stored;
    const found = new Set<number>();
    for (const p of this.#pages.keys()) if (p >= first && p < end) found.add(p);
    for (const keys of [this.#fuzzy.keys(), this.#alts.keys(), this.#overflowed.keys()]) {
      for (const q of keys) {
        const p = Math.floor(q / (PAGE_SIZE / 8));
        if (p >= first && p < end) found.add(p);
      }
    }
    return [...found].sort((a, b) => a - b);
  }

  #anyQword(hvaPage: number): boolean {
    for (let q = hvaPage * (PAGE_SIZE / 8); q < (hvaPage + 1) * (PAGE_SIZE / 8); q++) {
      if (this.#fuzzy.has(q) || this.#alts.has(q) || this.#overflowed.has(q)) return true;
    }
    return false;
  }

  /** The other whole values the qword at 8-aligned `hva` may hold (often none). */
  alternatives(hva: number): readonly bigint[] {
    return this.#alts.size === 0 ? NONE : this.#alts.get(hva / 8) ?? NONE;
  }

  /**
   * A store of `size` bytes at `hva` that may or may not have landed here. `landed`:
   * whether the current value has taken it (the caller wrote it); `before` holds what
   * the qwords under it held before, current value first (from
   * {@linkcode HostMemory.possibleValues}).
   */
  storeMaybe(hva: number, size: number, value: bigint, landed: boolean, before: bigint[][]): void {
    const first = Math.floor(hva / 8);
    before.forEach((was, i) => {
      const q = first + i;
      const took = was.map((v) => storeInto(v, q * 8, hva, size, value));
      const current = this.read(q * 8, 8);
      const all = landed ? [...was, ...took.slice(1)] : [...was.slice(1), ...took];
      const others = [...new Set(all)].filter((v) => v !== current);
      if (this.#overflowed.has(q)) return;
      if (others.length > MAX_ALTERNATIVES) {
        // Too many: from now on only the don't-care bits say what it may hold.
        this.#alts.delete(q);
        this.#overflowed.add(q);
      } else if (others.length === 0) this.#alts.delete(q);
      else this.#alts.set(q, others);
    });
  }

  /**
   * Keeps only the alternatives of the qword at 8-aligned `hva` that `keep` accepts.
   * When none is left the current value is the only one: its don't-care bits other than
   * `stillFuzzy` (A/D bits, say) are known again.
   */
  filterAlternatives(hva: number, keep: (v: bigint) => boolean, stillFuzzy: bigint): void {
    const key = hva / 8;
    const alts = this.#alts.get(key);
    if (alts === undefined) return;
    const left = alts.filter(keep);
    if (left.length > 0) {
      this.#alts.set(key, left);
      return;
    }
    this.#alts.delete(key);
    const fuzzy = (this.#fuzzy.get(key) ?? 0n) & stillFuzzy;
    if (fuzzy === 0n) this.#fuzzy.delete(key);
    else this.#fuzzy.set(key, fuzzy);
  }

  /** Each qword under `[hva, hva + size)`: its current value, then its alternatives. */
  possibleValues(hva: number, size: number): bigint[][] {
    const out: bigint[][] = [];
    for (let q = Math.floor(hva / 8); q <= Math.floor((hva + size - 1) / 8); q++) {
      out.push([this.read(q * 8, 8), ...(this.#alts.get(q) ?? NONE)]);
    }
    return out;
  }

  /** Whether a page holds any non-zero byte (sparse pages only). */
  hasPage(hvaPage: number): boolean {
    return this.#pages.has(hvaPage);
  }

  /** The don't-care bits of the `size` bytes at `hva`, aligned like `read`'s result. */
  dontCare(hva: number, size: number): bigint {
    if (this.#fuzzy.size === 0) return 0n;
    let mask = 0n;
    for (let i = size - 1; i >= 0; i--) {
      const a = hva + i;
      const q = this.#fuzzy.get(Math.floor(a / 8));
      const byte = q === undefined ? 0n : (q >> BigInt(8 * (a % 8))) & 0xffn;
      mask = (mask << 8n) | byte;
    }
    return mask;
  }

  /** Marks bits of the qword at 8-aligned `hva` as don't care. */
  addDontCare(hva: number, mask: bigint): void {
    if (mask === 0n) return;
    const key = hva / 8;
    this.#fuzzy.set(key, (this.#fuzzy.get(key) ?? 0n) | mask);
  }

  /** Pins don't-care bits to the value a backend observed. */
  resolve(hva: number, size: number, observed: bigint): void {
    const care = this.dontCare(hva, size);
    if (care === 0n) return;
    const now = this.read(hva, size);
    this.write(hva, size, (now & ~care) | (observed & care));
  }

  #clearFuzzy(hva: number, size: number): void {
    if (this.#fuzzy.size === 0) return;
    for (let i = 0; i < size; i++) {
      const a = hva + i;
      const key = Math.floor(a / 8);
      const q = this.#fuzzy.get(key);
      if (q === undefined) continue;
      const rest = q & ~(0xffn << BigInt(8 * (a % 8)));
      if (rest === 0n) this.#fuzzy.delete(key);
      else this.#fuzzy.set(key, rest);
    }
  }
}
