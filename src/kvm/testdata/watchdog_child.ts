/**
 * @module
 * The child process of `watchdog_test.ts`: runs guests that never exit on the kvm
 * backend and prints one JSON line per scenario. It is a separate process so that, on a
 * backend without a watchdog, the test fails on its timeout instead of hanging the
 * suite (a thread blocked in KVM_RUN cannot be stopped from JavaScript).
 *
 * Run: `deno run --allow-read --allow-ffi src/kvm/testdata/watchdog_child.ts`
 */
import { AGENT_BYTES } from "../agent/agent_bin.ts";
import { KvmBackend } from "../backend.ts";
import * as L from "../layout.ts";
import { parseTrace } from "../../trace/parse.ts";
import { formatOutcome, parseOp } from "../../trace/text.ts";
import type { Op } from "../../trace/types.ts";

const HANG = new URL("./kvm-hang-records.json", import.meta.url);

/**
 * The gva of the agent's `batch` label (back to record 0): the target of the `jmp` that
 * follows `out` in the `done` routine (agent.S: `out %al, $EXIT_PORT; jmp batch`,
 * encoded e6 10 eb rel8).
 */
function batchLabel(): bigint {
  const v = new DataView(AGENT_BYTES.buffer, AGENT_BYTES.byteOffset, AGENT_BYTES.byteLength);
  const done = v.getUint32(L.OFF_ROUTINES + 4 * L.K_DONE, true);
  const b = (i: number) => AGENT_BYTES[done + i]!;
  if (b(0) !== 0xe6 || b(1) !== L.EXIT_PORT || b(2) !== 0xeb) {
    throw new Error("Cannot find the agent's batch label: done is not `out; jmp rel8`");
  }
  return L.AGENT_GVA + BigInt(done + 4 + ((b(3) << 24) >> 24));
}

function line(o: Record<string, unknown>): void {
  console.log(JSON.stringify(o));
}

function timed<T>(f: () => T): [T, number] {
  const t0 = performance.now();
  const r = f();
  return [r, performance.now() - t0];
}

function stepAll(b: KvmBackend, ops: readonly Op[]): { outs: string[]; ms: number[] } {
  const outs: string[] = [], ms: number[] = [];
  for (const op of ops) {
    const [o, t] = timed(() => b.step(op));
    outs.push(formatOutcome(o));
    ms.push(t);
  }
  return { outs, ms };
}

/** A small trace that must run normally: tables, a store and a load through them. */
const HEALTHY = [
  "slot 0 gpa=0x0 pages=64 hva=0x100000000",
  "write 0x1000 0x2007",
  "write 0x2000 0x3007",
  "write 0x3000 0x4007",
  "write 0x4000 0x5003",
  "cr3 0x1000",
  "access w 0x10 0x1122334455667788",
  "access r 0x10",
  "read 0x123456789",
].map(parseOp);

function healthy(name: string): void {
  const b = new KvmBackend(parseTrace(Deno.readTextFileSync(HANG)).config);
  try {
    const { outs, ms } = stepAll(b, HEALTHY);
    line({ scenario: name, outs, maxMs: Math.max(...ms) });
  } finally {
    b.close();
  }
}

// 1. The repro trace, one op at a time, with the default watchdog.
const trace = parseTrace(Deno.readTextFileSync(HANG));
{
  const b = new KvmBackend(trace.config);
  const r = stepAll(b, trace.ops);
  line({ scenario: "repro", ...r, watchdogMs: b.watchdogMs, dead: b.dead });
  b.close();
}
// 2. A fresh backend in the same thread runs normally right after.
healthy("after repro");
// 3. A batch that loops back to record 0 through an MMIO exit each time round: no
//    single KVM_RUN lasts long, the batch never ends.
{
  const b = new KvmBackend(trace.config, { watchdogMs: 500 });
  stepAll(b, trace.ops.slice(0, 6));
  const [outs, ms] = timed(() =>
    b.runBatch([
      // Record 2 (the batch's final record, at gva 0x3080 through the trace's tables)
      // jumps back to `batch` instead of leaving.
      { op: "access", kind: "write", user: false, size: 8, gva: 0x3080n, value: batchLabel() },
      { op: "read", gpa: 0x1000_0000n, size: 8 },
    ]).map(formatOutcome)
  );
  line({ scenario: "mmio loop", outs, ms, watchdogMs: b.watchdogMs });
  b.close();
}
healthy("after mmio loop");
// 4. The same on a worker thread: its VMs signal that thread.
{
  const w = new Worker(new URL("./watchdog_worker.ts", import.meta.url).href, { type: "module" });
  const r = await new Promise<Record<string, unknown>>((resolve, reject) => {
    w.onmessage = (e) => resolve(e.data);
    w.onerror = (e) => reject(new Error(`the worker failed: ${e.message}`));
  });
  w.terminate();
  line({ scenario: "worker", ...r });
}
