import assert from "node:assert/strict";
import fc from "fast-check";
import { mergeConfig } from "../trace/config.ts";
import { formatOutcome } from "../trace/text.ts";
import type { ConfigInput, Outcome } from "../trace/types.ts";
import { ReferencePmu } from "./pmu.ts";

function pmuFor(input: ConfigInput): ReferencePmu {
  return new ReferencePmu(mergeConfig(input));
}

const AMD_V2: ConfigInput = {
  vendor: "amd",
  pmu: { version: 2, gp: 6, fixed: 0, gpWidth: 48, fixedWidth: 48, fullWidthWrites: false },
};

Deno.test("reference: isPmuMsr covers both vendors' PMU MSRs whatever the config", () => {
  const pmu = pmuFor({ vendor: "intel", pmu: { version: 0, gp: 0, fixed: 0 } });
  for (const msr of [0xc1, 0xc8, 0x186, 0x18d, 0x4c1, 0x4c8, 0x309, 0x30c, 0x38d, 0x392]) {
    assert.ok(pmu.isPmuMsr(msr), msr.toString(16));
  }
  for (const msr of [0xc0010000, 0xc0010007, 0xc0010200, 0xc001020b, 0xc0000300, 0xc0000303]) {
    assert.ok(pmu.isPmuMsr(msr), msr.toString(16));
  }
  for (const msr of [0xc0, 0xc9, 0x18e, 0x30d, 0x345, 0x393, 0xc0010008, 0xc001020c, 0x10]) {
    assert.ok(!pmu.isPmuMsr(msr), msr.toString(16));
  }
});

Deno.test("reference: a non-PMU MSR is left to the caller on read and #GPs on write", () => {
  const pmu = pmuFor({});
  assert.equal(pmu.rdmsr(0x10), null);
  assert.equal(pmu.rdmsr(0x345), null);
  assert.deepEqual(pmu.wrmsr(0x10, 0n), { gp: true });
});

Deno.test("reference: a known PMU MSR the vCPU lacks reads as #GP, not null", () => {
  const pmu = pmuFor({ vendor: "intel", pmu: { version: 1, gp: 2, fixed: 0 } });
  assert.deepEqual(pmu.rdmsr(0x38f), { gp: true });
  assert.deepEqual(pmu.rdmsr(0xc3), { gp: true });
  // 0xc2 is PMC1, valid with two GP counters.
  assert.deepEqual(pmu.rdmsr(0xc2), { value: 0n });
});

Deno.test("reference: the PMU rejects configs KVM cannot express", () => {
  assert.throws(
    () => pmuFor({ vendor: "intel", pmu: { version: 2, gp: 9, fixed: 3 } }),
    RangeError,
  );
  assert.throws(
    () => pmuFor({ vendor: "intel", pmu: { version: 2, gp: 4, fixed: 4 } }),
    RangeError,
  );
});

Deno.test("reference: Intel version 1 ignores configured fixed counters", () => {
  // Config validation rejects this combination; the model still follows KVM, which
  // sets nr_arch_fixed_counters = 0 for version 1.
  const pmu = pmuFor({ vendor: "intel", pmu: { version: 1, gp: 2, fixed: 3 } });
  assert.deepEqual(pmu.rdmsr(0x309), { gp: true });
  assert.deepEqual(pmu.rdpmc(0x40000000, false, false), { gp: true });
});

Deno.test("reference: AMD PerfMonV2 with 4 counters has globals but no F15H MSRs", () => {
  const pmu = pmuFor({
    vendor: "amd",
    pmu: { version: 2, gp: 4, fixed: 0, gpWidth: 48, fixedWidth: 48, fullWidthWrites: false },
  });
  assert.deepEqual(pmu.rdmsr(0xc0000301), { value: 0xfn });
  assert.deepEqual(pmu.rdmsr(0xc0010200), { gp: true });
  assert.deepEqual(pmu.rdmsr(0xc0010004), { value: 0n });
});

Deno.test("reference: pmis counts requested PMIs and resets", () => {
  const pmu = pmuFor({});
  assert.deepEqual(pmu.wrmsr(0x186, 0x5300c0n), { ok: true });
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(pmu.wrmsr(0x4c1, (1n << 48n) - 1n), { ok: true });
    assert.deepEqual(pmu.events({ op: "events", event: 0xc0, umask: 0, count: 1, user: false }), {
      ok: true,
    });
  }
  assert.deepEqual(pmu.pmis(), { count: 3 });
  assert.deepEqual(pmu.pmis(), { count: 0 });
});

Deno.test("reference: a filter with the masked flag splits includes and excludes by bit 55", () => {
  const pmu = pmuFor({});
  assert.deepEqual(pmu.wrmsr(0x186, 0x4381d0n), { ok: true });
  // Exclude only, as a deny-list: nothing is "in includes and not excluded", so the
  // event is allowed (is_gp_event_allowed falls through to action == DENY).
  const exclude = 0xff800000000081d0n;
  assert.deepEqual(pmu.filter({ op: "filter", action: 1, flags: 1, fixed: 0, events: [exclude] }), {
    errno: 0,
  });
  pmu.events({ op: "events", event: 0xd0, umask: 0x81, count: 2, user: false });
  assert.deepEqual(pmu.rdmsr(0xc1), { value: 2n });
  // The same entry as an include (bit 55 clear) denies it.
  const include = exclude & ~(1n << 55n);
  pmu.filter({ op: "filter", action: 1, flags: 1, fixed: 0, events: [include] });
  pmu.events({ op: "events", event: 0xd0, umask: 0x81, count: 2, user: false });
  assert.deepEqual(pmu.rdmsr(0xc1), { value: 2n });
});

// -------------------------------------------------------------------------------------
// Properties over random MSR/event sequences
// -------------------------------------------------------------------------------------

const INTEL_COUNTER_MSRS = [0xc1, 0xc2, 0xc3, 0xc4, 0x4c1, 0x4c2, 0x4c3, 0x4c4];
const INTEL_MSRS = [
  ...INTEL_COUNTER_MSRS,
  0x186,
  0x187,
  0x188,
  0x189,
  0x309,
  0x30a,
  0x30b,
  0x38d,
  0x38e,
  0x38f,
  0x390,
];
const AMD_MSRS = [
  ...Array.from({ length: 8 }, (_, i) => 0xc0010000 + i),
  ...Array.from({ length: 12 }, (_, i) => 0xc0010200 + i),
  0xc0000300,
  0xc0000301,
  0xc0000302,
  // Intel's GLOBAL_STATUS/CTRL/OVF_CTRL, which KVM also accepts on a PerfMonV2 guest
  // with their Intel semantics: the only AMD PMU MSRs here a write can #GP.
  0x38e,
  0x38f,
  0x390,
];

type Step =
  | { kind: "wrmsr"; msr: number; value: bigint }
  | { kind: "events"; event: number; umask: number; count: number; user: boolean };

function stepArb(msrs: number[]): fc.Arbitrary<Step> {
  const value = fc.oneof(
    fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    fc.constantFrom(0x4300c0n, 0x5300c0n, 0x4100c0n, 0x1004300c2n, 0xbbbn, 0x70000000fn, 0x3fn),
    fc.bigInt({ min: (1n << 48n) - 16n, max: (1n << 48n) - 1n }),
  );
  return fc.oneof(
    fc.record({ kind: fc.constant("wrmsr" as const), msr: fc.constantFrom(...msrs), value }),
    fc.record({
      kind: fc.constant("events" as const),
      event: fc.constantFrom(0xc0, 0x3c, 0x00, 0xc2, 0x1c2),
      umask: fc.constantFrom(0, 3),
      count: fc.nat({ max: 40 }),
      user: fc.boolean(),
    }),
  );
}

function apply(pmu: ReferencePmu, step: Step): Outcome {
  return step.kind === "wrmsr"
    ? pmu.wrmsr(step.msr, step.value)
    : pmu.events({ op: "events", ...step });
}

function readAll(pmu: ReferencePmu, msrs: number[]): string[] {
  return msrs.map((m) => formatOutcome(pmu.rdmsr(m) ?? { gp: true }));
}

for (
  const [vendor, input, msrs, width] of [
    ["Intel", {}, INTEL_MSRS, 48n],
    ["AMD", AMD_V2, AMD_MSRS, 48n],
  ] as const
) {
  Deno.test(`reference: ${vendor} counters never hold bits above their width`, () => {
    fc.assert(
      fc.property(fc.array(stepArb(msrs), { maxLength: 30 }), (steps) => {
        const pmu = pmuFor(input);
        for (const step of steps) apply(pmu, step);
        for (let ecx = 0; ecx < (vendor === "Intel" ? 4 : 6); ecx++) {
          const out = pmu.rdpmc(ecx, false, false);
          assert.ok("value" in out && out.value >> width === 0n);
        }
      }),
      { numRuns: 200 },
    );
  });

  Deno.test(`reference: an ${vendor} WRMSR that #GPs changes no PMU state`, () => {
    let gps = 0;
    fc.assert(
      fc.property(
        fc.array(stepArb(msrs), { maxLength: 20 }),
        fc.constantFrom(...msrs),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        (steps, msr, value) => {
          const pmu = pmuFor(input);
          for (const step of steps) apply(pmu, step);
          const before = readAll(pmu, msrs);
          if ("gp" in pmu.wrmsr(msr, value)) {
            gps++;
            assert.deepEqual(readAll(pmu, msrs), before);
          }
        },
      ),
      { numRuns: 200 },
    );
    assert.ok(gps > 0, "no WRMSR #GPed: the property was never checked");
  });
}

Deno.test("reference: Intel RDPMC agrees with RDMSR for every valid GP and fixed index", () => {
  fc.assert(
    fc.property(fc.array(stepArb(INTEL_MSRS), { maxLength: 30 }), (steps) => {
      const pmu = pmuFor({});
      for (const step of steps) apply(pmu, step);
      for (let i = 0; i < 4; i++) {
        assert.deepEqual(pmu.rdpmc(i, false, false), pmu.rdmsr(0xc1 + i));
      }
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(pmu.rdpmc(0x40000000 + i, false, false), pmu.rdmsr(0x309 + i));
      }
    }),
    { numRuns: 200 },
  );
});
