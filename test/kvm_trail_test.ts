/**
 * @module
 * The kvm backend's trail (src/kvm/README.md "The trail", docs/identity.md "The path"):
 * what KVM did for one op (ioctls, exits, the KVM stats that moved), read by `diffTrace`
 * from a rerun with `trail: true` and made the path of a kvm finding's identity. It must
 * be a function of the trace alone: the same on a fresh VM, on VMs reused in any order,
 * and from one run to the next, or one bug would get many ids. The trail mode must not
 * change outcomes, and campaigns still run whole traces batched (`stepMany`).
 */
import assert from "node:assert/strict";
import { diffTrace } from "../src/diff.ts";
import {
  closeIdleVms,
  KvmBackend,
  kvmCounters,
  kvmFactory,
  kvmFactoryWith,
  TRAIL_STATS,
} from "../src/kvm/mod.ts";
import { kvmPvmConfig } from "../src/trace/config.ts";
import { traceFromJson } from "../src/trace/parse.ts";
import { formatOp, formatOutcome } from "../src/trace/text.ts";
import type { Config, Op, Trace } from "../src/trace/types.ts";
import { generateRun } from "../fuzz/gen/generate.ts";
import { identify } from "../fuzz/campaign/identity.ts";

const why = kvmFactory.available();
if (why !== null) console.log(`kvm trail: skipped: ${why}`);
const usable = why === null;

const ROOT = new URL("..", import.meta.url).pathname;

/** The shipped kvm findings (their minimized traces diverge on this kernel). */
function kvmFindings(): { id: string; trace: Trace }[] {
  const out: { id: string; trace: Trace }[] = [];
  for (const e of Deno.readDirSync(`${ROOT}corpus/findings`)) {
    if (!e.name.endsWith(".json")) continue;
    const f = JSON.parse(Deno.readTextFileSync(`${ROOT}corpus/findings/${e.name}`));
    if (f.divergence?.backend !== "kvm") continue;
    out.push({ id: f.id, trace: traceFromJson(f.minimized) });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

/** Campaign traces of the kvm generator mode: runs [from, from + n) of `seed`. */
function campaignTraces(n: number, seed = 3, from = 0): Trace[] {
  const traces: Trace[] = [];
  for (let r = from; r < from + n; r++) {
    traces.push(generateRun(seed, r, { config: { fixed: kvmPvmConfig() }, kvm: true }).trace);
  }
  return traces;
}

/** Each op's outcome and trail, op by op through supports and step with `trail: true`. */
function trails(config: Config, ops: readonly Op[], reuse: boolean): string[] {
  const b = new KvmBackend(config, { reuse, trail: true });
  try {
    return ops.map((op) => {
      const skip = b.supports(op);
      if (skip !== null) return "skip";
      let out: string;
      try {
        out = formatOutcome(b.step(op));
      } catch (e) {
        out = `throws ${e instanceof Error ? e.name : e}`;
      }
      return `${out} | ${b.trail().join(",")}`;
    });
  } finally {
    b.close();
  }
}

Deno.test({
  name: "kvm trail: a kvm divergence's path is the diverging op's trail, the same on every VM",
  ignore: !usable,
  fn() {
    const findings = kvmFindings();
    assert.ok(findings.length >= 3, `only ${findings.length} kvm findings in corpus/`);
    const fresh = kvmFactoryWith({ reuse: false });
    for (const { id, trace } of findings) {
      const seen = new Set<string>();
      for (const factory of [kvmFactory, fresh, kvmFactory]) {
        const d = diffTrace(trace, factory).divergence;
        assert.ok(d !== null, `${id}: no longer diverges on this kernel`);
        assert.ok(d.path !== undefined && d.path.length > 0, `${id}: the divergence has no path`);
        assert.equal(d.history?.length, d.index, `${id}: a history entry per earlier op`);
        const sig = identify(d, "kvm", trace.config).signature;
        assert.match(sig, / \| path /, `${id}: the signature has no path: ${sig}`);
        seen.add(sig);
      }
      assert.equal(seen.size, 1, `${id}: the signature differs between VMs: ${[...seen]}`);
    }
    closeIdleVms();
  },
});

Deno.test({
  name: "kvm trail: the same on a fresh VM and on VMs reused in order and in reverse",
  ignore: !usable,
  fn() {
    // Seed 12's runs 149 and 190 follow traces that leave shadow pages and no slot: a
    // reset that does not zap them shows in their first deletion (mmu_shadow_zapped).
    const traces = [...kvmFindings().map((f) => f.trace), ...campaignTraces(60, 12, 140)];
    closeIdleVms();
    const fresh = traces.map((t) => trails(t.config, t.ops, false));
    let moved = 0;
    for (const order of [traces.map((_, i) => i), traces.map((_, i) => traces.length - 1 - i)]) {
      for (const i of order) {
        const got = trails(traces[i]!.config, traces[i]!.ops, true);
        // The trails (outcomes are compared by conformance_kvm_test.ts; some MSRs tick).
        const trail = (l: string | undefined) => l?.split(" | ")[1];
        for (let k = 0; k < traces[i]!.ops.length; k++) {
          assert.equal(
            trail(got[k]),
            trail(fresh[i]![k]),
            `trace ${i} op ${k} \`${formatOp(traces[i]!.ops[k]!)}\`: the trail on a reused VM ` +
              "differs from a fresh VM's",
          );
        }
      }
    }
    for (const t of fresh) {
      for (const line of t) {
        const trail = line.split(" | ")[1] ?? "";
        // Names only: no addresses, values or counts.
        assert.doesNotMatch(trail, /0x|\b\d+\b/, `a trail with a number: ${trail}`);
        if (trail.split(",").some((n) => TRAIL_STATS.has(n))) moved++;
      }
    }
    // The stats part is not empty everywhere (the stats fd works here).
    assert.ok(moved > 0, "no op moved any KVM stat");
    closeIdleVms();
  },
});

Deno.test({
  name: "kvm trail: recording it changes no outcome, and diffTrace still batches kvm traces",
  ignore: !usable,
  fn() {
    const traces = campaignTraces(30);
    for (const t of traces) {
      const batched = new KvmBackend(t.config, { reuse: false });
      const many = batched.stepMany(t.ops).map((r) => "skip" in r ? "skip" : formatOutcome(r));
      batched.close();
      const traced = trails(t.config, t.ops, false).map((l) => l.split(" | ")[0]);
      assert.deepEqual(traced, many);
    }
    // A whole campaign trace through diffTrace takes far fewer KVM_RUNs than ops, as
    // stepMany gives (one op per KVM_RUN would take at least one per guest op).
    const guest = (t: Trace) =>
      t.ops.filter((o) => !["slot", "dirtylog", "dirtyclear", "discard", "filter"].includes(o.op))
        .length;
    let runs = 0, guestOps = 0;
    for (const t of traces) {
      const r0 = kvmCounters.runs;
      const d = diffTrace(t, kvmFactory);
      if (d.divergence !== null) continue;
      runs += kvmCounters.runs - r0;
      guestOps += guest(t);
    }
    assert.ok(runs < guestOps * 0.8, `${runs} KVM_RUNs for ${guestOps} guest ops`);
    closeIdleVms();
  },
});
