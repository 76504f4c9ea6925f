/**
 * @module
 * The checked-in agent bytes are exactly what agent.S assembles to (skipped, with the
 * reason printed, where GNU as or objcopy is missing).
 */
import assert from "node:assert/strict";
import { AGENT_BYTES } from "./agent/agent_bin.ts";
import { assembleAgent, assemblerMissing } from "./agent/build.ts";
import { OFF_ROUTINES, ROUTINE_COUNT } from "./layout.ts";

const missing = Deno.permissions.querySync({ name: "write" }).state !== "granted"
  ? "needs --allow-write for a temporary directory"
  : await assemblerMissing();
if (missing !== null) console.log(`agent rebuild test skipped: ${missing}`);

Deno.test({
  name: "kvm agent: assembling agent.S yields exactly the checked-in bytes",
  ignore: missing !== null,
  async fn() {
    const built = await assembleAgent();
    assert.equal(built.length, AGENT_BYTES.length);
    assert.deepEqual(built, AGENT_BYTES);
  },
});

Deno.test("kvm agent: every routine offset lies inside the agent's code", () => {
  const v = new DataView(AGENT_BYTES.buffer, AGENT_BYTES.byteOffset, AGENT_BYTES.byteLength);
  for (let k = 0; k < ROUTINE_COUNT; k++) {
    const off = v.getUint32(OFF_ROUTINES + 4 * k, true);
    assert.ok(off > OFF_ROUTINES && off < AGENT_BYTES.length, `routine ${k} at ${off}`);
  }
});
