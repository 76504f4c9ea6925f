/**
 * @module
 * The exhaustive guest-walk permission enumeration on the core (its own walker, shadow
 * pages and sptes), and a sample of it on the real KVM (reads and writes only: the kvm
 * backend fetches only a ret, and the enumeration's data frame holds none), skipped with
 * a printed reason where /dev/kvm is unusable.
 */
import assert from "node:assert/strict";
import { coreFactory } from "../src/core/mod.ts";
import { kvmFactory } from "../src/kvm/mod.ts";
import { countAccessCases, runAccessEnumeration } from "./conformance/access_enum.ts";

Deno.test("core: every guest-walk permission combination matches the SDM model", () => {
  const counts = countAccessCases();
  const total = counts.intel + counts.amd + counts["intel-no1g"];
  const { checked, failures } = runAccessEnumeration(coreFactory);
  console.log(`access enumeration on the core: ${checked} of ${total} combinations checked`);
  assert.deepEqual(failures, []);
  assert.equal(checked, total);
});

const kvmUnavailable = kvmFactory.available();
if (kvmUnavailable !== null) console.log(`skip kvm access enumeration: ${kvmUnavailable}`);

Deno.test({
  name: "kvm: a sample of the AMD permission combinations matches the SDM model on real KVM",
  ignore: kvmUnavailable !== null,
  fn() {
    const { checked, failures } = runAccessEnumeration(kvmFactory, {
      spaces: ["amd"],
      kinds: ["read", "write"],
      sample: 16,
    });
    console.log(`access enumeration on kvm: ${checked} AMD read/write combinations (1/16 sample)`);
    assert.deepEqual(failures.slice(0, 5), []);
    assert.ok(checked > 1000);
  },
});
