/**
 * @module
 * `deno task selftest --identity [--seeds 6] [--runs 3000] [--sightings 5]`: how well
 * finding identities (docs/identity.md) tell bugs apart. For every catalogue bug and
 * seed it generates the ordinary campaign's runs (all areas) with the bug planted, and
 * for the first `--sightings` runs that diverge where the uninjected core agrees (so the
 * planted bug caused them) and no known deviation explains it, it computes the identity.
 * It reports how many ids each bug gets over all seeds (fewer is better: one bug, one
 * finding) and every id two bugs share (none is the goal).
 */
import { coreFactory } from "../../src/core/mod.ts";
import { diffTrace } from "../../src/diff.ts";
import type { CatalogueBug } from "../campaign/catalogue.ts";
import { generateRun } from "../gen/generate.ts";
import { explainDeviation, identify } from "../campaign/identity.ts";

/** One bug's identities over the seeds. */
export interface IdentityRow {
  name: string;
  /** Distinct identities, with how many sightings each. */
  ids: { signature: string; sightings: number }[];
  /** Seeds in which the bug was seen at all. */
  seedsSeen: number;
}

/** What `--identity` measures. */
export interface IdentityReport {
  seeds: number;
  runs: number;
  sightings: number;
  bugs: IdentityRow[];
  /** Identities more than one bug has. */
  shared: { signature: string; bugs: string[] }[];
}

/** Measures the identities of every bug in `bugs`. */
export function identityReport(
  bugs: readonly CatalogueBug[],
  options: { seeds: number; runs: number; sightings: number },
  onBug?: (row: IdentityRow) => void,
): IdentityReport {
  const owners = new Map<string, Set<string>>();
  const rows: IdentityRow[] = [];
  for (const bug of bugs) {
    const counts = new Map<string, number>();
    let seedsSeen = 0;
    for (let seed = 1; seed <= options.seeds; seed++) {
      let seen = 0;
      for (let i = 0; i < options.runs && seen < options.sightings; i++) {
        const { trace } = generateRun(seed, i, {});
        const diff = { inject: [bug.name] };
        const d = diffTrace(trace, coreFactory, diff).divergence;
        if (d === null || diffTrace(trace, coreFactory).divergence !== null) continue;
        const deviation = explainDeviation(trace, d, coreFactory, diff);
        if (deviation !== undefined) continue;
        const { signature } = identify(d, "core", trace.config, undefined, {
          factory: coreFactory,
          trace,
          diff,
        });
        seen++;
        counts.set(signature, (counts.get(signature) ?? 0) + 1);
        owners.set(signature, (owners.get(signature) ?? new Set()).add(bug.name));
      }
      if (seen > 0) seedsSeen++;
    }
    const row: IdentityRow = {
      name: bug.name,
      ids: [...counts].sort((a, b) => b[1] - a[1]).map(([signature, sightings]) => ({
        signature,
        sightings,
      })),
      seedsSeen,
    };
    rows.push(row);
    onBug?.(row);
  }
  const shared = [...owners].filter(([, b]) => b.size > 1).map(([signature, b]) => ({
    signature,
    bugs: [...b],
  }));
  return { ...options, bugs: rows, shared };
}

/** One line per bug (and its ids, indented). */
export function formatIdentityRow(row: IdentityRow): string {
  const total = row.ids.reduce((n, x) => n + x.sightings, 0);
  return `${row.name.padEnd(26)} ${String(row.ids.length).padStart(3)} ids, ${total} sightings, ` +
    `seen in ${row.seedsSeen} seeds` +
    row.ids.map((x) => `\n    ${String(x.sightings).padStart(3)}x ${x.signature}`).join("");
}
