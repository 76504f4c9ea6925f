/**
 * @module
 * The core's guest page-table walker, in the shape of KVM's
 * `FNAME(walk_addr_generic)` (paging_tmpl.h) for 64-bit 4-level guests: per level,
 * not-present first, then the reserved bits of `rsvd_bits_mask[bit7][level-1]`
 * (docs/kvm-facts.md A.2, `__reset_rsvds_bits_mask`); rights accumulate (x positive) and are
 * checked once at the leaf against the per-pfec bitmask built like
 * `update_permission_bitmask` (A.3). Entries are two Uint32 halves; nothing allocates.
 * A/D updates are the MMU's job (they mark pages dirty), after a successful walk.
 */
import {
  levelShift,
  PAGE_SHIFT,
  PFERR_FETCH,
  PFERR_PRESENT,
  PFERR_RSVD,
  PFERR_USER,
  PFERR_WRITE,
  PTE_ADDR_MASK_HI,
  PTE_ADDR_MASK_LO,
} from "../x86/paging.ts";
import type { Config } from "../trace/types.ts";
import { ACC_EXEC, ACC_USER, ACC_WRITE } from "./role.ts";
import { genmask32 } from "./spte.ts";
import type { Memslots } from "./memslots.ts";
import type { SparseMemory } from "./memory.ts";

/** Control bits the walk depends on. */
export interface WalkCpu {
  wp: boolean;
  smep: boolean;
  smap: boolean;
  nx: boolean;
  ac: boolean;
}

const TWO32 = 4294967296;

/** The pfec bit that carries "SMAP override" in the permission index (KVM: RSVD slot). */
const PFERR_SMAP_OVERRIDE = PFERR_RSVD;

export class GuestWalker {
  /** rsvd masks, index bit7 * 5 + level. */
  readonly rsvdLo = new Uint32Array(10);
  readonly rsvdHi = new Uint32Array(10);
  /** permissions[pfec >> 1]: bit `acc` set = an access with rights `acc` faults. */
  readonly permissions = new Uint8Array(16);
  // Results of the last walk.
  level = 0;
  gfn = 0;
  pteAccess = 0;
  faultCode = 0;
  readonly ptAccess = new Uint8Array(5);
  readonly pteLo = new Uint32Array(5);
  readonly pteHi = new Uint32Array(5);
  readonly pteGpa = new Float64Array(5);
  readonly tableGfn = new Float64Array(5);
  #nx = false;
  #smep = false;
  #addrHiMask = 0;

  constructor(
    readonly config: Config,
    readonly slots: Memslots,
    readonly mem: SparseMemory,
  ) {}

  /** Recomputes the reserved-bit masks and the permission bitmask (context reset). */
  reset(cpu: WalkCpu): void {
    const m = this.config.maxPhyAddr;
    const high = m >= 52 ? 0 : genmask32(19, m - 32); // bits 51:M
    const exb = cpu.nx ? 0 : 0x80000000; // bit 63 without EFER.NXE
    const b7 = 1 << 7, b8 = 1 << 8;
    const amd = this.config.vendor === "amd";
    const set = (bit7: number, level: number, lo: number) => {
      this.rsvdLo[bit7 * 5 + level] = lo >>> 0;
      this.rsvdHi[bit7 * 5 + level] = (exb | high) >>> 0;
    };
    for (const bit7 of [0, 1]) {
      set(bit7, 4, b7 | (amd ? b8 : 0));
      set(bit7, 1, 0);
    }
    set(0, 3, 0);
    set(1, 3, genmask32(29, 13) | (this.config.gbPages ? 0 : b7));
    set(0, 2, 0);
    set(1, 2, genmask32(20, 13));
    for (let i = 0; i < 16; i++) {
      const w = (i & 1) !== 0, u = (i & 2) !== 0, smapOvr = (i & 4) !== 0, f = (i & 8) !== 0;
      let mask = 0;
      for (let acc = 0; acc < 8; acc++) {
        const x = (acc & ACC_EXEC) !== 0, wr = (acc & ACC_WRITE) !== 0, us = (acc & ACC_USER) !== 0;
        const fault = (u && !us) || (w && !wr && (u || cpu.wp)) || (f && !x) ||
          (f && !u && cpu.smep && us) || (!f && !u && cpu.smap && us && !smapOvr);
        if (fault) mask |= 1 << acc;
      }
      this.permissions[i] = mask;
    }
    this.#nx = cpu.nx;
    this.#smep = cpu.smep;
    this.#addrHiMask = PTE_ADDR_MASK_HI;
  }

  /** Whether an access with rights `acc` and error code `pfec` faults (`permission_fault`). */
  permissionFault(acc: number, pfec: number, ac: boolean): boolean {
    const ovr = (pfec & PFERR_USER) === 0 && ac ? PFERR_SMAP_OVERRIDE : 0;
    return ((this.permissions[(pfec | ovr) >>> 1]! >>> acc) & 1) !== 0;
  }

  /** Reads the gpte at `gpa` into halves; false if no usable slot backs it. */
  #readGpte(gpa: number, level: number): boolean {
    const gfn = Math.floor(gpa / 4096);
    const slot = this.slots.find(gfn);
    if (slot === null) return false;
    this.mem.read(slot.hva + (gfn - slot.baseGfn) * 4096 + (gpa % 4096), 8);
    this.pteLo[level] = this.mem.word[0]!;
    this.pteHi[level] = this.mem.word[1]!;
    return true;
  }

  /**
   * Walks `gva` (a canonical address as a signed number) from `cr3` for an access
   * with error-code bits `pfec` (W, U, F). Returns true on success (`level`, `gfn`,
   * `pteAccess`, per-level `pte*`/`tableGfn`/`ptAccess` filled) or false with
   * `faultCode` set.
   */
  walk(cr3: number, gva: number, pfec: number, ac: boolean): boolean {
    const fetchBit = (pfec & PFERR_FETCH) !== 0 && (this.#nx || this.#smep) ? PFERR_FETCH : 0;
    const accessBits = (pfec & (PFERR_WRITE | PFERR_USER)) | fetchBit;
    let tableGpa = cr3 - (cr3 % 4096);
    let access = 7;
    const vpn = Math.floor(gva / 4096);
    for (let level = 4; level >= 1; level--) {
      const index = Math.floor(vpn / 2 ** (levelShift(level) - PAGE_SHIFT)) & 511;
      const pteGpa = tableGpa + index * 8;
      this.tableGfn[level] = tableGpa / 4096;
      this.pteGpa[level] = pteGpa;
      this.ptAccess[level] = access;
      if (!this.#readGpte(pteGpa, level)) {
        this.faultCode = accessBits;
        return false;
      }
      const lo = this.pteLo[level]!, hi = this.pteHi[level]!;
      if ((lo & 1) === 0) {
        this.faultCode = accessBits;
        return false;
      }
      const bit7 = (lo >>> 7) & 1;
      if (
        (lo & this.rsvdLo[bit7 * 5 + level]!) !== 0 || (hi & this.rsvdHi[bit7 * 5 + level]!) !== 0
      ) {
        this.faultCode = accessBits | PFERR_RSVD | PFERR_PRESENT;
        return false;
      }
      // Rights of this entry: W, U, and X = !NX when EFER.NXE (KVM: gpte ^ walk_nx_mask).
      const gacc = ((lo & 2) !== 0 ? ACC_WRITE : 0) | ((lo & 4) !== 0 ? ACC_USER : 0) |
        (this.#nx && (hi & 0x80000000) !== 0 ? 0 : ACC_EXEC);
      access &= gacc;
      const addrNum = (hi & this.#addrHiMask) * TWO32 + ((lo & PTE_ADDR_MASK_LO) >>> 0);
      if (level === 1 || (bit7 === 1 && level <= 3)) {
        const span = 2 ** (levelShift(level) - PAGE_SHIFT);
        const base = Math.floor(addrNum / 4096 / span) * span;
        this.gfn = base + (level === 1 ? 0 : (vpn - Math.floor(vpn / span) * span));
        this.level = level;
        this.pteAccess = access;
        if (this.permissionFault(access, pfec, ac)) {
          this.faultCode = accessBits | PFERR_PRESENT;
          return false;
        }
        return true;
      }
      tableGpa = addrNum;
    }
    return false; // unreachable: level 1 is always a leaf
  }
}
