/**
 * @module
 * The shape of one conformance case: text ops with the outcomes every backend must
 * produce. Written once, run against every backend (see `runner.ts`).
 */
import type { Area, ConfigInput } from "../../src/trace/types.ts";

export type { Area };

export interface ConformanceCase {
  /** Says the behaviour: "mmu: a user read of a supervisor page faults with P|U". */
  name: string;
  /** Where the expected behaviour comes from: SDM section, docs/kvm-facts.md item, api.rst. */
  source: string;
  config?: ConfigInput;
  /** Areas the case exercises (default: mmu). */
  areas?: Area[];
  /** Machine features the case needs beyond what its ops say (a runner may skip it). */
  requires?: "gbPages"[];
  /**
   * `[opText, expectText]` pairs. `expectText` is outcome text alternatives separated
   * by " | " (any one is correct), or "*" when the outcome is not checked.
   */
  steps: [string, string][];
}
