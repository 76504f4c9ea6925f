/**
 * @module
 * The checked-in agent bytes are exactly what agent.S assembles to (skipped, with the
 * reason printed, where GNU as or objcopy is missing).
 */
import assert from "node:assert/strict";
import { AGENT_BYTES } from "./agent/agent_bin.ts";
import { assembleAgent, assemblerMissing } from "./agent/build.ts";
import {
  AGENT_GVA,
  OFF_ROUTINES,
  OFF_ROUTINES2,
  OFF_USER_SLOT,
  ROUTINE_COUNT,
  U_FETCH_BACK,
} from "./layout.ts";
import { routineOffset } from "./vm.ts";

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
  for (let k = 0; k < ROUTINE_COUNT; k++) {
    const off = routineOffset(k);
    assert.ok(off > OFF_ROUTINES && off < AGENT_BYTES.length, `routine ${k} at ${off}`);
    assert.ok(off < OFF_ROUTINES2 || off >= OFF_ROUTINES2 + 0x80, `routine ${k} in a table`);
  }
});

Deno.test("kvm agent: a ring-3 fetch's stack slot holds the gva of u_fetch_back", () => {
  const v = new DataView(AGENT_BYTES.buffer, AGENT_BYTES.byteOffset, AGENT_BYTES.byteLength);
  assert.equal(
    v.getBigUint64(OFF_USER_SLOT, true),
    AGENT_GVA + BigInt(routineOffset(U_FETCH_BACK)),
  );
  // ud2 there: a ret that returned without the #DB still comes back to the agent.
  assert.deepEqual([
    ...AGENT_BYTES.subarray(routineOffset(U_FETCH_BACK), routineOffset(U_FETCH_BACK) + 2),
  ], [0x0f, 0x0b]);
});

Deno.test("kvm agent: testdata/kvm-hang-records.json points a record at jmp *(%r12)", () => {
  // The hang repro writes this gva into a record (the watchdog tests depend on it).
  const trace = JSON.parse(
    Deno.readTextFileSync(new URL("./testdata/kvm-hang-records.json", import.meta.url)),
  );
  const at = trace.ops.map((o: { value?: string }) => o.value).find((v: string | undefined) =>
    v?.startsWith("0xffffff80")
  );
  const off = Number(BigInt(at) - AGENT_GVA);
  // 41 ff 24 24: jmp *(%r12) (SDM vol. 2A JMP, FF /4 with REX.B).
  assert.deepEqual([...AGENT_BYTES.subarray(off, off + 4)], [0x41, 0xff, 0x24, 0x24]);
});
