/**
 * @module
 * The corpus store (docs/corpus.md): reads and writes finding files
 * (`<corpus>/findings/<id>.json`, tracked: content and triage), their per-run state
 * (`<corpus>/state/<id>.json`, untracked: hits, last seen, seeds, hit history; merged
 * in by every reader), campaign run records (`<corpus>/runs/*.json`) and the catalogue
 * self-test results (`<corpus>/selftest.json`).
 *
 * Every write goes to a temporary file in the same directory, written whole (short
 * writes continued), flushed and then renamed over the target, so a reader sees the
 * old file or the new one, never half of one (rename within one directory is atomic on
 * POSIX file systems); a failed write leaves the old file and says why in one line
 * ({@linkcode CorpusWriteError}). Read-modify-write updates and the first write of a
 * finding hold a lock (flock) beside the finding, so two writers never lose each
 * other's change, and a dead writer's lock is free at once.
 * Readers never crash on a bad file: {@linkcode listFindings} and
 * {@linkcode listRuns} report a corrupt or invalid file by name and skip it.
 */
import { BACKEND_NAMES, FINDING_KINDS } from "../backend.ts";
import { traceFromJson } from "../trace/parse.ts";
import { MAX_JSON_DEPTH, tooDeepAt } from "./depth.ts";
import { dirname, join } from "node:path";
import {
  AREAS,
  type Finding,
  FINDING_FORMAT,
  FINDING_FORMAT_V2,
  FINDING_STATUSES,
  type FindingState,
  type FindingStatus,
  type HitRecord,
  MAX_HISTORY,
  RUN_FORMAT,
  type RunRecord,
  STATE_FORMAT,
} from "./types.ts";

/** A finding id: 16 lowercase hex digits (the signature hash; also the file name). */
export const FINDING_ID_RE: RegExp = /^[0-9a-f]{16}$/;

/** The longest triage note the store accepts, in characters (code points: `[...note]`). */
export const MAX_NOTE_LENGTH = 4000;

/** The largest `host` record of a finding, in bytes of JSON. */
export const MAX_HOST_BYTES = 65536;

/** A file the store could not use, and why. */
export interface FileError {
  /** The file name, relative to its directory (`findings/` or `runs/`). */
  file: string;
  error: string;
}

/** The catalogue self-test results (`corpus/selftest.json`). */
export interface SelfTest {
  bugs: SelfTestBug[];
  found: number;
  total: number;
  medianSeconds: number | null;
  /** ISO 8601 time of the self-test run. */
  time: string;
}

/** One injected bug of the self-test: was it found, how fast, how small. */
export interface SelfTestBug {
  name: string;
  found: boolean;
  /** Seconds to the first finding; `null` when not found. */
  seconds: number | null;
  /** Length of the minimized trace; `null` when not found. */
  minimizedOps: number | null;
}

/** A triage change to a finding. */
export interface FindingUpdate {
  status?: FindingStatus;
  note?: string;
}

/**
 * Says whether `id` is a well-formed finding id. Checked before any path is built
 * from it, so an id can never name a file outside `findings/`.
 */
export function isFindingId(id: string): boolean {
  return FINDING_ID_RE.test(id);
}

/** Says whether `status` is one of {@linkcode FINDING_STATUSES}. */
export function isFindingStatus(status: unknown): status is FindingStatus {
  return typeof status === "string" && (FINDING_STATUSES as readonly string[]).includes(status);
}

/** The directory of finding files in a corpus. */
export function findingsDir(dir: string): string {
  return join(dir, "findings");
}

/** The directory of per-run finding state in a corpus (untracked: hits, last seen, seeds). */
export function stateDir(dir: string): string {
  return join(dir, "state");
}

/** The directory of run records in a corpus. */
export function runsDir(dir: string): string {
  return join(dir, "runs");
}

/**
 * Checks the structure of a parsed finding file and returns it typed. Traces are
 * checked only to be objects with an `ops` array: their ops are the trace parser's
 * business, and a finding whose trace no longer parses must still be listable.
 *
 * @param value The parsed JSON.
 * @returns The same value, typed.
 * @throws {TypeError} Naming the first bad field.
 */
export function validateFinding(value: unknown): Finding {
  const f = expectObject(value, "finding");
  if (f.format !== FINDING_FORMAT && f.format !== FINDING_FORMAT_V2) {
    fail(`field "format" is not "${FINDING_FORMAT}" or "${FINDING_FORMAT_V2}"`);
  }
  const id = expectString(f, "id");
  if (!isFindingId(id)) fail(`field "id" is not 16 lowercase hex digits`);
  expectString(f, "signature");
  expectOneOf(f, "area", AREAS);
  expectOneOf(f, "kind", FINDING_KINDS);
  expectString(f, "title");
  expectOneOf(f, "status", FINDING_STATUSES);
  if (f.note !== undefined) {
    const note = expectString(f, "note");
    if ([...note].length > MAX_NOTE_LENGTH) fail(`field "note" is longer than ${MAX_NOTE_LENGTH}`);
  }
  expectTime(f, "firstSeen");
  expectTime(f, "lastSeen");
  const hits = f.hits;
  if (typeof hits !== "number" || !Number.isSafeInteger(hits) || hits < 0) {
    fail(`field "hits" is not a non-negative integer`);
  }
  if (!Array.isArray(f.seeds) || !f.seeds.every((s) => typeof s === "string")) {
    fail(`field "seeds" is not an array of strings`);
  }
  if (f.inject !== undefined) expectString(f, "inject");
  if (f.history !== undefined) expectHistory(f.history, "history");
  if (f.aliases !== undefined) {
    if (!Array.isArray(f.aliases) || !f.aliases.every((a) => isFindingId(a))) {
      fail(`field "aliases" is not an array of 16 lowercase hex digit ids`);
    }
  }
  if (f.deviation !== undefined) expectString(f, "deviation");
  if (f.host !== undefined) {
    const host = f.host;
    if (
      typeof host !== "object" || host === null || Array.isArray(host) ||
      ![Object.prototype, null].includes(Object.getPrototypeOf(host))
    ) {
      fail(`field "host" is not a plain object`);
    }
    if (new TextEncoder().encode(JSON.stringify(host)).length > MAX_HOST_BYTES) {
      fail(`field "host" is larger than ${MAX_HOST_BYTES / 1024} KiB as JSON`);
    }
  }
  expectTrace(f, "trace");
  expectTrace(f, "minimized");
  const d = expectObject(f.divergence, `field "divergence"`);
  const opIndex = d.opIndex;
  if (typeof opIndex !== "number" || !Number.isSafeInteger(opIndex) || opIndex < 0) {
    fail(`field "divergence.opIndex" is not a non-negative integer`);
  }
  expectOneOf(d, "backend", BACKEND_NAMES, "divergence.");
  if (!("observed" in d)) fail(`field "divergence.observed" is missing`);
  if (!Array.isArray(d.permitted)) fail(`field "divergence.permitted" is not an array`);
  if (d.invariant !== undefined) expectString(d, "invariant", "divergence.");
  expectString(f, "harness");
  return value as Finding;
}

/**
 * Checks the structure of a parsed run record and returns it typed.
 *
 * @throws {TypeError} Naming the first bad field.
 */
export function validateRun(value: unknown): RunRecord {
  const r = expectObject(value, "run record");
  if (r.format !== RUN_FORMAT) fail(`field "format" is not "${RUN_FORMAT}"`);
  expectTime(r, "time");
  expectString(r, "seed");
  for (const key of ["seconds", "opsPerSec"] as const) {
    const v = r[key];
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
      fail(`field "${key}" is not a non-negative number`);
    }
  }
  for (const key of ["runs", "ops", "workers", "coverage"] as const) {
    const v = r[key];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      fail(`field "${key}" is not a non-negative integer`);
    }
  }
  expectOneOf(r, "backend", BACKEND_NAMES);
  if (r.inject !== undefined) expectString(r, "inject");
  if (!Array.isArray(r.findings)) fail(`field "findings" is not an array`);
  for (const [i, item] of r.findings.entries()) {
    const f = expectObject(item, `field "findings[${i}]"`);
    expectString(f, "id", `findings[${i}].`);
    expectString(f, "signature", `findings[${i}].`);
    if (typeof f.new !== "boolean") fail(`field "findings[${i}].new" is not a boolean`);
  }
  return value as RunRecord;
}

/**
 * Checks the structure of a parsed self-test results file and returns it typed.
 *
 * @throws {TypeError} Naming the first bad field.
 */
export function validateSelfTest(value: unknown): SelfTest {
  const s = expectObject(value, "self-test results");
  if (!Array.isArray(s.bugs)) fail(`field "bugs" is not an array`);
  for (const [i, item] of s.bugs.entries()) {
    const b = expectObject(item, `field "bugs[${i}]"`);
    expectString(b, "name", `bugs[${i}].`);
    if (typeof b.found !== "boolean") fail(`field "bugs[${i}].found" is not a boolean`);
    for (const key of ["seconds", "minimizedOps"] as const) {
      const v = b[key];
      if (v !== null && (typeof v !== "number" || !Number.isFinite(v) || v < 0)) {
        fail(`field "bugs[${i}].${key}" is not a non-negative number or null`);
      }
    }
  }
  for (const key of ["found", "total"] as const) {
    const v = s[key];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      fail(`field "${key}" is not a non-negative integer`);
    }
  }
  const median = s.medianSeconds;
  if (median !== null && (typeof median !== "number" || !Number.isFinite(median))) {
    fail(`field "medianSeconds" is not a number or null`);
  }
  expectTime(s, "time");
  return value as SelfTest;
}

/**
 * Parses and validates the text of a finding file.
 *
 * @param text The file contents.
 * @param file The file name, checked against the id inside (`<id>.json`).
 * @throws {SyntaxError} When the text is not JSON.
 * @throws {TypeError} When the structure is wrong or the id does not match the name.
 */
export function parseFindingFile(text: string, file?: string): Finding {
  const json = JSON.parse(text);
  const deep = tooDeepAt(json);
  if (deep !== null) fail(`field "${deep}" nests deeper than ${MAX_JSON_DEPTH} levels`);
  const finding = validateFinding(json);
  if (file !== undefined && file !== `${finding.id}.json`) {
    fail(`field "id" (${finding.id}) does not match the file name`);
  }
  return finding;
}

/**
 * Checks the structure of a parsed finding state file and returns it typed.
 *
 * @throws {TypeError} Naming the first bad field.
 */
export function validateFindingState(value: unknown): FindingState {
  const s = expectObject(value, "finding state");
  if (s.format !== STATE_FORMAT) fail(`field "format" is not "${STATE_FORMAT}"`);
  const id = expectString(s, "id");
  if (!isFindingId(id)) fail(`field "id" is not 16 lowercase hex digits`);
  expectCount(s, "hits");
  expectTime(s, "lastSeen");
  if (!Array.isArray(s.seeds) || !s.seeds.every((x) => typeof x === "string")) {
    fail(`field "seeds" is not an array of strings`);
  }
  expectHistory(s.history, "history");
  return value as FindingState;
}

/** The state file of a finding: `state/<id>.json`. */
function statePath(dir: string, id: string): string {
  return join(stateDir(dir), `${id}.json`);
}

/**
 * Reads the state file of a finding (what changes on every run: hits, last seen,
 * seeds, history).
 *
 * @returns The state, or `null` when the finding has none.
 * @throws {SyntaxError|TypeError} Naming the file, when it is not a valid state file.
 */
export async function readFindingState(dir: string, id: string): Promise<FindingState | null> {
  checkId(id);
  const path = statePath(dir, id);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  try {
    const state = validateFindingState(JSON.parse(text));
    if (state.id !== id) fail(`field "id" (${state.id}) does not match the file name`);
    return state;
  } catch (e) {
    if (e instanceof SyntaxError) throw new SyntaxError(`${path}: ${errorText(e)}`);
    throw new TypeError(`${path}: ${errorText(e)}`);
  }
}

/**
 * A finding as its readers see it: the finding file's content with its state merged
 * in. The finding file's run values are the base (a tracked finding keeps its
 * historic hits) and the state adds to them: `hits` is the sum, `lastSeen` the later,
 * `seeds` the finding file's followed by the state's (the newest 20 kept), `history`
 * the state's. Without a state the finding is returned as it is.
 *
 * @returns A new object (sharing the traces and other nested values of `content`);
 *   neither argument is changed.
 */
export function mergeFindingState(content: Finding, state: FindingState | null): Finding {
  const merged: Finding = { ...content, seeds: [...content.seeds] };
  if (state === null) return merged;
  merged.hits = content.hits + state.hits;
  if (Date.parse(state.lastSeen) > Date.parse(content.lastSeen)) merged.lastSeen = state.lastSeen;
  const seeds = [...content.seeds, ...state.seeds.filter((s) => !content.seeds.includes(s))];
  merged.seeds = seeds.slice(-MAX_SEEDS);
  merged.history = state.history.map((h) => ({ ...h }));
  return merged;
}

/**
 * The state that, merged into `content`, gives the run values of `next` (a changed
 * merged finding).
 *
 * @throws {TypeError} When `next` has fewer hits than the finding file.
 */
function stateFor(content: Finding, next: Finding): FindingState {
  if (next.hits < content.hits) {
    fail(`field "hits" (${next.hits}) is below the finding file's ${content.hits}`);
  }
  return {
    format: STATE_FORMAT,
    id: content.id,
    hits: next.hits - content.hits,
    lastSeen: Date.parse(next.lastSeen) > Date.parse(content.lastSeen)
      ? next.lastSeen
      : content.lastSeen,
    seeds: next.seeds.filter((s) => !content.seeds.includes(s)).slice(-MAX_SEEDS),
    history: (next.history ?? []).slice(-MAX_HISTORY),
  };
}

/** The finding file's content of a changed merged finding: its run values left as they were. */
function contentFor(content: Finding, next: Finding): Finding {
  const out: Finding = { ...next, hits: content.hits, lastSeen: content.lastSeen };
  out.seeds = content.seeds;
  if (content.history === undefined) delete out.history;
  else out.history = content.history;
  return out;
}

/** What a reader sees of a finding's run values. */
function runView(f: Finding): string {
  return JSON.stringify([f.hits, f.lastSeen, f.seeds, f.history ?? []]);
}

/**
 * Reads every finding of a corpus, each with its state merged in
 * ({@linkcode mergeFindingState}). A missing `findings/` directory is an empty corpus.
 *
 * @param dir The corpus directory.
 * @returns The valid findings in file-name order, and one error per file that could
 *   not be read, parsed or validated. A bad state file is reported as
 *   `../state/<id>.json` (relative to `findings/`, like the others) and its finding is
 *   listed without it.
 */
export async function listFindings(
  dir: string,
): Promise<{ findings: Finding[]; errors: FileError[] }> {
  const base = findingsDir(dir);
  const names = await jsonFiles(base);
  const states = new Set(await jsonFiles(stateDir(dir)));
  const findings: Finding[] = [];
  const errors: FileError[] = [];
  const results = await Promise.all(names.map(async (file) => {
    let content: Finding;
    try {
      content = parseFindingFile(await Deno.readTextFile(join(base, file)), file);
    } catch (e) {
      return { file, error: errorText(e) };
    }
    if (!states.has(file)) return { file, finding: content };
    try {
      return { file, finding: mergeFindingState(content, await readFindingState(dir, content.id)) };
    } catch (e) {
      return { file, finding: content, stateError: errorText(e) };
    }
  }));
  for (const r of results) {
    if ("finding" in r) findings.push(r.finding);
    if ("error" in r) errors.push({ file: r.file, error: r.error });
    if ("stateError" in r) errors.push({ file: `../state/${r.file}`, error: r.stateError });
  }
  return { findings, errors };
}

/** Reads and validates a finding file; `null` when it does not exist. Errors name the file. */
async function readContent(dir: string, id: string): Promise<Finding | null> {
  const file = join(findingsDir(dir), `${id}.json`);
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  try {
    return parseFindingFile(text, `${id}.json`);
  } catch (e) {
    // Name the file: a reader of this error (replay, the dashboard) may not know it.
    if (e instanceof SyntaxError) throw new SyntaxError(`${file}: ${errorText(e)}`);
    throw new TypeError(`${file}: ${errorText(e)}`);
  }
}

/**
 * Reads one finding, with its state merged in ({@linkcode mergeFindingState}). When no
 * `<id>.json` exists, a finding that lists `id` among its `aliases` (an id under
 * earlier identity rules) is returned instead, so old ids keep resolving.
 *
 * A bad state file does not hide its finding: the finding is returned without it
 * ({@linkcode listFindings} reports the file).
 *
 * @param dir The corpus directory.
 * @param id The finding id (16 lowercase hex digits).
 * @returns The finding, or `null` when no file has that id or alias.
 * @throws {TypeError} When the id is malformed (before touching the disk) or the file
 *   is invalid; {SyntaxError} when it is not JSON.
 */
export async function readFinding(dir: string, id: string): Promise<Finding | null> {
  checkId(id);
  const content = await readContent(dir, id);
  if (content === null) return await findFindingByAlias(dir, id);
  let state: FindingState | null = null;
  try {
    state = await readFindingState(dir, id);
  } catch {
    // Reported by listFindings; the finding's content is still good.
  }
  return mergeFindingState(content, state);
}

/**
 * Finds the finding that lists `id` among its `aliases` (a scan of every finding
 * file; the first by file name wins).
 *
 * @returns The finding with its state merged in, or `null`.
 */
export async function findFindingByAlias(dir: string, id: string): Promise<Finding | null> {
  checkId(id);
  const realId = await resolveAlias(dir, id);
  return realId === null ? null : await readFinding(dir, realId);
}

/** The id of the finding that has `alias` among its aliases, or `null`. */
async function resolveAlias(dir: string, alias: string): Promise<string | null> {
  const base = findingsDir(dir);
  for (const file of await jsonFiles(base)) {
    // Cheap first: only files that mention the alias are parsed.
    let text: string;
    try {
      text = await Deno.readTextFile(join(base, file));
    } catch {
      continue;
    }
    if (!text.includes(alias)) continue;
    try {
      const f = parseFindingFile(text, file);
      if (f.id !== alias && f.aliases?.includes(alias)) return f.id;
    } catch {
      // A bad file is listFindings' to report.
    }
  }
  return null;
}

/**
 * Writes a finding atomically to `findings/<id>.json`, creating the directory, under
 * the finding's lock (so it never interleaves with a read-modify-write of it). The
 * finding is written as given; a state file it has (`state/<id>.json`) is kept and
 * still merged in by readers.
 *
 * @throws {TypeError} When the finding is structurally invalid (nothing is written).
 * @throws {CorpusWriteError} When the file system refuses the write.
 */
export async function writeFinding(dir: string, finding: Finding): Promise<void> {
  checkWritableFinding(finding);
  const path = join(findingsDir(dir), `${finding.id}.json`);
  await mkdirFor(findingsDir(dir), path);
  await withLock(path, () => atomicWriteText(path, formatJson(finding)));
}

/** Refuses a finding that is invalid or whose traces would not replay. */
function checkWritableFinding(finding: Finding): void {
  validateFinding(finding);
  // Reading stays lenient (a broken op shows as an error in the dashboard), but nothing
  // writes a finding whose traces would not replay.
  for (const key of ["trace", "minimized"] as const) {
    try {
      traceFromJson(finding[key]);
    } catch (e) {
      throw new TypeError(`Cannot write finding ${finding.id}: field "${key}": ${errorText(e)}`);
    }
  }
}

/** At most this many seeds are kept per finding (the corpus format says 20). */
export const MAX_SEEDS = 20;

/** One sighting of a finding by a campaign. */
export interface Sighting {
  /** How many runs hit it (at least 1). */
  hits: number;
  /** ISO 8601 time of the sighting. */
  time: string;
  /** The campaign's seed (a decimal string). */
  seed: string;
}

/** Adds a sighting to a finding: hits, last seen, the seed (the newest 20) and history. */
function applySighting(f: Finding, s: Sighting): Finding {
  f.hits += s.hits;
  if (Date.parse(s.time) > Date.parse(f.lastSeen)) f.lastSeen = s.time;
  if (!f.seeds.includes(s.seed)) {
    f.seeds.push(s.seed);
    if (f.seeds.length > MAX_SEEDS) f.seeds.splice(0, f.seeds.length - MAX_SEEDS);
  }
  const entry: HitRecord = { time: s.time, seed: s.seed, hits: s.hits };
  f.history = [...(f.history ?? []), entry].slice(-MAX_HISTORY);
  return f;
}

function checkSighting(id: string, s: Sighting): void {
  if (!Number.isSafeInteger(s.hits) || s.hits < 1) {
    throw new TypeError(`Cannot record finding ${id}: hits is not a positive integer`);
  }
  if (typeof s.time !== "string" || Number.isNaN(Date.parse(s.time))) {
    throw new TypeError(`Cannot record finding ${id}: time is not an ISO 8601 time`);
  }
  if (typeof s.seed !== "string") {
    throw new TypeError(`Cannot record finding ${id}: seed is not a string`);
  }
}

/**
 * Records a sighting of a finding in one step under its lock: when the finding exists,
 * its hits, last seen and seeds are updated; when it does not, `create()` is written as
 * the new finding. Two processes recording the same new signature at once therefore
 * create it once, keep every hit, and only one of them is told "new".
 *
 * @param create Builds the new finding (with the sighting's hits) when none exists; its
 *   id must be `id`. Without it a missing finding is left missing.
 * @returns `"new"` when `create()` was written, `"hit"` when an existing finding was
 *   updated, `null` when none exists and there is no `create`.
 * @throws {TypeError} When the id, the sighting or the created finding is bad (nothing
 *   is written); {CorpusWriteError} when the file system refuses the write.
 */
export async function recordSighting(
  dir: string,
  id: string,
  sighting: Sighting,
  create?: () => Finding,
): Promise<"new" | "hit" | null> {
  checkId(id);
  checkSighting(id, sighting);
  if (create === undefined && !(await exists(findingsDir(dir)))) return null;
  // A hit on a finding known under an earlier id goes to that finding.
  const target = (await exists(join(findingsDir(dir), `${id}.json`)))
    ? id
    : (await resolveAlias(dir, id)) ?? id;
  const path = join(findingsDir(dir), `${target}.json`);
  // The lock file lives beside the finding: the folder must exist before the first lock.
  await mkdirFor(findingsDir(dir), path);
  return await withLock(path, async () => {
    const r = await modifyLocked(dir, target, (f) => applySighting(f, sighting));
    if (r !== null) return "hit";
    if (create === undefined) return null;
    const fresh = create();
    if (fresh.id !== id) fail(`field "id" (${fresh.id}) is not the recorded id ${id}`);
    checkWritableFinding(fresh);
    // A state left by a finding file that was removed is not this finding's: set aside.
    const orphan = statePath(dir, id);
    if (await exists(orphan)) {
      try {
        await Deno.rename(orphan, `${orphan}.orphan-${Date.now()}`);
      } catch (e) {
        throw new CorpusWriteError(orphan, e);
      }
    }
    await atomicWriteText(path, formatJson(fresh));
    return "new";
  });
}

/**
 * Changes a finding under its lock: reads it (with its state merged in), applies
 * `change`, validates the result and writes what changed: its content and triage
 * (status, note, ...) to the finding file, its run values (hits, last seen, seeds,
 * history) to the untracked state file `state/<id>.json`. A change of run values only
 * leaves the finding file byte-identical; a triage change leaves the state alone.
 * Concurrent callers (workers recording hits, a dashboard setting a status) are
 * serialized, so no change is lost. An id that is only another finding's alias
 * changes that finding.
 *
 * @param change Returns the new finding; it may modify and return its argument.
 * @returns The finding as now read, or `null` when no file has that id (nothing is
 *   written, `change` is not called).
 * @throws {TypeError} When the id is malformed, the changed finding is invalid or has
 *   fewer hits than its finding file (nothing is written); {CorpusWriteError} when the
 *   file system refuses the write.
 */
export async function modifyFinding(
  dir: string,
  id: string,
  change: (finding: Finding) => Finding,
): Promise<Finding | null> {
  checkId(id);
  // The lock file lives beside the finding: without the folder there is no finding.
  if (!(await exists(findingsDir(dir)))) return null;
  const target = (await exists(join(findingsDir(dir), `${id}.json`)))
    ? id
    : (await resolveAlias(dir, id)) ?? id;
  await removeStaleFiles(findingsDir(dir));
  return await withLock(
    join(findingsDir(dir), `${target}.json`),
    () => modifyLocked(dir, target, change),
  );
}

/** {@linkcode modifyFinding}'s work, for a caller that holds the finding's lock. */
async function modifyLocked(
  dir: string,
  id: string,
  change: (finding: Finding) => Finding,
): Promise<Finding | null> {
  const content = await readContent(dir, id);
  if (content === null) return null;
  let state: FindingState | null;
  try {
    state = await readFindingState(dir, id);
  } catch {
    // Not lost: set aside for a human, and counting starts again from the finding file.
    const path = statePath(dir, id);
    const aside = `${path}.corrupt-${Date.now()}`;
    try {
      await Deno.rename(path, aside);
    } catch (e) {
      throw new CorpusWriteError(path, e);
    }
    state = null;
  }
  const current = mergeFindingState(content, state);
  // A deep copy: a change to nested values must not reach `content`, compared below.
  const next = validateFinding(change(structuredClone(current)));
  if (next.id !== id) fail(`field "id" cannot change from ${id} to ${next.id}`);
  const nextContent = validateFinding(contentFor(content, next));
  let nextState: FindingState | null = stateFor(content, next);
  if (runView(mergeFindingState(content, nextState)) !== runView(current)) {
    const path = statePath(dir, id);
    await mkdirFor(stateDir(dir), path);
    await atomicWriteText(path, formatJson(nextState));
  } else if (state === null) {
    nextState = null;
  } else {
    nextState = state;
  }
  if (JSON.stringify(nextContent) !== JSON.stringify(content)) {
    await atomicWriteText(join(findingsDir(dir), `${id}.json`), formatJson(nextContent));
  }
  return mergeFindingState(nextContent, nextState);
}

/** Says whether `path` exists. */
async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Sets a finding's triage status and/or note (an atomic read-modify-write).
 *
 * @returns The finding as written, or `null` when it does not exist.
 * @throws {TypeError} When the id, status or note is bad; nothing is written.
 */
export async function updateFinding(
  dir: string,
  id: string,
  update: FindingUpdate,
): Promise<Finding | null> {
  checkId(id);
  if (update.status !== undefined && !isFindingStatus(update.status)) {
    throw new TypeError(
      `Cannot update finding ${id}: status must be one of ${FINDING_STATUSES.join(", ")}`,
    );
  }
  if (update.note !== undefined) {
    if (typeof update.note !== "string") {
      throw new TypeError(`Cannot update finding ${id}: note is not a string`);
    }
    if ([...update.note].length > MAX_NOTE_LENGTH) {
      throw new TypeError(
        `Cannot update finding ${id}: note is longer than ${MAX_NOTE_LENGTH} characters`,
      );
    }
  }
  return await modifyFinding(dir, id, (f) => {
    if (update.status !== undefined) f.status = update.status;
    if (update.note !== undefined) {
      if (update.note === "") delete f.note;
      else f.note = update.note;
    }
    return f;
  });
}

/**
 * Reads every run record of a corpus, oldest first. A missing `runs/` directory is
 * no runs.
 */
export async function listRuns(dir: string): Promise<{ runs: RunRecord[]; errors: FileError[] }> {
  const base = runsDir(dir);
  const names = await jsonFiles(base);
  const runs: RunRecord[] = [];
  const errors: FileError[] = [];
  for (const file of names) {
    try {
      runs.push(validateRun(JSON.parse(await Deno.readTextFile(join(base, file)))));
    } catch (e) {
      errors.push({ file, error: errorText(e) });
    }
  }
  runs.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
  return { runs, errors };
}

/**
 * Writes a run record atomically to `runs/<time>-<seed>.json` (the time with `:` and
 * `.` replaced by `-` so the name is portable).
 *
 * @returns The file name written.
 * @throws {TypeError} When the record is invalid (nothing is written).
 */
export async function writeRun(dir: string, run: RunRecord): Promise<string> {
  validateRun(run);
  const base = runsDir(dir);
  const safe = (s: string) => s.replace(/[^0-9A-Za-z-]/g, "-");
  const file = `${safe(run.time)}-${safe(run.seed)}.json`;
  await mkdirFor(base, join(base, file));
  await atomicWriteText(join(base, file), formatJson(run));
  return file;
}

/**
 * Reads `selftest.json` of a corpus.
 *
 * @returns The results, or `null` when the file does not exist.
 * @throws {SyntaxError|TypeError} When the file is not valid results.
 */
export async function readSelfTest(dir: string): Promise<SelfTest | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(join(dir, "selftest.json"));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  return validateSelfTest(JSON.parse(text));
}

/** Where a partial self-test writes its table: never over the full record. */
export const PARTIAL_SELFTEST = "selftest-partial.json";

/**
 * Writes self-test results. A full run (every catalogue bug) replaces the record
 * `selftest.json`, keeping the fields of the old record it does not set (e.g. the
 * `asUser` table of `selftest --as-user`). A partial run (`selftest --bugs X`) never
 * touches `selftest.json`, whatever it holds: its table goes to the untracked
 * `state/selftest-partial.json`, replacing the previous partial table. So the tracked
 * record always describes one whole run, and a quick check of one bug dirties no
 * tracked file.
 *
 * @param options `partial`: the run hunted only some catalogue bugs.
 * @returns The path written.
 * @throws {TypeError} When the results are invalid (nothing is written);
 *   {CorpusWriteError} when the file system refuses the write.
 */
export async function writeSelfTest(
  dir: string,
  results: SelfTest,
  options: { partial: boolean },
): Promise<string> {
  validateSelfTest(results);
  if (options.partial) {
    const path = join(stateDir(dir), PARTIAL_SELFTEST);
    await mkdirFor(stateDir(dir), path);
    await atomicWriteText(path, formatJson({ ...results, partial: true }));
    return path;
  }
  const path = join(dir, "selftest.json");
  await mkdirFor(dir, path);
  let old: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(await Deno.readTextFile(path));
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
      old = parsed as Record<string, unknown>;
    }
  } catch {
    // No record yet, or one that cannot be read: the new run replaces it.
  }
  const { partial: _partial, ...kept } = old;
  await atomicWriteText(path, formatJson({ ...kept, ...results }));
  return path;
}

/**
 * A file-system error of a store write, with a one-line message naming the file and the
 * errno class: `Cannot write corpus/findings/ab.json: no space left on device (ENOSPC)`.
 * Callers tell it from internal errors by its class (a full or read-only corpus is the
 * user's environment, not a bug).
 */
export class CorpusWriteError extends Error {
  /** The file the store was writing (the target, not its temporary file). */
  readonly path: string;
  /** The errno name (`ENOSPC`, `EROFS`, `EACCES`, ...), when known. */
  readonly code: string | undefined;
  constructor(path: string, cause: unknown) {
    const code = errnoName(cause);
    super(`Cannot write ${path}: ${errnoText(cause, code)}`, { cause });
    this.name = "CorpusWriteError";
    this.path = path;
    this.code = code;
  }
}

/**
 * Descriptions of the errno classes a store write meets, by name (as Deno reports them
 * in `error.code`); the numbers are Linux's (include/uapi/asm-generic/errno-base.h and
 * errno.h), for errors that carry only `(os error N)` in their message.
 */
const ERRNOS: Record<string, { text: string; no: number }> = {
  EPERM: { text: "operation not permitted", no: 1 },
  ENOENT: { text: "no such file or directory", no: 2 },
  EIO: { text: "input/output error", no: 5 },
  EACCES: { text: "permission denied", no: 13 },
  EEXIST: { text: "file exists", no: 17 },
  ENOTDIR: { text: "not a directory", no: 20 },
  EISDIR: { text: "is a directory", no: 21 },
  EFBIG: { text: "file too large", no: 27 },
  ENOSPC: { text: "no space left on device", no: 28 },
  EROFS: { text: "read-only file system", no: 30 },
  EDQUOT: { text: "disk quota exceeded", no: 122 },
};

function errnoName(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code !== "") return code;
  const m = e instanceof Error ? /\(os error (\d+)\)/.exec(e.message) : null;
  if (m === null) return undefined;
  return Object.entries(ERRNOS).find(([, v]) => v.no === Number(m[1]))?.[0];
}

function errnoText(e: unknown, code: string | undefined): string {
  const known = code === undefined ? undefined : ERRNOS[code];
  if (known !== undefined) return `${known.text} (${code})`;
  const text = (e instanceof Error ? e.message : String(e)).split("\n")[0]!;
  return code === undefined || text.includes(code) ? text : `${text} (${code})`;
}

/** Writes bytes to an open file and returns how many it wrote (`FsFile.write`'s contract). */
export type WriteFn = (file: Deno.FsFile, bytes: Uint8Array) => Promise<number>;

let writeFn: WriteFn = (file, bytes) => file.write(bytes);

/**
 * Replaces the write call under every store write, for tests (a short write, ENOSPC
 * after N bytes); `null` restores `FsFile.write`.
 */
export function setWriteFnForTesting(fn: WriteFn | null): void {
  writeFn = fn ?? ((file, bytes) => file.write(bytes));
}

/**
 * Writes all of `bytes`: a write may take fewer bytes than it was given (a full disk
 * takes what fits, and only the next write fails with ENOSPC), so this loops until
 * everything is written or a write fails.
 *
 * @throws {Error} The write's own error, or one saying a write made no progress.
 */
async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const n = await writeFn(file, bytes.subarray(done));
    if (!Number.isSafeInteger(n) || n <= 0 || n > bytes.length - done) {
      throw new Error(`short write: ${done} of ${bytes.length} bytes written, then ${n}`);
    }
    done += n;
  }
}

/**
 * Writes `text` to `path` atomically: a temporary file in the same directory (so the
 * rename never crosses a file system), written whole, flushed, then renamed over the
 * target. On any error the temporary file is removed and the target is left as it was.
 *
 * @throws {CorpusWriteError} Naming `path` and the errno class (ENOSPC, EROFS, EACCES).
 */
export async function atomicWriteText(path: string, text: string): Promise<void> {
  const slash = path.lastIndexOf("/");
  const dirPart = slash >= 0 ? path.slice(0, slash + 1) : "";
  const name = path.slice(slash + 1);
  // A leading dot and the .tmp suffix keep readers (which list *.json) from seeing it;
  // the pid lets a later store tell a dead writer's leftover (removeStaleTemps).
  const tmp = `${dirPart}.${name}.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  let file: Deno.FsFile;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true });
  } catch (e) {
    throw new CorpusWriteError(path, e);
  }
  try {
    await writeAll(file, new TextEncoder().encode(text));
    await file.sync();
  } catch (e) {
    file.close();
    await Deno.remove(tmp).catch(() => {});
    throw new CorpusWriteError(path, e);
  }
  file.close();
  try {
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new CorpusWriteError(path, e);
  }
}

/** How many bytes the writability probe writes: a corpus with less free space is full. */
export const PROBE_BYTES = 65536;

/**
 * Checks that a corpus can be written, before a campaign spends its budget: the
 * directory (or, when it does not exist yet, the nearest existing parent that would
 * hold it) and its existing `findings/`, `state/` and `runs/` folders are directories,
 * and each takes a {@linkcode PROBE_BYTES}-byte file (written, flushed, removed).
 * Nothing is created but the probe files.
 *
 * Call it at the start of a campaign and exit 2 with the reason:
 *
 * ```ts
 * const why = await checkWritable(flags.corpus);
 * if (why !== null) {
 *   console.error(`shadowfuzz: ${why}`);
 *   return 2;
 * }
 * ```
 *
 * @returns `null` when the corpus is writable, else a one-line reason, e.g.
 *   `Cannot write corpus /mnt/c: read-only file system (EROFS)`, `Cannot use corpus
 *   c.json: not a directory`, `... no space left on device (ENOSPC)`, `... permission
 *   denied (EACCES)`.
 */
export async function checkWritable(dir: string): Promise<string | null> {
  const shown = dir === "" ? '""' : dir;
  let info: Deno.FileInfo | null = null;
  let existing = dir === "" ? "." : dir;
  for (;;) {
    try {
      info = await Deno.stat(existing);
      break;
    } catch (e) {
      // A missing folder, or a path through a file: look at the parent.
      if (!(e instanceof Deno.errors.NotFound) && errnoName(e) !== "ENOTDIR") {
        return `Cannot use corpus ${shown}: ${errnoText(e, errnoName(e))}`;
      }
      const parent = dirname(existing);
      if (parent === existing) return `Cannot use corpus ${shown}: no existing parent directory`;
      existing = parent;
    }
  }
  if (!info.isDirectory) {
    return existing === dir
      ? `Cannot use corpus ${shown}: not a directory`
      : `Cannot use corpus ${shown}: ${existing} is not a directory`;
  }
  const targets = [existing];
  if (existing === dir) {
    for (const sub of [findingsDir(dir), stateDir(dir), runsDir(dir)]) {
      const s = await Deno.stat(sub).catch(() => null);
      if (s === null) continue;
      if (!s.isDirectory) return `Cannot use corpus ${shown}: ${sub} is not a directory`;
      targets.push(sub);
    }
  }
  for (const target of targets) {
    const why = await probe(target);
    if (why !== null) {
      return `Cannot write corpus ${shown}${target === dir ? "" : ` (${target})`}: ${why}`;
    }
  }
  return null;
}

/** Writes, flushes and removes a probe file in `dir`: null, or the errno class of the failure. */
async function probe(dir: string): Promise<string | null> {
  // Named like an atomicWriteText temp file, so a killed probe's file is cleaned up too.
  const path = join(dir, `.probe.${Deno.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { write: true, createNew: true });
  } catch (e) {
    return errnoText(e, errnoName(e));
  }
  try {
    await writeAll(file, new Uint8Array(PROBE_BYTES));
    await file.sync();
    return null;
  } catch (e) {
    return errnoText(e, errnoName(e));
  } finally {
    file.close();
    await Deno.remove(path).catch(() => {});
  }
}

/** Creates a directory (and its parents) for a write of `target`, or throws naming `target`. */
async function mkdirFor(dir: string, target: string): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (e) {
    throw new CorpusWriteError(target, e);
  }
  await removeStaleFiles(dir);
}

/*
 * Locks. Each finding has a lock file `findings/<id>.json.lock`, held with flock(2)
 * (`Deno.FsFile.tryLock`), not by its mere existence. We chose flock over a lock file
 * that records its holder's pid because the kernel releases a flock when its holder
 * dies, however it dies (SIGKILL, OOM), so a dead holder's lock is free at once and
 * there is nothing to guess: no pid that may have been reused, no start time to read
 * from /proc, no age after which a live but slow holder is robbed. The file left
 * behind by a dead holder is just an unlocked file. (Linux emulates flock with POSIX
 * locks on NFS, so this holds there too.)
 *
 * The lock file is removed on release, so a waiter may lock a file that has just been
 * unlinked while a third process creates and locks a new one: after locking, a locker
 * checks that the path still names the inode it locked, and starts again if not. The
 * holder's pid is written into the file only to name it in the timeout error.
 */

/** Waiting longer than this for a live holder is an error (critical sections take ms). */
const LOCK_TIMEOUT_MS = 120_000;
/** Serializes lockers within this process before they contend for the lock file. */
const localLocks = new Map<string, Promise<unknown>>();

/** Counts of lock acquisitions in this process, for tests and diagnostics. */
export const lockStats: { acquired: number; waits: number } = { acquired: 0, waits: 0 };

/**
 * Runs `fn` holding `<path>.lock` (flock), so writers in this and other processes
 * (fuzz workers, a dashboard) wait for each other.
 */
async function withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const previous = localLocks.get(path) ?? Promise.resolve();
  const run = previous.catch(() => {}).then(async () => {
    const lock = `${path}.lock`;
    let held: Deno.FsFile;
    try {
      held = await acquire(lock);
    } catch (e) {
      // The lock is the first write of an update: a read-only corpus fails here.
      throw e instanceof CorpusWriteError ? e : new CorpusWriteError(path, e);
    }
    try {
      return await fn();
    } finally {
      // Unlink before unlocking: a waiter that then gets the old inode sees it is gone.
      await Deno.remove(lock).catch(() => {});
      held.close();
    }
  });
  localLocks.set(path, run);
  try {
    return await run;
  } finally {
    if (localLocks.get(path) === run) localLocks.delete(path);
  }
}

/**
 * Tries once to take `lock`: the open file, holding the flock, when this process now
 * holds it; `null` when a live process holds it.
 */
async function tryAcquire(lock: string): Promise<Deno.FsFile | null> {
  for (;;) {
    const f = await Deno.open(lock, { read: true, write: true, create: true });
    try {
      if (!(await f.tryLock(true))) {
        f.close();
        return null;
      }
      const mine = await f.stat();
      const named = await Deno.stat(lock).catch(() => null);
      if (named !== null && named.ino === mine.ino && named.dev === mine.dev) return f;
    } catch (e) {
      f.close();
      throw e;
    }
    // Released and unlinked between our open and our lock: lock the current file.
    f.close();
  }
}

async function acquire(lock: string): Promise<Deno.FsFile> {
  const start = Date.now();
  for (let attempt = 0;; attempt++) {
    const f = await tryAcquire(lock);
    if (f !== null) {
      lockStats.acquired++;
      // For the timeout message of a waiter only; a full disk must not stop the update.
      await f.truncate(0).then(() => f.write(new TextEncoder().encode(`${Deno.pid}\n`))).catch(
        () => {},
      );
      return f;
    }
    if (attempt === 0) lockStats.waits++;
    if (Date.now() - start > LOCK_TIMEOUT_MS) {
      const holder = (await Deno.readTextFile(lock).catch(() => "")).trim() || "unknown";
      throw new Error(
        `Cannot lock ${lock}: held by process ${holder} for over ${LOCK_TIMEOUT_MS / 1000} s`,
      );
    }
    await new Promise((r) => setTimeout(r, Math.min(2 + attempt, 50)));
  }
}

/** Directories this process has already cleaned of leftovers. */
const cleanedDirs = new Set<string>();
/** A temporary file of `atomicWriteText` older than this is a leftover, whoever wrote it. */
const STALE_TEMP_MS = 60_000;

/**
 * Removes the leftovers of killed writers from a directory the store is about to
 * write in, once per process: temporary files (`.<name>.<pid>.<rand>.tmp`) whose
 * writer is dead or that are older than a minute, and lock files nobody holds.
 * Best-effort: a file that cannot be removed is left.
 */
export async function removeStaleFiles(dir: string): Promise<void> {
  if (cleanedDirs.has(dir)) return;
  cleanedDirs.add(dir);
  const now = Date.now();
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (e.isFile) names.push(e.name);
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(dir, name);
    if (name.startsWith(".") && name.endsWith(".tmp")) {
      const pid = /\.(\d+)\.[0-9a-f]{8}\.tmp$/.exec(name)?.[1];
      const info = await Deno.stat(path).catch(() => null);
      if (info === null) continue;
      const old = info.mtime !== null && now - info.mtime.getTime() > STALE_TEMP_MS;
      const dead = pid !== undefined && Number(pid) !== Deno.pid && !(await isAlive(Number(pid)));
      if (old || dead) await Deno.remove(path).catch(() => {});
    } else if (name.endsWith(".json.lock")) {
      // Taken with the same protocol as a locker, so a held lock is never removed.
      const f = await tryAcquire(path).catch(() => null);
      if (f !== null) {
        await Deno.remove(path).catch(() => {});
        f.close();
      }
    }
  }
}

/**
 * Says whether process `pid` exists, from /proc (Linux). Where there is no /proc, or it
 * may not be read (Deno lets only --allow-all read /proc, and the tasks run with less),
 * every pid counts as alive, and only age makes a temporary file stale.
 */
async function isAlive(pid: number): Promise<boolean> {
  try {
    await Deno.stat(`/proc/${pid}`);
    return true;
  } catch {
    return !(await Deno.stat("/proc/self").then(() => true, () => false));
  }
}

/** The `*.json` file names of a directory, sorted; none when it does not exist. */
async function jsonFiles(base: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(base)) {
      if (entry.isFile && entry.name.endsWith(".json") && !entry.name.startsWith(".")) {
        names.push(entry.name);
      }
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return names.sort();
}

function formatJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + "\n";
}

function checkId(id: string): void {
  if (typeof id !== "string" || !isFindingId(id)) {
    throw new TypeError(`Cannot use finding id ${JSON.stringify(id)}: not 16 lowercase hex digits`);
  }
}

/** An error's text for a user: a JSON syntax error says so. */
export function errorText(e: unknown): string {
  if (e instanceof SyntaxError) return `Cannot parse JSON: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

function fail(detail: string): never {
  throw new TypeError(`Cannot read corpus file: ${detail}`);
}

function expectObject(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail(`${what} is not an object`);
  }
  return value as Record<string, unknown>;
}

function expectString(o: Record<string, unknown>, key: string, prefix = ""): string {
  const v = o[key];
  if (typeof v !== "string") fail(`field "${prefix}${key}" is not a string`);
  return v;
}

function expectOneOf(
  o: Record<string, unknown>,
  key: string,
  values: readonly string[],
  prefix = "",
): void {
  const v = o[key];
  if (typeof v !== "string" || !values.includes(v)) {
    fail(`field "${prefix}${key}" is not one of ${values.join(", ")}`);
  }
}

function expectTime(o: Record<string, unknown>, key: string): void {
  const v = expectString(o, key);
  if (Number.isNaN(Date.parse(v))) fail(`field "${key}" is not an ISO 8601 time`);
}

function expectCount(o: Record<string, unknown>, key: string, prefix = "", min = 0): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    fail(`field "${prefix}${key}" is not ${min === 0 ? "a non-negative" : "a positive"} integer`);
  }
  return v;
}

function expectHistory(value: unknown, what: string): void {
  if (!Array.isArray(value)) fail(`field "${what}" is not an array`);
  if (value.length > MAX_HISTORY) fail(`field "${what}" has more than ${MAX_HISTORY} entries`);
  for (const [i, item] of value.entries()) {
    const h = expectObject(item, `field "${what}[${i}]"`);
    const t = expectString(h, "time", `${what}[${i}].`);
    if (Number.isNaN(Date.parse(t))) fail(`field "${what}[${i}].time" is not an ISO 8601 time`);
    expectString(h, "seed", `${what}[${i}].`);
    expectCount(h, "hits", `${what}[${i}].`, 1);
  }
}

function expectTrace(o: Record<string, unknown>, key: string): void {
  const t = expectObject(o[key], `field "${key}"`);
  if (!Array.isArray(t.ops)) fail(`field "${key}.ops" is not an array`);
}
