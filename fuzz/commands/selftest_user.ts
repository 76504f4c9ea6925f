/**
 * @module
 * `deno task selftest --as-user`: the self-test as a user meets the tool. For every
 * catalogue bug it runs the ordinary `deno task fuzz` (a subprocess, one worker, no
 * baseline check, no stop at the first finding) with the bug injected, over a fresh
 * copy of the shipped corpus, and reads its JSON summary: exit code, new findings, how
 * many of them the uninjected core agrees on (so the planted bug caused them), and the
 * seconds to the first such finding. Then campaigns with no bug over the same corpus,
 * one per seed, which must report nothing new.
 *
 * The bar (docs/identity.md): every bug gives exit 1 and at least one new finding the
 * uninjected core agrees on within the budget; every clean campaign gives exit 0.
 */
import { join } from "node:path";
import { coreFactory } from "../../src/core/mod.ts";
import { diffTrace } from "../../src/diff.ts";
import { traceFromJson } from "../../src/trace/parse.ts";
import { identifyTrace } from "../campaign/identity.ts";
import type { CatalogueBug } from "../campaign/catalogue.ts";

/** One campaign with a bug planted, as a user sees it. */
export interface UserViewBug {
  name: string;
  area: string;
  exit: number;
  /** New findings the campaign reported. */
  newFindings: number;
  /** Of those, the ones whose minimized trace the uninjected core agrees on. */
  caused: number;
  /**
   * Of the others, the ones the uninjected core diverges on with another identity (the
   * bug changed the divergence, e.g. on top of a known deviation); not counted as caused.
   */
  changed: number;
  /** Seconds from the campaign's start to the first such finding; null if none. */
  seconds: number | null;
  /** Their ids. */
  ids: string[];
  /** Their titles. */
  titles: string[];
  /** The other new findings (the uninjected core diverges on them too): titles. */
  others: string[];
  /** Whether the bar holds: exit 1, a caused finding, the first within the budget. */
  pass: boolean;
}

/** One campaign with no bug planted. */
export interface UserViewClean {
  seed: number;
  exit: number;
  newFindings: number;
  ids: string[];
  titles: string[];
  /** Runs per known deviation. */
  knownDeviations: Record<string, number>;
  runs: number;
  pass: boolean;
}

/** The whole user-view record, kept in `corpus/selftest.json` as `asUser`. */
export interface UserView {
  seconds: number;
  seed: number;
  bugs: UserViewBug[];
  clean: UserViewClean[];
  /** Bugs that meet the bar, out of all. */
  passed: number;
  total: number;
  cleanPassed: number;
  cleanTotal: number;
  time: string;
}

interface Summary {
  runs: number;
  findings: { id: string; new: boolean; seconds?: number; title?: string }[];
  knownDeviations?: Record<string, number>;
}

/** Copies `src` (the shipped corpus's findings and deviations) into a fresh temp dir. */
async function corpusCopy(src: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "shadowfuzz-user-" });
  for (const sub of ["findings"]) {
    await Deno.mkdir(join(dir, sub), { recursive: true });
    try {
      for await (const e of Deno.readDir(join(src, sub))) {
        if (e.isFile && e.name.endsWith(".json")) {
          await Deno.copyFile(join(src, sub, e.name), join(dir, sub, e.name));
        }
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }
  return dir;
}

/** Runs `deno task fuzz` as a user would, returning its exit code and JSON summary. */
async function fuzzAsUser(
  args: string[],
): Promise<{ code: number; summary: Summary | null; stderr: string }> {
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--v8-flags=--single-threaded-gc",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-run=git",
      "--allow-ffi",
      "--allow-sys",
      cli,
      "fuzz",
      "--json",
      "--workers",
      "1",
      ...args,
    ],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  });
  const out = await cmd.output();
  const text = new TextDecoder().decode(out.stdout).trim().split("\n").pop() ?? "";
  let summary: Summary | null = null;
  try {
    summary = JSON.parse(text) as Summary;
  } catch {
    summary = null;
  }
  return { code: out.code, summary, stderr: new TextDecoder().decode(out.stderr) };
}

/**
 * What the uninjected core does on a finding's minimized trace: `agrees` with the
 * reference (the planted bug caused the finding), diverges `differently` (another
 * identity: the bug changed what the user sees, e.g. on top of a known deviation), or
 * diverges the `same` way (the finding is not the bug's).
 */
async function uninjected(corpus: string, id: string): Promise<"agrees" | "differently" | "same"> {
  const json = JSON.parse(await Deno.readTextFile(join(corpus, "findings", `${id}.json`)));
  const trace = traceFromJson(json.minimized);
  const d = diffTrace(trace, coreFactory, {}).divergence;
  if (d === null) return "agrees";
  return identifyTrace(trace, d, coreFactory).signature === json.signature ? "same" : "differently";
}

/** Runs `jobs` at most `parallel` at a time, in order of their results. */
async function pool<T>(jobs: (() => Promise<T>)[], parallel: number): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= jobs.length) return;
      results[i] = await jobs[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, parallel) }, worker));
  return results;
}

/**
 * Runs one ordinary campaign (`extra` flags, or none for no bug) over a fresh copy of the
 * corpus and hands its result and the copy to `read`, then removes the copy.
 */
async function campaignOverCopy<T>(
  extra: string[],
  options: { seconds: number; seed: number; corpus: string },
  read: (r: { code: number; summary: Summary }, dir: string) => Promise<T>,
): Promise<T> {
  const dir = await corpusCopy(options.corpus);
  try {
    const seed = String(options.seed);
    const r = await fuzzAsUser([
      ...extra,
      ...["--seconds", String(options.seconds), "--seed", seed, "--corpus", dir],
    ]);
    if (r.summary === null) {
      throw new Error(`fuzz ${extra.join(" ")} printed no summary: ${r.stderr.trim()}`);
    }
    return await read({ code: r.code, summary: r.summary }, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** One bug, planted, as a user meets it. */
export function bugAsUser(
  bug: CatalogueBug,
  options: { seconds: number; seed: number; corpus: string },
): Promise<UserViewBug> {
  return campaignOverCopy(["--inject", bug.name], options, async (r, dir) => {
    const fresh = r.summary.findings.filter((f) => f.new);
    const caused: typeof fresh = [];
    let changed = 0;
    for (const f of fresh) {
      const u = await uninjected(dir, f.id);
      if (u === "agrees") caused.push(f);
      else if (u === "differently") changed++;
    }
    const seconds = caused.length === 0 ? null : Math.min(...caused.map((f) => f.seconds ?? 0));
    return {
      name: bug.name,
      area: bug.area,
      exit: r.code,
      newFindings: fresh.length,
      caused: caused.length,
      changed,
      seconds,
      ids: caused.map((f) => f.id),
      titles: caused.map((f) => f.title ?? ""),
      others: fresh.filter((f) => !caused.includes(f)).map((f) => `${f.id} ${f.title ?? ""}`),
      // The bar: reported new, caused by the bug, first seen within the budget (a campaign
      // ends at an epoch boundary, so it can run a little past it).
      pass: r.code === 1 && caused.length > 0 && seconds !== null && seconds <= options.seconds,
    };
  });
}

/** A campaign with no bug over the shipped corpus. */
export function cleanAsUser(
  options: { seconds: number; seed: number; corpus: string },
): Promise<UserViewClean> {
  return campaignOverCopy([], options, (r) => {
    const fresh = r.summary.findings.filter((f) => f.new);
    return Promise.resolve({
      seed: options.seed,
      exit: r.code,
      newFindings: fresh.length,
      ids: fresh.map((f) => f.id),
      titles: fresh.map((f) => f.title ?? ""),
      knownDeviations: r.summary.knownDeviations ?? {},
      runs: r.summary.runs,
      pass: r.code === 0,
    });
  });
}

/** The whole user view: every bug, then `cleanSeeds` clean campaigns. */
export async function userView(options: {
  bugs: readonly CatalogueBug[];
  seconds: number;
  seed: number;
  cleanSeeds: number;
  corpus: string;
  parallel: number;
  onBug?: (b: UserViewBug) => void;
  onClean?: (c: UserViewClean) => void;
}): Promise<UserView> {
  const { seconds, seed, corpus } = options;
  const bugs = await pool(
    options.bugs.map((bug) => async () => {
      const r = await bugAsUser(bug, { seconds, seed, corpus });
      options.onBug?.(r);
      return r;
    }),
    options.parallel,
  );
  const clean = await pool(
    Array.from({ length: options.cleanSeeds }, (_, i) => async () => {
      const r = await cleanAsUser({ seconds, seed: seed + i, corpus });
      options.onClean?.(r);
      return r;
    }),
    options.parallel,
  );
  return {
    seconds,
    seed,
    bugs,
    clean,
    passed: bugs.filter((b) => b.pass).length,
    total: bugs.length,
    cleanPassed: clean.filter((c) => c.pass).length,
    cleanTotal: clean.length,
    time: new Date().toISOString(),
  };
}

/** One line per bug and per clean campaign, for the console. */
export function formatBug(b: UserViewBug): string {
  return `${b.pass ? "pass" : "FAIL"} ${b.name.padEnd(26)} exit ${b.exit}  ${b.newFindings} new, ` +
    `${b.caused} caused by the bug` + (b.changed > 0 ? ` (${b.changed} more changed by it)` : "") +
    (b.seconds === null ? "" : `, first after ${b.seconds.toFixed(2)} s`) +
    (b.titles[0] === undefined ? "" : `\n       ${b.titles[0]}`);
}

export function formatClean(c: UserViewClean): string {
  const dev = Object.entries(c.knownDeviations).map(([n, k]) => `${n} ${k}`).join(", ");
  return `${
    c.pass ? "pass" : "FAIL"
  } no bug, seed ${c.seed}  exit ${c.exit}  ${c.newFindings} new, ` +
    `${c.runs} runs; known deviations: ${dev === "" ? "none" : dev}` +
    c.titles.map((t, i) => `\n       NEW ${c.ids[i]} ${t}`).join("");
}
