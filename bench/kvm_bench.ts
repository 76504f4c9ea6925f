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
 * - reused VM, batched: the default, `stepMany` (whole traces in few KVM_RUNs).
 *
 * Reports ops/s per mode, the ratios, and KVM_RUNs and memslot ioctls per trace. No
 * timing is asserted anywhere.
 */
import type { Backend, BackendFactory } from "../src/backend.ts";
import { diffTrace } from "../src/diff.ts";
import { closeIdleVms, KvmBackend, kvmCounters, kvmFactory } from "../src/kvm/mod.ts";
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

/** The kvm section's result. */
export interface KvmBenchResult {
  traces: number;
  ops: number;
  rounds: number;
  modes: KvmModeResult[];
  /** Ops/s ratios: reused/fresh and batched/fresh, batched/reused. */
  ratios: { reusedVsFresh: number; batchedVsFresh: number; batchedVsReused: number };
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
  const modes: [string, BackendFactory][] = [
    ["fresh VM, op by op", opByOp(false)],
    ["reused VM, op by op", opByOp(true)],
    ["reused VM, batched (stepMany)", kvmFactory],
  ];
  const seconds = modes.map(() => 0);
  const runs = modes.map(() => 0), memslots = modes.map(() => 0);
  // A warm-up pass per mode (shadow pages, JIT), then the modes in turn on each chunk
  // of CHUNK traces, so that a change of load on the machine hits all of them alike.
  for (const [, f] of modes) for (const t of traces.slice(0, CHUNK)) diffTrace(t, f);
  for (let round = 0; round < rounds; round++) {
    for (let c = 0; c < traces.length; c += CHUNK) {
      const chunk = traces.slice(c, c + CHUNK);
      modes.forEach(([, factory], m) => {
        const r0 = kvmCounters.runs, s0 = kvmCounters.memslots;
        const t0 = performance.now();
        for (const t of chunk) diffTrace(t, factory);
        seconds[m]! += (performance.now() - t0) / 1000;
        runs[m]! += kvmCounters.runs - r0;
        memslots[m]! += kvmCounters.memslots - s0;
      });
    }
  }
  closeIdleVms();
  const n = count * rounds;
  const results = modes.map(([mode], m): KvmModeResult => ({
    mode,
    opsPerSec: Math.round((ops * rounds) / seconds[m]!),
    runsPerTrace: Math.round((runs[m]! / n) * 10) / 10,
    memslotsPerTrace: Math.round((memslots[m]! / n) * 10) / 10,
  }));
  const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
  const [fresh, reused, batched] = results.map((r) => r.opsPerSec) as [number, number, number];
  return {
    traces: count,
    ops,
    rounds,
    modes: results,
    ratios: {
      reusedVsFresh: ratio(reused, fresh),
      batchedVsFresh: ratio(batched, fresh),
      batchedVsReused: ratio(batched, reused),
    },
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
    `batched/reused ${r.ratios.batchedVsReused}x`,
  ];
}
