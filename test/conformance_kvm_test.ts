/**
 * @module
 * The shared conformance suite on the real KVM (/dev/kvm). Skips print their reason:
 * the whole suite when /dev/kvm is unusable, a case whose ops the backend can never
 * run from userspace (aging, hardware events), a case that needs a machine feature this
 * kernel lacks, and the measured kvm_pvm-specific behaviours below (each with a
 * regression trace in corpus/regressions/). The fetch cases run (src/kvm/README.md
 * "Fetches": a ret at each target).
 *
 * Paging and memslot cases do not depend on the vPMU: they run with the vPMU off when
 * this kernel has none, and with 1 GiB pages off when it has none (only the cases that
 * require 1 GiB pages are skipped then).
 *
 * VM reuse (src/kvm/README.md): the suite and random dense traces give the same outcomes,
 * op for op, on VMs reused from earlier traces as on fresh VMs, and `stepMany` (whole
 * traces in few KVM_RUNs) the same as `supports` and `step` op by op.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  closeIdleVms,
  KvmBackend,
  kvmConfigMismatch,
  KvmConstraintError,
  kvmFactory,
} from "../src/kvm/mod.ts";
import { kvmPvmConfig, pmuDefaults } from "../src/trace/config.ts";
import { mergeConfig } from "../src/trace/config.ts";
import { formatOp, formatOutcome, parseOp } from "../src/trace/text.ts";
import type { Config, Op } from "../src/trace/types.ts";
import { arbDenseOp, DENSE_SETUP } from "../fuzz/gen/arb_dense.ts";
import type { ConformanceCase } from "./conformance/case.ts";
import { allCases, runConformance, type Skip } from "./conformance/runner.ts";

const usable = kvmFactory.available() === null;

function isPmu(c: ConformanceCase): boolean {
  return c.areas?.includes("pmu") ?? false;
}

function adaptConfig(c: ConformanceCase, config: Config): Config {
  const m = kvmConfigMismatch(config);
  const out = { ...config };
  if (!isPmu(c) && m.pmu !== undefined) out.pmu = pmuDefaults(config.vendor, 0);
  if (!c.requires?.includes("gbPages") && m.gbPages !== undefined) out.gbPages = false;
  return out;
}

const skip: Skip[] = [
  {
    reason: "this kernel has no vPMU (kvm.enable_pmu=N) or not this vendor's",
    cases: (c) =>
      usable && isPmu(c) && kvmConfigMismatch(mergeConfig(c.config ?? {})).pmu !== undefined,
  },
  {
    reason: "this kernel has no 1 GiB pages (supported CPUID 0x80000001 EDX[26] clear)",
    cases: (c) =>
      usable && (c.requires?.includes("gbPages") ?? false) &&
      kvmConfigMismatch(mergeConfig(c.config ?? {})).gbPages !== undefined,
  },
  {
    reason: "kvm_pvm: CR4.SMEP/SMAP can be set although CPUID lacks them " +
      "(corpus/regressions/kvm-pvm-cr4-smep-without-cpuid.json)",
    cases: ["mmu: setting CR4.SMEP without CPUID SMEP raises #GP and changes nothing"],
  },
  {
    reason: "kvm_pvm: the VM has no SMM address space, so slot ids >= 0x10000 are EINVAL " +
      "(corpus/regressions/kvm-pvm-no-smm-slots.json)",
    cases: ["memslot: a slot overlapping another in the same address space is refused with EEXIST"],
  },
];

runConformance(kvmFactory, { skip, adaptConfig });

// ---- VM reuse ------------------------------------------------------------------------

/** Why a case is skipped on kvm (the runner's rules: a static refusal, the skips above). */
function skipped(c: ConformanceCase): boolean {
  const config = mergeConfig(c.config ?? {});
  if (c.steps.some(([op]) => kvmFactory.cannotRun?.(parseOp(op), config) != null)) return true;
  return skip.some((s) => typeof s.cases === "function" ? s.cases(c) : s.cases.includes(c.name));
}

/**
 * The outcomes of `ops` on one backend, an op it cannot run skipped with its reason (as
 * diffTrace skips it), op by op through `supports` and `step`, or with `many` through
 * `stepMany`.
 */
function outcomes(config: Config, ops: readonly Op[], reuse: boolean, many = false): {
  outs: string[];
  reused: boolean;
} {
  const b = new KvmBackend(config, { reuse });
  try {
    const outs: string[] = many
      ? b.stepMany(ops).map((r) => "skip" in r ? `cannot run: ${r.skip}` : formatOutcome(r))
      : ops.map((op) => {
        const why = b.supports(op);
        if (why !== null) return `cannot run: ${why}`;
        try {
          return formatOutcome(b.step(op));
        } catch (e) {
          // A fetch the agent refused once it ran (its check read no ret).
          if (e instanceof KvmConstraintError) {
            return `cannot run: ${e.message.replace(/^.*?: /, "")}`;
          }
          throw e;
        }
      });
    return { outs, reused: b.reusedVm };
  } finally {
    b.close();
  }
}

/** Runs every trace fresh, then reused in order and in reverse; all three must agree. */
function compareReuse(traces: readonly { name: string; config: Config; ops: readonly Op[] }[]) {
  closeIdleVms();
  const fresh = traces.map((t) => outcomes(t.config, t.ops, false).outs);
  let reusedRuns = 0;
  for (const order of [traces.map((_, i) => i), traces.map((_, i) => traces.length - 1 - i)]) {
    for (const i of order) {
      const t = traces[i]!;
      const r = outcomes(t.config, t.ops, true);
      if (r.reused) reusedRuns++;
      for (let k = 0; k < Math.max(r.outs.length, fresh[i]!.length); k++) {
        assert.equal(
          r.outs[k],
          fresh[i]![k],
          `${t.name}: op ${k} \`${t.ops[k] === undefined ? "" : formatOp(t.ops[k]!)}\` on a ` +
            `${r.reused ? "reused" : "new"} VM differs from a fresh VM`,
        );
      }
    }
  }
  closeIdleVms();
  return reusedRuns;
}

Deno.test({
  name: "kvm: a reused VM gives the same outcomes as a fresh one on the conformance suite",
  ignore: !usable,
  fn() {
    const cases = allCases.filter((c) => !skipped(c));
    const traces = cases.map((c) => ({
      name: c.name,
      config: adaptConfig(c, mergeConfig(c.config ?? {})),
      ops: c.steps.map(([op]) => parseOp(op)),
    }));
    const reused = compareReuse(traces);
    // Most cases share a config, so most reused runs really ran on an earlier case's VM.
    assert.ok(reused >= cases.length, `only ${reused} of ${2 * cases.length} runs reused a VM`);
  },
});

/**
 * MSRs a trace may write and read back (SDM vol. 4: IA32_SYSENTER_CS/ESP/EIP, STAR,
 * LSTAR, CSTAR, SFMASK, KERNEL_GS_BASE), to catch a reset that leaves them behind.
 */
const MSRS = [0x174, 0x175, 0x176, 0xc0000081, 0xc0000082, 0xc0000083, 0xc0000084, 0xc0000102];

/** Random dense traces with probes at each start and a tail (same seed every run). */
function denseTraceSet(): { name: string; config: Config; ops: readonly Op[] }[] {
  const samples = fc.sample(
    fc.tuple(
      fc.array(arbDenseOp(), { minLength: 20, maxLength: 60, size: "max" }),
      fc.array(
        fc.tuple(fc.constantFrom(...MSRS), fc.bigInt({ min: 1n, max: 0xffffn })),
        { maxLength: 3 },
      ),
      fc.boolean(),
    ),
    { numRuns: 60, seed: 20261122 },
  );
  return samples.map(([dense, msrs, nx], i) => {
    const config = kvmPvmConfig();
    config.efer = { nx };
    config.cr4 = { ...config.cr4, smap: true };
    // Ops the backend never runs (aging) are left out, as kvm-conformance does; ops it
    // cannot run in their state (a fetch whose target holds no ret) are skipped.
    const body = dense.filter((op) => kvmFactory.cannotRun?.(op, config) === null);
    // Each trace first reads what an earlier trace on the same VM could have left:
    // memory outside the tables, the MSRs, a page of slot 1's hva, and EFLAGS.AC (a
    // supervisor read of a user page is a #PF under SMAP unless AC is set).
    const probe: Op[] = [
      { op: "read", gpa: 0x5000n, size: 8 },
      { op: "read", gpa: 0xf000n, size: 8 },
      ...MSRS.map((msr): Op => ({ op: "rdmsr", msr })),
      { op: "slot", id: 1, gpa: 0x8000n, pages: 8, hva: 0x200000000n, flags: [] },
      { op: "read", gpa: 0x8000n, size: 8 },
      { op: "slot", id: 1, gpa: 0x8000n, pages: 0, hva: 0x200000000n, flags: [] },
      { op: "access", gva: 0x0n, kind: "read", user: false, size: 8 },
      ...DENSE_SETUP,
      { op: "write", gpa: 0x4000n, size: 8, value: 0x5007n },
      { op: "access", gva: 0x0n, kind: "read", user: false, size: 8 },
      { op: "write", gpa: 0x4000n, size: 8, value: 0n },
      { op: "invlpg", gva: 0n },
    ];
    const tail: Op[] = [
      ...msrs.map(([msr, value]): Op => ({ op: "wrmsr", msr, value })),
      { op: "write", gpa: 0x5000n, size: 8, value: BigInt(i + 1) },
      { op: "slot", id: 1, gpa: 0x8000n, pages: 8, hva: 0x200000000n, flags: [] },
      { op: "write", gpa: 0x8000n, size: 8, value: BigInt(i + 1) },
      { op: "ctl", ac: true },
    ];
    return { name: `dense trace ${i}`, config, ops: [...probe, ...body, ...tail] };
  });
}

Deno.test({
  name: "kvm: a reused VM gives the same outcomes as a fresh one on random dense traces",
  ignore: !usable,
  fn() {
    const traces = denseTraceSet();
    // The tails ran, so the probes had something to find.
    const tails = traces.filter((t) =>
      outcomes(t.config, t.ops, false).outs.slice(-5).every((o) => !o.startsWith("cannot run"))
    );
    assert.ok(tails.length >= traces.length / 2, `only ${tails.length} tails ran`);
    assert.ok(compareReuse(traces) > traces.length);
  },
});

Deno.test({
  name: "kvm: the suite's fetch cases run on kvm, none skipped",
  ignore: !usable,
  fn() {
    const fetches = allCases.filter((c) => c.steps.some(([op]) => /^access x /.test(op)));
    assert.ok(fetches.length >= 6);
    assert.deepEqual(fetches.filter(skipped).map((c) => c.name), []);
  },
});

Deno.test({
  name: "kvm: stepMany gives the outcomes of supports and step on the suite and dense traces",
  ignore: !usable,
  fn() {
    const suite = allCases.filter((c) => !skipped(c)).map((c) => ({
      name: c.name,
      config: adaptConfig(c, mergeConfig(c.config ?? {})),
      ops: c.steps.map(([op]) => parseOp(op)),
    }));
    let refusals = 0;
    for (const t of [...suite, ...denseTraceSet()]) {
      const stepped = outcomes(t.config, t.ops, false).outs;
      const many = outcomes(t.config, t.ops, false, true).outs;
      for (let k = 0; k < t.ops.length; k++) {
        assert.equal(many[k], stepped[k], `${t.name}: op ${k} \`${formatOp(t.ops[k]!)}\``);
      }
      refusals += stepped.filter((o) => o.startsWith("cannot run")).length;
    }
    // The dense traces' fetches at bytes other than ret are refused, state by state.
    assert.ok(refusals > 0);
  },
});
