/**
 * @module
 * Paging-aware rewrites for the minimizer, each a whole-trace variant the predicate then
 * judges: a table page folded into the table that points to it (a self-referencing
 * entry, its one colliding entry moved to a free index, the linear addresses that walk
 * through it re-indexed), two levels that both self-reference served by one entry (the
 * other entry's writes dropped), and a memslot moved to gpa 0 or merged into another
 * slot (every guest-physical address in it shifted along). They know the x86 4-level
 * walk (SDM 4.5: 9 index bits per level above the 12-bit offset, PS at levels 3 and 2)
 * but nothing of why a trace fails.
 */
import type { Op } from "../src/trace/types.ts";

const ADDR = 0x000f_ffff_ffff_f000n;
const PAGE = 0xfffn;

/** One level of a walk: the table page, the index into it, the entry's gpa and value. */
export interface WalkStep {
  level: number;
  table: bigint;
  index: number;
  entry: bigint;
  value: bigint;
}

/** Guest memory (qword-aligned gpa -> value) as the writes before op `end` leave it. */
export function memoryBefore(ops: readonly Op[], end: number): Map<bigint, bigint> {
  const mem = new Map<bigint, bigint>();
  for (let i = 0; i < end; i++) {
    const op = ops[i]!;
    if (op.op === "write") store(mem, op);
  }
  return mem;
}

/** The index of `gva` at `level` (4 = PML4). */
export function indexAt(gva: bigint, level: number): number {
  return Number((gva >> BigInt(12 + 9 * (level - 1))) & 511n);
}

function withIndex(gva: bigint, level: number, index: number): bigint {
  const shift = BigInt(12 + 9 * (level - 1));
  return (gva & ~(511n << shift)) | (BigInt(index) << shift);
}

/** The present entries a 4-level walk of `gva` reads, root first, down to the leaf. */
export function walk(mem: ReadonlyMap<bigint, bigint>, cr3: bigint, gva: bigint): WalkStep[] {
  const steps: WalkStep[] = [];
  let table = cr3 & ADDR;
  for (let level = 4; level >= 1; level--) {
    const index = indexAt(gva, level);
    const entry = table + BigInt(index) * 8n;
    const value = mem.get(entry) ?? 0n;
    if ((value & 1n) === 0n) break;
    steps.push({ level, table, index, entry, value });
    if (level === 1 || ((level === 3 || level === 2) && (value & 0x80n) !== 0n)) break;
    table = value & ADDR;
  }
  return steps;
}

/** Pages (4 KiB aligned) the trace writes. */
export function writtenPages(ops: readonly Op[]): Set<bigint> {
  const s = new Set<bigint>();
  for (const op of ops) if (op.op === "write") s.add(op.gpa & ~PAGE);
  return s;
}

function writtenQwords(ops: readonly Op[]): Set<bigint> {
  const s = new Set<bigint>();
  for (const op of ops) if (op.op === "write") s.add(op.gpa & ~7n);
  return s;
}

/** Walk paths (at the op that uses them) of each distinct access address, last use first. */
function paths(ops: readonly Op[], walks: ReadonlyMap<number, WalkStep[]>): WalkStep[][] {
  const out: WalkStep[][] = [];
  const seen = new Set<bigint>();
  for (let i = ops.length - 1; i >= 0; i--) {
    const op = ops[i]!;
    if (op.op !== "access" || seen.has(op.gva & ~PAGE)) continue;
    seen.add(op.gva & ~PAGE);
    out.push(walks.get(i)!);
  }
  return out;
}

/** Applies a `write` op to a qword-indexed memory map, byte by byte. */
function store(mem: Map<bigint, bigint>, op: Op & { op: "write" }): void {
  // Byte by byte: 1-, 2- and 4-byte and misaligned writes change part of a qword.
  for (let b = 0n; b < BigInt(op.size); b++) {
    const gpa = op.gpa + b;
    const q = gpa & ~7n;
    const shift = (gpa & 7n) * 8n;
    const old = mem.get(q) ?? 0n;
    const byte = (op.value >> (b * 8n)) & 0xffn;
    mem.set(q, (old & ~(0xffn << shift)) | (byte << shift));
  }
}

/** The walk of every access and INVLPG at the op that does it (one pass over the trace). */
export function walksAt(ops: readonly Op[]): Map<number, WalkStep[]> {
  const out = new Map<number, WalkStep[]>();
  const mem = new Map<bigint, bigint>();
  let cr3 = 0n;
  ops.forEach((op, i) => {
    if (op.op === "write") store(mem, op);
    else if (op.op === "cr3") cr3 = op.gpa & ADDR;
    else if (op.op === "access" || op.op === "invlpg") out.set(i, walk(mem, cr3, op.gva));
  });
  return out;
}

/**
 * Rewrites the linear addresses whose walk (in `walks`, of the trace `ops` came from)
 * reads `entry` at `level` (the index there becomes `to`): the one walked, and aliases
 * that reach the same table by another path.
 */
function reindex(
  ops: readonly Op[],
  walks: ReadonlyMap<number, WalkStep[]>,
  entry: bigint,
  level: number,
  to: number,
): Op[] {
  return ops.map((op, i) =>
    (op.op === "access" || op.op === "invlpg") &&
      walks.get(i)!.some((s) => s.level === level && s.entry === entry)
      ? { ...op, gva: withIndex(op.gva, level, to) }
      : op
  );
}

/**
 * Folds the table `step.value` points to into `step.table`: its writes move to the same
 * offsets there (the entry the walk of `gva` reads at the lower level to index `to`),
 * pointers to it (or, with `onlyUpper`, the upper entry alone) point to the upper table,
 * so the upper entry references its own page.
 */
function foldTable(
  ops: readonly Op[],
  walks: ReadonlyMap<number, WalkStep[]>,
  upper: WalkStep,
  lower: WalkStep,
  onlyUpper: boolean,
): Op[] | null {
  const from = lower.table;
  const into = upper.table;
  const written = writtenQwords(ops);
  let to = lower.index;
  const free = (j: number) =>
    j !== upper.index && !written.has(into + BigInt(j) * 8n) &&
    (j === lower.index || !written.has(from + BigInt(j) * 8n));
  if (!free(to)) {
    to = -1;
    for (let j = 0; j < 512 && to < 0; j++) if (free(j)) to = j;
    if (to < 0) return null;
  }
  const moved = lower.entry;
  let clash = false;
  const out = ops.map((op): Op => {
    switch (op.op) {
      case "write": {
        let value = op.value;
        const retarget = !onlyUpper || (op.gpa & ~7n) === upper.entry;
        if (retarget && (value & 1n) === 1n && (value & ADDR) === from) {
          value = (value & ~ADDR) | into;
        }
        if ((op.gpa & ~PAGE) !== from) return value === op.value ? op : { ...op, value };
        let gpa = into + (op.gpa & PAGE);
        if ((op.gpa & ~7n) === moved) gpa = into + BigInt(to) * 8n + (op.gpa & 7n);
        else if (written.has(gpa & ~7n)) clash = true;
        return { ...op, gpa, value };
      }
      case "read":
        return (op.gpa & ~PAGE) === from ? { ...op, gpa: into + (op.gpa & PAGE) } : op;
      case "cr3":
        return (op.gpa & ADDR) === from ? { ...op, gpa: (op.gpa & ~ADDR) | into } : op;
      default:
        return op;
    }
  });
  if (clash) return null;
  // Which accesses read the moved entry is decided on the trace before the fold.
  return to === lower.index ? out : reindex(out, walks, moved, lower.level, to);
}

/**
 * Table folds and level merges along the walks of the trace's accesses. Each fold
 * leaves the number of ops alone but uses one page fewer; each merge drops the writes of
 * one entry.
 */
export function pagingVariants(ops: readonly Op[]): Op[][] {
  const out: Op[][] = [];
  const walks = walksAt(ops);
  for (const steps of paths(ops, walks)) {
    for (let k = 0; k + 1 < steps.length; k++) {
      const upper = steps[k]!;
      const lower = steps[k + 1]!;
      const target = upper.value & ADDR;
      if (target !== upper.table) {
        // Every pointer to the folded page follows it, or (when it is also a data page
        // whose contents must differ from the table's) only the entry on this walk.
        for (const onlyUpper of [false, true]) {
          const v = foldTable(ops, walks, upper, lower, onlyUpper);
          if (v !== null) out.push(v);
        }
      } else if (
        (lower.value & ADDR) === target && lower.index !== upper.index && lower.level > 1 &&
        !((lower.level === 3 || lower.level === 2) && (lower.value & 0x80n) !== 0n)
      ) {
        // Both levels reference the same page: the upper entry can serve the lower level.
        const reindexed = reindex(ops, walks, lower.entry, lower.level, upper.index);
        const dropped = reindexed
          .filter((op) => !(op.op === "write" && (op.gpa & ~7n) === lower.entry));
        out.push(dropped);
        // Or its later writes (an unlink, a relink) made to the upper entry instead.
        out.push(
          reindexed.map((op) =>
            op.op === "write" && (op.gpa & ~7n) === lower.entry
              ? { ...op, gpa: upper.entry + (op.gpa & 7n) }
              : op
          ),
        );
      }
    }
  }
  return out;
}

/**
 * Direct stores folded into an earlier access (the guest writes the page through a
 * linear mapping instead of the `write` op's direct map): the access becomes the store,
 * its 4 KiB leaf is pointed at the stored page, and the store op goes. Each variant also
 * comes with W set in every present entry the trace writes, for a supervisor store
 * through entries that were read-only. Traces of at most 24 ops only (pairs of ops).
 */
export function storeFolds(ops: readonly Op[]): Op[][] {
  if (ops.length > 24) return [];
  const out: Op[][] = [];
  const walks = walksAt(ops);
  // The op index of the last aligned 8-byte write of each qword, while no partial
  // write has touched it since.
  const writer = new Map<bigint, number>();
  const writerAt: Map<bigint, number>[] = [];
  ops.forEach((op, i) => {
    writerAt.push(new Map(writer));
    if (op.op !== "write") return;
    if (op.size === 8 && (op.gpa & 7n) === 0n) writer.set(op.gpa, i);
    else {
      writer.delete(op.gpa & ~7n);
      writer.delete((op.gpa + BigInt(op.size) - 1n) & ~7n);
    }
  });
  const writable = (copy: Op[]) =>
    copy.map((op) =>
      op.op === "write" && op.size === 8 && (op.value & 1n) === 1n
        ? { ...op, value: op.value | 2n }
        : op
    );
  ops.forEach((access, i) => {
    if (access.op !== "access") return;
    const leaf = walks.get(i)!.at(-1);
    if (leaf === undefined || leaf.level !== 1) return;
    const w = writerAt[i]!.get(leaf.entry);
    if (w === undefined) return;
    for (let k = i + 1; k < ops.length; k++) {
      const st = ops[k]!;
      if (st.op !== "write") continue;
      const page = st.gpa & ~PAGE;
      const copy = ops.slice();
      const leafOp = ops[w]!;
      if (page !== (leaf.value & ADDR) && leafOp.op === "write") {
        copy[w] = { ...leafOp, value: (leafOp.value & ~ADDR) | page };
      }
      copy[i] = {
        op: "access",
        gva: (access.gva & ~PAGE) + (st.gpa & PAGE),
        kind: "write",
        user: false,
        size: st.size,
        value: st.value,
      };
      copy.splice(k, 1);
      out.push(copy, writable(copy));
    }
  });
  return out;
}

interface SlotRange {
  id: number;
  gpa: bigint;
  pages: number;
}

/** Slots created exactly once at one place (moves and deletions make them unmergeable). */
function simpleSlots(ops: readonly Op[]): { simple: SlotRange[]; all: SlotRange[] } {
  const byId = new Map<number, SlotRange[]>();
  for (const op of ops) {
    if (op.op !== "slot") continue;
    let list = byId.get(op.id);
    if (list === undefined) byId.set(op.id, list = []);
    list.push({ id: op.id, gpa: op.gpa, pages: op.pages });
  }
  const simple: SlotRange[] = [];
  const all: SlotRange[] = [];
  for (const list of byId.values()) {
    all.push(...list.filter((s) => s.pages > 0));
    if (list.length === 1 && list[0]!.pages > 0) simple.push(list[0]!);
  }
  return { simple, all };
}

/** Every guest-physical address in `[from, from + bytes)` shifted to start at `to`. */
function shiftRange(ops: readonly Op[], from: bigint, bytes: bigint, to: bigint): Op[] {
  const inside = (a: bigint) => a >= from && a < from + bytes;
  const move = (a: bigint) => a - from + to;
  return ops.map((op): Op => {
    switch (op.op) {
      case "write": {
        const gpa = inside(op.gpa) ? move(op.gpa) : op.gpa;
        let value = op.value;
        if ((value & 1n) === 1n && inside(value & ADDR)) {
          value = (value & ~ADDR) | move(value & ADDR);
        }
        return gpa === op.gpa && value === op.value ? op : { ...op, gpa, value };
      }
      case "read":
        return inside(op.gpa) ? { ...op, gpa: move(op.gpa) } : op;
      case "age":
        return inside(op.gpa) ? { ...op, gpa: move(op.gpa) } : op;
      case "cr3":
        return inside(op.gpa & ADDR) ? { ...op, gpa: (op.gpa & ~ADDR) | move(op.gpa & ADDR) } : op;
      default:
        return op;
    }
  });
}

function overlaps(a: bigint, aPages: number, b: bigint, bPages: number): boolean {
  return a < b + BigInt(bPages) * 4096n && b < a + BigInt(aPages) * 4096n;
}

/**
 * Drops slot `gone` and its dirty-log reads; slot `kept` becomes `[gpa, pages)`, created
 * where the earlier of the two was (memory either held is then backed from the start).
 */
function merge(ops: readonly Op[], gone: number, kept: number, gpa: bigint, pages: number): Op[] {
  const first = ops.findIndex((op) => op.op === "slot" && (op.id === gone || op.id === kept));
  const keptOp = ops.find((op) => op.op === "slot" && op.id === kept);
  if (keptOp === undefined || keptOp.op !== "slot") return ops.slice();
  return ops.flatMap((op, i): Op[] => {
    if (i === first) return [{ ...keptOp, gpa, pages }];
    if ((op.op === "slot" || op.op === "dirtylog") && (op.id === gone || op.id === kept)) {
      return op.op === "dirtylog" && op.id === kept ? [op] : [];
    }
    return [op];
  });
}

/**
 * Memslot rewrites: a slot created once moved to gpa 0 (when nothing else is there),
 * and a slot created once merged into another one created once (its ops dropped, the
 * other slot grown over both ranges, or moved onto its range and grown to cover both).
 */
export function slotVariants(ops: readonly Op[]): Op[][] {
  const out: Op[][] = [];
  const { simple, all } = simpleSlots(ops);
  const clearOf = (gpa: bigint, pages: number, except: number[]) =>
    all.every((s) => except.includes(s.id) || !overlaps(gpa, pages, s.gpa, s.pages));
  for (const s of simple) {
    if (s.gpa !== 0n && clearOf(0n, s.pages, [s.id])) {
      const shifted = shiftRange(ops, s.gpa, BigInt(s.pages) * 4096n, 0n);
      out.push(shifted.map((op) => op.op === "slot" && op.id === s.id ? { ...op, gpa: 0n } : op));
    }
  }
  for (const gone of simple) {
    for (const kept of simple) {
      if (gone.id === kept.id) continue;
      // One slot over both ranges (and the gap between them): no address moves at all,
      // so large guest pages keep their alignment and data pages stay off the tables.
      const lo = gone.gpa < kept.gpa ? gone.gpa : kept.gpa;
      const endOf = (s: SlotRange) => s.gpa + BigInt(s.pages) * 4096n;
      const hi = endOf(gone) > endOf(kept) ? endOf(gone) : endOf(kept);
      const span = Number((hi - lo) / 4096n);
      if (span <= 1 << 15 && clearOf(lo, span, [gone.id, kept.id])) {
        out.push(merge(ops, gone.id, kept.id, lo, span));
      }
      const pages = Math.max(gone.pages, kept.pages);
      if (!clearOf(gone.gpa, pages, [gone.id, kept.id])) continue;
      const shifted = shiftRange(ops, kept.gpa, BigInt(kept.pages) * 4096n, gone.gpa);
      out.push(merge(shifted, gone.id, kept.id, gone.gpa, pages));
    }
  }
  return out;
}

/**
 * A page the trace writes (or loads into CR3) moved to a lower page the trace does not
 * write, read or load, its pointers and CR3 loads following: tables end up at page 0,
 * where the initial CR3 already points, so a `cr3` op can go. (A page only mapped as
 * data may be taken: the predicate judges.)
 */
export function pageMoves(ops: readonly Op[]): Op[][] {
  const used = new Set<bigint>();
  const movable = new Set<bigint>();
  for (const op of ops) {
    if (op.op === "write") {
      used.add(op.gpa & ~PAGE);
      movable.add(op.gpa & ~PAGE);
    } else if (op.op === "read" || op.op === "age") used.add(op.gpa & ~PAGE);
    else if (op.op === "cr3") {
      used.add(op.gpa & ADDR);
      movable.add(op.gpa & ADDR);
    }
  }
  const free: bigint[] = [];
  for (let page = 0n; free.length < 2 && page < 64n * 4096n; page += 4096n) {
    if (!used.has(page)) free.push(page);
  }
  const out: Op[][] = [];
  for (const page of movable) {
    for (const to of free) if (to < page) out.push(shiftRange(ops, page, 4096n, to));
  }
  return out;
}

/**
 * How far a variant is from done: fewer ops, then fewer pages written, then fewer
 * qwords written, then lower slots, then lower pages written.
 */
export function weight(ops: readonly Op[]): [number, number, number, bigint, bigint] {
  let slots = 0n;
  for (const op of ops) if (op.op === "slot") slots += op.gpa + BigInt(op.pages) * 4096n;
  const pages = writtenPages(ops);
  let sum = 0n;
  for (const p of pages) sum += p;
  return [ops.length, pages.size, writtenQwords(ops).size, slots, sum];
}

/** `a` is strictly lighter than `b`. */
export function lighter(a: readonly Op[], b: readonly Op[]): boolean {
  const x = weight(a);
  const y = weight(b);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i]! < y[i]!;
  return false;
}
