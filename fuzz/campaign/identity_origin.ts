/**
 * @module
 * The origin part of a finding's signature (docs/identity.md): where the state the
 * diverging op used came from: for an access served from a cached spte, how that spte
 * was made and what it outlived; for a dirty log, the paths of the stores that dirtied
 * the missed pages; for a vPMU read, the counter's write path or how its events were
 * counted, and with probes what the counters hold. The façade is `identity.ts`.
 */
import type { Divergence } from "../../src/diff.ts";
import { hasPage, minusPages, NO_PAGES, pageCount, pagesOf } from "../../src/trace/pages.ts";
import type { Config, Op } from "../../src/trace/types.ts";
import { nearest } from "./identity_delta.ts";
import { counterOf, COUNTING, isStatusRead, statusCounters, valueDeltaOf } from "./identity_pmu.ts";
import {
  countersAtOp,
  opsBefore,
  probedOrigin,
  type Probes,
  referenceOutcomes,
} from "./identity_probes.ts";
import { msrClass } from "./identity_where.ts";

/**
 * The events that say a leaf spte was made in an unusual way: installed by a vCPU racing
 * a memslot update (before or after its in-progress phase), or re-made by a sync. How
 * an ordinary spte was built (by a read or a write, writable or write-protected, or by
 * the CR0.WP=0 trick: measured, it only split ids) is left out: the same bug builds its
 * stale spte from many different traces, and the minimizer must stay free to change how.
 */
const SPTE_MAKERS: ReadonlySet<string> = new Set([
  "mmio-racing-install",
  "mmio-racing-install-in-progress",
  "sync-spte-update",
]);

/** A guest store: a `write`, or an `access` of kind write. */
function isStore(op: Op): boolean {
  return op.op === "write" || (op.op === "access" && op.kind === "write");
}

/** The ways a guest store can go that matter to what a dirty log reports, most specific first. */
const STORE_PATHS: readonly string[] = [
  "spte-wp0-trick",
  "spte-wp0-smap-emulate",
  "write-unsync-direct",
  "emulate-write",
  "mmio-hit",
  "access-hit",
];

/**
 * Zaps a cached spte can outlive: a stale spte that survived a slot's zap and one that
 * survived a fast zap are different bugs with the same symptom.
 */
const ZAPS: readonly string[] = ["slot-zap-slot", "fast-zap", "notifier-zap"];

/** Memslot changes: what an MMIO spte's generation must not outlive. */
const MEMSLOT_UPDATES: readonly string[] = [
  "slot-create",
  "slot-delete",
  "slot-move",
  "slot-flags",
];

/**
 * Where the state the diverging op used came from: for an access the core served from
 * a cached spte, an unusual way the op that last set that spte made it (`from
 * mmio-racing-install`) and what it outlived; for a dirty log, the stores' paths; for a
 * counter read, the write path or how its events were counted (`counted emulated`). Bugs that leave the same
 * wrong state behind differ here in how they built it.
 */
export function originOf(d: Divergence, config: Config, probes?: Probes): string | undefined {
  const history = d.history;
  if (history === undefined) {
    return probes === undefined ? undefined : probedOrigin(d, config, probes);
  }
  if (d.origin !== undefined && d.origin !== d.index) {
    const o = history[d.origin];
    if (o === undefined) return undefined;
    const made = o.events.filter((e) => SPTE_MAKERS.has(e));
    // What the spte outlived after it was set: zaps (a cached spte), or a memslot update
    // (an MMIO spte, whose generation should then no longer match).
    const seen = new Set<string>();
    const mmio = d.path?.includes("mmio-hit") === true;
    for (let i = d.origin + 1; i < history.length; i++) {
      for (const e of history[i]!.events) {
        if (mmio && MEMSLOT_UPDATES.includes(e)) seen.add("memslot-update");
        else if (!mmio && ZAPS.includes(e)) seen.add(e);
      }
    }
    const since = [...ZAPS, "memslot-update"].filter((e) => seen.has(e));
    const parts = [
      made.length === 0 ? "" : `from ${made.join(",")}`,
      since.length === 0 ? "" : `outlived ${since.join(",")}`,
    ].filter((t) => t !== "");
    return parts.length === 0 ? undefined : parts.join(" | ");
  }
  if (d.op.op === "dirtylog" || d.op.op === "age") {
    // How the stores since the last dirty log (or age) went: a page the log misses was
    // written through some path that did not mark it. When the reference can say which
    // stores dirtied the pages the log misses, only theirs count (a run's other stores
    // vary); else every store's since the last log.
    const seen = new Set<string>();
    const dirtied = storesDirtyingMissed(d, config);
    for (let i = history.length - 1; i >= 0 && history[i]!.op.op !== d.op.op; i--) {
      const h = history[i]!;
      if (dirtied !== undefined && !dirtied.has(i)) continue;
      if (isStore(h.op)) { for (const e of h.events) if (STORE_PATHS.includes(e)) seen.add(e); }
    }
    // The most specific one (the list is ordered so), not all: a run's other stores vary.
    const path = STORE_PATHS.find((e) => seen.has(e));
    return path === undefined ? undefined : `stores ${path}`;
  }
  if (d.op.op !== "rdmsr" && d.op.op !== "pmis" && d.op.op !== "rdpmc") return undefined;
  // An RDPMC the architecture refuses is a decoding bug: what it read is in the delta.
  if (
    d.op.op === "rdpmc" &&
    !("value" in d.observed && d.permitted.every((p) => "value" in p.outcome))
  ) {
    return undefined;
  }
  // A counter, status or PMI read: how the counters got their values. The MSR class of
  // the last write to the counter that matters (a legacy PMCn write and a full-width
  // A_PMCn write are different paths), and how the events after it were counted.
  const counter = counterOf(d.op, config);
  const status = isStatusRead(d.op, config);
  if (counter === undefined && !status && d.op.op !== "pmis") return undefined;
  // The counters that matter: the one read; for a status read, those whose overflow
  // bits differ; for a PMI count, whichever was written last.
  const matters: (c: string) => boolean = counter !== undefined
    ? (c) => c === counter
    : status
    ? statusCounters(d, config)
    : () => true;
  let writer: string | undefined;
  let since = 0;
  for (let i = history.length - 1; i >= 0; i--) {
    const h = history[i]!;
    if (h.op.op !== "wrmsr") continue;
    const c = counterOf(h.op, config);
    if (c === undefined || !matters(c)) continue;
    const cls = msrClass(h.op.msr, config.vendor);
    // AMD's K7 and F15H counter MSRs are one counter's aliases with one write path.
    writer = cls === "K7_PERFCTR" || cls === "F15H_PERF_CTR" ? "AMD counter" : cls;
    since = i + 1;
    break;
  }
  // Events are counted by an events op in hardware or by an instruction KVM emulates
  // (any op), so every op since the write is looked at.
  const counted = new Set<string>();
  for (let i = since; i < history.length; i++) {
    for (const e of history[i]!.events) if (COUNTING.includes(e)) counted.add(e);
  }
  const none = !counted.has("pmu:triggerCounted") && !counted.has("pmu:hardwareCounted");
  if (status || d.op.op === "pmis") {
    // What overflowed and how it was signalled varies with how the trace counted; the
    // write path does not, nor, for an overflow the backend misses, whether it counted
    // anything at all (an extra overflow may come from the write alone).
    const o = d.observed, q = d.permitted[0]?.outcome;
    const fewer = q !== undefined &&
      ("count" in o && "count" in q ? o.count < q.count : "value" in o && "value" in q &&
        (q.value & ~o.value) !== 0n);
    // With probes, what the counters hold at the op says more than the write's class
    // (which only told legacy from full-width writes, now the write probe's job):
    // `counters agree` is an overflow or PMI that went wrong on its own.
    const held = probes === undefined
      ? undefined
      : countersAtOp(d, config, probes, status ? matters : () => true);
    const parts = [
      writer === undefined
        ? ""
        : held === undefined
        ? `after wrmsr ${writer}`
        : "after a counter write",
      none && fewer ? "nothing counted" : "",
      held ?? "",
    ].filter((t) => t !== "");
    return parts.length === 0 ? undefined : parts.join(" | ");
  }
  // The write path matters to a value cut or extended at a width (legacy against
  // full-width writes); how the events were counted matters to a count that is off.
  const width = /truncated|sign-extended/.test(valueDeltaOf(d, config));
  let how = counted.has("pmu:triggerCounted")
    ? "emulated"
    : counted.has("pmu:hardwareCounted")
    ? "in hardware"
    : "";
  const denied = counted.has("pmu:filterDenyGp") || counted.has("pmu:filterDenyFixed");
  if (how !== "" && denied) how += " under a denying filter";
  // With probes: a count that is off where nothing was counted at all, but a filter
  // denied, is the filter's (a counter that never counts is not).
  if (how === "" && denied && probes !== undefined) how = "nothing, under a denying filter";
  const parts = [
    writer === undefined || !width ? "" : `after wrmsr ${writer}`,
    how === "" || width ? "" : `counted ${how}`,
  ].filter((t) => t !== "");
  return parts.length === 0 ? undefined : parts.join(" | ");
}

/**
 * The stores since the last dirty log of the slot that, on the reference, dirtied a page
 * the backend's log misses (by history index), or undefined when that cannot be told.
 * The reference runs the ops before the log with a dirty-log probe of the slot after
 * every such store: the pages each probe newly reports are that store's (its data page,
 * or a page table whose A/D bits it set). A probe only splits the reference's log; with
 * manual protection the log is not cleared, so a page is the first reporting store's.
 */
function storesDirtyingMissed(d: Divergence, config: Config): Set<number> | undefined {
  const ops = opsBefore(d);
  const o = d.observed;
  if (ops === undefined || d.op.op !== "dirtylog" || !("bitmap" in o)) return undefined;
  const p = nearest(o, d.permitted);
  if (p === undefined || !("bitmap" in p.outcome)) return undefined;
  const missing = minusPages(minusPages(p.outcome.bitmap, o.bitmap), p.dontCarePages ?? NO_PAGES);
  if (pageCount(missing) === 0) return undefined;
  let start = ops.length;
  while (start > 0 && !(ops[start - 1]!.op === "dirtylog" && sameSlot(ops[start - 1]!, d.op))) {
    start--;
  }
  const probe: Op = { op: "dirtylog", id: d.op.id };
  const run: Op[] = ops.slice(0, start);
  const at: number[] = [];
  run.push(probe);
  const baseline = run.length - 1;
  for (let i = start; i < ops.length; i++) {
    run.push(ops[i]!);
    if (isStore(ops[i]!)) {
      run.push(probe);
      at.push(i);
    }
  }
  const out = referenceOutcomes(config, run);
  if (out === undefined) return undefined;
  const manual = config.dirtyLog.manualProtect;
  const stores = new Set<number>();
  let before = out[baseline]!;
  let k = 0;
  for (let j = baseline + 1; j < run.length; j++) {
    if (run[j] !== probe) continue;
    const now = out[j]!;
    if ("bitmap" in now) {
      const fresh = manual && "bitmap" in before
        ? minusPages(now.bitmap, before.bitmap)
        : now.bitmap;
      for (const page of pagesOf(missing)) {
        if (hasPage(fresh, page)) {
          stores.add(at[k]!);
          break;
        }
      }
    }
    before = now;
    k++;
  }
  return stores.size === 0 ? undefined : stores;
}

/** True when two ops name one memslot. */
function sameSlot(a: Op, b: Op): boolean {
  return "id" in a && "id" in b && a.id === b.id;
}
