/**
 * @module
 * The backend registry: every backend factory by name. Importing it has no side
 * effects (the kvm backend opens /dev/kvm only when a backend is created).
 */
import type { BackendFactory, BackendName } from "./backend.ts";
import { coreFactory } from "./core/mod.ts";
import { kvmFactory } from "./kvm/mod.ts";
import { referenceFactory } from "./reference/mod.ts";

/** Every backend, by name. */
export const BACKENDS: Readonly<Record<string, BackendFactory>> = {
  reference: referenceFactory,
  core: coreFactory,
  kvm: kvmFactory,
};

/**
 * The factory of `name`, or a RangeError naming the choices. Only the registry's own
 * names count: `constructor` or `toString` are not backends (`Object.hasOwn`).
 */
export function backendFactory(name: string): BackendFactory {
  const f = Object.hasOwn(BACKENDS, name) ? BACKENDS[name] : undefined;
  if (f === undefined) {
    throw new RangeError(
      `Unknown backend "${name}": expected one of ${Object.keys(BACKENDS).join(", ")}`,
    );
  }
  return f;
}

export type { BackendName };
