/**
 * @module
 * Where a trace's host virtual addresses land in a VM's hva window (README.md "Host
 * memory"). A trace may name any hva a real process could (the reference's traces use
 * `hva=0x0`); the backend gives KVM an address inside the window it mapped for the VM,
 * placing the trace's address space there in 1 GiB regions: every hva of one region goes
 * to the same window chunk at the same offset, so aliasing (two slots at one hva share
 * memory), alignment (modulo 1 GiB, which covers KVM's 2 MiB and 1 GiB large-page checks)
 * and relative placement inside and across adjacent regions are kept. Pure bookkeeping,
 * no syscalls, so it is tested without /dev/kvm.
 */

/** The placement granule: 1 GiB (the window base is aligned to it). */
export const HVA_REGION_SHIFT = 30n;
const REGION = 1n << HVA_REGION_SHIFT;
/** Free chunks left above a new run (a quarter of the window at most). */
const SLACK = 64;

/**
 * Trace hva regions to window chunks. A new slot's regions are placed together: at the
 * chunks they already have (all at one distance, so the slot stays contiguous), else
 * each new region next to them; with none placed yet, at the chunks of the legacy
 * identity placement when free (trace hva `h` in [`legacyStart`, `legacyStart` + window)
 * at window offset `h - legacyStart`, as before relocation existed), otherwise at the
 * highest free run of chunks that leaves {@linkcode SLACK} chunks above it (a later slot
 * may extend it upward), else at any free run.
 */
export class HvaMap {
  readonly #chunks: number;
  readonly #legacyRegion: bigint;
  /** Trace region -> chunk. */
  readonly #placed = new Map<bigint, number>();
  /** Chunks in use (true) by index. */
  readonly #used: boolean[];

  /** A map over a window of `windowBytes` (a multiple of 1 GiB). */
  constructor(windowBytes: bigint, legacyStart: bigint) {
    if (windowBytes % REGION !== 0n || legacyStart % REGION !== 0n) {
      throw new RangeError("Cannot make an hva map: window and legacy start must be 1 GiB aligned");
    }
    this.#chunks = Number(windowBytes / REGION);
    this.#legacyRegion = legacyStart / REGION;
    this.#used = new Array(this.#chunks).fill(false);
  }

  /** Forgets every placement (the next trace starts from an empty window). */
  clear(): void {
    this.#placed.clear();
    this.#used.fill(false);
  }

  /** The number of placed regions (tests). */
  get regions(): number {
    return this.#placed.size;
  }

  /** The window offset of trace hva `hva` if its region is placed, else null. */
  offsetOf(hva: bigint): bigint | null {
    const chunk = this.#placed.get(hva / REGION);
    return chunk === undefined ? null : BigInt(chunk) * REGION + (hva % REGION);
  }

  /**
   * Why [hva, hva + bytes) cannot be placed (it would not stay contiguous, or the window
   * is full), or null; places nothing.
   */
  whyNot(hva: bigint, bytes: bigint): string | null {
    const plan = this.#plan(hva, bytes);
    return typeof plan === "string" ? plan : null;
  }

  /**
   * Places [hva, hva + bytes) (bytes > 0) and returns the window offset of `hva`, or why
   * it cannot (then nothing changes).
   */
  place(hva: bigint, bytes: bigint): bigint | string {
    const plan = this.#plan(hva, bytes);
    if (typeof plan === "string") return plan;
    const first = hva / REGION;
    const last = (hva + bytes - 1n) / REGION;
    for (let r = first; r <= last; r++) {
      const chunk = plan + Number(r - first);
      if (!this.#placed.has(r)) {
        this.#placed.set(r, chunk);
        this.#used[chunk] = true;
      }
    }
    return BigInt(plan) * REGION + (hva % REGION);
  }

  /**
   * The window runs [offset, offset + length) that trace hvas [hva, hva + bytes) occupy
   * where their regions are placed (unplaced regions hold no memory yet: nothing to drop).
   */
  runs(hva: bigint, bytes: bigint): [bigint, bigint][] {
    const out: [bigint, bigint][] = [];
    if (bytes <= 0n) return out;
    const end = hva + bytes;
    for (let r = hva / REGION; r * REGION < end; r++) {
      const chunk = this.#placed.get(r);
      if (chunk === undefined) continue;
      const lo = r * REGION > hva ? r * REGION : hva;
      const hi = (r + 1n) * REGION < end ? (r + 1n) * REGION : end;
      const off = BigInt(chunk) * REGION + (lo - r * REGION);
      const last = out.at(-1);
      if (last !== undefined && last[0] + last[1] === off) last[1] += hi - lo;
      else out.push([off, hi - lo]);
    }
    return out;
  }

  /** The chunk of the slot's first region, or why it cannot be placed. */
  #plan(hva: bigint, bytes: bigint): number | string {
    if (bytes <= 0n || hva < 0n) return "an empty or negative hva range has no placement";
    const first = hva / REGION;
    const last = (hva + bytes - 1n) / REGION;
    const n = last - first + 1n;
    if (n > BigInt(this.#chunks)) {
      return `the range spans ${n} GiB regions, more than the ${this.#chunks} of the hva window`;
    }
    const count = Number(n);
    // Regions already placed fix the distance.
    let base: number | null = null;
    for (let r = first; r <= last; r++) {
      const chunk = this.#placed.get(r);
      if (chunk === undefined) continue;
      const b = chunk - Number(r - first);
      if (base !== null && b !== base) {
        return "its 1 GiB regions were placed apart in the window by earlier slots " +
          "(the slot would not be contiguous)";
      }
      base = b;
    }
    if (base !== null) {
      if (base < 0 || base + count > this.#chunks) {
        return "the window has no room next to the regions it shares with earlier slots";
      }
      for (let r = first; r <= last; r++) {
        const chunk = base + Number(r - first);
        if (!this.#placed.has(r) && this.#used[chunk]) {
          return "the window chunks next to the regions it shares with earlier slots are " +
            "taken by other regions";
        }
      }
      return base;
    }
    const legacy = Number(first - this.#legacyRegion);
    if (
      first >= this.#legacyRegion && legacy + count <= this.#chunks && this.#free(legacy, count)
    ) {
      return legacy;
    }
    // A new run, highest first (legacy slots at the low chunks stay free), leaving room
    // above it for a later slot that extends it upward, then anywhere.
    const slack = Math.min(SLACK, Math.floor(this.#chunks / 4));
    for (const top of [this.#chunks - count - slack, this.#chunks - count]) {
      for (let start = top; start >= 0; start--) {
        if (this.#free(start, count)) return start;
      }
    }
    return `the hva window (${this.#chunks} GiB) has no ${count} free GiB left for it`;
  }

  #free(start: number, count: number): boolean {
    for (let c = start; c < start + count; c++) if (this.#used[c]) return false;
    return true;
  }
}
