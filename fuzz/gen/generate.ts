/**
 * @module
 * The trace generator: a config, a prologue (a first memslot and a root table when the
 * MMU or memslot areas are on) and a list of steps, each step one generator of
 * `gen/` appending one or a few ops. A trace is fully determined by its
 * {@linkcode TraceChoices}: the campaign draws them from the PRNG for run `r` of seed
 * `s` ({@linkcode generateRun}), fast-check shrinks and mutates them, and
 * {@linkcode interpret} turns any choice sequence back into a valid trace.
 */
import { type Area, AREAS } from "../../src/corpus/types.ts";
import { type Op, type Trace, TRACE_FORMAT } from "../../src/trace/types.ts";
import { type ConfigConstraints, genConfig, genDirtyLogConfig } from "./config.ts";
import { weighted } from "./_pick.ts";
import {
  genAge,
  genChurn,
  genDirtyClear,
  genDirtyLog,
  genDiscard,
  genSlotCreate,
  genSlotDelete,
  genSlotFlags,
  genSlotMove,
} from "./memslot.ts";
import {
  genAccess,
  genInvalidate,
  genLargeTouch,
  genMap,
  genPhys,
  genRelink,
  genRewrite,
  genSetup,
} from "./mmu.ts";
import { genEvents, genFilter, genPmis, genRdmsr, genRdpmc, genWrmsr } from "./pmu.ts";
import { World } from "../model/world.ts";
import { Sfc32 } from "../model/rng.ts";
import { RandomSource, ReplaySource, type Source } from "../model/source.ts";
import type { TraceChoices } from "../model/choices.ts";

/** Every area, in the order of `--areas`. */
export { AREAS };

/** The decisions behind one trace (`model/choices.ts`). */
export type { TraceChoices };

/** Options of the generator. */
export interface GenConstraints {
  /** The areas to aim at (default: all). */
  areas?: readonly Area[];
  config?: ConfigConstraints;
  /** Steps per random trace (default 8..40). */
  minSteps?: number;
  maxSteps?: number;
  /** Make the last step this kind (for per-step arbitraries). */
  forceLast?: StepName;
  /**
   * Traces for the kvm backend: fetches get a ret at their target first (World
   * `fetchRet`), since that backend executes nothing else.
   */
  kvm?: boolean;
}

/** The names of every step kind. */
export const STEP_NAMES = [
  "access",
  "map",
  "rewrite",
  "invalidate",
  "phys",
  "large-touch",
  "relink",
  "age",
  "slot-create",
  "slot-delete",
  "slot-move",
  "slot-flags",
  "churn",
  "discard",
  "dirtylog",
  "dirtyclear",
  "events",
  "wrmsr",
  "rdmsr",
  "rdpmc",
  "filter",
  "pmis",
] as const;

export type StepName = typeof STEP_NAMES[number];

type StepGen = (src: Source, world: World, out: Op[]) => void;

interface StepKind {
  name: StepName;
  weight: number;
  gen: StepGen;
}

/**
 * The steps of each area with their weights. Accesses come first so that a shrunk
 * step (choice 0) is the simplest one. The memslot area also maps and touches memory:
 * a memslot change only means something against translations and MMIO it may break.
 */
const AREA_STEPS: Record<Area, StepKind[]> = {
  mmu: [
    { name: "access", weight: 26, gen: genAccess },
    { name: "map", weight: 22, gen: genMap },
    { name: "rewrite", weight: 16, gen: genRewrite },
    { name: "invalidate", weight: 9, gen: genInvalidate },
    { name: "phys", weight: 6, gen: genPhys },
    { name: "large-touch", weight: 3, gen: genLargeTouch },
    { name: "relink", weight: 4, gen: genRelink },
    { name: "age", weight: 1, gen: genAge },
  ],
  memslot: [
    { name: "access", weight: 14, gen: genAccess },
    { name: "map", weight: 10, gen: genMap },
    { name: "phys", weight: 4, gen: genPhys },
    { name: "large-touch", weight: 3, gen: genLargeTouch },
    { name: "slot-create", weight: 6, gen: genSlotCreate },
    { name: "slot-delete", weight: 5, gen: genSlotDelete },
    { name: "slot-move", weight: 5, gen: genSlotMove },
    { name: "slot-flags", weight: 4, gen: genSlotFlags },
    { name: "churn", weight: 2, gen: genChurn },
    { name: "discard", weight: 3, gen: genDiscard },
    { name: "dirtylog", weight: 5, gen: genDirtyLog },
    { name: "age", weight: 2, gen: genAge },
  ],
  pmu: [
    { name: "events", weight: 18, gen: genEvents },
    { name: "wrmsr", weight: 30, gen: genWrmsr },
    { name: "rdmsr", weight: 12, gen: genRdmsr },
    { name: "rdpmc", weight: 9, gen: genRdpmc },
    { name: "filter", weight: 7, gen: genFilter },
    { name: "pmis", weight: 3, gen: genPmis },
  ],
};

/**
 * Every step generator by name: the weighted ones, and those only other steps call
 * (a `dirtylog` step follows its GET with a clear now and then, `genDirtyLog`).
 */
const STEP_GENS = Object.fromEntries([
  ...Object.values(AREA_STEPS).flat().map((k) => [k.name, k.gen]),
  ["dirtyclear", genDirtyClear],
]) as Record<StepName, StepGen>;

/** The step table and weights of a set of areas (cached: built once per area set). */
class StepTable {
  readonly kinds: StepKind[];
  readonly weights: number[];
  readonly needsMemory: boolean;

  constructor(areas: readonly Area[]) {
    this.kinds = areas.flatMap((a) => AREA_STEPS[a]);
    this.weights = this.kinds.map((k) => k.weight);
    this.needsMemory = areas.includes("mmu") || areas.includes("memslot");
  }
}

const tables = new Map<string, StepTable>();

function stepTable(areas: readonly Area[] | undefined): StepTable {
  const list = areas === undefined || areas.length === 0 ? AREAS : areas;
  const key = list.join(",");
  let t = tables.get(key);
  if (t === undefined) {
    t = new StepTable(list);
    tables.set(key, t);
  }
  return t;
}

/**
 * Builds a trace from per-part sources. `late(part)` gives the source of the part's late
 * decisions (see {@linkcode generateRun}), drawn after all its other decisions: the
 * prologue's (`-1`) after the setup, a step's after its generator's own.
 */
function build(
  prologue: Source,
  stepCount: number,
  stepSource: (i: number) => Source,
  constraints: GenConstraints,
  late: (part: number) => Source,
): Trace {
  let table = stepTable(constraints.areas);
  // Focus: in one run of two a campaign over several areas draws its steps from one
  // part (the MMU with memslots, or the vPMU), so that multi-step setups of one part
  // (a filter, an eventsel, events, then a read) are not diluted by the other's steps.
  const areas = constraints.areas ?? AREAS;
  const pmu = areas.includes("pmu"), memory = areas.some((a) => a !== "pmu");
  // (0, the simplest choice a shrinker moves to, is no focus.)
  if (pmu && memory && prologue.int(2) === 1) {
    table = stepTable(prologue.int(2) === 1 ? ["pmu"] : areas.filter((a) => a !== "pmu"));
  }
  const config = genConfig(prologue, constraints.config);
  const world = new World(config);
  world.fetchRet = constraints.kvm ?? false;
  const ops: Op[] = [];
  if (table.needsMemory) genSetup(prologue, world, ops);
  if (constraints.config?.fixed === undefined) genDirtyLogConfig(late(-1), config);
  for (let i = 0; i < stepCount; i++) {
    const src = stepSource(i);
    world.late = late(i);
    const kind = table.kinds[weighted(src, table.weights)]!;
    if (i === stepCount - 1 && constraints.forceLast !== undefined) {
      STEP_GENS[constraints.forceLast](src, world, ops);
    } else kind.gen(src, world, ops);
  }
  return { format: TRACE_FORMAT, config, ops };
}

/** The trace a choice sequence stands for (any sequence gives a valid trace). */
export function interpret(choices: TraceChoices, constraints: GenConstraints = {}): Trace {
  const src = new ReplaySource(choices.prologue);
  // Late decisions were recorded after each part's own: read on from the same choices.
  return build(
    src,
    choices.steps.length,
    (i) => {
      src.reset(choices.steps[i]!);
      return src;
    },
    constraints,
    () => src,
  );
}

/** A generated run: its trace and, when asked for, the choices behind it. */
export interface GeneratedRun {
  trace: Trace;
  choices: TraceChoices | null;
}

/** The PRNG of run `index` of campaign `seed` (salt 1: generation). */
export function runRng(seed: number, index: number): Sfc32 {
  return new Sfc32(seed, index, 1);
}

/**
 * The PRNG of the late decisions of run `index` of campaign `seed` (salt 3): decisions
 * a generator gained after campaigns and the self-test had measured it (whether the VM
 * has manual dirty-log protect, a KVM_CLEAR_DIRTY_LOG after a GET). Drawn from their own
 * stream, they leave every earlier decision of a seed as it was.
 */
export function lateRng(seed: number, index: number): Sfc32 {
  return new Sfc32(seed, index, 3);
}

/**
 * Run `index` of campaign `seed`: the same trace on every machine and worker count.
 * With `record`, also returns the choices (for shrinking and mutation); a part's late
 * decisions ({@linkcode lateRng}) are recorded after its own, where `interpret` reads them.
 */
export function generateRun(
  seed: number,
  index: number,
  constraints: GenConstraints = {},
  record = false,
): GeneratedRun {
  const rng = runRng(seed, index);
  const src = new RandomSource(rng);
  const min = constraints.minSteps ?? 8;
  const max = constraints.maxSteps ?? 40;
  const count = min + (max > min ? src.int(max - min + 1) : 0);
  const choices: TraceChoices | null = record ? { prologue: [], steps: [] } : null;
  const late = new RandomSource(lateRng(seed, index));
  if (choices !== null) src.record = late.record = choices.prologue;
  const trace = build(
    src,
    count,
    () => {
      if (choices !== null) {
        const step: number[] = [];
        choices.steps.push(step);
        src.record = late.record = step;
      }
      return src;
    },
    constraints,
    () => late,
  );
  return { trace, choices };
}
