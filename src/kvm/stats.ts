/**
 * @module
 * KVM's binary statistics (`KVM_GET_STATS_FD`, api.rst 4.133) of a VM or a vCPU: the
 * kernel's own named event counters (`pf_fixed`, `mmu_unsync`, `mmu_pte_write`, ...).
 * The kvm backend reads them around an op to tell what KVM did for it (its trail,
 * README.md "The trail"). Only cumulative counters are read: instant values and peaks
 * (`pages_4k`, `max_mmu_rmap_size`) say nothing about one op.
 */
import { errno, libc } from "./libc.ts";
import * as U from "./uapi.ts";

/** One stats fd: the names of its cumulative counters and a buffer to read them into. */
export class KvmStats {
  readonly #fd: number;
  /** Counter names, index for index with {@linkcode read}'s values. */
  readonly names: readonly string[];
  /** The byte offset in the data block of each counter. */
  readonly #offsets: number[];
  readonly #dataOffset: number;
  readonly #data: Uint8Array<ArrayBuffer>;
  readonly #view: DataView;

  /** Reads the descriptors of `fd` (a KVM_GET_STATS_FD result; this object owns it). */
  constructor(fd: number) {
    this.#fd = fd;
    const c = libc();
    const header = new Uint8Array(U.STATS_HEADER_SIZE);
    if (Number(c.pread(fd, header, BigInt(header.length), 0n)) !== header.length) {
      throw new Error(`Cannot read the KVM stats header: errno ${errno()}`);
    }
    const h = new DataView(header.buffer);
    const nameSize = h.getUint32(4, true), count = h.getUint32(8, true);
    const descOffset = h.getUint32(16, true);
    this.#dataOffset = h.getUint32(20, true);
    const descSize = U.STATS_DESC_SIZE + nameSize;
    const descs = new Uint8Array(descSize * count);
    if (Number(c.pread(fd, descs, BigInt(descs.length), BigInt(descOffset))) !== descs.length) {
      throw new Error(`Cannot read the KVM stats descriptors: errno ${errno()}`);
    }
    const d = new DataView(descs.buffer);
    const names: string[] = [], offsets: number[] = [];
    let end = 0;
    for (let i = 0; i < count; i++) {
      const o = i * descSize;
      const flags = d.getUint32(o, true), size = d.getUint16(o + 6, true);
      const offset = d.getUint32(o + 8, true);
      end = Math.max(end, offset + 8 * size);
      if ((flags & U.KVM_STATS_TYPE_MASK) !== U.KVM_STATS_TYPE_CUMULATIVE || size !== 1) continue;
      const raw = descs.subarray(o + U.STATS_DESC_SIZE, o + descSize);
      const nul = raw.indexOf(0);
      names.push(new TextDecoder().decode(raw.subarray(0, nul < 0 ? raw.length : nul)));
      offsets.push(offset);
    }
    this.names = names;
    this.#offsets = offsets;
    this.#data = new Uint8Array(end);
    this.#view = new DataView(this.#data.buffer);
  }

  /** The counters now (one pread), index for index with {@linkcode names}. */
  read(): bigint[] {
    const r = Number(
      libc().pread(this.#fd, this.#data, BigInt(this.#data.length), BigInt(this.#dataOffset)),
    );
    if (r !== this.#data.length) throw new Error(`Cannot read the KVM stats: errno ${errno()}`);
    return this.#offsets.map((o) => this.#view.getBigUint64(o, true));
  }

  /** The names of the counters that moved from `before` to `after`. */
  moved(before: readonly bigint[], after: readonly bigint[]): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.names.length; i++) {
      if (after[i] !== before[i]) out.push(this.names[i]!);
    }
    return out;
  }

  close(): void {
    libc().close(this.#fd);
  }
}
