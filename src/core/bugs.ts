/**
 * @module
 * The injected-bug catalogue as one list: the MMU and memslot bugs (`inject_mmu.ts`) and
 * the PMU bugs (`inject_pmu.ts`), their names as the type {@linkcode BugName}, and the
 * one record of flags the core is built with ({@linkcode BugFlags}). The core reads a bug
 * only through that record (`bug["mmio-gen-once"]`), so a misspelt name in code is a
 * type error; names from outside (`--inject`, a finding's `inject`) are checked once, by
 * {@linkcode bugFlags}, when the core is created.
 */
import { MMU_BUGS, type MmuBug, type MmuBugName } from "./inject_mmu.ts";
import { PMU_BUGS, type PmuBug, type PmuBugName } from "./inject_pmu.ts";

/** One injectable bug, MMU or PMU. */
export type Bug = MmuBug | PmuBug;

/** The name of one injectable bug. */
export type BugName = MmuBugName | PmuBugName;

/** Every injectable bug, MMU first. */
export const BUGS: readonly (Bug & { readonly name: BugName })[] = [...MMU_BUGS, ...PMU_BUGS];

/** Which bugs a core has injected: one flag per catalogue name, read-only. */
export type BugFlags = Readonly<Record<BugName, boolean>>;

const NAMES: ReadonlySet<string> = new Set(BUGS.map((b) => b.name));

/** True if `name` is a catalogue bug. */
export function isBugName(name: string): name is BugName {
  return NAMES.has(name);
}

/**
 * The flags for the bug names `names`, every other bug off. An unknown name is a
 * TypeError naming it (a finding or a command line from elsewhere may carry one).
 */
export function bugFlags(names: Iterable<string> = []): BugFlags {
  const flags = Object.fromEntries(BUGS.map((b) => [b.name, false])) as Record<BugName, boolean>;
  for (const name of names) {
    if (!isBugName(name)) {
      throw new TypeError(`Cannot inject bug "${name}": not in the MMU or PMU catalogue`);
    }
    flags[name] = true;
  }
  return Object.freeze(flags);
}
