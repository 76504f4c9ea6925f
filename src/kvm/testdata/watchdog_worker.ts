/**
 * @module
 * A Deno worker for `watchdog_child.ts`: runs the hang repro on its own thread (as
 * campaign workers run traces), then a fresh backend, and posts the outcomes.
 */
import { KvmBackend } from "../backend.ts";
import { parseTrace } from "../../trace/parse.ts";
import { formatOutcome } from "../../trace/text.ts";

const trace = parseTrace(
  Deno.readTextFileSync(new URL("./kvm-hang-records.json", import.meta.url)),
);
const b = new KvmBackend(trace.config);
const t0 = performance.now();
const outs = trace.ops.map((op) => formatOutcome(b.step(op)));
const ms = performance.now() - t0;
b.close();
const after = new KvmBackend(trace.config);
const first = formatOutcome(after.step(trace.ops[0]!));
after.close();
(self as unknown as { postMessage(m: unknown): void }).postMessage({ outs, ms, after: first });
