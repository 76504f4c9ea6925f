/**
 * @module
 * Generators of the memslot area: create, move and delete memslots (often over gfns
 * that hold page tables or cached MMIO), flag changes (dirty logging on and off, the
 * EINVAL of a read-only flip), bursts of flag changes that wrap a small MMIO
 * generation, deletes and moves at such a wrap, host discards of table pages, dirty-log
 * reads and clears, and aging.
 */
import type { Op } from "../../src/trace/types.ts";
import type { Source } from "../model/source.ts";
import { between, chance, pick, weighted } from "./_pick.ts";
import { emit, flagsOf, GFN_GRID, HVA_BASE_PAGE, HVA_STRIDE_PAGES, slotOp } from "./_emit.ts";
import { MMIO_SPTE_GEN_LOW_BITS, mmioGenLowBits } from "../../src/core/spte.ts";
import { genMap } from "./mmu.ts";
import { NR_AS, type World, type WSlot } from "../model/world.ts";

/** Slot sizes: small ones make neighbours, 512 pages is one 2 MiB page. */
const PAGES = [16, 1, 512, 64, 1024] as const;
/** Ids at the uAPI edges (docs/kvm-facts.md / semantics 9): last valid, first invalid, SMM, bad AS. */
const EDGE_IDS = [32763, 32764, 0x1_0000, 0x2_0000] as const;

/** A gfn where a slot could go: over cached MMIO, on the grid, or over an old slot. */
function placeGfn(src: Source, world: World, pages: number): number {
  const k = weighted(src, [50, 35, 10, 5]);
  if (k === 1 && world.mmioGpas.length > 0) {
    const gfn = Number(pick(src, world.mmioGpas) >> 12n);
    return gfn - (gfn % Math.min(pages, 16));
  }
  if (k === 2 && world.slots.length > 0) return pick(src, world.slots).gfn; // EEXIST
  // Beyond kvm_mmu_max_gfn (2^40 gfns = 2^52 bytes) under shadow paging: EINVAL.
  if (k === 3) return 2 ** 40 - pages + 1;
  return between(src, 1, 15) * GFN_GRID;
}

/** Creates a slot. */
export function genSlotCreate(src: Source, world: World, out: Op[]): void {
  const free = [1, 2, 3, 4, 5, 6, 7].filter((id) => world.slotById(id) === undefined);
  const reuse = world.usedIds.filter((id) => world.slotById(id) === undefined);
  const k = weighted(src, [70, 20, 10]);
  const id = k === 1 && reuse.length > 0
    ? pick(src, reuse)
    : k === 2
    ? pick(src, EDGE_IDS)
    : free.length > 0
    ? pick(src, free)
    : 7;
  const pages = pick(src, PAGES);
  const gfn = placeGfn(src, world, pages);
  const hvaPage = HVA_BASE_PAGE + between(src, 1, 7) * HVA_STRIDE_PAGES;
  emit(world, out, {
    op: "slot",
    id,
    gpa: BigInt(gfn) << 12n,
    pages,
    hva: BigInt(hvaPage) << 12n,
    flags: flagsOf(chance(src, 30), chance(src, 10)),
  });
}

/** A live slot, preferring those that hold page tables. */
function pickSlot(src: Source, world: World): WSlot | undefined {
  if (world.slots.length === 0) return undefined;
  if (chance(src, 60)) {
    const holding = world.slots.filter((s) => {
      for (const gfn of world.tables.keys()) if (gfn >= s.gfn && gfn < s.gfn + s.pages) return true;
      return false;
    });
    if (holding.length > 0) return pick(src, holding);
  }
  return pick(src, world.slots);
}

/**
 * Deletes a slot (pages 0); now and then (a late decision) at an MMIO generation wrap
 * with translations through it live ({@linkcode updateAtWrap}).
 */
export function genSlotDelete(src: Source, world: World, out: Op[]): void {
  const s = pickSlot(src, world);
  if (s === undefined) return genSlotCreate(src, world, out);
  if (chance(world.late, 20)) return updateAtWrap(world.late, world, out, s, s.gfn, 0);
  emit(world, out, slotOp(s, s.gfn, 0));
}

/**
 * Moves a slot to a new gpa (same hva, size and flags); now and then (a late decision)
 * at an MMIO generation wrap ({@linkcode updateAtWrap}).
 */
export function genSlotMove(src: Source, world: World, out: Op[]): void {
  const s = pickSlot(src, world);
  if (s === undefined) return genSlotCreate(src, world, out);
  const gfn = placeGfn(src, world, s.pages);
  if (chance(world.late, 20)) return updateAtWrap(world.late, world, out, s, gfn, s.pages);
  emit(world, out, slotOp(s, gfn));
}

/** The most updates {@linkcode updateAtWrap} spends reaching a wrap (8 bits: 127). */
const WRAP_UPDATES = 128;

/**
 * A delete (`pages` 0) or move of `s` to `gfn` whose first or second swap (DELETE and MOVE
 * swap twice, docs/kvm-facts.md B.2) wraps the MMIO generation, while translations through `s`
 * are live: dirty-log toggles of `s` (one swap each) until that swap lands on a wrap
 * (`World.wrapsAt`), a load of each address whose walk goes through `s` (its shadow
 * pages and sptes exist), the update, and the loads again. The wrap's
 * `kvm_mmu_zap_all_fast` and the slot flush (with the slot-zap quirk a fast zap too, else
 * a zap of the slot's gfns) then fall into one memslot update, and the translations into
 * the old slot must be gone. When the wrap is out of reach (a wide `mmioGenBits`, a slot
 * of the SMM address space) the update is emitted alone.
 */
function updateAtWrap(
  src: Source,
  world: World,
  out: Op[],
  s: WSlot,
  gfn: number,
  pages: number,
): void {
  const second = chance(src, 50);
  // How many one-swap updates bring the chosen swap of the update onto a wrap (-1: none
  // within WRAP_UPDATES, or a slot of the SMM address space, whose generation is apart).
  const togglesToWrap = () => {
    if (s.id >>> 16 !== 0) return -1;
    for (let t = 0; t < WRAP_UPDATES; t++) {
      if (world.wrapsAt(world.gen + (t + (second ? 2 : 1)) * NR_AS)) return t;
    }
    return -1;
  };
  let probes: bigint[] = [];
  if (togglesToWrap() >= 0) {
    probes = world.gvasThrough(s);
    // No mapping known through `s`: map addresses until one is (tables and frames are
    // drawn from the live slots).
    for (let tries = 0; probes.length === 0 && tries < 3; tries++) {
      genMap(src, world, out);
      probes = world.gvasThrough(s);
    }
    probes = probes.slice(-2);
  }
  const toggles = togglesToWrap();
  for (let i = 0; i < toggles; i++) {
    const cur = world.slotById(s.id) ?? s;
    emit(world, out, slotOp(cur, cur.gfn, cur.pages, !cur.log, cur.ro));
  }
  const load = (gva: bigint): Op => ({ op: "access", gva, kind: "read", user: false, size: 8 });
  for (const gva of probes) out.push(load(gva));
  const cur = world.slotById(s.id) ?? s;
  emit(world, out, slotOp(cur, gfn, pages));
  for (const gva of probes) out.push(load(gva));
  if (probes.length > 0 && chance(src, 30)) {
    out.push({ op: "access", gva: probes[0]!, kind: "write", user: false, size: 8, value: 0x5an });
  }
}

/** Toggles dirty logging (or, rarely, the read-only flag: EINVAL). */
export function genSlotFlags(src: Source, world: World, out: Op[]): void {
  const s = pickSlot(src, world);
  if (s === undefined) return genSlotCreate(src, world, out);
  if (chance(src, 8)) emit(world, out, slotOp(s, s.gfn, s.pages, s.log, !s.ro));
  else emit(world, out, slotOp(s, s.gfn, s.pages, !s.log, s.ro));
}

/**
 * A burst of flag changes: each is one memslot generation bump, so with a small
 * `mmioGenBits` the generation wraps within the burst.
 */
export function genChurn(src: Source, world: World, out: Op[]): void {
  const s = pickSlot(src, world);
  if (s === undefined) return genSlotCreate(src, world, out);
  if (world.mmioMaps.length > 0 && chance(src, 40)) return genMmioAlias(src, world, out, s);
  // Mostly enough updates to wrap a small generation; sometimes enough (>128 updates,
  // 2 per update with SMM) to set generation bits above 8 with the full 19 bits.
  const n = chance(src, 25)
    ? between(src, 130, 300)
    : between(src, 2, 1 << Math.min(world.config.mmioGenBits, 6));
  // Sometimes probe an address after every update: a stale MMIO spte is accepted only
  // at the generations that alias the one it was created with.
  const probe = world.gvas.length > 0 && chance(src, 30) ? pick(src, world.gvas) : null;
  for (let i = 0; i < n; i++) {
    const cur = world.slotById(s.id) ?? s;
    emit(world, out, slotOp(cur, cur.gfn, cur.pages, !cur.log, cur.ro));
    if (probe !== null) out.push({ op: "access", gva: probe, kind: "read", user: false, size: 8 });
  }
  // Now and then (a late decision) the burst ends with a delete or move of a slot that
  // translations go through, at a wrap: two fast zaps in one update (`updateAtWrap`).
  if (chance(world.late, 50)) {
    const late = world.late;
    const t = pickSlot(late, world);
    if (t === undefined) return;
    if (chance(late, 50)) updateAtWrap(late, world, out, t, t.gfn, 0);
    else updateAtWrap(late, world, out, t, placeGfn(late, world, t.pages), t.pages);
  }
}

/** The host discards pages of a slot, often the page-table pages. */
export function genDiscard(src: Source, world: World, out: Op[]): void {
  const s = pickSlot(src, world);
  if (s === undefined) return;
  const inSlot = [...world.tables.keys()].filter((g) => g >= s.gfn && g < s.gfn + s.pages);
  const gfn = inSlot.length > 0 && chance(src, 60)
    ? pick(src, inSlot)
    : s.gfn + src.int(Math.min(s.pages, 32));
  const page = s.hvaPage + (gfn - s.gfn);
  out.push({ op: "discard", hva: BigInt(page) << 12n, pages: between(src, 1, 4) });
}

/** KVM_GET_DIRTY_LOG, mostly of a logged slot, now and then followed by a clear. */
export function genDirtyLog(src: Source, world: World, out: Op[]): void {
  const logged = world.slots.filter((s) => s.log);
  const k = weighted(src, [75, 15, 10]);
  let id: number;
  if (k === 0 && logged.length > 0) id = pick(src, logged).id;
  else if (k === 2) id = pick(src, EDGE_IDS);
  else id = world.slots.length > 0 ? pick(src, world.slots).id : 0;
  out.push({ op: "dirtylog", id });
  // Now and then the log is cleared right after it was read, as a migration loop does
  // (a late decision: `world.late`).
  if (chance(world.late, 35)) genDirtyClear(world.late, world, out);
}

/**
 * KVM_CLEAR_DIRTY_LOG, mostly of a logged slot: the whole slot, or one or two of its
 * 64-page bitmap words (the last one may be short, ending at the slot's end), and now
 * and then the uAPI's EINVAL edges (api.rst KVM_CLEAR_DIRTY_LOG): a first page that is
 * not a multiple of 64, a range past the slot, a count short of the slot's end that is
 * not a multiple of 64.
 */
export function genDirtyClear(src: Source, world: World, out: Op[]): void {
  const logged = world.slots.filter((s) => s.log);
  const k = weighted(src, [75, 15, 10]);
  let s: WSlot | undefined;
  if (k === 0 && logged.length > 0) s = pick(src, logged);
  else if (k !== 2 && world.slots.length > 0) s = pick(src, world.slots);
  const id = s?.id ?? (k === 2 ? pick(src, EDGE_IDS) : 0);
  const n = s?.pages ?? 64;
  const words = Math.ceil(n / 64);
  let first = 0, pages = n;
  switch (weighted(src, [40, 35, 9, 8, 8])) {
    case 1: // a word or two from a word boundary
      first = 64 * src.int(words);
      pages = Math.min(64 * between(src, 1, 2), n - first);
      break;
    case 2: // EINVAL: first_page & 63
      first = 64 * src.int(words) + between(src, 1, 63);
      pages = 64;
      break;
    case 3: // EINVAL: num_pages > npages - first_page
      pages = n + pick(src, [1, 64]);
      break;
    case 4: // EINVAL (or a no-op for an empty count): short of the end, not a multiple of 64
      pages = n > 1 ? between(src, 1, Math.min(63, n - 1)) : 0;
      break;
  }
  out.push({ op: "dirtyclear", id, first, pages });
}

/** clear_young over part of a slot. */
export function genAge(src: Source, world: World, out: Op[]): void {
  const s = world.slots.length > 0 ? pick(src, world.slots) : undefined;
  const gfn = s === undefined ? 0 : s.gfn;
  out.push({ op: "age", gpa: BigInt(gfn) << 12n, pages: pick(src, [64, 1, 16, 32]) });
}

/**
 * Caches an MMIO spte (an access through a mapping to no slot), often turns its gpa into
 * RAM, then updates memslots until the generation is exactly a power of two past the
 * one the spte was stamped with, and probes it: a stale MMIO spte must miss at every
 * later generation, aliasing ones included.
 */
function genMmioAlias(src: Source, world: World, out: Op[], s: WSlot): void {
  const m = chance(src, 50)
    ? world.mmioMaps[world.mmioMaps.length - 1]!
    : pick(src, world.mmioMaps);
  out.push({ op: "access", gva: m.gva, kind: "read", user: false, size: 8 });
  const stamp = world.gen;
  const gfn = Number(m.gpa >> 12n);
  if (!chance(src, 30) && world.slotAt(gfn) === undefined) {
    const id = [1, 2, 3, 4, 5, 6, 7].find((i) => world.slotById(i) === undefined);
    if (id !== undefined) {
      const hvaPage = HVA_BASE_PAGE + between(src, 1, 7) * HVA_STRIDE_PAGES;
      emit(world, out, {
        op: "slot",
        id,
        gpa: m.gpa,
        pages: 1,
        hva: BigInt(hvaPage) << 12n,
        flags: [],
      });
      if (chance(src, 70)) out.push({ op: "write", gpa: m.gpa, size: 8, value: 0x1234n });
    }
  }
  // A power-of-two distance, most often the low field's width (docs/kvm-facts.md B.2: gen[7:0]
  // in spte bits 10:3; the core scales the split for a narrow `mmioGenBits`): where a
  // wrong split of the fields makes two generations alias.
  const low = mmioGenLowBits(world.config.mmioGenBits);
  const k = chance(src, 50) ? low : between(src, 1, MMIO_SPTE_GEN_LOW_BITS + 1);
  const target = stamp + 2 ** k;
  // Each toggle is one swap; a stale slot id (deleted meanwhile) ends the burst.
  for (let guard = 0; world.gen < target && guard < 600; guard++) {
    const cur = world.slotById(s.id);
    if (cur === undefined) break;
    emit(world, out, slotOp(cur, cur.gfn, cur.pages, !cur.log, cur.ro));
  }
  out.push({ op: "access", gva: m.gva, kind: "read", user: false, size: 8 });
}
