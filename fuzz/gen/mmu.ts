/**
 * @module
 * Generators of the MMU area: page tables that form real 4-level hierarchies over
 * existing memslots (sometimes shared between paths, sometimes mapping themselves),
 * accesses to the addresses they map, PTE rewrites (8-byte, 4-byte halves, single-byte
 * `andb`-style, misaligned and straddling writes) followed or not by an invalidation,
 * CR3 loads, control-bit changes and direct guest-physical loads and stores.
 *
 * Each generator takes a {@linkcode Source}, the {@linkcode World} and an output array,
 * and appends one or a few ops. Every decision's choice 0 is the simplest: a present,
 * writable, user, 8-byte aligned entry; a read access at offset 0; no follow-up.
 */
import type { AccessKind, Op, Size } from "../../src/trace/types.ts";
import type { Source } from "../model/source.ts";
import { between, chance, pick, weighted } from "./_pick.ts";
import { emit, GFN_GRID, HVA_BASE_PAGE, HVA_STRIDE_PAGES, slotOp } from "./_emit.ts";
import type { WEntry, World } from "../model/world.ts";
// Entry bits (SDM vol. 3A table 4-19ff; docs/kvm-facts.md A.1), by short names here.
import {
  levelShift,
  PTE_A as A,
  PTE_ADDR_MASK as ADDR,
  PTE_D as D,
  PTE_NX as NX,
  PTE_P as P,
  PTE_PS as PS,
  PTE_U as U,
  PTE_W as W,
} from "../../src/x86/paging.ts";

/** Options shared by the MMU generators. */
export interface MmuConstraints {
  /** Percent of new entries with a reserved bit set (default 6). */
  reservedPercent?: number;
  /** Percent of leaves at level 2 (2 MiB) (default 20). */
  largePercent?: number;
  /** Percent of leaves at level 3 (1 GiB) (default 5). */
  hugePercent?: number;
  /** Point a large leaf at this frame (aligned down to the leaf's size). */
  frameGfn?: number;
}

/** Appends to a short most-recent-last list. */
function pushRecent<T>(list: T[], item: T): void {
  list.push(item);
  if (list.length > 16) list.shift();
}

/** The first slot and a root table: what every MMU trace starts from. */
export function genSetup(src: Source, world: World, out: Op[]): void {
  if (world.slots.length === 0) {
    const pages = pick(src, [512, 1024, 64]);
    const op: Op = {
      op: "slot",
      id: 0,
      gpa: 0n,
      pages,
      hva: BigInt(HVA_BASE_PAGE) << 12n,
      flags: chance(src, 20) ? ["log"] : [],
    };
    emit(world, out, op);
  }
  if (world.root < 0) {
    // Choice 0 keeps the initial CR3 (0): the root is page 0 of the first slot and the
    // trace needs no cr3 op (semantics.md 1: initial CR3 = 0).
    const slot = world.slots[0];
    const k = src.int(8);
    if (k === 0 || slot === undefined) {
      world.root = 0;
      world.tables.set(0, 4);
    } else {
      const gfn = slot.gfn + Math.min(k, slot.pages - 1);
      world.tables.set(gfn, 4);
      emit(world, out, { op: "cr3", gpa: BigInt(gfn) << 12n });
    }
  }
}

/** A gfn inside a live slot (biased to the first pages), or `fallback`. */
export function dataGfn(src: Source, world: World, fallback = 16): number {
  if (world.slots.length === 0) return fallback;
  const s = world.slots[src.int(world.slots.length)]!;
  const page = chance(src, 70) ? src.int(Math.min(s.pages, 32)) : src.int(s.pages);
  return s.gfn + page;
}

/** A gfn that no live slot covers (an MMIO gpa). */
function mmioGfn(src: Source, world: World): number {
  const candidates = [0x7000, 0x6000 + src.int(64), 0x10_0000];
  for (const s of world.slots) candidates.push(s.gfn + s.pages + src.int(4));
  let gfn = pick(src, candidates);
  while (world.slotAt(gfn) !== undefined) gfn += 0x200;
  return gfn;
}

/** Small index sets make different paths share tables and entries. */
const L4_INDEXES = [0, 1, 255, 256, 511] as const;
const MID_INDEXES = [0, 1, 2, 511, 3] as const;
const L1_INDEXES = [0, 1, 2, 3, 511, 256] as const;

/** A canonical linear address from the small index sets. */
export function genGva(src: Source): bigint {
  const i4 = BigInt(pick(src, L4_INDEXES));
  const i3 = BigInt(pick(src, MID_INDEXES));
  const i2 = BigInt(pick(src, MID_INDEXES));
  const i1 = BigInt(pick(src, L1_INDEXES));
  let gva = (i4 << 39n) | (i3 << 30n) | (i2 << 21n) | (i1 << 12n);
  // Bits 63:48 copy bit 47 (canonical form, SDM vol. 1 3.3.7.1).
  if (i4 >= 256n) gva |= 0xffff_0000_0000_0000n;
  return gva;
}

/** Attribute bits of a new entry; choice 0 gives P|W|U. */
function entryBits(src: Source, world: World, level: number, leaf: boolean, c: MmuConstraints) {
  let v = P | W | U;
  if (chance(src, 6)) v &= ~P;
  if (chance(src, 15)) v &= ~W;
  if (chance(src, 25)) v &= ~U;
  if (chance(src, 50)) v |= A;
  if (leaf && chance(src, 40)) v |= D;
  if (chance(src, 12)) v |= NX;
  if (chance(src, c.reservedPercent ?? 6)) v |= reservedBit(src, world, level, leaf);
  return v;
}

/** One bit that is reserved for an entry of this level (docs/kvm-facts.md A.2). */
function reservedBit(src: Source, world: World, level: number, leaf: boolean): bigint {
  const bits: number[] = [];
  const m = world.config.maxPhyAddr;
  if (m < 52) bits.push(m, 51);
  if (level === 4) {
    bits.push(7);
    if (world.config.vendor === "amd") bits.push(8);
  }
  if (leaf && level === 2) bits.push(13, 20);
  if (leaf && level === 3) bits.push(13, 29);
  if (!world.config.efer.nx) bits.push(63);
  if (bits.length === 0) return 0n;
  return 1n << BigInt(pick(src, bits));
}

/** Writes an entry as one 8-byte store or as two 4-byte halves, and records it. */
function writeEntry(
  src: Source,
  world: World,
  out: Op[],
  entry: { gpa: bigint; level: number; value: bigint; gva: bigint },
): void {
  const how = weighted(src, [85, 10, 5]);
  const lo = entry.value & 0xffff_ffffn;
  const hi = entry.value >> 32n;
  if (how === 0) out.push({ op: "write", gpa: entry.gpa, size: 8, value: entry.value });
  else if (how === 1) {
    out.push({ op: "write", gpa: entry.gpa, size: 4, value: lo });
    out.push({ op: "write", gpa: entry.gpa + 4n, size: 4, value: hi });
  } else {
    out.push({ op: "write", gpa: entry.gpa + 4n, size: 4, value: hi });
    out.push({ op: "write", gpa: entry.gpa, size: 4, value: lo });
  }
  world.recordEntry({ ...entry });
}

/** A leaf frame: RAM in a slot, a page table (self-map), or no slot (MMIO). */
function leafFrame(src: Source, world: World, level: number): bigint {
  const kind = weighted(src, [70, 12, 18]);
  let gfn: number;
  if (kind === 1 && world.tables.size > 0) {
    const tables = [...world.tables.keys()];
    gfn = pick(src, tables);
  } else if (kind === 2) {
    gfn = mmioGfn(src, world);
    world.remember(world.mmioGpas, BigInt(gfn) << 12n);
  } else gfn = dataGfn(src, world);
  // Large frames are aligned to their size (2 MiB = 512 pages, 1 GiB = 2^18 pages).
  if (level === 2) gfn -= gfn % 512;
  if (level === 3) gfn = 0;
  return BigInt(gfn) << 12n;
}

/** A page for a new table: a fresh page of a slot, or an existing table (sharing). */
function tableGfn(src: Source, world: World, level: number): number {
  const shared = [...world.tables].filter(([, l]) => l === level).map(([g]) => g);
  if (shared.length > 0 && chance(src, 20)) return pick(src, shared);
  for (let tries = 0; tries < 4; tries++) {
    const gfn = dataGfn(src, world);
    if (!world.tables.has(gfn) || tries === 3) return gfn;
  }
  return dataGfn(src, world);
}

/** Maps a linear address: follows or builds every level down to a leaf. */
export function genMap(src: Source, world: World, out: Op[], c: MmuConstraints = {}): void {
  if (world.root < 0) genSetup(src, world, out);
  const gva = chance(src, 30) && world.gvas.length > 0 ? pick(src, world.gvas) : genGva(src);
  let table = world.root;
  for (let level = 4; level >= 1; level--) {
    const shift = BigInt(levelShift(level));
    const gpa = (BigInt(table) << 12n) + ((gva >> shift) & 511n) * 8n;
    // Inverted chances: a shrunk choice (0) makes the leaf as high as it can be, so that
    // shrinking trades a 4-level chain for a 2-entry 1 GiB mapping when the bug allows.
    const leaf = level === 1 || (level === 2 && !chance(src, 100 - (c.largePercent ?? 20))) ||
      (level === 3 && !chance(src, 100 - (c.hugePercent ?? 5)));
    const existing = world.entries.get(gpa);
    if (!leaf && existing !== undefined && (existing.value & P) !== 0n && !chance(src, 15)) {
      const next = Number((existing.value & ADDR) >> 12n);
      if ((existing.value & PS) === 0n && world.tables.get(next) === level - 1) {
        table = next;
        continue;
      }
    }
    if (leaf) {
      const frame = c.frameGfn !== undefined && level > 1
        ? BigInt(c.frameGfn - (c.frameGfn % (level === 2 ? 512 : 2 ** 18))) << 12n
        : leafFrame(src, world, level);
      const value = frame | entryBits(src, world, level, true, c) | (level > 1 ? PS : 0n);
      writeEntry(src, world, out, { gpa, level, value, gva });
      const span = (1n << BigInt(levelShift(level))) - 1n;
      if (level === 1) world.leaves.set(Number(frame >> 12n), gva & ~0xfffn);
      else pushRecent(world.large, { gva: gva & ~span, gfn: Number(frame >> 12n), level });
      if (world.slotAt(Number(frame >> 12n)) === undefined) {
        pushRecent(world.mmioMaps, { gva: gva & ~span, gpa: frame });
      }
      world.remember(world.gvas, gva);
      return;
    }
    const child = tableGfn(src, world, level - 1);
    const value = (BigInt(child) << 12n) | entryBits(src, world, level, false, c);
    writeEntry(src, world, out, { gpa, level, value, gva });
    world.tables.set(child, level - 1);
    table = child;
  }
}

/** A linear address to touch: mostly a mapped one. */
function targetGva(src: Source, world: World): bigint {
  const k = weighted(src, [85, 8, 5, 2]);
  if (k === 0 && world.gvas.length > 0) return world.gvas[src.int(world.gvas.length)]!;
  if (k === 3) return 0x0000_8000_0000_0000n | (BigInt(src.int(16)) << 12n); // non-canonical
  return genGva(src);
}

/** A load, store or fetch through the page tables. */
export function genAccess(src: Source, world: World, out: Op[]): void {
  let base = targetGva(src, world);
  // Another 4 KiB page under the same PDE: inside a 2 MiB mapping it is the same leaf.
  if (chance(src, 20)) base = (base & ~0x1f_f000n) | (BigInt(pick(src, L1_INDEXES)) << 12n);
  const kind: AccessKind = (["read", "write", "fetch"] as const)[weighted(src, [50, 32, 18])]!;
  const size = pick<Size>(src, [8, 4, 1, 2]);
  const offset = chance(src, 50) ? BigInt(src.int(4096 / size) * size) : 0n;
  const user = chance(src, 40);
  const gva = base + offset;
  if (kind === "write") {
    const value = BigInt(src.int(0x1_0000_0000)) & ((1n << BigInt(size * 8)) - 1n);
    out.push({ op: "access", gva, kind, user, size, value });
  } else {
    if (kind === "fetch") prepareFetch(world, out, gva, user);
    out.push({ op: "access", gva, kind, user, size });
  }
}

/**
 * With `world.fetchRet` (kvm): a ret (0xc3) at the gpa the fetch at `gva` is believed to
 * reach, unless that frame is a page table the generator built (the byte would rewrite
 * an entry) or lies outside every slot; and, when the believed walk has an entry without
 * A and the fetch may fault there (an NX bit, or a supervisor fetch of a user page under
 * SMEP), a load of `gva` first, whose walk sets those A bits.
 */
function prepareFetch(world: World, out: Op[], gva: bigint, user: boolean): void {
  if (!world.fetchRet) return;
  const path = walkEntries(world, gva);
  const leaf = path.at(-1);
  if (leaf === undefined || (leaf.level !== 1 && (leaf.value & PS) === 0n)) return;
  const mask = (1n << BigInt(levelShift(leaf.level))) - 1n;
  const gpa = (leaf.value & ADDR & ~mask) | (gva & mask);
  const gfn = Number(gpa >> 12n);
  if (world.tables.has(gfn) || world.slotAt(gfn) === undefined) return;
  out.push({ op: "write", gpa, size: 1, value: 0xc3n });
  const userPage = path.every((e) => (e.value & U) !== 0n);
  const mayFault = path.some((e) => (e.value & NX) !== 0n) || (!user && userPage);
  if (mayFault && path.some((e) => (e.value & A) === 0n)) {
    out.push({ op: "access", gva, kind: "read", user, size: 1 });
  }
}

/** How an existing entry changes: choice 0 clears P. */
function rewriteValue(src: Source, world: World, value: bigint, level: number): bigint {
  switch (weighted(src, [14, 12, 10, 8, 20, 6, 6, 8, 6, 10])) {
    case 0:
      return value & ~P;
    case 1:
      return value ^ W;
    case 2:
      return value ^ U;
    case 3:
      return value ^ NX;
    case 4:
      return (value & ~ADDR) | leafFrame(src, world, level === 1 ? 1 : 2);
    case 5:
      return value | reservedBit(src, world, level, (value & PS) !== 0n);
    case 6:
      return level === 2 || level === 3 ? value ^ PS : value ^ A;
    case 7:
      return value & ~(A | D);
    case 8:
      return 0n;
    default:
      return value | P | A | D;
  }
}

/** Rewrites an entry the generator wrote, then maybe invalidates. */
export function genRewrite(src: Source, world: World, out: Op[]): void {
  const list = world.entryList;
  if (list.length === 0) {
    genMap(src, world, out);
    return;
  }
  // Recent entries are more likely to be cached by the backend; entries of tables that
  // are themselves mapped can be rewritten by guest stores through that mapping.
  const selfMapped = world.leaves.size > 0
    ? list.filter((x) => world.leaves.has(Number(x.gpa >> 12n)))
    : [];
  const e = selfMapped.length > 0 && chance(src, 35)
    ? pick(src, selfMapped)
    : chance(src, 50)
    ? list[list.length - 1 - src.int(Math.min(list.length, 4))]!
    : pick(src, list);
  const value = rewriteValue(src, world, e.value, e.level);
  // A guest store through a linear mapping of the table page (what makes a shadowed
  // page unsync, docs/kvm-facts.md B.5) instead of a direct store.
  const selfMap = world.leaves.get(Number(e.gpa >> 12n));
  if (selfMap !== undefined && chance(src, 40)) {
    const gva = selfMap + (e.gpa & 0xfffn);
    out.push({ op: "access", gva, kind: "write", user: chance(src, 20), size: 8, value });
    world.recordEntry({ ...e, value });
    genFollowUp(src, world, out, e.gva);
    return;
  }
  const how = weighted(src, [55, 14, 8, 8, 8, 7]);
  if (how === 0) out.push({ op: "write", gpa: e.gpa, size: 8, value });
  else if (how === 1) out.push({ op: "write", gpa: e.gpa, size: 4, value: value & 0xffff_ffffn });
  else if (how === 2) out.push({ op: "write", gpa: e.gpa + 4n, size: 4, value: value >> 32n });
  else if (how === 3) out.push({ op: "write", gpa: e.gpa, size: 1, value: value & 0xffn });
  else {
    const follow = unalignedStore(src, world, out, e, value, how === 5);
    if (follow !== null) {
      genFollowUp(src, world, out, follow);
      return;
    }
    out.push({ op: "write", gpa: e.gpa, size: 8, value });
  }
  world.recordEntry({ ...e, value });
  genFollowUp(src, world, out, e.gva);
}

/**
 * A store of 1, 2, 4 or 8 bytes at offset 1-7 of entry `e`, within it or (`straddle`)
 * running into the next entry, whose bytes come from `value` and either the next entry's
 * known value or zeros. KVM judges such a write after `mmu_pte_write_fetch_gpte` aligned
 * a 4-byte one down to its 8-byte gpte: every other size is misaligned (the shadow page
 * is zapped), a 4-byte one at offset 5-7 zaps only the first entry's spte
 * (`detect_write_misaligned`, `get_written_sptes`; docs/kvm-facts.md B.6). Returns the address
 * to access next (often one through the second entry of a straddle), or null (nothing
 * emitted) when the store would cross the page.
 */
function unalignedStore(
  src: Source,
  world: World,
  out: Op[],
  e: WEntry,
  value: bigint,
  straddle: boolean,
): bigint | null {
  const size = pick<Size>(src, [4, 2, 8, 1]);
  const offset = straddle && size > 1 ? 9 - size + src.int(size - 1) : 1 + src.int(7);
  if (Number(e.gpa & 0xfffn) + offset + size > 4096) return null;
  const next = world.entries.get(e.gpa + 8n);
  const window = value | ((chance(src, 50) ? next?.value ?? 0n : 0n) << 64n);
  const shift = BigInt(8 * offset), mask = (1n << BigInt(8 * size)) - 1n;
  out.push({ op: "write", gpa: e.gpa + BigInt(offset), size, value: (window >> shift) & mask });
  // What the two entries hold afterwards, for the world's later choices.
  const before = e.value | ((next?.value ?? 0n) << 64n);
  const after = (before & ~(mask << shift)) | (window & (mask << shift));
  world.recordEntry({ ...e, value: after & ((1n << 64n) - 1n) });
  if (next === undefined || offset + size <= 8) return e.gva;
  world.recordEntry({ ...next, value: after >> 64n });
  return chance(src, 50) ? next.gva : e.gva;
}

/** After a rewrite: nothing, INVLPG, a CR3 reload or a CR0.WP flip. */
function genFollowUp(src: Source, world: World, out: Op[], gva: bigint): void {
  const k = weighted(src, [40, 30, 20, 10]);
  if (k === 1) out.push({ op: "invlpg", gva });
  else if (k === 2) emit(world, out, { op: "cr3", gpa: BigInt(world.root) << 12n });
  else if (k === 3) emit(world, out, { op: "ctl", wp: !world.wp });
  if (chance(src, 60)) {
    const kind: AccessKind = (["read", "write", "fetch"] as const)[weighted(src, [60, 30, 10])]!;
    const user = chance(src, 40);
    if (kind === "write") {
      out.push({ op: "access", gva, kind, user, size: 8, value: 1n });
    } else {
      if (kind === "fetch") prepareFetch(world, out, gva, user);
      out.push({ op: "access", gva, kind, user, size: 8 });
    }
  }
}

/** INVLPG, CR3 loads (same root, another table, reserved bits) and control bits. */
export function genInvalidate(src: Source, world: World, out: Op[]): void {
  switch (weighted(src, [35, 30, 10, 5, 20])) {
    case 0:
      out.push({ op: "invlpg", gva: targetGva(src, world) });
      return;
    case 1:
      emit(world, out, { op: "cr3", gpa: BigInt(Math.max(world.root, 0)) << 12n });
      return;
    case 2: {
      const tables = [...world.tables].filter(([, l]) => l === 4).map(([g]) => g);
      const gfn = tables.length > 0 && chance(src, 60) ? pick(src, tables) : dataGfn(src, world);
      world.tables.set(gfn, 4);
      emit(world, out, { op: "cr3", gpa: BigInt(gfn) << 12n });
      return;
    }
    case 3: {
      const bit = BigInt(between(src, world.config.maxPhyAddr, 63));
      out.push({ op: "cr3", gpa: (BigInt(Math.max(world.root, 0)) << 12n) | (1n << bit) });
      return;
    }
    default: {
      const field = pick(src, ["wp", "smep", "smap", "nx", "ac", "pce"] as const);
      const op: Op = { op: "ctl", [field]: chance(src, 50) };
      emit(world, out, op);
    }
  }
}

/** Direct guest-physical loads and stores at page tables, data frames and MMIO gpas. */
export function genPhys(src: Source, world: World, out: Op[]): void {
  const k = weighted(src, [40, 40, 20]);
  let gpa: bigint;
  if (k === 0 && world.entryList.length > 0) gpa = pick(src, world.entryList).gpa;
  else if (k === 2 && world.mmioGpas.length > 0) gpa = pick(src, world.mmioGpas);
  else gpa = (BigInt(dataGfn(src, world)) << 12n) + BigInt(src.int(512) * 8);
  const size = pick<Size>(src, [8, 4, 1, 2]);
  gpa &= ~BigInt(size - 1);
  if (chance(src, 50)) out.push({ op: "read", gpa, size });
  else {
    const value = BigInt(src.int(0x1_0000_0000)) & ((1n << BigInt(size * 8)) - 1n);
    out.push({ op: "write", gpa, size, value });
  }
}

/** A recent item of a most-recent-last list (biased to the newest). */
function recent<T>(src: Source, list: readonly T[]): T {
  return chance(src, 50)
    ? list[list.length - 1 - src.int(Math.min(list.length, 3))]!
    : pick(src, list);
}

/** Page indexes inside a large page: the first ones and the far end. */
const SUBPAGES = [0, 1, 2, 3, 511, 256] as const;

/**
 * Touches several 4 KiB pages inside one large guest page: KVM shadows a guest large
 * page with a direct shadow page of 4 KiB sptes, so a fault on one page can change the
 * sptes of its neighbours (write access, dirty logging, A/D bits). Often aimed at a
 * dirty-logged slot: read one page, write another, write the first, read the log.
 */
export function genLargeTouch(src: Source, world: World, out: Op[]): void {
  let large = world.large.length > 0 && !chance(src, 30) ? recent(src, world.large) : undefined;
  if (large === undefined) {
    // A new 2 MiB mapping, mostly onto a dirty-logged 2 MiB slot.
    let frame: number | undefined;
    const first = world.slots.find((s) => s.id === 0 && s.gfn === 0);
    if (first !== undefined && world.config.gbPages && chance(src, 25)) {
      // A 1 GiB page over the first slot (at gfn 0), dirty-logged.
      if (!first.log) {
        emit(world, out, slotOp(first, first.gfn, first.pages, true));
      }
      frame = -1;
    } else if (chance(src, 75)) {
      const logged = world.slots.filter((s) => s.log && s.id >>> 16 === 0 && s.pages >= 512);
      if (logged.length > 0 && chance(src, 50)) frame = pick(src, logged).gfn;
      else {
        const id = [1, 2, 3, 4, 5, 6, 7].find((i) => world.slotById(i) === undefined) ?? 7;
        const gfn = between(src, 1, 15) * GFN_GRID;
        if (world.slotAt(gfn) === undefined && world.slotAt(gfn + 511) === undefined) {
          const hvaPage = HVA_BASE_PAGE + between(src, 1, 7) * HVA_STRIDE_PAGES;
          emit(world, out, {
            op: "slot",
            id,
            gpa: BigInt(gfn) << 12n,
            pages: 512,
            hva: BigInt(hvaPage) << 12n,
            flags: ["log"],
          });
        }
        frame = gfn;
      }
    }
    const before = world.large.length;
    const c: MmuConstraints = frame === -1
      ? { hugePercent: 100, frameGfn: 0 }
      : frame === undefined
      ? { largePercent: 100 }
      : { largePercent: 100, frameGfn: frame };
    genMap(src, world, out, c);
    if (world.large.length === before && world.large.length === 0) return;
    large = world.large[world.large.length - 1]!;
  }
  const p = BigInt(pick(src, SUBPAGES));
  let q = BigInt(pick(src, SUBPAGES));
  // A different subpage of the same large page (p + 1 could step past its end, and at
  // the top of the address space past 2^64).
  if (q === p) q = p === 0n ? 1n : p - 1n;
  const at = (page: bigint) => large!.gva + (page << 12n);
  const slot = world.slotAt(large.gfn);
  const log = () => {
    if (slot !== undefined && (chance(src, 80) || slot.log)) {
      out.push({ op: "dirtylog", id: slot.id });
    }
  };
  if (!chance(src, 20)) out.push({ op: "access", gva: at(q), kind: "read", user: false, size: 8 });
  if (chance(src, 50)) log();
  out.push({ op: "access", gva: at(p), kind: "write", user: chance(src, 20), size: 8, value: 5n });
  if (!chance(src, 25)) {
    out.push({
      op: "access",
      gva: at(q),
      kind: "write",
      user: chance(src, 20),
      size: 8,
      value: 6n,
    });
  }
  if (!chance(src, 20)) log();
}

/**
 * The entries on the believed walk of `gva` from the root, level 4 first (the shared
 * paging view: a table outside every slot, or a reserved PS bit, ends it).
 */
function walkEntries(world: World, gva: bigint): WEntry[] {
  return world.walk(gva).steps.map((s) => world.entries.get(s.entry)!);
}

/**
 * Unlinks an upper-level entry, changes a PTE below it while it is unreachable, reloads
 * CR3 and links it again: a shadow page that went unsync while detached must be
 * synced when it is linked again (docs/kvm-facts.md B.5). Accesses to two pages under the same
 * page table, so that the second one uses the spte the relink brought back. Half the
 * time the relink is an alias instead ({@linkcode aliasRelink}).
 */
export function genRelink(src: Source, world: World, out: Op[]): void {
  const leaves = world.entryList.filter((e) => e.level === 1);
  const e1 = leaves.length > 0 ? recent(src, leaves) : undefined;
  const path = e1 === undefined ? [] : walkEntries(world, e1.gva);
  if (e1 === undefined || path.length < 4 || path[3] !== e1) {
    genMap(src, world, out, { largePercent: 0 });
    return;
  }
  // A sibling in the same page table (written if the generator has none there).
  const ptPage = e1.gpa & ~0xfffn;
  const siblings = world.entryList.filter((e) => e !== e1 && (e.gpa & ~0xfffn) === ptPage);
  let sib: bigint;
  if (siblings.length > 0 && chance(src, 70)) sib = pick(src, siblings).gva & ~0xfffn;
  else {
    const idx = BigInt(pick(src, L1_INDEXES));
    const j = idx === ((e1.gva >> 12n) & 511n) ? (idx + 1n) & 511n : idx;
    const value = (BigInt(dataGfn(src, world)) << 12n) | P | W | U;
    sib = (e1.gva & ~0x1f_ffffn) | (j << 12n);
    writeEntry(src, world, out, { gpa: ptPage + j * 8n, level: 1, value, gva: sib });
  }
  const gva = e1.gva & ~0xfffn;
  if (!chance(src, 20)) out.push({ op: "access", gva: sib, kind: "read", user: false, size: 8 });
  if (!chance(src, 20)) out.push({ op: "access", gva, kind: "read", user: false, size: 8 });
  if (!chance(src, 40)) {
    aliasRelink(src, world, out, e1, path, sib);
    return;
  }
  const upper = path[weighted(src, [20, 40, 40])]!;
  out.push({
    op: "write",
    gpa: upper.gpa,
    size: 8,
    value: chance(src, 30) ? upper.value & ~P : 0n,
  });
  const value = (e1.value & ~ADDR) | leafFrame(src, world, 1);
  out.push({ op: "write", gpa: e1.gpa, size: 8, value });
  world.recordEntry({ ...e1, value });
  if (!chance(src, 15)) emit(world, out, { op: "cr3", gpa: BigInt(world.root) << 12n });
  out.push({ op: "write", gpa: upper.gpa, size: 8, value: upper.value });
  const first = chance(src, 75) ? sib : gva;
  out.push({ op: "access", gva: first, kind: "read", user: false, size: 8 });
  out.push({ op: "access", gva: first === sib ? gva : sib, kind: "read", user: false, size: 8 });
}

/** `gva` with its index at `level` replaced (bits 63:48 made canonical again). */
function withIndexAt(gva: bigint, level: number, index: number): bigint {
  const shift = BigInt(levelShift(level));
  let out = (gva & ~(511n << shift)) | (BigInt(index) << shift);
  if (level === 4) {
    out &= 0x0000_ffff_ffff_ffffn;
    if (index >= 256) out |= 0xffff_0000_0000_0000n;
  }
  return out;
}

/**
 * The relink of {@linkcode genRelink} without an unlink or a flush: the PTE changes
 * (often by a guest store through a mapping of its own page table, which is what makes
 * the page unsync), then a new upper-level entry aliases a table of the path. The
 * aliased linear addresses were never mapped before, so no TLB may hold them: the walk
 * through the alias must see the new PTE, and the shadow page that the alias links
 * must be synced first (65855ed8b034). An alias at level 2 links the page table itself,
 * which the shadow-page lookup syncs.
 */
function aliasRelink(
  src: Source,
  world: World,
  out: Op[],
  e1: WEntry,
  path: readonly WEntry[],
  sib: bigint,
): void {
  const ptPage = e1.gpa & ~0xfffn;
  const pt = Number(ptPage >> 12n);
  const value = (e1.value & ~ADDR) | leafFrame(src, world, 1);
  let via = world.leaves.get(pt);
  if (via === undefined && !chance(src, 20)) {
    // Point the PTE at its own page table first: the store below goes through it.
    const self = (e1.value & ~(ADDR | NX)) | ptPage | P | W;
    writeEntry(src, world, out, { ...e1, value: self });
    via = e1.gva & ~0xfffn;
    world.leaves.set(pt, via);
  }
  if (via !== undefined && !chance(src, 20)) {
    const gva = via + (e1.gpa & 0xfffn);
    out.push({ op: "access", gva, kind: "write", user: false, size: 8, value });
  } else out.push({ op: "write", gpa: e1.gpa, size: 8, value });
  world.recordEntry({ ...e1, value });
  const level = 4 - weighted(src, [40, 40, 20]);
  const upper = path[4 - level]!;
  const table = upper.gpa & ~0xfffn;
  const index = [1, 2, 3, 511, 256, 4, 0].find((i) =>
    !world.entries.has(table + BigInt(i) * 8n) && i !== Number((upper.gpa & 0xfffn) >> 3n)
  );
  if (index === undefined) return;
  const alias = (g: bigint) => withIndexAt(g, level, index);
  writeEntry(src, world, out, {
    gpa: table + BigInt(index) * 8n,
    level,
    value: upper.value,
    gva: alias(e1.gva),
  });
  const [first, second] = chance(src, 75) ? [sib, e1.gva] : [e1.gva, sib];
  out.push({ op: "access", gva: alias(first & ~0xfffn), kind: "read", user: false, size: 8 });
  out.push({ op: "access", gva: alias(second & ~0xfffn), kind: "read", user: false, size: 8 });
}
