/**
 * @module
 * The kvm section of `deno task bench` (bench/kvm_bench.ts) on a few traces: four modes,
 * each measured, batching (stepMany) needs fewer KVM_RUNs than op by op for the same
 * memslot ioctls, and the time breakdown names its parts. No timing is asserted. Skipped, with the reason, without /dev/kvm.
 */
import assert from "node:assert/strict";
import { formatKvmBench, kvmBench, kvmBenchUnavailable } from "../bench/kvm_bench.ts";

const why = kvmBenchUnavailable();
if (why !== null) console.log(`kvm bench test skipped: ${why}`);

Deno.test({
  name: "bench: the kvm section measures fresh, reused and batched modes",
  ignore: why !== null,
  fn() {
    const r = kvmBench(8, 1);
    assert.deepEqual(r.modes.map((m) => m.mode), [
      "fresh VM, op by op",
      "reused VM, op by op",
      "reused VM, batched (stepMany)",
      "batched, GET_REGS/GET_MSRS back",
    ]);
    for (const m of r.modes) assert.ok(m.opsPerSec > 0 && m.runsPerTrace > 0, m.mode);
    const [fresh, reused, batched] = r.modes;
    assert.equal(fresh!.runsPerTrace, reused!.runsPerTrace);
    assert.ok(batched!.runsPerTrace < reused!.runsPerTrace, JSON.stringify(r.modes));
    assert.equal(batched!.memslotsPerTrace, reused!.memslotsPerTrace);
    // The removed ioctls are back in the last mode: same KVM_RUNs and memslot ioctls.
    const old = r.modes[3]!;
    assert.equal(old.runsPerTrace, batched!.runsPerTrace);
    assert.equal(old.memslotsPerTrace, batched!.memslotsPerTrace);
    for (const [k, v] of Object.entries(r.medianRatios)) assert.ok(v > 0, k);
    const lines = formatKvmBench(r);
    assert.ok(lines.some((l) => /^ {2}ratios: reused\/fresh [\d.]+x/.test(l)), lines.join("\n"));
    // The breakdown names KVM_RUN, the reference and the rest, shares adding up to ~100%.
    const parts = r.breakdown.map((p) => p.part);
    for (const p of ["KVM_RUN", "reference", "rest"]) assert.ok(parts.includes(p), p);
    const sum = r.breakdown.reduce((t, p) => t + p.percent, 0);
    assert.ok(sum > 95 && sum < 105 || r.breakdown.at(-1)!.us === 0, `shares add up to ${sum}%`);
  },
});
