/**
 * @module
 * The architectural 4-level guest page walk, written to be checked line by line
 * against Intel SDM vol. 3A sections 4.5-4.7 and docs/kvm-facts.md A.1-A.5. It reads guest
 * memory through a {@linkcode WalkView} (the current memory, or memory as it was at an
 * earlier instant, for the stale-translation oracle) and changes nothing: A/D updates
 * are returned for the caller to apply.
 */
import type { Config } from "../trace/types.ts";
import {
  levelShift,
  PFERR_FETCH,
  PFERR_PRESENT,
  PFERR_RSVD,
  PFERR_USER,
  PFERR_WRITE,
  PTE_A,
  PTE_ADDR_MASK,
  PTE_D,
  PTE_NX,
  PTE_P,
  PTE_PS,
  PTE_U,
  PTE_W,
} from "../x86/paging.ts";

/** Reads one 8-byte paging-structure entry; `null` when no memslot backs the gpa. */
export interface WalkView {
  readEntry(gpa: bigint): { hva: number; value: bigint; ro: boolean } | null;
}

/** The control bits a walk depends on. */
export interface WalkRegs {
  root: bigint;
  wp: boolean;
  smep: boolean;
  smap: boolean;
  nx: boolean;
  ac: boolean;
}

/** One paging-structure entry the walk used, top (level 4) first. */
export interface WalkEntry {
  level: number;
  gpa: bigint;
  hva: number;
  value: bigint;
  /** The entry lies in a readonly memslot (KVM then skips A/D updates to it). */
  ro: boolean;
}

/** A translation: what a TLB entry caches (SDM 4.10.2.2). */
export interface Translation {
  /** Guest-physical address the gva maps to (page base + offset). */
  gpa: bigint;
  /** Level of the leaf: 1 (4 KiB), 2 (2 MiB), 3 (1 GiB). */
  level: number;
  /** Rights ANDed over every level; `x` is true when EFER.NXE=0. */
  w: boolean;
  u: boolean;
  x: boolean;
  entries: WalkEntry[];
}

export type WalkResult =
  | { ok: true; t: Translation }
  /** Not present (`rsvd` false) or a reserved bit set (`rsvd` true) at some level. */
  | { ok: false; rsvd: boolean; entries: WalkEntry[] };

function bits(hi: number, lo: number): bigint {
  return ((1n << BigInt(hi - lo + 1)) - 1n) << BigInt(lo);
}

/**
 * Reserved-bit masks per level and bit 7, as KVM's `__reset_rsvds_bits_mask` builds
 * them for 4-level long mode (docs/kvm-facts.md A.2): `high` = bits 51:MAXPHYADDR; bit 63 when
 * EFER.NXE=0; PML4E: bit 7, and bit 8 on AMD; 1 GiB leaf: bits 29:13, and bit 7 itself
 * without GBPAGES; 2 MiB leaf: bits 20:13. Bits 62:52 are ignored, never reserved.
 */
export function reservedMask(config: Config, nx: boolean, level: number, ps: boolean): bigint {
  let mask = config.maxPhyAddr < 52 ? bits(51, config.maxPhyAddr) : 0n;
  if (!nx) mask |= PTE_NX;
  if (level === 4) {
    mask |= PTE_PS;
    if (config.vendor === "amd") mask |= 1n << 8n;
  } else if (level === 3 && ps) {
    mask |= bits(29, 13);
    if (!config.gbPages) mask |= PTE_PS;
  } else if (level === 2 && ps) {
    mask |= bits(20, 13);
  }
  return mask;
}

/** Whether a linear address is canonical for 48-bit linear addresses (bits 63:47 equal). */
export function isCanonical(gva: bigint): boolean {
  const top = gva >> 47n;
  return top === 0n || top === (1n << 17n) - 1n;
}

/**
 * Walks `gva` from `regs.root` (SDM 4.5.4; KVM `FNAME(walk_addr_generic)` order: at
 * each level a not-present entry faults first, then reserved bits; rights are ANDed
 * and checked only after the leaf, by {@linkcode permissionFault}). A paging structure
 * in a gpa without a memslot faults as not present, as KVM's walker does when
 * `kvm_vcpu_gfn_to_hva_prot` fails.
 */
export function walk(view: WalkView, config: Config, regs: WalkRegs, gva: bigint): WalkResult {
  const entries: WalkEntry[] = [];
  let table = regs.root & PTE_ADDR_MASK;
  let w = true, u = true, x = true;
  for (let level = 4; level >= 1; level--) {
    const index = (gva >> BigInt(levelShift(level))) & 0x1ffn;
    const gpa = table + index * 8n;
    const read = view.readEntry(gpa);
    if (read === null) return { ok: false, rsvd: false, entries };
    const pte = read.value;
    entries.push({ level, gpa, hva: read.hva, value: pte, ro: read.ro });
    if ((pte & PTE_P) === 0n) return { ok: false, rsvd: false, entries };
    const ps = level <= 3 && level >= 2 && (pte & PTE_PS) !== 0n;
    if ((pte & reservedMask(config, regs.nx, level, ps)) !== 0n) {
      return { ok: false, rsvd: true, entries };
    }
    w &&= (pte & PTE_W) !== 0n;
    u &&= (pte & PTE_U) !== 0n;
    if (regs.nx) x &&= (pte & PTE_NX) === 0n;
    if (level === 1 || ps) {
      const pageMask = (1n << BigInt(levelShift(level))) - 1n;
      const gpaOut = (pte & PTE_ADDR_MASK & ~pageMask) | (gva & pageMask);
      return { ok: true, t: { gpa: gpaOut, level, w, u, x, entries } };
    }
    table = pte & PTE_ADDR_MASK;
  }
  throw new Error("unreachable: a 4-level walk ends at level 1");
}

/** An access as the permission check sees it. */
export interface AccessIntent {
  kind: "read" | "write" | "fetch";
  user: boolean;
}

/**
 * The error-code bits every #PF of this access carries besides P and RSVD (SDM 4.7;
 * KVM `paging_tmpl.h`): W for writes, U for CPL 3, I/D for fetches only when
 * EFER.NXE=1 or CR4.SMEP=1 (docs/kvm-facts.md A.4).
 */
export function accessErrorBits(intent: AccessIntent, regs: WalkRegs): number {
  let code = 0;
  if (intent.kind === "write") code |= PFERR_WRITE;
  if (intent.user) code |= PFERR_USER;
  if (intent.kind === "fetch" && (regs.nx || regs.smep)) code |= PFERR_FETCH;
  return code;
}

/** The error code of a failed walk: P=0 when not present, RSVD|P for reserved bits. */
export function walkFaultCode(rsvd: boolean, intent: AccessIntent, regs: WalkRegs): number {
  return accessErrorBits(intent, regs) | (rsvd ? PFERR_RSVD | PFERR_PRESENT : 0);
}

/**
 * Whether a translation's rights forbid the access (SDM 4.6; docs/kvm-facts.md A.3):
 * CPL 3 needs U, W for writes (CR0.WP irrelevant) and X for fetches; CPL 0 writes need
 * W only when CR0.WP=1; fetches need X, and with CR4.SMEP not a user page; with
 * CR4.SMAP, data accesses to user pages fault unless EFLAGS.AC=1 (fetches are not
 * SMAP-checked). Returns the #PF error code (P set) or 0.
 */
export function permissionFault(t: Translation, intent: AccessIntent, regs: WalkRegs): number {
  let fault: boolean;
  if (intent.user) {
    fault = !t.u || (intent.kind === "write" && !t.w) || (intent.kind === "fetch" && !t.x);
  } else if (intent.kind === "fetch") {
    fault = !t.x || (regs.smep && t.u);
  } else {
    fault = (intent.kind === "write" && !t.w && regs.wp) || (regs.smap && t.u && !regs.ac);
  }
  return fault ? accessErrorBits(intent, regs) | PFERR_PRESENT : 0;
}

/**
 * The A/D updates of a successful access (KVM `FNAME(update_accessed_dirty_bits)`,
 * docs/kvm-facts.md A.5): A on every level lacking it, D on the leaf for a write. Returns the
 * entries to rewrite with their new values.
 */
export function accessedDirtyUpdates(
  t: Translation,
  write: boolean,
): { entry: WalkEntry; value: bigint }[] {
  const out: { entry: WalkEntry; value: bigint }[] = [];
  for (const entry of t.entries) {
    // A readonly host mapping makes KVM skip the update (`pte_writable[]`).
    if (entry.ro) continue;
    let value = entry.value | PTE_A;
    if (write && entry.level === t.level) value |= PTE_D;
    if (value !== entry.value) out.push({ entry, value });
  }
  return out;
}
