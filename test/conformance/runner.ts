/**
 * @module
 * Runs the shared conformance suite against one backend (like Hono's
 * `runTest({ newRouter })`): every case in `mmu_cases.ts`, `memslot_cases.ts` and
 * `pmu_cases.ts`, written once. Known gaps are named skips with a written reason.
 */
import type { BackendFactory } from "../../src/backend.ts";
import type { Config } from "../../src/trace/types.ts";
import { mergeConfig } from "../../src/trace/config.ts";
import { outcomesEqual } from "../../src/trace/outcome.ts";
import { formatOutcome, parseExpect, parseOp } from "../../src/trace/text.ts";
import type { ConformanceCase } from "./case.ts";
import { memslotCases } from "./memslot_cases.ts";
import { mmuCases } from "./mmu_cases.ts";
import { pmuCases } from "./pmu_cases.ts";

/** Cases a backend cannot run, with the reason printed for each. */
export interface Skip {
  reason: string;
  /** Case names, or a predicate over cases. */
  cases: readonly string[] | ((c: ConformanceCase) => boolean);
}

/** Every case of the shared suite. */
export const allCases: readonly ConformanceCase[] = [...mmuCases, ...memslotCases, ...pmuCases];

/** Adapts a case's config to what a backend's machine can provide. */
export type ConfigAdapter = (c: ConformanceCase, config: Config) => Config;

/** Runs one case on a fresh backend; returns the failure text, or null when it passes. */
export function runCase(
  factory: BackendFactory,
  c: ConformanceCase,
  adapt?: ConfigAdapter,
): string | null {
  const merged = mergeConfig(c.config ?? {});
  const backend = factory.create(adapt === undefined ? merged : adapt(c, merged));
  try {
    for (let i = 0; i < c.steps.length; i++) {
      const [opText, expectText] = c.steps[i]!;
      const op = parseOp(opText);
      const unsupported = backend.supports?.(op) ?? null;
      if (unsupported !== null) {
        return `step ${i} \`${opText}\`: the backend cannot run it here: ${unsupported}`;
      }
      const got = backend.step(op);
      const expect = parseExpect(expectText);
      if (expect === "*") continue;
      if (!expect.some((e) => outcomesEqual(e, got))) {
        return `step ${i} \`${opText}\`: got \`${
          formatOutcome(got)
        }\`, expected \`${expectText}\`` +
          ` (source: ${c.source})`;
      }
    }
    return null;
  } finally {
    backend.close();
  }
}

function skipReason(
  factory: BackendFactory,
  c: ConformanceCase,
  skips: readonly Skip[],
): string | null {
  if (factory.cannotRun !== undefined) {
    const config = mergeConfig(c.config ?? {});
    for (const [opText] of c.steps) {
      const why = factory.cannotRun(parseOp(opText), config);
      if (why !== null) return `\`${opText}\`: ${why}`;
    }
  }
  for (const s of skips) {
    const hit = typeof s.cases === "function" ? s.cases(c) : s.cases.includes(c.name);
    if (hit) return s.reason;
  }
  return null;
}

/** Registers one `Deno.test` per case for `factory`. */
export function runConformance(
  factory: BackendFactory,
  options: { skip?: readonly Skip[]; adaptConfig?: ConfigAdapter } = {},
): void {
  const unavailable = factory.available();
  for (const c of allCases) {
    const reason = unavailable ?? skipReason(factory, c, options.skip ?? []);
    Deno.test({
      name: `${factory.name}: ${c.name}`,
      ignore: reason !== null,
      fn() {
        const failure = runCase(factory, c, options.adaptConfig);
        if (failure !== null) throw new Error(failure);
      },
    });
    if (reason !== null) console.log(`skip ${factory.name}: ${c.name}: ${reason}`);
  }
}
