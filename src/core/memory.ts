/**
 * @module
 * Host memory of the core: sparse 8-byte words keyed by hva / 8 in an open-addressing
 * hash (docs/design.md, quality bars: memory grows with touched words, not with slot size).
 * Keys are word indices (< 2^44, exact in a Float64Array), values two Uint32 halves.
 * A zeroed word keeps its slot with value 0 (no tombstones needed).
 */

const EMPTY = -1;

export class SparseMemory {
  #keys: Float64Array;
  #lo: Uint32Array;
  #hi: Uint32Array;
  #mask: number;
  #used = 0;
  /** The last word read, as halves (no allocation on reads). */
  readonly word = new Uint32Array(2);

  constructor(capacityLog2 = 12) {
    const cap = 1 << capacityLog2;
    this.#keys = new Float64Array(cap).fill(EMPTY);
    this.#lo = new Uint32Array(cap);
    this.#hi = new Uint32Array(cap);
    this.#mask = cap - 1;
  }

  /** Number of stored words (zero words included). */
  get size(): number {
    return this.#used;
  }

  #slot(index: number): number {
    const lo = index >>> 0;
    const hi = (index / 4294967296) >>> 0;
    let h = Math.imul(lo ^ Math.imul(hi, 0x9e3779b1), 0x85ebca6b);
    h ^= h >>> 15;
    let i = h & this.#mask;
    const keys = this.#keys;
    while (true) {
      const k = keys[i]!;
      if (k === index || k === EMPTY) return i;
      i = (i + 1) & this.#mask;
    }
  }

  /** Reads the word at word index `index` into `word`. */
  readWord(index: number): void {
    const i = this.#slot(index);
    if (this.#keys[i] === EMPTY) {
      this.word[0] = 0;
      this.word[1] = 0;
    } else {
      this.word[0] = this.#lo[i]!;
      this.word[1] = this.#hi[i]!;
    }
  }

  /** Writes the word at word index `index`. */
  writeWord(index: number, lo: number, hi: number): void {
    let i = this.#slot(index);
    if (this.#keys[i] === EMPTY) {
      if (lo === 0 && hi === 0) return;
      if ((this.#used + 1) * 2 > this.#mask + 1) {
        this.#grow();
        i = this.#slot(index);
      }
      this.#keys[i] = index;
      this.#used++;
    }
    this.#lo[i] = lo;
    this.#hi[i] = hi;
  }

  #grow(): void {
    const keys = this.#keys, lo = this.#lo, hi = this.#hi;
    const cap = (this.#mask + 1) * 2;
    this.#keys = new Float64Array(cap).fill(EMPTY);
    this.#lo = new Uint32Array(cap);
    this.#hi = new Uint32Array(cap);
    this.#mask = cap - 1;
    for (let j = 0; j < keys.length; j++) {
      const k = keys[j]!;
      if (k === EMPTY) continue;
      const i = this.#slot(k);
      this.#keys[i] = k;
      this.#lo[i] = lo[j]!;
      this.#hi[i] = hi[j]!;
    }
  }

  /**
   * Reads `size` bytes at `hva` (never crossing a page) into `word` (little-endian,
   * zero-extended).
   */
  read(hva: number, size: number): void {
    const off = hva % 8;
    const index = (hva - off) / 8;
    if (size === 8 && off === 0) return this.readWord(index);
    let lo = 0, hi = 0;
    for (let b = 0; b < size; b++) {
      const o = off + b;
      this.readWord(index + (o >>> 3));
      const src = o & 7;
      const byte = src < 4
        ? (this.word[0]! >>> (src * 8)) & 0xff
        : (this.word[1]! >>> ((src - 4) * 8)) & 0xff;
      if (b < 4) lo |= byte << (b * 8);
      else hi |= byte << ((b - 4) * 8);
    }
    this.word[0] = lo >>> 0;
    this.word[1] = hi >>> 0;
  }

  /** Writes the low `size` bytes of (hi:lo) at `hva` (never crossing a page). */
  write(hva: number, size: number, lo: number, hi: number): void {
    const off = hva % 8;
    const index = (hva - off) / 8;
    if (size === 8 && off === 0) return this.writeWord(index, lo >>> 0, hi >>> 0);
    for (let b = 0; b < size; b++) {
      const byte = b < 4 ? (lo >>> (b * 8)) & 0xff : (hi >>> ((b - 4) * 8)) & 0xff;
      const o = off + b;
      const w = index + (o >>> 3);
      this.readWord(w);
      let wlo = this.word[0]!, whi = this.word[1]!;
      const dst = o & 7;
      if (dst < 4) wlo = ((wlo & ~(0xff << (dst * 8))) | (byte << (dst * 8))) >>> 0;
      else whi = ((whi & ~(0xff << ((dst - 4) * 8))) | (byte << ((dst - 4) * 8))) >>> 0;
      this.writeWord(w, wlo, whi);
    }
  }

  /** Words (of a range or of the table) `zeroRange` looked at, in all: for tests. */
  scanned = 0;

  /**
   * Zeroes the bytes [hva, hva + bytes) (both 8-aligned), like MADV_DONTNEED: costs the
   * smaller of the range's words and the table, not the range alone.
   */
  zeroRange(hva: number, bytes: number): void {
    const first = hva / 8, words = bytes / 8;
    if (words <= this.#used * 4) {
      this.scanned += words;
      for (let w = 0; w < words; w++) {
        const i = this.#slot(first + w);
        if (this.#keys[i] !== EMPTY) {
          this.#lo[i] = 0;
          this.#hi[i] = 0;
        }
      }
      return;
    }
    // A huge range with few stored words: scan the table instead.
    const keys = this.#keys;
    this.scanned += keys.length;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      if (k !== EMPTY && k >= first && k < first + words) {
        this.#lo[i] = 0;
        this.#hi[i] = 0;
      }
    }
  }
}
