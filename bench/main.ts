/**
 * @module
 * `deno task bench [--json] [--quick]`: core vs reference ops/s on the same op arrays,
 * as ratios measured in one run (docs/design.md, quality bars), and the core's memory for a
 * 1 TiB guest-physical layout with 1M touched pages (measured in a child process),
 * and the fuzzer's worker scaling (`deno task fuzz --json` with 1 and 2 workers, and two
 * 1-worker processes at once as the control,
 * `bench/scaling.ts`; `--scaling-seconds N`, 0 skips it), and with /dev/kvm the kvm
 * backend on campaign traces: fresh VM vs reused VM vs batched (`bench/kvm_bench.ts`;
 * `--kvm-traces N`, 0 skips it). No timing is asserted anywhere: this prints figures.
 */
import type { BackendFactory } from "../src/backend.ts";
import { BACKENDS } from "../src/backends.ts";
import { defaultConfig } from "../src/trace/config.ts";
import type { Op } from "../src/trace/types.ts";
import { churn, memslotChurn, pmu, steadyAccess } from "./workloads.ts";
import { fuzzScaling, type Scaling } from "./scaling.ts";
import { taskArgsOrExit } from "./args.ts";
import { formatKvmBench, kvmBench, type KvmBenchResult, kvmBenchUnavailable } from "./kvm_bench.ts";

export const USAGE =
  `Usage: deno task bench [--json] [--quick] [--scaling-seconds N] [--kvm-traces N] [--help]

Measures the core against the reference (ops/s on four workloads, as ratios from
one run), the core's memory for 1M touched pages over a 1 TiB layout, and the
fuzzer's worker scaling, and with /dev/kvm the kvm backend on campaign traces
(fresh VM vs reused VM vs batched, as ratios from one run). Prints figures;
asserts nothing about time.

  --json                print one JSON object
  --quick               smaller workloads, one repetition, 6 s scaling runs
  --scaling-seconds N   seconds of each fuzz scaling run (default 30, 6 with
                        --quick; 0 skips the scaling runs)
  --kvm-traces N        campaign traces per kvm mode and round (default 300, 60
                        with --quick; 0 skips the kvm section)
  --help, -h            print this help`;

interface WorkloadResult {
  name: string;
  ops: number;
  referenceOpsPerSec: number;
  coreOpsPerSec: number | null;
  ratio: number | null;
}

/** Ops/s of one backend over `ops`: the best of `reps` runs, each on a fresh backend. */
function opsPerSec(factory: BackendFactory, ops: readonly Op[], reps: number): number {
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const backend = factory.create(defaultConfig());
    const t0 = performance.now();
    for (const op of ops) backend.step(op);
    const dt = performance.now() - t0;
    backend.close();
    best = Math.min(best, dt);
  }
  return ops.length / (best / 1000);
}

async function memory(quick: boolean): Promise<Record<string, number> | { error: string }> {
  const url = new URL("./memory.ts", import.meta.url);
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-env",
      "--allow-sys",
      url.pathname,
      ...(quick ? ["--quick"] : []),
    ],
    stdout: "piped",
    stderr: "piped",
  });
  const out = await cmd.output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) return { error: new TextDecoder().decode(out.stderr).trim().slice(0, 500) };
  return JSON.parse(text);
}

async function main(): Promise<void> {
  const values = taskArgsOrExit("bench", Deno.args, {
    json: { type: "boolean" },
    quick: { type: "boolean" },
    "scaling-seconds": { type: "string" },
    "kvm-traces": { type: "string" },
  }, USAGE);
  const scalingFlag = values["scaling-seconds"];
  const scalingSeconds = scalingFlag === undefined ? (values.quick ? 6 : 30) : Number(scalingFlag);
  if (!Number.isInteger(scalingSeconds) || scalingSeconds < 0) {
    console.error(`bench: --scaling-seconds must be an integer >= 0, got "${scalingFlag}"`);
    Deno.exit(2);
  }
  const kvmFlag = values["kvm-traces"];
  const kvmTraces = kvmFlag === undefined ? (values.quick ? 60 : 300) : Number(kvmFlag);
  if (!Number.isInteger(kvmTraces) || kvmTraces < 0) {
    console.error(`bench: --kvm-traces must be an integer >= 0, got "${kvmFlag}"`);
    Deno.exit(2);
  }
  const n = values.quick ? 20_000 : 200_000;
  const reps = values.quick ? 1 : 3;
  const core = BACKENDS.core;
  const reference = BACKENDS.reference!;
  const workloads: [string, Op[]][] = [
    ["steady-state access", steadyAccess(n)],
    ["churn (PTE writes, invlpg, accesses)", churn(n)],
    ["memslot churn (create, use, delete)", memslotChurn(n)],
    ["pmu (eventsel, counters, events, rdpmc)", pmu(n)],
  ];
  const results: WorkloadResult[] = [];
  for (const [name, ops] of workloads) {
    const ref = opsPerSec(reference, ops, reps);
    const cor = core === undefined ? null : opsPerSec(core, ops, reps);
    results.push({
      name,
      ops: ops.length,
      referenceOpsPerSec: Math.round(ref),
      coreOpsPerSec: cor === null ? null : Math.round(cor),
      ratio: cor === null ? null : Math.round((cor / ref) * 100) / 100,
    });
  }
  const mem = core === undefined
    ? { error: "no core backend registered" }
    : await memory(values.quick ?? false);
  let scaling: Scaling | { error: string } | null = null;
  if (scalingSeconds > 0) {
    try {
      scaling = await fuzzScaling(scalingSeconds);
    } catch (e) {
      scaling = { error: e instanceof Error ? e.message : String(e) };
    }
  }
  let kvm: KvmBenchResult | { skipped: string } = { skipped: "--kvm-traces 0" };
  const kvmWhy = kvmBenchUnavailable();
  if (kvmTraces > 0 && kvmWhy !== null) kvm = { skipped: kvmWhy };
  else if (kvmTraces > 0) kvm = kvmBench(kvmTraces, values.quick ? 1 : 3);
  if (values.json) {
    console.log(JSON.stringify({ workloads: results, memory: mem, scaling, kvm }));
    return;
  }
  console.log(
    "workload                                   ops   reference ops/s   core ops/s   ratio",
  );
  for (const r of results) {
    console.log(
      `${r.name.padEnd(40)} ${String(r.ops).padStart(7)} ${
        String(r.referenceOpsPerSec).padStart(17)
      } ` +
        `${String(r.coreOpsPerSec ?? "-").padStart(12)} ${String(r.ratio ?? "-").padStart(7)}`,
    );
  }
  console.log(`memory: ${JSON.stringify(mem)}`);
  if (scaling === null) console.log("fuzz scaling: skipped (--scaling-seconds 0)");
  else if ("error" in scaling) console.log(`fuzz scaling: failed: ${scaling.error}`);
  else {
    const [one, two, p1, p2] = scaling.runs;
    console.log(
      `fuzz scaling (${scaling.seconds} s each): 1 worker ${one?.opsPerSec} ops/s, 2 workers ` +
        `${two?.opsPerSec} ops/s: ${scaling.ratio}x. Control, two 1-worker processes at once: ` +
        `${p1?.opsPerSec} + ${p2?.opsPerSec} ops/s: ${scaling.processRatio}x (the machine's ` +
        `two-core figure for this workload); 2 workers keep ${scaling.efficiency} of it`,
    );
  }
  if ("skipped" in kvm) console.log(`kvm: skipped (${kvm.skipped})`);
  else for (const line of formatKvmBench(kvm)) console.log(line);
}

if (import.meta.main) await main();
