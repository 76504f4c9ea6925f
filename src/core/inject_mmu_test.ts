import assert from "node:assert/strict";
import type { ConfigInput } from "../trace/types.ts";
import { BASE_SETUP, newCore, runLines } from "./_testing.ts";
import { MMU_BUG_NAMES, MMU_BUGS, type MmuBugName } from "./inject_mmu.ts";

/** A regression trace: `ops[check]` must give `expect` without the bug, else not. */
interface Regression {
  bug: MmuBugName;
  why: string;
  config?: ConfigInput;
  ops: string[];
  expect: string;
}

/**
 * An access to gva 0 caches an MMIO spte for gpa 0x100000 (no slot yet: generation 2),
 * then slot 1 turns that gpa into RAM holding 0x1234 (generation 4).
 */
const MMIO_THEN_RAM: readonly string[] = [
  ...BASE_SETUP,
  "write 0x4000 0x100067",
  "invlpg 0x0",
  "access r 0x0",
  "slot 1 gpa=0x100000 pages=1 hva=0x200000000",
  "write 0x100000 0x1234",
];

export const REGRESSIONS: Regression[] = [
  {
    bug: "mmio-gen-once",
    why: "a slot created over a gpa that exited to MMIO must turn the next access into RAM",
    ops: [
      ...MMIO_THEN_RAM,
      "access r 0x0",
    ],
    expect: "value 0x1234",
  },
  {
    bug: "mmio-in-progress",
    why: "an MMIO spte cached while memslots are in flux must not survive the update",
    ops: [
      ...MMIO_THEN_RAM,
      "access r 0x0",
    ],
    expect: "value 0x1234",
  },
  {
    bug: "mmio-gen-shift",
    why: "an MMIO spte stamped at generation 2 must not validate at generation 6 " +
      "(4 generation bits: a 2-bit low field, and gen >> 1 reads 2 back as 0b0110)",
    config: { mmioGenBits: 4 },
    ops: [
      ...MMIO_THEN_RAM, // MMIO spte stamped 2; generation 4
      "slot 0 gpa=0x0 pages=64 hva=0x100000000 log", // generation 6
      "access r 0x0",
    ],
    expect: "value 0x1234",
  },
  {
    bug: "fast-zap-double-toggle",
    why: "deleting a slot whose second swap wraps the 3-bit MMIO generation (6 -> 8) " +
      "runs two fast zaps; the data spte into the deleted slot must still go",
    config: { mmioGenBits: 3 },
    ops: [
      ...BASE_SETUP, // slot 0: generation 2
      "slot 1 gpa=0x100000 pages=1 hva=0x200000000", // generation 4
      "write 0x4000 0x100067",
      "write 0x100000 0x77",
      "invlpg 0x0",
      "access r 0x0",
      "slot 1 gpa=0x100000 pages=0 hva=0x200000000", // generations 6, then 8 (wrap)
      "access r 0x0",
    ],
    expect: "mmio 0x100000 r",
  },
  {
    bug: "slot-zap-leaf-only",
    why: "deleting the slot holding the page tables (quirk off) must drop the shadow " +
      "pages built from them",
    config: { quirks: { slotZapAll: false } },
    ops: [
      ...BASE_SETUP,
      "slot 1 gpa=0x100000 pages=1 hva=0x200000000",
      "write 0x4000 0x100067",
      "write 0x100000 0x77",
      "invlpg 0x0",
      "access r 0x0",
      "slot 0 gpa=0x0 pages=0 hva=0x100000000",
      "access r 0x0",
    ],
    expect: "pf code=0x0 cr2=0x0",
  },
  {
    bug: "sp-wrong-access",
    why: "a write through a read-only PML4E must fault even after a writable path to " +
      "the same page tables cached a writable spte (access.c check_effective_sp_permissions)",
    ops: [
      ...BASE_SETUP,
      "write 0x1008 0x2005", // PML4E[1] -> PDPT 0x2000, read-only
      "write 0x1010 0x7007", // PML4E[2] -> PDPT 0x7000, writable
      "write 0x7000 0x3007", // both PDPTs -> PD 0x3000
      "access r 0x8000000000",
      "access w 0x10000000000 0x5",
      "access w 0x8000000000 0x6",
    ],
    expect: "pf code=0x3 cr2=0x8000000000",
  },
  {
    bug: "link-unsync-no-sync",
    why: "a PD whose unsync PT changed while unlinked must be synced when linked again " +
      "after a CR3 load",
    ops: [
      ...BASE_SETUP,
      "write 0x8000 0x3333",
      "access r 0x0",
      "access r 0x1000",
      "write 0x2000 0x0", // unlink the PD's shadow page
      "write 0x4008 0x8067", // PT goes unsync: gva 0x1000 -> gpa 0x8000
      "cr3 0x1000", // the PT is unreachable from the root: not synced
      "write 0x2000 0x3007", // link the PD again
      "access r 0x0",
      "access r 0x1000",
    ],
    expect: "value 0x3333",
  },
  {
    bug: "wp0-large-dirty",
    why: "a supervisor write with CR0.WP=0 through a read-only 2 MiB page sets its D bit",
    ops: [
      ...BASE_SETUP,
      "slot 1 gpa=0x200000 pages=512 hva=0x200000000",
      "write 0x3008 0x2000a1", // PDE[1]: 2 MiB at 0x200000, present, A, read-only
      "ctl wp=0",
      "access w 0x200000 0x99",
      "read 0x3008",
    ],
    expect: "value 0x2000e1",
  },
  {
    bug: "fast-pf-large-dirtylog",
    why: "every page written through a large guest page in a logged slot is reported",
    ops: [
      ...BASE_SETUP,
      "slot 1 gpa=0x200000 pages=512 hva=0x200000000 log",
      "write 0x3008 0x2000e7", // PDE[1]: writable dirty 2 MiB page
      "access r 0x201000", // writable spte for page 1 (D=1): page 1 dirty
      "dirtylog 1", // reports page 1, write-protects its spte
      "access w 0x200000 0x5",
      "access w 0x201000 0x6",
      "dirtylog 1",
    ],
    expect: "bitmap pages 0-1",
  },
];

Deno.test("core: the MMU bug catalogue covers docs/kvm-facts.md D items 1-9 with unique names", () => {
  assert.equal(MMU_BUGS.length, 9);
  assert.equal(MMU_BUG_NAMES.size, MMU_BUGS.length);
  for (const b of MMU_BUGS) assert.match(b.commit, /^[0-9a-f]{12}$/);
  assert.deepEqual(REGRESSIONS.map((r) => r.bug).sort(), [...MMU_BUG_NAMES].sort());
});

Deno.test("core: injected mmio-gen-shift at KVM's 16-bit layout aliases generations 2 and 258", () => {
  // KVM's own split (8-bit low field): 127 toggles of 2 take generation 4 to 258.
  const toggles = Array.from(
    { length: 127 },
    (_, i) => `slot 0 gpa=0x0 pages=64 hva=0x100000000${i % 2 === 0 ? " log" : ""}`,
  );
  const ops = [
    ...MMIO_THEN_RAM,
    ...toggles,
    "access r 0x0",
  ];
  const config = { mmioGenBits: 16 };
  assert.equal(runLines(newCore(config), ops).at(-1), "value 0x1234");
  assert.equal(runLines(newCore(config, ["mmio-gen-shift"]), ops, false).at(-1), "mmio 0x100000 r");
});

Deno.test("core: injected link-unsync-no-sync shows in 8 ops through an alias, without a flush", () => {
  // A store through P[1], which maps its own page table P, builds the shadow chain, makes
  // P unsync and rewrites P[1]; PML4[1] then aliases the PDPT. The aliased addresses were
  // never mapped, so no TLB may hold them; linking the PDPT page into PML4[1] must sync P.
  // The reference and the real KVM here (kvm_pvm) return 0x27 too (docs/measurements.md).
  const ops = [
    "slot 0 gpa=0x0 pages=64 hva=0x100000000",
    "write 0x0 0x7",
    "write 0x10 0x5007",
    "write 0x5008 0x5007",
    "access w 0x401008 0x7",
    "write 0x8 0x7",
    "access r 0x8000000000",
    "access r 0x8000401000",
  ];
  assert.equal(runLines(newCore(), ops).at(-1), "value 0x27");
  assert.equal(runLines(newCore({}, ["link-unsync-no-sync"]), ops, false).at(-1), "value 0x0");
});

for (const r of REGRESSIONS) {
  Deno.test(`core: injected ${r.bug} diverges: ${r.why}`, () => {
    const last = r.ops.length - 1;
    const good = runLines(newCore(r.config), r.ops);
    assert.equal(good[last], r.expect);
    const bad = runLines(newCore(r.config, [r.bug]), r.ops, false);
    assert.notEqual(bad[last], r.expect, `with ${r.bug} the last op still gives ${r.expect}`);
  });
}
