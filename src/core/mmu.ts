/**
 * @module
 * The core's shadow MMU, after KVM's `arch/x86/kvm/mmu/mmu.c` and `paging_tmpl.h`
 * (v6.10; docs/kvm-facts.md section B), in typed arrays:
 *
 * - shadow pages (SPs) in a struct-of-arrays pool: role, gfn, parent ptes,
 *   `unsync`, `unsync_children` + bitmap, `root_count`, `mmu_valid_gen`,
 *   `write_flooding_count`, 512 sptes (two Uint32 halves each) with the gfn and slot
 *   each leaf maps (KVM's `shadowed_translation`); a 4096-bucket (gfn) hash; the
 *   `active_mmu_pages` FIFO (head = newest); a page limit with oldest-first zapping;
 * - `FNAME(page_fault)` / `FNAME(fetch)`: indirect SPs keyed by gfn + role (role.access
 *   = inherited rights), direct SPs of 4 KiB sptes for guest 2M/1G pages,
 *   `protect_clean_gpte`, the CR0.WP=0 supervisor-write trick, MMIO sptes with the
 *   memslot generation, read-only sptes for read-only slots, `FNAME(pte_prefetch)`;
 * - rmaps and parent ptes as `pte_list_desc` chains; `RMAP_RECYCLE_THRESHOLD`;
 * - write tracking of shadowed guest page tables, `kvm_mmu_track_write`, unsync
 *   level-1 pages and the sync points;
 * - `mmu_valid_gen` fast zap, memslot flush with and without the SLOT_ZAP_ALL quirk,
 *   dirty logging by write protection, the mmu notifier and aging.
 *
 * Write tracking is keyed by host page (hva >> 12), not by gfn, so two slots aliasing
 * one host page cannot bypass it (SEMANTICS.md item 2 allows aliasing; KVM keys by
 * gfn, see the report). Bugs from the catalogue (`inject_mmu.ts`) are switched by name
 * (`this.bug["name"]`, a {@linkcode BugFlags} record) at the place KVM had them.
 */
import type { Config, PageRuns } from "../trace/types.ts";
import type { BugFlags } from "./bugs.ts";
import {
  PFERR_FETCH,
  PFERR_PRESENT,
  PFERR_RSVD,
  PFERR_USER,
  PFERR_WRITE,
  PTE_ADDR_MASK_HI,
} from "../x86/paging.ts";
import { Cov } from "./coverage.ts";
import type { SparseMemory } from "./memory.ts";
import { type Memslots, type Slot, SLOT_LOG, SLOT_RO } from "./memslots.ts";
import { PteListPool } from "./pte_list.ts";
import {
  ACC_ALL,
  ACC_EXEC,
  ACC_USER,
  ACC_WRITE,
  childRole,
  ROLE_CR0_WP,
  ROLE_DIRECT,
  ROLE_EFER_NX,
  ROLE_INVALID,
  ROLE_SMAP_ANDNOT_WP,
  ROLE_SMEP_ANDNOT_WP,
  roleAccess,
  roleLevel,
  SYNC_ROLE_IGN,
} from "./role.ts";
import {
  encodeMmioSpte,
  encodeSpte,
  isMmioSpte,
  MMIO_GFN_BITS,
  MMIO_MARK_HI,
  mmioGenLowBits,
  mmioSpteGen,
  mmioSpteGfn,
  out,
  SPTE_A,
  SPTE_D,
  SPTE_HOST_WRITABLE,
  SPTE_MMU_PRESENT,
  SPTE_MMU_WRITABLE,
  SPTE_NX_HI,
  SPTE_P,
  SPTE_U,
  SPTE_W,
  sptePfn,
} from "./spte.ts";
import { GuestWalker } from "./walker.ts";

/** mmu.c constants (docs/kvm-facts.md B.3, B.4, B.7). */
export const KVM_MMU_HASH_SHIFT = 12;
export const KVM_PERMILLE_MMU_PAGES = 20;
export const KVM_MIN_ALLOC_MMU_PAGES = 64;
export const KVM_MIN_FREE_MMU_PAGES = 5;
export const KVM_REFILL_PAGES = 25;
export const RMAP_RECYCLE_THRESHOLD = 1000;
export const BATCH_ZAP_PAGES = 10;
/** `PTE_PREFETCH_NUM`: neighbours mapped around a 4 KiB fault. */
export const PTE_PREFETCH_NUM = 8;
/** `detect_write_flooding`: zap an upper-level SP on its third emulated write. */
export const WRITE_FLOODING_LIMIT = 3;

const SPTES = 512;

/** The shadow-page hash bucket of a gfn (`kvm_page_table_hashfn`'s role here). */
export function spHashOf(gfn: number): number {
  const h = Math.imul((gfn >>> 0) ^ Math.imul((gfn / TWO32) >>> 0, 0x85ebca6b), 0x9e3779b1);
  return h >>> (32 - KVM_MMU_HASH_SHIFT);
}
const BITMAP_WORDS = 16;
const HASH_SIZE = 1 << KVM_MMU_HASH_SHIFT;
const TWO32 = 4294967296;
/** 512^k for k = 0..3: gfns covered by one spte at level k + 1. */
const SPAN = [1, 512, 262144, 134217728];

/**
 * Results of {@linkcode ShadowMmu.translate}: `Memory` (`hva` holds the host address),
 * `Emulate` (a write to emulate at `hva` of `slot`/`gfn`), `Mmio` (exit at `gpa`),
 * `Fault` (#PF with `faultCode`).
 */
export const Tr = { Memory: 0, Emulate: 1, Mmio: 2, Fault: 3 } as const;
export type Tr = typeof Tr[keyof typeof Tr];

export class ShadowMmu {
  readonly walker: GuestWalker;
  readonly pl = new PteListPool();
  // CPU state.
  cr3 = 0;
  wp: boolean;
  smep: boolean;
  smap: boolean;
  nx: boolean;
  ac: boolean;
  // Shadow-page pool.
  cap = 0;
  spRole = new Uint32Array(0);
  spGfn = new Float64Array(0);
  spTrackHva = new Float64Array(0);
  spUnsync = new Uint8Array(0);
  spUnsyncChildren = new Uint16Array(0);
  spUnsyncBitmap = new Uint32Array(0);
  spRootCount = new Uint32Array(0);
  spValidGen = new Uint8Array(0);
  spFlood = new Uint8Array(0);
  spParents = new Float64Array(0);
  spHashNext = new Int32Array(0);
  spPrev = new Int32Array(0);
  spNext = new Int32Array(0);
  /** 0 free, 1 on active_mmu_pages, 2 zapped root kept alive by root_count. */
  spState = new Uint8Array(0);
  sptLo = new Uint32Array(0);
  /**
   * Provenance, not KVM state: the serial of the op that last set each leaf spte, so a
   * finding can name how the translation an access used was built (docs/identity.md).
   */
  sptOp = new Int32Array(0);
  /** The serial of the op being run (`CoreBackend.step` sets it). */
  opSerial = 0;
  /** The `sptOp` of the leaf spte the last access hit, or -1 (a fault path served it). */
  servedBy = -1;
  sptHi = new Uint32Array(0);
  sptGfn = new Float64Array(0);
  sptSlot = new Int32Array(0);
  readonly hash = new Int32Array(HASH_SIZE).fill(-1);
  activeHead = -1;
  activeTail = -1;
  #freeSps: number[] = [];
  #nextSp = 0;
  nUsed = 0;
  nMax = KVM_MIN_ALLOC_MMU_PAGES;
  mmuValidGen = 0;
  root = -1;
  /** hva page -> number of upper-level indirect SPs (KVM: the write-track count). */
  readonly writeTrack = new Map<number, number>();
  /** hva page -> number of indirect SPs of any level (`indirect_shadow_pages` per page). */
  readonly shadowed = new Map<number, number>();
  readonly genMask: number;
  /** Generation bits in the MMIO spte's low field (8 at KVM's widths; see `mmioGenLowBits`). */
  readonly genLowBits: number;
  // mmu notifier (docs/kvm-facts.md B.10).
  mmuInvalidateSeq = 0;
  mmuInvalidateInProgress = 0;
  mmuInvalidateRangeStart = -1;
  mmuInvalidateRangeEnd = -1;
  // Results of translate().
  hva = 0;
  gpa = 0;
  gfn = 0;
  slot: Slot | null = null;
  faultCode = 0;
  /** The vCPU's last access that exited to MMIO (the in-flight access of a racing fault). */
  lastMmio: { gva: number; pfec: number } | null = null;
  /** Fast zaps deferred to the end of a memslot update (`fast-zap-double-toggle`). */
  #deferObsoleteZap = false;
  #scratch = { buf: new Int32Array(64) };
  #scratch2 = { buf: new Int32Array(64) };
  #mmioGenOverride = -1;
  /** Known deviations corrected (`deviations.ts`): each flag is one `fix` name. */
  readonly fixNpPf: boolean;
  readonly fixSyncMmio: boolean;
  readonly fixMmioDirty: boolean;
  readonly fixHalfGpte: boolean;

  constructor(
    readonly config: Config,
    readonly slots: Memslots,
    readonly mem: SparseMemory,
    readonly cov: Uint32Array,
    /** The injected bugs (the catalogue's MMU names are read here). */
    readonly bug: BugFlags,
    fixes: ReadonlySet<string> = new Set(),
  ) {
    this.fixNpPf = fixes.has("np-pf-keeps-stale-spte");
    this.fixSyncMmio = fixes.has("sync-mmio-spte-restamp");
    this.fixMmioDirty = fixes.has("mmio-spte-write-no-dirty");
    this.fixHalfGpte = fixes.has("half-gpte-write-realigned");
    this.walker = new GuestWalker(config, slots, mem);
    this.wp = config.cr0.wp;
    this.smep = config.cr4.smep;
    this.smap = config.cr4.smap;
    this.nx = config.efer.nx;
    this.ac = config.rflags.ac;
    this.genMask = config.mmioGenBits >= 31 ? 0x7fffffff : (1 << config.mmioGenBits) - 1;
    this.genLowBits = mmioGenLowBits(config.mmioGenBits);
    this.walker.reset(this);
    this.#grow(4);
  }

  // ---------------------------------------------------------------- pool and lists

  #grow(cap: number): void {
    const g32 = (a: Uint32Array, n: number) => {
      const b = new Uint32Array(n);
      b.set(a);
      return b;
    };
    const gf = (a: Float64Array, n: number) => {
      const b = new Float64Array(n);
      b.set(a);
      return b;
    };
    const gi = (a: Int32Array, n: number) => {
      const b = new Int32Array(n);
      b.set(a);
      return b;
    };
    const g8 = (a: Uint8Array, n: number) => {
      const b = new Uint8Array(n);
      b.set(a);
      return b;
    };
    this.spRole = g32(this.spRole, cap);
    this.spGfn = gf(this.spGfn, cap);
    this.spTrackHva = gf(this.spTrackHva, cap);
    this.spUnsync = g8(this.spUnsync, cap);
    const uc = new Uint16Array(cap);
    uc.set(this.spUnsyncChildren);
    this.spUnsyncChildren = uc;
    this.spUnsyncBitmap = g32(this.spUnsyncBitmap, cap * BITMAP_WORDS);
    this.spRootCount = g32(this.spRootCount, cap);
    this.spValidGen = g8(this.spValidGen, cap);
    this.spFlood = g8(this.spFlood, cap);
    this.spParents = gf(this.spParents, cap);
    this.spHashNext = gi(this.spHashNext, cap);
    this.spPrev = gi(this.spPrev, cap);
    this.spNext = gi(this.spNext, cap);
    this.spState = g8(this.spState, cap);
    this.sptLo = g32(this.sptLo, cap * SPTES);
    this.sptHi = g32(this.sptHi, cap * SPTES);
    this.sptGfn = gf(this.sptGfn, cap * SPTES);
    this.sptSlot = gi(this.sptSlot, cap * SPTES);
    this.sptOp = gi(this.sptOp, cap * SPTES);
    this.cap = cap;
  }

  /** `is_obsolete_sp`. */
  isObsolete(sp: number): boolean {
    return (this.spRole[sp]! & ROLE_INVALID) !== 0 || this.spValidGen[sp] !== this.mmuValidGen;
  }

  #listAddHead(sp: number): void {
    this.spPrev[sp] = -1;
    this.spNext[sp] = this.activeHead;
    if (this.activeHead >= 0) this.spPrev[this.activeHead] = sp;
    else this.activeTail = sp;
    this.activeHead = sp;
    this.spState[sp] = 1;
  }

  #listDel(sp: number): void {
    const p = this.spPrev[sp]!, n = this.spNext[sp]!;
    if (p >= 0) this.spNext[p] = n;
    else this.activeHead = n;
    if (n >= 0) this.spPrev[n] = p;
    else this.activeTail = p;
  }

  #hashDel(sp: number): void {
    const b = spHashOf(this.spGfn[sp]!);
    let cur = this.hash[b]!, prev = -1;
    while (cur !== sp) {
      prev = cur;
      cur = this.spHashNext[cur]!;
    }
    if (prev < 0) this.hash[b] = this.spHashNext[sp]!;
    else this.spHashNext[prev] = this.spHashNext[sp]!;
  }

  #allocSp(gfn: number, role: number): number {
    let sp = this.#freeSps.pop();
    if (sp === undefined) {
      if (this.#nextSp === this.cap) this.#grow(this.cap * 2);
      sp = this.#nextSp++;
    }
    this.spRole[sp] = role;
    this.spGfn[sp] = gfn;
    this.spTrackHva[sp] = -1;
    this.spUnsync[sp] = 0;
    this.spUnsyncChildren[sp] = 0;
    this.spUnsyncBitmap.fill(0, sp * BITMAP_WORDS, (sp + 1) * BITMAP_WORDS);
    this.spRootCount[sp] = 0;
    this.spValidGen[sp] = this.mmuValidGen;
    this.spFlood[sp] = 0;
    this.spParents[sp] = 0;
    this.sptLo.fill(0, sp * SPTES, (sp + 1) * SPTES);
    this.sptHi.fill(0, sp * SPTES, (sp + 1) * SPTES);
    const b = spHashOf(gfn);
    this.spHashNext[sp] = this.hash[b]!;
    this.hash[b] = sp;
    this.#listAddHead(sp);
    this.nUsed++;
    if ((role & ROLE_DIRECT) === 0) {
      this.cov[Cov.SP_CREATE_INDIRECT]!++;
      this.#accountShadowed(sp);
    } else this.cov[Cov.SP_CREATE_DIRECT]!++;
    return sp;
  }

  #freeSp(sp: number): void {
    this.#hashDel(sp);
    this.spState[sp] = 0;
    this.nUsed--;
    this.#freeSps.push(sp);
  }

  // ---------------------------------------------------------------- page track

  /** Appends (slot serial, gfn) of every AS0 slot page backed by host page `hvaPage`. */
  #aliases(hvaPage: number, into: number[]): number {
    let n = 0;
    const hva = hvaPage * 4096;
    for (const s of this.slots.lists[0]) {
      if (hva >= s.hva && hva < s.hva + s.npages * 4096) {
        into[n++] = s.serial;
        into[n++] = s.baseGfn + (hva - s.hva) / 4096;
      }
    }
    return n;
  }
  #aliasBuf: number[] = [];

  #hvaPageOf(slot: Slot, gfn: number): number {
    return slot.hva / 4096 + (gfn - slot.baseGfn);
  }

  /** `account_shadowed`: write-track (upper levels) and write-protect the gfn. */
  #accountShadowed(sp: number): void {
    const gfn = this.spGfn[sp]!;
    const slot = this.slots.find(gfn);
    if (slot === null) return;
    const page = this.#hvaPageOf(slot, gfn);
    this.spTrackHva[sp] = page;
    this.shadowed.set(page, (this.shadowed.get(page) ?? 0) + 1);
    if (roleLevel(this.spRole[sp]!) > 1) {
      this.writeTrack.set(page, (this.writeTrack.get(page) ?? 0) + 1);
    }
    this.#writeProtectPage(page, true);
  }

  #unaccountShadowed(sp: number): void {
    const page = this.spTrackHva[sp]!;
    if (page < 0) return;
    const n = this.shadowed.get(page)! - 1;
    if (n === 0) this.shadowed.delete(page);
    else this.shadowed.set(page, n);
    if (roleLevel(this.spRole[sp]!) > 1) {
      const t = this.writeTrack.get(page)! - 1;
      if (t === 0) this.writeTrack.delete(page);
      else this.writeTrack.set(page, t);
    }
    this.spTrackHva[sp] = -1;
  }

  /** Clears W (and MMU-writable if `ptProtect`) in every spte mapping host page `page`. */
  #writeProtectPage(page: number, ptProtect: boolean): void {
    const buf = this.#aliasBuf;
    const n = this.#aliases(page, buf);
    for (let k = 0; k < n; k += 2) {
      const slot = this.slots.bySerial.get(buf[k]!)!;
      this.#writeProtectGfn(slot, buf[k + 1]!, ptProtect);
    }
  }

  /** `rmap_write_protect` for one gfn of a slot. */
  #writeProtectGfn(slot: Slot, gfn: number, ptProtect: boolean): boolean {
    const head = slot.rmap.get(gfn);
    if (head === undefined) return false;
    const n = this.pl.collect(head, this.#scratch2);
    const clear = ptProtect ? SPTE_W | SPTE_MMU_WRITABLE : SPTE_W;
    let changed = false;
    for (let i = 0; i < n; i++) {
      const s = this.#scratch2.buf[i]!;
      const lo = this.sptLo[s]!;
      if ((lo & clear) !== 0) {
        this.sptLo[s] = (lo & ~clear) >>> 0;
        this.sptOp[s] = this.opSerial;
        changed = true;
      }
    }
    return changed;
  }

  // ---------------------------------------------------------------- rmaps and sptes

  #rmapAdd(slot: Slot, gfn: number, s: number): void {
    const head = slot.rmap.get(gfn) ?? 0;
    const nh = this.pl.add(head, s);
    slot.rmap.set(gfn, nh);
    const len = this.pl.lengthAfter;
    if (len === 1) this.cov[Cov.RMAP_SINGLE]!++;
    else if (this.pl.isChain(nh)) this.cov[Cov.RMAP_DESC_CHAIN]!++;
    else this.cov[Cov.RMAP_DESC]!++;
    if (len > RMAP_RECYCLE_THRESHOLD) {
      // rmap_add: kvm_zap_all_rmap_sptes + flush (the new spte goes too).
      this.cov[Cov.RMAP_RECYCLE]!++;
      const n = this.pl.collect(nh, this.#scratch2);
      this.pl.freeAll(nh);
      slot.rmap.delete(gfn);
      for (let i = 0; i < n; i++) {
        const x = this.#scratch2.buf[i]!;
        this.sptLo[x] = 0;
        this.sptHi[x] = 0;
      }
    }
  }

  #rmapRemove(s: number): void {
    const slot = this.slots.bySerial.get(this.sptSlot[s]!);
    if (slot === undefined) throw new Error(`rmap_remove: spte ${s} names a freed memslot`);
    const gfn = this.sptGfn[s]!;
    const nh = this.pl.remove(slot.rmap.get(gfn) ?? 0, s);
    if (nh === 0) slot.rmap.delete(gfn);
    else slot.rmap.set(gfn, nh);
  }

  /** `mmu_page_zap_pte`: clears one spte, unlinking a child SP or an rmap entry. */
  #zapPte(sp: number, s: number): void {
    const lo = this.sptLo[s]!;
    if ((lo & SPTE_MMU_PRESENT) !== 0) {
      if (roleLevel(this.spRole[sp]!) === 1) this.#rmapRemove(s);
      else {
        const child = sptePfn(lo, this.sptHi[s]!);
        this.spParents[child] = this.pl.remove(this.spParents[child]!, s);
      }
    }
    this.sptLo[s] = 0;
    this.sptHi[s] = 0;
  }

  // ---------------------------------------------------------------- unsync

  #markUnsync(parentSpte: number): void {
    const p = (parentSpte / SPTES) | 0, i = parentSpte & 511;
    const w = p * BITMAP_WORDS + (i >>> 5), bit = 1 << (i & 31);
    if ((this.spUnsyncBitmap[w]! & bit) !== 0) return;
    this.spUnsyncBitmap[w] = (this.spUnsyncBitmap[w]! | bit) >>> 0;
    if (this.spUnsyncChildren[p]!++ > 0) return;
    this.#markParentsUnsync(p);
  }

  #markParentsUnsync(sp: number): void {
    const n = this.pl.collect(this.spParents[sp]!, this.#scratch);
    if (n === 0) return;
    const parents = this.#scratch.buf.slice(0, n);
    for (const ps of parents) this.#markUnsync(ps);
  }

  #clearUnsyncChildBit(sp: number, i: number): void {
    const w = sp * BITMAP_WORDS + (i >>> 5), bit = 1 << (i & 31);
    if ((this.spUnsyncBitmap[w]! & bit) === 0) return;
    this.spUnsyncBitmap[w] = (this.spUnsyncBitmap[w]! & ~bit) >>> 0;
    this.spUnsyncChildren[sp]!--;
  }

  /** `kvm_unsync_page`. */
  #unsyncPage(sp: number): void {
    this.cov[Cov.UNSYNC]!++;
    this.spUnsync[sp] = 1;
    this.#markParentsUnsync(sp);
  }

  /**
   * `mmu_try_to_unsync_pages` for host page `page`: -1 (EPERM: keep read-only), else 0.
   */
  #tryUnsync(page: number, canUnsync: boolean, prefetch = false): number {
    if ((this.writeTrack.get(page) ?? 0) > 0) return -1;
    if ((this.shadowed.get(page) ?? 0) === 0) return 0;
    const buf = this.#aliasBuf;
    const n = this.#aliases(page, buf);
    for (let k = 0; k < n; k += 2) {
      const gfn = buf[k + 1]!;
      for (let sp = this.hash[spHashOf(gfn)]!; sp >= 0; sp = this.spHashNext[sp]!) {
        if (this.spGfn[sp] !== gfn || this.isObsolete(sp)) continue;
        if ((this.spRole[sp]! & ROLE_DIRECT) !== 0) continue;
        if (!canUnsync) return -1;
        if (this.spUnsync[sp]) continue;
        if (prefetch) return -1; // -EEXIST: a prefetch never unsyncs
        this.#unsyncPage(sp);
      }
    }
    return 0;
  }

  /**
   * `__mmu_unsync_walk`: appends the unsync level-1 SPs below `sp` to `into`, clearing
   * bitmap bits that point at nothing unsync (KVM clears them lazily the same way).
   */
  #unsyncWalk(sp: number, into: number[]): void {
    for (let w = 0; w < BITMAP_WORDS; w++) {
      let word = this.spUnsyncBitmap[sp * BITMAP_WORDS + w]!;
      while (word !== 0) {
        const b = 31 - Math.clz32(word & -word);
        word = (word & ~(1 << b)) >>> 0;
        const i = w * 32 + b;
        const s = sp * SPTES + i;
        const lo = this.sptLo[s]!;
        if ((lo & SPTE_MMU_PRESENT) === 0 || roleLevel(this.spRole[sp]!) === 1) {
          this.#clearUnsyncChildBit(sp, i);
          continue;
        }
        const child = sptePfn(lo, this.sptHi[s]!);
        if (this.spUnsyncChildren[child]! > 0) {
          this.#unsyncWalk(child, into);
          if (this.spUnsyncChildren[child] === 0) this.#clearUnsyncChildBit(sp, i);
        } else if (this.spUnsync[child]) {
          into.push(child);
        } else this.#clearUnsyncChildBit(sp, i);
      }
    }
  }

  /** `mmu_sync_children`: write-protect, then sync every unsync page below `sp`. */
  #syncChildren(sp: number): void {
    const pages: number[] = [];
    this.#unsyncWalk(sp, pages);
    for (const c of pages) {
      const page = this.spTrackHva[c]!;
      if (page >= 0) this.#writeProtectPage(page, true);
    }
    for (const c of pages) {
      if (this.spState[c] !== 1 || !this.spUnsync[c]) continue;
      this.spUnsync[c] = 0;
      this.#syncPage(c);
    }
    const rest: number[] = [];
    if (this.spState[sp] !== 0) this.#unsyncWalk(sp, rest);
  }

  /** The root role of the current CPU state (`kvm_init_shadow_mmu`). */
  rootRole(): number {
    let role = 4 | (ACC_ALL << 8);
    // v6.10 forces efer_nx = 1 here; the core keys SPs on the guest's NXE instead so
    // that sptes built under one NX interpretation are not reused under the other.
    if (this.nx) role |= ROLE_EFER_NX;
    if (this.wp) role |= ROLE_CR0_WP;
    else {
      if (this.smep) role |= ROLE_SMEP_ANDNOT_WP;
      if (this.smap) role |= ROLE_SMAP_ANDNOT_WP;
    }
    return role >>> 0;
  }

  /** `kvm_sync_page`: re-validates every spte; zaps the SP if its role cannot be synced. */
  #syncPage(sp: number): boolean {
    if (((this.spRole[sp]! ^ this.rootRole()) & ~SYNC_ROLE_IGN) !== 0) {
      this.cov[Cov.SP_LOOKUP_SYNC_ZAP]!++;
      this.#prepareZap(sp);
      return false;
    }
    for (let i = 0; i < SPTES; i++) this.#syncSpte(sp, i);
    return true;
  }

  /** `FNAME(sync_spte)`: re-reads the gpte behind one spte of an unsync page. */
  #syncSpte(sp: number, i: number): void {
    const s = sp * SPTES + i;
    const lo = this.sptLo[s]!, hi = this.sptHi[s]!;
    if (lo === 0 && hi === 0) return;
    const w = this.walker;
    const ptSlot = this.slots.find(this.spGfn[sp]!);
    let drop = ptSlot === null;
    let glo = 0, ghi = 0;
    if (!drop) {
      this.mem.read(this.#hvaPageOf(ptSlot!, this.spGfn[sp]!) * 4096 + i * 8, 8);
      glo = this.mem.word[0]!;
      ghi = this.mem.word[1]!;
      // FNAME(prefetch_invalid_gpte): not present, reserved bits, or A clear.
      drop = (glo & 1) === 0 || (glo & w.rsvdLo[1]!) !== 0 || (ghi & w.rsvdHi[1]!) !== 0 ||
        (glo & SPTE_A) === 0;
    }
    const gfn = (ghi & PTE_ADDR_MASK_HI) * 1048576 + (glo >>> 12);
    if (isMmioSpte(lo, hi)) {
      // sync_mmio_spte: a changed gfn zaps; the same gfn is re-marked with the gpte's
      // current access (so a gpte that lost W no longer passes the MMIO fast path).
      // (The sync-mmio-spte-restamp correction also drops an spte of an older memslot
      // generation, which a memslot created over its gfn may have turned into RAM.)
      const stale = this.fixSyncMmio &&
        mmioSpteGen(lo, hi, this.genLowBits) !== (this.slots.gen[0] & this.genMask);
      if (drop || stale || mmioSpteGfn(lo, hi) !== gfn) {
        this.#zapPte(sp, s);
        this.cov[Cov.SYNC_SPTE_DROP]!++;
      } else {
        const access = roleAccess(this.spRole[sp]!) & this.#gptAccess(glo, ghi);
        this.#setSpte(sp, s, null, gfn, access, false);
        this.cov[Cov.SYNC_SPTE_UPDATE]!++;
      }
      return;
    }
    if (drop || this.sptGfn[s] !== gfn) {
      this.cov[Cov.SYNC_SPTE_DROP]!++;
      this.#zapPte(sp, s);
      return;
    }
    let access = roleAccess(this.spRole[sp]!) & this.#gptAccess(glo, ghi);
    if ((glo & SPTE_D) === 0) access &= ~ACC_WRITE; // protect_clean_gpte
    const slot = this.slots.bySerial.get(this.sptSlot[s]!)!;
    // KVM's make_spte would make the spte writable again here and mark the page dirty
    // although the guest wrote nothing; the core keeps a dirty-log write protection
    // (the reference does not permit that extra dirty page; see the report).
    if ((slot.flags & SLOT_LOG) !== 0 && (lo & SPTE_W) === 0 && (access & ACC_WRITE) !== 0) {
      this.cov[Cov.SPTE_WRPROT_DIRTYLOG]!++;
      access &= ~ACC_WRITE;
    }
    this.#makeSpte(slot, gfn, access, false);
    // A sync is not an access: keep the spte's A bit as it was (aging reports A).
    this.sptLo[s] = ((out[0]! & ~SPTE_A) | (lo & SPTE_A)) >>> 0;
    this.sptHi[s] = out[1]!;
    this.sptOp[s] = this.opSerial;
    this.cov[Cov.SYNC_SPTE_UPDATE]!++;
  }

  #gptAccess(lo: number, hi: number): number {
    return ((lo & 2) !== 0 ? ACC_WRITE : 0) | ((lo & 4) !== 0 ? ACC_USER : 0) |
      (this.nx && (hi & 0x80000000) !== 0 ? 0 : ACC_EXEC);
  }

  // ---------------------------------------------------------------- zapping

  /**
   * `kvm_mmu_prepare_zap_page` (with the commit folded in): zaps unsync children,
   * unlinks children and parents, unaccounts, and frees the SP unless it is a root in
   * use, which stays off the list as `role.invalid` until its root_count drops.
   */
  #prepareZap(sp: number): number {
    if (this.spState[sp] !== 1) return 0;
    let zapped = 0;
    this.cov[Cov.ZAP_PAGE]!++;
    if (roleLevel(this.spRole[sp]!) > 1 && this.spUnsyncChildren[sp]! > 0) {
      // mmu_zap_unsync_children.
      const pages: number[] = [];
      this.#unsyncWalk(sp, pages);
      for (const c of pages) zapped += this.#prepareZap(c);
    }
    for (let i = 0; i < SPTES; i++) {
      const s = sp * SPTES + i;
      if (this.sptLo[s] !== 0 || this.sptHi[s] !== 0) this.#zapPte(sp, s);
    }
    const n = this.pl.collect(this.spParents[sp]!, this.#scratch);
    const parents = this.#scratch.buf.slice(0, n);
    for (const ps of parents) {
      this.spParents[sp] = this.pl.remove(this.spParents[sp]!, ps);
      this.sptLo[ps] = 0;
      this.sptHi[ps] = 0;
    }
    if ((this.spRole[sp]! & ROLE_DIRECT) === 0) this.#unaccountShadowed(sp);
    this.spUnsync[sp] = 0;
    this.#listDel(sp);
    this.spRole[sp] = (this.spRole[sp]! | ROLE_INVALID) >>> 0;
    if (this.spRootCount[sp] === 0) {
      this.#freeSp(sp);
      zapped++;
    } else {
      this.cov[Cov.ZAP_ROOT_INVALID]!++;
      this.spState[sp] = 2;
    }
    return zapped;
  }

  /** `kvm_mmu_zap_oldest_mmu_pages`: oldest first, skipping roots in use. */
  #zapOldest(wanted: number): void {
    let freed = 0;
    restart: while (freed < wanted) {
      for (let sp = this.activeTail; sp >= 0; sp = this.spPrev[sp]!) {
        if (this.spRootCount[sp]! > 0) continue;
        this.cov[Cov.ZAP_OLDEST]!++;
        freed += Math.max(1, this.#prepareZap(sp));
        continue restart;
      }
      break;
    }
  }

  /** `make_mmu_pages_available`. */
  #makePagesAvailable(): void {
    const avail = this.nMax - this.nUsed;
    if (avail >= KVM_MIN_FREE_MMU_PAGES) return;
    this.#zapOldest(KVM_REFILL_PAGES - avail);
  }

  /** `kvm_mmu_change_mmu_pages` after the memslot page total changed. */
  updatePageLimit(): void {
    const total = this.slots.totalPages;
    this.nMax = Math.max(
      KVM_MIN_ALLOC_MMU_PAGES,
      Math.floor(total * KVM_PERMILLE_MMU_PAGES / 1000),
    );
    if (this.nUsed > this.nMax) this.#zapOldest(this.nUsed - this.nMax);
  }

  /** `kvm_mmu_zap_all_fast`: toggle `mmu_valid_gen`, then zap obsolete pages. */
  zapAllFast(): void {
    this.cov[Cov.FAST_ZAP]!++;
    this.mmuValidGen ^= 1;
    if (this.#deferObsoleteZap) return; // fast-zap-double-toggle: the zap runs later
    this.#zapObsoletePages();
  }

  /** `kvm_zap_obsolete_pages`: from the tail, stopping at the first valid page. */
  #zapObsoletePages(): void {
    let batch = 0;
    restart: while (true) {
      for (let sp = this.activeTail; sp >= 0; sp = this.spPrev[sp]!) {
        if (!this.isObsolete(sp)) break restart;
        this.#prepareZap(sp);
        if (++batch % BATCH_ZAP_PAGES === 0) this.cov[Cov.ZAP_OBSOLETE_BATCH]!++;
        continue restart;
      }
      break;
    }
  }

  // ---------------------------------------------------------------- roots

  /** `kvm_mmu_load`: allocate the root for CR3 (if a slot backs it) and sync it. */
  loadRoot(): void {
    const gfn = Math.floor(this.cr3 / 4096);
    if (this.slots.find(gfn) === null) {
      this.cov[Cov.ROOT_NONE]!++;
      this.root = -1;
      return;
    }
    this.cov[Cov.ROOT_LOAD]!++;
    const root = this.#getShadowPage(gfn, this.rootRole());
    this.spRootCount[root]!++;
    this.root = root;
    this.syncRoots();
  }

  /** `kvm_mmu_free_roots` for the one root of the one vCPU. */
  unloadRoot(): void {
    const root = this.root;
    if (root < 0) return;
    this.root = -1;
    if (--this.spRootCount[root]! === 0 && this.spState[root] === 2) {
      this.spState[root] = 2;
      this.#freeSp(root);
    }
  }

  /** Reloads an obsolete or missing root (KVM_REQ_MMU_FREE_OBSOLETE_ROOTS + load). */
  ensureRoot(): void {
    const root = this.root;
    if (root >= 0) {
      if (!this.isObsolete(root)) return;
      this.cov[Cov.ROOT_RELOAD]!++;
      this.unloadRoot();
      this.loadRoot();
    } else if (this.slots.find(Math.floor(this.cr3 / 4096)) !== null) this.loadRoot();
  }

  /** `kvm_mmu_sync_roots`. */
  syncRoots(): void {
    if (this.root < 0 || this.spUnsyncChildren[this.root] === 0) return;
    this.cov[Cov.SYNC_ROOTS]!++;
    this.#syncChildren(this.root);
  }

  /** MOV CR3 (also a reload of the same value): new root and a full sync. */
  setCr3(cr3: number): void {
    this.unloadRoot();
    this.cr3 = cr3;
    this.loadRoot();
  }

  /** `kvm_mmu_reset_context` after a change of CR0.WP, CR4.SMEP/SMAP or EFER.NXE. */
  resetContext(): void {
    this.walker.reset(this);
    this.unloadRoot();
    this.loadRoot();
  }

  /** `kvm_mmu_invalidate_addr` (INVLPG): sync the sptes of unsync pages on the path. */
  invalidateAddr(gva: number): void {
    this.ensureRoot();
    let sp = this.root;
    if (sp < 0) return;
    const vpn = Math.floor(gva / 4096);
    for (let level = 4; level >= 1; level--) {
      const s = sp * SPTES + (Math.floor(vpn / SPAN[level - 1]!) & 511);
      if (this.spUnsync[sp]) {
        this.cov[Cov.SYNC_INVLPG]!++;
        this.#syncSpte(sp, s - sp * SPTES);
      }
      if (this.spUnsyncChildren[sp] === 0) break;
      const lo = this.sptLo[s]!;
      if ((lo & SPTE_MMU_PRESENT) === 0 || level === 1) break;
      sp = sptePfn(lo, this.sptHi[s]!);
    }
  }

  // ---------------------------------------------------------------- lookup and fetch

  /** `kvm_mmu_get_shadow_page`: find by (gfn, role) or create. */
  #getShadowPage(gfn: number, role: number): number {
    const level = roleLevel(role);
    const stale: number[] = [];
    let found = -1;
    for (let sp = this.hash[spHashOf(gfn)]!; sp >= 0; sp = this.spHashNext[sp]!) {
      if (this.spGfn[sp] !== gfn || this.isObsolete(sp)) continue;
      if (this.spRole[sp] !== role) {
        // ddc16abbbae9: an upper-level page over an unsync gfn zaps the unsync page.
        if (level > 1 && this.spUnsync[sp]) stale.push(sp);
        continue;
      }
      found = sp;
      break;
    }
    for (const sp of stale) {
      this.cov[Cov.SP_ZAP_UNSYNC_FOR_UPPER]!++;
      this.#prepareZap(sp);
    }
    if (found >= 0) {
      if (this.spUnsync[found]) {
        this.cov[Cov.SP_LOOKUP_SYNC]!++;
        if (!this.#syncPage(found)) found = -1;
      }
    }
    if (found >= 0) {
      this.cov[Cov.SP_LOOKUP_HIT]!++;
      this.spFlood[found] = 0;
      return found;
    }
    return this.#allocSp(gfn, role);
  }

  /** `link_shadow_page`. */
  #link(s: number, child: number): void {
    this.cov[Cov.SP_LINK]!++;
    encodeSpte(SPTE_P | SPTE_W | SPTE_U | SPTE_A | SPTE_MMU_PRESENT, child, false);
    this.sptLo[s] = out[0]!;
    this.sptHi[s] = out[1]!;
    this.spParents[child] = this.pl.add(this.spParents[child]!, s);
    if (this.pl.lengthAfter > 1) this.cov[Cov.PARENT_DESC]!++;
    if (this.spUnsyncChildren[child]! > 0 || this.spUnsync[child]) this.#markUnsync(s);
  }

  /**
   * `make_spte` into `out`. Returns whether the spte is writable. Read-only slots give
   * (HW, MW, W) = 000; write-tracked gfns 100; dirty-log protection is applied by
   * clearing W later (110).
   */
  #makeSpte(
    slot: Slot,
    gfn: number,
    access: number,
    canUnsync: boolean,
    accessed = true,
    prefetch = false,
  ): boolean {
    const page = this.#hvaPageOf(slot, gfn);
    const hostWritable = (slot.flags & SLOT_RO) === 0;
    let flags = SPTE_P | SPTE_MMU_PRESENT | (accessed ? SPTE_A : 0);
    if (access & ACC_USER) flags |= SPTE_U;
    if (hostWritable) flags |= SPTE_HOST_WRITABLE;
    let writable = false;
    if ((access & ACC_WRITE) !== 0) {
      if (!hostWritable) this.cov[Cov.SPTE_READONLY_SLOT]!++;
      else if (this.#tryUnsync(page, canUnsync, prefetch) < 0) this.cov[Cov.SPTE_WRPROT_TRACKED]!++;
      else {
        flags |= SPTE_W | SPTE_MMU_WRITABLE | SPTE_D;
        writable = true;
        this.cov[Cov.SPTE_WRITABLE]!++;
        if (slot.flags & SLOT_LOG) this.markDirty(slot, gfn);
      }
    }
    encodeSpte(flags, page, (access & ACC_EXEC) === 0);
    return writable;
  }

  /** `mmu_set_spte` for a leaf; `slot` null installs an MMIO spte. */
  #setSpte(
    sp: number,
    s: number,
    slot: Slot | null,
    gfn: number,
    access: number,
    accessed: boolean,
    prefetch = false,
  ): void {
    const lo = this.sptLo[s]!;
    if (slot === null) {
      if ((lo & SPTE_MMU_PRESENT) !== 0) this.#zapPte(sp, s);
      if (gfn >= 2 ** MMIO_GFN_BITS) {
        this.cov[Cov.MMIO_UNCACHEABLE]!++;
        return;
      }
      // mark_mmio_spte refuses while memslots are in flux (ddfd1730fd82).
      if (this.slots.inProgress[0] && !this.bug["mmio-in-progress"]) {
        this.cov[Cov.MMIO_REFUSED_IN_PROGRESS]!++;
        return;
      }
      const gen = this.#mmioGenOverride >= 0 ? this.#mmioGenOverride : this.slots.gen[0];
      encodeMmioSpte(
        gfn,
        access & (ACC_WRITE | ACC_USER),
        gen & this.genMask,
        this.genLowBits,
        this.bug["mmio-gen-shift"] ? 1 : this.genLowBits,
      );
      this.sptLo[s] = out[0]!;
      this.sptHi[s] = out[1]!;
      this.sptOp[s] = this.opSerial;
      this.cov[Cov.SPTE_MMIO]!++;
      return;
    }
    let rmapped = false;
    if ((lo & SPTE_MMU_PRESENT) !== 0) {
      if (this.sptSlot[s] === slot.serial && this.sptGfn[s] === gfn) rmapped = true;
      else {
        this.cov[Cov.SPTE_REPLACE]!++;
        this.#zapPte(sp, s);
      }
    }
    this.#makeSpte(slot, gfn, access, true, accessed && !prefetch, prefetch);
    this.sptLo[s] = out[0]!;
    this.sptHi[s] = out[1]!;
    this.sptOp[s] = this.opSerial;
    this.sptGfn[s] = gfn;
    this.sptSlot[s] = slot.serial;
    if (!rmapped) this.#rmapAdd(slot, gfn, s);
  }

  /**
   * `FNAME(fetch)`: builds the shadow path for the last walk and sets the leaf spte.
   * Returns the leaf spte index.
   */
  #fetch(gva: number, slot: Slot | null, access: number, accessed = true, prefetch = true): number {
    const w = this.walker;
    const vpn = Math.floor(gva / 4096);
    let sp = this.root;
    for (let level = 4; level > 1; level--) {
      const s = sp * SPTES + (Math.floor(vpn / SPAN[level - 1]!) & 511);
      this.spFlood[sp] = 0; // clear_sp_write_flooding_count
      const lo = this.sptLo[s]!;
      let child: number;
      if (level > w.level) {
        if ((lo & SPTE_MMU_PRESENT) !== 0) child = sptePfn(lo, this.sptHi[s]!);
        else {
          // The child shadows the table at level - 1; its role.access is the rights
          // inherited down to (and including) this level's gpte (b1bd5cba3306).
          const inherited = this.bug["sp-wrong-access"]
            ? this.#gptAccess(w.pteLo[level]!, w.pteHi[level]!)
            : w.ptAccess[level - 1]!;
          child = this.#getShadowPage(
            w.tableGfn[level - 1]!,
            childRole(this.spRole[sp]!, false, inherited),
          );
          if (this.spUnsyncChildren[child]! > 0 && !this.bug["link-unsync-no-sync"]) {
            this.cov[Cov.SYNC_CHILDREN_LINK]!++;
            this.#syncChildren(child); // 65855ed8b034
          }
          this.#link(s, child);
        }
      } else {
        // Direct part: a guest large page shadowed by direct SPs of 4 KiB sptes.
        if ((lo & SPTE_MMU_PRESENT) !== 0) {
          const c = sptePfn(lo, this.sptHi[s]!);
          if (roleAccess(this.spRole[c]!) !== access) {
            // validate_direct_spte (the e09e90a5 fix of access.c's corrupt_hugepage).
            this.cov[Cov.VALIDATE_DIRECT_DROP]!++;
            this.#zapPte(sp, s);
          }
        }
        const lo2 = this.sptLo[s]!;
        if ((lo2 & SPTE_MMU_PRESENT) !== 0) child = sptePfn(lo2, this.sptHi[s]!);
        else {
          const span = SPAN[level - 1]!;
          const base = Math.floor(w.gfn / span) * span;
          child = this.#getShadowPage(base, childRole(this.spRole[sp]!, true, access));
          this.#link(s, child);
        }
      }
      sp = child;
    }
    this.spFlood[sp] = 0;
    const s = sp * SPTES + (vpn & 511);
    this.#setSpte(sp, s, slot, w.gfn, access, accessed);
    if (prefetch && slot !== null && (this.sptLo[s]! & SPTE_MMU_PRESENT) !== 0) {
      this.#ptePrefetch(sp, s);
    }
    return s;
  }

  /**
   * `FNAME(pte_prefetch)` / `__direct_pte_prefetch` (docs/kvm-facts.md B.11): map up to
   * `PTE_PREFETCH_NUM` aligned neighbours of a new 4 KiB spte. Prefetched sptes start
   * old (no A), never unsync a page, and skip dirty-logged slots when writable.
   */
  #ptePrefetch(sp: number, sptep: number): void {
    const base = sp * SPTES + ((sptep - sp * SPTES) & ~(PTE_PREFETCH_NUM - 1));
    const role = this.spRole[sp]!;
    const direct = (role & ROLE_DIRECT) !== 0;
    let ptSlot: Slot | null = null;
    if (!direct) {
      ptSlot = this.slots.find(this.spGfn[sp]!);
      if (ptSlot === null) return;
    }
    const w = this.walker;
    for (let s = base; s < base + PTE_PREFETCH_NUM; s++) {
      if (s === sptep || (this.sptLo[s]! & SPTE_MMU_PRESENT) !== 0) continue;
      const i = s - sp * SPTES;
      let gfn: number, access: number;
      if (direct) {
        gfn = this.spGfn[sp]! + i;
        access = roleAccess(role);
      } else {
        this.mem.read(this.#hvaPageOf(ptSlot!, this.spGfn[sp]!) * 4096 + i * 8, 8);
        const glo = this.mem.word[0]!, ghi = this.mem.word[1]!;
        // FNAME(prefetch_invalid_gpte): not present, not accessed, reserved bits.
        if (
          (glo & 1) === 0 || (glo & SPTE_A) === 0 || (glo & w.rsvdLo[1]!) !== 0 ||
          (ghi & w.rsvdHi[1]!) !== 0
        ) {
          if (this.sptLo[s] !== 0 || this.sptHi[s] !== 0) this.#zapPte(sp, s);
          break;
        }
        gfn = (ghi & PTE_ADDR_MASK_HI) * 1048576 + (glo >>> 12);
        access = roleAccess(role) & this.#gptAccess(glo, ghi);
        if ((glo & SPTE_D) === 0) access &= ~ACC_WRITE;
      }
      const slot = this.slots.find(gfn);
      // gfn_to_memslot_dirty_bitmap: no slot, or a logged slot for a writable spte.
      if (slot === null || ((access & ACC_WRITE) !== 0 && (slot.flags & SLOT_LOG) !== 0)) {
        if (direct) continue;
        break;
      }
      this.cov[Cov.PREFETCH]!++;
      this.#setSpte(sp, s, slot, gfn, access, false, true);
    }
  }

  // ---------------------------------------------------------------- guest accesses

  /**
   * The page-fault path of an access (`FNAME(page_fault)`), after the hit path missed:
   * walk, A/D update, shadow construction, then the decision of what the access does.
   */
  pageFault(gva: number, pfec: number): Tr {
    this.cov[Cov.ACCESS_FAULT]!++;
    const w = this.walker;
    const write = (pfec & PFERR_WRITE) !== 0, user = (pfec & PFERR_USER) !== 0;
    this.#makePagesAvailable();
    this.ensureRoot();
    if (!w.walk(this.cr3, gva, pfec, this.ac)) {
      const c = w.faultCode;
      if ((c & 1) === 0) this.cov[Cov.WALK_FAULT_NOT_PRESENT]!++;
      else if (c & 8) this.cov[Cov.WALK_FAULT_RSVD]!++;
      else this.cov[Cov.WALK_FAULT_PERM]!++;
      this.faultCode = c;
      // kvm_inject_emulated_page_fault: a protection fault invalidates the faulting
      // address ("else the access will fault indefinitely"), which syncs the spte of an
      // unsync page there; a not-present or reserved-bit fault leaves the sptes alone.
      // (The np-pf-keeps-stale-spte correction invalidates on every fault, as the SDM's
      // 4.10.4.1 has a page fault do.)
      if (this.fixNpPf || ((c & PFERR_PRESENT) !== 0 && (c & PFERR_RSVD) === 0)) {
        this.invalidateAddr(gva);
      }
      return Tr.Fault;
    }
    let access = w.pteAccess;
    const leafLevel = w.level;
    const gfn = w.gfn;
    const slot = this.slots.find(gfn);
    let emulate = false;
    let skipDirty = false;
    if (write && (access & ACC_WRITE) === 0 && !this.wp && !user && slot !== null) {
      if (this.smap && (access & ACC_USER) !== 0) {
        // The trick would turn a user page into a supervisor one that SMAP no longer
        // guards when EFLAGS.AC drops; the core emulates the write instead.
        this.cov[Cov.SPTE_WP0_SMAP_EMULATE]!++;
        emulate = true;
      } else {
        this.cov[Cov.SPTE_WP0_TRICK]!++;
        access = (access | ACC_WRITE) & ~ACC_USER;
        if (this.smep) access &= ~ACC_EXEC;
        if (this.bug["wp0-large-dirty"] && leafLevel > 1) {
          skipDirty = true;
          this.cov[Cov.BUG_FIRED]!++;
        }
      }
    }
    this.#updateAccessedDirty(write && !skipDirty);
    if (!write && (w.pteLo[leafLevel]! & SPTE_D) === 0) {
      if (access & ACC_WRITE) this.cov[Cov.SPTE_CLEAN_PROTECT]!++;
      access &= ~ACC_WRITE; // protect_clean_gpte
    }
    this.gfn = gfn;
    this.gpa = gfn * 4096 + (gva - Math.floor(gva / 4096) * 4096);
    this.slot = slot;
    let writable = false;
    if (this.root >= 0) {
      // A write to a read-only slot exits to MMIO: the page was not accessed, so its
      // spte starts old (like a prefetched one) and aging does not report it.
      const s = this.#fetch(
        gva,
        slot,
        access,
        !(write && slot !== null && (slot.flags & SLOT_RO) !== 0),
      );
      writable = (this.sptLo[s]! & SPTE_W) !== 0;
      if (
        this.bug["fast-pf-large-dirtylog"] && write && writable && leafLevel > 1 && slot !== null
      ) {
        this.#fastPfLargeMutant(s);
      }
    }
    if (slot === null) {
      this.lastMmio = { gva, pfec };
      return Tr.Mmio;
    }
    if (write && (slot.flags & SLOT_RO) !== 0) {
      this.lastMmio = null;
      return Tr.Mmio;
    }
    this.lastMmio = null;
    this.hva = this.#hvaPageOf(slot, gfn) * 4096 + (this.gpa % 4096);
    if (write && (!writable || emulate)) return Tr.Emulate;
    if (write && (slot.flags & SLOT_LOG)) this.markDirty(slot, gfn);
    return Tr.Memory;
  }

  /**
   * The c126d94f2c90 mutant, mapped onto shadow paging (which has no fast_page_fault):
   * a write through a guest large page in a logged slot restores W on every sibling
   * spte of the direct SP, as a lazily-kept large spte would be, while only the
   * faulting gfn is marked dirty.
   */
  #fastPfLargeMutant(s: number): void {
    const sp = (s / SPTES) | 0;
    if ((this.spRole[sp]! & ROLE_DIRECT) === 0) return;
    const slot = this.slots.bySerial.get(this.sptSlot[s]!);
    if (slot === undefined || (slot.flags & SLOT_LOG) === 0) return;
    for (let i = 0; i < SPTES; i++) {
      const x = sp * SPTES + i;
      const lo = this.sptLo[x]!;
      if ((lo & SPTE_MMU_WRITABLE) !== 0 && (lo & SPTE_W) === 0) {
        this.sptLo[x] = (lo | SPTE_W) >>> 0;
        this.sptOp[x] = this.opSerial;
        this.cov[Cov.BUG_FIRED]!++;
      }
    }
  }

  /** `FNAME(update_accessed_dirty_bits)`: A on every level, D on the leaf for writes. */
  #updateAccessedDirty(setDirty: boolean): void {
    const w = this.walker;
    for (let level = 4; level >= w.level; level--) {
      let lo = w.pteLo[level]!;
      const want = level === w.level && setDirty ? SPTE_A | SPTE_D : SPTE_A;
      if ((lo & want) === want) continue;
      lo = (lo | want) >>> 0;
      const gpa = w.pteGpa[level]!;
      const gfn = Math.floor(gpa / 4096);
      const slot = this.slots.find(gfn);
      if (slot === null || (slot.flags & SLOT_RO) !== 0) {
        this.cov[Cov.WALK_AD_SKIP_RO]!++;
        continue; // the PT page's host mapping is read-only: skip
      }
      this.cov[Cov.WALK_AD_UPDATE]!++;
      w.pteLo[level] = lo;
      this.mem.write(this.#hvaPageOf(slot, gfn) * 4096 + (gpa % 4096), 4, lo, 0);
      if (slot.flags & SLOT_LOG) this.markDirty(slot, gfn);
    }
  }

  /**
   * A guest store to guest-physical memory that does not go through a writable spte
   * (the `write` op's direct map, and emulated writes): write-tracked pages take
   * `kvm_mmu_track_write`; pages shadowed only by level-1 SPs go unsync first.
   */
  guestWrite(slot: Slot, gfn: number, hva: number, size: number, lo: number, hi: number): void {
    const page = this.#hvaPageOf(slot, gfn);
    const tracked = (this.writeTrack.get(page) ?? 0) > 0;
    if (!tracked && (this.shadowed.get(page) ?? 0) > 0) {
      this.cov[Cov.WRITE_UNSYNC_DIRECT]!++;
      this.#tryUnsync(page, true);
    }
    this.mem.write(hva, size, lo, hi);
    if (slot.flags & SLOT_LOG) this.markDirty(slot, gfn);
    if (tracked) {
      this.cov[Cov.EMULATE_WRITE]!++;
      this.#trackWrite(page, hva % 4096, size);
    }
  }

  /** `kvm_mmu_track_write` after an emulated write of `bytes` at page offset `offset`. */
  #trackWrite(page: number, offset: number, bytes: number): void {
    // mmu_pte_write_fetch_gpte: with 8-byte gptes (PAE/long mode), a 4-byte write is half
    // of a gpte: the gpa is aligned down to 8 and the whole gpte re-read (bytes = 8).
    // This runs before detect_write_misaligned, so a 4-byte write at offset 5-7 (which
    // the emulator does not split: emulator_read_write splits at pages only) counts as
    // aligned and zaps only the first gpte's spte; the second keeps its stale spte.
    // An upstream quirk (v6.10 mmu.c), reproduced on the real KVM here
    // (test/issue13_quirks_test.ts).
    // (The half-gpte-write-realigned correction leaves a 4-byte write that crosses into
    // the next gpte as it is, so detect_write_misaligned sees it.)
    if (bytes === 4 && !(this.fixHalfGpte && (offset & 7) > 4)) {
      this.cov[Cov.TRACK_WRITE_HALF_GPTE]!++;
      offset &= ~7;
      bytes = 8;
    }
    const buf = this.#aliasBuf;
    const n = this.#aliases(page, buf);
    const sps: number[] = [];
    for (let k = 0; k < n; k += 2) {
      const gfn = buf[k + 1]!;
      for (let sp = this.hash[spHashOf(gfn)]!; sp >= 0; sp = this.spHashNext[sp]!) {
        if (this.spGfn[sp] !== gfn || this.isObsolete(sp)) continue;
        if ((this.spRole[sp]! & ROLE_DIRECT) === 0) sps.push(sp);
      }
    }
    // detect_write_misaligned: an aligned 1-byte write (clear_bit's andb) is fine.
    const misaligned = !((offset & 7) === 0 && bytes === 1) &&
      ((((offset ^ (offset + bytes - 1)) & ~7) !== 0) || bytes < 4);
    for (const sp of sps) {
      if (this.spState[sp] === 0 || this.isObsolete(sp)) continue;
      if (misaligned) {
        this.cov[Cov.TRACK_WRITE_MISALIGNED]!++;
        this.#prepareZap(sp);
        continue;
      }
      if (roleLevel(this.spRole[sp]!) > 1 && ++this.spFlood[sp]! >= WRITE_FLOODING_LIMIT) {
        this.cov[Cov.TRACK_WRITE_FLOODING]!++;
        this.#prepareZap(sp);
        continue;
      }
      const s = sp * SPTES + (offset >>> 3);
      if (this.sptLo[s] !== 0 || this.sptHi[s] !== 0) {
        this.cov[Cov.TRACK_WRITE_ZAP_SPTE]!++;
        this.#zapPte(sp, s);
      }
    }
  }

  /** Marks a page of a logged slot dirty (`mark_page_dirty_in_slot`). */
  markDirty(slot: Slot, gfn: number): void {
    if ((slot.flags & SLOT_LOG) === 0) return;
    this.cov[Cov.DIRTY_MARK]!++;
    slot.dirty.add(gfn - slot.baseGfn);
  }

  /**
   * The check of an MMIO spte hit (`handle_mmio_page_fault` / `check_mmio_spte`):
   * returns the MMIO gpa, or -1 when the spte cannot be trusted (slow path).
   */
  checkMmioSpte(lo: number, hi: number): boolean {
    if (this.slots.inProgress[0] && !this.bug["mmio-in-progress"]) {
      this.cov[Cov.MMIO_IN_PROGRESS_MISS]!++;
      return false;
    }
    if (mmioSpteGen(lo, hi, this.genLowBits) !== (this.slots.gen[0] & this.genMask)) {
      this.cov[Cov.MMIO_GEN_MISMATCH]!++;
      return false;
    }
    this.cov[Cov.MMIO_HIT]!++;
    return true;
  }

  // ---------------------------------------------------------------- memslot hooks

  /** `kvm_arch_flush_shadow_memslot`. */
  flushShadowMemslot(old: Slot): void {
    if (this.config.quirks.slotZapAll) {
      this.cov[Cov.SLOT_ZAP_ALL]!++;
      this.zapAllFast();
      return;
    }
    this.cov[Cov.SLOT_ZAP_SLOT]!++;
    this.#zapRmaps(old, old.baseGfn, old.baseGfn + old.npages);
    if (old.as !== 0 || this.bug["slot-zap-leaf-only"]) return;
    this.#zapSpsInRange(old.baseGfn, old.baseGfn + old.npages);
  }

  /** Zaps every leaf spte of `slot` mapping a gfn in [start, end) (`kvm_zap_gfn_range`). */
  #zapRmaps(slot: Slot, start: number, end: number): number {
    const gfns: number[] = [];
    if (end - start <= slot.rmap.size) {
      this.rangeScanned += end - start;
      for (let g = start; g < end; g++) if (slot.rmap.has(g)) gfns.push(g);
    } else {
      this.rangeScanned += slot.rmap.size;
      for (const g of slot.rmap.keys()) if (g >= start && g < end) gfns.push(g);
    }
    let zapped = 0;
    for (const g of gfns) {
      const head = slot.rmap.get(g);
      if (head === undefined) continue;
      const n = this.pl.collect(head, this.#scratch2);
      const sptes = this.#scratch2.buf.slice(0, n);
      for (const s of sptes) {
        this.#zapPte((s / SPTES) | 0, s);
        zapped++;
      }
    }
    return zapped;
  }

  /** Zaps the indirect SPs whose gfn lies in [start, end). */
  #zapSpsInRange(start: number, end: number): void {
    const victims: number[] = [];
    for (let sp = this.activeHead; sp >= 0; sp = this.spNext[sp]!) {
      const g = this.spGfn[sp]!;
      if ((this.spRole[sp]! & ROLE_DIRECT) === 0 && g >= start && g < end) victims.push(sp);
    }
    for (const sp of victims) this.#prepareZap(sp);
  }

  /** `kvm_mmu_invalidate_mmio_sptes` with the final generation (B.2 wrap rule). */
  memslotsUpdated(_as: number, gen: number): void {
    const g = gen & this.genMask & ~(this.slots.nrAs - 1);
    if (g === 0) {
      this.cov[Cov.MMIO_GEN_WRAP]!++;
      this.zapAllFast();
    }
  }

  /** Starts a memslot update: with `fast-zap-double-toggle`, obsolete zaps wait. */
  beginSlotUpdate(): void {
    this.#deferObsoleteZap = this.bug["fast-zap-double-toggle"];
  }

  /** Ends a memslot update: run deferred zaps, refresh the page limit and the root. */
  endSlotUpdate(): void {
    if (this.#deferObsoleteZap) {
      this.#deferObsoleteZap = false;
      this.#zapObsoletePages();
    }
    this.updatePageLimit();
    this.ensureRoot();
  }

  /**
   * A vCPU fault racing with the update (model of docs/kvm-facts.md D.1/D.2): the vCPU's
   * in-flight MMIO access looked its gfn up in the old memslots and now installs an
   * MMIO spte. Correct KVM refuses while the update is in progress.
   */
  inWindow(as: number, oldView: readonly Slot[]): void {
    const last = this.lastMmio;
    if (as !== 0 || last === null || this.root < 0 || this.isObsolete(this.root)) return;
    const w = this.walker;
    if (!w.walk(this.cr3, last.gva, last.pfec, this.ac)) return;
    const write = (last.pfec & PFERR_WRITE) !== 0;
    for (let level = 4; level >= w.level; level--) {
      const lo = w.pteLo[level]!;
      if ((lo & SPTE_A) === 0 || (level === w.level && write && (lo & SPTE_D) === 0)) return;
    }
    const gfn = w.gfn;
    for (const s of oldView) if (gfn >= s.baseGfn && gfn < s.baseGfn + s.npages) return;
    if (this.slots.inProgress[0] && !this.bug["mmio-in-progress"]) {
      this.cov[Cov.MMIO_REFUSED_IN_PROGRESS]!++;
      return;
    }
    // An install while the update is still in progress is one correct KVM refuses; after
    // it (no in-progress phase at all) the racing vCPU's stale gfn is all that is wrong.
    this.cov[
      this.slots.inProgress[0] ? Cov.MMIO_RACING_INSTALL_IN_PROGRESS : Cov.MMIO_RACING_INSTALL
    ]!++;
    // mmio-in-progress (model): the spte carries the generation being published.
    this.#mmioGenOverride = this.slots.inProgress[0] ? this.slots.gen[0] + this.slots.nrAs : -1;
    let access = w.pteAccess;
    if ((w.pteLo[w.level]! & SPTE_D) === 0 && !write) access &= ~ACC_WRITE;
    this.#fetch(last.gva, null, access, true, false);
    this.#mmioGenOverride = -1;
  }

  /**
   * `kvm_mmu_slot_apply_flags` (x86.c): enabling dirty logging write-protects the slot,
   * except with KVM_DIRTY_LOG_INITIALLY_SET, whose bitmap starts with every page set
   * (`memslots.ts`): "Initially-all-set does not require write protecting any page,
   * because they're all assumed to be dirty."
   */
  applyFlags(slot: Slot, oldFlags: number): void {
    if ((slot.flags & SLOT_LOG) !== 0 && (oldFlags & SLOT_LOG) === 0) {
      this.cov[Cov.DIRTY_ENABLE]!++;
      const { manualProtect, initiallySet } = this.config.dirtyLog;
      if (manualProtect && initiallySet) return;
      for (const gfn of slot.rmap.keys()) this.#writeProtectGfn(slot, gfn, false);
    }
  }

  /**
   * KVM_GET_DIRTY_LOG (`kvm_get_dirty_log_protect`): the bitmap's pages. Without manual
   * protect it is a snapshot-and-clear, and the dirty pages are write-protected again;
   * with KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE the bitmap is only copied ("no flush is
   * needed until KVM_CLEAR_DIRTY_LOG").
   */
  getDirtyLog(slot: Slot): PageRuns {
    const pages = [...slot.dirty].sort((a, b) => a - b);
    if (this.config.dirtyLog.manualProtect) return withRuns(pages, slot.initial);
    slot.dirty.clear();
    for (const p of pages) {
      if (this.#writeProtectGfn(slot, slot.baseGfn + p, false)) this.cov[Cov.DIRTY_REPROTECT]!++;
    }
    return withRuns(pages, []);
  }

  /**
   * KVM_CLEAR_DIRTY_LOG of pages [first, first + pages) with a mask of all ones, after
   * `Memslots.clearDirtyLogSlot` accepted it: per 64-page word of the bitmap
   * (`kvm_clear_dirty_log_protect`), the bits set both in the mask and in the bitmap are
   * cleared (`atomic_long_fetch_andnot`) and `kvm_arch_mmu_enable_log_dirty_pt_masked`
   * re-protects exactly those pages: `kvm_mmu_write_protect_pt_masked` write-protects
   * each one's 4 KiB rmap (the core maps no huge sptes, so the initially-set path's
   * 2 MiB write-protection has nothing to do). A page whose bit was clear keeps its
   * sptes. Costs the slot's rmap and dirty set, not the range.
   */
  clearDirtyLog(slot: Slot, first: number, pages: number): void {
    const end = first + pages;
    for (const gfn of slot.rmap.keys()) {
      const p = gfn - slot.baseGfn;
      if (p < first || p >= end || (!slot.dirty.has(p) && !inRuns(slot.initial, p))) continue;
      if (this.#writeProtectGfn(slot, gfn, false)) this.cov[Cov.DIRTY_REPROTECT]!++;
    }
    for (const p of [...slot.dirty]) if (p >= first && p < end) slot.dirty.delete(p);
    slot.initial = withoutRange(slot.initial, first, end);
  }

  // ---------------------------------------------------------------- notifier, aging

  /**
   * The mmu notifier around MADV_DONTNEED of [hva, hva + bytes): range_start zaps the
   * sptes (`kvm_unmap_gfn_range`), `zero` drops the memory, range_end bumps the seq.
   * The core also zaps the SPs shadowing guest page tables in the range: their
   * contents changed behind page tracking (SEMANTICS.md item 10; KVM does not).
   */
  invalidateRange(hva: number, bytes: number, zero: () => void): void {
    this.mmuInvalidateInProgress++;
    if (this.mmuInvalidateInProgress === 1) {
      this.mmuInvalidateRangeStart = hva;
      this.mmuInvalidateRangeEnd = hva + bytes;
    } else {
      this.mmuInvalidateRangeStart = Math.min(this.mmuInvalidateRangeStart, hva);
      this.mmuInvalidateRangeEnd = Math.max(this.mmuInvalidateRangeEnd, hva + bytes);
    }
    for (const list of this.slots.lists) {
      for (const slot of list) {
        const lo = Math.max(hva, slot.hva),
          hi = Math.min(hva + bytes, slot.hva + slot.npages * 4096);
        if (lo >= hi) continue;
        const start = slot.baseGfn + (lo - slot.hva) / 4096,
          end = slot.baseGfn + (hi - slot.hva) / 4096;
        if (this.#zapRmaps(slot, start, end) > 0) this.cov[Cov.NOTIFIER_ZAP]!++;
        if (slot.as === 0) {
          const before = this.nUsed;
          this.#zapSpsInRange(start, end);
          if (this.nUsed !== before) this.cov[Cov.NOTIFIER_ZAP_SP]!++;
        }
      }
    }
    zero();
    this.mmuInvalidateSeq++;
    this.mmuInvalidateInProgress--;
    this.ensureRoot();
  }

  /**
   * Gfns (of a range or of an rmap) that `age` and the notifier's rmap zap looked at, in
   * all: tests check that a range costs what is mapped, not what it spans.
   */
  rangeScanned = 0;

  /**
   * clear_young (`kvm_age_gfn`): clears A in the sptes of each page; returns the young
   * pages (index in the range), ascending. Per valid address-space-0 slot it visits the
   * smaller of the range's part in the slot and the slot's rmap, not every page.
   */
  age(gfn: number, pages: number): number[] {
    const young: number[] = [];
    const end = gfn + pages;
    // lists[0] is sorted by baseGfn and slots do not overlap: pages come out ascending.
    for (const slot of this.slots.lists[0]) {
      if (slot.invalid) continue;
      const from = Math.max(gfn, slot.baseGfn), to = Math.min(end, slot.baseGfn + slot.npages);
      if (from >= to) continue;
      let gfns: number[] = [];
      if (to - from <= slot.rmap.size) {
        this.rangeScanned += to - from;
        for (let g = from; g < to; g++) if (slot.rmap.has(g)) gfns.push(g);
      } else {
        this.rangeScanned += slot.rmap.size;
        for (const g of slot.rmap.keys()) if (g >= from && g < to) gfns.push(g);
        gfns = gfns.sort((a, b) => a - b);
      }
      for (const g of gfns) {
        const n = this.pl.collect(slot.rmap.get(g)!, this.#scratch2);
        let y = false;
        for (let k = 0; k < n; k++) {
          const s = this.#scratch2.buf[k]!;
          const lo = this.sptLo[s]!;
          if (lo & SPTE_A) {
            y = true;
            this.sptLo[s] = (lo & ~SPTE_A) >>> 0;
          }
        }
        if (y) {
          this.cov[Cov.AGE_YOUNG]!++;
          young.push(g - gfn);
        }
      }
    }
    return young;
  }

  /**
   * An access at canonical `gva` with error-code bits `pfec`: first the hit path, a
   * shadow walk of typed-array loads (what the CPU does with KVM's sptes; nothing
   * allocates), then the fault path.
   */
  translate(gva: number, pfec: number): Tr {
    this.servedBy = -1;
    let root = this.root;
    if (root < 0 || this.isObsolete(root)) {
      this.ensureRoot();
      root = this.root;
    }
    if (root >= 0) {
      const vpn = Math.floor(gva / 4096);
      const sptLo = this.sptLo, sptHi = this.sptHi;
      let sp = root;
      let s = sp * SPTES + (Math.floor(vpn / 134217728) & 511);
      let lo = sptLo[s]!;
      if (lo & SPTE_MMU_PRESENT) {
        sp = sptePfn(lo, sptHi[s]!);
        s = sp * SPTES + (Math.floor(vpn / 262144) & 511);
        lo = sptLo[s]!;
        if (lo & SPTE_MMU_PRESENT) {
          sp = sptePfn(lo, sptHi[s]!);
          s = sp * SPTES + (Math.floor(vpn / 512) & 511);
          lo = sptLo[s]!;
          if (lo & SPTE_MMU_PRESENT) {
            sp = sptePfn(lo, sptHi[s]!);
            s = sp * SPTES + (vpn & 511);
            lo = sptLo[s]!;
            const hi = sptHi[s]!;
            if (lo & SPTE_MMU_PRESENT) {
              if (!this.#spteFault(lo, hi, pfec)) {
                // The CPU sets A (and D on writes) in the spte it used.
                sptLo[s] = (lo | SPTE_A | ((pfec & PFERR_WRITE) !== 0 ? SPTE_D : 0)) >>> 0;
                this.hva = sptePfn(lo, hi) * 4096 + (gva - vpn * 4096);
                this.servedBy = this.sptOp[s]!;
                this.cov[Cov.ACCESS_HIT]!++;
                this.lastMmio = null;
                return Tr.Memory;
              }
            } else if (
              (hi & MMIO_MARK_HI) !== 0 && (lo & SPTE_P) !== 0 && (pfec & PFERR_FETCH) === 0
            ) {
              const acc = ((lo & SPTE_W) !== 0 ? ACC_WRITE : 0) |
                ((lo & SPTE_U) !== 0 ? ACC_USER : 0) |
                ACC_EXEC;
              if (this.checkMmioSpte(lo, hi) && !this.walker.permissionFault(acc, pfec, this.ac)) {
                // (The mmio-spte-write-no-dirty correction walks the guest tables of a
                // write served here, setting their A/D bits as the CPU would.)
                if (this.fixMmioDirty && (pfec & PFERR_WRITE) !== 0) {
                  if (this.walker.walk(this.cr3, gva, pfec, this.ac)) {
                    this.#updateAccessedDirty(true);
                  }
                }
                this.gpa = mmioSpteGfn(lo, hi) * 4096 + (gva - vpn * 4096);
                this.servedBy = this.sptOp[s]!;
                this.lastMmio = { gva, pfec };
                return Tr.Mmio;
              }
            }
          }
        }
      }
    }
    return this.pageFault(gva, pfec);
  }

  /** Whether the CPU faults on a present leaf spte (host CR0.WP=1; guest SMEP/SMAP). */
  #spteFault(lo: number, hi: number, pfec: number): boolean {
    const user = (pfec & PFERR_USER) !== 0;
    if (user && (lo & SPTE_U) === 0) return true;
    if ((pfec & PFERR_WRITE) !== 0 && (lo & SPTE_W) === 0) return true;
    if ((pfec & PFERR_FETCH) !== 0) {
      if ((hi & SPTE_NX_HI) !== 0) return true;
      if (!user && this.smep && (lo & SPTE_U) !== 0) return true;
    } else if (!user && this.smap && !this.ac && (lo & SPTE_U) !== 0) return true;
    return false;
  }
}

/** Whether page `p` is in one of `runs` (sorted, disjoint). */
function inRuns(runs: PageRuns, p: number): boolean {
  for (const [first, last] of runs) if (p >= first && p <= last) return true;
  return false;
}

/** Sorted distinct pages and disjoint sorted runs as one canonical set of runs. */
function withRuns(pages: readonly number[], runs: PageRuns): PageRuns {
  const all: [number, number][] = [
    ...pages.map((p): [number, number] => [p, p]),
    ...runs.map(
      ([a, b]): [number, number] => [a, b],
    ),
  ].sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const [a, b] of all) {
    const tail = out[out.length - 1];
    if (tail !== undefined && a <= tail[1] + 1) tail[1] = Math.max(tail[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** `runs` without the pages [first, end). */
function withoutRange(runs: PageRuns, first: number, end: number): PageRuns {
  const out: [number, number][] = [];
  for (const [a, b] of runs) {
    if (b < first || a >= end) out.push([a, b]);
    else {
      if (a < first) out.push([a, first - 1]);
      if (b >= end) out.push([end, b]);
    }
  }
  return out;
}
