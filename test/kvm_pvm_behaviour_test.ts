/**
 * @module
 * The documented kvm_pvm-specific behaviours (src/kvm/constraints.ts KVM_PVM_DIFFERS),
 * each a trace in corpus/kvm-pvm/: the reference says what upstream KVM and the
 * architecture do, kvm_pvm does something else, and this test pins both, so that a
 * change on either side is noticed. Skipped with the reason where /dev/kvm is unusable
 * or the module is not kvm_pvm.
 */
import assert from "node:assert/strict";
import { isKvmPvm, KvmBackend, kvmFactory } from "../src/kvm/mod.ts";
import { ReferenceBackend } from "../src/reference/mod.ts";
import { parseTrace } from "../src/trace/parse.ts";
import { formatOutcome } from "../src/trace/text.ts";

const DIR = new URL("../corpus/kvm-pvm/", import.meta.url);
// The user-upper-half fault is P=0 (code 0x4) in some processes and RSVD (0xd) in others.
const CASES: { file: string; reference: string; kvmPvm: RegExp }[] = [
  {
    file: "user-upper-half.json",
    reference: "value 0x42",
    kvmPvm: /^pf code=0x(4|d) cr2=0xffff800000000000$/,
  },
  { file: "masked-filter-amd-event-bits.json", reference: "errno 0", kvmPvm: /^errno EINVAL$/ },
];

const why = kvmFactory.available() ?? (isKvmPvm() ? null : "the kvm module here is not kvm_pvm");
if (why !== null) console.log(`skip kvm_pvm behaviour tests: ${why}`);

for (const c of CASES) {
  Deno.test(`reference: ${c.file} ends in ${c.reference} (upstream and architectural)`, () => {
    const trace = parseTrace(Deno.readTextFileSync(new URL(c.file, DIR)));
    const ref = new ReferenceBackend(trace.config);
    const outs = trace.ops.map((op) => formatOutcome(ref.step(op)));
    assert.equal(outs.at(-1), c.reference);
  });
  Deno.test({
    name: `kvm_pvm: ${c.file} ends in ${c.kvmPvm}`,
    ignore: why !== null,
    fn() {
      const trace = parseTrace(Deno.readTextFileSync(new URL(c.file, DIR)));
      const kvm = new KvmBackend(trace.config, { runPvmDiffs: true });
      try {
        const outs = trace.ops.map((op) => formatOutcome(kvm.step(op)));
        assert.match(outs.at(-1)!, c.kvmPvm);
        // Without the opt-out the backend refuses the op and says why.
        const refusing = kvmFactory.create(trace.config);
        try {
          assert.match(refusing.supports?.(trace.ops.at(-1)!) ?? "", /kvm_pvm/);
        } finally {
          refusing.close();
        }
      } finally {
        kvm.close();
      }
    },
  });
}
