/**
 * @module
 * shadowfuzz: differential fuzzing of the KVM x86 MMU and vPMU. The public library API:
 * the trace format (types, JSON and text forms), the backends, the diff runner.
 *
 * @example
 * ```ts
 * import { diffTrace, parseOp, referenceFactory } from "./mod.ts";
 * console.assert(parseOp("access r 0x400000").op === "access");
 * console.assert(typeof diffTrace === "function" && referenceFactory.name === "reference");
 * ```
 */
export * from "./src/trace/types.ts";
export { defaultConfig, kvmPvmConfig, mergeConfig } from "./src/trace/config.ts";
export { parseConfig, parseOpJson, parseTrace, traceFromJson } from "./src/trace/parse.ts";
export {
  configToJson,
  formatTrace,
  opToJson,
  outcomeFromJson,
  outcomeToJson,
  permittedToJson,
  traceToJson,
} from "./src/trace/json.ts";
export {
  formatOp,
  formatOutcome,
  formatPermitted,
  parseOp,
  parseOutcome,
} from "./src/trace/text.ts";
export { findMatch, matchesPermitted, outcomeKind, outcomesEqual } from "./src/trace/outcome.ts";
export type {
  Backend,
  BackendFactory,
  BackendName,
  BackendOptions,
  FindingKind,
  Judgement,
  Oracle,
  Skipped,
  StepResult,
} from "./src/backend.ts";
export { ReferenceBackend, referenceFactory, type ReferenceOptions } from "./src/reference/mod.ts";
export { BACKEND_NAMES, backendFactory, BACKENDS } from "./src/backends.ts";
export { FINDING_KINDS } from "./src/backend.ts";
export {
  type DiffOptions,
  type DiffResult,
  diffTrace,
  type Divergence,
  type HistoryEntry,
} from "./src/diff.ts";
