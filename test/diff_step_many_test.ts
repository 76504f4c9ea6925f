/**
 * @module
 * diffTrace with a backend that runs whole traces (`Backend.stepMany`): the same
 * DiffResult as op-by-op `supports` and `step` (divergences, crashes, skips and their
 * first reason), stepMany called once and step never; not used with `audit`, nor for a
 * backend with `coverage`; a backend with `trail` runs batched too, and a divergence's
 * path comes from a rerun with `trail: true`, op by op. The test backend wraps the reference, refuses
 * `age` ops and, state-dependently, reads after a `ctl`, and diverges on demand.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Backend, BackendFactory, StepResult } from "../src/backend.ts";
import { type DiffOptions, diffTrace } from "../src/diff.ts";
import { ReferenceBackend } from "../src/reference/mod.ts";
import { defaultConfig } from "../src/trace/config.ts";
import { parseOp } from "../src/trace/text.ts";
import type { Config, Op, Outcome, Trace } from "../src/trace/types.ts";
import { arbDenseOp, DENSE_SETUP } from "../fuzz/gen/arb_dense.ts";

interface Calls {
  step: number;
  stepMany: number;
}

interface Shape {
  /** Offer stepMany. */
  many: boolean;
  /** Give a wrong outcome for the op with this index (among ops run), if any. */
  corruptAt?: number;
  /** Give a crash outcome for the op with this index (among ops run), if any. */
  crashAt?: number;
  /** Throw from step/stepMany at this run index. */
  throwAt?: number;
  trail?: boolean;
  audit?: boolean;
}

class Wrapped implements Backend {
  readonly name = "core" as const;
  readonly #ref: ReferenceBackend;
  #ran = 0;
  #sawCtl = false;
  trail?: () => readonly string[];
  audit?: () => string[];
  stepMany?: (ops: readonly Op[]) => StepResult[];

  constructor(config: Config, readonly shape: Shape, readonly calls: Calls) {
    this.#ref = new ReferenceBackend(config);
    if (shape.trail) this.trail = () => ["event"];
    if (shape.audit) this.audit = () => [];
    if (shape.many) {
      this.stepMany = (ops) => {
        calls.stepMany++;
        return ops.map((op) => {
          const why = this.supports(op);
          return why === null ? this.#step(op) : { skip: why };
        });
      };
    }
  }

  supports(op: Op): string | null {
    if (op.op === "age") return "no aging here";
    if (op.op === "read" && this.#sawCtl) return "no reads after a ctl";
    return null;
  }

  step(op: Op): Outcome {
    this.calls.step++;
    return this.#step(op);
  }

  #step(op: Op): Outcome {
    const n = this.#ran++;
    if (op.op === "ctl") this.#sawCtl = true;
    if (n === this.shape.throwAt) throw new Error(`thrown at run ${n}`);
    const out = this.#ref.step(op);
    if (n === this.shape.crashAt) return { crash: "crashed" };
    if (n !== this.shape.corruptAt) return out;
    return "value" in out
      ? { value: out.value ^ 0x100n }
      : "gp" in out
      ? { ok: true }
      : { gp: true };
  }

  close(): void {}
}

function factory(shape: Shape, calls: Calls, trails?: boolean[]): BackendFactory {
  return {
    name: "core",
    available: () => null,
    create: (config, options) => {
      trails?.push(options?.trail ?? false);
      return new Wrapped(config, shape, calls);
    },
  };
}

/** diffTrace with and without stepMany; asserts equal results and who ran the ops. */
function both(trace: Trace, shape: Omit<Shape, "many">, options: DiffOptions = {}) {
  const perOp: Calls = { step: 0, stepMany: 0 };
  const whole: Calls = { step: 0, stepMany: 0 };
  const a = diffTrace(trace, factory({ ...shape, many: false }, perOp), options);
  const b = diffTrace(trace, factory({ ...shape, many: true }, whole), options);
  assert.deepEqual(b, a);
  return { result: a, perOp, whole };
}

const trace = (lines: string[]): Trace => ({
  format: "shadowfuzz.trace/1",
  config: defaultConfig(),
  ops: lines.map(parseOp),
});

Deno.test("diff: stepMany runs the trace once and gives op-by-op's result, skips included", () => {
  const t = trace([
    "read 0x0",
    "slot 0 gpa=0x0 pages=16 hva=0x100000000",
    "write 0x8 0x5",
    "age 0x0 pages=1",
    "read 0x8",
    "ctl wp=0",
    "read 0x8",
    "write 0x10 0x6",
  ]);
  const { result, perOp, whole } = both(t, {});
  // Ops 3 (age) and 6 (a read after the ctl) are skipped.
  assert.deepEqual(
    [result.divergence, result.ops, result.skipped, result.skipIndex, result.skipReason],
    [null, t.ops.length, 2, 3, "no aging here"],
  );
  assert.deepEqual(perOp, { step: t.ops.length - 2, stepMany: 0 });
  assert.deepEqual(whole, { step: 0, stepMany: 1 });
});

Deno.test("diff: with stepMany a divergence, crash or throw is at the same op as with step", () => {
  const t = trace([
    "slot 0 gpa=0x0 pages=16 hva=0x100000000",
    "age 0x0 pages=1",
    "write 0x8 0x5",
    "read 0x8",
    "write 0x10 0x6",
  ]);
  // Run index 2 is trace op 3 (op 1 is skipped).
  const crash = both(t, { crashAt: 2 }).result;
  assert.deepEqual([crash.divergence?.kind, crash.divergence?.index, crash.ops], ["crash", 3, 4]);
  const wrong = both(t, { corruptAt: 2 }).result;
  assert.deepEqual(
    [wrong.divergence?.kind, wrong.divergence?.index, wrong.divergence?.observed],
    ["divergence", 3, { value: 0x105n }],
  );
  // A throw from step is a crash at its op; stepMany's throw names no op, so only the
  // op-by-op runner can say which op: the first op gets it there.
  const perOp = diffTrace(t, factory({ many: false, throwAt: 2 }, { step: 0, stepMany: 0 }));
  assert.deepEqual([perOp.divergence?.kind, perOp.divergence?.index], ["crash", 3]);
  const whole = diffTrace(t, factory({ many: true, throwAt: 2 }, { step: 0, stepMany: 0 }));
  assert.deepEqual([whole.divergence?.kind, whole.divergence?.index], ["crash", 0]);
  assert.match(JSON.stringify(whole.divergence?.observed), /thrown at run 2/);
});

Deno.test("diff: stepMany is not used with audit; a backend with a trail runs batched", () => {
  const t = trace(["slot 0 gpa=0x0 pages=16 hva=0x100000000", "write 0x8 0x5", "read 0x8"]);
  const audited = both(t, { audit: true }, { audit: true });
  assert.deepEqual(audited.whole, { step: 3, stepMany: 0 });
  const trailed = both(t, { trail: true });
  assert.deepEqual(trailed.whole, { step: 0, stepMany: 1 });
  // Audit asked for, but the backend has none: stepMany again.
  assert.deepEqual(both(t, {}, { audit: true }).whole, { step: 0, stepMany: 1 });
});

Deno.test("diff: a trail backend's path and history come from a rerun with trail: true", () => {
  const t = trace(["slot 0 gpa=0x0 pages=16 hva=0x100000000", "write 0x8 0x5", "read 0x8"]);
  const calls: Calls = { step: 0, stepMany: 0 };
  const trails: boolean[] = [];
  const r = diffTrace(t, factory({ many: true, trail: true, corruptAt: 2 }, calls, trails));
  assert.equal(r.divergence?.index, 2);
  assert.deepEqual(r.divergence?.path, ["event"]);
  assert.deepEqual(r.divergence?.history?.map((h) => h.events), [["event"], ["event"]]);
  // The run itself batched; the rerun stepped the three ops, asking for the trail.
  assert.deepEqual(calls, { step: 3, stepMany: 1 });
  assert.deepEqual(trails, [false, true]);
  // Without the path (the known-deviation check) there is no rerun.
  const quiet: boolean[] = [];
  const q = diffTrace(t, factory({ many: true, trail: true, corruptAt: 2 }, calls, quiet), {
    path: false,
  });
  assert.equal(q.divergence?.path, undefined);
  assert.deepEqual(quiet, [false]);
});

Deno.test("diff: stepMany and step agree on random dense traces", () => {
  fc.assert(
    fc.property(
      fc.array(arbDenseOp(), { minLength: 5, maxLength: 40 }),
      fc.option(fc.integer({ min: 0, max: 45 }), { nil: undefined }),
      (ops, corruptAt) => {
        // (A corrupted op may still be permitted: both runners then agree on that too.)
        const t: Trace = {
          format: "shadowfuzz.trace/1",
          config: defaultConfig(),
          ops: [...DENSE_SETUP, ...ops],
        };
        const { whole } = both(t, corruptAt === undefined ? {} : { corruptAt });
        assert.deepEqual(whole, { step: 0, stepMany: 1 });
      },
    ),
    { numRuns: 60, seed: 20261201 },
  );
});
