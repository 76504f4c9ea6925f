/**
 * Tests of the core vPMU: one behaviour per test, for both vendors and versions 0/1/2,
 * and one regression test per injected PMU bug (with the bug the outcome is wrong,
 * without it right). Expected values are computed by hand from docs/kvm-facts.md section C.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { mergeConfig } from "../trace/config.ts";
import type { Outcome, PmuConfig, Vendor } from "../trace/types.ts";
import { FILTER_ALLOW, FILTER_DENY } from "../trace/types.ts";
import { bugFlags } from "./bugs.ts";
import { PMU_BUG_NAMES, PMU_BUGS, type PmuBugName } from "./inject_pmu.ts";
import { CorePmu, type CorePmuOptions } from "./pmu.ts";

// --- helpers ----------------------------------------------------------------------------

function make(
  vendor: Vendor,
  pmu: Partial<PmuConfig> = {},
  bugs: PmuBugName[] = [],
  options: CorePmuOptions = {},
): CorePmu {
  for (const b of bugs) assert.ok(PMU_BUG_NAMES.has(b), `unknown bug ${b}`);
  const amdDefaults: Partial<PmuConfig> = { version: 2, gp: 6, fixed: 0 };
  const config = mergeConfig({ vendor, pmu: vendor === "amd" ? { ...amdDefaults, ...pmu } : pmu });
  return new CorePmu(config, bugFlags(bugs), options);
}

const intel = (pmu: Partial<PmuConfig> = {}, bugs: PmuBugName[] = [], o: CorePmuOptions = {}) =>
  make("intel", pmu, bugs, o);
const amd = (pmu: Partial<PmuConfig> = {}, bugs: PmuBugName[] = []) => make("amd", pmu, bugs);

const OK: Outcome = { ok: true };
const GP: Outcome = { gp: true };
const val = (value: bigint): Outcome => ({ value });

function ev(c: CorePmu, event: number, umask: number, count: number, user = true): void {
  assert.deepEqual(c.events({ op: "events", event, umask, count, user }), OK);
}

function setFilter(
  c: CorePmu,
  action: number,
  events: bigint[],
  extra: { flags?: number; fixed?: number } = {},
): Outcome {
  return c.filter({
    op: "filter",
    action,
    flags: extra.flags ?? 0,
    fixed: extra.fixed ?? 0,
    events,
  });
}

function cov(c: CorePmu, name: string): number {
  const i = CorePmu.COVERAGE_NAMES.indexOf(name);
  assert.ok(i >= 0, `no coverage point ${name}`);
  return c.coverage[i]!;
}

// Eventsel bits (SDM 20.2.1.1; docs/kvm-facts.md C.2).
const USR = 1n << 16n;
const OS = 1n << 17n;
const INT = 1n << 20n;
const EN = 1n << 22n;
/** Intel LLC references (0x2E/0x4F): a hardware (non-emulated) event. */
const LLC = 0x4f2en;
/** Instructions retired 0xC0/0x00: an event KVM emulates (kvm_pmu_trigger_event). */
const INSN = 0xc0n;
const MASK48 = (1n << 48n) - 1n;

// Intel MSRs (docs/kvm-facts.md C.1).
const PMC0 = 0xc1;
const A_PMC0 = 0x4c1;
const EVTSEL0 = 0x186;
const FIXED0 = 0x309;
const FIXED_CTRL = 0x38d;
const STATUS = 0x38e;
const CTRL = 0x38f;
const OVF = 0x390;
// AMD MSRs.
const K7_SEL0 = 0xc0010000;
const K7_CTR0 = 0xc0010004;
const F15_CTL0 = 0xc0010200;
const AMD_STATUS = 0xc0000300;
const AMD_CTL = 0xc0000301;
const AMD_CLR = 0xc0000302;
const AMD_SET = 0xc0000303;

// --- Intel MSR rules ----------------------------------------------------------------------

Deno.test("core pmu: an Intel legacy PMC write sign-extends bit 31 then truncates to 48 bits", () => {
  // C.3: (s64)(s32)0x80000000 & (2^48 - 1) = 0xFFFF80000000.
  const c = intel();
  assert.deepEqual(c.wrmsr(PMC0, 0x80000000n), OK);
  assert.deepEqual(c.rdmsr(PMC0), val(0xffff80000000n));
  assert.deepEqual(c.rdmsr(A_PMC0), val(0xffff80000000n));
  // Legacy writes never #GP for their value: bits 63:32 are simply replaced.
  assert.deepEqual(c.wrmsr(PMC0, 0xffff_0000_0000_1234n), OK);
  assert.deepEqual(c.rdmsr(PMC0), val(0x1234n));
});

Deno.test("core pmu: a full-width write stores the value and #GPs above the counter width", () => {
  const c = intel();
  assert.deepEqual(c.wrmsr(A_PMC0, 0x80000000n), OK);
  assert.deepEqual(c.rdmsr(PMC0), val(0x80000000n));
  assert.deepEqual(c.wrmsr(A_PMC0, 1n << 48n), GP);
  assert.deepEqual(c.rdmsr(A_PMC0), val(0x80000000n));
  const narrow = intel({ gpWidth: 40 });
  assert.deepEqual(narrow.wrmsr(A_PMC0 + 1, 1n << 40n), GP);
  assert.deepEqual(narrow.wrmsr(PMC0 + 1, 0x80000000n), OK);
  assert.deepEqual(narrow.rdmsr(PMC0 + 1), val(0xff80000000n));
});

Deno.test("core pmu: the A_PMCx aliases exist only with PERF_CAPABILITIES.FW_WRITE", () => {
  const c = intel({ fullWidthWrites: false });
  assert.equal(c.rdmsr(A_PMC0), null);
  assert.deepEqual(c.wrmsr(A_PMC0, 1n), GP);
});

Deno.test("core pmu: Intel eventsel reserved bits (63:32, 21) #GP and valid values read back", () => {
  const c = intel();
  assert.deepEqual(c.wrmsr(EVTSEL0, 1n << 21n), GP);
  assert.deepEqual(c.wrmsr(EVTSEL0, 1n << 32n), GP);
  assert.deepEqual(c.wrmsr(EVTSEL0, EN | OS | USR | INT | 0xff0000c0n), OK);
  assert.deepEqual(c.rdmsr(EVTSEL0), val(EN | OS | USR | INT | 0xff0000c0n));
  assert.equal(c.rdmsr(EVTSEL0 + 4), null); // 4 GP counters: PERFEVTSEL4 is no PMU MSR
});

Deno.test("core pmu: with HLE/RTM IN_TX is legal on every counter and IN_TXCP on counter 2 only", () => {
  const c = intel({}, [], { tsx: true });
  assert.deepEqual(c.wrmsr(EVTSEL0, 1n << 32n), OK);
  assert.deepEqual(c.wrmsr(EVTSEL0, 1n << 33n), GP);
  assert.deepEqual(c.wrmsr(EVTSEL0 + 2, 1n << 33n), OK);
});

Deno.test("core pmu: fixed counter writes truncate to the fixed width without #GP", () => {
  const c = intel({ fixedWidth: 40 });
  assert.deepEqual(c.wrmsr(FIXED0 + 1, (1n << 40n) | 5n), OK);
  assert.deepEqual(c.rdmsr(FIXED0 + 1), val(5n));
  assert.equal(c.rdmsr(FIXED0 + 3), null); // only 3 fixed counters
});

Deno.test("core pmu: FIXED_CTR_CTRL accepts OS/USR/PMI per counter and #GPs on AnyThread", () => {
  const c = intel();
  assert.deepEqual(c.wrmsr(FIXED_CTRL, 0xbbbn), OK);
  assert.deepEqual(c.rdmsr(FIXED_CTRL), val(0xbbbn));
  assert.deepEqual(c.wrmsr(FIXED_CTRL, 0x4n), GP); // bit 2 = AnyThread, reserved in KVM
  assert.deepEqual(c.wrmsr(FIXED_CTRL, 0x1000n), GP); // no fixed counter 3
  const two = intel({ fixed: 2 });
  assert.deepEqual(two.wrmsr(FIXED_CTRL, 0x300n), GP);
});

Deno.test("core pmu: GLOBAL_CTRL starts with the GP enable bits and #GPs on reserved bits", () => {
  const c = intel();
  assert.deepEqual(c.rdmsr(CTRL), val(0xfn)); // de120e1d692d: GENMASK(nr_gp - 1, 0)
  assert.deepEqual(c.wrmsr(CTRL, 0x7_0000_000fn), OK);
  assert.deepEqual(c.rdmsr(CTRL), val(0x7_0000_000fn));
  assert.deepEqual(c.wrmsr(CTRL, 0x10n), GP);
  assert.deepEqual(c.wrmsr(CTRL, 1n << 35n), GP);
});

Deno.test("core pmu: GLOBAL_STATUS is read-only and GLOBAL_OVF_CTRL clears it, #GP on reserved", () => {
  const c = intel();
  assert.deepEqual(c.wrmsr(STATUS, 1n), GP);
  assert.deepEqual(c.wrmsr(A_PMC0, MASK48), OK);
  assert.deepEqual(c.wrmsr(EVTSEL0, EN | USR | LLC), OK);
  ev(c, 0x2e, 0x4f, 1);
  assert.deepEqual(c.rdmsr(STATUS), val(1n));
  assert.deepEqual(c.wrmsr(OVF, 0x10n), GP);
  assert.deepEqual(c.wrmsr(OVF, 0xc000_0000_0000_0000n), OK); // 62 and 63 are not reserved
  assert.deepEqual(c.rdmsr(STATUS), val(1n));
  assert.deepEqual(c.wrmsr(OVF, 1n), OK);
  assert.deepEqual(c.rdmsr(STATUS), val(0n));
  assert.deepEqual(c.rdmsr(OVF), val(0n));
});

Deno.test("core pmu: Intel version 1 has GP counters only and no global MSRs", () => {
  const c = intel({ version: 1, fixed: 0 });
  for (const msr of [STATUS, CTRL, OVF, FIXED_CTRL, FIXED0]) assert.equal(c.rdmsr(msr), null);
  assert.deepEqual(c.wrmsr(CTRL, 1n), GP);
  // Without GLOBAL_CTRL every counter is globally enabled (98defd2e1780).
  assert.deepEqual(c.wrmsr(EVTSEL0, EN | USR | LLC), OK);
  ev(c, 0x2e, 0x4f, 5);
  assert.deepEqual(c.rdmsr(PMC0), val(5n));
});

Deno.test("core pmu: version 0 keeps the K7 and P6 MSRs readable as 0 and ignores writes", () => {
  for (const vendor of ["intel", "amd"] as const) {
    const c = make(vendor, { version: 0, gp: 0, fixed: 0 });
    for (const msr of [0xc1, 0xc2, 0x186, 0x187, K7_SEL0, K7_CTR0 + 3]) {
      assert.deepEqual(c.wrmsr(msr, 0x1234n), OK, `${vendor} ${msr.toString(16)}`);
      assert.deepEqual(c.rdmsr(msr), val(0n), `${vendor} ${msr.toString(16)}`);
    }
    for (const msr of [0xc3, 0x188, CTRL, FIXED0, A_PMC0, F15_CTL0, AMD_CTL]) {
      assert.equal(c.rdmsr(msr), null, `${vendor} ${msr.toString(16)}`);
      assert.deepEqual(c.wrmsr(msr, 0n), GP, `${vendor} ${msr.toString(16)}`);
    }
    assert.deepEqual(c.rdpmc(0, false, false), GP);
  }
});

Deno.test("core pmu: the other vendor's legacy MSRs fall back to read-0, write-ignored", () => {
  const i = intel();
  assert.deepEqual(i.wrmsr(K7_SEL0, EN), OK);
  assert.deepEqual(i.rdmsr(K7_SEL0), val(0n));
  const one = intel({ gp: 1 });
  assert.deepEqual(one.wrmsr(0xc2, 5n), OK);
  assert.deepEqual(one.rdmsr(0xc2), val(0n));
  const a = amd();
  assert.deepEqual(a.wrmsr(0x186, EN), OK);
  assert.deepEqual(a.rdmsr(0xc1), val(0n));
});

// --- AMD MSR rules ----------------------------------------------------------------------

Deno.test("core pmu: AMD eventsel writes drop reserved bits silently and keep event bits 35:32", () => {
  const c = amd({ version: 1, gp: 4 });
  // bit 40 HostOnly(=GuestOnly 40), 21, 19 and 63:36 reserved; 35:32 are event select.
  const v = (1n << 40n) | (1n << 21n) | (1n << 19n) | (0xfn << 32n) | EN | USR | 0xc2n;
  assert.deepEqual(c.wrmsr(K7_SEL0, v), OK);
  assert.deepEqual(c.rdmsr(K7_SEL0), val((0xfn << 32n) | EN | USR | 0xc2n));
});

Deno.test("core pmu: AMD counters are 48 bits, writes truncate without #GP", () => {
  const c = amd({ version: 1, gp: 4 });
  assert.deepEqual(c.wrmsr(K7_CTR0 + 1, 0xffff_0000_0000_0007n), OK);
  assert.deepEqual(c.rdmsr(K7_CTR0 + 1), val(7n));
});

Deno.test("core pmu: AMD F15H MSRs exist with 6 counters and alias the K7 ones", () => {
  const four = amd({ version: 1, gp: 4 });
  assert.equal(four.rdmsr(F15_CTL0), null);
  const six = amd({ version: 1, gp: 6 });
  assert.deepEqual(six.wrmsr(F15_CTL0, EN | 0xc0n), OK);
  assert.deepEqual(six.rdmsr(K7_SEL0), val(EN | 0xc0n));
  assert.deepEqual(six.wrmsr(F15_CTL0 + 11, 42n), OK); // CTR5
  assert.deepEqual(six.rdmsr(F15_CTL0 + 11), val(42n));
  assert.equal(six.rdmsr(F15_CTL0 + 12), null);
  assert.equal(six.rdmsr(AMD_CTL), null); // PerfMonV2 globals need version 2
});

Deno.test("core pmu: AMD PerfMonV2 global MSRs: CTL masks, STATUS ignores writes, CLR clears", () => {
  const c = amd({ version: 2, gp: 6 });
  assert.deepEqual(c.rdmsr(AMD_CTL), val(0x3fn));
  assert.deepEqual(c.wrmsr(AMD_CTL, 0xffff_ffff_ffff_ffffn), OK);
  assert.deepEqual(c.rdmsr(AMD_CTL), val(0x3fn));
  assert.deepEqual(c.wrmsr(K7_CTR0, MASK48), OK);
  assert.deepEqual(c.wrmsr(K7_SEL0, EN | USR | 0x29n), OK);
  ev(c, 0x29, 0, 1);
  assert.deepEqual(c.rdmsr(AMD_STATUS), val(1n));
  assert.deepEqual(c.wrmsr(AMD_STATUS, 0n), OK); // ignored
  assert.deepEqual(c.rdmsr(AMD_STATUS), val(1n));
  assert.deepEqual(c.wrmsr(AMD_CLR, 0xffn), OK);
  assert.deepEqual(c.rdmsr(AMD_STATUS), val(0n));
  assert.deepEqual(c.rdmsr(AMD_CLR), val(0n));
  assert.equal(c.rdmsr(AMD_SET), null); // STATUS_SET is emulated only since 2025
});

Deno.test("core pmu: an AMD PerfMonV2 guest reaches Intel's global MSRs (v6.10 checks only version)", () => {
  // kvm_pmu_is_valid_msr() accepts 0x38E-0x390 whenever kvm_pmu_has_perf_global_ctrl().
  const c = amd({ version: 2, gp: 4 });
  assert.deepEqual(c.rdmsr(CTRL), val(0xfn));
  assert.deepEqual(c.wrmsr(CTRL, 0x10n), GP); // the Intel path #GPs on reserved bits
  assert.deepEqual(c.wrmsr(STATUS, 0n), GP);
  assert.equal(amd({ version: 1, gp: 4 }).rdmsr(CTRL), null);
});

// --- counting ------------------------------------------------------------------------------

Deno.test("core pmu: a GP counter counts its event+umask at the CPLs its USR/OS bits select", () => {
  const c = intel();
  assert.deepEqual(c.wrmsr(EVTSEL0, EN | USR | LLC), OK);
  ev(c, 0x2e, 0x4f, 5, true);
  ev(c, 0x2e, 0x4f, 100, false); // CPL 0, OS clear
  ev(c, 0x2e, 0x41, 100, true); // other umask
  assert.deepEqual(c.rdmsr(PMC0), val(5n));
  assert.deepEqual(c.wrmsr(EVTSEL0, EN | OS | LLC | 0xff000000n), OK); // CMASK is ignored
  ev(c, 0x2e, 0x4f, 3, false);
  assert.deepEqual(c.rdmsr(PMC0), val(8n));
});

Deno.test("core pmu: clearing EN or the GLOBAL_CTRL bit stops a counter and keeps its value", () => {
  const c = intel();
  assert.deepEqual(c.wrmsr(EVTSEL0, EN | USR | LLC), OK);
  ev(c, 0x2e, 0x4f, 2);
  assert.deepEqual(c.wrmsr(CTRL, 0xen), OK);
  ev(c, 0x2e, 0x4f, 50);
  assert.deepEqual(c.rdmsr(PMC0), val(2n));
  assert.deepEqual(c.wrmsr(CTRL, 0xfn), OK);
  ev(c, 0x2e, 0x4f, 1);
  assert.deepEqual(c.wrmsr(EVTSEL0, USR | LLC), OK);
  ev(c, 0x2e, 0x4f, 50);
  assert.deepEqual(c.rdmsr(PMC0), val(3n));
});

Deno.test("core pmu: re-enabling the same eventsel resumes the cached perf event", () => {
  const c = intel();
  assert.deepEqual(c.wrmsr(EVTSEL0, EN | USR | LLC), OK);
  const created = cov(c, "reprogramCreate");
  assert.deepEqual(c.wrmsr(CTRL, 0xen), OK);
  assert.deepEqual(c.wrmsr(CTRL, 0xfn), OK);
  assert.equal(cov(c, "reprogramCreate"), created); // current_config matched
  assert.equal(cov(c, "reprogramResume"), 1);
  ev(c, 0x2e, 0x4f, 4);
  assert.deepEqual(c.rdmsr(PMC0), val(4n));
});

Deno.test("core pmu: emulated instructions retired count on GP and fixed counter 0 by CPL", () => {
  const c = intel();
  assert.deepEqual(c.wrmsr(EVTSEL0, EN | OS | INSN), OK);
  assert.deepEqual(c.wrmsr(FIXED_CTRL, 0x2n), OK); // fixed 0: USR only
  assert.deepEqual(c.wrmsr(CTRL, 0x1_0000_000fn), OK);
  ev(c, 0xc0, 0, 7, false);
  ev(c, 0xc0, 0, 3, true);
  assert.deepEqual(c.rdmsr(PMC0), val(7n));
  assert.deepEqual(c.rdmsr(FIXED0), val(3n));
  assert.ok(cov(c, "triggerEvent") >= 2);
});

Deno.test("core pmu: fixed counters 1 and 2 count cycles (0x3C) and ref cycles (0x00/0x03)", () => {
  const c = intel();
  assert.deepEqual(c.wrmsr(FIXED_CTRL, 0x330n), OK);
  ev(c, 0x3c, 0, 9);
  assert.deepEqual(c.rdmsr(FIXED0 + 1), val(0n)); // GLOBAL_CTRL bit 33 still clear
  assert.deepEqual(c.wrmsr(CTRL, 0x6_0000_000fn), OK);
  ev(c, 0x3c, 0, 9);
  ev(c, 0x00, 0x03, 4);
  assert.deepEqual(c.rdmsr(FIXED0 + 1), val(9n));
  assert.deepEqual(c.rdmsr(FIXED0 + 2), val(4n));
});

Deno.test("core pmu: AMD counts 12-bit event selects and its own branches-retired encoding", () => {
  const c = amd({ version: 1, gp: 4 });
  assert.deepEqual(c.wrmsr(K7_SEL0, (1n << 32n) | EN | USR | 0xc2n), OK); // event 0x1C2
  assert.deepEqual(c.wrmsr(K7_SEL0 + 1, EN | USR | 0xc2n), OK); // event 0xC2 (emulated)
  ev(c, 0x1c2, 0, 3);
  ev(c, 0xc2, 0, 5);
  assert.deepEqual(c.rdmsr(K7_CTR0), val(3n));
  assert.deepEqual(c.rdmsr(K7_CTR0 + 1), val(5n));
});

Deno.test("core pmu: an overflow sets GLOBAL_STATUS and, with INT, delivers one PMI", () => {
  for (const [event, sel] of [[0x2e, LLC], [0xc0, INSN]] as const) {
    const c = intel();
    const umask = Number(sel >> 8n);
    assert.deepEqual(c.wrmsr(A_PMC0, MASK48 - 1n), OK);
    assert.deepEqual(c.wrmsr(EVTSEL0, EN | USR | INT | sel), OK);
    ev(c, event, umask, 1);
    assert.deepEqual(c.rdmsr(STATUS), val(0n), `event ${event}`);
    ev(c, event, umask, 3);
    assert.deepEqual(c.rdmsr(STATUS), val(1n), `event ${event}`);
    assert.deepEqual(c.rdmsr(PMC0), val(2n), `event ${event}`);
    assert.deepEqual(c.pmis(), { count: 1 });
    assert.deepEqual(c.pmis(), { count: 0 });
  }
});

Deno.test("core pmu: an overflow without INT sets GLOBAL_STATUS but delivers no PMI", () => {
  const c = intel();
  assert.deepEqual(c.wrmsr(A_PMC0 + 1, MASK48), OK);
  assert.deepEqual(c.wrmsr(EVTSEL0 + 1, EN | USR | LLC), OK);
  ev(c, 0x2e, 0x4f, 1);
  assert.deepEqual(c.rdmsr(STATUS), val(2n));
  assert.deepEqual(c.pmis(), { count: 0 });
});

Deno.test("core pmu: overflows of several counters in one events op coalesce into one PMI", () => {
  const c = intel();
  assert.deepEqual(c.wrmsr(FIXED_CTRL, 0xan), OK); // fixed 0: USR + PMI
  assert.deepEqual(c.wrmsr(CTRL, 0x1_0000_000fn), OK);
  assert.deepEqual(c.wrmsr(FIXED0, MASK48), OK);
  assert.deepEqual(c.wrmsr(A_PMC0, MASK48), OK);
  assert.deepEqual(c.wrmsr(EVTSEL0, EN | USR | INT | INSN), OK);
  ev(c, 0xc0, 0, 2);
  assert.deepEqual(c.rdmsr(STATUS), val(0x1_0000_0001n));
  assert.deepEqual(c.pmis(), { count: 1 });
});

Deno.test("core pmu: a counter write restarts the sample period from pmc->counter (v6.10)", () => {
  // pmc_write_counter sets counter = value - perf count and pmc_update_sample_period
  // derives the period from pmc->counter, so a write while the perf event has counted
  // 10 events delays the overflow by those 10 (KVM behaviour, not the architecture's).
  const c = intel();
  assert.deepEqual(c.wrmsr(EVTSEL0, EN | USR | INT | LLC), OK);
  ev(c, 0x2e, 0x4f, 10);
  assert.deepEqual(c.wrmsr(A_PMC0, MASK48 - 4n), OK);
  ev(c, 0x2e, 0x4f, 5);
  assert.deepEqual(c.rdmsr(PMC0), val(0n));
  assert.deepEqual(c.rdmsr(STATUS), val(0n));
  ev(c, 0x2e, 0x4f, 10);
  assert.deepEqual(c.rdmsr(STATUS), val(1n));
  assert.deepEqual(c.pmis(), { count: 1 });
});

// --- RDPMC ------------------------------------------------------------------------------

Deno.test("core pmu: Intel RDPMC decodes ECX[31:16] as a type value and checks the index", () => {
  const c = intel();
  assert.deepEqual(c.wrmsr(A_PMC0 + 3, 0x1234_5678_9an), OK);
  assert.deepEqual(c.wrmsr(FIXED0 + 2, 77n), OK);
  assert.deepEqual(c.rdpmc(3, false, false), val(0x1234_5678_9an));
  assert.deepEqual(c.rdpmc(0x4000_0002, false, false), val(77n));
  assert.deepEqual(c.rdpmc(4, false, false), GP);
  assert.deepEqual(c.rdpmc(0x4000_0003, false, false), GP);
  assert.deepEqual(c.rdpmc(0x8000_0003, false, false), GP); // fast bit: #GP (5728a4a0ea79)
  assert.deepEqual(c.rdpmc(0x0001_0003, false, false), GP); // unknown type
  assert.deepEqual(c.rdpmc(0xc000_0002, false, false), GP);
  assert.deepEqual(intel({ version: 1, fixed: 0 }).rdpmc(0x4000_0000, false, false), GP);
});

Deno.test("core pmu: RDPMC at CPL 3 needs CR4.PCE", () => {
  for (const c of [intel(), amd()]) {
    assert.deepEqual(c.rdpmc(0, true, false), GP);
    assert.deepEqual(c.rdpmc(0, true, true), val(0n));
    assert.deepEqual(c.rdpmc(0, false, false), val(0n));
  }
});

Deno.test("core pmu: AMD RDPMC takes ECX as the counter index, bits 31:30 included", () => {
  const c = amd({ version: 2, gp: 6 });
  assert.deepEqual(c.wrmsr(F15_CTL0 + 11, 9n), OK);
  assert.deepEqual(c.rdpmc(5, false, false), val(9n));
  assert.deepEqual(c.rdpmc(6, false, false), GP);
  assert.deepEqual(c.rdpmc(0x4000_0005, false, false), GP);
  assert.deepEqual(c.rdpmc(0x8000_0005, false, false), GP);
});

// --- the event filter -------------------------------------------------------------------

Deno.test("core pmu: the filter ioctl validates action, flags, size and masked entries", () => {
  const c = intel();
  assert.deepEqual(setFilter(c, 2, []), { errno: "EINVAL" });
  assert.deepEqual(setFilter(c, FILTER_DENY, [], { flags: 2 }), { errno: "EINVAL" });
  assert.deepEqual(setFilter(c, FILTER_DENY, new Array(301).fill(0xc0n)), { errno: "E2BIG" });
  assert.deepEqual(setFilter(c, FILTER_DENY, new Array(300).fill(0xc0n)), { errno: 0 });
  // Masked entries: only event select, match, exclude and mask; Intel has no bits 35:32.
  assert.deepEqual(setFilter(c, FILTER_DENY, [1n << 16n], { flags: 1 }), { errno: "EINVAL" });
  assert.deepEqual(setFilter(c, FILTER_DENY, [1n << 32n], { flags: 1 }), { errno: "EINVAL" });
  assert.deepEqual(setFilter(amd(), FILTER_DENY, [1n << 32n], { flags: 1 }), { errno: 0 });
  // Without the masked flag an all-ones entry is accepted (and dropped).
  assert.deepEqual(setFilter(c, FILTER_DENY, [0xffff_ffff_ffff_ffffn]), { errno: 0 });
  // Undefined fixed_counter_bitmap bits are accepted.
  assert.deepEqual(setFilter(c, FILTER_ALLOW, [], { fixed: 0xffff_fff0 }), { errno: 0 });
});

Deno.test("core pmu: a deny list stops a GP counter from the next reprogram on", () => {
  const c = intel();
  assert.deepEqual(c.wrmsr(EVTSEL0, EN | USR | LLC), OK);
  ev(c, 0x2e, 0x4f, 3);
  assert.deepEqual(setFilter(c, FILTER_DENY, [LLC]), { errno: 0 });
  ev(c, 0x2e, 0x4f, 10);
  assert.deepEqual(c.rdmsr(PMC0), val(3n));
  assert.deepEqual(setFilter(c, FILTER_DENY, [0x412en]), { errno: 0 }); // other umask
  ev(c, 0x2e, 0x4f, 10);
  assert.deepEqual(c.rdmsr(PMC0), val(13n));
});

Deno.test("core pmu: a new filter queues every counter for reprogramming", () => {
  const c = intel();
  const before = cov(c, "reprogram");
  assert.deepEqual(setFilter(c, FILTER_ALLOW, []), { errno: 0 });
  assert.equal(cov(c, "reprogram"), before); // deferred to the next VM entry
  assert.deepEqual(c.rdmsr(PMC0), val(0n));
  assert.equal(cov(c, "reprogram"), before + 4 + 3);
});

Deno.test("core pmu: an allow list counts only listed events, legacy entries with stray bits dropped", () => {
  const c = intel();
  assert.deepEqual(c.wrmsr(EVTSEL0, EN | USR | LLC), OK);
  assert.deepEqual(c.wrmsr(EVTSEL0 + 1, EN | USR | 0x412en), OK);
  assert.deepEqual(setFilter(c, FILTER_ALLOW, [LLC, 0x412en | (1n << 16n)]), { errno: 0 });
  ev(c, 0x2e, 0x4f, 4);
  ev(c, 0x2e, 0x41, 6);
  assert.deepEqual(c.rdmsr(PMC0), val(4n));
  assert.deepEqual(c.rdmsr(PMC0 + 1), val(0n));
});

Deno.test("core pmu: masked filter entries match umask under mask, excludes win over includes", () => {
  // MEM_INST_RETIRED 0xD0: include (mask 0x80, match 0x80) = all loads/stores with bit 7,
  // exclude umask 0x82 exactly (mask 0xff, match 0x82).
  const include = (0x80n << 56n) | (0x80n << 8n) | 0xd0n;
  const exclude = (0xffn << 56n) | (1n << 55n) | (0x82n << 8n) | 0xd0n;
  const c = intel();
  assert.deepEqual(c.wrmsr(EVTSEL0, EN | USR | 0x81d0n), OK);
  assert.deepEqual(c.wrmsr(EVTSEL0 + 1, EN | USR | 0x82d0n), OK);
  assert.deepEqual(c.wrmsr(EVTSEL0 + 2, EN | USR | 0x01d0n), OK);
  assert.deepEqual(setFilter(c, FILTER_ALLOW, [exclude, include], { flags: 1 }), { errno: 0 });
  ev(c, 0xd0, 0x81, 1);
  ev(c, 0xd0, 0x82, 1);
  ev(c, 0xd0, 0x01, 1);
  assert.deepEqual(c.rdmsr(PMC0), val(1n));
  assert.deepEqual(c.rdmsr(PMC0 + 1), val(0n));
  assert.deepEqual(c.rdmsr(PMC0 + 2), val(0n));
  assert.deepEqual(c.audit(), []);
});

Deno.test("core pmu: fixed counters follow the fixed bitmap, not the event list", () => {
  for (
    const [action, fixed, counts] of [
      [FILTER_DENY, 0x2, false],
      [FILTER_DENY, 0x0, true],
      [FILTER_ALLOW, 0x2, true],
      [FILTER_ALLOW, 0x0, false],
    ] as const
  ) {
    const c = intel();
    assert.deepEqual(c.wrmsr(FIXED_CTRL, 0x20n), OK);
    assert.deepEqual(c.wrmsr(CTRL, 0x2_0000_000fn), OK);
    // The list names 0x3C in both cases: the bitmap has priority.
    assert.deepEqual(setFilter(c, action, [0x3cn], { fixed }), { errno: 0 });
    ev(c, 0x3c, 0, 5);
    assert.deepEqual(c.rdmsr(FIXED0 + 1), val(counts ? 5n : 0n), `action ${action} fixed ${fixed}`);
  }
});

Deno.test("core pmu: an AMD deny of event 0x1C2 does not block 0xC2", () => {
  const c = amd({ version: 1, gp: 4 });
  assert.deepEqual(c.wrmsr(K7_SEL0, EN | USR | 0xc2n), OK);
  assert.deepEqual(c.wrmsr(K7_SEL0 + 1, (1n << 32n) | EN | USR | 0xc2n), OK);
  assert.deepEqual(setFilter(c, FILTER_DENY, [(1n << 32n) | 0xc2n]), { errno: 0 });
  ev(c, 0xc2, 0, 4);
  ev(c, 0x1c2, 0, 4);
  assert.deepEqual(c.rdmsr(K7_CTR0), val(4n));
  assert.deepEqual(c.rdmsr(K7_CTR0 + 1), val(0n));
});

Deno.test("core pmu: a denied emulated event neither counts nor overflows", () => {
  const c = intel();
  assert.deepEqual(c.wrmsr(A_PMC0, MASK48), OK);
  assert.deepEqual(c.wrmsr(EVTSEL0, EN | USR | INT | INSN), OK);
  assert.deepEqual(setFilter(c, FILTER_DENY, [INSN]), { errno: 0 });
  ev(c, 0xc0, 0, 3);
  assert.deepEqual(c.rdmsr(PMC0), val(MASK48));
  assert.deepEqual(c.rdmsr(STATUS), val(0n));
  assert.deepEqual(c.pmis(), { count: 0 });
});

// --- injected bugs: one regression each -------------------------------------------------

/** Runs `scenario` on a fresh core without and with `bug`: [correct, buggy] outcomes. */
function both<T>(bug: PmuBugName, scenario: (bugs: PmuBugName[]) => T): [T, T] {
  return [scenario([]), scenario([bug])];
}

Deno.test("core pmu bug filter-skip-fixed: a fixed counter denied by the bitmap counts", () => {
  const [good, bad] = both("filter-skip-fixed", (bugs) => {
    const c = intel({}, bugs);
    c.wrmsr(FIXED_CTRL, 0x30n);
    c.wrmsr(CTRL, 0x2_0000_000fn);
    setFilter(c, FILTER_DENY, [], { fixed: 0x2 });
    ev(c, 0x3c, 0, 7);
    return c.rdmsr(FIXED0 + 1);
  });
  assert.deepEqual(good, val(0n)); // C.7: DENY with the bit set => disallowed
  assert.deepEqual(bad, val(7n));
});

Deno.test("core pmu bug filter-mask-in-tx: IN_TXCP makes a denied event bypass the deny list", () => {
  // IN_TX events count only inside transactions (none here); IN_TXCP (counter 2 only)
  // counts everything, so it shows a lookup that compares bits 35:32 too.
  const [good, bad] = both("filter-mask-in-tx", (bugs) => {
    const c = intel({}, bugs, { tsx: true });
    setFilter(c, FILTER_DENY, [LLC]);
    assert.deepEqual(c.wrmsr(EVTSEL0 + 2, (1n << 33n) | EN | USR | LLC), OK);
    ev(c, 0x2e, 0x4f, 3);
    return c.rdmsr(PMC0 + 2);
  });
  assert.deepEqual(good, val(0n)); // C.7: only event select + umask are looked up
  assert.deepEqual(bad, val(3n));
});

Deno.test("core pmu bug trigger-event-no-filter: emulated instructions bump a denied counter", () => {
  const [good, bad] = both("trigger-event-no-filter", (bugs) => {
    const c = intel({}, bugs);
    setFilter(c, FILTER_DENY, [INSN]);
    c.wrmsr(EVTSEL0, EN | USR | INSN);
    ev(c, 0xc0, 0, 4);
    return c.rdmsr(PMC0);
  });
  assert.deepEqual(good, val(0n)); // C.5: dfdeda67ea2d checks the filter on emulated events
  assert.deepEqual(bad, val(4n));
});

Deno.test("core pmu bug write-no-truncate: a negative legacy write makes a spurious overflow", () => {
  const [good, bad] = both("write-no-truncate", (bugs) => {
    const c = intel({}, bugs);
    c.wrmsr(EVTSEL0, EN | USR | INT | INSN);
    c.wrmsr(PMC0, 0x80000000n);
    ev(c, 0xc0, 0, 1);
    return [c.rdmsr(PMC0), c.rdmsr(STATUS), c.pmis()];
  });
  // 0xFFFF80000000 + 1 does not wrap 48 bits: no overflow, no PMI.
  assert.deepEqual(good, [val(0xffff80000001n), val(0n), { count: 0 }]);
  assert.deepEqual(bad, [val(0xffff80000001n), val(1n), { count: 1 }]);
});

Deno.test("core pmu bug rdpmc-fast-intel: ECX bit 31 reads the low 32 bits", () => {
  const [good, bad] = both("rdpmc-fast-intel", (bugs) => {
    const c = intel({}, bugs);
    c.wrmsr(A_PMC0, 0x1_2345_6789n);
    return c.rdpmc(0x8000_0000, false, false);
  });
  assert.deepEqual(good, GP); // C.6: bit 31 #GPs on architectural PMUs
  assert.deepEqual(bad, val(0x2345_6789n));
});

Deno.test("core pmu bug rdpmc-type-flag: ECX 0xC0000000 reads fixed counter 0", () => {
  const [good, bad] = both("rdpmc-type-flag", (bugs) => {
    const c = intel({}, bugs);
    c.wrmsr(FIXED0, 0x1_0000_0005n);
    return c.rdpmc(0xc000_0000, false, false);
  });
  assert.deepEqual(good, GP); // C.6: type 0xC000 is neither 0 nor 0x4000
  assert.deepEqual(bad, val(0x1_0000_0005n));
});

Deno.test("core pmu bug rdpmc-unknown-type: an unknown ECX type reads a GP counter", () => {
  const [good, bad] = both("rdpmc-unknown-type", (bugs) => {
    const c = intel({}, bugs);
    c.wrmsr(A_PMC0, 12n);
    return c.rdpmc(0x0001_0000, false, false);
  });
  assert.deepEqual(good, GP);
  assert.deepEqual(bad, val(12n));
});

Deno.test("core pmu bug rdpmc-fast-amd: AMD ECX bit 31 reads the low 32 bits", () => {
  const [good, bad] = both("rdpmc-fast-amd", (bugs) => {
    const c = amd({ version: 1, gp: 4 }, bugs);
    c.wrmsr(K7_CTR0, 0x1_0000_0007n);
    return c.rdpmc(0x8000_0000, false, false);
  });
  assert.deepEqual(good, GP); // C.6: ECX must be < nr_gp on AMD
  assert.deepEqual(bad, val(7n));
});

Deno.test("core pmu bug rdpmc-amd-ignore-31-30: AMD ECX 0x40000000 reads counter 0", () => {
  const [good, bad] = both("rdpmc-amd-ignore-31-30", (bugs) => {
    const c = amd({ version: 1, gp: 4 }, bugs);
    c.wrmsr(K7_CTR0, 0x1_0000_0007n);
    return c.rdpmc(0x4000_0000, false, false);
  });
  assert.deepEqual(good, GP);
  assert.deepEqual(bad, val(0x1_0000_0007n));
});

Deno.test("core pmu bug rdpmc-index-off-by-one: the index equal to the count reads past the end", () => {
  const [good, bad] = both("rdpmc-index-off-by-one", (bugs) => {
    const c = intel({ gp: 8 }, bugs);
    c.wrmsr(FIXED0, 9n);
    return c.rdpmc(8, false, false);
  });
  assert.deepEqual(good, GP);
  assert.deepEqual(bad, val(9n)); // gp_counters[8] is fixed_counters[0] in the struct
  const [goodAmd, badAmd] = both("rdpmc-index-off-by-one", (bugs) => {
    return amd({ version: 1, gp: 4 }, bugs).rdpmc(4, false, false);
  });
  assert.deepEqual(goodAmd, GP);
  assert.deepEqual(badAmd, val(0n));
});

Deno.test("core pmu bug legacy-no-sign-extend: a legacy write of 0x80000000 reads back unextended", () => {
  const [good, bad] = both("legacy-no-sign-extend", (bugs) => {
    const c = intel({}, bugs);
    c.wrmsr(PMC0, 0x80000000n);
    return c.rdmsr(PMC0);
  });
  assert.deepEqual(good, val(0xffff80000000n)); // C.3 / D.15
  assert.deepEqual(bad, val(0x80000000n));
});

Deno.test("core pmu bug fullwidth-sign-extend: a full-width write of 0x80000000 is sign-extended", () => {
  const [good, bad] = both("fullwidth-sign-extend", (bugs) => {
    const c = intel({}, bugs);
    c.wrmsr(A_PMC0, 0x80000000n);
    return c.rdmsr(A_PMC0);
  });
  assert.deepEqual(good, val(0x80000000n));
  assert.deepEqual(bad, val(0xffff80000000n));
});

Deno.test("core pmu bug fullwidth-no-gp: a full-width write above the width succeeds", () => {
  const [good, bad] = both("fullwidth-no-gp", (bugs) => {
    const c = intel({}, bugs);
    return [c.wrmsr(A_PMC0, (1n << 48n) | 3n), c.rdmsr(A_PMC0)];
  });
  assert.deepEqual(good, [GP, val(0n)]);
  assert.deepEqual(bad, [OK, val(3n)]);
});

Deno.test("core pmu bug v1-global-ctrl-check: a version-1 counter never counts", () => {
  const [good, bad] = both("v1-global-ctrl-check", (bugs) => {
    const c = intel({ version: 1, fixed: 0 }, bugs);
    c.wrmsr(EVTSEL0, EN | USR | LLC);
    ev(c, 0x2e, 0x4f, 5);
    return c.rdmsr(PMC0);
  });
  assert.deepEqual(good, val(5n)); // C.4: v1 counters are always globally enabled
  assert.deepEqual(bad, val(0n));
});

Deno.test("core pmu: every catalogued bug has a unique name, a commit and a bug test here", () => {
  // The names come from the "core pmu bug <name>: ..." tests of this file (their
  // regression traces are corpus/regressions/inject/<name>.json, test/inject_*).
  const source = Deno.readTextFileSync(new URL(import.meta.url));
  const tested = [...source.matchAll(/Deno\.test\("core pmu bug ([a-z0-9-]+):/g)].map((m) => m[1]!);
  const names = PMU_BUGS.map((b) => b.name);
  assert.equal(new Set(names).size, names.length, "unique names");
  assert.deepEqual([...new Set(tested)].sort(), [...names].sort());
  for (const b of PMU_BUGS) assert.match(b.commit, /^([0-9a-f]{12}|derived)$/, b.name);
});

// --- totality and invariants under random ops -----------------------------------------

const PMU_MSRS = [
  0xc1,
  0xc2,
  0xc3,
  0xc4,
  0x186,
  0x187,
  0x188,
  0x189,
  0x4c1,
  0x4c2,
  0x309,
  0x30a,
  0x30b,
  0x38d,
  0x38e,
  0x38f,
  0x390,
  K7_SEL0,
  K7_SEL0 + 1,
  K7_CTR0,
  K7_CTR0 + 1,
  F15_CTL0,
  F15_CTL0 + 1,
  F15_CTL0 + 11,
  AMD_STATUS,
  AMD_CTL,
  AMD_CLR,
  AMD_SET,
];
const VALUES = [0n, 1n, MASK48, MASK48 - 2n, 0x80000000n, EN | USR | INT | LLC, EN | OS | INSN];

const opArb = fc.oneof(
  fc.record({
    kind: fc.constant("wrmsr" as const),
    msr: fc.constantFrom(...PMU_MSRS),
    value: fc.oneof(fc.constantFrom(...VALUES), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n })),
  }),
  fc.record({ kind: fc.constant("rdmsr" as const), msr: fc.constantFrom(...PMU_MSRS) }),
  fc.record({
    kind: fc.constant("events" as const),
    event: fc.constantFrom(0xc0, 0xc4, 0xc2, 0x2e, 0x3c, 0x00, 0x1c2),
    umask: fc.constantFrom(0, 3, 0x4f),
    count: fc.integer({ min: 0, max: 0xffff_ffff }),
    user: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant("filter" as const),
    action: fc.integer({ min: 0, max: 2 }),
    flags: fc.integer({ min: 0, max: 1 }),
    fixed: fc.integer({ min: 0, max: 7 }),
    events: fc.array(fc.constantFrom(LLC, INSN, 0x3cn, (1n << 55n) | 0xc0n), { maxLength: 4 }),
  }),
  fc.record({ kind: fc.constant("rdpmc" as const), ecx: fc.constantFrom(0, 1, 5, 0x4000_0001) }),
);

Deno.test("core pmu: random op sequences keep every invariant on both vendors and versions", () => {
  const configs: [Vendor, Partial<PmuConfig>][] = [
    ["intel", {}],
    ["intel", { version: 1, fixed: 0, gpWidth: 32 }],
    ["intel", { version: 0, gp: 0, fixed: 0 }],
    ["amd", { version: 2, gp: 6 }],
    ["amd", { version: 1, gp: 4 }],
  ];
  fc.assert(
    fc.property(
      fc.constantFrom(...configs),
      fc.array(opArb, { maxLength: 30 }),
      ([vendor, pmu], ops) => {
        const c = make(vendor, pmu);
        for (const op of ops) {
          switch (op.kind) {
            case "wrmsr":
              c.wrmsr(op.msr, op.value);
              break;
            case "rdmsr":
              c.rdmsr(op.msr);
              break;
            case "events":
              c.events({ op: "events", ...op });
              break;
            case "filter":
              c.filter({ op: "filter", ...op });
              break;
            case "rdpmc":
              c.rdpmc(op.ecx, false, false);
              break;
          }
          c.rdmsr(0xc1); // a VM entry, so the post-entry invariants apply
          assert.deepEqual(c.audit(), []);
        }
      },
    ),
    { numRuns: 200, seed: 0x5eed },
  );
});
