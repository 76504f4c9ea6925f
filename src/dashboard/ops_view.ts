/**
 * @module
 * Turns the JSON stored in a finding (ops, outcomes, permitted sets, config) into the
 * one-line text form of `src/trace/text.ts`, which the console and the corpus use too.
 * A finding written by an older or broken harness may hold JSON that no longer parses:
 * that entry is shown as its raw JSON with the parser's error, never dropped.
 *
 * Only the ops a page shows are parsed and formatted (`opLine`), so a 100,000-op trace
 * costs what its visible ops cost.
 */
import { parseConfig, parseOpJson } from "../trace/parse.ts";
import { outcomeFromJson, permittedFromJson } from "../trace/json.ts";
import { formatOp, formatOutcome, formatPages } from "../trace/text.ts";

/** A displayed value: its text form, or its raw JSON and why it did not parse. */
export interface Shown {
  text: string;
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

/** Op `index` of a trace's ops (JSON form) as its text line. */
export function opLine(json: unknown, index: number): Shown {
  try {
    return { text: formatOp(parseOpJson(json, index)) };
  } catch (e) {
    return { text: rawJson(json), error: message(e) };
  }
}

/** Every op line of a trace in JSON form; for short traces only (tests, small pages). */
export function opLines(trace: unknown): Shown[] {
  return traceOps(trace).map((json, i) => opLine(json, i));
}

/** An outcome in JSON form as outcome text (`pf code=0x5 cr2=0x1000`). */
export function outcomeText(json: unknown): Shown {
  try {
    return { text: formatOutcome(outcomeFromJson(json)) };
  } catch (e) {
    return { text: rawJson(json), error: message(e) };
  }
}

/** A permitted entry in JSON form (`{outcome, dontCare?, why}`) as a table row. */
export function permittedRow(json: unknown): PermittedRow {
  try {
    const p = permittedFromJson(json);
    const row: PermittedRow = { outcome: { text: formatOutcome(p.outcome) }, why: p.why };
    if (p.dontCare !== undefined && p.dontCare !== 0n) {
      row.dontCare = `0x${p.dontCare.toString(16)}`;
    }
    if (p.dontCarePages !== undefined && p.dontCarePages.length > 0) {
      row.dontCare = formatPages(p.dontCarePages);
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

function rawJson(json: unknown): string {
  return JSON.stringify(json) ?? String(json);
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
