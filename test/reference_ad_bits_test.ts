/**
 * Issue 13 item 11: the oracle must reject a backend that leaves A/D bits at 0 where the
 * SDM requires 1. A translation is cached only after A is 1 in every entry it used (SDM
 * vol. 3A 4.10.2.3) and a flag stays 0 on a later access only if software cleared it
 * (4.8), so a 0 is permitted only in an entry software stored to after a copy of the
 * translation could have been cached. The regression traces end with loads of the
 * entries; a backend that skips the A/D updates (the core with every A/D bit the
 * software did not write cleared from its loads) must diverge there, and the core
 * itself must agree.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Backend, BackendFactory } from "../src/backend.ts";
import { coreFactory } from "../src/core/mod.ts";
import { diffTrace } from "../src/diff.ts";
import { ReferenceBackend } from "../src/reference/mod.ts";
import { parseTrace } from "../src/trace/parse.ts";
import type { Op, Outcome, Trace } from "../src/trace/types.ts";
import { PTE_A, PTE_D } from "../src/x86/paging.ts";

const REGRESSIONS = new URL("../corpus/regressions/", import.meta.url).pathname;
const AD = PTE_A | PTE_D;

async function load(name: string): Promise<Trace> {
  return parseTrace(await Deno.readTextFile(join(REGRESSIONS, `${name}.json`)));
}

/**
 * The core, except that no A/D update ever reaches memory as the guest sees it: a load
 * of a qword the trace stored returns A and D as the store left them.
 */
const skipAdFactory: BackendFactory = {
  name: "core",
  available: () => null,
  create(config, options): Backend {
    const inner = coreFactory.create(config, options);
    const stored = new Map<bigint, bigint>();
    return {
      name: "core",
      close: () => inner.close(),
      step(op: Op): Outcome {
        const out = inner.step(op);
        if (op.op === "write" && op.size === 8 && (op.gpa & 7n) === 0n) {
          stored.set(op.gpa, op.value);
        }
        if (op.op === "read" && op.size === 8 && "value" in out) {
          const written = stored.get(op.gpa);
          if (written !== undefined) return { value: (out.value & ~AD) | (written & AD) };
        }
        return out;
      },
    };
  },
};

const TRACES = [
  // The A bits of the PDE and the PTE (the loads at ops 8 and 9).
  { name: "a-bit-dontcare-after-nx-change", at: 8 },
  // Op 8 loads the PML4E, stored again after the hierarchy was complete: its A may stay
  // 0; the PDE load at op 9 may not.
  { name: "a-bit-dontcare-after-upper-store", at: 9 },
  // The D bit of the PTE the write went through.
  { name: "d-bit-after-nx-change", at: 8 },
];

for (const { name, at } of TRACES) {
  Deno.test(`reference: ${name} rejects a backend that skips the A/D updates`, async () => {
    const trace = await load(name);
    const d = diffTrace(trace, skipAdFactory).divergence;
    assert.notEqual(d, null, `${name}: the A/D-skipping backend passed`);
    assert.equal(d!.index, at, `${name}: diverged at op ${d!.index}`);
    assert.equal(diffTrace(trace, coreFactory).divergence, null, `${name}: the core diverged`);
  });
}

Deno.test("reference: after a same-value store only the stored entry's A bit is don't care", async () => {
  const trace = await load("a-bit-dontcare-after-upper-store");
  const ref = new ReferenceBackend(trace.config);
  const judged = trace.ops.map((op) => ref.judge(op));
  // Ops 8-10 load the PML4E, the PDE and the PTE after the read at op 7.
  const dontCare = judged.slice(8).map((j) => j.permitted[0]!.dontCare ?? 0n);
  assert.deepEqual(dontCare, [PTE_A, 0n, 0n]);
});
