/**
 * @module
 * The "where" part of a finding's signature (docs/identity.md): what kind of op
 * diverged, with no addresses or values: the MSR's register class (and whether its
 * counter exists), the counter class RDPMC's ECX selects. The façade is `identity.ts`.
 */
import { msrName } from "../../src/x86/decode.ts";
import { INTEL_RDPMC_INDEX_MASK } from "../../src/x86/pmu.ts";
import type { Config, Op } from "../../src/trace/types.ts";

/**
 * The register class of an MSR: its name (`src/x86/decode.ts`) with the counter index
 * left out (`PMC`, `PERFEVTSEL`, `K7_PERFCTR`, `PERF_GLOBAL_CTRL`), or the number for an
 * MSR the decoder does not name.
 */
export function msrClass(msr: number, vendor: Config["vendor"]): string {
  const name = msrName(msr);
  return name === null ? `${vendor} MSR 0x${msr.toString(16)}` : name.replace(/\d+$/, "");
}

/**
 * The counter class RDPMC's ECX selects, as the decoding rules see it: on Intel the
 * type in ECX[31:16] (0 GP, 0x4000 fixed, bit 31 the legacy "fast" flag, bit 29 the
 * metrics type; any other bit of 31:16 an unknown type) and whether ECX[15:0] is below
 * the count of that type (SDM vol. 2B RDPMC; KVM intel_rdpmc_ecx_to_pmc); on AMD the
 * whole ECX is the index, and bits 31:30 set are named (APM vol. 3 RDPMC; KVM
 * amd_rdpmc_ecx_to_pmc).
 */
function rdpmcClass(ecx: number, config: Config): string {
  ecx >>>= 0;
  if (config.vendor === "amd") {
    const high = ecx >>> 30;
    const index = ecx & 0x3fffffff;
    return `AMD ${high === 0 ? "" : `bits 31:30=${high} `}` +
      (index < config.pmu.gp ? "index in range" : "index out of range");
  }
  const type = ecx >>> 16;
  const index = ecx & INTEL_RDPMC_INDEX_MASK;
  const parts: string[] = [];
  if ((type & 0x8000) !== 0) parts.push("fast");
  if ((type & 0x4000) !== 0) parts.push("fixed");
  if ((type & 0x2000) !== 0) parts.push("metrics");
  if ((type & 0x1fff) !== 0) parts.push("unknown type");
  const fixed = (type & 0x4000) !== 0;
  const count = fixed ? config.pmu.fixed : config.pmu.gp;
  return `${parts.length === 0 ? "GP" : parts.join(" ")} ` +
    (index < count ? "index in range" : "index out of range");
}

/** MSR counter/eventsel classes past the vCPU's counters are named `(absent)`. */
function msrWhere(msr: number, config: Config): string {
  const cls = msrClass(msr, config.vendor);
  const gp = config.pmu.gp, fixed = config.pmu.fixed;
  const index: Record<string, [number, number]> = {
    PMC: [0xc1, gp],
    A_PMC: [0x4c1, gp],
    PERFEVTSEL: [0x186, gp],
    FIXED_CTR: [0x309, fixed],
    K7_EVNTSEL: [0xc0010000, Math.min(gp, 4)],
    K7_PERFCTR: [0xc0010004, Math.min(gp, 4)],
  };
  const r = index[cls];
  if (r !== undefined && msr - r[0] >= r[1]) return `${cls} (absent)`;
  if (cls.startsWith("F15H") && Math.floor((msr - 0xc0010200) / 2) >= gp) return `${cls} (absent)`;
  return cls;
}

/** What kind of op it is, in the identity's words (no addresses or values). */
export function where(op: Op, config: Config): string {
  switch (op.op) {
    case "access":
      return "access";
    case "wrmsr":
    case "rdmsr":
      return `${op.op} ${msrWhere(op.msr, config)}`;
    case "rdpmc":
      return `rdpmc ${rdpmcClass(op.ecx, config)}`;
    case "write":
    case "read":
      return op.op;
    default:
      return op.op;
  }
}
