/**
 * @module
 * `deno task fuzz`: a campaign against a backend, findings into the corpus, a summary
 * (fuzz/README.md). Exit 0 without new findings, 1 with, 2 on usage errors.
 */
import { CorpusWriteError, listFindings, writeRun } from "../../src/corpus/store.ts";
import { type Area, RUN_FORMAT } from "../../src/corpus/types.ts";
import { resolveBackendFlag } from "./backend_ref.ts";
import { type CampaignFinding, runCampaign } from "../campaign/campaign.ts";
import type { RunFinding } from "../campaign/engine.ts";
import { catalogue, formatCatalogue } from "../campaign/catalogue.ts";
import { addHits, type FindingContext, makeFinding, recordFinding } from "../campaign/corpus.ts";
import { AREAS } from "../gen/generate.ts";
import { harnessVersion } from "../campaign/harness.ts";
import { ProgressReporter, rate } from "../campaign/progress.ts";
import {
  args,
  checkCorpusFlag,
  type FlagSpecs,
  intFlag,
  SHARED_FLAGS,
  UsageError,
  workersFlag,
} from "./usage.ts";
import { kvmPvmConfig } from "../../src/trace/config.ts";
import { kvmHost } from "../../src/kvm/mod.ts";
import { BACKEND_NAMES } from "../../src/backend.ts";

export const FUZZ_USAGE = `Usage:
  deno task fuzz [--seconds N|--runs N] [--seed S] [--workers N] [--backend core|kvm]
                 [--areas mmu,memslot,pmu] [--inject NAME|list] [--audit] [--strict]
                 [--corpus DIR] [--json] [--no-guide]`;

/** The head of `fuzz --help`: the usage and what a campaign does. */
const FUZZ_HELP_HEAD = `${FUZZ_USAGE}

A campaign: generated traces run on the reference and a backend (the core, or the real
KVM with --backend kvm) op by op. A divergence whose identity the corpus does not hold is
a new finding: shrunk, saved in DIR/findings/ and printed with its replay command. Known
KVM deviations from the architecture are counted by name, not reported (docs/identity.md).`;

/** `fuzz`'s exit codes, for its --help. */
const FUZZ_EXITS = `fuzz exits
  0 no new finding, 1 new findings (saved), 2 usage error, 3 shadowfuzz failed,
  4 a corpus write failed mid-campaign (a full disk): the summary and the findings it
    could not save are printed on stdout`;

/** `fuzz`'s flags (fuzz/README.md has the same table). */
export const FUZZ_FLAGS = {
  seconds: { type: "string", value: "N", help: "stop after N seconds (default 60)" },
  runs: { type: "string", value: "N", help: "stop after N runs instead of a time" },
  seed: {
    type: "string",
    value: "S",
    help: "the campaign's seed (default random, printed): the same seed, backend and flags " +
      "give the same runs",
  },
  workers: {
    type: "string",
    value: "N",
    help: "Deno Workers, at most the cores (default the cores); 0 runs inline in the main thread",
  },
  backend: {
    type: "string",
    value: "NAME",
    help: "core (default) or kvm: what is diffed against the reference. With kvm the config " +
      "is fixed to this host's, and ops the kvm backend cannot run are left out",
  },
  areas: {
    type: "string",
    value: "LIST",
    help: "which step generators run, comma-separated from mmu,memslot,pmu (default all)",
  },
  inject: {
    type: "string",
    value: "NAME",
    help: "plant catalogue bugs (comma-separated) into the core; `list` prints the catalogue. " +
      "A campaign with a bug is judged exactly like one without",
  },
  audit: SHARED_FLAGS.audit,
  strict: SHARED_FLAGS.strict,
  corpus: {
    type: "string",
    value: "DIR",
    help: "where findings and the run record go (default corpus); checked at start: writable, " +
      "with space left",
  },
  json: { type: "boolean", help: "print one JSON summary object on stdout instead of the text" },
  "no-guide": {
    type: "boolean",
    help: "no coverage guidance: every run fresh from the PRNG, no kept traces, no mutants",
  },
} as const satisfies FlagSpecs;

/**
 * Exit code of a campaign the corpus stopped: a write failed mid-campaign (a full disk);
 * the summary and the findings it could not save were printed on stdout.
 */
export const EXIT_NOT_SAVED = 4;

/** Default budget when neither --seconds nor --runs is given. */
const DEFAULT_SECONDS = 60;

/** Parsed `fuzz` flags. */
export interface FuzzFlags {
  seconds?: number;
  runs?: number;
  seed: number;
  workers: number;
  backend: string;
  areas: Area[];
  inject?: string;
  list: boolean;
  audit: boolean;
  strict: boolean;
  corpus: string;
  json: boolean;
  guide: boolean;
}

/** Parses and validates `fuzz` flags (usage errors name the flag). */
export function parseFuzzFlags(argv: string[]): FuzzFlags {
  const { values, positionals } = args(argv, FUZZ_FLAGS, FUZZ_HELP_HEAD, FUZZ_EXITS);
  if (positionals.length > 0) {
    throw new UsageError(`Unexpected argument "${positionals[0]}"\n${FUZZ_USAGE}`);
  }
  const seconds = intFlag("seconds", values.seconds, 1, 7 * 24 * 3600);
  const runs = intFlag("runs", values.runs, 1, Number.MAX_SAFE_INTEGER);
  const seed = intFlag("seed", values.seed, 0, Number.MAX_SAFE_INTEGER) ??
    crypto.getRandomValues(new Uint32Array(1))[0]!;
  const workers = workersFlag(values.workers);
  const areas = (values.areas ?? AREAS.join(",")).split(",").map((a) => a.trim());
  for (const a of areas) {
    if (!(AREAS as readonly string[]).includes(a)) {
      throw new UsageError(`--areas: unknown area "${a}": expected ${AREAS.join(", ")}`);
    }
  }
  const backend = values.backend ?? "core";
  const list = values.inject === "list";
  if (values.inject !== undefined && !list) {
    const names = catalogue().map((b) => b.name);
    if (!names.includes(values.inject)) {
      throw new UsageError(
        `--inject: unknown bug "${values.inject}" (see --inject list)`,
      );
    }
    if (backend !== "core") throw new UsageError(`--inject needs --backend core`);
  }
  return {
    ...(seconds === undefined && runs === undefined ? { seconds: DEFAULT_SECONDS } : {}),
    ...(seconds === undefined ? {} : { seconds }),
    ...(runs === undefined ? {} : { runs }),
    seed,
    workers,
    backend,
    areas: areas as Area[],
    ...(values.inject === undefined || list ? {} : { inject: values.inject }),
    list,
    audit: values.audit ?? false,
    strict: values.strict ?? false,
    corpus: values.corpus ?? "corpus",
    json: values.json ?? false,
    guide: !(values["no-guide"] ?? false),
  };
}

/** A finding's title: the minimized trace's, else the first run's. */
function titleOf(f: RunFinding): string {
  return f.minimized?.title ?? f.title;
}

/** The replay command of a finding file. */
export function replayCommand(corpus: string, id: string): string {
  return `deno task replay ${corpus.replace(/\/$/, "")}/findings/${id}.json`;
}

/** `fuzz`. */
export async function cmdFuzz(argv: string[]): Promise<number> {
  const flags = parseFuzzFlags(argv);
  if (flags.list) {
    console.log(formatCatalogue(catalogue()));
    return 0;
  }
  // Before any fuzzing: a corpus that cannot take the findings is a usage error.
  await checkCorpusFlag(flags.corpus);
  const { name: backend, ref, factory } = resolveBackendFlag(flags.backend, BACKEND_NAMES);
  const progress = new ProgressReporter(false);
  const { findings: existing, errors } = await listFindings(flags.corpus);
  for (const e of errors) {
    progress.line(`shadowfuzz: skipping corrupt corpus file findings/${e.file}: ${e.error}`);
  }
  const knownIds = new Set(existing.map((f) => f.id));
  const harness = await harnessVersion();
  const time = new Date().toISOString();
  // What a kvm finding and run record say of the kernel they ran on (docs/design.md).
  const host = backend === "kvm"
    ? structuredClone(kvmHost()) as unknown as Record<string, unknown>
    : undefined;
  if (host !== undefined && !flags.json) {
    progress.line(`shadowfuzz: kvm host: ${host.summary}`);
    if (typeof host.note === "string") progress.line(`shadowfuzz: ${host.note}`);
  }
  const ctx: FindingContext = {
    ...(host === undefined ? {} : { host }),
    seed: String(flags.seed),
    backend,
    ...(flags.inject === undefined ? {} : { inject: flags.inject }),
    harness,
    now: time,
  };
  const stop = new SharedArrayBuffer(4);
  const stopFlag = new Int32Array(stop);
  const onSignal = () => {
    if (Atomics.load(stopFlag, 0) !== 0) Deno.exit(130);
    Atomics.store(stopFlag, 0, 1);
    progress.line("shadowfuzz: stopping (Ctrl-C again to abort without saving)");
  };
  Deno.addSignalListener("SIGINT", onSignal);
  const recorded = new Map<string, { hits: number; isNew: boolean }>();
  // A write the corpus refused mid-campaign (a full disk): the campaign stops, and what
  // it could not save is printed instead, so that nothing it found is lost.
  let writeError: string | null = null;
  const unsaved: RunFinding[] = [];
  const stopOnWriteError = (e: CorpusWriteError) => {
    if (writeError !== null) return;
    writeError = e.message;
    Atomics.store(stopFlag, 0, 1);
    progress.line(`shadowfuzz: ${e.message}: stopping the campaign`);
  };
  let result;
  try {
    result = await runCampaign({
      engine: {
        seed: flags.seed,
        constraints: {
          areas: flags.areas,
          ...(flags.backend === "kvm" ? { config: { fixed: kvmPvmConfig() }, kvm: true } : {}),
        },
        diff: {
          strict: flags.strict,
          audit: flags.audit,
          inject: flags.inject === undefined ? [] : [flags.inject],
        },
        backend,
        guide: flags.guide,
      },
      workers: flags.workers,
      backend: ref,
      factory,
      ...(flags.seconds === undefined ? {} : { seconds: flags.seconds }),
      ...(flags.runs === undefined ? {} : { runs: flags.runs }),
      knownSignatures: existing.map((f) => f.signature),
      onProgress: (p) => progress.update(p),
      onFinding: async (cf: CampaignFinding) => {
        const f = cf.first;
        // A divergence a known deviation explains is not a finding of its own (unless the
        // corpus holds its identity): it is counted under the deviation.
        if (f.deviation !== undefined && !knownIds.has(f.id)) return;
        let isNew: boolean;
        if (writeError !== null) {
          // The corpus refused an earlier write: keep the finding for the summary.
          unsaved.push(f);
          isNew = !knownIds.has(f.id);
        } else {
          try {
            isNew = await recordFinding(flags.corpus, f, cf.hits, {
              ...ctx,
              now: new Date().toISOString(),
            }) && !knownIds.has(f.id);
          } catch (e) {
            if (!(e instanceof CorpusWriteError)) throw e;
            stopOnWriteError(e);
            unsaved.push(f);
            isNew = !knownIds.has(f.id);
          }
        }
        recorded.set(f.id, { hits: cf.hits, isNew });
        const ops = f.minimized?.ops ?? (f.trace as { ops: unknown[] }).ops.length;
        progress.line(
          `${isNew ? "new finding" : "known finding"} ${f.id}: ${titleOf(f)} (${ops} ops)\n` +
            `  replay: ${replayCommand(flags.corpus, f.id)}`,
        );
      },
    }, stop);
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    progress.clear();
  }
  // Hits seen after a finding was first recorded.
  for (const cf of result.findings) {
    const r = recorded.get(cf.first.id);
    if (r !== undefined && cf.hits > r.hits) {
      if (writeError !== null) continue;
      try {
        await addHits(flags.corpus, cf.first.id, cf.hits - r.hits, {
          ...ctx,
          now: new Date().toISOString(),
        });
      } catch (e) {
        if (!(e instanceof CorpusWriteError)) throw e;
        stopOnWriteError(e);
      }
    }
  }
  const opsPerSec = result.ops / Math.max(result.seconds, 1e-9);
  const summaryFindings = result.findings.filter((cf) => recorded.has(cf.first.id)).map((cf) => ({
    id: cf.first.id,
    signature: cf.first.signature,
    title: titleOf(cf.first),
    /** Seconds from the campaign's start to the first run that showed it. */
    seconds: cf.seconds,
    new: recorded.get(cf.first.id)?.isNew ?? false,
    ops: cf.first.minimized?.ops ?? (cf.first.trace as { ops: unknown[] }).ops.length,
    hits: cf.hits,
    replay: replayCommand(flags.corpus, cf.first.id),
  }));
  // What the run record and the JSON summary both say.
  const common = {
    seed: String(flags.seed),
    seconds: result.seconds,
    runs: result.runs,
    ops: result.ops,
    opsPerSec,
    workers: flags.workers,
    backend,
    ...(flags.inject === undefined ? {} : { inject: flags.inject }),
    coverage: result.coverageEvents.length,
    knownDeviations: result.deviations,
    ...(host === undefined ? {} : { host }),
  };
  if (writeError === null) {
    try {
      await writeRun(flags.corpus, {
        format: RUN_FORMAT,
        time,
        ...common,
        findings: summaryFindings.map((f) => ({ id: f.id, signature: f.signature, new: f.new })),
      });
    } catch (e) {
      if (!(e instanceof CorpusWriteError)) throw e;
      stopOnWriteError(e);
    }
  }
  // Findings the corpus could not take, whole (JSON), for the user to keep.
  const unsavedFindings = unsaved.map((f) => makeFinding(f, ctx, recorded.get(f.id)?.hits ?? 1));
  const newCount = summaryFindings.filter((f) => f.new).length;
  if (flags.json) {
    console.log(JSON.stringify({
      ...common,
      areas: flags.areas,
      guide: flags.guide,
      coverageTotal: result.coverageTotal,
      kept: result.pool,
      interrupted: result.interrupted,
      corpusErrors: errors,
      findings: summaryFindings,
      ...(writeError === null ? {} : { writeError, unsaved: unsavedFindings }),
    }));
  } else {
    console.log(
      `seed ${flags.seed}: ${result.runs} runs, ${result.ops} ops in ${
        result.seconds.toFixed(1)
      }s ` +
        `(${rate(opsPerSec)} ops/s, ${flags.workers} workers), coverage ` +
        `${result.coverageEvents.length}/${result.coverageTotal}, ${result.findings.length} findings ` +
        `(${newCount} new)${result.interrupted ? ", interrupted" : ""}`,
    );
    for (const f of summaryFindings) {
      console.log(
        `  ${f.new ? "NEW " : "seen"} ${f.id}  ${f.title}  (${f.ops} ops, ${f.hits} hits)`,
      );
      console.log(`       ${f.replay}`);
    }
    for (const [name, runs] of Object.entries(result.deviations)) {
      console.log(`  known deviation ${name}: ${runs} run${runs === 1 ? "" : "s"}`);
    }
    if (writeError !== null) {
      console.log(
        `  NOT SAVED (${writeError}): ${unsavedFindings.length} finding(s), each as one ` +
          `finding file's JSON on the next lines`,
      );
      for (const f of unsavedFindings) console.log(JSON.stringify(f));
    }
  }
  if (writeError !== null) {
    console.error(`shadowfuzz: ${writeError}: the campaign stopped early (exit 4)`);
    return EXIT_NOT_SAVED;
  }
  return newCount > 0 ? 1 : 0;
}
