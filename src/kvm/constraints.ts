/**
 * @module
 * What a trace must leave alone to run on the kvm backend (README.md), as data the
 * fuzz generators can respect, plus the op kinds the backend cannot run at all. The
 * backend checks every op against these before running it and refuses a violating op
 * with a {@linkcode KvmConstraintError}; `supports(op)` reports the same reason first.
 */
import type { Config, Op } from "../trace/types.ts";
import { cString, libc } from "./libc.ts";
import * as L from "./layout.ts";

/** An op the kvm backend cannot run faithfully (a constraint violation or an unsupported op). */
export class KvmConstraintError extends RangeError {
  /** The error's name, as printed. */
  override name = "KvmConstraintError";
}

/** The constraints of the kvm backend for one config. */
export interface KvmTraceConstraints {
  /** Slot ids (address space 0) the agent owns: `slot` ops must not use them. */
  reservedSlotIds: number[];
  /** Guest-physical range of the agent: no slot may overlap it, no access may reach it. */
  reservedGpa: { start: bigint; end: bigint };
  /** PML4 indexes the backend owns in every page used as CR3 root. */
  reservedPml4Indexes: number[];
  /** Linear addresses at or above this (canonical, PML4 510-511) are the agent's. */
  reservedGvaStart: bigint;
  /** The bytes of the current root page the backend owns (PML4 entries 510 and 511). */
  rootReservedBytes: { offset: number; length: number };
  /** `write`/`read` gpas must lie below this (the direct map: min(512 GiB, 2^MAXPHYADDR)). */
  physLimit: bigint;
  /**
   * The host-virtual window the backend maps per VM. Slot hvas may lie anywhere: the
   * backend places them in the window in 1 GiB regions, keeping aliasing and alignment
   * (hva.ts); only a slot larger than the window, or one whose regions cannot stay
   * contiguous next to earlier slots' regions, is refused.
   */
  hvaWindow: { start: bigint; end: bigint };
  /** MSRs a `wrmsr` must not write (they would change the agent's environment). */
  forbiddenWrmsr: { start: number; end: number }[];
  /** Op kinds the backend never runs, with why (fetches run: README.md "Fetches"). */
  unsupported: Record<string, string>;
}

/** Why each unsupported op cannot run on real KVM from userspace. */
export const UNSUPPORTED: Readonly<Record<string, string>> = {
  age:
    "kvm: no userspace interface runs clear_young over a gpa range (page_idle is not built into this kernel)",
  events: "kvm: the agent cannot make an exact number of hardware events happen in the guest",
  pmis: "kvm: the agent does not count PMIs (no vPMU, no local APIC in this VM)",
};

/**
 * Behaviours of kvm_pvm (the KVM module of this machine kind) that differ from upstream
 * KVM and from the architecture, measured 2026-11-21; each has a trace in
 * corpus/kvm-pvm/ and a test (test/kvm_pvm_behaviour_test.ts) that pins it.
 */
export const KVM_PVM_DIFFERS: Readonly<Record<string, string>> = {
  "user upper half": "kvm_pvm: a CPL 3 access through PML4 entry 256 (gva 0xffff800000000000-" +
    "0xffff807fffffffff) faults (not present, or RSVD, varying between processes) " +
    "whatever the tables say; other upper-half entries behave as the architecture says " +
    "(probed 2026-11-21; corpus/kvm-pvm/user-upper-half.json)",
  "masked filter high event":
    "kvm_pvm: a masked event-filter entry using event-select bits 35:32 is EINVAL even on " +
    "an AMD guest (it validates with Intel's 8-bit event mask; " +
    "corpus/kvm-pvm/masked-filter-amd-event-bits.json)",
};

let pvm: boolean | undefined;

/**
 * Whether the kvm module here is kvm_pvm: /sys/module/kvm_pvm exists. Read through libc
 * (open with O_PATH|O_DIRECTORY), because Deno grants /sys paths only with
 * --allow-all; false without FFI permission or where /sys has no such module.
 */
export function isKvmPvm(): boolean {
  if (pvm === undefined) {
    try {
      const c = libc();
      // O_PATH 0o10000000 | O_DIRECTORY 0o200000 | O_CLOEXEC 0o2000000 (asm-generic/fcntl.h).
      const fd = c.open(
        cString("/sys/module/kvm_pvm"),
        0o10000000 | 0o200000 | 0o2000000,
        0,
      );
      pvm = fd >= 0;
      if (fd >= 0) c.close(fd);
    } catch {
      pvm = false;
    }
  }
  return pvm;
}

/**
 * The bits of a valid masked filter entry on AMD (api.rst KVM_PMU_ENCODE_MASKED_ENTRY):
 * event select 7:0 and 35:32, match 15:8, exclude 55, mask 63:56.
 */
const AMD_MASKED_VALID = 0xff80000f0000ffffn;

/** MSR ranges whose writes would break the agent (inclusive). */
const FORBIDDEN_WRMSR = [
  { start: 0x10, end: 0x10, why: "IA32_TIME_STAMP_COUNTER" },
  { start: 0x1b, end: 0x1b, why: "IA32_APIC_BASE" },
  { start: 0x1a0, end: 0x1a0, why: "IA32_MISC_ENABLE" },
  { start: 0x1d9, end: 0x1d9, why: "IA32_DEBUGCTL" },
  { start: 0x200, end: 0x2ff, why: "MTRRs and PAT" },
  { start: 0xc0000080, end: 0xc0000080, why: "EFER (use ctl nx=)" },
  { start: 0xc0010010, end: 0xc001001f, why: "AMD SYSCFG/HWCR/IORR/TOP_MEM" },
  { start: 0xc0010114, end: 0xc0010118, why: "AMD VM_CR/VM_HSAVE_PA" },
];

const cache = new WeakMap<Config, KvmTraceConstraints>();

/** The constraints for `config`. */
export function kvmTraceConstraints(config: Config): KvmTraceConstraints {
  const limit = 1n << BigInt(config.maxPhyAddr);
  return {
    reservedSlotIds: [...L.AGENT_SLOTS],
    reservedGpa: { start: L.AGENT_GPA, end: L.AGENT_GPA + L.AGENT_GPA_SIZE },
    reservedPml4Indexes: [L.DIRECT_PML4_INDEX, L.AGENT_PML4_INDEX],
    reservedGvaStart: L.DIRECT_GVA,
    rootReservedBytes: { offset: 8 * L.DIRECT_PML4_INDEX, length: 16 },
    physLimit: limit < L.DIRECT_MAP_LIMIT ? limit : L.DIRECT_MAP_LIMIT,
    hvaWindow: { start: L.HVA_WINDOW_START, end: L.HVA_WINDOW_END },
    forbiddenWrmsr: FORBIDDEN_WRMSR.map(({ start, end }) => ({ start, end })),
    unsupported: { ...UNSUPPORTED },
  };
}

function hex(v: bigint | number): string {
  return "0x" + v.toString(16);
}

/**
 * Whether KVM could accept a slot op as far as the backend can tell: one it rejects by
 * itself (SEMANTICS 9: unaligned, too large, beyond the gfn limit, a bad id, an hva
 * beyond the user address space) passes through unchanged, so that KVM, not the
 * backend, judges it (its hva is not placed in the window either).
 */
export function plausibleSlot(id: number, gpa: bigint, pages: number, hva: bigint): boolean {
  const size = BigInt(pages) * 4096n;
  return gpa % 4096n === 0n && pages <= 0x7fff_ffff && gpa + size <= 1n << 52n &&
    (id & 0xffff) < 32764 && id >>> 16 < 2 && hva % 4096n === 0n &&
    hva + size <= 0x7ffffffff000n;
}

/** Linear addresses of the agent (bits 63:47 all ones, PML4 index 510 or 511). */
function reservedGva(gva: bigint): boolean {
  return gva >= L.DIRECT_GVA;
}

/**
 * The reason `op` can never run on the kvm backend for `config`, whatever the state,
 * or null. State-dependent checks (the current root page, slot aliasing) live in the
 * backend.
 */
export function staticViolation(op: Op, config: Config, pvmDiffs = true): string | null {
  let c = cache.get(config);
  if (c === undefined) cache.set(config, c = kvmTraceConstraints(config));
  const agentSlot = (id: number) =>
    id >>> 16 === 0 && (L.AGENT_SLOTS as readonly number[]).includes(id & 0xffff);
  const inAgent = (gpa: bigint, end: bigint) =>
    gpa < c.reservedGpa.end && end > c.reservedGpa.start;
  switch (op.op) {
    case "access":
      if (reservedGva(op.gva)) {
        return `kvm: access at ${hex(op.gva)} uses PML4 index 510/511, which the agent owns`;
      }
      if (pvmDiffs && op.user && ((op.gva >> 39n) & 0x1ffn) === 256n && isKvmPvm()) {
        return KVM_PVM_DIFFERS["user upper half"]!;
      }
      return null;
    case "write":
    case "read":
      if (op.gpa + BigInt(op.size) > c.physLimit) {
        return `kvm: ${op.op} at ${hex(op.gpa)} is beyond the agent's direct map (${
          hex(c.physLimit)
        })`;
      }
      if (inAgent(op.gpa, op.gpa + BigInt(op.size))) {
        return `kvm: ${op.op} at ${hex(op.gpa)} hits the agent's reserved gpa range`;
      }
      return null;
    case "slot": {
      if (agentSlot(op.id)) return `kvm: slot ${op.id} is the agent's memslot`;
      if (op.pages === 0 || !plausibleSlot(op.id, op.gpa, op.pages, op.hva)) return null;
      const size = BigInt(op.pages) * 4096n;
      if (op.id >>> 16 === 0 && inAgent(op.gpa, op.gpa + size)) {
        return `kvm: slot ${op.id} at ${hex(op.gpa)} overlaps the agent's reserved gpa range`;
      }
      // Any hva is placed in the VM's window (hva.ts); a range larger than the window
      // cannot be.
      if (size > c.hvaWindow.end - c.hvaWindow.start) {
        return `kvm: slot ${op.id} (${hex(size)} bytes) is larger than the backend's hva window ` +
          `(${hex(c.hvaWindow.end - c.hvaWindow.start)} bytes)`;
      }
      return null;
    }
    case "dirtylog":
      return agentSlot(op.id) ? `kvm: slot ${op.id} is the agent's memslot` : null;
    case "wrmsr": {
      const bad = FORBIDDEN_WRMSR.find((r) => op.msr >= r.start && op.msr <= r.end);
      return bad ? `kvm: wrmsr ${hex(op.msr)} (${bad.why}) would break the agent` : null;
    }
    case "filter":
      // KVM_PMU_EVENT_FLAG_MASKED_EVENTS on an AMD guest, with an entry that is valid for
      // AMD's event mask only because of bits 35:32 (event select 11:8).
      if (
        pvmDiffs && config.vendor === "amd" && (op.flags & 1) !== 0 &&
        op.events.some((e) => (e & ~AMD_MASKED_VALID) === 0n && (e & 0xf00000000n) !== 0n) &&
        isKvmPvm()
      ) {
        return KVM_PVM_DIFFERS["masked filter high event"]!;
      }
      return null;
    case "age":
    case "events":
    case "pmis":
      return UNSUPPORTED[op.op]!;
    default:
      return null;
  }
}
