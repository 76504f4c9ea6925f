/**
 * @module
 * Paging-aware proposals for the reducer (`reduce.ts`), each a whole-trace variant the
 * predicate then judges: a table page folded into the table that points to it (a
 * self-referencing entry, its one colliding entry moved to a free index, the linear
 * addresses that walk through it re-indexed), two levels that both self-reference served
 * by one entry, a table pointer made a large leaf (the leaf below moved up a level, or
 * the table below dropped), an access replaced by the A/D bits it sets, a direct store
 * folded into an earlier access, a pointer redirected to a lower page the trace writes,
 * a page moved down, and a memslot moved to gpa 0 or merged into another.
 *
 * They read page tables through the paging view the generator uses (`gen/paging.ts`)
 * over {@linkcode TraceModel}, the guest memory the trace's ops leave: memslots as the
 * generator's {@linkcode World} follows them (KVM's acceptance rules), stores landing in
 * host memory through the slot that backs them, so that a slot moved or deleted takes
 * its tables along. They know nothing of why a trace fails.
 */
import type { AccessOp, Config, Op, Trace } from "../../src/trace/types.ts";
import {
  levelShift,
  PAGE_OFFSET_MASK,
  PAGE_SIZE,
  PT_ENTRIES,
  PTE_A,
  PTE_ADDR_MASK,
  PTE_D,
  PTE_NX,
  PTE_P,
  PTE_PS,
  PTE_U,
  PTE_W,
} from "../../src/x86/paging.ts";
import { type PagingView, type Walk, walk, type WalkStep, withIndex } from "../model/paging.ts";
import { World } from "../model/world.ts";

/** A CPL-0 store of `size` bytes of `value` at `gva`, as an access op. */
function kernelStore(gva: bigint, size: AccessOp["size"], value: bigint): AccessOp {
  return { op: "access", gva, kind: "write", user: false, size, value };
}

const PAGE = BigInt(PAGE_OFFSET_MASK);

/**
 * Guest memory and paging state as a trace's ops leave them, as a paging view: memslots,
 * CR3 and CR0.WP follow the generator's {@linkcode World}; `write` ops and guest stores
 * through `access` (when the walk reaches a leaf whose rights allow it) land in host
 * memory through the slot backing the gpa, `discard` drops host pages. Stores to a gpa
 * without a slot, or to a readonly one, are lost (MMIO exits).
 */
export class TraceModel implements PagingView {
  readonly world: World;
  /** Host qword address -> value. */
  readonly #mem = new Map<bigint, bigint>();

  constructor(config: Config) {
    this.world = new World(config);
  }

  get gbPages(): boolean {
    return this.world.config.gbPages;
  }

  /** The root table's gpa (initial CR3 is 0, docs/semantics.md 1). */
  get root(): bigint {
    return this.world.root < 0 ? 0n : BigInt(this.world.root) << 12n;
  }

  /** The host address behind `gpa` and whether its slot is readonly, or null. */
  host(gpa: bigint): { hva: bigint; ro: boolean } | null {
    const gfn = Number(gpa >> 12n);
    const s = this.world.slotAt(gfn);
    if (s === undefined) return null;
    return { hva: (BigInt(s.hvaPage + gfn - s.gfn) << 12n) | (gpa & PAGE), ro: s.ro };
  }

  entry(gpa: bigint): bigint | null {
    const h = this.host(gpa);
    return h === null ? null : this.#mem.get(h.hva & ~7n) ?? 0n;
  }

  walk(gva: bigint): Walk {
    return walk(this, this.root, gva);
  }

  /** Stores `size` bytes of `value` at `gpa` (never across a page: trace ops do not). */
  store(gpa: bigint, size: number, value: bigint): void {
    const h = this.host(gpa);
    if (h === null || h.ro) return;
    for (let b = 0n; b < BigInt(size); b++) {
      const a = h.hva + b;
      const q = a & ~7n;
      const shift = (a & 7n) * 8n;
      const old = this.#mem.get(q) ?? 0n;
      this.#mem.set(q, (old & ~(0xffn << shift)) | (((value >> (b * 8n)) & 0xffn) << shift));
    }
  }

  /** Follows one op. */
  apply(op: Op): void {
    switch (op.op) {
      case "write":
        this.store(op.gpa, op.size, op.value);
        return;
      case "access": {
        if (op.kind !== "write" || op.value === undefined) return;
        const gpa = translate(this.walk(op.gva), op.gva, op.user, this.world.wp);
        if (gpa !== null) this.store(gpa, op.size, op.value);
        return;
      }
      case "discard": {
        const end = op.hva + BigInt(op.pages * PAGE_SIZE);
        for (const q of [...this.#mem.keys()]) if (q >= op.hva && q < end) this.#mem.delete(q);
        return;
      }
      default:
        this.world.apply(op);
    }
  }
}

/**
 * The gpa a store through `w` reaches, or null when the walk faults: not at a leaf,
 * or the rights (U for CPL 3, W for CPL 3 or with CR0.WP) are missing at some level
 * (SDM vol. 3A 4.6).
 */
function translate(w: Walk, gva: bigint, user: boolean, wp: boolean): bigint | null {
  if (w.end !== "leaf") return null;
  for (const s of w.steps) {
    if (user && (s.value & PTE_U) === 0n) return null;
    if ((user || wp) && (s.value & PTE_W) === 0n) return null;
  }
  const leaf = w.steps.at(-1)!;
  const mask = (1n << BigInt(levelShift(leaf.level))) - 1n;
  return (leaf.value & PTE_ADDR_MASK & ~mask) | (gva & mask);
}

/** The walk of every `access` and `invlpg` at the op that does it (one pass over the trace). */
export function walksAt(trace: Pick<Trace, "config" | "ops">): Map<number, Walk> {
  const out = new Map<number, Walk>();
  const model = new TraceModel(trace.config);
  trace.ops.forEach((op, i) => {
    if (op.op === "access" || op.op === "invlpg") out.set(i, model.walk(op.gva));
    model.apply(op);
  });
  return out;
}

/** The model after the first `end` ops of `trace`. */
export function modelBefore(trace: Pick<Trace, "config" | "ops">, end: number): TraceModel {
  const model = new TraceModel(trace.config);
  for (let i = 0; i < end; i++) model.apply(trace.ops[i]!);
  return model;
}

function writtenQwords(ops: readonly Op[]): Set<bigint> {
  const s = new Set<bigint>();
  for (const op of ops) if (op.op === "write") s.add(op.gpa & ~7n);
  return s;
}

/** The distinct walks of the trace's accesses (by the entries they read), last first. */
function paths(ops: readonly Op[], walks: ReadonlyMap<number, Walk>): WalkStep[][] {
  const out: WalkStep[][] = [];
  const seen = new Set<string>();
  for (let i = ops.length - 1; i >= 0; i--) {
    if (ops[i]!.op !== "access") continue;
    const steps = walks.get(i)!.steps;
    const key = steps.map((s) => s.entry).join(",");
    if (steps.length === 0 || seen.has(key)) continue;
    seen.add(key);
    out.push(steps);
  }
  return out;
}

/**
 * Rewrites the linear addresses whose walk (in `walks`, of the trace `ops` came from)
 * reads `entry` at `level` (the index there becomes `to`): the one walked, aliases that
 * reach the same table by another path, and the same addresses where the walk did not
 * get that far (after its slot went, say), which the trace means to reach the same way.
 */
function reindex(
  ops: readonly Op[],
  walks: ReadonlyMap<number, Walk>,
  entry: bigint,
  level: number,
  to: number,
): Op[] {
  const shift = BigInt(levelShift(level));
  const reads = (i: number) =>
    walks.get(i)!.steps.some((s) => s.level === level && s.entry === entry);
  const regions = new Set<bigint>();
  ops.forEach((op, i) => {
    if ((op.op === "access" || op.op === "invlpg") && reads(i)) regions.add(op.gva >> shift);
  });
  return ops.map((op, i) => {
    if (op.op !== "access" && op.op !== "invlpg") return op;
    const follows = reads(i) ||
      (regions.has(op.gva >> shift) && !walks.get(i)!.steps.some((s) => s.level === level));
    return follows ? { ...op, gva: withIndex(op.gva, level, to) } : op;
  });
}

/**
 * Folds the table `lower.table` into `upper.table`: its writes move to the same offsets
 * there (the entry the walk reads at the lower level to index `to`), pointers to it
 * (or, with `onlyUpper`, the upper entry alone) point to the upper table, so the upper
 * entry references its own page.
 */
function foldTable(
  ops: readonly Op[],
  walks: ReadonlyMap<number, Walk>,
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
    for (let j = 0; j < PT_ENTRIES && to < 0; j++) if (free(j)) to = j;
    if (to < 0) return null;
  }
  const moved = lower.entry;
  let clash = false;
  const out = ops.map((op): Op => {
    switch (op.op) {
      case "write": {
        let value = op.value;
        const retarget = !onlyUpper || (op.gpa & ~7n) === upper.entry;
        if (retarget && (value & PTE_P) !== 0n && (value & PTE_ADDR_MASK) === from) {
          value = (value & ~PTE_ADDR_MASK) | into;
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
        return (op.gpa & PTE_ADDR_MASK) === from
          ? { ...op, gpa: (op.gpa & ~PTE_ADDR_MASK) | into }
          : op;
      default:
        return op;
    }
  });
  if (clash) return null;
  // Which accesses read the moved entry is decided on the trace before the fold.
  return to === lower.index ? out : reindex(out, walks, moved, lower.level, to);
}

/**
 * Table folds and level merges along the walks of the trace's accesses. A fold writes
 * one page fewer; a merge drops the writes of one entry, or moves them onto the other.
 */
export function pagingVariants(trace: Trace): Op[][] {
  const ops = trace.ops;
  const out: Op[][] = [];
  const walks = walksAt(trace);
  for (const steps of paths(ops, walks)) {
    for (let k = 0; k + 1 < steps.length; k++) {
      const upper = steps[k]!;
      const lower = steps[k + 1]!;
      const target = upper.value & PTE_ADDR_MASK;
      if (target !== upper.table) {
        // Every pointer to the folded page follows it, or (when it is also a data page
        // whose contents must differ from the table's) only the entry on this walk.
        for (const onlyUpper of [false, true]) {
          const v = foldTable(ops, walks, upper, lower, onlyUpper);
          if (v !== null) out.push(v);
        }
      } else if (
        (lower.value & PTE_ADDR_MASK) === target && lower.index !== upper.index &&
        lower.level > 1 &&
        !(lower.level <= 3 && (lower.value & PTE_PS) !== 0n)
      ) {
        // Both levels reference the same page: the upper entry can serve the lower level.
        const reindexed = reindex(ops, walks, lower.entry, lower.level, upper.index);
        out.push(reindexed.filter((op) => !(op.op === "write" && (op.gpa & ~7n) === lower.entry)));
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
 * The op index of the last write that set all of qword `q` before each op: an aligned
 * 8-byte write, or an aligned 4-byte write of its low half (the high half zero then
 * or written by another op); a partial write of other bytes forgets it.
 */
function writersAt(ops: readonly Op[]): Map<bigint, number>[] {
  const writer = new Map<bigint, number>();
  const at: Map<bigint, number>[] = [];
  ops.forEach((op, i) => {
    at.push(new Map(writer));
    if (op.op !== "write") return;
    if ((op.size === 8 || op.size === 4) && (op.gpa & 7n) === 0n) writer.set(op.gpa, i);
    else {
      writer.delete(op.gpa & ~7n);
      writer.delete((op.gpa + BigInt(op.size) - 1n) & ~7n);
    }
  });
  return at;
}

/**
 * `op` if it sets an entry's attributes and frame bits 31:12: an aligned 8-byte write,
 * or an aligned 4-byte write of the low half (its high half as other ops leave it).
 */
function entryWrite(op: Op | undefined): (Op & { op: "write" }) | undefined {
  return op?.op === "write" && (op.gpa & 7n) === 0n && (op.size === 8 || op.size === 4)
    ? op
    : undefined;
}

/** `value` for the write `op` (see {@linkcode entryWrite}), or null if it cannot hold it. */
function fits(op: Op & { op: "write" }, value: bigint): bigint | null {
  return op.size === 8 || value >> 32n === 0n ? value : null;
}

/** The value of entry write `op` with frame `frame`, or null if a low half cannot hold it. */
function withFrame(op: Op & { op: "write" }, frame: bigint): bigint | null {
  const addr = op.size === 8 ? PTE_ADDR_MASK : PTE_ADDR_MASK & 0xffff_ffffn;
  return fits(op, (op.value & ~addr) | frame);
}

/**
 * Table pointers made large leaves: a PDE, or a PDPTE with `gbPages`, that the walk
 * of an access follows to a table becomes a 2 MiB (1 GiB) leaf.
 *
 * - When the entry the walk reads below it is the leaf, the leaf moves up a level: the
 *   pointer takes the leaf's attributes (rights ANDed, NX ORed), PS and the large frame
 *   that holds the leaf's frame, the leaf's writes go, and the accesses through it are
 *   re-indexed at the lower level so that they reach the same gpa.
 * - Otherwise its frame aligned down, or frame 0, each alone (simpler only when the
 *   frame lost bits) and with the writes to the table it pointed to dropped.
 */
export function leafCollapses(trace: Trace): Op[][] {
  const ops = trace.ops;
  const walks = walksAt(trace);
  const writers = writersAt(ops);
  const out: Op[][] = [];
  const seen = new Set<string>();
  ops.forEach((op, i) => {
    if (op.op !== "access") return;
    const walk = walks.get(i)!;
    walk.steps.forEach((s, k) => {
      if (!(s.level === 2 || (s.level === 3 && trace.config.gbPages))) return;
      if ((s.value & PTE_PS) !== 0n) return;
      const w = writers[i]!.get(s.entry);
      if (w === undefined || seen.has(`${w}:${s.level}`)) return;
      seen.add(`${w}:${s.level}`);
      const wr = ops[w]!;
      if (wr.op !== "write") return;
      const span = 1n << BigInt(levelShift(s.level));
      const below = s.value & PTE_ADDR_MASK;
      const leaf = walk.steps[k + 1];
      if (walk.end === "leaf" && leaf !== undefined && k + 2 === walk.steps.length) {
        const lower = (1n << BigInt(levelShift(leaf.level))) - 1n;
        const frame = leaf.value & PTE_ADDR_MASK & ~lower;
        const rights = s.value & leaf.value & (PTE_W | PTE_U);
        // Bits 11:0 but PS (PAT in a 4 KiB PTE), NX; the large frame holding the frame.
        const attrs = (leaf.value & (0xfffn | PTE_NX) & ~(PTE_PS | PTE_W | PTE_U)) |
          (s.value & PTE_NX) | rights | PTE_PS;
        const value = entryWrite(wr) && fits(wr, attrs | (frame & ~(span - 1n)));
        if (typeof value === "bigint") {
          const up = ops.map((x, j): Op => j === w ? { ...wr, value } : x);
          const index = Number((frame & (span - 1n)) >> BigInt(levelShift(leaf.level)));
          const dropped = reindex(up, walks, leaf.entry, leaf.level, index)
            .filter((x) => !(x.op === "write" && (x.gpa & ~7n) === leaf.entry));
          out.push(dropped);
        }
      }
      // The frame aligned down (a 4-byte low half holds bits 31:12 of it), or frame 0.
      for (const keep of [~(PTE_ADDR_MASK & (span - 1n)), ~PTE_ADDR_MASK]) {
        const copy = ops.slice();
        copy[w] = { ...wr, value: (wr.value & keep) | PTE_PS };
        out.push(copy);
        // A self-referencing entry's table is its own: nothing below it to drop.
        if (below !== s.table) {
          out.push(copy.filter((x) => !(x.op === "write" && (x.gpa & ~PAGE) === below)));
        }
      }
    });
  });
  return out;
}

/**
 * Accesses replaced by what their walk leaves in the tables: A set in every entry the
 * walk reads and, for a store, D in the leaf (SDM vol. 3A 4.8; KVM
 * `FNAME(update_accessed_dirty_bits)`), written by the ops that wrote those entries,
 * and the access dropped (when only its A/D updates mattered).
 */
export function accessFolds(trace: Trace): Op[][] {
  const ops = trace.ops;
  const walks = walksAt(trace);
  const writers = writersAt(ops);
  const out: Op[][] = [];
  ops.forEach((op, i) => {
    if (op.op !== "access") return;
    const w = walks.get(i)!;
    if (w.end !== "leaf") return;
    const copy = ops.slice();
    let changed = false;
    for (const s of w.steps) {
      const wi = writers[i]!.get(s.entry);
      const wr = entryWrite(wi === undefined ? undefined : copy[wi]);
      if (wr === undefined) return;
      const bits = PTE_A | (op.kind === "write" && s === w.steps.at(-1) ? PTE_D : 0n);
      if ((wr.value & bits) !== bits) {
        copy[wi!] = { ...wr, value: wr.value | bits };
        changed = true;
      }
    }
    if (changed) out.push(copy.filter((_, j) => j !== i));
  });
  return out;
}

/**
 * Direct stores folded into an earlier access (the guest writes the page through a
 * linear mapping instead of the `write` op's direct map): the access becomes the store,
 * its 4 KiB leaf is pointed at the stored page, and the store op goes (or, for a store
 * that self-maps the leaf, the two swap, below). Each variant also
 * comes with W set in every present entry the trace writes, for a supervisor store
 * through entries that were read-only.
 */
export function storeFolds(trace: Trace): Op[][] {
  const ops = trace.ops;
  const out: Op[][] = [];
  const walks = walksAt(trace);
  const writers = writersAt(ops);
  const writable = (copy: Op[]) =>
    copy.map((op): Op => {
      const wr = entryWrite(op);
      return wr !== undefined && (wr.value & PTE_P) !== 0n
        ? { ...wr, value: wr.value | PTE_W }
        : op;
    });
  ops.forEach((access, i) => {
    if (access.op !== "access") return;
    const w = walks.get(i)!;
    const leaf = w.steps.at(-1);
    if (w.end !== "leaf" || leaf === undefined || leaf.level !== 1) return;
    const wi = writers[i]!.get(leaf.entry);
    const leafOp = entryWrite(wi === undefined ? undefined : ops[wi]);
    if (leafOp === undefined) return;
    for (let k = i + 1; k < ops.length; k++) {
      const st = ops[k]!;
      if (st.op !== "write") continue;
      const page = st.gpa & ~PAGE;
      const copy = ops.slice();
      if (page !== (leaf.value & PTE_ADDR_MASK)) {
        const value = withFrame(leafOp, page);
        if (value === null) continue;
        copy[wi!] = { ...leafOp, value };
      }
      copy[i] = kernelStore((access.gva & ~PAGE) + (st.gpa & PAGE), st.size, st.value);
      copy.splice(k, 1);
      out.push(copy, writable(copy));
      // A store that makes the leaf map its own table: the two values change places, the
      // leaf maps its table from the start and the access stores the earlier value
      // through it (the access then caches the mapping it changes).
      if (
        st.size === leafOp.size && st.gpa === leaf.entry && (st.value & PTE_P) !== 0n &&
        (st.value & PTE_ADDR_MASK) === leaf.table
      ) {
        const swapped = ops.slice();
        swapped[wi!] = { ...leafOp, value: st.value };
        swapped[i] = kernelStore(
          (access.gva & ~PAGE) + (leaf.entry & PAGE),
          leafOp.size,
          leafOp.value,
        );
        swapped.splice(k, 1);
        out.push(swapped, writable(swapped));
      }
    }
  });
  return out;
}

/**
 * Present entries (entry writes with P) pointed at a lower page the trace writes: a
 * self-map or a shared table, after which the writes that built the old target can go.
 */
export function redirects(trace: Trace): Op[][] {
  const ops = trace.ops;
  const pages: bigint[] = [];
  for (const op of ops) {
    if (op.op === "write" && !pages.includes(op.gpa & ~PAGE)) pages.push(op.gpa & ~PAGE);
  }
  const out: Op[][] = [];
  ops.forEach((op, i) => {
    const wr = entryWrite(op);
    if (wr === undefined || (wr.value & PTE_P) === 0n) return;
    for (const page of pages) {
      // A higher page would grow the value: the order refuses it, so it is not proposed.
      if (page >= (wr.value & PTE_ADDR_MASK)) continue;
      const value = withFrame(wr, page);
      if (value === null) continue;
      const copy = ops.slice();
      copy[i] = { ...wr, value };
      out.push(copy);
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
        if ((value & PTE_P) !== 0n && inside(value & PTE_ADDR_MASK)) {
          value = (value & ~PTE_ADDR_MASK) | move(value & PTE_ADDR_MASK);
        }
        return gpa === op.gpa && value === op.value ? op : { ...op, gpa, value };
      }
      case "read":
      case "age":
        return inside(op.gpa) ? { ...op, gpa: move(op.gpa) } : op;
      case "cr3":
        return inside(op.gpa & PTE_ADDR_MASK)
          ? { ...op, gpa: (op.gpa & ~PTE_ADDR_MASK) | move(op.gpa & PTE_ADDR_MASK) }
          : op;
      default:
        return op;
    }
  });
}

function overlaps(a: bigint, aPages: number, b: bigint, bPages: number): boolean {
  return a < b + BigInt(bPages * PAGE_SIZE) && b < a + BigInt(aPages * PAGE_SIZE);
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
      const shifted = shiftRange(ops, s.gpa, BigInt(s.pages * PAGE_SIZE), 0n);
      out.push(shifted.map((op) => op.op === "slot" && op.id === s.id ? { ...op, gpa: 0n } : op));
    }
  }
  for (const gone of simple) {
    for (const kept of simple) {
      if (gone.id === kept.id) continue;
      // One slot over both ranges (and the gap between them): no address moves at all,
      // so large guest pages keep their alignment and data pages stay off the tables.
      const lo = gone.gpa < kept.gpa ? gone.gpa : kept.gpa;
      const endOf = (s: SlotRange) => s.gpa + BigInt(s.pages * PAGE_SIZE);
      const hi = endOf(gone) > endOf(kept) ? endOf(gone) : endOf(kept);
      const span = Number((hi - lo) / BigInt(PAGE_SIZE));
      if (clearOf(lo, span, [gone.id, kept.id])) out.push(merge(ops, gone.id, kept.id, lo, span));
      const pages = Math.max(gone.pages, kept.pages);
      if (!clearOf(gone.gpa, pages, [gone.id, kept.id])) continue;
      const shifted = shiftRange(ops, kept.gpa, BigInt(kept.pages * PAGE_SIZE), gone.gpa);
      out.push(merge(shifted, gone.id, kept.id, gone.gpa, pages));
    }
  }
  return out;
}

/**
 * A page the trace writes (or loads into CR3) moved to a lower page the trace does not
 * write, read, age or load: the lowest such page, and the lowest of each memslot range
 * the trace creates (a page no slot backs would make a table MMIO), its pointers and CR3
 * loads following. Tables end up at page 0, where the initial CR3 already points, so a
 * `cr3` op can go. (A page only mapped as data may be taken: the predicate judges.)
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
      used.add(op.gpa & PTE_ADDR_MASK);
      movable.add(op.gpa & PTE_ADDR_MASK);
    }
  }
  const free = new Set<bigint>();
  const lowest = (from: bigint, end: bigint) => {
    // At most |used| + 1 pages are looked at: one of them is free.
    for (let page = from; page < end; page += BigInt(PAGE_SIZE)) {
      if (!used.has(page)) {
        free.add(page);
        return;
      }
    }
  };
  lowest(0n, 1n << 52n);
  for (const op of ops) {
    if (op.op === "slot" && op.pages > 0) lowest(op.gpa, op.gpa + BigInt(op.pages * PAGE_SIZE));
  }
  const out: Op[][] = [];
  for (const page of movable) {
    for (const to of [...free].sort((a, b) => a < b ? -1 : 1)) {
      if (to < page) out.push(shiftRange(ops, page, BigInt(PAGE_SIZE), to));
    }
  }
  return out;
}
