import assert from "node:assert/strict";
import { BASE_SETUP, newCore, runLines } from "./_testing.ts";
import { Cov } from "./coverage.ts";
import { mergeConfig } from "../trace/config.ts";
import { CORE_COVERAGE_NAMES, CoreBackend } from "./mod.ts";

Deno.test("core: deleting a memslot turns cached sptes into MMIO exits", () => {
  for (const slotZapAll of [true, false]) {
    const core = newCore({ quirks: { slotZapAll } });
    const out = runLines(core, [
      ...BASE_SETUP,
      "slot 1 gpa=0x100000 pages=1 hva=0x200000000",
      "write 0x4000 0x100067",
      "write 0x100000 0x77",
      "invlpg 0x0",
      "access r 0x0",
      "access r 0x0",
      "slot 1 gpa=0x100000 pages=0 hva=0x200000000",
      "access r 0x0",
    ]);
    assert.deepEqual(out.slice(-4), ["value 0x77", "value 0x77", "errno 0", "mmio 0x100000 r"]);
    assert.ok(core.coverage[Cov.ACCESS_HIT]! >= 1);
    assert.equal(core.coverage[slotZapAll ? Cov.SLOT_ZAP_ALL : Cov.SLOT_ZAP_SLOT], 1);
  }
});

Deno.test("core: a guest write to a shadowed page table zaps the written spte", () => {
  const core = newCore();
  const out = runLines(core, [
    ...BASE_SETUP,
    "access r 0x0",
    "write 0x3000 0x7007", // PDE[0] -> another PT (the PD is write-tracked: emulated)
    "write 0x7000 0x6067",
    "access r 0x0", // no flush needed: the zapped spte refaults on the new tables
  ]);
  assert.equal(out.at(-1), "value 0x2222");
  assert.equal(core.coverage[Cov.EMULATE_WRITE], 1);
  assert.equal(core.coverage[Cov.TRACK_WRITE_ZAP_SPTE], 1);
});

Deno.test("core: an unsync page serves the old translation until invlpg", () => {
  const core = newCore();
  const out = runLines(core, [
    ...BASE_SETUP,
    "access r 0x0",
    "write 0x4000 0x6067", // the PT goes unsync instead of trapping
    "access r 0x0",
    "invlpg 0x0",
    "access r 0x0",
  ]);
  assert.deepEqual(out.slice(-5), ["value 0x1111", "ok", "value 0x1111", "ok", "value 0x2222"]);
  assert.equal(core.coverage[Cov.UNSYNC], 1);
  assert.equal(core.coverage[Cov.SYNC_INVLPG], 1);
});

Deno.test("core: a protection #PF syncs the faulting address, a not-present one does not", () => {
  // kvm_inject_emulated_page_fault invalidates the address only when the error code has
  // P set and RSVD clear. The unsync PT's stale spte maps page 9 read-only; the guest
  // PTE now maps page 0xa, also read-only.
  const lines = [
    "slot 0 gpa=0x0 pages=16 hva=0x100000000",
    "write 0x0 0x7",
    "write 0x10 0x5007",
    "write 0x5008 0x9005",
    "write 0x9000 0x99",
    "write 0xa000 0xaa",
    "access r 0x401000",
    "write 0x5008 0xa005", // P goes unsync: the spte still maps page 9
  ];
  const core = newCore();
  const out = runLines(core, [...lines, "access w 0x401000 0x1", "access r 0x401000"]);
  assert.deepEqual(out.slice(-2), ["pf code=0x3 cr2=0x401000", "value 0xaa"]);
  assert.equal(core.coverage[Cov.SYNC_INVLPG], 1);
  // Not present (0x5008 cleared): no invalidation, the stale read-only spte stays.
  const stale = runLines(newCore(), [
    ...lines.slice(0, -1),
    "write 0x5008 0x0",
    "access w 0x401000 0x1",
    "access r 0x401000",
  ]);
  assert.deepEqual(stale.slice(-2), ["pf code=0x2 cr2=0x401000", "value 0x99"]);
});

Deno.test("core: a CR3 load syncs unsync pages reachable from the root", () => {
  const core = newCore();
  const out = runLines(core, [
    ...BASE_SETUP,
    "access r 0x0",
    "access r 0x1000",
    "write 0x4000 0x6067",
    "write 0x4008 0x5067",
    "cr3 0x1000",
    "access r 0x0",
    "access r 0x1000",
  ]);
  assert.deepEqual(out.slice(-2), ["value 0x2222", "value 0x1111"]);
  assert.equal(core.coverage[Cov.SYNC_ROOTS], 1);
  assert.equal(core.coverage[Cov.SYNC_SPTE_DROP], 2);
});

Deno.test("core: a lookup hit on an unsync page syncs it before reuse", () => {
  const core = newCore();
  runLines(core, [
    ...BASE_SETUP,
    "access r 0x0",
    "write 0x4000 0x6067", // PT unsync
    "write 0x3000 0x0", // unlink it (the PD is tracked)
    "write 0x3000 0x4007",
    "access r 0x0", // get_shadow_page finds the unsync PT page
  ]);
  assert.equal(core.coverage[Cov.SP_LOOKUP_SYNC], 1);
});

Deno.test("core: creating an upper-level page over an unsync gfn zaps the unsync page", () => {
  const core = newCore();
  runLines(core, [
    ...BASE_SETUP,
    "access r 0x0",
    "write 0x4010 0x5067", // PT (gfn 4) unsync
    "write 0x3008 0x4007", // PDE[1] -> gfn 4 as a PT again: still level 1
    "write 0x2008 0x4007", // PDPTE[1] -> gfn 4 used as a PD (level 2)
    "access r 0x40000000",
  ]);
  assert.equal(core.coverage[Cov.SP_ZAP_UNSYNC_FOR_UPPER], 1);
});

Deno.test("core: misaligned and flooding writes zap the whole shadow page", () => {
  const core = newCore();
  runLines(core, [...BASE_SETUP, "access r 0x0", "write 0x3001 0x40 size=2"]);
  assert.equal(core.coverage[Cov.TRACK_WRITE_MISALIGNED], 1);
  runLines(core, [
    "access r 0x0",
    "write 0x3100 0x0",
    "write 0x3108 0x0",
    "write 0x3110 0x0", // third emulated write without a shadow walk in between
  ]);
  assert.equal(core.coverage[Cov.TRACK_WRITE_FLOODING], 1);
  assert.deepEqual(runLines(core, ["access r 0x0"]), ["value 0x1111"]);
});

Deno.test("core: a guest 2 MiB page is shadowed by a direct page of 4 KiB sptes", () => {
  const core = newCore();
  const out = runLines(core, [
    ...BASE_SETUP,
    "slot 1 gpa=0x200000 pages=512 hva=0x200000000",
    "write 0x3008 0x2000e7",
    "write 0x3fd008 0x4242",
    "access r 0x3fd008",
    "access w 0x3fd010 0x9 user",
    "read 0x3fd010",
  ]);
  assert.deepEqual(out.slice(-3), ["value 0x4242", "ok", "value 0x9"]);
  assert.equal(core.coverage[Cov.SP_CREATE_DIRECT], 1);
});

Deno.test("core: a clean gpte is mapped read-only until a write sets its D bit", () => {
  const core = newCore();
  const out = runLines(core, [
    ...BASE_SETUP,
    "write 0x4000 0x5027", // A set, D clear
    "invlpg 0x0",
    "access r 0x0",
    "read 0x4000",
    "access w 0x0 0x1",
    "read 0x4000",
  ]);
  assert.deepEqual(out.slice(-4), ["value 0x1111", "value 0x5027", "ok", "value 0x5067"]);
  assert.equal(core.coverage[Cov.SPTE_CLEAN_PROTECT], 1);
});

Deno.test("core: CR0.WP=0 lets a supervisor write through a read-only page and sets D", () => {
  const core = newCore();
  const out = runLines(core, [
    ...BASE_SETUP,
    "write 0x4000 0x5025", // read-only user page, clean
    "invlpg 0x0",
    "access w 0x0 0x5",
    "ctl wp=0",
    "access w 0x0 0x5",
    "read 0x4000",
    "access w 0x0 0x6 user",
  ]);
  assert.deepEqual(out.slice(-5), [
    "pf code=0x3 cr2=0x0",
    "ok",
    "ok",
    "value 0x5065",
    "pf code=0x7 cr2=0x0",
  ]);
  assert.equal(core.coverage[Cov.SPTE_WP0_TRICK], 1);
});

Deno.test("core: MMIO sptes are trusted only while their generation matches", () => {
  const core = newCore();
  const out = runLines(core, [
    ...BASE_SETUP,
    "write 0x4000 0x100067",
    "invlpg 0x0",
    "access r 0x0",
    "access r 0x0",
    "slot 1 gpa=0x400000 pages=1 hva=0x200000000",
    "access r 0x0",
  ]);
  assert.deepEqual(out.slice(-4), [
    "mmio 0x100000 r",
    "mmio 0x100000 r",
    "errno 0",
    "mmio 0x100000 r",
  ]);
  assert.equal(core.coverage[Cov.SPTE_MMIO], 2);
  assert.equal(core.coverage[Cov.MMIO_HIT], 1);
  assert.equal(core.coverage[Cov.MMIO_GEN_MISMATCH], 1);
});

Deno.test("core: MMIO generation wraparound zaps everything fast", () => {
  const core = newCore({ mmioGenBits: 3 });
  runLines(core, BASE_SETUP); // generation 2
  for (let i = 0; i < 3; i++) {
    runLines(core, [`slot 0 gpa=0x0 pages=64 hva=0x100000000${i % 2 ? "" : " log"}`]);
  }
  assert.equal(core.coverage[Cov.MMIO_GEN_WRAP], 1); // generation 8 masks to 0
  assert.equal(core.coverage[Cov.FAST_ZAP], 1);
  assert.deepEqual(runLines(core, ["access r 0x0"]), ["value 0x1111"]);
});

Deno.test("core: dirty logging reports writes and GET_DIRTY_LOG re-protects", () => {
  const core = newCore();
  const out = runLines(core, [
    ...BASE_SETUP,
    "access w 0x0 0x1",
    "slot 0 gpa=0x0 pages=64 hva=0x100000000 log", // write-protects every spte
    "dirtylog 0",
    "access w 0x0 0x2",
    "access w 0x0 0x3",
    "dirtylog 0",
    "access w 0x0 0x4",
    "dirtylog 0",
    "dirtylog 1",
  ]);
  assert.deepEqual(out.slice(-7), [
    "bitmap none",
    "ok",
    "ok",
    "bitmap pages 5",
    "ok",
    "bitmap pages 5",
    "errno ENOENT",
  ]);
  assert.ok(core.coverage[Cov.DIRTY_REPROTECT]! >= 1);
  assert.equal(core.coverage[Cov.DIRTY_ENABLE], 1);
});

Deno.test("core: discard zeroes host pages and zaps the sptes mapping them", () => {
  const core = newCore();
  const out = runLines(core, [
    ...BASE_SETUP,
    "access r 0x0",
    "discard 0x100005000 pages=1",
    "access r 0x0",
  ]);
  assert.deepEqual(out.slice(-2), ["ok", "value 0x0"]);
  assert.equal(core.coverage[Cov.NOTIFIER_ZAP], 1);
  assert.equal(core.mmu.mmuInvalidateSeq, 1);
});

Deno.test("core: age clears A in sptes and reports each page once", () => {
  const core = newCore();
  const out = runLines(core, [
    ...BASE_SETUP,
    "access r 0x0",
    "age 0x0 pages=8",
    "age 0x0 pages=8",
    "access r 0x0",
    "age 0x5000 pages=1",
  ]);
  assert.deepEqual(out.slice(-4), ["young pages 5", "young none", "value 0x1111", "young pages 0"]);
});

Deno.test("core: the page limit zaps the oldest shadow pages", () => {
  const core = newCore();
  const ops = [...BASE_SETUP];
  // 100 page tables (gpa 0x10000 + i * 0x1000), one per 2 MiB of gva, each mapping 0x5000.
  ops[0] = "slot 0 gpa=0x0 pages=512 hva=0x100000000";
  for (let i = 0; i < 100; i++) {
    ops.push(`write 0x${(0x3000 + 8 * i).toString(16)} 0x${(0x10007 + i * 0x1000).toString(16)}`);
    ops.push(`write 0x${(0x10000 + i * 0x1000).toString(16)} 0x5067`);
  }
  runLines(core, ops);
  const reads = Array.from({ length: 100 }, (_, i) => `access r 0x${(i * 0x200000).toString(16)}`);
  const out = runLines(core, reads);
  assert.ok(out.every((o) => o === "value 0x1111"));
  assert.ok(core.mmu.nUsed <= core.mmu.nMax, `${core.mmu.nUsed} pages > limit ${core.mmu.nMax}`);
  assert.ok(core.coverage[Cov.ZAP_OLDEST]! > 0);
});

Deno.test("core: more than RMAP_RECYCLE_THRESHOLD sptes for one gfn are recycled", () => {
  const core = newCore();
  const ops = [...BASE_SETUP, "write 0x3008 0x7007"];
  for (let i = 0; i < 512; i++) {
    ops.push(`write 0x${(0x4000 + 8 * i).toString(16)} 0x5067`);
    ops.push(`write 0x${(0x7000 + 8 * i).toString(16)} 0x5067`);
  }
  runLines(core, ops, false);
  const reads: string[] = [];
  for (let i = 0; i < 1024; i++) reads.push(`access r 0x${(i * 0x1000).toString(16)}`);
  const out = runLines(core, reads, false);
  assert.ok(out.every((o) => o === "value 0x1111"));
  assert.equal(core.coverage[Cov.RMAP_RECYCLE], 1);
  assert.ok(core.coverage[Cov.RMAP_DESC_CHAIN]! > 0);
  assert.deepEqual(core.audit(), []);
});

Deno.test("core: a root in a deleted slot leaves accesses uncached and faulting", () => {
  const core = newCore({ quirks: { slotZapAll: false } });
  const out = runLines(core, [
    ...BASE_SETUP,
    "access r 0x0",
    "slot 0 gpa=0x0 pages=0 hva=0x100000000",
    "access r 0x0",
  ]);
  assert.equal(out.at(-1), "pf code=0x0 cr2=0x0");
  assert.equal(core.mmu.root, -1);
  assert.deepEqual(runLines(core, ["slot 0 gpa=0x0 pages=64 hva=0x100000000", "access r 0x0"]), [
    "errno 0",
    "value 0x1111",
  ]);
});

Deno.test("core: two slots aliasing one host page share its write tracking", () => {
  const core = newCore();
  const out = runLines(core, [
    ...BASE_SETUP,
    "slot 1 gpa=0x100000 pages=64 hva=0x100000000", // alias of slot 0
    "access r 0x0",
    "write 0x103000 0x7007", // PD write through the alias: still emulated
    "write 0x7000 0x6067",
    "access r 0x0",
  ]);
  assert.equal(out.at(-1), "value 0x2222");
  assert.equal(core.coverage[Cov.EMULATE_WRITE], 1);
});

Deno.test("core: an unknown injected bug name is rejected at creation", () => {
  // @ts-expect-error: in code a bug is a BugName, so a misspelt one does not type-check
  assert.throws(() => newCore({}, ["no-such-bug"]), /Cannot inject bug "no-such-bug"/);
  // Names from a command line or a finding reach the core through the contract as strings.
  assert.throws(
    () => new CoreBackend(mergeConfig({}), { inject: ["sp-wrong-access", "no-such-bug"] }),
    /^TypeError: Cannot inject bug "no-such-bug": not in the MMU or PMU catalogue$/,
  );
  assert.doesNotThrow(() => newCore({}, ["sp-wrong-access", "filter-skip-fixed"]));
});

Deno.test("core: a 4 KiB fault prefetches accessed neighbours, which start old", () => {
  const core = newCore();
  const out = runLines(core, [
    ...BASE_SETUP,
    "write 0x4010 0x7047", // PT[2]: present but not accessed: prefetch stops there
    "access r 0x0", // maps gva 0 and prefetches gva 0x1000 (PT[1], A=1)
    "age 0x5000 pages=2",
    "access r 0x1000", // a hit on the prefetched spte
    "age 0x5000 pages=2",
  ]);
  assert.deepEqual(out.slice(-4), [
    "value 0x1111",
    "young pages 0",
    "value 0x2222",
    "young pages 1",
  ]);
  assert.equal(core.coverage[Cov.PREFETCH], 1);
  assert.equal(core.coverage[Cov.ACCESS_FAULT], 1);
});

Deno.test("core: a 4-byte write to half of a shadowed gpte is re-read as the whole gpte", () => {
  // mmu_pte_write_fetch_gpte (docs/kvm-facts.md B.6): the high half of a gpte, written with a
  // 4-byte store, zaps the spte of that whole gpte (not a misaligned-write zap of the SP).
  const core = newCore();
  runLines(core, [
    ...BASE_SETUP,
    "access r 0x0",
    // The PD (level 2) is write-tracked and cannot go unsync: the store is emulated.
    "write 0x3004 0x0 size=4",
  ]);
  const cov = core.coverage;
  const names = CORE_COVERAGE_NAMES;
  assert.equal(cov[names.indexOf("track-write-half-gpte")], 1);
  assert.equal(cov[names.indexOf("track-write-misaligned")], 0);
});
