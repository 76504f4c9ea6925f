/**
 * @module
 * `deno task migrate [--corpus DIR] [--dry-run]`: moves a corpus's findings to the current
 * identity rules (docs/identity.md). For each finding the identity is computed again
 * from its minimized trace (the core is run again for its event path, the kvm backend
 * for its trail where /dev/kvm works here; elsewhere a kvm finding keeps its identity);
 * the file is renamed to the new id, the old id is kept in `aliases` (so
 * `replay OLD-ID` still works), and status, note and hits are kept. Findings that
 * collapse into one id are merged: hits added, seeds joined, the earliest firstSeen,
 * the most advanced status, and both notes. A core finding that a known deviation
 * explains gets its `deviation` field.
 *
 * Idempotent: a corpus already migrated is left byte-identical.
 */
import { join } from "node:path";
import type { BackendName } from "../../src/backend.ts";
import { coreFactory } from "../../src/core/mod.ts";
import { kvmFactory } from "../../src/kvm/mod.ts";
import { atomicWriteText, readFindingState, stateDir } from "../../src/corpus/store.ts";
import type { FindingState } from "../../src/corpus/types.ts";
import { diffTrace, type Divergence } from "../../src/diff.ts";
import { outcomeFromJson, permittedFromJson } from "../../src/trace/json.ts";
import { parseOpJson, traceFromJson } from "../../src/trace/parse.ts";
import { Engine } from "../campaign/engine.ts";
import { identify, type Probes } from "../campaign/identity.ts";
import { args, type FlagSpecs, HelpRequest, UsageError } from "./usage.ts";

/** The order statuses advance in: a merge keeps the furthest. */
const STATUS_ORDER = ["new", "invalid", "wontfix", "confirmed", "fixed"];

/** What migrating one finding file gives. */
export interface Migrated {
  oldId: string;
  newId: string;
  signature: string;
  title: string;
  deviation?: string;
}

type Json = Record<string, unknown>;

/** The divergence a finding records, rebuilt from its JSON (for backends with no rerun). */
function recorded(f: Json): Divergence {
  const min = f.minimized as { ops: unknown[] };
  const d = f.divergence as Json;
  const index = d.opIndex as number;
  return {
    kind: f.kind as Divergence["kind"],
    index,
    op: parseOpJson(min.ops[index], index),
    observed: outcomeFromJson(d.observed),
    permitted: (d.permitted as unknown[]).map(permittedFromJson),
    ...(typeof d.invariant === "string" ? { invariant: d.invariant } : {}),
  };
}

/** The identity of one finding under today's rules. */
export function migrateOne(f: Json): Migrated {
  const trace = traceFromJson(f.minimized);
  const backend = (f.divergence as Json).backend as BackendName;
  const inject = typeof f.inject === "string" ? [f.inject] : [];
  let d: Divergence | null;
  let deviation: string | undefined;
  let probes: Probes | undefined;
  if (backend === "core") {
    const options = { inject, audit: f.kind === "invariant" };
    d = diffTrace(trace, coreFactory, options).divergence;
    if (d === null) throw new Error(`finding ${f.id}: the minimized trace no longer diverges`);
    const engine = new Engine(coreFactory, {
      seed: 0,
      constraints: { areas: ["mmu", "memslot", "pmu"] },
      diff: options,
      backend,
    });
    deviation = engine.explain(trace, d);
    probes = { factory: coreFactory, trace, diff: options };
  } else if (backend === "kvm") {
    // The path is the kvm backend's trail, read on the kernel here; where /dev/kvm cannot
    // be used, or the kernel no longer diverges there, the finding keeps its identity.
    d = kvmFactory.available() === null ? diffTrace(trace, kvmFactory).divergence : null;
    if (d === null || d.index !== (f.divergence as Json).opIndex) {
      return {
        oldId: f.id as string,
        newId: f.id as string,
        signature: f.signature as string,
        title: f.title as string,
      };
    }
  } else d = recorded(f);
  // A kvm finding's path is its trail, read above on this kernel; it is not probed
  // (docs/identity.md).
  const id = identify(d, backend, trace.config, deviation, probes);
  return {
    oldId: f.id as string,
    newId: id.id,
    signature: id.signature,
    title: id.title,
    ...(deviation === undefined ? {} : { deviation }),
  };
}

/** Merges `b` into `a` (both findings of one new id). */
function merge(a: Json, b: Json): Json {
  const out: Json = { ...a };
  out.hits = (a.hits as number) + (b.hits as number);
  out.seeds = [...new Set([...(a.seeds as string[]), ...(b.seeds as string[])])].slice(-20);
  if (Date.parse(b.firstSeen as string) < Date.parse(a.firstSeen as string)) {
    out.firstSeen = b.firstSeen;
    out.trace = b.trace;
  }
  if (Date.parse(b.lastSeen as string) > Date.parse(a.lastSeen as string)) {
    out.lastSeen = b.lastSeen;
  }
  if (STATUS_ORDER.indexOf(b.status as string) > STATUS_ORDER.indexOf(a.status as string)) {
    out.status = b.status;
  }
  const notes = [a.note, b.note].filter((n): n is string => typeof n === "string" && n !== "");
  const unique = [...new Set(notes)];
  if (unique.length > 0) out.note = unique.join("\n\nAlso (merged finding): ").slice(0, 4000);
  // The shorter minimized trace is the better reproducer.
  const len = (x: Json) => (x.minimized as { ops: unknown[] }).ops.length;
  if (len(b) < len(a)) {
    out.minimized = b.minimized;
    out.divergence = b.divergence;
    out.title = b.title;
  }
  out.aliases = [
    ...new Set([...(a.aliases as string[] ?? []), ...(b.aliases as string[] ?? [])]),
  ].sort();
  return out;
}

/** Two states of one new id, added up. */
function mergeState(a: FindingState, b: FindingState): FindingState {
  const history = [...a.history, ...b.history].sort((x, y) =>
    Date.parse(x.time) - Date.parse(y.time)
  );
  return {
    ...a,
    hits: a.hits + b.hits,
    lastSeen: Date.parse(b.lastSeen) > Date.parse(a.lastSeen) ? b.lastSeen : a.lastSeen,
    seeds: [...new Set([...a.seeds, ...b.seeds])].slice(-20),
    history: history.slice(-50),
  };
}

/** Migrates every finding of `corpus`; returns what it did. */
export async function migrateCorpus(
  corpus: string,
  options: { dryRun?: boolean } = {},
): Promise<{ migrated: Migrated[]; files: number; written: number; removed: number }> {
  const dir = join(corpus, "findings");
  const byId = new Map<string, Json>();
  const migrated: Migrated[] = [];
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && /^[0-9a-f]{16}\.json$/.test(e.name)) names.push(e.name);
  }
  names.sort();
  for (const name of names) {
    const f = JSON.parse(await Deno.readTextFile(join(dir, name))) as Json;
    const m = migrateOne(f);
    migrated.push(m);
    const aliases = new Set<string>((f.aliases as string[] | undefined) ?? []);
    if (m.oldId !== m.newId) aliases.add(m.oldId);
    aliases.delete(m.newId);
    const next: Json = {
      ...f,
      format: "shadowfuzz.finding/2",
      id: m.newId,
      signature: m.signature,
      title: m.title,
      aliases: [...aliases].sort(),
    };
    if (m.deviation !== undefined) next.deviation = m.deviation;
    const seen = byId.get(m.newId);
    byId.set(m.newId, seen === undefined ? next : merge(seen, next));
  }
  let written = 0, removed = 0;
  for (const [id, f] of byId) {
    if ((f.aliases as string[]).length === 0) delete f.aliases;
    const path = join(dir, `${id}.json`);
    const text = JSON.stringify(f, null, 2) + "\n";
    let old: string | null = null;
    try {
      old = await Deno.readTextFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (old !== text) {
      written++;
      if (!options.dryRun) await atomicWriteText(path, text);
    }
  }
  for (const name of names) {
    const id = name.slice(0, 16);
    if (!byId.has(id)) {
      removed++;
      if (!options.dryRun) await Deno.remove(join(dir, name));
    }
  }
  // Per-run state (untracked `state/<id>.json`) follows its finding to the new id.
  const states = new Map<string, FindingState>();
  const moved: string[] = [];
  for (const m of migrated) {
    if (m.oldId === m.newId) continue;
    const state = await readFindingState(corpus, m.oldId);
    if (state === null) continue;
    moved.push(m.oldId);
    const into = states.get(m.newId) ?? await readFindingState(corpus, m.newId);
    states.set(m.newId, into === null ? { ...state, id: m.newId } : mergeState(into, state));
  }
  if (!options.dryRun) {
    for (const [id, state] of states) {
      await atomicWriteText(join(stateDir(corpus), `${id}.json`), JSON.stringify(state) + "\n");
    }
    for (const id of moved) await Deno.remove(join(stateDir(corpus), `${id}.json`));
  }
  return { migrated, files: names.length, written, removed };
}

/** `migrate`'s usage, for `--help` and usage errors. */
export const MIGRATE_USAGE = `Usage: deno task migrate [--corpus DIR] [--dry-run]

Recomputes every finding's identity in a corpus (docs/identity.md) after the identity
rules changed: a finding whose id changes is renamed, its old id kept as an alias, its
notes, status and triage kept. Run it after pulling a version with new rules.`;

/** `migrate`'s flags. */
export const MIGRATE_FLAGS = {
  corpus: { type: "string", value: "DIR", help: "the corpus to migrate (default corpus)" },
  "dry-run": { type: "boolean", help: "print what would change, write nothing" },
} as const satisfies FlagSpecs;

/** `deno task migrate`: exit 0, 2 on a usage error, 3 when the migration failed. */
export async function cmdMigrate(argv: string[]): Promise<number> {
  let values;
  try {
    const parsed = args(argv, MIGRATE_FLAGS, MIGRATE_USAGE);
    if (parsed.positionals.length > 0) {
      throw new UsageError(`Unexpected argument "${parsed.positionals[0]}"\n${MIGRATE_USAGE}`);
    }
    values = parsed.values;
  } catch (e) {
    if (e instanceof HelpRequest) {
      console.log(e.message);
      return 0;
    }
    if (e instanceof UsageError) {
      // One line: the problem, and where the usage is.
      console.error(
        `Cannot parse arguments of deno task migrate: ${e.message.split("\n")[0]}` +
          " (deno task migrate --help for usage)",
      );
      return 2;
    }
    throw e;
  }
  const dryRun = values["dry-run"] ?? false;
  const corpus = values.corpus ?? "corpus";
  let r;
  try {
    r = await migrateCorpus(corpus, { dryRun });
  } catch (e) {
    console.error(`shadowfuzz: migrate ${corpus}: ${(e as Error).message}`);
    return 3;
  }
  for (const m of r.migrated) {
    console.log(
      `${m.oldId} -> ${m.newId}${
        m.deviation === undefined ? "" : ` [${m.deviation}]`
      }  ${m.signature}`,
    );
  }
  console.log(
    `${r.files} findings -> ${new Set(r.migrated.map((m) => m.newId)).size} ids; ` +
      `${r.written} written, ${r.removed} removed${dryRun ? " (dry run)" : ""}`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await cmdMigrate(Deno.args));
