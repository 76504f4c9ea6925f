import assert from "node:assert/strict";
import { newCore, runLines } from "./_testing.ts";

Deno.test("core: KVM_SET_USER_MEMORY_REGION validates like __kvm_set_memory_region", () => {
  const core = newCore();
  const cases: [string, string][] = [
    ["slot 0 gpa=0x0 pages=16 hva=0x100000000", "errno 0"],
    ["slot 0 gpa=0x0 pages=16 hva=0x100000000", "errno 0"], // identical: nothing to do
    ["slot 0 gpa=0x0 pages=16 hva=0x100000000 log", "errno 0"], // flags only
    ["slot 0 gpa=0x0 pages=16 hva=0x100000000 log ro", "errno EINVAL"], // ro cannot change
    ["slot 0 gpa=0x0 pages=8 hva=0x100000000 log", "errno EINVAL"], // size cannot change
    ["slot 0 gpa=0x0 pages=16 hva=0x100010000 log", "errno EINVAL"], // hva cannot change
    ["slot 1 gpa=0x8000 pages=16 hva=0x200000000", "errno EEXIST"], // overlaps slot 0
    ["slot 65537 gpa=0x8000 pages=16 hva=0x200000000", "errno 0"], // SMM address space
    ["slot 131072 gpa=0x100000 pages=1 hva=0x200000000", "errno EINVAL"], // address space 2
    ["slot 32764 gpa=0x100000 pages=1 hva=0x200000000", "errno EINVAL"], // KVM_USER_MEM_SLOTS
    ["slot 32763 gpa=0x100000 pages=1 hva=0x200000000", "errno 0"],
    ["slot 2 gpa=0x100000 pages=1 hva=0x7ffffffff000", "errno EINVAL"], // access_ok
    ["slot 2 gpa=0x200000 pages=1 hva=0x7fffffffe000", "errno 0"],
    ["slot 3 gpa=0xfffffffffffff000 pages=2 hva=0x300000000", "errno EINVAL"], // gpa overflow
    ["slot 3 gpa=0xffffffffff000 pages=1 hva=0x300000000", "errno 0"], // last gfn below 2^40
    ["slot 4 gpa=0x10000000000000 pages=1 hva=0x300000000", "errno EINVAL"], // beyond 2^52
    ["slot 5 gpa=0x0 pages=0 hva=0x0", "errno EINVAL"], // delete a missing slot
    ["slot 0 gpa=0x40000 pages=16 hva=0x100000000 log", "errno 0"], // move
    ["slot 0 gpa=0x0 pages=0 hva=0x100000000", "errno 0"], // delete
    ["dirtylog 0", "errno ENOENT"],
    ["dirtylog 32764", "errno EINVAL"],
  ];
  const out = runLines(core, cases.map(([op]) => op));
  assert.deepEqual(out, cases.map(([, expect]) => expect));
});

Deno.test("core: a moved slot carries its contents and its dirty log", () => {
  const core = newCore();
  const out = runLines(core, [
    "slot 0 gpa=0x0 pages=16 hva=0x100000000 log",
    "write 0x3000 0xabc",
    "slot 0 gpa=0x100000 pages=16 hva=0x100000000 log",
    "read 0x103000",
    "read 0x3000",
    "dirtylog 0",
  ]);
  assert.deepEqual(out.slice(-3), ["value 0xabc", "mmio 0x3000 r", "bitmap pages 3"]);
});

Deno.test("core: every memslot swap advances the generation by the number of address spaces", () => {
  const core = newCore();
  runLines(core, [
    "slot 0 gpa=0x0 pages=16 hva=0x100000000", // create: one swap
    "slot 0 gpa=0x0 pages=16 hva=0x100000000 log", // flags: one swap
    "slot 0 gpa=0x100000 pages=16 hva=0x100000000 log", // move: two swaps
    "slot 0 gpa=0x0 pages=0 hva=0x100000000", // delete: two swaps
    "slot 65536 gpa=0x0 pages=16 hva=0x100000000", // SMM: its own generation
  ]);
  assert.deepEqual(core.slots.gen, [12, 3]);
  assert.deepEqual(core.slots.inProgress, [false, false]);
});
