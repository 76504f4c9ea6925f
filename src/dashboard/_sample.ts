/**
 * @module
 * Synthetic findings, run records and self-test results for the dashboard's tests,
 * end-to-end test and benchmark. Not used by the server itself.
 */
import { AREAS, FINDING_FORMAT, RUN_FORMAT } from "../corpus/types.ts";
import type { Finding, FindingStatus, RunRecord } from "../corpus/types.ts";
import type { SelfTest } from "../corpus/store.ts";

const STATUSES: readonly FindingStatus[] = ["new", "confirmed", "fixed", "wontfix", "invalid"];

/** The id of the `n`th sample finding: `n` as 16 hex digits. */
export function sampleId(n: number): string {
  return n.toString(16).padStart(16, "0");
}

/**
 * A valid finding whose fields vary with `n` (area, status, hits, times, trace
 * length), with `overrides` applied last.
 */
export function sampleFinding(n: number, overrides: Partial<Finding> = {}): Finding {
  const area = AREAS[n % AREAS.length] ?? "mmu";
  const status = STATUSES[Math.floor(n / 3) % STATUSES.length] ?? "new";
  const first = Date.UTC(2026, 10, 1) + n * 60_000;
  const extra = n % 5;
  const minimizedOps: unknown[] = [
    { op: "slot", id: 0, gpa: "0x0", pages: 1024, hva: "0x100000000", flags: [] },
    { op: "write", gpa: "0x1000", size: 8, value: "0x2003" },
    { op: "write", gpa: "0x2000", size: 8, value: "0x3003" },
    { op: "cr3", gpa: "0x1000" },
  ];
  for (let i = 0; i < extra; i++) {
    minimizedOps.push({ op: "invlpg", gva: `0x${(i * 4096).toString(16)}` });
  }
  minimizedOps.push({ op: "access", gva: "0x400000", kind: "read", user: false, size: 8 });
  const fullOps = [
    ...minimizedOps.slice(0, -1),
    { op: "rdmsr", msr: "0x186" },
    { op: "age", gpa: "0x0", pages: 4 },
    minimizedOps[minimizedOps.length - 1],
  ];
  const config = {
    vendor: "amd",
    maxPhyAddr: 48,
    gbPages: false,
    pmu: { version: 0, gp: 0, fixed: 0 },
  };
  return {
    format: FINDING_FORMAT,
    id: sampleId(n),
    signature: `${area}/access: core=value, permitted={mmio} #${n}`,
    area,
    kind: "divergence",
    title: `Stale translation after memslot delete (sample ${n})`,
    status,
    firstSeen: new Date(first).toISOString(),
    lastSeen: new Date(first + (n % 7) * 3_600_000).toISOString(),
    hits: 1 + (n * 7919) % 97,
    seeds: [String(1000 + n)],
    trace: { format: "shadowfuzz.trace/1", config, ops: fullOps },
    minimized: { format: "shadowfuzz.trace/1", config, ops: minimizedOps },
    divergence: {
      opIndex: minimizedOps.length - 1,
      backend: "core",
      observed: { value: "0x2003" },
      permitted: [{ outcome: { mmio: { gpa: "0x400000", write: false } }, why: "current walk" }],
    },
    harness: "0123456789abcdef0123456789abcdef01234567",
    ...overrides,
  };
}

/** A valid run record `n` hours after a fixed start. */
export function sampleRun(n: number, overrides: Partial<RunRecord> = {}): RunRecord {
  return {
    format: RUN_FORMAT,
    time: new Date(Date.UTC(2026, 10, 1) + n * 3_600_000).toISOString(),
    seed: String(4242 + n),
    seconds: 60,
    runs: 1000 + n * 10,
    ops: 500_000 + n * 20_000,
    opsPerSec: 200_000 + ((n * 37_000) % 90_000),
    workers: 2,
    backend: "core",
    coverage: 40 + n * 3,
    findings: n % 2 === 0 ? [] : [{ id: sampleId(n), signature: `mmu/access #${n}`, new: true }],
    ...overrides,
  };
}

/** Valid self-test results with one bug not found. */
export function sampleSelfTest(): SelfTest {
  return {
    bugs: [
      { name: "mmio-gen-wrap", found: true, seconds: 0.8, minimizedOps: 5 },
      { name: "unsync-no-flush", found: true, seconds: 2.4, minimizedOps: 7 },
      { name: "filter-stale", found: false, seconds: null, minimizedOps: null },
    ],
    found: 2,
    total: 3,
    medianSeconds: 1.6,
    time: "2026-11-21T10:00:00.000Z",
  };
}

/**
 * A valid finding `n` whose full trace has `ops` ops (mostly `pmis`, the shortest op,
 * as in issue 13's 1.4 MB, 100,000-op finding) and, when `minimizedOps` is given, a
 * minimized trace of that many ops too (a minimization that gave up early).
 */
export function bigSampleFinding(n: number, ops: number, minimizedOps?: number): Finding {
  const f = sampleFinding(n, { title: `Huge trace (sample ${n})` });
  const trace = f.trace as { ops: unknown[] };
  const body = (count: number, head: readonly unknown[]) => {
    const out: unknown[] = [...head];
    for (let i = out.length; i < count - 1; i++) {
      out.push(
        i % 10 === 0 ? { op: "write", gpa: "0x1000", size: 8, value: "0x2003" } : {
          op: "pmis",
        },
      );
    }
    out.push({ op: "access", gva: "0x400000", kind: "read", user: false, size: 8 });
    return out;
  };
  trace.ops = body(ops, trace.ops.slice(0, 4));
  if (minimizedOps !== undefined) {
    const min = f.minimized as { ops: unknown[] };
    min.ops = body(minimizedOps, min.ops.slice(0, 4));
    f.divergence = { ...f.divergence, opIndex: min.ops.length - 1 };
  }
  return f;
}
