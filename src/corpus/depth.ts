/**
 * @module
 * How deep a parsed JSON value nests, checked without recursion: a finding file whose
 * fields nest deeper than any real one (real findings nest 6 levels) is refused by name
 * before anything walks it recursively (JSON.stringify, a renderer) and overflows the
 * stack.
 */

/**
 * How deeply a finding's JSON may nest (objects and arrays). A finding the harness
 * writes nests 6 levels (the shipped corpus, measured); the fields the store does not
 * look into (`divergence.observed`, the `permitted` entries, `config`, the ops, unknown
 * fields) could nest 100,000 levels, which overflows the stack of `JSON.stringify`
 * with indentation (the raw JSON view) and of any recursive renderer.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Where a value nests deeper than `max` levels, as a field path (`divergence.observed`,
 * at most two segments deep), or `null` when it does not. Iterative, so it cannot
 * overflow the stack itself, and it stops at the first too-deep value.
 */
export function tooDeepAt(value: unknown, max: number = MAX_JSON_DEPTH): string | null {
  // Parallel stacks (no frame objects); a path is built only for the top two levels,
  // deeper values share their ancestor's.
  const values: unknown[] = [value];
  const depths: number[] = [0];
  const paths: string[] = [""];
  while (values.length > 0) {
    const v = values.pop();
    const depth = (depths.pop() as number) + 1;
    const path = paths.pop() as string;
    if (v === null || typeof v !== "object") continue;
    if (depth > max) return path === "" ? "(top level)" : path;
    const named = depth <= 2;
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) {
        const x = v[i];
        if (x === null || typeof x !== "object") continue;
        values.push(x);
        depths.push(depth);
        paths.push(named ? `${path}[${i}]` : path);
      }
    } else {
      const o = v as Record<string, unknown>;
      for (const k in o) {
        const x = o[k];
        if (x === null || typeof x !== "object") continue;
        values.push(x);
        depths.push(depth);
        paths.push(named ? (path === "" ? k : `${path}.${k}`) : path);
      }
    }
  }
  return null;
}
