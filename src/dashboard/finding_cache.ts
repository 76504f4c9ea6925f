/**
 * @module
 * Reads one finding for the finding page, its op pages and the API, within the limits
 * of `bounds.ts`, and keeps recently read findings parsed, so that many clients on one
 * huge finding parse it once rather than once per request (issue 13 item 7: 20 clients
 * on a 100,000-op finding stalled every route for 10 s).
 *
 * An entry is reused only while the inode, mtime and size of the finding file and of
 * its state file (`state/<id>.json`, which the store merges in) are those it was read
 * with (the store replaces both by rename, which changes the inode), and for at most
 * `maxAgeMs` (5 s by default), for an edit in place that keeps the size within one
 * mtime tick. Concurrent reads of one file share one read. Only files of at least
 * `minBytes` (64 KiB) are kept, where a parse costs milliseconds: thousands of small
 * parsed findings would cost more in garbage collection than their parses do. The
 * cache holds at most `maxEntries` findings and `maxBytes` of finding files.
 */
import { join } from "node:path";
import { errorText, findingsDir, isFindingId, readFinding, stateDir } from "../corpus/store.ts";
import type { Finding } from "../corpus/types.ts";
import { MAX_FINDING_BYTES, MAX_JSON_DEPTH, tooDeepAt } from "./bounds.ts";
import { formatBytes } from "./format.ts";

/** A finding as read: its value and the size of its file. */
export interface LoadedFinding {
  finding: Finding;
  /** The file's size in bytes. */
  bytes: number;
}

/** Why a finding cannot be shown, as an HTTP status and a one-line message. */
export interface LoadError {
  status: 400 | 404 | 413 | 500;
  error: string;
}

interface Entry {
  key: string;
  at: number;
  value: LoadedFinding;
  /** Bytes counted against the cache: the file's, plus the JSON text once made. */
  size: number;
  /** The API's JSON text, made on first use. */
  json?: string;
}

export interface FindingCacheOptions {
  /** Longest time an entry is reused (default 5,000 ms). */
  maxAgeMs?: number;
  /** Most file bytes kept (default 32 MiB). */
  maxBytes?: number;
  /** Largest file read (default {@linkcode MAX_FINDING_BYTES}). */
  maxFileBytes?: number;
  /** Smallest file kept (default 64 KiB); smaller ones share in-flight reads only. */
  minBytes?: number;
  /** Most findings kept (default 32). */
  maxEntries?: number;
}

export class FindingCache {
  readonly #dir: string;
  readonly #base: string;
  readonly #maxAgeMs: number;
  readonly #maxBytes: number;
  readonly #maxFileBytes: number;
  readonly #minBytes: number;
  readonly #maxEntries: number;
  /** In least-recently-used order (a Map iterates in insertion order). */
  #entries = new Map<string, Entry>();
  #bytes = 0;
  #inflight = new Map<string, Promise<LoadedFinding | LoadError>>();

  constructor(corpusDir: string, options: FindingCacheOptions = {}) {
    this.#dir = corpusDir;
    this.#base = findingsDir(corpusDir);
    this.#maxAgeMs = options.maxAgeMs ?? 5000;
    this.#maxBytes = options.maxBytes ?? 32 * 1024 * 1024;
    this.#maxFileBytes = options.maxFileBytes ?? MAX_FINDING_BYTES;
    this.#minBytes = options.minBytes ?? 64 * 1024;
    this.#maxEntries = options.maxEntries ?? 32;
  }

  /** Forgets a finding, e.g. after the dashboard itself rewrote it. */
  invalidate(id: string): void {
    this.#drop(id);
  }

  /** The finding `id`, or why it cannot be shown. */
  async load(id: string): Promise<LoadedFinding | LoadError> {
    const entry = await this.#entry(id);
    return "status" in entry ? entry : entry.value;
  }

  /** The finding `id` as JSON text (for the API), or why it cannot be shown. */
  async json(id: string): Promise<{ json: string } | LoadError> {
    const entry = await this.#entry(id);
    if ("status" in entry) return entry;
    if (entry.json === undefined) {
      entry.json = JSON.stringify(entry.value.finding);
      if (this.#entries.get(id) === entry) {
        entry.size += entry.json.length;
        this.#bytes += entry.json.length;
        this.#evict();
      }
    }
    return { json: entry.json };
  }

  async #entry(id: string): Promise<Entry | LoadError> {
    if (!isFindingId(id)) {
      return { status: 400, error: "Not a finding id: expected 16 lowercase hex digits" };
    }
    const file = `findings/${id}.json`;
    let info: Deno.FileInfo;
    try {
      info = await Deno.stat(join(this.#base, `${id}.json`));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        this.#drop(id);
        return { status: 404, error: `No finding ${id}` };
      }
      return { status: 500, error: `Cannot read ${file}: ${errorText(e)}` };
    }
    if (info.size > this.#maxFileBytes) {
      this.#drop(id);
      return {
        status: 413,
        error: `Cannot show ${file}: it is ${formatBytes(info.size)}, over the dashboard's ` +
          `limit of ${formatBytes(this.#maxFileBytes)} (the CLI's too): a finding's traces ` +
          "should be minimized before they are stored",
      };
    }
    // The state file matters only to a kept entry; a small file is never kept.
    const state = info.size >= this.#minBytes
      ? await Deno.stat(join(stateDir(this.#dir), `${id}.json`)).catch(() => null)
      : null;
    const key = `${info.ino ?? ""}:${info.mtime?.getTime() ?? ""}:${info.size}/` +
      (state === null ? "" : `${state.ino ?? ""}:${state.mtime?.getTime() ?? ""}:${state.size}`);
    const now = Date.now();
    const old = this.#entries.get(id);
    if (old !== undefined && old.key === key && now - old.at < this.#maxAgeMs) {
      // Most recently used goes last.
      this.#entries.delete(id);
      this.#entries.set(id, old);
      return old;
    }
    const flightKey = `${id}@${key}`;
    let flight = this.#inflight.get(flightKey);
    if (flight === undefined) {
      flight = this.#read(id, info.size).finally(() => this.#inflight.delete(flightKey));
      this.#inflight.set(flightKey, flight);
    }
    const got = await flight;
    if ("status" in got) {
      this.#drop(id);
      return got;
    }
    const current = this.#entries.get(id);
    if (current !== undefined && current.key === key && current.value === got) return current;
    const entry: Entry = { key, at: now, value: got, size: got.bytes };
    this.#drop(id);
    if (got.bytes >= this.#minBytes && got.bytes <= this.#maxBytes) {
      this.#entries.set(id, entry);
      this.#bytes += entry.size;
      this.#evict();
    }
    return entry;
  }

  async #read(id: string, bytes: number): Promise<LoadedFinding | LoadError> {
    const file = `findings/${id}.json`;
    let finding: Finding | null;
    try {
      finding = await readFinding(this.#dir, id);
    } catch (e) {
      // The store names the file by its full path; the message names it already.
      const text = errorText(e).replace(`${join(this.#base, `${id}.json`)}: `, "")
        .replace(/^(Cannot parse JSON: )+/, "Cannot parse JSON: ");
      return { status: 500, error: `Cannot read ${file}: ${text}` };
    }
    if (finding === null) return { status: 404, error: `No finding ${id}` };
    const deep = tooDeepAt(finding);
    if (deep !== null) {
      return {
        status: 500,
        error: `Cannot read ${file}: field "${deep}" nests deeper than ${MAX_JSON_DEPTH} levels`,
      };
    }
    return { finding, bytes };
  }

  #drop(id: string): void {
    const e = this.#entries.get(id);
    if (e === undefined) return;
    this.#entries.delete(id);
    this.#bytes -= e.size;
  }

  /** Drops least recently used entries until the cache is within its bound. */
  #evict(): void {
    for (const [k, e] of this.#entries) {
      if (this.#bytes <= this.#maxBytes && this.#entries.size <= this.#maxEntries) break;
      this.#entries.delete(k);
      this.#bytes -= e.size;
    }
  }
}
