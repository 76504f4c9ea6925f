/**
 * @module
 * A finding's identity (docs/identity.md): its root cause as far as the tool can see it.
 * The signature is one line built from three parts, and the finding id is the first 16
 * hex digits of its SHA-256:
 *
 * - **where**: area, op kind and what kind of op it is (access kind and privilege, the
 *   MSR's register class, the RDPMC counter class), e.g. `mmu/access w user`;
 * - **the delta**, decoded: which outcome the backend gave against the permitted ones,
 *   in named terms that do not depend on the trace's values: #PF error-code bits, the
 *   PTE bits two values differ in, a dirty log that misses or over-reports pages, an
 *   MSR field, a counter that is truncated or counts more;
 * - **the path**: the backend's named events during the diverging op (the core's
 *   decisive shadow-MMU and vPMU events; the kvm backend's exits), the counterpart of
 *   the stack frames syzkaller builds crash titles from. Incidental events (rmap shapes,
 *   shadow-page allocation, prefetch) are left out: they depend on history, not on the
 *   bug.
 *
 * Invariant breaks are identified by the invariant with its numbers taken out, crashes
 * by the message with its numbers taken out and the throw site, both without the op
 * kind (one broken invariant or one throw is one finding whichever op met it).
 *
 * The title is the human sentence for the same divergence, with this trace's values.
 *
 * This module is the façade: the identity, the signature and its id, and the known
 * deviation that explains a divergence. The parts live in `identity_where.ts`,
 * `identity_delta.ts` (with `identity_values.ts`, the named bits), `identity_pmu.ts`
 * (the vPMU delta decoding), `identity_origin.ts` and `identity_probes.ts` (the probes
 * that rerun the trace prefix).
 */
import { createHash } from "node:crypto";
import type { BackendFactory, BackendName } from "../../src/backend.ts";
import { DEVIATIONS } from "../../src/core/deviations.ts";
import { type DiffOptions, diffTrace } from "../../src/diff.ts";
import type { Divergence } from "../../src/diff.ts";
import { annotateOp } from "../../src/trace/text.ts";
import { opArea } from "../../src/trace/ops.ts";
import type { Config, Trace } from "../../src/trace/types.ts";
import { delta } from "./identity_delta.ts";
import { originOf } from "./identity_origin.ts";
import { counterRead, isRefusedRdpmcRead, refusedRdpmcWhere } from "./identity_pmu.ts";
import { type Probes, wrongWriteOf } from "./identity_probes.ts";
import { where } from "./identity_where.ts";

export { pfecText, valueDelta } from "./identity_values.ts";
export { counterDelta } from "./identity_pmu.ts";
export { msrClass } from "./identity_where.ts";
export type { Probes } from "./identity_probes.ts";

/** A divergence's identity: the signature, its id, and a title for humans. */
export interface Identity {
  signature: string;
  id: string;
  title: string;
}

/** The area an op kind exercises (the op table's `area`, `src/trace/ops.ts`). */
export { opArea };

/** The finding id of a signature: the first 16 hex digits of its SHA-256. */
export function signatureId(signature: string): string {
  return createHash("sha256").update(signature).digest("hex").slice(0, 16);
}

/**
 * Core events that say how the core got somewhere rather than what it decided: they
 * vary with the trace's history (how many aliases an rmap has, whether a shadow page
 * already existed, which neighbours were prefetched), so they stay out of the path.
 * `bug-fired` is the injected-bug switch's own counter: a bug planted in the code by
 * hand has none, so identities must not depend on it.
 */
const INCIDENTAL: ReadonlySet<string> = new Set([
  "rmap-single",
  "rmap-desc",
  "rmap-desc-chain",
  "rmap-recycle",
  "parent-desc",
  "prefetch",
  "bug-fired",
  "zap-oldest",
  "zap-obsolete-batch",
  "sp-create-indirect",
  "sp-create-direct",
  "sp-lookup-hit",
  "sp-link",
  "walk-ad-update",
  "dirty-mark",
  "root-load",
  "pmu:reprogram",
  "pmu:reprogramResume",
  "pmu:reprogramCreate",
]);

/** The decisive events of a path, in the backend's order. */
export function decisivePath(path: readonly string[] | undefined): string[] {
  return (path ?? []).filter((e) => !INCIDENTAL.has(e));
}

/** A message with its numbers replaced, so that gfns, counts and values do not split it. */
export function messageTemplate(message: string): string {
  return message
    .replace(/0x[0-9a-f]+/gi, "0x#")
    .replace(/\b\d+\b/g, "#")
    .replace(/\s+/g, " ")
    .trim();
}

/**
 * The identity of a divergence found on `backend` under `config`. `deviation` is the
 * known deviation that explains it, if any ({@linkcode explainDeviation}): a divergence
 * a deviation explains and one with the same signature that it does not explain are
 * different findings (a planted bug can look exactly like a known deviation).
 */
export function identify(
  d: Divergence,
  backend: BackendName,
  config: Config,
  deviation?: string,
  probes?: Probes,
): Identity {
  const id = identifyBase(d, backend, config, probes);
  if (deviation === undefined) return id;
  const signature = `${id.signature} | deviation ${deviation}`;
  return { signature, id: signatureId(signature), title: id.title };
}

/**
 * The known deviations a divergence could be, in the order they are tried: those of
 * its area (the memslot area's divergences are the MMU's).
 */
function candidateDeviations(d: Divergence): string[] {
  const area = opArea(d.op.op) === "pmu" ? "pmu" : "mmu";
  return DEVIATIONS.filter((x) => x.area === area).map((x) => x.name);
}

/**
 * The known deviation that explains the divergence `d` of `trace` on the core, or
 * undefined: the first one whose correction alone (same injected bugs, same options)
 * makes the core agree up to and including the diverging op (docs/identity.md).
 */
export function explainDeviation(
  trace: Trace,
  d: Divergence,
  factory: BackendFactory,
  diff: DiffOptions = {},
): string | undefined {
  if (factory.name !== "core") return undefined;
  const explains = (fix: string[]) => {
    const r = diffTrace(trace, factory, { ...diff, fix, path: false });
    return r.divergence === null || r.divergence.index > d.index;
  };
  const names = candidateDeviations(d);
  for (const name of names) if (explains([name])) return name;
  // Two known deviations can compound (a counter written after it counted, whose
  // eventsel also has IN_TXCP: each correction alone leaves the PMI missing). Only when
  // every correction together explains it is the smallest pair searched for, so an
  // unexplained divergence costs one more run, not one per pair.
  if (names.length < 2 || !explains(names)) return undefined;
  for (let i = 0; i < names.length; i++) {
    for (let j = i + 1; j < names.length; j++) {
      if (explains([names[i]!, names[j]!])) return `${names[i]}+${names[j]}`;
    }
  }
  return names.join("+");
}

/** The whole identity of a divergence of `trace` on `factory`'s backend, deviation included. */
export function identifyTrace(
  trace: Trace,
  d: Divergence,
  factory: BackendFactory,
  diff: DiffOptions = {},
): Identity {
  return identify(d, factory.name, trace.config, explainDeviation(trace, d, factory, diff), {
    factory,
    trace,
    diff,
  });
}

function identifyBase(
  d: Divergence,
  backend: BackendName,
  config: Config,
  probes?: Probes,
): Identity {
  const area = opArea(d.op.op);
  const opText = annotateOp(d.op, config);
  let signature: string, title: string;
  if (d.kind === "crash") {
    const message = "crash" in d.observed ? d.observed.crash : "";
    const site = d.site === undefined ? "" : ` in ${d.site}`;
    signature = `crash: ${backend} ${messageTemplate(message)}${site}`;
    title = `${backend} crashed${site} at \`${opText}\`: ${message}`;
  } else if (d.kind === "invariant") {
    const inv = d.invariant ?? "unknown";
    signature = `invariant: ${backend} ${messageTemplate(inv)}`;
    title = `${backend} invariant broken after \`${opText}\`: ${inv}`;
  } else {
    const wrong = probes === undefined ? undefined : wrongWriteOf(d, config, probes);
    if (wrong !== undefined) {
      signature = `${area}/counter write ${wrong.counter.startsWith("fixed") ? "fixed" : "GP"}: ` +
        `${backend} holds ${wrong.delta} | after wrmsr ${wrong.writer}`;
      title = `${opText}: ${delta(d, backend, config).text} (after the last write, ${backend} ` +
        `0x${wrong.held.toString(16)}, architecture 0x${wrong.arch.toString(16)})`;
      return { signature, id: signatureId(signature), title };
    }
    const dl = delta(d, backend, config, probes);
    const counter = counterRead(d, config);
    // A counter's value is read the same wrong way through any of its aliases (PMCn,
    // A_PMCn, RDPMC; K7_PERFCTRn, F15H_PERF_CTRn), and reading it takes no decision but
    // the decoding: the read's own events are the deferred reprogramming's.
    // A refused RDPMC decides only how to decode ECX: the deferred reprogramming it
    // runs first (and what the filter says there) is the trace's history.
    const refused = isRefusedRdpmcRead(d) && d.op.op === "rdpmc";
    const path = decisivePath(d.path).filter((e) =>
      (counter === undefined || !e.startsWith("pmu:")) &&
      (!refused || !e.startsWith("pmu:reprogram"))
    );
    const from = originOf(d, config, probes);
    const at = refused && d.op.op === "rdpmc"
      ? refusedRdpmcWhere(d.op.ecx, config)
      : counter ?? where(d.op, config);
    signature = `${area}/${at}: ${dl.key}` +
      (path.length > 0 ? ` | path ${path.join(",")}` : "") +
      (from === undefined ? "" : ` | ${from}`);
    title = `${opText}: ${dl.text}`;
  }
  return { signature, id: signatureId(signature), title };
}

/**
 * The signature of a divergence without the deviation part (use
 * {@linkcode identifyTrace} for the whole identity of a core divergence).
 */
export function signatureOf(d: Divergence, backend: BackendName, config: Config): string {
  return identify(d, backend, config).signature;
}
