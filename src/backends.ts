/**
 * @module
 * The backend registry: every backend factory by name. Importing it has no side
 * effects (the kvm backend opens /dev/kvm only when a backend is created).
 */
import { BACKEND_NAMES, type BackendFactory, type BackendName, isBackendName } from "./backend.ts";
import { coreFactory } from "./core/mod.ts";
import { kvmFactory } from "./kvm/mod.ts";
import { referenceFactory } from "./reference/mod.ts";

/**
 * Every backend, by name: one entry per {@linkcode BACKEND_NAMES} entry (the type makes a
 * missing or an extra name an error), each factory under its own `name`
 * (test/backends_test.ts).
 */
export const BACKENDS: { readonly [N in BackendName]: BackendFactory } = {
  reference: referenceFactory,
  core: coreFactory,
  kvm: kvmFactory,
};

/**
 * The factory of `name`, or a RangeError naming the choices. Only the names of
 * {@linkcode BACKEND_NAMES} count: `constructor` or `toString` are not backends.
 */
export function backendFactory(name: string): BackendFactory {
  if (!isBackendName(name)) {
    throw new RangeError(
      `Unknown backend "${name}": expected one of ${BACKEND_NAMES.join(", ")}`,
    );
  }
  return BACKENDS[name];
}

export { BACKEND_NAMES, type BackendName };
