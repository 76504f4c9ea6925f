/**
 * @module
 * Turns the JSON stored in a finding (ops, outcomes, permitted sets, config) into the
 * one-line text form of `src/trace/text.ts`, which the console and the corpus use too.
 * A finding written by an older or broken harness may hold JSON that no longer parses:
 * that entry is shown as its raw JSON with the parser's error, never dropped.
 *
 * Ops and outcomes are shown decoded for humans (`annotateOp`, `annotateOutcome` and
 * `annotatePermitted` of `src/trace/text.ts`, with the names of `src/x86/decode.ts`):
 * #PF error codes and event selects by bit name, MSRs by name, 8-byte page-table stores
 * and loads as PTE fields, bitmaps as page lists. The parseable text form stays
 * available as `plain` (a tooltip on the page).
 *
 * Only the ops a page shows are parsed and formatted (`opLine`), so a 100,000-op trace
 * costs what its visible ops cost.
 */
import { parseConfig, parseOpJson } from "../trace/parse.ts";
import { outcomeFromJson, permittedFromJson } from "../trace/json.ts";
import {
  annotateOp,
  annotateOutcome,
  annotatePermitted,
  formatOp,
  formatOutcome,
  formatPages,
} from "../trace/text.ts";
import type { Config, Op } from "../trace/types.ts";

/** A displayed value: its text form, or its raw JSON and why it did not parse. */
export interface Shown {
  /** The decoded text (or the raw JSON when it does not parse). */
  text: string;
  /** The parseable text form, when it differs from `text`. */
  plain?: string;
  error?: string;
}

/** One row of a permitted set. */
export interface PermittedRow {
  outcome: Shown;
  /**
   * Bits that may take either value, as hex, or pages that may or may not be reported
   * (`pages 5-6`); absent when none.
   */
  dontCare?: string;
  why: string;
}

/** The ops array of a trace in JSON form (an object with an `ops` array), or none. */
export function traceOps(trace: unknown): readonly unknown[] {
  const ops = (trace as { ops?: unknown } | null)?.ops;
  return Array.isArray(ops) ? ops : [];
}

/** The config of a trace in JSON form, or `undefined` when it does not parse. */
export function traceConfig(trace: unknown): Config | undefined {
  try {
    return parseConfig((trace as { config?: unknown } | null)?.config ?? {});
  } catch {
    return undefined;
  }
}

/** Op `index` of a trace's ops (JSON form), or `undefined` when it does not parse. */
export function parsedOp(ops: readonly unknown[], index: number): Op | undefined {
  if (!Number.isSafeInteger(index) || index < 0 || index >= ops.length) return undefined;
  try {
    return parseOpJson(ops[index], index);
  } catch {
    return undefined;
  }
}

/** Op `index` of a trace's ops (JSON form) as its line, decoded under `config`. */
export function opLine(json: unknown, index: number, config?: Config): Shown {
  let op: Op;
  try {
    op = parseOpJson(json, index);
  } catch (e) {
    return { text: rawJson(json), error: message(e) };
  }
  return decoded(formatOp(op), () => annotateOp(op, config));
}

/** Every op line of a trace in JSON form; for short traces only (tests, small pages). */
export function opLines(trace: unknown): Shown[] {
  const config = traceConfig(trace);
  return traceOps(trace).map((json, i) => opLine(json, i, config));
}

/**
 * An outcome in JSON form as text, decoded for the op that produced it
 * (`#PF 0x5 (P|U) cr2=0x1000`, `value 0x3 [PMC0 PMC1]`, `dirty pages 3,7-9`).
 */
export function outcomeText(json: unknown, op?: Op, config?: Config): Shown {
  try {
    const outcome = outcomeFromJson(json);
    return decoded(formatOutcome(outcome), () => annotateOutcome(outcome, op, config));
  } catch (e) {
    return { text: rawJson(json), error: message(e) };
  }
}

/**
 * A permitted entry in JSON form (`{outcome, dontCare?, why}`) as a table row, the
 * outcome and its don't-care part decoded for the op (`A|D`, `pages 5-6`).
 */
export function permittedRow(json: unknown, op?: Op, config?: Config): PermittedRow {
  try {
    const p = permittedFromJson(json);
    const row: PermittedRow = {
      outcome: decoded(formatOutcome(p.outcome), () => annotateOutcome(p.outcome, op, config)),
      why: p.why,
    };
    const care = dontCareText(p, op, config);
    if (care !== undefined) row.dontCare = care;
    else if (p.dontCarePages !== undefined && p.dontCarePages.length > 0) {
      row.dontCare = formatPages(p.dontCarePages);
    } else if (p.dontCare !== undefined && p.dontCare !== 0n) {
      row.dontCare = `0x${p.dontCare.toString(16)}`;
    }
    return row;
  } catch (e) {
    const why = (json as { why?: unknown } | null)?.why;
    return {
      outcome: { text: rawJson(json), error: message(e) },
      why: typeof why === "string" ? why : "",
    };
  }
}

/** The config of a trace in JSON form, with defaults filled in, as indented JSON. */
export function configText(trace: unknown): Shown {
  const json = (trace as { config?: unknown } | null)?.config ?? {};
  try {
    return { text: JSON.stringify(parseConfig(json), null, 2) };
  } catch (e) {
    return { text: JSON.stringify(json, null, 2) ?? "null", error: message(e) };
  }
}

/**
 * The don't-care part of a permitted entry by name (`A|D`, `pages 5-6`), as
 * `annotatePermitted` says it after the outcome, or `undefined`.
 */
function dontCareText(
  p: ReturnType<typeof permittedFromJson>,
  op: Op | undefined,
  config: Config | undefined,
): string | undefined {
  try {
    const head = annotateOutcome(p.outcome, op, config);
    const all = annotatePermitted({ ...p, why: "" }, op, config);
    if (!all.startsWith(head)) return undefined;
    return all.slice(head.length).match(/^ \(don't care (.*)\)$/s)?.[1];
  } catch {
    return undefined;
  }
}

/** The decoded text when it can be made, with the plain text form beside it. */
function decoded(plain: string, annotate: () => string): Shown {
  let text: string;
  try {
    text = annotate();
  } catch {
    return { text: plain };
  }
  return text === plain ? { text } : { text, plain };
}

function rawJson(json: unknown): string {
  return JSON.stringify(json) ?? String(json);
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
