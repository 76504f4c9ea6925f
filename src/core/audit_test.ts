import assert from "node:assert/strict";
import { BASE_SETUP, newCore, runLines } from "./_testing.ts";
import { SPTE_W } from "./spte.ts";

/** The leaf spte that maps gva 0 (found through the root). */
function leafOfGva0(core: ReturnType<typeof newCore>): number {
  const mmu = core.mmu;
  let sp = mmu.root;
  for (let level = 4; level > 1; level--) sp = mmu.sptLo[sp * 512]! >>> 12;
  return sp * 512;
}

Deno.test("core: the audit holds after ordinary work", () => {
  const core = newCore();
  runLines(core, [...BASE_SETUP, "access r 0x0", "access w 0x1000 0x1"]);
  assert.deepEqual(core.audit(), []);
});

Deno.test("core: the audit reports a writable spte to a write-tracked page table", () => {
  const core = newCore();
  runLines(core, [...BASE_SETUP, "write 0x4000 0x3067", "invlpg 0x0", "access r 0x0"]);
  // gva 0 now maps the PD page (write-tracked): force its spte writable.
  const s = leafOfGva0(core);
  core.mmu.sptLo[s] = (core.mmu.sptLo[s]! | SPTE_W) >>> 0;
  assert.ok(core.audit().some((m) => m.includes("write-tracked")), core.audit().join("\n"));
});

Deno.test("core: the audit reports an spte missing from its rmap and a lost unsync bit", () => {
  const core = newCore();
  runLines(core, [...BASE_SETUP, "access r 0x0", "write 0x4008 0x7067"]);
  const s = leafOfGva0(core);
  const slot = core.slots.byId(0)!;
  slot.rmap.delete(core.mmu.sptGfn[s]!);
  const pt = (s / 512) | 0;
  const parent = core.mmu.pl.length(core.mmu.spParents[pt]!) > 0;
  assert.ok(parent);
  core.mmu.spUnsyncBitmap.fill(0);
  const msgs = core.audit();
  assert.ok(msgs.some((m) => m.includes("missing from its rmap")), msgs.join("\n"));
  assert.ok(msgs.some((m) => m.includes("has no bit in parent")), msgs.join("\n"));
});

Deno.test("core: random op sequences keep every invariant and never throw", () => {
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  const hex = (n: number) => `0x${n.toString(16)}`;
  for (let run = 0; run < 30; run++) {
    const core = newCore({ mmioGenBits: 3 + rnd(4), quirks: { slotZapAll: rnd(2) === 0 } });
    const ops = [...BASE_SETUP];
    for (let i = 0; i < 80; i++) {
      const k = rnd(10);
      const page = 1 + rnd(9);
      if (k < 3) {
        const frame = [1, 2, 3, 4, 5, 6, 7, 0x100, 0x200][rnd(9)]!;
        const flags = [0x67, 0x65, 0x27, 0x07, 0xe7, 0x0, 0x61][rnd(7)]!;
        ops.push(`write ${hex(page * 0x1000 + 8 * rnd(3))} ${hex(frame * 0x1000 + flags)}`);
      } else if (k < 6) {
        const kind = ["r", "x", "w"][rnd(3)]!;
        ops.push(
          `access ${kind} ${hex(rnd(4) * 0x1000 + rnd(2) * 0x200000)}${kind === "w" ? " 0x9" : ""}${
            rnd(2) ? " user" : ""
          }`,
        );
      } else if (k < 7) {
        ops.push(["invlpg 0x0", "cr3 0x1000", "ctl wp=0", "ctl wp=1", "ctl nx=0"][rnd(5)]!);
      } else if (k < 8) {
        ops.push(
          [
            "slot 1 gpa=0x100000 pages=16 hva=0x200000000",
            "slot 1 gpa=0x100000 pages=0 hva=0x200000000",
            "slot 1 gpa=0x200000 pages=16 hva=0x200000000 log",
            "slot 0 gpa=0x0 pages=64 hva=0x100000000 log",
            "slot 0 gpa=0x0 pages=64 hva=0x100000000",
          ][rnd(5)]!,
        );
      } else if (k < 9) ops.push(["dirtylog 0", "dirtylog 1", "age 0x0 pages=16"][rnd(3)]!);
      else ops.push(`discard ${hex(0x100000000 + page * 0x1000)} pages=1`);
    }
    runLines(core, ops); // throws on any broken invariant or exception
  }
});
