/**
 * @module
 * The kvm section of `deno task bench`: campaign traces (the kvm generator mode, the
 * kvm_pvm config) run through `diffTrace` against the reference, as `fuzz --backend kvm`
 * runs them, in three modes measured in turn on each chunk of 20 traces of one run, so
 * that all see the same load on the machine:
 *
 * - fresh VM, op by op: a new VM per trace, `supports` and `step` per op (one KVM_RUN
 *   per guest op);
 * - reused VM, op by op: an idle VM reset for each trace (src/kvm/README.md "VM reuse");
 * - reused VM, batched: the default, `stepMany` (whole traces in few KVM_RUNs);
 * - the same with the ioctls the kvm-speed work removed put back (`kvmOptions`):
 *   KVM_GET_REGS after each MMIO exit instead of KVM_CAP_SYNC_REGS, KVM_GET_MSRS before
 *   each trace's first write of an MSR instead of once per VM.
 *
 * Reports ops/s per mode, the ratios, KVM_RUNs and memslot ioctls per trace, and where
 * the default mode's time goes (each ioctl kind's share, timed by `kvmProfile`, the
 * reference's judging measured alone on the same traces, and the rest: the backend's
 * and diffTrace's own JavaScript). No timing is asserted anywhere.
 */
import type { Backend, BackendFactory } from "../src/backend.ts";
import { diffTrace } from "../src/diff.ts";
import {
  closeIdleVms,
  KvmBackend,
  kvmCounters,
  kvmFactory,
  kvmOptions,
  kvmProfile,
} from "../src/kvm/mod.ts";
import { ReferenceBackend } from "../src/reference/mod.ts";
import { kvmPvmConfig } from "../src/trace/config.ts";
import type { Config, Trace } from "../src/trace/types.ts";
import { generateRun } from "../fuzz/gen/generate.ts";

/** One mode's figures. */
export interface KvmModeResult {
  mode: string;
  opsPerSec: number;
  /** KVM_RUN ioctls per trace. */
  runsPerTrace: number;
  /** KVM_SET_USER_MEMORY_REGION calls per trace (the VM's own and the reset's included). */
  memslotsPerTrace: number;
}

/** One part of the default mode's time per trace. */
export interface KvmTimePart {
  /** An ioctl kind (`KVM_RUN`, `KVM_SET_USER_MEMORY_REGION`, ...), `madvise`, `reference`, `rest`. */
  part: string;
  /** Calls per trace (ioctls only). */
  calls?: number;
  /** Microseconds per trace. */
  us: number;
  /** Share of the mode's time, in percent. */
  percent: number;
}

/** The kvm section's result. */
export interface KvmBenchResult {
  traces: number;
  ops: number;
  rounds: number;
  modes: KvmModeResult[];
  /**
   * Ops/s ratios: reused/fresh and batched/fresh, batched/reused, and batched against
   * batched with the removed ioctls put back.
   */
  ratios: {
    reusedVsFresh: number;
    batchedVsFresh: number;
    batchedVsReused: number;
    batchedVsOldIoctls: number;
  };
  /**
   * The same ratios as medians over the chunks (each mode's time on the same 20 traces,
   * measured one after the other): robust to a burst of load on a shared machine, which
   * makes a memslot ioctl take 20 us or 13 ms here.
   */
  medianRatios: KvmBenchResult["ratios"];
  /** Where the default mode's (reused VM, batched) time goes, per trace. */
  breakdown: KvmTimePart[];
}

/** Traces per mode in turn. */
const CHUNK = 20;

/** A factory whose backends hide `stepMany`, so that diffTrace steps op by op. */
function opByOp(reuse: boolean): BackendFactory {
  return {
    name: "kvm",
    available: () => kvmFactory.available(),
    create(config: Config): Backend {
      const b = new KvmBackend(config, { reuse });
      return {
        name: "kvm",
        supports: (op) => b.supports(op),
        step: (op) => b.step(op),
        close: () => b.close(),
      };
    },
  };
}

/** Why the kvm section cannot run here, or null. */
export function kvmBenchUnavailable(): string | null {
  return kvmFactory.available();
}

/** Runs `count` campaign traces (seed 1) `rounds` times in each mode. */
export function kvmBench(count: number, rounds: number): KvmBenchResult {
  const traces: Trace[] = [];
  for (let r = 0; r < count; r++) {
    traces.push(generateRun(1, r, { config: { fixed: kvmPvmConfig() }, kvm: true }).trace);
  }
  const ops = traces.reduce((n, t) => n + t.ops.length, 0);
  // The last mode puts back the ioctls KVM_CAP_SYNC_REGS and the per-VM MSR values save.
  const modes: [string, BackendFactory, boolean][] = [
    ["fresh VM, op by op", opByOp(false), false],
    ["reused VM, op by op", opByOp(true), false],
    ["reused VM, batched (stepMany)", kvmFactory, false],
    ["batched, GET_REGS/GET_MSRS back", kvmFactory, true],
  ];
  const seconds = modes.map(() => 0);
  /** Each mode's seconds on each chunk, for the median ratios. */
  const chunks: number[][] = modes.map(() => []);
  const runs = modes.map(() => 0), memslots = modes.map(() => 0);
  const setOld = (old: boolean) => {
    kvmOptions.noSyncRegs = old;
    kvmOptions.noMsrCache = old;
  };
  // The default mode's ioctls, timed (kvmProfile) in its chunks only.
  const profile = new Map<string, { calls: number; ms: number }>();
  let referenceMs = 0;
  // A warm-up pass per mode (shadow pages, JIT), then the modes in turn on each chunk
  // of CHUNK traces, so that a change of load on the machine hits all of them alike.
  try {
    for (const [, f, old] of modes) {
      setOld(old);
      for (const t of traces.slice(0, CHUNK)) diffTrace(t, f);
    }
    for (let round = 0; round < rounds; round++) {
      for (let c = 0; c < traces.length; c += CHUNK) {
        const chunk = traces.slice(c, c + CHUNK);
        modes.forEach(([, factory, old], m) => {
          setOld(old);
          const timed = m === 2;
          if (timed) {
            kvmProfile.calls.clear();
            kvmProfile.enabled = true;
          }
          const r0 = kvmCounters.runs, s0 = kvmCounters.memslots;
          const t0 = performance.now();
          for (const t of chunk) diffTrace(t, factory);
          const dt = (performance.now() - t0) / 1000;
          seconds[m]! += dt;
          chunks[m]!.push(dt);
          runs[m]! += kvmCounters.runs - r0;
          memslots[m]! += kvmCounters.memslots - s0;
          if (timed) {
            kvmProfile.enabled = false;
            for (const [k, v] of kvmProfile.calls) {
              const e = profile.get(k) ?? { calls: 0, ms: 0 };
              e.calls += v.calls;
              e.ms += v.ms;
              profile.set(k, e);
            }
            // The reference's share: its judging alone (canonical outcomes) on the same
            // chunk, right after, under the same load.
            const r0 = performance.now();
            for (const t of chunk) {
              const reference = new ReferenceBackend(t.config, { strict: false });
              for (const op of t.ops) reference.judge(op);
            }
            referenceMs += performance.now() - r0;
          }
        });
      }
    }
  } finally {
    setOld(false);
    kvmProfile.enabled = false;
    kvmProfile.calls.clear();
    closeIdleVms();
  }

  const n = count * rounds;
  const results = modes.map(([mode], m): KvmModeResult => ({
    mode,
    opsPerSec: Math.round((ops * rounds) / seconds[m]!),
    runsPerTrace: Math.round((runs[m]! / n) * 10) / 10,
    memslotsPerTrace: Math.round((memslots[m]! / n) * 10) / 10,
  }));
  const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
  const [fresh, reused, batched, oldIoctls] = results.map((r) => r.opsPerSec) as [
    number,
    number,
    number,
    number,
  ];
  // Speed-up of mode b over mode a: the median over chunks of a's time over b's.
  const medianRatio = (a: number, b: number) => {
    const q = chunks[a]!.map((t, k) => t / chunks[b]![k]!).sort((x, y) => x - y);
    return Math.round((q[Math.floor(q.length / 2)] ?? 0) * 100) / 100;
  };
  const totalMs = seconds[2]! * 1000;
  const part = (name: string, ms: number, calls?: number): KvmTimePart => ({
    part: name,
    ...(calls === undefined ? {} : { calls: Math.round((calls / n) * 100) / 100 }),
    us: Math.round((ms * 1000) / n),
    percent: Math.round((1000 * ms) / totalMs) / 10,
  });
  const ioctls = [...profile].sort((a, b) => b[1].ms - a[1].ms);
  const ioctlMs = ioctls.reduce((t, [, v]) => t + v.ms, 0);
  const breakdown = [
    ...ioctls.map(([k, v]) => part(k, v.ms, v.calls)),
    part("reference", referenceMs),
    part("rest", Math.max(0, totalMs - ioctlMs - referenceMs)),
  ];
  return {
    traces: count,
    ops,
    rounds,
    modes: results,
    medianRatios: {
      reusedVsFresh: medianRatio(0, 1),
      batchedVsFresh: medianRatio(0, 2),
      batchedVsReused: medianRatio(1, 2),
      batchedVsOldIoctls: medianRatio(3, 2),
    },
    ratios: {
      reusedVsFresh: ratio(reused, fresh),
      batchedVsFresh: ratio(batched, fresh),
      batchedVsReused: ratio(batched, reused),
      batchedVsOldIoctls: ratio(batched, oldIoctls),
    },
    breakdown,
  };
}

/** The section as text lines. */
export function formatKvmBench(r: KvmBenchResult): string[] {
  return [
    `kvm (diffTrace of ${r.traces} campaign traces, ${r.ops} ops, ${r.rounds} rounds, the ` +
    "modes in turn on each 20 traces):",
    ...r.modes.map((m) =>
      `  ${m.mode.padEnd(30)} ${String(m.opsPerSec).padStart(7)} ops/s  ` +
      `${m.runsPerTrace} KVM_RUNs, ${m.memslotsPerTrace} memslot ioctls per trace`
    ),
    `  ratios: reused/fresh ${r.ratios.reusedVsFresh}x, batched/fresh ${r.ratios.batchedVsFresh}x, ` +
    `batched/reused ${r.ratios.batchedVsReused}x, batched/GET_REGS-GET_MSRS ` +
    `${r.ratios.batchedVsOldIoctls}x`,
    `  median over chunks: reused/fresh ${r.medianRatios.reusedVsFresh}x, batched/fresh ` +
    `${r.medianRatios.batchedVsFresh}x, batched/reused ${r.medianRatios.batchedVsReused}x, ` +
    `batched/GET_REGS-GET_MSRS ${r.medianRatios.batchedVsOldIoctls}x`,
    "  where the batched mode's time goes, per trace:",
    ...r.breakdown.map((p) =>
      `    ${p.part.padEnd(28)} ${String(p.us).padStart(6)} us ${
        p.percent.toFixed(1).padStart(5)
      }%` + (p.calls === undefined ? "" : `  ${p.calls} calls`)
    ),
  ];
}
