/**
 * @module
 * The reference's host memory: bytes owned by host-virtual pages (memslots map guest-
 * physical ranges onto them, possibly aliased), and for the qwords the oracle does not know
 * exactly (the architecture let the backend choose: an A bit a cached translation may have
 * left clear, a store that may have gone through a stale translation), an
 * {@linkcode Uncertain} that says what they may hold. The bytes always hold each qword's
 * followed value; reads report its unknown bits as don't care; a write or an observed read
 * pins them down again.
 */
import { PAGE_SIZE } from "../x86/paging.ts";
import { Uncertain } from "./uncertain.ts";

const QWORDS_PER_PAGE = PAGE_SIZE / 8;

/**
 * The bytes of the `srcSize`-byte `value` at `srcHva` that fall into the `dstSize` bytes
 * at `dstHva`, placed as a little-endian read of those bytes would see them, and the mask
 * of those bytes. Bits of `value` above `srcSize` bytes are dropped.
 */
export function bytesOver(
  srcHva: number,
  srcSize: number,
  value: bigint,
  dstHva: number,
  dstSize: number,
): { mask: bigint; bits: bigint } {
  const lo = Math.max(srcHva, dstHva);
  const hi = Math.min(srcHva + srcSize, dstHva + dstSize);
  if (hi <= lo) return { mask: 0n, bits: 0n };
  const mask = ((1n << BigInt(8 * (hi - lo))) - 1n) << BigInt(8 * (lo - dstHva));
  const shift = BigInt(8 * (srcHva - dstHva));
  const bits = (shift >= 0n ? value << shift : value >> -shift) & mask;
  return { mask, bits };
}

/** Host memory, sparse by page. All memory starts zero and known. */
export class HostMemory {
  /** Each page's bytes, little-endian, read and written through a DataView. */
  readonly #pages = new Map<number, DataView>();
  /** hva / 8 -> what the oracle knows of that qword, for the qwords it does not know exactly. */
  readonly #uncertain = new Map<number, Uncertain>();
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

  /** What the oracle knows of the qword at 8-aligned `hva`. */
  qword(hva: number): Uncertain {
    return this.#uncertain.get(hva / 8) ?? Uncertain.known(this.read(hva, 8));
  }

  /** Sets what the oracle knows of the qword at 8-aligned `hva` (its bytes take `u.value`). */
  setQword(hva: number, u: Uncertain): void {
    if (this.read(hva, 8) !== u.value) this.#writeBytes(hva, 8, u.value);
    this.#keep(hva / 8, u);
  }

  /**
   * A load of `size` bytes at `hva`: the followed value and its unknown bits (the other
   * values of the qwords under it are not carried: a load is judged by its unknown bits).
   */
  load(hva: number, size: number): Uncertain {
    const value = this.read(hva, size);
    if (this.#uncertain.size === 0) return Uncertain.known(value);
    let unknown = 0n;
    for (let q = Math.floor(hva / 8); q <= Math.floor((hva + size - 1) / 8); q++) {
      const u = this.#uncertain.get(q);
      if (u !== undefined) unknown |= bytesOver(q * 8, 8, u.unknown, hva, size).bits;
    }
    return Uncertain.of(value, unknown);
  }

  /** A store of `size` bytes of `value` at `hva` that certainly landed ({@linkcode Uncertain.stored}). */
  write(hva: number, size: number, value: bigint): void {
    if (this.#uncertain.size > 0) {
      this.#eachQword(hva, size, value, (q, mask, bits) => {
        const u = this.#uncertain.get(q);
        if (u !== undefined) this.#keep(q, u.stored(mask, bits));
      });
    }
    this.#writeBytes(hva, size, value);
  }

  /**
   * A store of `size` bytes of `value` at `hva` that may or may not have landed here
   * ({@linkcode Uncertain.mayStore}); `landed`: whether the followed value takes it.
   */
  mayStore(hva: number, size: number, value: bigint, landed: boolean): void {
    this.#eachQword(hva, size, value, (q, mask, bits) => {
      this.setQword(q * 8, this.qword(q * 8).mayStore(mask, bits, landed));
    });
  }

  /** Pins don't-care bits to the value a backend observed. */
  resolve(hva: number, size: number, observed: bigint): void {
    const { value, unknown } = this.load(hva, size);
    if (unknown === 0n) return;
    this.write(hva, size, (value & ~unknown) | (observed & unknown));
  }

  /** Drops a page (MADV_DONTNEED): it reads back as zero, all of it known. */
  discardPage(hvaPage: number): void {
    this.#pages.delete(hvaPage);
    if (this.#uncertain.size === 0) return;
    for (let q = 0; q < QWORDS_PER_PAGE; q++) this.#uncertain.delete(hvaPage * QWORDS_PER_PAGE + q);
  }

  /**
   * The host pages in [first, first + count) that hold anything (bytes, or a qword not
   * known exactly), ascending. Costs the smaller of the range (a probe of each of its
   * qwords when any is uncertain) and the entries memory holds.
   */
  pagesIn(first: number, count: number): number[] {
    const perPage = 1 + (this.#uncertain.size > 0 ? QWORDS_PER_PAGE : 0);
    const stored = this.#pages.size + this.#uncertain.size;
    const end = first + count;
    if (count * perPage <= stored) {
      const out: number[] = [];
      for (let p = first; p < end; p++) {
        this.scanned += perPage;
        if (this.#pages.has(p) || (perPage > 1 && this.#anyUncertain(p))) out.push(p);
      }
      return out;
    }
    this.scanned += stored;
    const found = new Set<number>();
    for (const p of this.#pages.keys()) if (p >= first && p < end) found.add(p);
    for (const q of this.#uncertain.keys()) {
      const p = Math.floor(q / QWORDS_PER_PAGE);
      if (p >= first && p < end) found.add(p);
    }
    return [...found].sort((a, b) => a - b);
  }

  /** Whether a page holds any non-zero byte (sparse pages only). */
  hasPage(hvaPage: number): boolean {
    return this.#pages.has(hvaPage);
  }

  #anyUncertain(hvaPage: number): boolean {
    for (let q = hvaPage * QWORDS_PER_PAGE; q < (hvaPage + 1) * QWORDS_PER_PAGE; q++) {
      if (this.#uncertain.has(q)) return true;
    }
    return false;
  }

  /** Keeps `u` for qword `q` unless it is known exactly. */
  #keep(q: number, u: Uncertain): void {
    if (u.isKnown) this.#uncertain.delete(q);
    else this.#uncertain.set(q, u);
  }

  /** Calls `f` for each qword under the store, with the store's mask and bits in it. */
  #eachQword(
    hva: number,
    size: number,
    value: bigint,
    f: (q: number, mask: bigint, bits: bigint) => void,
  ): void {
    for (let q = Math.floor(hva / 8); q <= Math.floor((hva + size - 1) / 8); q++) {
      const { mask, bits } = bytesOver(hva, size, value, q * 8, 8);
      f(q, mask, bits);
    }
  }

  #writeBytes(hva: number, size: number, value: bigint): void {
    const key = Math.floor(hva / PAGE_SIZE);
    let page = this.#pages.get(key);
    if (page === undefined) {
      if (value === 0n) return;
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
  }
}
