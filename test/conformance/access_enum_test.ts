/**
 * @module
 * Tests of the access enumeration itself: the legality rules and counts of the
 * enumerator, hand-computed expected outcomes from the SDM / docs/kvm-facts.md rules, and the
 * runner's detection of a wrong backend.
 */
import assert from "node:assert/strict";
import type { Backend, BackendFactory } from "../../src/backend.ts";
import type { Op, Outcome } from "../../src/trace/types.ts";
import {
  AC,
  type AccessCombo,
  type AcFlag,
  comboEntries,
  comboTrace,
  countAccessCases,
  DATA_VALUE,
  enumerateAccessCases,
  expectedOutcome,
  isLegal,
  runAccessEnumeration,
  spaceConfig,
  type SpaceName,
  spaceOf,
  SPACES,
  TEST_GVA,
} from "./access_enum.ts";

function combo(space: SpaceName, ...names: AcFlag[]): AccessCombo {
  let flags = 0;
  for (const name of names) flags |= AC[name];
  return { space, flags };
}

/** The usual page: present, writable, user, accessed at both levels. */
const PAGE: AcFlag[] = ["PDE_P", "PDE_W", "PDE_U", "PDE_A", "PTE_P", "PTE_W", "PTE_U", "PTE_A"];

function pf(code: number): Outcome {
  return { pf: { code, cr2: TEST_GVA } };
}

function assertFaultUnchanged(c: AccessCombo, code: number): void {
  const e = expectedOutcome(c);
  const entries = comboEntries(c);
  assert.deepEqual(e.outcome, pf(code));
  assert.equal(e.pdeAfter, entries.pde);
  assert.equal(e.leafAfter, (c.flags & AC.PDE_PS) !== 0 ? entries.pde : entries.pte);
}

Deno.test("access enum: the test gva is canonical and in the upper half", () => {
  assert.equal(TEST_GVA >> 47n, 0x1ffffn);
});

Deno.test("access enum: counts follow from the legality rules", () => {
  // intel, per EFER.NXE: NXE=1: 2^12 non-PS entry sets x {none, PTE bit 51, PDE bit 51}
  // + 2^6 PS sets x {none, bit 51, bit 13} = 12480; NXE=0 (NX flags become reserved):
  // 2^10 x 5 + 2^5 x 4 = 5248. Then x4 PDPTE, x6 access (user x {r, w, x}),
  // x12 control (WP x SMEP x {SMAP off, SMAP+AC=0, SMAP+AC=1}).
  const counts = countAccessCases();
  assert.equal(counts.intel, (12480 + 5248) * 4 * 6 * 12);
  // intel-no1g (Page1GB absent: PDPTE.PS reserved; PML4E bit 8 ignored). NXE=1: 2^11
  // non-PS sets x {none, PDE bit 51, PDPTE.PS} + 2^6 PS sets x 3 = 6336; NXE=0 (PTE NX
  // reserved too): 2^10 x 4 + 2^6 x 3 = 4288. Then x2 PDPTE A, x6 access, x2 CR0.WP.
  assert.equal(counts["intel-no1g"], (6336 + 4288) * 2 * 6 * 2);
  // amd: PML4E bit 8 becomes one more reserved flag: NXE=1: 2^10 x 4 + 2^5 x 4 = 4224;
  // NXE=0: 2^9 x 5 + 2^5 x 4 = 2688.
  assert.equal(counts.amd, (4224 + 2688) * 2 * 6 * 2);
});

Deno.test("access enum: every enumerated combination is legal and inside its space", () => {
  let n = 0;
  for (const c of enumerateAccessCases({ spaces: ["amd"] })) {
    const space = spaceOf(c.space);
    assert.ok(isLegal(space, c.flags));
    assert.equal(c.flags & ~space.flags, 0);
    assert.ok(!((c.flags & AC.ACCESS_FETCH) !== 0 && (c.flags & AC.ACCESS_WRITE) !== 0));
    n++;
  }
  assert.equal(n, countAccessCases().amd);
});

Deno.test("access enum: legality rejects fetch+write, two reserved flags, bit 13 without PS", () => {
  const intel = spaceOf("intel");
  assert.ok(!isLegal(intel, AC.ACCESS_FETCH | AC.ACCESS_WRITE));
  assert.ok(!isLegal(intel, AC.PTE_BIT51 | AC.PDE_BIT51 | AC.CPU_NXE));
  // Without EFER.NXE the NX bits are reserved bits too.
  assert.ok(!isLegal(intel, AC.PTE_NX | AC.PDE_BIT51));
  assert.ok(isLegal(intel, AC.PTE_NX | AC.PDE_BIT51 | AC.CPU_NXE));
  assert.ok(!isLegal(intel, AC.PDE_BIT13));
  assert.ok(isLegal(intel, AC.PDE_BIT13 | AC.PDE_PS));
  assert.ok(!isLegal(intel, AC.PDE_PS | AC.PTE_P));
  assert.ok(!isLegal(intel, AC.CPU_AC));
  assert.ok(!isLegal(intel, AC.PML4E_BIT8));
  assert.ok(isLegal(spaceOf("amd"), AC.PML4E_BIT8));
});

Deno.test("access enum: sampling takes about 1/N, is seeded, and limit stops early", () => {
  const all = countAccessCases().amd;
  const a = [...enumerateAccessCases({ spaces: ["amd"], sample: 16, seed: 1 })];
  const b = [...enumerateAccessCases({ spaces: ["amd"], sample: 16, seed: 2 })];
  assert.ok(Math.abs(a.length - all / 16) < all / 16 * 0.1, `${a.length} vs ${all / 16}`);
  assert.notDeepEqual(a.slice(0, 20), b.slice(0, 20));
  assert.equal([...enumerateAccessCases({ limit: 7 })].length, 7);
  assert.throws(() => [...enumerateAccessCases({ sample: 0 })], RangeError);
});

Deno.test("access enum: control settings are contiguous runs of the enumeration", () => {
  const seen = new Set<string>();
  let last = "";
  for (const c of enumerateAccessCases({ sample: 64 })) {
    const key = `${c.space}/${c.flags >>> 25}`;
    if (key !== last) {
      assert.ok(!seen.has(key), `setting ${key} appears twice`);
      seen.add(key);
      last = key;
    }
  }
  // intel: NXE x WP x SMEP x {SMAP off, AC=0, AC=1}; amd and intel-no1g: NXE x WP.
  assert.equal(seen.size, 24 + 4 + 4);
});

// Hand cases. Default control bits: EFER.NXE and CR0.WP on, SMEP/SMAP off.

Deno.test("access enum: a successful read sets A in the PDE and the PTE, not D", () => {
  // docs/kvm-facts.md A.5: A on every level lacking it after a successful walk; D only on writes.
  const c = combo("intel", "PDE_P", "PDE_W", "PDE_U", "PTE_P", "PTE_W", "PTE_U", "CPU_NXE");
  const e = expectedOutcome(c);
  const entries = comboEntries(c);
  assert.deepEqual(e.outcome, { value: DATA_VALUE });
  assert.equal(e.pdeAfter, entries.pde | 0x20n);
  assert.equal(e.leafAfter, entries.pte | 0x20n);
});

Deno.test("access enum: a successful write sets A and D in the PTE, only A in the PDE", () => {
  // D exists only in leaves (SDM table 4-19: PDE bit 6 ignored when PS=0).
  const c = combo("intel", "PDE_P", "PDE_W", "PTE_P", "PTE_W", "ACCESS_WRITE", "CPU_WP");
  const e = expectedOutcome(c);
  const entries = comboEntries(c);
  assert.deepEqual(e.outcome, { ok: true });
  assert.equal(e.pdeAfter, entries.pde | 0x20n);
  assert.equal(e.leafAfter, entries.pte | 0x60n);
});

Deno.test("access enum: a 2 MiB write sets A and D in the PDE", () => {
  const c = combo("intel", "PDE_P", "PDE_W", "PDE_PS", "ACCESS_WRITE", "CPU_NXE", "CPU_WP");
  const e = expectedOutcome(c);
  const pde = comboEntries(c).pde;
  assert.deepEqual(e.outcome, { ok: true });
  assert.equal(e.pdeAfter, pde | 0x60n);
  assert.equal(e.leafAfter, e.pdeAfter);
});

Deno.test("access enum: a not-present PDE faults with P=0 and the access bits", () => {
  // SDM 4.7: P=0 for a not-present fault; W and U/S describe the access.
  const c = combo("intel", "PTE_P", "PTE_W", "PTE_U", "ACCESS_USER", "ACCESS_WRITE", "CPU_NXE");
  assertFaultUnchanged(c, 0x6);
});

Deno.test("access enum: a not-present fetch reports I/D only with EFER.NXE or CR4.SMEP", () => {
  // docs/kvm-facts.md A.4: I/D is reported only if CR4.SMEP=1 or EFER.NXE=1.
  assertFaultUnchanged(combo("intel", "ACCESS_FETCH", "CPU_NXE"), 0x10);
  assertFaultUnchanged(combo("intel", "ACCESS_FETCH"), 0x0);
  assertFaultUnchanged(combo("intel", "ACCESS_FETCH", "CPU_SMEP"), 0x10);
});

Deno.test("access enum: PTE bit 51 below MAXPHYADDR 52 faults with RSVD|P", () => {
  // SDM table 4-20: bits 51:M of a PTE are reserved; MAXPHYADDR is 46 here.
  assertFaultUnchanged(combo("intel", ...PAGE, "PTE_BIT51", "CPU_NXE"), 0x9);
});

Deno.test("access enum: a reserved PDE faults before a not-present PTE is reached", () => {
  // docs/kvm-facts.md A.2: per level from the top, present then reserved; the PDE comes first.
  const c = combo("intel", "PDE_P", "PDE_W", "PDE_U", "PDE_BIT51", "ACCESS_USER", "CPU_NXE");
  assertFaultUnchanged(c, 0xd);
});

Deno.test("access enum: reserved bits of a not-present entry are ignored", () => {
  // SDM 4.7: a not-present entry faults with P=0 whatever its other bits.
  assertFaultUnchanged(combo("intel", "PDE_P", "PDE_W", "PTE_BIT51", "CPU_NXE"), 0x0);
});

Deno.test("access enum: an NX bit without EFER.NXE is a reserved bit", () => {
  // docs/kvm-facts.md A.1/A.2: bit 63 is reserved when EFER.NXE=0; not an execute check.
  assertFaultUnchanged(combo("intel", ...PAGE, "PTE_NX", "ACCESS_USER"), 0xd);
  // A fetch then reports no I/D (neither NXE nor SMEP).
  assertFaultUnchanged(combo("intel", ...PAGE, "PDE_NX", "ACCESS_FETCH"), 0x9);
});

Deno.test("access enum: bit 13 of a 2 MiB PDE is reserved", () => {
  // SDM table 4-18: bits 20:13 of a 2 MiB PDE are reserved (PAT is bit 12).
  assertFaultUnchanged(combo("intel", "PDE_P", "PDE_W", "PDE_PS", "PDE_BIT13", "CPU_NXE"), 0x9);
});

Deno.test("access enum: a user access through a supervisor PDPTE faults with P|U", () => {
  // docs/kvm-facts.md A.3: U is the AND of U/S over every level.
  assertFaultUnchanged(combo("intel", ...PAGE, "PDPTE_NO_U", "ACCESS_USER", "CPU_NXE"), 0x5);
});

Deno.test("access enum: a supervisor write to a read-only page succeeds only with CR0.WP=0", () => {
  // docs/kvm-facts.md A.3: supervisor writes need W only if CR0.WP=1; the leaf still gets D
  // (KVM bug c22885050e65 was exactly a missing D here).
  const ro = ["PDE_P", "PDE_W", "PDE_U", "PDE_A", "PTE_P", "PTE_U", "PTE_A"] as AcFlag[];
  const c = combo("intel", ...ro, "ACCESS_WRITE", "CPU_NXE");
  const e = expectedOutcome(c);
  assert.deepEqual(e.outcome, { ok: true });
  assert.equal(e.leafAfter, comboEntries(c).pte | 0x40n);
  assertFaultUnchanged(combo("intel", ...ro, "ACCESS_WRITE", "CPU_NXE", "CPU_WP"), 0x3);
  // The PDPTE's R/W counts as well.
  assertFaultUnchanged(combo("intel", ...PAGE, "PDPTE_NO_W", "ACCESS_WRITE", "CPU_WP"), 0x3);
});

Deno.test("access enum: a user write to a read-only page faults even with CR0.WP=0", () => {
  // docs/kvm-facts.md A.3: user writes need W at every level whatever CR0.WP.
  const ro = ["PDE_P", "PDE_U", "PTE_P", "PTE_W", "PTE_U"] as AcFlag[];
  assertFaultUnchanged(combo("intel", ...ro, "ACCESS_USER", "ACCESS_WRITE", "CPU_NXE"), 0x7);
});

Deno.test("access enum: a fetch from an NX page faults with P|I/D", () => {
  // docs/kvm-facts.md A.3: X is the AND of !XD over every level when EFER.NXE=1.
  assertFaultUnchanged(combo("intel", ...PAGE, "PDE_NX", "ACCESS_FETCH", "CPU_NXE"), 0x11);
  assertFaultUnchanged(
    combo("intel", ...PAGE, "PTE_NX", "ACCESS_FETCH", "ACCESS_USER", "CPU_NXE"),
    0x15,
  );
  // A read of the same page is fine.
  const read = expectedOutcome(combo("intel", ...PAGE, "PTE_NX", "CPU_NXE"));
  assert.deepEqual(read.outcome, { value: DATA_VALUE });
});

Deno.test("access enum: SMEP faults a supervisor fetch from a user page only", () => {
  // docs/kvm-facts.md A.3: CR4.SMEP=1 and U=1 at every level => supervisor fetch faults.
  assertFaultUnchanged(combo("intel", ...PAGE, "ACCESS_FETCH", "CPU_SMEP"), 0x11);
  const noSmep = expectedOutcome(combo("intel", ...PAGE, "ACCESS_FETCH"));
  assert.deepEqual(noSmep.outcome, { value: DATA_VALUE });
  const supervisorPage = combo("intel", ...PAGE, "PDPTE_NO_U", "ACCESS_FETCH", "CPU_SMEP");
  assert.deepEqual(expectedOutcome(supervisorPage).outcome, { value: DATA_VALUE });
  const userFetch = combo("intel", ...PAGE, "ACCESS_FETCH", "ACCESS_USER", "CPU_SMEP");
  assert.deepEqual(expectedOutcome(userFetch).outcome, { value: DATA_VALUE });
});

Deno.test("access enum: SMAP faults supervisor data accesses to user pages unless AC", () => {
  // docs/kvm-facts.md A.3: CR4.SMAP=1, supervisor data access, U=1 page, EFLAGS.AC=0 => fault.
  assertFaultUnchanged(combo("intel", ...PAGE, "CPU_SMAP", "CPU_NXE"), 0x1);
  assertFaultUnchanged(combo("intel", ...PAGE, "ACCESS_WRITE", "CPU_SMAP"), 0x3);
  const ac = expectedOutcome(combo("intel", ...PAGE, "CPU_SMAP", "CPU_AC"));
  assert.deepEqual(ac.outcome, { value: DATA_VALUE });
  // Fetches are not SMAP-checked.
  const fetch = expectedOutcome(combo("intel", ...PAGE, "ACCESS_FETCH", "CPU_SMAP"));
  assert.deepEqual(fetch.outcome, { value: DATA_VALUE });
  // A supervisor page is not a user page.
  const sup = expectedOutcome(combo("intel", ...PAGE, "PDPTE_NO_U", "CPU_SMAP"));
  assert.deepEqual(sup.outcome, { value: DATA_VALUE });
});

Deno.test("access enum: PML4E bit 8 is reserved on AMD and ignored on Intel", () => {
  // docs/kvm-facts.md A.2: AMD PML4Es reserve bit 8.
  assertFaultUnchanged(combo("amd", ...PAGE, "PML4E_BIT8", "CPU_NXE"), 0x9);
  const intel = expectedOutcome(combo("intel-no1g", ...PAGE, "PML4E_BIT8", "CPU_NXE"));
  assert.deepEqual(intel.outcome, { value: DATA_VALUE });
  // A non-leaf PDPTE with bit 8 set does not fault (measured, docs/kvm-facts.md A.2).
  const pdpte = expectedOutcome(combo("amd", ...PAGE, "PDPTE_BIT8", "CPU_NXE"));
  assert.deepEqual(pdpte.outcome, { value: DATA_VALUE });
});

Deno.test("access enum: a 1 GiB PDPTE without Page1GB faults with RSVD before the PDE", () => {
  // docs/kvm-facts.md A.1/A.2: PDPTE bit 7 is reserved without CPUID Page1GB.
  assertFaultUnchanged(combo("intel-no1g", "PDPTE_PS", "ACCESS_USER", "CPU_NXE"), 0xd);
  assertFaultUnchanged(combo("amd", "PDPTE_PS", "ACCESS_FETCH", "CPU_NXE"), 0x19);
});

Deno.test("access enum: the D bit of a non-leaf PDE is ignored", () => {
  const c = combo("intel", ...PAGE, "PDE_D", "ACCESS_USER", "CPU_NXE");
  const e = expectedOutcome(c);
  assert.deepEqual(e.outcome, { value: DATA_VALUE });
  assert.equal(e.pdeAfter, comboEntries(c).pde);
});

Deno.test("access enum: a successful walk sets the PDPTE's A bit, a faulting one does not", () => {
  // docs/kvm-facts.md A.5: A on every level lacking it, only after the whole walk passed.
  const ok = combo("amd", ...PAGE, "PDPTE_NO_A", "ACCESS_USER", "CPU_NXE");
  assert.equal(expectedOutcome(ok).pdpteAfter, comboEntries(ok).pdpte | 0x20n);
  const bad = combo("amd", ...PAGE, "PDPTE_NO_A", "PDPTE_NO_W", "ACCESS_WRITE", "CPU_WP");
  assert.deepEqual(expectedOutcome(bad).outcome, pf(0x3));
  assert.equal(expectedOutcome(bad).pdpteAfter, comboEntries(bad).pdpte);
});

Deno.test("access enum: comboTrace replays one combination from a fresh machine", () => {
  const { config, steps } = comboTrace(combo("intel", ...PAGE, "CPU_SMAP"));
  assert.equal(config.features.smap, true);
  assert.equal(steps[0]?.[0].op, "slot");
  const access = steps.find(([op]) => op.op === "access");
  assert.deepEqual(access?.[1], pf(0x1));
});

Deno.test("access enum: each space's machine config agrees with the space's model", () => {
  // expectedOutcome reads vendor, MAXPHYADDR and Page1GB from the space; the backend
  // gets them from the config.
  for (const space of SPACES) {
    const config = spaceConfig(space);
    assert.equal(config.vendor, space.vendor);
    assert.equal(config.maxPhyAddr, space.maxPhyAddr);
    assert.equal(config.gbPages, space.gbPages);
    assert.equal(config.features.smep, (space.flags & AC.CPU_SMEP) !== 0);
    assert.equal(config.features.smap, (space.flags & AC.CPU_SMAP) !== 0);
  }
});

/** A backend with memory but no paging: every access succeeds. */
function flatFactory(): BackendFactory {
  return {
    name: "core",
    available: () => null,
    create(): Backend {
      const mem = new Map<bigint, bigint>();
      return {
        name: "core",
        close() {},
        step(op: Op): Outcome {
          switch (op.op) {
            case "slot":
              return { errno: 0 };
            case "write":
              mem.set(op.gpa, op.value);
              return { ok: true };
            case "read":
              return { value: mem.get(op.gpa) ?? 0n };
            case "access":
              return op.kind === "write" ? { ok: true } : { value: DATA_VALUE };
            default:
              return { ok: true };
          }
        },
      };
    },
  };
}

Deno.test("access enum: the runner reports a backend that never faults", () => {
  const { checked, failures } = runAccessEnumeration(flatFactory(), {
    spaces: ["amd"],
    sample: 50,
  });
  assert.ok(checked > 1000);
  assert.ok(failures.length > 0);
  assert.ok(failures.some((f) => f.includes('access: expected {"pf"')), failures[0]);
  // It also never sets A: successful walks are reported through the read-backs.
  assert.ok(failures.some((f) => f.includes("after: expected")), failures[0]);
});
