/**
 * @module
 * The exhaustive guest-walk permission enumeration (`conformance/access_enum.ts`) on
 * the reference backend, and proof that it notices planted bugs in it.
 *
 * The whole enumeration takes about 22 s of CPU on the 2-core machine (30 s or more of
 * wall time when other jobs share it); set `SHADOWFUZZ_ACCESS_SAMPLE=N` to run every
 * Nth combination instead.
 */
import assert from "node:assert/strict";
import type { BackendFactory } from "../src/backend.ts";
import { referenceFactory } from "../src/reference/mod.ts";
import type { Config, Op, Outcome } from "../src/trace/types.ts";
import { PFERR_FETCH } from "../src/x86/paging.ts";
import { countAccessCases, runAccessEnumeration } from "./conformance/access_enum.ts";

function sampleFromEnv(): number {
  let text: string | undefined;
  try {
    text = Deno.env.get("SHADOWFUZZ_ACCESS_SAMPLE");
  } catch {
    // Without --allow-env: the full enumeration.
  }
  if (text === undefined || text === "") return 1;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`Cannot parse SHADOWFUZZ_ACCESS_SAMPLE: "${text}" is not >= 1`);
  }
  return n;
}

Deno.test("reference: every guest-walk permission combination matches the SDM model", () => {
  const sample = sampleFromEnv();
  const counts = countAccessCases();
  const total = counts.intel + counts.amd + counts["intel-no1g"];
  const { checked, failures } = runAccessEnumeration(referenceFactory, { sample });
  console.log(
    `access enumeration: ${checked} of ${total} combinations checked ` +
      `(intel ${counts.intel}, amd ${counts.amd}, intel-no1g ${counts["intel-no1g"]}` +
      `${sample > 1 ? `; sample 1/${sample}` : ""})`,
  );
  assert.deepEqual(failures, []);
  if (sample === 1) assert.equal(checked, total);
  else assert.ok(checked > 0);
});

/** The reference with one op or config rewritten: a planted bug. */
function mutant(
  rewrite: {
    op?: (op: Op) => Op;
    outcome?: (o: Outcome, op: Op) => Outcome;
    config?: (c: Config) => Config;
  },
): BackendFactory {
  return {
    name: "core",
    available: () => null,
    create(config) {
      const inner = referenceFactory.create(rewrite.config?.(config) ?? config);
      return {
        name: "core",
        close: () => inner.close(),
        step: (op) => {
          const out = inner.step(rewrite.op?.(op) ?? op);
          return rewrite.outcome?.(out, op) ?? out;
        },
      };
    },
  };
}

function assertCaught(factory: BackendFactory, pattern: RegExp): void {
  const { checked, failures } = runAccessEnumeration(factory, { sample: 400, seed: 7 });
  assert.ok(checked > 10000, `only ${checked} combinations`);
  assert.ok(failures.some((f) => pattern.test(f)), failures[0] ?? "no failures");
}

Deno.test("access enum: catches a reference that ignores CR4.SMAP", () => {
  assertCaught(
    mutant({ op: (op) => op.op === "ctl" ? { ...op, smap: false } : op }),
    /CPU_SMAP.*access: expected \{"pf":\{"code":1,/,
  );
});

Deno.test("access enum: catches a reference that never reports I/D", () => {
  assertCaught(
    mutant({
      outcome: (o) => "pf" in o ? { pf: { ...o.pf, code: o.pf.code & ~PFERR_FETCH } } : o,
    }),
    /ACCESS_FETCH.*access: expected \{"pf"/,
  );
});

Deno.test("access enum: catches a reference that takes an AMD guest for Intel", () => {
  assertCaught(
    mutant({ config: (c) => ({ ...c, vendor: "intel" }) }),
    /^amd .*PML4E_BIT8.*access: expected \{"pf":\{"code":(9|11|13|15|25|29),/,
  );
});

Deno.test("access enum: catches a reference that sets no A bit", () => {
  // Every present entry read back loses A, as if the walker had never set it.
  assertCaught(
    mutant({
      outcome: (o, op) =>
        op.op === "read" && "value" in o && (o.value & 1n) === 1n ? { value: o.value & ~0x20n } : o,
    }),
    /(PTE|PDE|PDPTE) after: expected/,
  );
});
