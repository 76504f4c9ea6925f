/**
 * @module
 * The delta part of a finding's signature (docs/identity.md): how the observed outcome
 * differs from the permitted ones, once value-free for the signature (#PF classes and
 * error-code bits, PTE flags, missed or extra dirty pages, counter deltas) and once
 * with this trace's values for the title. The façade is `identity.ts`.
 */
import type { BackendName, Permitted } from "../../src/backend.ts";
import type { Divergence } from "../../src/diff.ts";
import { outcomeKind } from "../../src/trace/outcome.ts";
import {
  formatPageList,
  minusPages,
  NO_PAGES,
  pageCount,
  xorPages,
} from "../../src/trace/pages.ts";
import type { Config, Op, Outcome, PageRuns } from "../../src/trace/types.ts";
import { pfecText, valueDelta } from "./identity_values.ts";
import {
  counterDelta,
  counterWidth,
  isRefusedRdpmcRead,
  isStatusRead,
  refusedRdpmcRead,
  refusedRdpmcWhere,
  statusDelta,
} from "./identity_pmu.ts";
import { counterValuesBefore, probedRefusedRead, type Probes } from "./identity_probes.ts";

/** How a value an op returns is compared: as memory, a counter or control bits. */
function valueKind(op: Op): "pte" | "ad" | "counter" | "bits" {
  if (op.op === "access") return "ad";
  if (op.op === "rdpmc") return "counter";
  if (op.op === "rdmsr") {
    // Counters (PMCn, A_PMCn, FIXED_CTRn, K7_PERFCTRn, F15H_PERF_CTRn) read as counts;
    // every other MSR as control bits.
    const m = op.msr;
    const counter = (m >= 0xc1 && m < 0xc9) || (m >= 0x4c1 && m < 0x4c9) ||
      (m >= 0x309 && m < 0x310) || (m >= 0xc0010004 && m < 0xc0010008) ||
      (m >= 0xc0010200 && m < 0xc0010210 && (m & 1) === 1);
    return counter ? "counter" : "bits";
  }
  return "pte";
}

/** The class of a #PF: not present, a reserved bit, or a protection fault (SDM 4.7). */
function faultClass(code: number): string {
  if ((code & 1) === 0) return "not-present";
  return (code & 8) !== 0 ? "reserved-bit" : "protection";
}

/**
 * An outcome's kind in the identity's words. For accesses the access kind and privilege
 * are left out (they are the fuzzer's choice, not the bug's): a load's value and a
 * store's success are both `translates`, and a #PF is named by its class.
 */
function kindText(o: Outcome, op: Op): string {
  if (op.op === "access") {
    if ("pf" in o) return `${faultClass(o.pf.code)} #PF`;
    if ("ok" in o || "value" in o) return "translates";
  }
  if ("pf" in o) return `#PF ${pfecText(o.pf.code)}`;
  if ("errno" in o) return `errno ${o.errno}`;
  if ("mmio" in o) return "mmio";
  return outcomeKind(o);
}

/** The permitted entry closest to `observed`: same kind first, then fewest bits apart. */
export function nearest(observed: Outcome, permitted: readonly Permitted[]): Permitted | undefined {
  const kind = outcomeKind(observed);
  const same = permitted.filter((p) => outcomeKind(p.outcome) === kind);
  if (same.length === 0) return permitted[0];
  let best = same[0]!, bestBits = Infinity;
  for (const p of same) {
    const bits = distance(observed, p);
    if (bits < bestBits) (best = p), (bestBits = bits);
  }
  return best;
}

function popcount(x: bigint): number {
  let n = 0;
  for (; x !== 0n; x &= x - 1n) n++;
  return n;
}

function distance(o: Outcome, p: Permitted): number {
  const care = ~(p.dontCare ?? 0n);
  const q = p.outcome;
  if ("value" in o && "value" in q) return popcount((o.value ^ q.value) & care);
  if ("bitmap" in o && "bitmap" in q) return pageDiff(o.bitmap, q.bitmap, p.dontCarePages);
  if ("young" in o && "young" in q) return pageDiff(o.young, q.young, p.dontCarePages);
  if ("pf" in o && "pf" in q) return popcount(BigInt(o.pf.code ^ q.pf.code));
  if ("count" in o && "count" in q) return Math.abs(o.count - q.count);
  return 0;
}

/** How many pages two page sets differ in, outside the don't-care pages. */
function pageDiff(a: PageRuns, b: PageRuns, dontCare: PageRuns = NO_PAGES): number {
  return pageCount(minusPages(xorPages(a, b), dontCare));
}

interface Delta {
  /** Value-free, for the signature. */
  key: string;
  /** With this trace's values, for the title. */
  text: string;
}

/** How the observed outcome differs from the permitted ones. */
export function delta(d: Divergence, backend: BackendName, config: Config, probes?: Probes): Delta {
  const o = d.observed;
  const kinds = [...new Set(d.permitted.map((p) => kindText(p.outcome, d.op)))].sort();
  const p = nearest(o, d.permitted);
  const arch = d.permitted.length === 1 ? "architecture" : "architecture permits";
  if (p === undefined) return { key: `${backend} ${kindText(o, d.op)}, none permitted`, text: "" };
  const q = p.outcome;
  const care = ~(p.dontCare ?? 0n);
  // An access the core served from a cached spte, where the architecture also
  // translates but elsewhere (another page, RAM against MMIO, either way): the cached
  // translation is stale, whatever the data or the exit shows (A/D-only differences
  // aside, which are a walk's, not a translation's).
  const hit = d.path?.includes("access-hit") === true || d.path?.includes("mmio-hit") === true;
  const translated = (x: Outcome) => "value" in x || "ok" in x || "mmio" in x;
  const adOnly = "value" in o && "value" in q && ((o.value ^ q.value) & care & ~0x60n) === 0n;
  if (
    d.op.op === "access" && hit && translated(o) && !adOnly &&
    d.permitted.every((x) => translated(x.outcome))
  ) {
    return {
      key: `${backend} serves a stale translation`,
      text: `${backend} ${outcomeText(o)}, ${arch} ${
        d.permitted.map((x) => outcomeText(x.outcome)).join(" or ")
      }`,
    };
  }
  if (isRefusedRdpmcRead(d) && "value" in o && d.op.op === "rdpmc") {
    const read = refusedRdpmcRead(d.op.ecx, o.value, counterValuesBefore(d, config), config);
    const decoded = probes === undefined
      ? undefined
      : probedRefusedRead(d, config, probes, refusedRdpmcWhere(d.op.ecx, config));
    return {
      key: `${backend} ${decoded ?? read.key}, architecture #GP`,
      text: `${backend} 0x${o.value.toString(16)}${read.text === "" ? "" : ` (${read.text})`}, ` +
        `${arch} #GP`,
    };
  }
  if ("value" in o && "value" in q) {
    const exp = (q.value & care) | (o.value & ~care);
    const kind = valueKind(d.op);
    const width = counterWidth(d.op, config);
    const named = isStatusRead(d.op, config)
      ? statusDelta(o.value, exp, config)
      : kind === "counter"
      ? counterDelta(o.value, exp, width ?? 64)
      : valueDelta(o.value, exp, kind);
    return {
      key: `${backend} value ${named}`,
      text: `${backend} 0x${o.value.toString(16)}, ${arch} 0x${exp.toString(16)}`,
    };
  }
  if (("bitmap" in o && "bitmap" in q) || ("young" in o && "young" in q)) {
    const [ob, qb, what] = "bitmap" in o && "bitmap" in q
      ? [o.bitmap, q.bitmap, "dirty"]
      : [(o as { young: PageRuns }).young, (q as { young: PageRuns }).young, "young"];
    const dontCare = p.dontCarePages ?? NO_PAGES;
    const missing = minusPages(minusPages(qb, ob), dontCare);
    const extra = minusPages(minusPages(ob, qb), dontCare);
    const m = pageCount(missing), x = pageCount(extra);
    const key = [m > 0 ? `misses ${what} pages` : "", x > 0 ? `extra ${what} pages` : ""]
      .filter((t) => t !== "").join(" and ");
    const text = [
      m > 0 ? `${backend} misses ${what} page${m > 1 ? "s" : ""} ${formatPageList(missing)}` : "",
      x > 0 ? `${backend} reports page${x > 1 ? "s" : ""} ${formatPageList(extra)} ${what}` : "",
    ].filter((t) => t !== "").join(", ");
    return { key: `${backend} ${key}`, text };
  }
  if ("pf" in o && "pf" in q) {
    const cr2 = o.pf.cr2 !== q.pf.cr2 ? " (other cr2)" : "";
    const oc = faultClass(o.pf.code), qc = faultClass(q.pf.code);
    const key = oc !== qc
      ? `${backend} ${oc} #PF, architecture ${qc} #PF${cr2}`
      : `${backend} #PF, architecture #PF: ${pfecText(o.pf.code ^ q.pf.code)} differ${cr2}`;
    return {
      key,
      text: `${backend} #PF 0x${o.pf.code.toString(16)} (${pfecText(o.pf.code)}), ${arch} #PF ` +
        `0x${q.pf.code.toString(16)} (${pfecText(q.pf.code)})${cr2}`,
    };
  }
  if ("count" in o && "count" in q) {
    return {
      key: `${backend} counts ${o.count > q.count ? "more" : "fewer"}`,
      text: `${backend} ${o.count}, ${arch} ${q.count}`,
    };
  }
  if ("mmio" in o && "mmio" in q) {
    return {
      key: `${backend} mmio at another gpa`,
      text: `${backend} MMIO at 0x${o.mmio.gpa.toString(16)}, ${arch} 0x${q.mmio.gpa.toString(16)}`,
    };
  }
  const archText = kinds.join(" or ");
  return {
    key: `${backend} ${kindText(o, d.op)}, architecture ${archText}`,
    text: `${backend} ${outcomeText(o)}, ${arch} ${
      d.permitted.map((p) => outcomeText(p.outcome)).join(" or ")
    }`,
  };
}

function outcomeText(o: Outcome): string {
  if ("gp" in o) return "#GP";
  if ("pf" in o) return `#PF 0x${o.pf.code.toString(16)} (${pfecText(o.pf.code)})`;
  if ("mmio" in o) return `MMIO at 0x${o.mmio.gpa.toString(16)}`;
  if ("value" in o) return `0x${o.value.toString(16)}`;
  if ("errno" in o) return o.errno === 0 ? "success" : o.errno;
  if ("count" in o) return `${o.count}`;
  if ("crash" in o) return "a crash";
  return outcomeKind(o);
}
