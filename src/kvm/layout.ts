/**
 * @module
 * Where the kvm backend's guest agent lives, and what a trace must therefore leave
 * alone (README.md in this folder explains the choices). The offsets inside the agent
 * region match `agent/agent.S`.
 */
import type { CtlOp } from "../trace/types.ts";

/**
 * The memslot of the agent's memory (address space 0). Not 32763: the highest valid
 * id is a boundary that tests and fuzzers like to probe.
 */
export const AGENT_SLOT = 32000;
/**
 * The agent's memslots (address space 0): AGENT_SLOT holds its code, stubs and
 * descriptor tables [0, OFF_DATA) and AGENT_SLOT + 2 its page tables [OFF_ROOT,
 * AGENT_MEM_SIZE), both read-only to the guest; AGENT_SLOT + 1 the data page, stacks and
 * command records [OFF_DATA, OFF_ROOT).
 */
export const AGENT_SLOTS = [AGENT_SLOT, AGENT_SLOT + 1, AGENT_SLOT + 2] as const;
/**
 * Guest-physical base of the agent region: just below 64 GiB, so that it is addressable
 * with the smallest MAXPHYADDR a config may have (36) and far from where traces put
 * their slots.
 */
export const AGENT_GPA = 0xf_f000_0000n;
/** The reserved guest-physical region (two 2 MiB blocks; no trace slot may overlap it). */
export const AGENT_GPA_SIZE = 0x40_0000n;
/** The agent's bytes of memory actually allocated (code, tables, buffers, direct map). */
export const AGENT_MEM_SIZE = 0x260000;

/** PML4 index of the agent's own code and data (linear 0xffffff8000000000). */
export const AGENT_PML4_INDEX = 511;
/** PML4 index of the direct map of guest-physical memory (linear 0xffffff0000000000). */
export const DIRECT_PML4_INDEX = 510;
/** Linear address of the agent base. */
export const AGENT_GVA = 0xffff_ff80_0000_0000n;
/** Linear address of guest-physical 0 in the direct map. */
export const DIRECT_GVA = 0xffff_ff00_0000_0000n;
/** The direct map covers gpa [0, 512 GiB) (one PML4 entry of 2 MiB pages, no 1 GiB pages here). */
export const DIRECT_MAP_LIMIT = 0x80_0000_0000n;

/** Offsets inside the agent region (agent.S header). */
export const OFF_CODE = 0x0000;
export const OFF_VECTORS = 0x1000;
export const OFF_USER = 0x2000;
export const OFF_GDT = 0x3000;
export const OFF_TSS = 0x3100;
export const OFF_IDT = 0x4000;
export const OFF_DATA = 0x5000;
export const OFF_FAULT_STACK_TOP = 0x8000;
export const OFF_LOOP_STACK_TOP = 0x7000;
/** Command records (agent.S): 64 bytes each, up to the agent's root table. */
export const OFF_CMD = 0x8000;
export const REC_SIZE = 64;
export const MAX_RECORDS = (0x48000 - OFF_CMD) / REC_SIZE;
/** Record fields. */
export const R_ROUTINE = 0;
export const R_ADDR = 8;
export const R_VALUE = 16;
export const R_AUX = 24;
export const R_STATUS = 32;
export const R_VECTOR = 36;
export const R_RESULT = 40;
export const R_ERROR = 48;
export const R_CR2 = 56;
/** The routine offset table in the agent binary (agent.S `routines`): kinds 0-24. */
export const OFF_ROUTINES = 0x10;
/**
 * The second routine offset table (agent.S `routines2`): kinds from ROUTINES2_FIRST on,
 * so that the code after the first table keeps its offsets (testdata/kvm-hang-records.json
 * points a record at one of its instructions).
 */
export const OFF_ROUTINES2 = 0xf80;
export const ROUTINES2_FIRST = 25;
/** Data page fields (agent.S D_*). */
export const D_RFLAGS = 16;
/** The fetch phase (agent.S D_PHASE): 0 outside a fetch command. */
export const D_PHASE = 24;
/**
 * Where a ring-3 fetch's `ret` finds its return address (agent.S USER_SLOT): the last
 * qword of the ring-3 stub page, assembled into the agent (it holds U_FETCH_BACK's gva).
 */
export const OFF_USER_SLOT = 0x2ff8;
/** The agent's own page tables. */
export const OFF_ROOT = 0x48000;
export const OFF_AGENT_PDPT = 0x49000;
export const OFF_AGENT_PD = 0x4a000;
export const OFF_AGENT_PT = 0x4b000;
export const OFF_DIRECT_PDPT = 0x4c000;
export const OFF_DIRECT_PD = 0x4d000;
/** Pages of the agent region mapped at AGENT_GVA (code through command records). */
export const AGENT_MAPPED_PAGES = OFF_ROOT / 4096;

/** The port the agent writes to when a batch is done (KVM_EXIT_IO). */
export const EXIT_PORT = 0x10;

/** GDT selectors (agent.S USER_CS/USER_SS; the host writes the GDT). */
export const SEL_KERNEL_CS = 0x08;
export const SEL_KERNEL_DS = 0x10;
export const SEL_USER_DS = 0x18;
export const SEL_USER_CS = 0x20;
export const SEL_TSS = 0x28;

/**
 * Agent routine indexes into `routines` (agent.S). Loads and stores have one routine
 * per size: index + log2(size).
 */
export const K_DONE = 0;
export const K_LOAD = 1;
export const K_STORE = 5;
export const K_USER = 9;
export const K_INVLPG = 10;
export const K_CR3 = 11;
export const K_CTL = 12;
export const K_WRMSR = 13;
export const K_RDMSR = 14;
export const K_RDPMC = 15;
/** Ring-3 stubs (for a K_USER record's aux). */
export const U_LOAD = 16;
export const U_STORE = 20;
export const U_RDPMC = 24;
/**
 * Fetches (agent.S FETCHES): supervisor fetch routines, one per check-load size
 * (index + log2(size)), and the user fetch, a K_USER-like command whose aux is the
 * ring-3 load stub of the check (U_LOAD + log2(size)) and whose value word is 1.
 */
export const K_FETCH = 25;
export const K_UFETCH = 29;
/** Where a ring-3 fetch's ret returns (stored at OFF_USER_SLOT); not a command. */
export const U_FETCH_BACK = 30;
export const ROUTINE_COUNT = 31;

/** Result status codes (agent.S). */
export const S_OK = 0;
export const S_VALUE = 1;
export const S_EXCEPTION = 2;
/** A fetch's check load read a first byte other than ret (0xc3): nothing ran. */
export const S_NOT_RET = 3;
/** A fetch whose check load faulted succeeded anyway (one instruction ran, under TF). */
export const S_UNVERIFIED = 4;
/** A fetch ran an instruction other than the verified ret (one, under TF). */
export const S_STRAY = 5;

/** ctl bit numbers in the agent's mask/value words (agent.S op_ctl). */
export const CTL_WP = 0;
export const CTL_SMEP = 1;
export const CTL_SMAP = 2;
export const CTL_NX = 3;
export const CTL_AC = 4;
export const CTL_PCE = 5;

/**
 * The host-virtual window a trace's hvas must lie in: [4 GiB, 1 TiB). The backend
 * reserves a window of the same size per VM and maps trace hva `h` to `base + (h -
 * HVA_WINDOW_START)` with `base` aligned to 1 GiB, so aliasing, alignment (down to 1
 * GiB) and zero-fill are preserved and two VMs in one process never share memory.
 */
export const HVA_WINDOW_START = 0x1_0000_0000n;
export const HVA_WINDOW_END = 0x100_0000_0000n;

/** log2 of an access size: the offset of its routine from K_LOAD / K_STORE / U_*. */
export function sizeIndex(size: number): number {
  return size === 1 ? 0 : size === 2 ? 1 : size === 4 ? 2 : 3;
}

/** The agent's ctl mask and value words (agent.S op_ctl). */
export function ctlWords(op: CtlOp): [bigint, bigint] {
  let mask = 0n, value = 0n;
  const put = (bit: number, v: boolean | undefined) => {
    if (v === undefined) return;
    mask |= 1n << BigInt(bit);
    if (v) value |= 1n << BigInt(bit);
  };
  put(CTL_WP, op.wp);
  put(CTL_SMEP, op.smep);
  put(CTL_SMAP, op.smap);
  put(CTL_NX, op.nx);
  put(CTL_AC, op.ac);
  put(CTL_PCE, op.pce);
  return [mask, value];
}
