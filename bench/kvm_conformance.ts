/**
 * @module
 * `deno task kvm-conformance [--traces N] [--seed S] [--json]`: a conformance campaign of
 * random traces over paging, memslots, dirty logging and discards, each run on the real
 * KVM and judged by the reference (issue 6). Prints the agreement figure and the first
 * disagreements, each with its trace in text form. Ops the kvm backend cannot run
 * (fetches, aging, reserved ranges) are left out on both sides and counted.
 */
import { parseArgs } from "node:util";
import fc from "fast-check";
import { kvmFactory } from "../src/kvm/mod.ts";
import { diffTrace } from "../src/diff.ts";
import { kvmPvmConfig } from "../src/trace/config.ts";
import { formatOp, formatOutcome, formatPermitted } from "../src/trace/text.ts";
import { type Config, type Op, type Trace, TRACE_FORMAT } from "../src/trace/types.ts";
import { arbDenseOp, DENSE_SETUP } from "../fuzz/arb_dense.ts";

/** Configs this kernel can provide: the kvm_pvm machine with varied control bits. */
function arbKvmConfig(): fc.Arbitrary<Config> {
  return fc.record({
    vendor: fc.constantFrom("amd" as const, "intel" as const),
    maxPhyAddr: fc.constantFrom(36, 40, 46, 48),
    wp: fc.boolean(),
    smep: fc.boolean(),
    smap: fc.boolean(),
    nx: fc.boolean(),
    ac: fc.boolean(),
  }).map((r) => {
    const c = kvmPvmConfig();
    return {
      ...c,
      vendor: r.vendor,
      maxPhyAddr: r.maxPhyAddr,
      cr0: { wp: r.wp },
      cr4: { ...c.cr4, smep: r.smep, smap: r.smap },
      efer: { nx: r.nx },
      rflags: { ac: r.ac },
    };
  });
}

function main(): void {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      traces: { type: "string", default: "10000" },
      seed: { type: "string", default: "42" },
      json: { type: "boolean" },
    },
    strict: true,
  });
  const why = kvmFactory.available();
  if (why !== null) {
    console.log(JSON.stringify({ skipped: why }));
    return;
  }
  const n = Number(values.traces);
  const samples = fc.sample(
    fc.tuple(arbKvmConfig(), fc.array(arbDenseOp(), { minLength: 20, maxLength: 80, size: "max" })),
    { numRuns: n, seed: Number(values.seed) },
  );
  let agreed = 0, ops = 0, skippedOps = 0;
  const kinds: Record<string, number> = {};
  const disagreements: { trace: string[]; at: number; got: string; permitted: string[] }[] = [];
  const t0 = performance.now();
  for (const [config, body] of samples) {
    const trace: Trace = { format: TRACE_FORMAT, config, ops: [...DENSE_SETUP, ...body] as Op[] };
    const r = diffTrace(trace, kvmFactory);
    ops += r.ops;
    skippedOps += r.skipped;
    if (r.divergence === null) {
      agreed++;
      continue;
    }
    const d = r.divergence;
    const key = `${d.op.op}: kvm=${Object.keys(d.observed)[0]}, permitted={${
      [...new Set(d.permitted.map((p) => Object.keys(p.outcome)[0]))].join(",")
    }}`;
    kinds[key] = (kinds[key] ?? 0) + 1;
    if (disagreements.length < 10) {
      disagreements.push({
        trace: trace.ops.slice(0, d.index + 1).map(formatOp),
        at: d.index,
        got: formatOutcome(d.observed),
        permitted: d.permitted.map(formatPermitted),
      });
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const summary = {
    traces: n,
    agreed,
    disagreed: n - agreed,
    agreement: agreed / n,
    ops,
    skippedOps,
    seconds: Math.round(seconds * 10) / 10,
    opsPerSec: Math.round(ops / seconds),
    kinds,
  };
  if (values.json) {
    console.log(JSON.stringify({ ...summary, disagreements }));
    return;
  }
  console.log(JSON.stringify(summary, null, 2));
  for (const d of disagreements) {
    console.log(`\n--- disagreement at op ${d.at}: kvm ${d.got}`);
    for (const p of d.permitted) console.log(`    permitted: ${p}`);
    console.log(d.trace.map((l, i) => `  ${i} ${l}`).join("\n"));
  }
}

if (import.meta.main) main();
