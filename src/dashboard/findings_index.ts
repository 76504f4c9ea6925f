/**
 * @module
 * An in-memory index of a corpus's findings for the list page, so that a list request
 * does not read 10,000 files.
 *
 * Finding files are only ever replaced by rename (`store.ts`), and a rename changes the
 * directory's mtime; so the index re-reads the directory when its mtime moved, and
 * otherwise at most every `maxAgeMs` (for files edited in place by hand). File-system
 * timestamps come from a coarse clock, so a change in the same tick as a re-read
 * leaves the mtime unchanged: a directory mtime that close to the re-read is not
 * trusted, and the next request re-reads again. A re-read
 * stats every file and parses only those whose mtime or size changed. Concurrent
 * requests share one re-read.
 */
import { join } from "node:path";
import {
  errorText,
  type FileError,
  findingsDir,
  mergeFindingState,
  parseFindingFile,
  readFindingState,
  stateDir,
} from "../corpus/store.ts";
import { type FindingSummary, summarize } from "./summary.ts";
import { MAX_FINDING_BYTES, MAX_JSON_DEPTH, tooDeepAt } from "./bounds.ts";
import { formatBytes } from "./format.ts";

/** What the list page shows: the valid findings and the files that are not. */
export interface Snapshot {
  summaries: FindingSummary[];
  errors: FileError[];
  /** The ids findings had under earlier identity rules (`aliases`), to their id now. */
  aliases: ReadonlyMap<string, string>;
}

interface Entry {
  /** The inode changes on every atomic replace, even within one mtime tick. */
  ino: number | null;
  mtime: number;
  size: number;
  /** The state file's inode, mtime and size (`state/<id>.json`, merged in), or "". */
  state?: string;
  summary?: FindingSummary;
  error?: string;
}

/**
 * How close (ms) a directory mtime may be to a re-read before it cannot tell a later
 * change apart: Linux stamps files from the coarse clock (one tick, at most 10 ms at
 * HZ=100); 50 ms leaves room for the lag between that clock and ours.
 */
const MTIME_TICK_MS = 50;

/** How many files are statted or read at once during a re-read. */
const PARALLEL = 64;

export class FindingsIndex {
  readonly #base: string;
  readonly #corpus: string;
  readonly #maxAgeMs: number;
  #entries = new Map<string, Entry>();
  #snapshot: Snapshot = { summaries: [], errors: [], aliases: new Map() };
  #dirMtime = -1;
  #scannedAt = -Infinity;
  #stale = true;
  #mtimeTrusted = false;
  #inflight: Promise<Snapshot> | null = null;

  /**
   * @param corpusDir The corpus directory (findings are in its `findings/`).
   * @param options `maxAgeMs`: longest time between full re-reads (default 10 s).
   */
  constructor(corpusDir: string, options: { maxAgeMs?: number } = {}) {
    this.#base = findingsDir(corpusDir);
    this.#corpus = corpusDir;
    this.#maxAgeMs = options.maxAgeMs ?? 10_000;
  }

  /** Marks the index stale, e.g. after the dashboard itself wrote a finding. */
  invalidate(): void {
    this.#stale = true;
  }

  /** The current findings, re-read if anything may have changed. */
  snapshot(): Promise<Snapshot> {
    if (this.#inflight !== null) return this.#inflight;
    const p = this.#refresh().finally(() => {
      this.#inflight = null;
    });
    this.#inflight = p;
    return p;
  }

  async #refresh(): Promise<Snapshot> {
    let dirMtime: number;
    try {
      dirMtime = (await Deno.stat(this.#base)).mtime?.getTime() ?? 0;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      this.#entries.clear();
      this.#snapshot = { summaries: [], errors: [], aliases: new Map() };
      return this.#snapshot;
    }
    const fresh = Date.now() - this.#scannedAt < this.#maxAgeMs;
    if (!this.#stale && fresh && this.#mtimeTrusted && dirMtime === this.#dirMtime) {
      return this.#snapshot;
    }
    this.#stale = false;
    const scannedAt = Date.now();
    const names: string[] = [];
    try {
      for await (const e of Deno.readDir(this.#base)) {
        if (e.isFile && e.name.endsWith(".json") && !e.name.startsWith(".")) names.push(e.name);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    names.sort();
    const next = new Map<string, Entry>();
    // One listing of state/ instead of a failing stat per finding without a state file
    // (a failed stat costs ~50 us: half a second over 10,000 findings).
    const states = new Set<string>();
    try {
      for await (const e of Deno.readDir(stateDir(this.#corpus))) {
        if (e.isFile && e.name.endsWith(".json")) states.add(e.name);
      }
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    await forEachLimited(names, PARALLEL, async (name) => {
      next.set(name, await this.#load(name, states.has(name)));
    });
    this.#entries = next;
    const summaries: FindingSummary[] = [];
    const errors: FileError[] = [];
    const aliases = new Map<string, string>();
    for (const name of names) {
      const e = next.get(name);
      // The first finding by file name wins, as in the store's alias lookup.
      for (const a of e?.summary?.aliases ?? []) {
        if (!aliases.has(a)) aliases.set(a, e!.summary!.id);
      }
      if (e?.summary) summaries.push(e.summary);
      else if (e?.error !== undefined) errors.push({ file: name, error: e.error });
    }
    this.#snapshot = { summaries, errors, aliases };
    this.#dirMtime = dirMtime;
    this.#scannedAt = scannedAt;
    this.#mtimeTrusted = scannedAt - dirMtime > MTIME_TICK_MS;
    return this.#snapshot;
  }

  async #load(name: string, hasState: boolean): Promise<Entry> {
    const path = join(this.#base, name);
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(path);
    } catch (e) {
      return { ino: null, mtime: 0, size: 0, error: e instanceof Error ? e.message : String(e) };
    }
    const mtime = info.mtime?.getTime() ?? 0;
    const ino = info.ino;
    // Hits, last seen and seeds change in the untracked state file (store.ts).
    const s = hasState
      ? await Deno.stat(join(stateDir(this.#corpus), name)).catch(() => null)
      : null;
    const state = s === null ? "" : `${s.ino}:${s.mtime?.getTime()}:${s.size}`;
    const old = this.#entries.get(name);
    if (
      old && old.ino === ino && old.mtime === mtime && old.size === info.size &&
      old.state === state
    ) return old;
    const entry = { ino, mtime, size: info.size, state };
    if (info.size > MAX_FINDING_BYTES) {
      return {
        ...entry,
        error: `The file is ${formatBytes(info.size)}, over the dashboard's limit of ` +
          formatBytes(MAX_FINDING_BYTES),
      };
    }
    try {
      const finding = parseFindingFile(await Deno.readTextFile(path), name);
      const deep = tooDeepAt(finding);
      if (deep !== null) {
        return { ...entry, error: `Field "${deep}" nests deeper than ${MAX_JSON_DEPTH} levels` };
      }
      const st = state === "" ? null : await readFindingState(this.#corpus, finding.id).catch(
        () => null,
      );
      return { ...entry, summary: summarize(mergeFindingState(finding, st)) };
    } catch (e) {
      return { ...entry, error: errorText(e) };
    }
  }
}

async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
