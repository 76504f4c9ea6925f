/**
 * @module
 * Standalone reproducers: a trace or a finding as one C file that runs it on /dev/kvm
 * and judges each op against the reference's permitted outcomes, embedded as data
 * (`--format c`), or the same as a KVM selftest (`--format selftest`). `plan.ts` computes
 * what is embedded, `c.ts` writes it, `c_runtime.ts` is the C engine (a port of the kvm
 * backend's host side around the repo's own guest agent).
 */
import type { Finding } from "../corpus/types.ts";
import type { Divergence } from "../diff.ts";
import { KvmBackend } from "../kvm/backend.ts";
import { kvmConfigMismatch } from "../kvm/capabilities.ts";
import { kvmUnavailable } from "../kvm/vm.ts";
import { outcomeFromJson } from "../trace/json.ts";
import { traceFromJson } from "../trace/parse.ts";
import type { Trace } from "../trace/types.ts";
import { emitC, type ExportFormat, type ExportMeta } from "./c.ts";
import {
  configNeeds,
  type ExportPlan,
  type PlanBackend,
  planExport,
  type PlanOptions,
} from "./plan.ts";

export { cString, emitC } from "./c.ts";
export type { ExportFormat, ExportMeta } from "./c.ts";
export { configNeeds, dependsOn, ExportRefusal, planExport } from "./plan.ts";
export type {
  ConfigNeeds,
  ExportDivergence,
  ExportPlan,
  PlannedOp,
  PlanOptions,
  SkippedOp,
} from "./plan.ts";

export interface ExportOptions {
  format: ExportFormat;
  /** Leave out ops the kvm backend cannot run (as diff does) instead of refusing them. */
  skipUnsupported?: boolean;
  /** Run the trace on the kvm backend at export time where possible (default true). */
  kvm?: boolean;
  /** The signature of a divergence (fuzz/campaign/identity.ts `signatureOf` for kvm). */
  signature?: (d: Divergence, trace: Trace) => string;
  /** For the header comment: the command that wrote the file. */
  command?: string;
}

export interface ExportResult {
  text: string;
  plan: ExportPlan;
}

/** Whether Deno grants FFI without asking (querying never prompts). */
function ffiGranted(): boolean {
  try {
    return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch {
    return false;
  }
}

/** A kvm backend for the export-time run, or why there is none. */
function exportKvm(trace: Trace, wanted: boolean): PlanBackend | { absent: string } {
  if (!wanted) return { absent: "not asked for (--no-kvm)" };
  if (!ffiGranted()) return { absent: "Deno FFI not permitted" };
  const why = kvmUnavailable();
  if (why !== null) return { absent: why };
  // A field this host cannot provide matters only if the trace depends on it.
  const needs = configNeeds(trace);
  const m = kvmConfigMismatch(trace.config);
  const mismatch = (needs.gbPages ? m.gbPages : undefined) ?? (needs.pmu ? m.pmu : undefined);
  if (mismatch !== undefined) return { absent: mismatch };
  return new KvmBackend(trace.config, { reuse: false });
}

/**
 * Exports `trace`; `recorded` is a finding's recorded kvm divergence of this trace (used
 * where kvm cannot run at export time). Throws {@linkcode ExportRefusal} for an op the
 * kvm backend cannot run (unless `skipUnsupported`).
 */
export function exportTrace(
  trace: Trace,
  meta: ExportMeta,
  options: ExportOptions,
  recorded?: PlanOptions["recorded"],
): ExportResult {
  const kvm = exportKvm(trace, options.kvm ?? true);
  const signature = options.signature;
  const plan = planExport(trace, {
    skipUnsupported: options.skipUnsupported ?? false,
    kvm,
    pvmDiffs: ffiGranted(),
    ...(recorded === undefined ? {} : { recorded }),
    ...(signature === undefined ? {} : { signature: (d: Divergence) => signature(d, trace) }),
  });
  return {
    text: emitC(
      plan,
      { ...meta, ...(options.command ? { command: options.command } : {}) },
      options.format,
    ),
    plan,
  };
}

/** Which of a finding's traces to export. */
export type FindingTrace = "minimized" | "full";

/** Exports one of a finding's traces (replay's words: its id, signature and title). */
export function exportFinding(
  finding: Finding,
  which: FindingTrace,
  options: ExportOptions,
): ExportResult {
  const trace = traceFromJson(which === "minimized" ? finding.minimized : finding.trace);
  // The recorded outcome is kvm's only on a kvm finding, and it belongs to the minimized trace.
  const recorded = which === "minimized" && finding.divergence.backend === "kvm"
    ? { index: finding.divergence.opIndex, observed: outcomeFromJson(finding.divergence.observed) }
    : undefined;
  return exportTrace(
    trace,
    {
      label: `${which} trace`,
      source: `finding ${finding.id}`,
      findingId: finding.id,
      findingSignature: finding.signature,
      title: finding.title,
    },
    options,
    recorded,
  );
}
