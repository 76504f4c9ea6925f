/**
 * @module
 * Resolving `--backend NAME` to a factory: the backend registry first, then the known
 * module of each backend (so that the fuzzer works while a backend is not yet
 * registered). An unknown or unavailable backend is a usage error naming the reason.
 */
import type { BackendFactory } from "../src/backend.ts";
import { BACKENDS } from "../src/backends.ts";
import { UsageError } from "./usage.ts";
import type { BackendRef } from "./worker.ts";

/** Where each backend's factory lives, if the registry lacks it. */
const MODULES: Record<string, { module: string; export: string }> = {
  core: { module: new URL("../src/core/mod.ts", import.meta.url).href, export: "coreFactory" },
  kvm: { module: new URL("../src/kvm/mod.ts", import.meta.url).href, export: "kvmFactory" },
};

/** The reference a Worker resolves, and the factory itself; usage errors otherwise. */
export async function resolveBackendFlag(
  name: string,
  allowed: readonly string[],
): Promise<{ ref: BackendRef; factory: BackendFactory }> {
  if (!allowed.includes(name)) {
    throw new UsageError(`Unknown backend "${name}": expected one of ${allowed.join(", ")}`);
  }
  let factory: BackendFactory | undefined = BACKENDS[name];
  let ref: BackendRef = { name };
  if (factory === undefined) {
    const m = MODULES[name];
    if (m === undefined) throw new UsageError(`Unknown backend "${name}"`);
    try {
      factory = (await import(m.module))[m.export] as BackendFactory | undefined;
    } catch (e) {
      throw new UsageError(
        `Backend ${name} is not available here: ${(e as Error).message.split("\n")[0]}`,
      );
    }
    if (factory === undefined) throw new UsageError(`Backend ${name} is not available here`);
    ref = { name, module: m.module, export: m.export };
  }
  const why = factory.available();
  if (why !== null) throw new UsageError(`Backend ${name} is not available here: ${why}`);
  return { ref, factory };
}
