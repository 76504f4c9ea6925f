/**
 * @module
 * Resolving `--backend NAME` to a factory of the backend registry (`src/backends.ts`).
 * An unknown or unavailable backend is a usage error naming the reason.
 */
import type { BackendFactory, BackendName } from "../../src/backend.ts";
import { BACKENDS } from "../../src/backends.ts";
import { UsageError } from "./usage.ts";
import type { BackendRef } from "../campaign/worker.ts";

/**
 * The backend `name` among `allowed` (narrowed to its type), the reference a Worker
 * resolves, and the factory itself; usage errors otherwise.
 */
export function resolveBackendFlag<N extends BackendName>(
  name: string,
  allowed: readonly N[],
): { name: N; ref: BackendRef; factory: BackendFactory } {
  const known = allowed.find((a) => a === name);
  if (known === undefined) {
    throw new UsageError(`Unknown backend "${name}": expected one of ${allowed.join(", ")}`);
  }
  const factory = BACKENDS[known];
  const why = factory.available();
  if (why !== null) throw new UsageError(`Backend ${name} is not available here: ${why}`);
  return { name: known, ref: { name: known }, factory };
}
