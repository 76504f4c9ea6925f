/**
 * @module
 * The injected-bug catalogue as the fuzzer sees it: the core's MMU and PMU bug lists
 * (`src/core/inject_*.ts`), one list, with a printable table for `--inject list`.
 */
import type { Area } from "../src/corpus/types.ts";
import { MMU_BUGS } from "../src/core/inject_mmu.ts";
import { PMU_BUGS } from "../src/core/inject_pmu.ts";

/** One injectable bug. */
export interface CatalogueBug {
  name: string;
  commit: string;
  title: string;
  symptom: string;
  area: Area;
}

/** Every injectable bug, MMU first. */
export function catalogue(): CatalogueBug[] {
  return [...MMU_BUGS, ...PMU_BUGS].map((b) => ({
    name: b.name,
    commit: b.commit,
    title: b.title,
    symptom: b.symptom,
    area: b.area,
  }));
}

/** The catalogue as text: one bug per line with its area and upstream commit. */
export function formatCatalogue(bugs: readonly CatalogueBug[]): string {
  const width = Math.max(...bugs.map((b) => b.name.length));
  return bugs.map((b) => `${b.name.padEnd(width)}  ${b.area.padEnd(7)}  ${b.commit}  ${b.title}`)
    .join("\n");
}
