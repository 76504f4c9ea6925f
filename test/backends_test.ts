/**
 * @module
 * The backend registry against the one list of names (`BACKEND_NAMES` in the contract):
 * the type of `BACKENDS` makes a missing or extra name a type error; this checks what
 * the type cannot, that each factory sits under its own name and creates backends of it.
 */
import assert from "node:assert/strict";
import { BACKEND_NAMES, isBackendName, JUDGED_BACKEND_NAMES } from "../src/backend.ts";
import { backendFactory, BACKENDS } from "../src/backends.ts";
import { defaultConfig } from "../src/trace/config.ts";

Deno.test("backends: the registry holds every name of BACKEND_NAMES, each factory under its own", () => {
  assert.deepEqual(Object.keys(BACKENDS), [...BACKEND_NAMES]);
  for (const name of BACKEND_NAMES) {
    assert.equal(BACKENDS[name].name, name, `BACKENDS.${name}`);
    assert.equal(backendFactory(name), BACKENDS[name]);
  }
});

Deno.test("backends: a backend a factory creates carries the factory's name", () => {
  for (const name of BACKEND_NAMES) {
    const factory = BACKENDS[name];
    const why = factory.available();
    if (why !== null) {
      console.log(`backends: skipping create() of ${name}: ${why}`);
      continue;
    }
    const backend = factory.create(defaultConfig());
    try {
      assert.equal(backend.name, name);
    } finally {
      backend.close();
    }
  }
});

Deno.test("backends: names outside BACKEND_NAMES are no backends, Object.prototype keys included", () => {
  for (const name of ["constructor", "toString", "Core", "", "reference "]) {
    assert.ok(!isBackendName(name), name);
    assert.throws(
      () => backendFactory(name),
      /^RangeError: Unknown backend ".*": expected one of reference, core, kvm$/,
    );
  }
  assert.ok(!(JUDGED_BACKEND_NAMES as readonly string[]).includes("reference"));
});
