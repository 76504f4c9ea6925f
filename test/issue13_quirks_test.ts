/**
 * @module
 * Issue 13 items 10b and 12: two divergences of the uninjected core where the core
 * models KVM v6.10 faithfully and the reference is right. This pins both sides, so a
 * change on either is noticed; the kvm backend's results are pinned where /dev/kvm
 * works (skipped with the reason elsewhere).
 *
 * 10b (known deviation np-pf-keeps-stale-spte, root cause D): a store through a
 * self-mapping PTE clears it (its page table is unsync, the spte stays); the user read
 * after it faults not present, and kvm_inject_emulated_page_fault() (x86.c, v6.10)
 * invalidates the address only for P=1 && !RSVD errors, so the stale writable spte
 * serves the next store, which lands in the page table and clears the PTE the guest had
 * rewritten meanwhile. SDM vol. 3A 4.10.4.1: the page fault invalidated the translation.
 *
 * 12 (upstream quirk): a 4-byte store at offset 6 of a write-tracked page directory
 * reaches kvm_mmu_track_write() whole (the emulator splits writes only at page
 * boundaries: emulator_read_write()); mmu_pte_write_fetch_gpte() aligns a 4-byte write
 * to its 8-byte gpte before detect_write_misaligned() runs, so the write counts as
 * aligned and get_written_sptes() zaps only the first PDE's spte (arch/x86/kvm/mmu/mmu.c,
 * v6.10). The second PDE's spte survives even a CR3 reload (kvm_mmu_sync_roots() re-reads
 * unsync pages only).
 */
import assert from "node:assert/strict";
import type { BackendFactory } from "../src/backend.ts";
import { coreFactory } from "../src/core/mod.ts";
import { diffTrace } from "../src/diff.ts";
import { kvmFactory } from "../src/kvm/mod.ts";
import { traceFromJson } from "../src/trace/parse.ts";
import { formatOutcome } from "../src/trace/text.ts";
import type { Trace } from "../src/trace/types.ts";

const SLOT = { op: "slot", id: 0, gpa: "0x0", pages: 16, hva: "0x100000000", flags: [] };

/** The reported reproducer unknown-div-core-pf-after-cr3.json (issue 13 item 10b). */
const PF_AFTER_CR3 = traceFromJson({
  format: "shadowfuzz.trace/1",
  config: {
    maxPhyAddr: 36,
    features: { smap: false },
    cr4: { smep: true },
    pmu: { version: 0 },
    gbPages: false,
    quirks: { slotZapAll: false },
    mmioGenBits: 2,
  },
  ops: [
    SLOT,
    { op: "write", gpa: "0x7f8", size: 8, value: "0x1003" },
    { op: "write", gpa: "0x1010", size: 8, value: "0x1003" },
    { op: "write", gpa: "0x1ff8", size: 8, value: "0x2003" },
    // The PTE maps its own page table.
    { op: "write", gpa: "0x2010", size: 8, value: "0x2003" },
    // The store goes through the PTE into the PTE: it clears it.
    { op: "access", gva: "0x7f80bfe02010", kind: "write", value: "0x0", user: false },
    { op: "access", gva: "0x7f80bfe02000", kind: "read", user: true },
    { op: "write", gpa: "0x2010", size: 8, value: "0x3" },
    { op: "access", gva: "0x7f80bfe02010", kind: "write", value: "0x0", user: false },
    { op: "cr3", gpa: "0x0" },
    { op: "access", gva: "0x7f80bfe02000", kind: "write", value: "0x0", user: false, size: 1 },
  ],
});

/**
 * The reported reproducer straddle4-pde.json with the store at `gpa`, `size` bytes of `value`;
 * `user` accesses (kvm_pvm shows the quirk only for those).
 */
function straddle(gpa: string, size: number, value: string, user: boolean): Trace {
  return traceFromJson({
    format: "shadowfuzz.trace/1",
    config: { gbPages: false, pmu: { version: 0 } },
    ops: [
      { ...SLOT, pages: 64 },
      { op: "write", gpa: "0x0", size: 8, value: "0x1007" },
      { op: "write", gpa: "0x1000", size: 8, value: "0x2007" },
      { op: "write", gpa: "0x2000", size: 8, value: "0x3007" },
      { op: "write", gpa: "0x2008", size: 8, value: "0x4007" },
      { op: "write", gpa: "0x3000", size: 8, value: "0x5007" },
      { op: "write", gpa: "0x4000", size: 8, value: "0x6007" },
      { op: "write", gpa: "0x6000", size: 8, value: "0x2222" },
      // Shadows the PD (gfn 2: write-tracked) and links PDE[1].
      { op: "access", gva: "0x200000", kind: "read", user },
      { op: "write", gpa, size, value },
      { op: "cr3", gpa: "0x0" },
      { op: "access", gva: "0x200000", kind: "read", user },
    ],
  });
}

/** Bytes 6-9: PDE[0] bits 63:48 and PDE[1] bits 15:0, which become 0 (not present). */
const STRADDLE_6 = { gpa: "0x2006", size: 4, value: "0x0" };
/** Bytes 14-17: aligned down to PDE[1], so its spte is zapped; PDE[1] keeps its value. */
const STRADDLE_14 = { gpa: "0x200e", size: 4, value: "0x0" };

function observed(factory: BackendFactory, trace: Trace, options = {}) {
  const d = diffTrace(trace, factory, options).divergence;
  return d === null ? null : { index: d.index, observed: formatOutcome(d.observed) };
}

const noKvm = kvmFactory.available();
if (noKvm !== null) console.log(`skip the kvm halves of the issue 13 quirk tests: ${noKvm}`);

Deno.test("core: item 10b is the known deviation np-pf-keeps-stale-spte", () => {
  assert.deepEqual(observed(coreFactory, PF_AFTER_CR3), {
    index: 10,
    observed: "pf code=0x2 cr2=0x7f80bfe02000",
  });
  assert.equal(observed(coreFactory, PF_AFTER_CR3, { fix: ["np-pf-keeps-stale-spte"] }), null);
});

Deno.test("core: item 12, a 4-byte store at offset 6 of a PD leaves the second PDE's spte", () => {
  for (const user of [false, true]) {
    const t = straddle(STRADDLE_6.gpa, STRADDLE_6.size, STRADDLE_6.value, user);
    assert.deepEqual(
      observed(coreFactory, t),
      { index: 11, observed: "value 0x2222" },
      `user ${user}`,
    );
    const control = straddle(STRADDLE_14.gpa, STRADDLE_14.size, STRADDLE_14.value, user);
    assert.equal(observed(coreFactory, control), null, `user ${user}: offset 14`);
  }
});

Deno.test({
  name: "kvm: item 10b does not reproduce here; item 12 does, for user accesses",
  ignore: noKvm !== null,
  fn() {
    // kvm_pvm keeps no stale spte at the first store (as for the other root cause D
    // findings), so it agrees with the reference.
    assert.equal(observed(kvmFactory, PF_AFTER_CR3), null);
    const t = straddle(STRADDLE_6.gpa, STRADDLE_6.size, STRADDLE_6.value, true);
    assert.deepEqual(observed(kvmFactory, t), { index: 11, observed: "value 0x2222" });
    const control = straddle(STRADDLE_14.gpa, STRADDLE_14.size, STRADDLE_14.value, true);
    assert.equal(observed(kvmFactory, control), null);
  },
});
