/**
 * @module
 * The exhaustive guest-walk permission enumeration of the conformance suite, after the
 * idea of kvm-unit-tests `x86/access.c` (docs/kvm-facts.md A.6; facts only, no code from it):
 * every legal combination of page-table entry flags, access kind and CPU control bits
 * runs through the {@linkcode Backend} contract, and the outcome, the leaf entry and
 * the PDE read back afterwards are compared with {@linkcode expectedOutcome}, which
 * computes the architectural answer from the flags alone (SDM vol. 3A 4.5-4.7,
 * docs/kvm-facts.md A.2-A.5, SEMANTICS.md item 4), never through backend code.
 *
 * A combination is a bit set of {@linkcode AC} flags inside one {@linkcode SpaceName}
 * (a machine config and the flags that vary in it). The CPU-control flags occupy the
 * top bits, so all combinations of one control setting are contiguous and the runner
 * keeps one backend per setting: page tables are built once, then each combination
 * writes its PDPTE/PDE/PTE, INVLPGs the test gva (without it a stale translation would
 * be permitted, SEMANTICS.md item 5), accesses it and reads the PDE and PTE back.
 */
import type { Backend, BackendFactory } from "../../src/backend.ts";
import { kvmPvmConfig, mergeConfig } from "../../src/trace/config.ts";
import { outcomesEqual } from "../../src/trace/outcome.ts";
import type {
  AccessKind,
  AccessOp,
  Config,
  CtlOp,
  Op,
  Outcome,
  ReadOp,
  Vendor,
  WriteOp,
} from "../../src/trace/types.ts";
import {
  PFERR_FETCH,
  PFERR_PRESENT,
  PFERR_RSVD,
  PFERR_USER,
  PFERR_WRITE,
  PTE_A,
  PTE_D,
  PTE_G,
  PTE_NX,
  PTE_P,
  PTE_PS,
  PTE_U,
  PTE_W,
} from "../../src/x86/paging.ts";

/**
 * The flags of a combination, one bit each. Entry flags first, then the access, then
 * the CPU control bits in the top bits (so that one control setting is a contiguous
 * run of the enumeration).
 */
export const AC = {
  PTE_P: 1 << 0,
  PTE_W: 1 << 1,
  PTE_U: 1 << 2,
  PTE_A: 1 << 3,
  PTE_D: 1 << 4,
  PTE_NX: 1 << 5,
  /** PTE bit 51: reserved while MAXPHYADDR < 52 (SDM 4.5 table 4-20). */
  PTE_BIT51: 1 << 6,
  PDE_P: 1 << 7,
  PDE_W: 1 << 8,
  PDE_U: 1 << 9,
  PDE_A: 1 << 10,
  /** Ignored in a PDE that references a page table; the dirty bit of a 2 MiB leaf. */
  PDE_D: 1 << 11,
  PDE_NX: 1 << 12,
  /** The PDE maps a 2 MiB page: the PTE flags are then irrelevant. */
  PDE_PS: 1 << 13,
  PDE_BIT51: 1 << 14,
  /** Bit 13 of a 2 MiB-leaf PDE: inside the reserved bits 20:13 (SDM table 4-18). */
  PDE_BIT13: 1 << 15,
  /** The PDPTE has R/W = 0. */
  PDPTE_NO_W: 1 << 16,
  /** The PDPTE has U/S = 0. */
  PDPTE_NO_U: 1 << 17,
  /** PDPTE bit 7: a 1 GiB leaf; reserved without Page1GB (docs/kvm-facts.md A.1, A.2). */
  PDPTE_PS: 1 << 18,
  /** Bit 8 of a non-leaf PDPTE: not reserved on either vendor (measured, docs/kvm-facts.md A.2). */
  PDPTE_BIT8: 1 << 19,
  /** Bit 8 of a PML4E: reserved on AMD, ignored on Intel (docs/kvm-facts.md A.2). */
  PML4E_BIT8: 1 << 20,
  /** The PDPTE starts with A = 0 (every other upper entry has A = 1). */
  PDPTE_NO_A: 1 << 21,
  ACCESS_USER: 1 << 22,
  ACCESS_WRITE: 1 << 23,
  ACCESS_FETCH: 1 << 24,
  CPU_NXE: 1 << 25,
  CPU_WP: 1 << 26,
  CPU_SMEP: 1 << 27,
  CPU_SMAP: 1 << 28,
  /** EFLAGS.AC: only varied while CR4.SMAP = 1, where it is the SMAP override. */
  CPU_AC: 1 << 29,
} as const;

export type AcFlag = keyof typeof AC;

/** The lowest CPU-control flag: `flags >> CPU_SHIFT` is the control setting. */
const CPU_SHIFT = 25;
const ALL_CPU = AC.CPU_NXE | AC.CPU_WP | AC.CPU_SMEP | AC.CPU_SMAP | AC.CPU_AC;
const ALL_PTE = AC.PTE_P | AC.PTE_W | AC.PTE_U | AC.PTE_A | AC.PTE_D | AC.PTE_NX |
  AC.PTE_BIT51;
const ALL_ACCESS = AC.ACCESS_USER | AC.ACCESS_WRITE | AC.ACCESS_FETCH;
/** Every flag bit. */
const FLAG_MASK = (1 << 30) - 1;

/** The machines the enumeration runs on. */
export type SpaceName = "intel" | "amd" | "intel-no1g";

/** One machine config and the flags that vary on it. */
export interface Space {
  readonly name: SpaceName;
  readonly vendor: Vendor;
  readonly maxPhyAddr: number;
  readonly gbPages: boolean;
  /** The flags enumerated in this space; every other flag stays 0. */
  readonly flags: number;
  /** Why this space exists. */
  readonly purpose: string;
}

/**
 * The spaces, in enumeration order. `intel` is the main enumeration (every flag but the
 * vendor bits); `amd` and `intel-no1g` are the smaller vendor sub-enumerations: the same
 * entries with the vendor-specific bits (PML4E bit 8, PDPTE bit 8, PDPTE.PS without
 * Page1GB), a PDPTE without A (the walker must set it), and fewer of the vendor-neutral
 * flags, so that they stay small.
 */
export const SPACES: readonly Space[] = [
  {
    name: "intel",
    vendor: "intel",
    maxPhyAddr: 46,
    gbPages: true,
    flags: ALL_PTE | AC.PDE_P | AC.PDE_W | AC.PDE_U | AC.PDE_A | AC.PDE_D | AC.PDE_NX |
      AC.PDE_PS | AC.PDE_BIT51 | AC.PDE_BIT13 | AC.PDPTE_NO_W | AC.PDPTE_NO_U | ALL_ACCESS |
      ALL_CPU,
    purpose: "every PTE/PDE/PDPTE permission flag, access kind and control bit",
  },
  {
    name: "amd",
    vendor: "amd",
    maxPhyAddr: 48,
    gbPages: false,
    flags: vendorSubspaceFlags(),
    purpose: "AMD: PML4E bit 8 reserved, PDPTE.PS reserved without Page1GB",
  },
  {
    name: "intel-no1g",
    vendor: "intel",
    maxPhyAddr: 46,
    gbPages: false,
    flags: vendorSubspaceFlags(),
    purpose: "Intel: PML4E/PDPTE bit 8 ignored, PDPTE.PS reserved without Page1GB",
  },
];

function vendorSubspaceFlags(): number {
  return AC.PTE_P | AC.PTE_W | AC.PTE_U | AC.PTE_A | AC.PTE_NX | AC.PDE_P | AC.PDE_W |
    AC.PDE_U | AC.PDE_PS | AC.PDE_BIT51 | AC.PDPTE_NO_W | AC.PDPTE_PS | AC.PDPTE_BIT8 |
    AC.PDPTE_NO_A | AC.PML4E_BIT8 | ALL_ACCESS | AC.CPU_NXE | AC.CPU_WP;
}

/** One combination: a flag set inside a space. */
export interface AccessCombo {
  readonly space: SpaceName;
  readonly flags: number;
}

export interface EnumOptions {
  /** Run every Nth combination (1 = all); the pick is a seeded hash, not a stride. */
  sample?: number;
  /** Selects which 1/`sample` of the combinations run. */
  seed?: number;
  /** Stop after this many combinations. */
  limit?: number;
  /** Only these spaces (default: all). */
  spaces?: readonly SpaceName[];
  /** Only these access kinds (default: all; the kvm backend fetches only a ret, not DATA_VALUE). */
  kinds?: readonly AccessKind[];
}

/** The space of a combination. */
export function spaceOf(name: SpaceName): Space {
  const space = SPACES.find((s) => s.name === name);
  if (space === undefined) throw new TypeError(`Cannot find access space: "${name}"`);
  return space;
}

/** Bits 51:MAXPHYADDR are reserved in every entry (docs/kvm-facts.md A.1/A.2). */
function bit51Reserved(space: Space): boolean {
  return space.maxPhyAddr < 52;
}

/**
 * The flags that make a walk fault with RSVD (docs/kvm-facts.md A.2): bit 51 below MAXPHYADDR
 * 52, PDE bit 13 of a 2 MiB leaf, AMD PML4E bit 8, PDPTE.PS without Page1GB, and the
 * NX bits when EFER.NXE = 0 (bit 63 is then reserved).
 */
function reservedFlags(space: Space, flags: number): number {
  let reserved = AC.PDE_BIT13;
  if (bit51Reserved(space)) reserved |= AC.PTE_BIT51 | AC.PDE_BIT51;
  if (space.vendor === "amd") reserved |= AC.PML4E_BIT8;
  if (!space.gbPages) reserved |= AC.PDPTE_PS;
  if ((flags & AC.CPU_NXE) === 0) reserved |= AC.PTE_NX | AC.PDE_NX;
  return flags & reserved;
}

/**
 * Whether a flag set is a combination worth running (after access.c's `ac_test_legal`,
 * docs/kvm-facts.md A.6, but with SMEP tested):
 * - a fetch is never a write;
 * - PDE bit 13 is an address bit unless the PDE maps a 2 MiB page;
 * - at most one reserved-bit flag (several only repeat the same RSVD fault);
 * - with a 2 MiB PDE the PTE is not used: only PTE flags 0 run (the rest are
 *   duplicates);
 * - EFLAGS.AC only matters under CR4.SMAP (SDM 4.6): AC without SMAP is a duplicate;
 * - a 1 GiB PDPTE only where Page1GB is absent (the space then faults with RSVD; a
 *   real 1 GiB mapping is not part of this enumeration).
 */
export function isLegal(space: Space, flags: number): boolean {
  if ((flags & ~space.flags) !== 0) return false;
  if ((flags & AC.ACCESS_FETCH) !== 0 && (flags & AC.ACCESS_WRITE) !== 0) return false;
  if ((flags & AC.PDE_BIT13) !== 0 && (flags & AC.PDE_PS) === 0) return false;
  if ((flags & AC.PDE_PS) !== 0 && (flags & ALL_PTE) !== 0) return false;
  if ((flags & AC.CPU_AC) !== 0 && (flags & AC.CPU_SMAP) === 0) return false;
  if ((flags & AC.PDPTE_PS) !== 0 && space.gbPages) return false;
  const reserved = reservedFlags(space, flags);
  return (reserved & (reserved - 1)) === 0;
}

/**
 * The legal combinations, in order: space by space, and inside a space by increasing
 * flag value (so CPU-control settings are contiguous). With `sample` N > 1 a combination
 * runs when a hash of its position and `seed` is divisible by N.
 */
export function* enumerateAccessCases(opts: EnumOptions = {}): Iterable<AccessCombo> {
  const sample = opts.sample ?? 1;
  const seed = opts.seed ?? 0;
  const limit = opts.limit ?? Infinity;
  if (!Number.isInteger(sample) || sample < 1) {
    throw new RangeError(`Cannot enumerate access cases: sample ${sample} is not >= 1`);
  }
  let index = 0;
  let taken = 0;
  for (const space of SPACES) {
    if (opts.spaces !== undefined && !opts.spaces.includes(space.name)) continue;
    // Counting over the valid bits only: set every other bit, add 1, keep the valid
    // ones; the last value is all valid bits set (every flag fits in 30 bits).
    const invalid = ~space.flags & FLAG_MASK;
    for (let flags = 0;; flags = ((flags | invalid) + 1) & space.flags) {
      if (
        isLegal(space, flags) && (opts.kinds === undefined || opts.kinds.includes(kindOf(flags)))
      ) {
        const picked = sample === 1 || hash32(index, seed) % sample === 0;
        index++;
        if (picked) {
          if (taken >= limit) return;
          taken++;
          yield { space: space.name, flags };
        }
      }
      if (flags === space.flags) break;
    }
  }
}

/** The number of legal combinations per space (no sampling). */
export function countAccessCases(): Record<SpaceName, number> {
  const counts = { intel: 0, amd: 0, "intel-no1g": 0 } as Record<SpaceName, number>;
  for (const combo of enumerateAccessCases()) counts[combo.space]++;
  return counts;
}

/** A 32-bit mix of (index, seed) (the murmur3 finalizer), for seeded sampling. */
function hash32(index: number, seed: number): number {
  let h = (index ^ Math.imul(seed, 0x9e3779b9)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

// ---------------------------------------------------------------------------------
// Guest memory layout: one memslot at gpa 0 holding the page tables and the data.

/** The memslot: 4 MiB of guest memory at gpa 0. */
export const SLOT_PAGES = 1024;
const SLOT_HVA = 0x1_0000_0000n;
/**
 * The page-table pages. The PD sits at 0x1000 so that a PDPTE pointing at it has bits
 * 29:13 clear: with PS set those bits are reserved (SDM table 4-16), and only PS itself
 * must make a 1 GiB PDPTE fault.
 */
export const PD_GPA = 0x1000n;
export const PML4_GPA = 0x2000n;
export const PDPT_GPA = 0x3000n;
export const PT_GPA = 0x4000n;
/** The 2 MiB frame a PS PDE maps (bits 20:13 clear, so bit 13 is the only reserved one). */
export const LARGE_GPA = 0x200000n;

const PML4_INDEX = 0x124n;
const PDPT_INDEX = 0x0d1n;
const PD_INDEX = 0x0a5n;
const PT_INDEX = 0x007n;
const OFFSET = 0x018n;

/**
 * The test gva (unsigned, as traces hold it), in the upper (kernel) half like
 * access.c's: bit 47 set, so bits 63:48
 * are set too (canonical).
 */
export const TEST_GVA = BigInt.asUintN(
  64,
  0xffffn << 48n | PML4_INDEX << 39n | PDPT_INDEX << 30n | PD_INDEX << 21n |
    PT_INDEX << 12n | OFFSET,
);
/** The gpa the test gva reaches through either leaf: 4 KiB frames and the 2 MiB frame agree. */
export const DATA_GPA = LARGE_GPA + (PT_INDEX << 12n) + OFFSET;
/** The 4 KiB frame a PTE maps. */
const PAGE_GPA = LARGE_GPA + (PT_INDEX << 12n);
/** What the data location holds; write accesses store the same value so it stays. */
export const DATA_VALUE = 0x0123_4567_89ab_cdefn;

export const PML4E_GPA = PML4_GPA + PML4_INDEX * 8n;
export const PDPTE_GPA = PDPT_GPA + PDPT_INDEX * 8n;
export const PDE_GPA = PD_GPA + PD_INDEX * 8n;
export const PTE_GPA = PT_GPA + PT_INDEX * 8n;

const BIT8 = PTE_G;
const BIT13 = 1n << 13n;
const BIT51 = 1n << 51n;

/** The paging-structure entries of a combination, as written into guest memory. */
export interface ComboEntries {
  pml4e: bigint;
  pdpte: bigint;
  pde: bigint;
  /** Written only when the PDE does not map a 2 MiB page. */
  pte: bigint;
}

/**
 * The entries a combination writes. The PML4E and PDPTE are present, writable, user and
 * accessed unless a flag says otherwise (so only the PDPTE's A bit can change, and only
 * with `PDPTE_NO_A`).
 */
export function comboEntries(combo: AccessCombo): ComboEntries {
  const f = combo.flags;
  const on = (flag: number, bit: bigint) => (f & flag) !== 0 ? bit : 0n;
  const pml4e = PDPT_GPA | PTE_P | PTE_W | PTE_U | PTE_A | on(AC.PML4E_BIT8, BIT8);
  const pdpte = PD_GPA | PTE_P | ((f & AC.PDPTE_NO_A) !== 0 ? 0n : PTE_A) |
    ((f & AC.PDPTE_NO_W) !== 0 ? 0n : PTE_W) |
    ((f & AC.PDPTE_NO_U) !== 0 ? 0n : PTE_U) | on(AC.PDPTE_PS, PTE_PS) |
    on(AC.PDPTE_BIT8, BIT8);
  const large = (f & AC.PDE_PS) !== 0;
  const pde = (large ? LARGE_GPA | PTE_PS : PT_GPA) | on(AC.PDE_P, PTE_P) |
    on(AC.PDE_W, PTE_W) | on(AC.PDE_U, PTE_U) | on(AC.PDE_A, PTE_A) | on(AC.PDE_D, PTE_D) |
    on(AC.PDE_NX, PTE_NX) | on(AC.PDE_BIT51, BIT51) | on(AC.PDE_BIT13, BIT13);
  const pte = PAGE_GPA | on(AC.PTE_P, PTE_P) | on(AC.PTE_W, PTE_W) | on(AC.PTE_U, PTE_U) |
    on(AC.PTE_A, PTE_A) | on(AC.PTE_D, PTE_D) | on(AC.PTE_NX, PTE_NX) |
    on(AC.PTE_BIT51, BIT51);
  return { pml4e, pdpte, pde, pte };
}

/** The expected result of one combination. */
export interface Expected {
  outcome: Outcome;
  /** The leaf entry afterwards: the PTE, or the PDE when it maps a 2 MiB page. */
  leafAfter: bigint;
  pdeAfter: bigint;
  pdpteAfter: bigint;
}

/**
 * The architectural result of a combination, computed from its flags (the model of
 * access.c's `ac_emulate_access`, docs/kvm-facts.md A.6, extended with SMEP, SMAP and the
 * vendor bits):
 *
 * 1. Walk from the PML4E down; at each level a not-present entry faults with P = 0,
 *    then a reserved bit faults with RSVD | P (docs/kvm-facts.md A.2: present first, reserved
 *    second, per level from the top; reserved bits of a not-present entry are ignored).
 * 2. Effective rights are the AND over all levels (docs/kvm-facts.md A.3): U, W, and X (= !XD,
 *    only when EFER.NXE). User access: needs U; a user write needs W; a fetch needs X.
 *    Supervisor: a write needs W only if CR0.WP; a fetch needs X, and with CR4.SMEP
 *    faults on a user page; a data access to a user page faults with CR4.SMAP unless
 *    EFLAGS.AC (fetches are not SMAP-checked).
 * 3. Error code (docs/kvm-facts.md A.4): W for writes, U for user accesses, I/D for fetches
 *    only if EFER.NXE or CR4.SMEP; P for reserved-bit and protection faults; RSVD for
 *    reserved-bit faults. cr2 = the gva.
 * 4. On success (docs/kvm-facts.md A.5) A is set in every entry lacking it and D in the leaf of
 *    a write; a fault changes nothing.
 */
export function expectedOutcome(combo: AccessCombo): Expected {
  const space = spaceOf(combo.space);
  const f = combo.flags;
  const has = (flag: number) => (f & flag) !== 0;
  const user = has(AC.ACCESS_USER);
  const write = has(AC.ACCESS_WRITE);
  const fetch = has(AC.ACCESS_FETCH);
  const nxe = has(AC.CPU_NXE);
  const smep = has(AC.CPU_SMEP);
  const large = has(AC.PDE_PS);
  const entries = comboEntries(combo);
  const leafBefore = large ? entries.pde : entries.pte;

  const access = (write ? PFERR_WRITE : 0) | (user ? PFERR_USER : 0) |
    (fetch && (nxe || smep) ? PFERR_FETCH : 0);
  const fault = (code: number): Expected => ({
    outcome: { pf: { code, cr2: TEST_GVA } },
    leafAfter: leafBefore,
    pdeAfter: entries.pde,
    pdpteAfter: entries.pdpte,
  });
  const rsvd = () => fault(access | PFERR_PRESENT | PFERR_RSVD);
  const b51 = bit51Reserved(space);

  // PML4E: always present; bit 8 is reserved on AMD only.
  if (space.vendor === "amd" && has(AC.PML4E_BIT8)) return rsvd();
  // PDPTE: always present; PS is reserved without Page1GB; bit 8 of a non-leaf PDPTE
  // is not reserved (measured on this machine kind's KVM, docs/kvm-facts.md A.2).
  if (has(AC.PDPTE_PS)) {
    if (!space.gbPages) return rsvd();
    throw new RangeError("Cannot model a 1 GiB mapping: the access enumeration has none");
  }
  if (!has(AC.PDE_P)) return fault(access);
  if ((b51 && has(AC.PDE_BIT51)) || (large && has(AC.PDE_BIT13)) || (!nxe && has(AC.PDE_NX))) {
    return rsvd();
  }
  let writable = !has(AC.PDPTE_NO_W) && has(AC.PDE_W);
  let userPage = !has(AC.PDPTE_NO_U) && has(AC.PDE_U);
  let executable = !nxe || !has(AC.PDE_NX);
  if (!large) {
    if (!has(AC.PTE_P)) return fault(access);
    if ((b51 && has(AC.PTE_BIT51)) || (!nxe && has(AC.PTE_NX))) return rsvd();
    writable &&= has(AC.PTE_W);
    userPage &&= has(AC.PTE_U);
    executable &&= !nxe || !has(AC.PTE_NX);
  }

  const protection = fault(access | PFERR_PRESENT);
  if (user && !userPage) return protection;
  if (write && !writable && (user || has(AC.CPU_WP))) return protection;
  if (fetch && !executable) return protection;
  if (fetch && !user && smep && userPage) return protection;
  if (!fetch && !user && has(AC.CPU_SMAP) && userPage && !has(AC.CPU_AC)) return protection;

  const leafAfter = leafBefore | PTE_A | (write ? PTE_D : 0n);
  return {
    outcome: write ? { ok: true } : { value: DATA_VALUE },
    leafAfter,
    pdeAfter: large ? leafAfter : entries.pde | PTE_A,
    pdpteAfter: entries.pdpte | PTE_A,
  };
}

// ---------------------------------------------------------------------------------
// Running combinations through a backend.

/** The machine config of a space (control bits are set by the `ctl` setup op). */
export function spaceConfig(space: Space): Config {
  // The AMD space is the machine of this host's KVM (docs/measurements.md), so that the
  // kvm backend can run it too.
  // The space does not vary SMEP/SMAP, so they are absent features there, as CPUID says.
  if (space.vendor === "amd") return { ...kvmPvmConfig(), features: { smep: false, smap: false } };
  // SMEP and SMAP exist only where the space varies them (a `ctl` touching an absent
  // feature would #GP, SEMANTICS.md item 7).
  return mergeConfig({
    vendor: space.vendor,
    maxPhyAddr: space.maxPhyAddr,
    gbPages: space.gbPages,
    features: {
      smep: (space.flags & AC.CPU_SMEP) !== 0,
      smap: (space.flags & AC.CPU_SMAP) !== 0,
    },
  });
}

/** The `ctl` op that sets a combination's control bits (only those its space varies). */
function ctlOp(space: Space, flags: number): CtlOp {
  const op: CtlOp = { op: "ctl" };
  if ((space.flags & AC.CPU_NXE) !== 0) op.nx = (flags & AC.CPU_NXE) !== 0;
  if ((space.flags & AC.CPU_WP) !== 0) op.wp = (flags & AC.CPU_WP) !== 0;
  if ((space.flags & AC.CPU_SMEP) !== 0) op.smep = (flags & AC.CPU_SMEP) !== 0;
  if ((space.flags & AC.CPU_SMAP) !== 0) op.smap = (flags & AC.CPU_SMAP) !== 0;
  if ((space.flags & AC.CPU_AC) !== 0) op.ac = (flags & AC.CPU_AC) !== 0;
  return op;
}

/**
 * The ops that build the machine of a control setting: the memslot, the control
 * bits, the PML4E and PDPTE (defaults; combinations rewrite them), CR3 and the data.
 */
function setupOps(space: Space, flags: number): [Op, Outcome][] {
  const base = comboEntries({ space: "intel", flags: 0 });
  return [
    [{ op: "slot", id: 0, gpa: 0n, pages: SLOT_PAGES, hva: SLOT_HVA, flags: [] }, { errno: 0 }],
    [ctlOp(space, flags), { ok: true }],
    [writeOp(PML4E_GPA, base.pml4e), { ok: true }],
    [writeOp(PDPTE_GPA, base.pdpte), { ok: true }],
    [{ op: "cr3", gpa: PML4_GPA }, { ok: true }],
    [writeOp(DATA_GPA, DATA_VALUE), { ok: true }],
  ];
}

function writeOp(gpa: bigint, value: bigint): WriteOp {
  return { op: "write", gpa, size: 8, value };
}

function kindOf(flags: number): AccessKind {
  if ((flags & AC.ACCESS_WRITE) !== 0) return "write";
  return (flags & AC.ACCESS_FETCH) !== 0 ? "fetch" : "read";
}

function accessOp(flags: number): AccessOp {
  const kind = kindOf(flags);
  const op: AccessOp = {
    op: "access",
    gva: TEST_GVA,
    kind,
    user: (flags & AC.ACCESS_USER) !== 0,
    size: 8,
  };
  if (kind === "write") op.value = DATA_VALUE;
  return op;
}

/**
 * The whole op sequence of one combination from a fresh machine, with the outcome each
 * op must have: setup, the entries, INVLPG, the access, and the read-backs, with the
 * machine config. For replaying one failing combination as a trace.
 */
export function comboTrace(combo: AccessCombo): { config: Config; steps: [Op, Outcome][] } {
  const space = spaceOf(combo.space);
  const entries = comboEntries(combo);
  const expected = expectedOutcome(combo);
  const large = (combo.flags & AC.PDE_PS) !== 0;
  const ops = setupOps(space, combo.flags);
  ops.push([writeOp(PML4E_GPA, entries.pml4e), { ok: true }]);
  ops.push([writeOp(PDPTE_GPA, entries.pdpte), { ok: true }]);
  ops.push([writeOp(PDE_GPA, entries.pde), { ok: true }]);
  if (!large) ops.push([writeOp(PTE_GPA, entries.pte), { ok: true }]);
  ops.push([{ op: "invlpg", gva: TEST_GVA }, { ok: true }]);
  ops.push([accessOp(combo.flags), expected.outcome]);
  ops.push([{ op: "read", gpa: PDPTE_GPA, size: 8 }, { value: expected.pdpteAfter }]);
  ops.push([{ op: "read", gpa: PDE_GPA, size: 8 }, { value: expected.pdeAfter }]);
  if (!large) ops.push([{ op: "read", gpa: PTE_GPA, size: 8 }, { value: expected.leafAfter }]);
  return { config: spaceConfig(space), steps: ops };
}

/** Names the set flags of a combination: `intel 0x3a0087 [PTE_P PDE_P ... CPU_WP]`. */
export function describeCombo(combo: AccessCombo): string {
  const names = (Object.keys(AC) as AcFlag[]).filter((k) => (combo.flags & AC[k]) !== 0);
  return `${combo.space} 0x${combo.flags.toString(16)} [${names.join(" ")}]`;
}

/** A short text form of an outcome for failure messages. */
function show(outcome: Outcome): string {
  return JSON.stringify(outcome, (_k, v) => typeof v === "bigint" ? `0x${v.toString(16)}` : v);
}

const MAX_FAILURES = 200;

/**
 * Runs the enumeration (or a sample of it) against a backend and compares every
 * access outcome and A/D read-back with {@linkcode expectedOutcome}.
 *
 * @returns the number of combinations checked and one message per disagreement (the
 * first 200, then a count of the rest)
 */
export function runAccessEnumeration(
  factory: BackendFactory,
  opts: EnumOptions = {},
): { checked: number; failures: string[] } {
  const failures: string[] = [];
  let more = 0;
  // Messages are built only when kept: formatting every failure of a badly broken
  // backend would cost more than running it.
  const fail = (message: () => string) => {
    if (failures.length < MAX_FAILURES) failures.push(message());
    else more++;
  };
  let checked = 0;
  let backend: Backend | undefined;
  let group = -1;
  let broken = false;
  // What guest memory holds (from the last write or read-back; -1 = unknown): an entry
  // that already holds the wanted value is not rewritten.
  let pml4e = -1n;
  let pdpte = -1n;
  let pde = -1n;
  let pte = -1n;
  const invlpg: Op = { op: "invlpg", gva: TEST_GVA };
  const readPdpte: ReadOp = { op: "read", gpa: PDPTE_GPA, size: 8 };
  const readPde: ReadOp = { op: "read", gpa: PDE_GPA, size: 8 };
  const readPte: ReadOp = { op: "read", gpa: PTE_GPA, size: 8 };
  const accessOps = new Map<number, AccessOp>();

  try {
    for (const combo of enumerateAccessCases(opts)) {
      const space = spaceOf(combo.space);
      const key = SPACES.indexOf(space) << 8 | combo.flags >>> CPU_SHIFT;
      if (key !== group) {
        backend?.close();
        group = key;
        backend = factory.create(spaceConfig(space));
        broken = false;
        for (const [op, want] of setupOps(space, combo.flags)) {
          const got = backend.step(op);
          if (!outcomesEqual(want, got)) {
            fail(() =>
              `${describeCombo(combo)}: setup op ${op.op}: expected ${show(want)}, ` +
              `got ${show(got)} (control setting skipped)`
            );
            broken = true;
            break;
          }
        }
        const base = comboEntries({ space: combo.space, flags: 0 });
        pml4e = base.pml4e;
        pdpte = base.pdpte;
        pde = pte = -1n;
      }
      if (broken || backend === undefined) continue;
      checked++;
      const b = backend;
      const entries = comboEntries(combo);
      const expected = expectedOutcome(combo);
      const large = (combo.flags & AC.PDE_PS) !== 0;
      const check = (what: string, want: Outcome, got: Outcome) => {
        if (!outcomesEqual(want, got)) {
          fail(() => `${describeCombo(combo)}: ${what}: expected ${show(want)}, got ${show(got)}`);
        }
      };
      const ok: Outcome = { ok: true };
      if (entries.pml4e !== pml4e) {
        check("write PML4E", ok, b.step(writeOp(PML4E_GPA, pml4e = entries.pml4e)));
      }
      if (entries.pdpte !== pdpte) {
        check("write PDPTE", ok, b.step(writeOp(PDPTE_GPA, pdpte = entries.pdpte)));
      }
      if (entries.pde !== pde) check("write PDE", ok, b.step(writeOp(PDE_GPA, entries.pde)));
      if (!large && entries.pte !== pte) {
        check("write PTE", ok, b.step(writeOp(PTE_GPA, entries.pte)));
      }
      check("invlpg", ok, b.step(invlpg));
      const accessBits = combo.flags & ALL_ACCESS;
      let access = accessOps.get(accessBits);
      if (access === undefined) accessOps.set(accessBits, access = accessOp(combo.flags));
      check("access", expected.outcome, b.step(access));
      if ((space.flags & AC.PDPTE_NO_A) !== 0) {
        // Only these spaces start PDPTEs without A; elsewhere the PDPTE cannot change.
        const got = b.step(readPdpte);
        check("PDPTE after", { value: expected.pdpteAfter }, got);
        pdpte = "value" in got ? got.value : -1n;
      }
      const pdeGot = b.step(readPde);
      check("PDE after", { value: expected.pdeAfter }, pdeGot);
      pde = "value" in pdeGot ? pdeGot.value : -1n;
      if (!large) {
        const pteGot = b.step(readPte);
        check("PTE after", { value: expected.leafAfter }, pteGot);
        pte = "value" in pteGot ? pteGot.value : -1n;
      }
    }
  } finally {
    backend?.close();
  }
  if (more > 0) failures.push(`... and ${more} more failures`);
  return { checked, failures };
}
