/**
 * @module
 * The kvm section of `deno task bench` (bench/kvm_bench.ts) on a few traces: three modes,
 * each measured, and batching (stepMany) needs fewer KVM_RUNs than op by op for the same
 * memslot ioctls. No timing is asserted. Skipped, with the reason, without /dev/kvm.
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
    ]);
    for (const m of r.modes) assert.ok(m.opsPerSec > 0 && m.runsPerTrace > 0, m.mode);
    const [fresh, reused, batched] = r.modes;
    assert.equal(fresh!.runsPerTrace, reused!.runsPerTrace);
    assert.ok(batched!.runsPerTrace < reused!.runsPerTrace, JSON.stringify(r.modes));
    assert.equal(batched!.memslotsPerTrace, reused!.memslotsPerTrace);
    assert.match(formatKvmBench(r).at(-1)!, /^ {2}ratios: reused\/fresh [\d.]+x/);
  },
});
