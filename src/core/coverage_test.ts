import assert from "node:assert/strict";
import { Cov, COVERAGE_NAMES } from "./coverage.ts";

Deno.test("core: coverage indices match their names", () => {
  const entries = Object.entries(Cov);
  assert.equal(entries.length, COVERAGE_NAMES.length);
  for (const [key, index] of entries) {
    assert.equal(COVERAGE_NAMES[index]!.replaceAll("-", "_").toUpperCase(), key);
  }
  assert.equal(new Set(COVERAGE_NAMES).size, COVERAGE_NAMES.length);
});
