/**
 * @module
 * The value rules of the trace format (docs/trace-format.md), shared by the JSON parser
 * (`parse.ts`) and the text parser (`text.ts`) so that both accept exactly the same ops.
 * The parsers check syntax and types; the rules here check ranges and cross-field
 * constraints on values that already have the right types, and report the first broken
 * rule as a {@linkcode Problem} that each parser words in its own terms (a JSON field,
 * or a text token).
 */
import { hex, U64_MAX } from "./_hex.ts";
import { pageRunsProblem } from "./pages.ts";
import type { AccessKind, Config, Errno, Op, Outcome, SlotFlag } from "./types.ts";

/** One broken rule: the field it concerns (if one), what is wrong, and the error class. */
export interface Problem {
  /** A field name (`gpa`), an element (`events[3]`) or a config path (`pmu.gp`). */
  field?: string;
  /** Follows the field name: `is out of range: must be ...`. Without a field, a sentence. */
  detail: string;
  error: typeof TypeError | typeof RangeError;
}

/** Guest pages are 4 KiB; an op never crosses one (docs/trace-format.md). */
export const PAGE_SIZE = 4096;
/** Largest u32 (uAPI `slot`, MSR index, RDPMC ECX, filter fields). */
export const U32_MAX = 0xffff_ffff;
/**
 * Direct-map loads and stores take a gpa below 2^52, the architectural MAXPHYADDR limit
 * (SDM vol. 3A 4.1.4).
 */
export const GPA_LIMIT = 1n << 52n;
/** A memslot may hold up to 2^40 pages (4 PiB): room for huge layouts, still a safe integer. */
export const SLOT_PAGES_MAX = 2 ** 40;
/** `discard` and `age` cover at most 2^20 pages (4 GiB) so that one op stays cheap. */
export const RANGE_PAGES_MAX = 2 ** 20;
/**
 * At most 1000 filter events per op. KVM itself rejects more than
 * KVM_PMU_EVENT_FILTER_MAX_EVENTS = 300 with E2BIG (arch/x86/kvm/pmu.c), so the format
 * leaves room to reach that path while keeping one op bounded.
 */
export const FILTER_EVENTS_MAX = 1000;
/**
 * AMD event selects have 12 bits: EventSelect[11:8] sit in PerfEvtSel bits 35:32 (APM
 * vol. 2 13.2.1).
 */
export const EVENT_MAX = 0xfff;
export const UMASK_MAX = 0xff;

export const SIZES: readonly number[] = [1, 2, 4, 8];
export const ACCESS_KINDS: readonly AccessKind[] = ["read", "write", "fetch"];
/** Memslot flags in canonical order. */
export const SLOT_FLAGS: readonly SlotFlag[] = ["log", "ro"];
/** `ctl` fields in canonical order. */
export const CTL_FIELDS = ["wp", "smep", "smap", "nx", "ac", "pce"] as const;
export type CtlField = typeof CTL_FIELDS[number];
/** The errno names of {@linkcode Errno} (types.ts holds the type only). */
export const ERRNO_NAMES: readonly Exclude<Errno, 0>[] = [
  "EINVAL",
  "EEXIST",
  "ENOENT",
  "E2BIG",
  "EFAULT",
  "ENOMEM",
  "EPERM",
];

/** The first broken rule of a typed op, or `undefined` if the op is valid. */
export function checkOp(op: Op): Problem | undefined {
  switch (op.op) {
    case "slot":
      return intIn("id", op.id, 0, U32_MAX) ?? u64("gpa", op.gpa) ?? u64("hva", op.hva) ??
        intIn("pages", op.pages, 0, SLOT_PAGES_MAX) ?? slotFlags(op.flags);
    case "write":
      return directGpa(op.gpa) ?? size(op.size) ?? inPage("gpa", op.gpa, op.size) ??
        u64("value", op.value);
    case "read":
      return directGpa(op.gpa) ?? size(op.size) ?? inPage("gpa", op.gpa, op.size);
    case "access":
      return u64("gva", op.gva) ?? size(op.size) ?? inPage("gva", op.gva, op.size) ??
        accessValue(op.kind, op.value);
    case "invlpg":
      return u64("gva", op.gva);
    case "cr3":
      return u64("gpa", op.gpa);
    case "ctl":
      return CTL_FIELDS.some((f) => op[f] !== undefined) ? undefined : {
        detail: `ctl needs at least one of ${CTL_FIELDS.join(", ")}`,
        error: TypeError,
      };
    case "discard":
      return u64("hva", op.hva) ?? intIn("pages", op.pages, 1, RANGE_PAGES_MAX);
    case "dirtylog":
      return intIn("id", op.id, 0, U32_MAX);
    case "age":
      return u64("gpa", op.gpa) ?? intIn("pages", op.pages, 1, RANGE_PAGES_MAX);
    case "wrmsr":
      return intIn("msr", op.msr, 0, U32_MAX, true) ?? u64("value", op.value);
    case "rdmsr":
      return intIn("msr", op.msr, 0, U32_MAX, true);
    case "rdpmc":
      return intIn("ecx", op.ecx, 0, U32_MAX, true);
    case "filter":
      return intIn("action", op.action, 0, U32_MAX) ??
        intIn("flags", op.flags, 0, U32_MAX, true) ??
        intIn("fixed", op.fixed, 0, U32_MAX, true) ?? filterEvents(op.events);
    case "events":
      return intIn("event", op.event, 0, EVENT_MAX, true) ??
        intIn("umask", op.umask, 0, UMASK_MAX, true) ?? intIn("count", op.count, 0, U32_MAX);
    case "pmis":
      return undefined;
  }
}

/**
 * The first broken rule of a merged config, or `undefined`. Field types are the
 * parser's job; this checks ranges and the vendor and vPMU constraints:
 * - `pmu.version` 0 means no vPMU, so it requires `gp: 0` and `fixed: 0` (a config
 *   that says "no PMU" yet lists counters is contradictory, so it is rejected rather
 *   than silently zeroed);
 * - Intel: at most 8 GP and 3 fixed counters, fixed counters only with version 2
 *   (architectural PMU v2 introduced them; SDM vol. 3B 20.2.2), widths 32..48 bits;
 * - AMD: 4 legacy or 6 PerfCtrExtCore GP counters (APM vol. 2 13.2), no fixed
 *   counters, 48-bit counters.
 */
export function checkConfig(config: Config): Problem | undefined {
  const { pmu } = config;
  const basic = oneOf("vendor", config.vendor, ["intel", "amd"]) ??
    intIn("maxPhyAddr", config.maxPhyAddr, 36, 52) ??
    intIn("mmioGenBits", config.mmioGenBits, 2, 19) ??
    oneOf("pmu.version", pmu.version, [0, 1, 2]) ??
    intIn("pmu.gp", pmu.gp, 0, 8) ?? intIn("pmu.fixed", pmu.fixed, 0, 3) ??
    intIn("pmu.gpWidth", pmu.gpWidth, 32, 48) ?? intIn("pmu.fixedWidth", pmu.fixedWidth, 32, 48);
  if (basic) return basic;
  if (pmu.version === 0 && pmu.gp !== 0) {
    return rule("pmu.gp", "must be 0 when pmu.version is 0 (no vPMU)");
  }
  if (pmu.version === 0 && pmu.fixed !== 0) {
    return rule("pmu.fixed", "must be 0 when pmu.version is 0 (no vPMU)");
  }
  if (config.vendor === "intel") {
    if (pmu.version !== 2 && pmu.fixed !== 0) {
      return rule("pmu.fixed", "must be 0 unless pmu.version is 2 (fixed counters came with v2)");
    }
    return undefined;
  }
  if (pmu.tsx) return rule("pmu.tsx", "must be false on amd (IN_TX is an Intel eventsel bit)");
  if (![0, 4, 6].includes(pmu.gp)) return rule("pmu.gp", "must be 0, 4 or 6 on amd");
  if (pmu.fixed !== 0) return rule("pmu.fixed", "must be 0 on amd (no fixed counters)");
  if (pmu.gpWidth !== 48) return rule("pmu.gpWidth", "must be 48 on amd");
  if (pmu.fixedWidth !== 48) return rule("pmu.fixedWidth", "must be 48 on amd");
  return undefined;
}

function rule(field: string, detail: string): Problem {
  return { field, detail, error: RangeError };
}

/** `value` must be an integer in [min, max]; `hexBounds` words the bounds in hex. */
function intIn(
  field: string,
  value: number,
  min: number,
  max: number,
  hexBounds = false,
): Problem | undefined {
  if (Number.isInteger(value) && value >= min && value <= max) return undefined;
  const [lo, hi] = hexBounds ? [hex(min), hex(max)] : [String(min), String(max)];
  return rule(field, `is out of range: must be an integer from ${lo} to ${hi}`);
}

function oneOf<T>(field: string, value: T, allowed: readonly T[]): Problem | undefined {
  if (allowed.includes(value)) return undefined;
  const words = allowed.map((a) => JSON.stringify(a));
  return rule(
    field,
    `is out of range: must be ${words.slice(0, -1).join(", ")} or ${words.at(-1)}`,
  );
}

function u64(field: string, value: bigint): Problem | undefined {
  return value >= 0n && value <= U64_MAX ? undefined : rule(field, "is not a 64-bit value");
}

function directGpa(gpa: bigint): Problem | undefined {
  if (gpa >= 0n && gpa < GPA_LIMIT) return undefined;
  return rule("gpa", `is out of range: must be below ${hex(GPA_LIMIT)}`);
}

function size(value: number): Problem | undefined {
  return oneOf("size", value, SIZES);
}

function inPage(field: string, address: bigint, bytes: number): Problem | undefined {
  const offset = Number(address & BigInt(PAGE_SIZE - 1));
  if (address >= 0n && address <= U64_MAX && offset + bytes <= PAGE_SIZE) return undefined;
  return rule(
    field,
    `crosses a page boundary: offset ${hex(offset)} + size ${bytes} > ${PAGE_SIZE}`,
  );
}

function accessValue(kind: AccessKind, value: bigint | undefined): Problem | undefined {
  const problem = oneOf("kind", kind, ACCESS_KINDS);
  if (problem) return problem;
  if (kind === "write" && value === undefined) {
    return {
      field: "value",
      detail: 'is missing: an access of kind "write" needs one',
      error: TypeError,
    };
  }
  if (kind !== "write" && value !== undefined) {
    return {
      field: "value",
      detail: 'is not allowed: only an access of kind "write" has a value',
      error: TypeError,
    };
  }
  return value === undefined ? undefined : u64("value", value);
}

function slotFlags(flags: readonly SlotFlag[]): Problem | undefined {
  for (const [i, flag] of flags.entries()) {
    const problem = oneOf(`flags[${i}]`, flag, SLOT_FLAGS);
    if (problem) return problem;
    if (flags.indexOf(flag) !== i) return rule(`flags[${i}]`, `repeats "${flag}"`);
  }
  return undefined;
}

function filterEvents(events: readonly bigint[]): Problem | undefined {
  if (events.length > FILTER_EVENTS_MAX) {
    return rule("events", `has ${events.length} entries: at most ${FILTER_EVENTS_MAX} allowed`);
  }
  for (const [i, event] of events.entries()) {
    const problem = u64(`events[${i}]`, event);
    if (problem) return problem;
  }
  return undefined;
}

/** A page set must be canonical (`pages.ts`): the parsers build it so, this guards the rest. */
function pageSet(field: string, runs: unknown): Problem | undefined {
  const detail = pageRunsProblem(runs);
  return detail === undefined ? undefined : rule(field, detail);
}

/** Page-fault error codes are 32 bits wide (the #PF error code pushed in long mode). */
export const PF_CODE_MAX = U32_MAX;

/** The first broken rule of a typed outcome, or `undefined`. */
export function checkOutcome(outcome: Outcome): Problem | undefined {
  if ("errno" in outcome) {
    return outcome.errno === 0 ? undefined : oneOf("errno", outcome.errno, ERRNO_NAMES);
  }
  if ("value" in outcome) return u64("value", outcome.value);
  if ("bitmap" in outcome) return pageSet("bitmap", outcome.bitmap);
  if ("young" in outcome) return pageSet("young", outcome.young);
  if ("mmio" in outcome) return u64("mmio.gpa", outcome.mmio.gpa);
  if ("pf" in outcome) {
    return intIn("pf.code", outcome.pf.code, 0, PF_CODE_MAX, true) ?? u64("pf.cr2", outcome.pf.cr2);
  }
  if ("count" in outcome) return intIn("count", outcome.count, 0, Number.MAX_SAFE_INTEGER);
  return undefined;
}
