/**
 * @module
 * The paging view the generator and the reducer share: which paging-structure entries
 * a 4-level walk of a linear address reads (Intel SDM vol. 3A 4.5: 9 index bits per
 * level above the 12-bit offset, PS at levels 3 and 2), over any source of guest
 * memory that knows which gpas a memslot backs. The generator walks its belief
 * ({@linkcode World}); the reducer walks the memory a trace's ops leave
 * (`fuzz/reduce/minimize_paging.ts`). Both get the same rules:
 *
 * - a table in a gpa that no memslot backs ends the walk as not present, as KVM's
 *   walker does when `kvm_vcpu_gfn_to_hva_prot` fails (`FNAME(walk_addr_generic)`);
 * - PS in a PML4E, and PS in a PDPTE without `gbPages`, is a reserved bit (docs/kvm-facts.md
 *   A.2, `__reset_rsvds_bits_mask`): the walk ends there with a reserved-bit fault;
 * - PS in a PDPTE (with `gbPages`) or a PDE makes the entry a leaf.
 *
 * It is a view of structure, not an oracle: the other reserved bits and the access
 * rights are not checked (a wrong belief only makes a proposal less targeted).
 *
 * [World]: ./world.ts
 */
import { levelShift, PT_ENTRIES, PTE_ADDR_MASK, PTE_P, PTE_PS } from "../../src/x86/paging.ts";

/** Guest memory as a walk reads it. */
export interface PagingView {
  /** CPUID.80000001H:EDX[26] Page1GB (`Config.gbPages`). */
  readonly gbPages: boolean;
  /** The 8-byte entry at the 8-aligned `gpa`, or null when no memslot backs it. */
  entry(gpa: bigint): bigint | null;
}

/** One present entry a walk read. */
export interface WalkStep {
  /** The level of the table holding it (4 = PML4). */
  level: number;
  /** The table page's gpa. */
  table: bigint;
  /** The index into the table. */
  index: number;
  /** The entry's gpa. */
  entry: bigint;
  value: bigint;
}

/**
 * How a walk ended: at a leaf, at a not-present entry, at a table no memslot backs, or
 * at an entry whose PS bit is reserved (the last step).
 */
export type WalkEnd = "leaf" | "absent" | "unbacked" | "reserved";

/** The present entries a walk read, root first, and how it ended. */
export interface Walk {
  steps: WalkStep[];
  end: WalkEnd;
}

/** The index of `gva` at `level` (4 = PML4). */
export function indexAt(gva: bigint, level: number): number {
  return Number((gva >> BigInt(levelShift(level))) & BigInt(PT_ENTRIES - 1));
}

/** `gva` with its index at `level` replaced, bits 63:48 made canonical again (SDM vol. 1 3.3.7.1). */
export function withIndex(gva: bigint, level: number, index: number): bigint {
  const shift = BigInt(levelShift(level));
  let out = (gva & ~(BigInt(PT_ENTRIES - 1) << shift)) | (BigInt(index) << shift);
  if (level === 4) {
    out &= 0x0000_ffff_ffff_ffffn;
    if (index >= PT_ENTRIES / 2) out |= 0xffff_0000_0000_0000n;
  }
  return out;
}

/** Whether `value`, read at `level`, is a leaf (a 4 KiB PTE, or PS in a PDE or PDPTE). */
export function isLeaf(value: bigint, level: number): boolean {
  return level === 1 || ((level === 2 || level === 3) && (value & PTE_PS) !== 0n);
}

/** Whether the PS bit of `value` at `level` is reserved (see the module doc). */
function psReserved(view: PagingView, value: bigint, level: number): boolean {
  if ((value & PTE_PS) === 0n) return false;
  return level === 4 || (level === 3 && !view.gbPages);
}

/** Walks `gva` from the root table at `root` (CR3 bits 51:12). */
export function walk(view: PagingView, root: bigint, gva: bigint): Walk {
  const steps: WalkStep[] = [];
  let table = root & PTE_ADDR_MASK;
  for (let level = 4; level >= 1; level--) {
    const index = indexAt(gva, level);
    const entry = table + BigInt(index * 8);
    const value = view.entry(entry);
    if (value === null) return { steps, end: "unbacked" };
    if ((value & PTE_P) === 0n) return { steps, end: "absent" };
    steps.push({ level, table, index, entry, value });
    if (psReserved(view, value, level)) return { steps, end: "reserved" };
    if (isLeaf(value, level)) return { steps, end: "leaf" };
    table = value & PTE_ADDR_MASK;
  }
  throw new Error("Unreachable: a 4-level walk ends at level 1");
}
