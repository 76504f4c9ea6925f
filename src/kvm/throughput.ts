/**
 * @module
 * Measures the kvm backend's throughput in ops/s on batched guest accesses (reads and
 * writes through the trace's page tables, and direct-map reads), one `runBatch` per
 * batch size. A measurement script, not a test: it asserts nothing about time.
 *
 * Run: `deno run --allow-read --allow-ffi src/kvm/throughput.ts`
 */
import { kvmPvmConfig } from "../trace/config.ts";
import type { Op } from "../trace/types.ts";
import { KvmBackend } from "./backend.ts";
import { kvmUnavailable } from "./vm.ts";

const USAGE = `Usage: deno task kvm-throughput [--help]

Measures the kvm backend's ops/s on /dev/kvm: batched guest accesses (one
runBatch per batch size), one op at a time, and whole traces on fresh and on
reused VMs. Prints figures; asserts nothing about time. Takes no other flags.

  --help, -h   print this help`;

/**
 * The command line's verdict before any work: 0 after printing the usage (`--help`,
 * `-h`), 2 after a one-line message for any other argument, null to go on.
 */
function argsVerdict(args: readonly string[]): number | null {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(USAGE);
    return 0;
  }
  if (args.length > 0) {
    console.error(
      `Cannot parse arguments of deno task kvm-throughput: unknown argument ${
        JSON.stringify(args[0])
      } (see --help)`,
    );
    return 2;
  }
  return null;
}

/** A 4-level hierarchy mapping gva [0, 2 MiB) onto gpa [0x200000, 0x400000) of slot 0. */
function setupOps(): Op[] {
  const ops: Op[] = [
    { op: "slot", id: 0, gpa: 0n, pages: 1024, hva: 0x1_0000_0000n, flags: [] },
    { op: "write", gpa: 0x1000n, size: 8, value: 0x2007n },
    { op: "write", gpa: 0x2000n, size: 8, value: 0x3007n },
    { op: "write", gpa: 0x3000n, size: 8, value: 0x4007n },
  ];
  for (let i = 0n; i < 512n; i++) {
    ops.push({
      op: "write",
      gpa: 0x4000n + 8n * i,
      size: 8,
      value: (0x200000n + 4096n * i) | 0x67n,
    });
  }
  ops.push({ op: "cr3", gpa: 0x1000n });
  return ops;
}

/** `n` guest ops: a mix of reads and writes through the page tables and direct-map reads. */
function workload(n: number, seed: number): Op[] {
  const ops: Op[] = [];
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const gva = BigInt((x >>> 11) % 512) * 4096n + BigInt(x & 0xff8);
    const k = x % 3;
    if (k === 0) ops.push({ op: "access", gva, kind: "read", user: false, size: 8 });
    else if (k === 1) {
      ops.push({ op: "access", gva, kind: "write", user: false, size: 8, value: BigInt(i) });
    } else ops.push({ op: "read", gpa: 0x200000n + gva, size: 8 });
  }
  return ops;
}

if (import.meta.main) {
  const verdict = argsVerdict(Deno.args);
  if (verdict !== null) Deno.exit(verdict);
  const why = kvmUnavailable();
  if (why !== null) {
    console.log(`skipped: ${why}`);
  } else {
    const b = new KvmBackend(kvmPvmConfig());
    try {
      b.runBatch(setupOps());
      for (const size of [1, 16, 256, 4000]) {
        const total = size === 1 ? 20_000 : 200_000;
        const batches = Math.ceil(total / size);
        const ops = workload(size, size);
        b.runBatch(ops); // warm up: shadow pages built
        const t0 = performance.now();
        for (let i = 0; i < batches; i++) b.runBatch(ops);
        const dt = (performance.now() - t0) / 1000;
        const n = batches * size;
        console.log(
          `batch ${String(size).padStart(4)}: ${n} ops in ${dt.toFixed(2)} s = ${
            Math.round(n / dt)
          } ops/s`,
        );
      }
      const step = workload(5000, 7);
      const t0 = performance.now();
      for (const op of step) b.step(op);
      const dt = (performance.now() - t0) / 1000;
      console.log(
        `step():     ${step.length} ops in ${dt.toFixed(2)} s = ${
          Math.round(step.length / dt)
        } ops/s`,
      );
    } finally {
      b.close();
    }
    traces();
  }
}

/**
 * Traces as campaigns run them: a backend per trace, every op through `step`; a small
 * hierarchy (16 pages), then `TRACE_OPS` guest ops. Fresh VMs and reused VMs in
 * alternating rounds, so that both see the same load on the machine.
 */
function traces(): void {
  const TRACES = 300, TRACE_OPS = 40, ROUNDS = 3;
  const setup: Op[] = [
    { op: "slot", id: 0, gpa: 0n, pages: 1024, hva: 0x1_0000_0000n, flags: [] },
    { op: "write", gpa: 0x1000n, size: 8, value: 0x2007n },
    { op: "write", gpa: 0x2000n, size: 8, value: 0x3007n },
    { op: "write", gpa: 0x3000n, size: 8, value: 0x4007n },
  ];
  for (let i = 0n; i < 16n; i++) {
    setup.push({
      op: "write",
      gpa: 0x4000n + 8n * i,
      size: 8,
      value: (0x200000n + 4096n * i) | 0x67n,
    });
  }
  setup.push({ op: "cr3", gpa: 0x1000n });
  const trace = [
    ...setup,
    ...workload(TRACE_OPS, 11).map((op) =>
      op.op === "access"
        ? { ...op, gva: op.gva % 0x10000n }
        : op.op === "read"
        ? { ...op, gpa: 0x200000n + (op.gpa % 0x10000n) }
        : op
    ),
  ];
  const total = { fresh: 0, reuse: 0 };
  for (let r = 0; r < ROUNDS; r++) {
    for (const mode of ["fresh", "reuse"] as const) {
      const t0 = performance.now();
      for (let t = 0; t < TRACES; t++) {
        const b = new KvmBackend(kvmPvmConfig(), { reuse: mode === "reuse" });
        for (const op of trace) b.step(op);
        b.close();
      }
      total[mode] += (performance.now() - t0) / 1000;
    }
  }
  for (const mode of ["fresh", "reuse"] as const) {
    const n = ROUNDS * TRACES;
    console.log(
      `traces (${mode} VM): ${n} traces of ${trace.length} ops in ${total[mode].toFixed(2)} s = ${
        Math.round(n / total[mode])
      } traces/s, ${Math.round((n * trace.length) / total[mode])} ops/s`,
    );
  }
}
