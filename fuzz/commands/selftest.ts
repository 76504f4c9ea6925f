/**
 * @module
 * `deno task selftest`: one short inline campaign per catalogue bug (injected into the
 * core, one core, fixed seed), stopping at the first divergence that the uninjected
 * core does not show. Prints per bug: found, seconds to find (shrinking excluded),
 * minimized length; and the totals. Writes `corpus/selftest.json` for the dashboard.
 * Exit 0 when every bug was found, 1 otherwise.
 */
import {
  atomicWriteText,
  type SelfTest,
  validateSelfTest,
  writeSelfTest,
} from "../../src/corpus/store.ts";
import { join } from "node:path";
import { resolveBackendFlag } from "./backend_ref.ts";
import { runCampaign } from "../campaign/campaign.ts";
import { catalogue, type CatalogueBug } from "../campaign/catalogue.ts";
import { args, type FlagSpecs, intFlag, UsageError } from "./usage.ts";
import { formatBug, formatClean, userView } from "./selftest_user.ts";
import { formatIdentityRow, identityReport } from "./selftest_identity.ts";

export const SELFTEST_USAGE = `Usage:
  deno task selftest [--json] [--seconds N] [--seed S] [--bugs a,b] [--corpus DIR]
  deno task selftest --as-user [--seconds 60] [--seed S] [--clean-seeds 6] [--parallel 2]
                     [--bugs a,b] [--corpus DIR] [--json]
  deno task selftest --identity [--seeds 6] [--runs 3000] [--sightings 5] [--bugs a,b] [--json]

The classic self-test hunts each catalogue bug in one short inline campaign that stops
at the first divergence the uninjected core does not show. --as-user runs, per bug, the
ordinary \`deno task fuzz\` (one worker) over a copy of the corpus, then campaigns with
no bug for --clean-seeds seeds, and reports what a user would see (docs/identity.md).
--identity measures how many finding ids each bug gets over --seeds seeds, and which ids
two bugs share.`;

/** `selftest`'s flags (which mode reads which: the usage lines above). */
export const SELFTEST_FLAGS = {
  json: { type: "boolean", help: "print the report as one JSON object on stdout" },
  seconds: {
    type: "string",
    value: "N",
    help: "per bug: the classic hunt's cap (default 30) or the --as-user campaign's length " +
      "(default 60)",
  },
  seed: { type: "string", value: "S", help: "the campaigns' seed (default 1)" },
  bugs: {
    type: "string",
    value: "a,b",
    help: "only these catalogue bugs; a partial run never replaces corpus/selftest.json (it " +
      "goes to corpus/state/selftest-partial.json)",
  },
  corpus: {
    type: "string",
    value: "DIR",
    help: "the corpus whose selftest.json a full run replaces, and which --as-user copies " +
      "(default corpus)",
  },
  "as-user": {
    type: "boolean",
    help: "per bug, the ordinary `deno task fuzz --workers 1 --inject NAME` over a copy of " +
      "the corpus; then clean campaigns that must report nothing new",
  },
  identity: {
    type: "boolean",
    help: "how many finding ids each bug gets over --seeds seeds, and which ids two bugs share",
  },
  seeds: { type: "string", value: "N", help: "--identity: seeds per bug (default 6)" },
  runs: { type: "string", value: "N", help: "--identity: runs per seed (default 3000)" },
  sightings: {
    type: "string",
    value: "N",
    help: "--identity: diverging runs identified per bug and seed (default 5)",
  },
  "clean-seeds": {
    type: "string",
    value: "N",
    help: "--as-user: campaigns with no bug, one per seed (default 6)",
  },
  parallel: {
    type: "string",
    value: "N",
    help: "--as-user: campaigns at once (default 2)",
  },
} as const satisfies FlagSpecs;

/** One bug's result. */
export interface BugResult {
  name: string;
  found: boolean;
  seconds: number | null;
  minimizedOps: number | null;
  signature?: string;
}

/** The median of `xs` (null when empty). */
export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Hunts one bug. */
export async function hunt(
  bug: CatalogueBug,
  options: { seconds: number; seed: number },
): Promise<BugResult> {
  const { factory, ref } = resolveBackendFlag("core", ["core"]);
  const result = await runCampaign({
    engine: {
      seed: options.seed,
      // MMU bugs need memslot changes too (generations, zaps), memslot bugs need tables.
      constraints: { areas: bug.area === "pmu" ? ["pmu"] : ["mmu", "memslot"] },
      diff: { inject: [bug.name] },
      backend: "core",
      baselineCheck: true,
      shrinkSeconds: 8,
    },
    workers: 0,
    factory,
    backend: ref,
    seconds: options.seconds,
    stopOnFinding: true,
  });
  const hit = result.findings.find((f) => f.first.baseline !== true);
  if (hit === undefined) return { name: bug.name, found: false, seconds: null, minimizedOps: null };
  const shrinkSeconds = hit.first.minimized?.seconds ?? 0;
  return {
    name: bug.name,
    found: true,
    seconds: Math.max(0, hit.seconds - shrinkSeconds),
    minimizedOps: hit.first.minimized?.ops ?? (hit.first.trace as { ops: unknown[] }).ops.length,
    signature: hit.first.signature,
  };
}

/** `selftest`. */
export async function cmdSelftest(argv: string[]): Promise<number> {
  const { values, positionals } = args(argv, SELFTEST_FLAGS, SELFTEST_USAGE);
  if (positionals.length > 0) {
    throw new UsageError(`Unexpected argument "${positionals[0]}"\n${SELFTEST_USAGE}`);
  }
  const seconds = intFlag("seconds", values.seconds, 1, 3600) ?? 30;
  const seed = intFlag("seed", values.seed, 0, Number.MAX_SAFE_INTEGER) ?? 1;
  let bugs = catalogue();
  if (values.bugs !== undefined) {
    const wanted = values.bugs.split(",");
    for (const w of wanted) {
      if (!bugs.some((b) => b.name === w)) throw new UsageError(`--bugs: unknown bug "${w}"`);
    }
    bugs = bugs.filter((b) => wanted.includes(b.name));
  }
  if (values.identity) {
    const report = identityReport(bugs, {
      seeds: intFlag("seeds", values.seeds, 1, 100) ?? 6,
      runs: intFlag("runs", values.runs, 1, 1_000_000) ?? 3000,
      sightings: intFlag("sightings", values.sightings, 1, 1000) ?? 5,
    }, values.json ? undefined : (row) => console.error(formatIdentityRow(row)));
    if (values.json) console.log(JSON.stringify(report));
    else {
      for (const x of report.shared) console.log(`shared by ${x.bugs.join(" + ")}: ${x.signature}`);
      const seen = report.bugs.filter((b) => b.ids.length > 0);
      console.log(
        `${seen.length}/${report.bugs.length} bugs seen; ids per bug: ` +
          `median ${median(seen.map((b) => b.ids.length)) ?? "-"}, ` +
          `max ${Math.max(0, ...seen.map((b) => b.ids.length))}; ` +
          `${report.shared.length} ids shared by two bugs or more`,
      );
    }
    return report.shared.length === 0 ? 0 : 1;
  }
  if (values["as-user"]) {
    return await asUser(bugs, {
      seconds: intFlag("seconds", values.seconds, 1, 3600) ?? 60,
      seed,
      cleanSeeds: intFlag("clean-seeds", values["clean-seeds"], 0, 100) ?? 6,
      parallel: intFlag("parallel", values.parallel, 1, 16) ?? 2,
      corpus: values.corpus ?? "corpus",
      json: values.json ?? false,
      full: values.bugs === undefined,
    });
  }
  const results: BugResult[] = [];
  for (const bug of bugs) {
    const r = await hunt(bug, { seconds, seed });
    results.push(r);
    if (!values.json) {
      console.error(
        `${r.found ? "found " : "MISSED"} ${bug.name.padEnd(26)} ${
          r.seconds === null ? "      -" : `${r.seconds.toFixed(2).padStart(6)}s`
        }  ${r.minimizedOps === null ? "" : `${r.minimizedOps} ops`}  ${r.signature ?? ""}`,
      );
    }
  }
  const found = results.filter((r) => r.found);
  const summary: SelfTest = {
    bugs: results.map(({ name, found, seconds, minimizedOps }) => ({
      name,
      found,
      seconds,
      minimizedOps,
    })),
    found: found.length,
    total: results.length,
    medianSeconds: median(found.map((r) => r.seconds!)),
    time: new Date().toISOString(),
  };
  validateSelfTest(summary);
  // A partial run (--bugs) never replaces the full record (store.ts writeSelfTest).
  await writeSelfTest(values.corpus ?? "corpus", summary, {
    partial: bugs.length < catalogue().length,
  });
  if (values.json) {
    const { time: _time, ...rest } = summary;
    console.log(JSON.stringify(rest));
  } else {
    console.log(
      `${summary.found}/${summary.total} catalogue bugs found; median ${
        summary.medianSeconds === null ? "-" : `${summary.medianSeconds.toFixed(2)}s`
      }; longest minimized trace ${Math.max(0, ...found.map((r) => r.minimizedOps!))} ops`,
    );
  }
  return summary.found === summary.total ? 0 : 1;
}

/** `selftest --as-user`: prints the table and, for a full run, records it. */
async function asUser(
  bugs: readonly CatalogueBug[],
  o: {
    seconds: number;
    seed: number;
    cleanSeeds: number;
    parallel: number;
    corpus: string;
    json: boolean;
    full: boolean;
  },
): Promise<number> {
  const view = await userView({
    bugs,
    seconds: o.seconds,
    seed: o.seed,
    cleanSeeds: o.cleanSeeds,
    corpus: o.corpus,
    parallel: o.parallel,
    ...(o.json ? {} : {
      onBug: (b) => console.error(formatBug(b)),
      onClean: (c) => console.error(formatClean(c)),
    }),
  });
  // Only a run over the whole catalogue replaces the recorded table.
  if (o.full) {
    const path = join(o.corpus, "selftest.json");
    let record: Record<string, unknown> = {};
    try {
      record = JSON.parse(await Deno.readTextFile(path));
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    record.asUser = view;
    await atomicWriteText(path, JSON.stringify(record, null, 2) + "\n");
  }
  if (o.json) console.log(JSON.stringify(view));
  else {
    console.log(
      `as a user: ${view.passed}/${view.total} planted bugs reported new within ${o.seconds} s; ` +
        `${view.cleanPassed}/${view.cleanTotal} campaigns with no bug reported nothing new`,
    );
  }
  return view.passed === view.total && view.cleanPassed === view.cleanTotal ? 0 : 1;
}
