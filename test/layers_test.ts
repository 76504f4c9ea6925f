/**
 * @module
 * The import layers of the tree: no module imports itself through others (an import
 * cycle); nothing under `src/`, `fuzz/` or `bench/` imports from `test/` (the test
 * suites sit on top of the library, the fuzzer and the benchmarks, never under them);
 * the trace format (`src/trace/`) imports only itself and the x86 constants.
 *
 * The graph is read with a regex over the relative specifiers of top-level `import` and
 * `export ... from` statements (deno fmt puts them at column 0, so examples inside doc
 * comments, which start with ` * `, are not read). Cycles count static imports only,
 * `import type` included: a type-only cycle still ties two layers together. The `test/`
 * rule also counts literal dynamic `import("...")` calls.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = normalize(join(dirname(fileURLToPath(import.meta.url)), ".."));
const TREES = ["src", "fuzz", "bench", "test"] as const;
/** Trees that must not import from `test/`. */
const BELOW_TEST = ["src/", "fuzz/", "bench/"] as const;

/** A module's relative imports, as paths from the repository root. */
interface Imports {
  /** `import ... from`, `import "..."`, `export ... from`. */
  static: string[];
  /** `import("...")` with a string literal. */
  dynamic: string[];
}

const STATIC_FROM =
  /^(?:import|export)(?:\s+type)?\s*(?:\{[^}]*\}|\*(?:\s+as\s+\w+)?|\w+(?:\s*,\s*(?:\{[^}]*\}|\*\s+as\s+\w+))?)\s*from\s*["']([^"']+)["']/gm;
const STATIC_BARE = /^import\s*["']([^"']+)["']/gm;
const DYNAMIC = /\bimport\(\s*["']([^"']+)["']\s*\)/g;

/** The relative imports of the module at `path` (relative to the root) with text `text`. */
function importsOf(path: string, text: string): Imports {
  const resolve = (spec: string) => normalize(join(dirname(path), spec));
  const relativeOnly = (specs: string[]) => specs.filter((s) => s.startsWith(".")).map(resolve);
  const all = (re: RegExp) => [...text.matchAll(re)].map((m) => m[1]!);
  return {
    static: relativeOnly([...all(STATIC_FROM), ...all(STATIC_BARE)]),
    dynamic: relativeOnly(all(DYNAMIC)),
  };
}

/**
 * Every import cycle, one per strongly connected component (Tarjan), each as the path
 * `a -> b -> ... -> a`; a module that imports itself is a cycle of one.
 */
function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let next = 0;
  const connect = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(component);
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v);
  return components.map((c) => cyclePath(graph, new Set(c)));
}

/** One concrete cycle inside a strongly connected component, from its first module. */
function cyclePath(graph: ReadonlyMap<string, readonly string[]>, members: Set<string>): string[] {
  const start = [...members].sort()[0]!;
  const previous = new Map<string, string>();
  const queue = [start];
  // Breadth first from start over the component, until an edge leads back to start.
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [start];
        for (let u = v; u !== start; u = previous.get(u)!) path.splice(1, 0, u);
        return [...path, start];
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  throw new Error(`Cannot find a cycle in component: ${[...members].join(", ")}`);
}

/** Every .ts and .tsx module under the trees, as paths from the root. */
function modules(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of Deno.readDirSync(join(ROOT, dir))) {
      const path = join(dir, e.name);
      if (e.isDirectory) walk(path);
      else if (/\.tsx?$/.test(e.name)) out.push(path);
    }
  };
  for (const tree of TREES) walk(tree);
  out.push("mod.ts");
  return out.sort();
}

function readGraph(): Map<string, Imports> {
  const graph = new Map<string, Imports>();
  for (const path of modules()) {
    graph.set(path, importsOf(path, Deno.readTextFileSync(join(ROOT, path))));
  }
  return graph;
}

Deno.test("layers: importsOf reads static, type, re-export and dynamic imports, not doc examples", () => {
  const text = [
    "/**",
    ' * import { x } from "./in_doc.ts";',
    " */",
    'import { a } from "./a.ts";',
    'import type { B } from "../b.ts";',
    "import {",
    "  c,",
    "  type D,",
    '} from "./c.ts";',
    'import * as e from "./e.ts";',
    'import f, { g } from "./f.ts";',
    'import "./side.ts";',
    'export * from "./g.ts";',
    'export { h } from "./h.ts";',
    'import fc from "fast-check";',
    'const m = await import("../test/m.ts");',
  ].join("\n");
  const got = importsOf("src/x/y.ts", text);
  assert.deepEqual(got.static.sort(), [
    "src/b.ts",
    "src/x/a.ts",
    "src/x/c.ts",
    "src/x/e.ts",
    "src/x/f.ts",
    "src/x/g.ts",
    "src/x/h.ts",
    "src/x/side.ts",
  ]);
  assert.deepEqual(got.dynamic, ["src/test/m.ts"]);
});

Deno.test("layers: findCycles reports each cycle as a path, self-imports included", () => {
  const graph = new Map<string, string[]>([
    ["a.ts", ["b.ts"]],
    ["b.ts", ["c.ts", "d.ts"]],
    ["c.ts", ["a.ts"]],
    ["d.ts", []],
    ["e.ts", ["e.ts"]],
    ["f.ts", ["d.ts", "outside.ts"]],
  ]);
  assert.deepEqual(findCycles(graph), [["a.ts", "b.ts", "c.ts", "a.ts"], ["e.ts", "e.ts"]]);
  assert.deepEqual(findCycles(new Map([["a.ts", ["b.ts"]], ["b.ts", []]])), []);
});

Deno.test("layers: no import cycle in src/, fuzz/, bench/, test/ and mod.ts", () => {
  const graph = readGraph();
  const edges = new Map([...graph].map(([path, i]) => [path, i.static]));
  const cycles = findCycles(edges).map((c) => c.join(" -> "));
  assert.deepEqual(cycles, [], `import cycles:\n  ${cycles.join("\n  ")}`);
});

Deno.test("layers: nothing under src/, fuzz/ or bench/ imports from test/", () => {
  const bad: string[] = [];
  for (const [path, imports] of readGraph()) {
    if (!BELOW_TEST.some((tree) => path.startsWith(tree))) continue;
    for (const target of [...imports.static, ...imports.dynamic]) {
      if (target.startsWith("test/")) bad.push(`${path} -> ${target}`);
    }
  }
  assert.deepEqual(bad, [], `imports from test/:\n  ${bad.join("\n  ")}`);
});

Deno.test("layers: the trace format (src/trace/) imports only itself and src/x86/", () => {
  // Everything else depends on the trace types; a trace module importing the backend
  // contract, a backend or the corpus turns that around (Permitted lived in backend.ts).
  const bad: string[] = [];
  for (const [path, imports] of readGraph()) {
    if (!path.startsWith("src/trace/")) continue;
    for (const target of [...imports.static, ...imports.dynamic]) {
      if (!target.startsWith("src/trace/") && !target.startsWith("src/x86/")) {
        bad.push(`${path} -> ${target}`);
      }
    }
  }
  assert.deepEqual(bad, [], `src/trace/ imports from outside:\n  ${bad.join("\n  ")}`);
});

/**
 * The stages of `fuzz/` (fuzz/README.md, "Layout"), lowest first: a module may import
 * from its own stage and the ones before it, never from a later one.
 */
const FUZZ_STAGES = [
  "fuzz/model/",
  "fuzz/gen/",
  "fuzz/reduce/",
  "fuzz/campaign/",
  "fuzz/commands/",
  "fuzz/cli.ts",
] as const;

/** The stage index of a fuzz/ path, or null outside the staged folders (`testing/`). */
function fuzzStage(path: string): number | null {
  const i = FUZZ_STAGES.findIndex((s) => path.startsWith(s));
  return i < 0 ? null : i;
}

/** The imports of `graph` that go from a fuzz/ stage to a later one. */
function stageViolations(graph: ReadonlyMap<string, Imports>): string[] {
  const bad: string[] = [];
  for (const [path, imports] of graph) {
    const from = fuzzStage(path);
    if (from === null) continue;
    for (const target of [...imports.static, ...imports.dynamic]) {
      const to = fuzzStage(target);
      if (to !== null && to > from) bad.push(`${path} -> ${target}`);
    }
  }
  return bad.sort();
}

Deno.test("layers: every module of fuzz/ sits in a stage folder (or testing/)", () => {
  const loose = [...readGraph().keys()].filter((p) =>
    p.startsWith("fuzz/") && fuzzStage(p) === null && !p.startsWith("fuzz/testing/")
  );
  assert.deepEqual(loose, [], `fuzz/ modules outside the stage folders:\n  ${loose.join("\n  ")}`);
});

Deno.test("layers: a fuzz/ stage imports only from itself and earlier stages", () => {
  // The check itself: an edge from generation to reduction is caught.
  const probe = new Map<string, Imports>([
    ["fuzz/gen/a.ts", { static: ["fuzz/reduce/b.ts", "fuzz/model/c.ts"], dynamic: [] }],
  ]);
  assert.deepEqual(stageViolations(probe), ["fuzz/gen/a.ts -> fuzz/reduce/b.ts"]);
  const bad = stageViolations(readGraph());
  assert.deepEqual(bad, [], `imports from a later fuzz/ stage:\n  ${bad.join("\n  ")}`);
});

Deno.test("layers: the graph reads every module and resolves its imports to files", () => {
  const graph = readGraph();
  assert.ok(graph.size > 100, `only ${graph.size} modules`);
  const missing: string[] = [];
  for (const [path, imports] of graph) {
    for (const target of imports.static) {
      if (!graph.has(target) && !existsFile(target)) missing.push(`${path} -> ${target}`);
    }
  }
  assert.deepEqual(missing, [], `imports the graph cannot resolve:\n  ${missing.join("\n  ")}`);
  // The regex must see the imports of a module written across lines.
  assert.ok(graph.get("mod.ts")!.static.includes("src/trace/types.ts"));
});

function existsFile(path: string): boolean {
  try {
    return Deno.statSync(join(ROOT, path)).isFile;
  } catch {
    return false;
  }
}
