import assert from "node:assert/strict";
import { BASE_SETUP, newCore, runLines } from "./_testing.ts";

/** Runs the base tables with one entry replaced, then one access; returns its outcome. */
function accessWith(
  config: Parameters<typeof newCore>[0],
  patch: string[],
  access: string,
): string {
  const core = newCore(config);
  return runLines(core, [...BASE_SETUP, ...patch, access]).at(-1)!;
}

Deno.test("core: reserved bits fault with RSVD|P per level, MAXPHYADDR and vendor", () => {
  // PML4E bit 7 is always reserved.
  assert.equal(accessWith({}, ["write 0x1000 0x2087"], "access r 0x0"), "pf code=0x9 cr2=0x0");
  // AMD: PML4E bit 8 is reserved; Intel ignores it.
  assert.equal(
    accessWith({ vendor: "amd" }, ["write 0x1000 0x2107"], "access r 0x0"),
    "pf code=0x9 cr2=0x0",
  );
  assert.equal(accessWith({}, ["write 0x1000 0x2107"], "access r 0x0"), "value 0x1111");
  // Address bits at and above MAXPHYADDR (46 by default).
  assert.equal(
    accessWith({}, ["write 0x4000 0x400000005067"], "access r 0x0"),
    "pf code=0x9 cr2=0x0",
  );
  assert.equal(
    accessWith({ maxPhyAddr: 48 }, ["write 0x4000 0x400000005067"], "access w 0x0 0x1 user"),
    "mmio 0x400000005000 w",
  );
  // A 1 GiB page without GBPAGES, and bits 29:13 of a 1 GiB PDPTE.
  assert.equal(
    accessWith({ gbPages: false }, ["write 0x2000 0x87"], "access r 0x0"),
    "pf code=0x9 cr2=0x0",
  );
  assert.equal(accessWith({}, ["write 0x2000 0x2087"], "access r 0x0"), "pf code=0x9 cr2=0x0");
  // Bit 63 without EFER.NXE, with the fetch bit only when NX or SMEP is on.
  assert.equal(
    accessWith({ efer: { nx: false } }, ["write 0x4000 0x8000000000005067"], "access x 0x0"),
    "pf code=0x9 cr2=0x0",
  );
  assert.equal(
    accessWith({}, ["write 0x4000 0x8000000000005067"], "access x 0x0 user"),
    "pf code=0x15 cr2=0x0",
  );
});

Deno.test("core: permissions follow U/S, R/W with CR0.WP, SMEP and SMAP with EFLAGS.AC", () => {
  const sup = ["write 0x4000 0x5063"]; // supervisor page, writable
  assert.equal(accessWith({}, sup, "access r 0x0 user"), "pf code=0x5 cr2=0x0");
  const ro = ["write 0x4000 0x5065"]; // user page, read-only
  assert.equal(accessWith({}, ro, "access w 0x0 0x1"), "pf code=0x3 cr2=0x0");
  assert.equal(accessWith({ cr0: { wp: false } }, ro, "access w 0x0 0x1"), "ok");
  assert.equal(accessWith({ cr4: { smep: true } }, ro, "access x 0x0"), "pf code=0x11 cr2=0x0");
  assert.equal(accessWith({ cr4: { smap: true } }, ro, "access r 0x0"), "pf code=0x1 cr2=0x0");
  assert.equal(accessWith({ cr4: { smap: true } }, ro, "access x 0x0"), "value 0x1111");
  assert.equal(
    accessWith({ cr4: { smap: true }, rflags: { ac: true } }, ro, "access r 0x0"),
    "value 0x1111",
  );
  assert.equal(accessWith({}, [], "access r 0x800000000000"), "gp");
});

Deno.test("core: a cached supervisor spte re-checks SMAP when EFLAGS.AC drops", () => {
  const core = newCore({ cr4: { smap: true }, cr0: { wp: false } });
  const out = runLines(core, [
    ...BASE_SETUP,
    "write 0x4000 0x5065", // user page, read-only
    "ctl ac=1",
    "access w 0x0 0x9", // allowed by AC and WP=0: emulated, not shadowed writable
    "ctl ac=0",
    "access r 0x0",
  ]);
  assert.deepEqual(out.slice(-3), ["ok", "ok", "pf code=0x1 cr2=0x0"]);
});
