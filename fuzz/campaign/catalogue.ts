/**
 * @module
 * The injected-bug catalogue as the fuzzer sees it: the core's one list
 * (`src/core/bugs.ts`), with a printable table for `--inject list`.
 */
import type { Area } from "../../src/corpus/types.ts";
import { type Bug, BUGS } from "../../src/core/bugs.ts";

/** One injectable bug: the core's catalogue entry, whose area is a finding's area. */
export type CatalogueBug = Bug & { readonly area: Area };

/** Every injectable bug, MMU first. */
export function catalogue(): readonly CatalogueBug[] {
  return BUGS;
}

/** The catalogue as text: one bug per line with its area and upstream commit. */
export function formatCatalogue(bugs: readonly CatalogueBug[]): string {
  const width = Math.max(...bugs.map((b) => b.name.length));
  return bugs.map((b) => `${b.name.padEnd(width)}  ${b.area.padEnd(7)}  ${b.commit}  ${b.title}`)
    .join("\n");
}
