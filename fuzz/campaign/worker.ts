/**
 * @module
 * The campaign Worker: receives the engine options once, then one message per epoch
 * (shared-state changes and its slice of run indexes), runs the slice and posts the
 * result. A shared stop flag (set on Ctrl-C) ends a slice early.
 */
import type { BackendFactory } from "../../src/backend.ts";
import { Engine, type EngineOptions, type EpochUpdate, type Slice } from "./engine.ts";

/** Where a Worker finds its backend: the registry by name, or a module export. */
export interface BackendRef {
  name: string;
  /** A module URL exporting the factory (tests); default the backend registry. */
  module?: string;
  export?: string;
}

/** Messages to a worker. */
export type ToWorker =
  | { type: "init"; options: EngineOptions; backend: BackendRef; stop: SharedArrayBuffer }
  | { type: "epoch"; update: EpochUpdate; slice: Slice; budgetMs: number };

/** Resolves a backend reference to its factory. */
export async function resolveBackend(ref: BackendRef): Promise<BackendFactory> {
  if (ref.module !== undefined) {
    const mod = await import(ref.module);
    const f = mod[ref.export ?? "default"] as BackendFactory | undefined;
    if (f === undefined) throw new TypeError(`Cannot find ${ref.export} in ${ref.module}`);
    return f;
  }
  const { backendFactory } = await import("../../src/backends.ts");
  return backendFactory(ref.name);
}

let engine: Engine | null = null;
let stop: Int32Array | null = null;

// deno-lint-ignore no-explicit-any
const scope = self as any;
scope.onmessage = async (ev: MessageEvent<ToWorker>) => {
  const msg = ev.data;
  try {
    if (msg.type === "init") {
      engine = new Engine(await resolveBackend(msg.backend), msg.options);
      stop = new Int32Array(msg.stop);
      scope.postMessage({ type: "ready" });
      return;
    }
    if (engine === null || stop === null) throw new Error("Worker used before init");
    engine.update(msg.update);
    const deadline = performance.now() + msg.budgetMs;
    const flag = stop;
    const result = engine.runSlice(
      msg.slice,
      () => Atomics.load(flag, 0) !== 0 || performance.now() > deadline,
    );
    scope.postMessage({ type: "result", result });
  } catch (e) {
    scope.postMessage({
      type: "error",
      message: e instanceof Error ? (e.stack ?? e.message) : String(e),
    });
  }
};
