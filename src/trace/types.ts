/**
 * @module
 * The types of the trace format, version 1 (docs/trace-format.md): the machine
 * configuration, the ops and their outcomes. Types only: the ops are declared once in
 * the op table (`ops.ts`, re-exported here), parsing lives in `parse.ts`, JSON formatting
 * in `json.ts`, the one-line text form in `text.ts`.
 *
 * In memory every 64-bit quantity (addresses, register and MSR values) is a `bigint`;
 * small counts, sizes and ids are `number`s; page sets (dirty and young bitmaps) are
 * {@linkcode PageRuns}. In JSON, 64-bit quantities are hex strings
 * (`"0x8000000000000003"`).
 */

import type { Op } from "./ops.ts";

/** The format tag every version-1 trace carries. */
export const TRACE_FORMAT = "shadowfuzz.trace/1";

/** CPU vendor the guest sees; selects the PMU MSR map and vendor reserved bits. */
export type Vendor = "intel" | "amd";

/**
 * The guest vPMU.
 *
 * - Intel: `version` 0 (no vPMU), 1 (GP counters only) or 2 (adds fixed counters and
 *   GLOBAL_CTRL/STATUS/OVF_CTRL). KVM caps the version at 2 (docs/kvm-facts.md C.1).
 * - AMD: `version` 0 (no vPMU), 1 (legacy K7 MSRs; `gp: 6` also exposes the F15H
 *   PerfCtrExtCore MSRs) or 2 (PerfMonV2: adds PERF_CNTR_GLOBAL_*). AMD has no fixed
 *   counters and 48-bit counters.
 */
export interface PmuConfig {
  /** The vPMU version; 0 is no vPMU (RDPMC and the PMU MSRs #GP, see above). */
  version: 0 | 1 | 2;
  /** Number of general-purpose counters (Intel <= 8, AMD 4 or 6). */
  gp: number;
  /** Number of fixed counters (Intel version 2 only, <= 3). */
  fixed: number;
  /** GP counter width in bits (Intel CPUID.0AH EAX[23:16]; AMD always 48). */
  gpWidth: number;
  /** Fixed counter width in bits (Intel CPUID.0AH EDX[12:5]). */
  fixedWidth: number;
  /** IA32_PERF_CAPABILITIES.FW_WRITE (bit 13): the IA32_A_PMCx aliases exist. */
  fullWidthWrites: boolean;
  /**
   * Intel only: the guest CPUID has HLE/RTM, so eventsel IN_TX (bit 32) and, on counter
   * 2, IN_TXCP (bit 33) are no longer reserved (`intel_pmu_refresh`, docs/kvm-facts.md C.2).
   */
  tsx: boolean;
}

/** The machine a trace runs on. Every field has a default (see `config.ts`). */
export interface Config {
  /** The CPU vendor the guest sees (default `"intel"`). */
  vendor: Vendor;
  /** Guest MAXPHYADDR (CPUID.80000008H:EAX[7:0]); 36..52. */
  maxPhyAddr: number;
  /** CPUID.80000001H:EDX[26] Page1GB: without it PDPTE.PS is a reserved bit. */
  gbPages: boolean;
  /**
   * The VM has the SMM memslot address space (x86 `kvm_arch_nr_memslot_as_ids` = 2);
   * without it slot ids with address space 1 (id >> 16 == 1) are EINVAL.
   */
  smm: boolean;
  /** CPUID features the guest may enable with `ctl` (setting an absent one #GPs). */
  features: { smep: boolean; smap: boolean };
  /** Initial control bits (the guest runs in 64-bit long mode with CR0.PG=1). */
  cr0: { wp: boolean };
  /** Initial CR4.SMEP, CR4.SMAP and CR4.PCE (PCE lets CPL 3 execute RDPMC). */
  cr4: { smep: boolean; smap: boolean; pce: boolean };
  /** Initial EFER.NXE: without it the NX bit of a paging entry is reserved. */
  efer: { nx: boolean };
  /** Initial EFLAGS.AC: with CR4.SMAP, lets CPL 0 access user pages. */
  rflags: { ac: boolean };
  /** The guest vPMU. */
  pmu: PmuConfig;
  /** KVM quirks (KVM_CAP_DISABLE_QUIRKS2) the backends follow. */
  quirks: {
    /**
     * KVM_X86_QUIRK_SLOT_ZAP_ALL (v6.12; docs/kvm-facts.md B.8): on, deleting or moving a
     * memslot zaps everything (fast zap); off, only the slot's sptes and shadow pages.
     */
    slotZapAll: boolean;
  };
  /**
   * KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, which the VM enables with KVM_ENABLE_CAP
   * (api.rst 7.18): `manualProtect` is KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE (bit 0 of
   * args[0]): KVM_GET_DIRTY_LOG only reports (it neither clears nor re-protects) and
   * KVM_CLEAR_DIRTY_LOG (`dirtyclear`) clears and re-protects; `initiallySet` is
   * KVM_DIRTY_LOG_INITIALLY_SET (bit 1, only with bit 0): enabling dirty logging on a
   * slot sets every page of its bitmap and write-protects nothing.
   */
  dirtyLog: { manualProtect: boolean; initiallySet: boolean };
  /**
   * Bits of memslot generation kept in MMIO sptes (19 in v6.10; smaller reaches wrap).
   * Below 16 the core scales the spte's split too: the low field keeps half of the bits
   * (KVM's is 8 wide), so a wrong split shows at short generation distances. Only an
   * injected encoding bug can tell the difference; the reference does not model sptes.
   */
  mmioGenBits: number;
}

/** A deep-partial config as it may appear in a trace file (defaults fill the rest). */
export type ConfigInput = {
  [K in keyof Config]?: Config[K] extends object ? Partial<Config[K]> : Config[K];
};

export {
  ACCESS_KINDS,
  AREAS,
  CTL_FIELDS,
  FILTER_ALLOW,
  FILTER_DENY,
  OP_KINDS,
  OPS,
  SIZES,
  SLOT_FLAGS,
} from "./ops.ts";
export type {
  AccessKind,
  AccessOp,
  AgeOp,
  AnyOpSpec,
  Area,
  Codec,
  Cr3Op,
  CtlField,
  CtlOp,
  DirtyClearOp,
  DirtyLogOp,
  DiscardOp,
  EventsOp,
  Fields,
  FieldSpec,
  FilterOp,
  Flat,
  InvlpgOp,
  JsonRead,
  Op,
  OpKind,
  OpOf,
  OpRule,
  OpSpec,
  PmisOp,
  Problem,
  RdmsrOp,
  RdpmcOp,
  ReadOp,
  Shape,
  Simplifier,
  Size,
  SlotFlag,
  SlotOp,
  TextItem,
  ValueOf,
  WriteOp,
  WrmsrOp,
} from "./ops.ts";

/** The errno names an ioctl op may return (0 is success). */
export type Errno = 0 | "EINVAL" | "EEXIST" | "ENOENT" | "E2BIG" | "EFAULT" | "ENOMEM" | "EPERM";

/** `pf.code` bits (SDM vol. 3A 4.7; KVM PFERR_*). */
export interface PageFault {
  /** The error code: P (bit 0), W (1), U (2), RSVD (3), I/D (4). */
  code: number;
  /** CR2: the linear address that faulted. */
  cr2: bigint;
}

/** Pages `first` to `last`, both included: one run of a {@linkcode PageRuns}. */
export type PageRun = readonly [first: number, last: number];

/**
 * A set of pages (page i of a slot or an age range, where KVM's bitmap has bit i), as
 * runs sorted ascending that neither overlap nor touch (`[[3, 3], [7, 9]]` is pages 3,
 * 7, 8 and 9). Its size grows with the pages in it, never with a slot's size. Helpers and
 * the written forms are in `pages.ts`.
 */
export type PageRuns = readonly PageRun[];

/** The outcome of one op. Exactly one key is present. */
export type Outcome =
  | { errno: Errno }
  | { ok: true }
  | { value: bigint }
  | { mmio: { gpa: bigint; write: boolean } }
  | { pf: PageFault }
  | { gp: true }
  /** KVM_GET_DIRTY_LOG: the pages of the slot reported dirty. */
  | { bitmap: PageRuns }
  /** clear_young: the pages of the range reported young. */
  | { young: PageRuns }
  | { count: number }
  /** A backend threw: like a kernel oops, always a finding of kind `crash`. */
  | { crash: string };

/** The key of an {@linkcode Outcome}: which kind of result it is. */
export type OutcomeKind =
  | "errno"
  | "ok"
  | "value"
  | "mmio"
  | "pf"
  | "gp"
  | "bitmap"
  | "young"
  | "count"
  | "crash";

/**
 * One permitted outcome of an op, as the oracle judges it. For a `value` outcome
 * `dontCare` holds the bits that may take either value (an A bit that may or may not
 * have been set); for `bitmap` and `young` outcomes `dontCarePages` holds the pages that
 * may or may not be reported dirty or young.
 */
export interface Permitted {
  /** The outcome, with the don't-care bits or pages at any value. */
  outcome: Outcome;
  /** For a `value` outcome: the bits that may differ. */
  dontCare?: bigint;
  /** For a `bitmap` or `young` outcome: the pages that may or may not be in the set. */
  dontCarePages?: PageRuns;
  /** Why this outcome is permitted, for humans: "current walk", "stale until invlpg at op 7". */
  why: string;
}

/** A whole trace. */
export interface Trace {
  /** The format tag, {@linkcode TRACE_FORMAT}. */
  format: typeof TRACE_FORMAT;
  /** Why the trace exists or what it proves, for humans. */
  comment?: string;
  /** The machine it runs on, defaults filled in. */
  config: Config;
  /** The ops, run in order from a fresh machine. */
  ops: Op[];
}
