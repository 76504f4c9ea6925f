/**
 * @module
 * What the area generators share: {@linkcode emit} (append an op and let the
 * {@linkcode World} follow it), the `slot` op of a memslot the world holds, and the
 * host and guest-physical layout of generated memslots. The MMU generators create slots
 * too (a page table in a slot of its own), so this sits below both `mmu.ts` and
 * `memslot.ts`.
 */
import type { Op, SlotFlag } from "../../src/trace/types.ts";
import type { World, WSlot } from "../model/world.ts";

/** The host page where the generator's first memslot lives (4 GiB). */
export const HVA_BASE_PAGE = 0x10_0000;
/** Host pages between the generator's hva pool entries (16 MiB). */
export const HVA_STRIDE_PAGES = 0x1000;
/** Guest-physical slot grid: slots start at multiples of 512 pages (2 MiB). */
export const GFN_GRID = 512;

/** Appends `op` and lets the world follow it. */
export function emit(world: World, out: Op[], op: Op): void {
  out.push(op);
  world.apply(op);
}

/** The `flags` of a slot op with dirty logging (`log`) and read-only (`ro`) as given. */
export function flagsOf(log: boolean, ro: boolean): SlotFlag[] {
  const f: SlotFlag[] = [];
  if (log) f.push("log");
  if (ro) f.push("ro");
  return f;
}

/** The op that sets slot `s` (by default as it is now). */
export function slotOp(
  s: WSlot,
  gfn = s.gfn,
  pages = s.pages,
  log = s.log,
  ro = s.ro,
): Op & { op: "slot" } {
  return {
    op: "slot",
    id: s.id,
    gpa: BigInt(gfn) << 12n,
    pages,
    hva: BigInt(s.hvaPage) << 12n,
    flags: flagsOf(log, ro),
  };
}
