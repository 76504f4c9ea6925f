/**
 * @module
 * Deterministic benchmark workloads: op arrays that every backend runs unchanged, so
 * their ops/s can be compared as ratios within one run.
 */
import type { Op } from "../src/trace/types.ts";

/** A small deterministic PRNG (xorshift32), so workloads are the same on every machine. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** Slot 0 over gpa 0-16 MiB; PML4 0x1000, PDPT 0x2000, PD 0x3000, PTs from 0x4000. */
function guest(pts: number): Op[] {
  const ops: Op[] = [
    { op: "slot", id: 0, gpa: 0n, pages: 4096, hva: 0x100000000n, flags: [] },
    { op: "write", gpa: 0x1000n, size: 8, value: 0x2007n },
    { op: "write", gpa: 0x2000n, size: 8, value: 0x3007n },
  ];
  for (let pd = 0; pd < pts; pd++) {
    const pt = 0x4000 + pd * 0x1000;
    ops.push({ op: "write", gpa: 0x3000n + BigInt(pd * 8), size: 8, value: BigInt(pt | 7) });
    for (let i = 0; i < 512; i++) {
      const frame = 0x100000 + (pd * 512 + i) * 0x1000;
      ops.push({ op: "write", gpa: BigInt(pt + i * 8), size: 8, value: BigInt(frame | 7) });
    }
  }
  ops.push({ op: "cr3", gpa: 0x1000n });
  return ops;
}

function gvaOf(page: number, offset: number): bigint {
  return BigInt(page * 0x1000 + offset);
}

/** Loads and stores over 1024 mapped pages: after warm-up every access hits an spte. */
export function steadyAccess(n: number): Op[] {
  const r = rng(1);
  const ops = guest(2);
  for (let i = 0; i < n; i++) {
    const gva = gvaOf(r() % 1024, (r() % 512) * 8);
    ops.push(
      r() % 10 === 0
        ? { op: "access", gva, kind: "write", user: false, size: 8, value: BigInt(i) }
        : { op: "access", gva, kind: "read", user: false, size: 8 },
    );
  }
  return ops;
}

/** PTE rewrites, invalidations and accesses: the unsync/sync and zap paths. */
export function churn(n: number): Op[] {
  const r = rng(2);
  const ops = guest(2);
  for (let i = 0; ops.length < n; i++) {
    const page = r() % 1024;
    const pte = 0x4000 + page * 8;
    const frame = 0x100000 + (r() % 1024) * 0x1000;
    ops.push({ op: "write", gpa: BigInt(pte), size: 8, value: BigInt(frame | 7) });
    if (r() % 4 !== 0) ops.push({ op: "invlpg", gva: gvaOf(page, 0) });
    if (r() % 64 === 0) ops.push({ op: "cr3", gpa: 0x1000n });
    for (let k = 0; k < 4; k++) {
      ops.push({ op: "access", gva: gvaOf(r() % 1024, 0), kind: "read", user: false, size: 8 });
    }
  }
  return ops;
}

/** Create a slot, use it through the page tables and directly, delete it; repeat. */
export function memslotChurn(n: number): Op[] {
  const r = rng(3);
  const ops = guest(1);
  // PT entries 256..511 of PT 0 map gpa 0x8000000.. (slot 1 when it exists).
  for (let i = 256; i < 512; i++) {
    const frame = 0x8000000 + (i - 256) * 0x1000;
    ops.push({ op: "write", gpa: BigInt(0x4000 + i * 8), size: 8, value: BigInt(frame | 7) });
  }
  ops.push({ op: "cr3", gpa: 0x1000n });
  let present = false;
  for (let i = 0; ops.length < n; i++) {
    if (r() % 8 === 0) {
      ops.push({
        op: "slot",
        id: 1,
        gpa: 0x8000000n,
        pages: present ? 0 : 256,
        hva: 0x200000000n,
        flags: r() % 2 === 0 ? ["log"] : [],
      });
      present = !present;
      continue;
    }
    const page = 256 + (r() % 256);
    ops.push({ op: "access", gva: gvaOf(page, 0), kind: "read", user: false, size: 8 });
    if (r() % 4 === 0) {
      ops.push({ op: "write", gpa: BigInt(0x8000000 + (page - 256) * 0x1000), size: 8, value: 1n });
    }
    if (r() % 16 === 0) ops.push({ op: "dirtylog", id: 1 });
  }
  return ops;
}

/** Eventsel and counter writes, counting, RDPMC and global control. */
export function pmu(n: number): Op[] {
  const r = rng(4);
  const ops: Op[] = [
    { op: "wrmsr", msr: 0x38f, value: 0x70000000fn },
    { op: "wrmsr", msr: 0x38d, value: 0x333n },
  ];
  for (let i = 0; ops.length < n; i++) {
    const c = r() % 4;
    switch (r() % 6) {
      case 0:
        ops.push({ op: "wrmsr", msr: 0x186 + c, value: 0x5300c0n | BigInt(r() % 2) << 20n });
        break;
      case 1:
        ops.push({ op: "wrmsr", msr: 0x4c1 + c, value: BigInt(r() % 0x10000) });
        break;
      case 2:
        ops.push({ op: "rdpmc", ecx: c, user: false });
        break;
      case 3:
        ops.push({ op: "rdmsr", msr: 0x38e });
        break;
      default:
        ops.push({ op: "events", event: 0xc0, umask: 0, count: r() % 1000, user: r() % 2 === 0 });
    }
  }
  return ops;
}
