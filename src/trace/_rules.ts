/**
 * @module
 * The value rules of the trace format (docs/trace-format.md), shared by the JSON parser
 * (`parse.ts`) and the text parser (`text.ts`) so that both accept exactly the same
 * values. The parsers check syntax and types; the rules check ranges and cross-field
 * constraints on values that already have the right types, and report the first broken
 * rule as a {@linkcode Problem} that each parser words in its own terms (a JSON field,
 * or a text token). The ops' rules are declared in the op table (`ops.ts`, `checkOp`);
 * this module holds the config's and the outcomes'.
 */
import { intIn, oneOf, type Problem, rule, u64Rule as u64 } from "./_fields.ts";
import { pageRunsProblem } from "./pages.ts";
import type { Config, Errno, Outcome } from "./types.ts";

export type { Problem } from "./_fields.ts";
export {
  ACCESS_KINDS,
  checkOp,
  CTL_FIELDS,
  type CtlField,
  EVENT_MAX,
  FILTER_EVENTS_MAX,
  GPA_LIMIT,
  normalizeOp,
  PAGE_SIZE,
  RANGE_PAGES_MAX,
  SIZES,
  SLOT_FLAGS,
  SLOT_PAGES_MAX,
  U32_MAX,
  UMASK_MAX,
} from "./ops.ts";
import { U32_MAX } from "./ops.ts";

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

/**
 * The first broken rule of a merged config, or `undefined`. Field types are the
 * parser's job; this checks ranges and the vendor and vPMU constraints:
 * - `pmu.version` 0 means no vPMU, so it requires `gp: 0` and `fixed: 0` (a config
 *   that says "no PMU" yet lists counters is contradictory, so it is rejected rather
 *   than silently zeroed);
 * - Intel: at most 8 GP and 3 fixed counters, fixed counters only with version 2
 *   (architectural PMU v2 introduced them; SDM vol. 3B 20.2.2), widths 32..48 bits;
 * - AMD: 4 legacy or 6 PerfCtrExtCore GP counters (APM vol. 2 13.2), no fixed
 *   counters, 48-bit counters;
 * - `dirtyLog.initiallySet` only with `dirtyLog.manualProtect`.
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
  // kvm_vm_ioctl_enable_cap_generic (kvm_main.c): KVM_DIRTY_LOG_INITIALLY_SET is an
  // allowed option only together with KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE (else EINVAL).
  if (config.dirtyLog.initiallySet && !config.dirtyLog.manualProtect) {
    return rule("dirtyLog.initiallySet", "must be false unless dirtyLog.manualProtect is true");
  }
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
