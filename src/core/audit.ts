/**
 * @module
 * The core MMU's invariants (docs/kvm-facts.md B.12, plus the core's own), checked over the
 * whole structure like KVM's removed MMU auditor. Each broken invariant is one line.
 */
import { NR_AS } from "./memslots.ts";
import { type ShadowMmu, spHashOf } from "./mmu.ts";
import { formatRole, ROLE_DIRECT, roleLevel } from "./role.ts";
import {
  isMmioSpte,
  mmioSpteGen,
  mmioSpteGfn,
  SPTE_MMU_PRESENT,
  SPTE_MMU_WRITABLE,
  SPTE_W,
  sptePfn,
} from "./spte.ts";

const SPTES = 512;
const MAX_MESSAGES = 20;

/** Checks every invariant; returns one message per violation (at most 20). */
export function auditMmu(mmu: ShadowMmu): string[] {
  const msgs: string[] = [];
  const fail = (m: string) => {
    if (msgs.length < MAX_MESSAGES) msgs.push(m);
  };
  // Every in-use SP: on the active list (state 1) or a zapped root (state 2).
  const live: number[] = [];
  for (let sp = 0; sp < mmu.cap; sp++) if (mmu.spState[sp] !== 0) live.push(sp);
  let listed = 0;
  for (let sp = mmu.activeHead; sp >= 0; sp = mmu.spNext[sp]!) {
    listed++;
    if (mmu.spState[sp] !== 1) fail(`sp ${sp} is on active_mmu_pages but not active`);
    if (listed > live.length) {
      fail("active_mmu_pages has a cycle");
      break;
    }
  }
  if (live.length !== mmu.nUsed) {
    fail(`n_used_mmu_pages ${mmu.nUsed} but ${live.length} pages live`);
  }
  // Hash membership.
  for (const sp of live) {
    let found = false;
    for (let x = mmu.hash[hashSlot(mmu, sp)]!; x >= 0; x = mmu.spHashNext[x]!) {
      if (x === sp) found = true;
    }
    if (!found) fail(`sp ${sp} (gfn ${mmu.spGfn[sp]}) missing from mmu_page_hash`);
  }
  // rmap <-> spte bijection, parent ptes, writable vs write-tracked, MMIO generation.
  const rmapSeen = new Map<string, number>();
  let leafCount = 0;
  const genNow = mmu.slots.gen[0] & mmu.genMask;
  for (const sp of live) {
    const level = roleLevel(mmu.spRole[sp]!);
    for (let i = 0; i < SPTES; i++) {
      const s = sp * SPTES + i;
      const lo = mmu.sptLo[s]!, hi = mmu.sptHi[s]!;
      if (lo === 0 && hi === 0) continue;
      if (isMmioSpte(lo, hi)) {
        if (level !== 1) fail(`mmio spte ${s} at level ${level}`);
        const gfn = mmioSpteGfn(lo, hi);
        if (
          mmioSpteGen(lo, hi, mmu.genLowBits) === genNow && !mmu.slots.inProgress[0] &&
          mmu.slots.find(gfn) !== null
        ) {
          fail(
            `mmio spte ${s} for gfn ${gfn} carries the current generation but a memslot holds it`,
          );
        }
        continue;
      }
      if ((lo & SPTE_MMU_PRESENT) === 0) {
        fail(`spte ${s} is neither present nor MMIO: ${hi.toString(16)}:${lo.toString(16)}`);
        continue;
      }
      if (level > 1) {
        const child = sptePfn(lo, hi);
        if (mmu.spState[child] === 0) fail(`spte ${s} links freed sp ${child}`);
        else if (!listHas(mmu, mmu.spParents[child]!, s)) {
          fail(`spte ${s} missing from parent_ptes of sp ${child}`);
        }
        continue;
      }
      leafCount++;
      const key = `${mmu.sptSlot[s]}:${mmu.sptGfn[s]}`;
      rmapSeen.set(key, (rmapSeen.get(key) ?? 0) + 1);
      const slot = mmu.slots.bySerial.get(mmu.sptSlot[s]!);
      if (slot === undefined || !listHas(mmu, slot.rmap.get(mmu.sptGfn[s]!) ?? 0, s)) {
        fail(`leaf spte ${s} (gfn ${mmu.sptGfn[s]}) missing from its rmap`);
        continue;
      }
      const list = mmu.slots.lists[slot.as]!;
      if (!list.includes(slot) || slot.invalid) {
        fail(`leaf spte ${s} maps gfn ${mmu.sptGfn[s]} of a deleted memslot ${slot.id}`);
      }
      const page = slot.hva / 4096 + (mmu.sptGfn[s]! - slot.baseGfn);
      if ((lo & SPTE_W) !== 0) {
        if ((lo & SPTE_MMU_WRITABLE) === 0) fail(`spte ${s} is writable but not MMU-writable`);
        if ((mmu.writeTrack.get(page) ?? 0) > 0) {
          fail(`writable spte ${s} maps write-tracked host page ${page}`);
        }
        if (syncedLevel1(mmu, page)) {
          fail(`writable spte ${s} maps host page ${page} shadowed by a synced sp`);
        }
      }
    }
  }
  let rmapCount = 0;
  for (const [serial, slot] of mmu.slots.bySerial) {
    for (const [gfn, head] of slot.rmap) {
      const n = mmu.pl.length(head);
      rmapCount += n;
      if ((rmapSeen.get(`${serial}:${gfn}`) ?? 0) !== n) {
        fail(`rmap of gfn ${gfn} holds ${n} sptes`);
      }
    }
  }
  if (rmapCount !== leafCount) fail(`rmaps hold ${rmapCount} sptes, shadow pages ${leafCount}`);
  // Unsync: only level-1 indirect pages; each unsync child bit set in every parent.
  for (const sp of live) {
    const role = mmu.spRole[sp]!;
    let bits = 0;
    for (let w = 0; w < 16; w++) bits += popcount(mmu.spUnsyncBitmap[sp * 16 + w]!);
    if (bits !== mmu.spUnsyncChildren[sp]) {
      fail(`sp ${sp} unsync_children ${mmu.spUnsyncChildren[sp]} but ${bits} bitmap bits`);
    }
    if (!mmu.spUnsync[sp]) continue;
    if (roleLevel(role) !== 1 || (role & ROLE_DIRECT) !== 0) {
      fail(`sp ${sp} (${formatRole(role)}) is unsync`);
    }
    const n = mmu.pl.length(mmu.spParents[sp]!);
    const buf = { buf: new Int32Array(Math.max(1, n)) };
    mmu.pl.collect(mmu.spParents[sp]!, buf);
    for (let k = 0; k < n; k++) {
      const ps = buf.buf[k]!;
      const p = Math.floor(ps / SPTES), i = ps % SPTES;
      if (((mmu.spUnsyncBitmap[p * 16 + (i >>> 5)]! >>> (i & 31)) & 1) === 0) {
        fail(`unsync sp ${sp} has no bit in parent sp ${p} index ${i}`);
      }
    }
  }
  // Nothing obsolete reachable from the current root.
  if (mmu.root >= 0) {
    if (mmu.isObsolete(mmu.root)) fail(`current root sp ${mmu.root} is obsolete`);
    else {
      const stack = [mmu.root];
      const seen = new Set<number>();
      while (stack.length > 0) {
        const sp = stack.pop()!;
        if (seen.has(sp)) continue;
        seen.add(sp);
        if (mmu.isObsolete(sp)) fail(`obsolete sp ${sp} reachable from the root`);
        if (roleLevel(mmu.spRole[sp]!) === 1) continue;
        for (let i = 0; i < SPTES; i++) {
          const lo = mmu.sptLo[sp * SPTES + i]!;
          if (lo & SPTE_MMU_PRESENT) stack.push(sptePfn(lo, mmu.sptHi[sp * SPTES + i]!));
        }
      }
    }
  }
  if (mmu.mmuInvalidateInProgress !== 0) fail("mmu_invalidate_in_progress is not 0 between ops");
  for (let as = 0; as < NR_AS; as++) {
    if (mmu.slots.inProgress[as]) fail(`memslot update of address space ${as} still in progress`);
  }
  return msgs;
}

function hashSlot(mmu: ShadowMmu, sp: number): number {
  return spHashOf(mmu.spGfn[sp]!);
}

function listHas(mmu: ShadowMmu, head: number, s: number): boolean {
  const n = mmu.pl.length(head);
  const buf = { buf: new Int32Array(Math.max(1, n)) };
  mmu.pl.collect(head, buf);
  for (let k = 0; k < n; k++) if (buf.buf[k] === s) return true;
  return false;
}

/** Whether a synced (not unsync) valid level-1 indirect SP shadows host page `page`. */
function syncedLevel1(mmu: ShadowMmu, page: number): boolean {
  for (let sp = mmu.activeHead; sp >= 0; sp = mmu.spNext[sp]!) {
    if (mmu.spTrackHva[sp] !== page || mmu.isObsolete(sp)) continue;
    if ((mmu.spRole[sp]! & ROLE_DIRECT) === 0 && !mmu.spUnsync[sp]) return true;
  }
  return false;
}

function popcount(x: number): number {
  x = x - ((x >>> 1) & 0x55555555);
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}
