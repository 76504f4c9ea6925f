/**
 * @module
 * Child process of `deno task bench`: the core's resident memory after touching 1M
 * pages spread over a 1 TiB guest-physical slot (docs/design.md, quality bars: < 256 MiB).
 * Prints one JSON object.
 */
import { BACKENDS } from "../src/backends.ts";
import { defaultConfig } from "../src/trace/config.ts";

const quick = Deno.args.includes("--quick");
const core = BACKENDS.core;
if (core === undefined) throw new Error("no core backend registered");
const pages = 2 ** 28; // 1 TiB of 4 KiB pages
const touched = quick ? 100_000 : 1_000_000;
const backend = core.create(defaultConfig());
const before = Deno.memoryUsage().rss;
backend.step({ op: "slot", id: 0, gpa: 0n, pages, hva: 0x10000000000n, flags: [] });
const stride = BigInt(Math.floor(pages / touched)) * 4096n;
for (let i = 0; i < touched; i++) {
  backend.step({ op: "write", gpa: BigInt(i) * stride, size: 8, value: BigInt(i + 1) });
}
// Read a sample back so the stores cannot be optimized away.
let sum = 0n;
for (let i = 0; i < touched; i += 997) {
  const o = backend.step({ op: "read", gpa: BigInt(i) * stride, size: 8 });
  if ("value" in o) sum += o.value;
}
const rss = Deno.memoryUsage().rss;
console.log(JSON.stringify({
  touchedPages: touched,
  guestPhysBytes: pages * 4096,
  rssBytes: rss,
  rssBeforeBytes: before,
  checksum: sum.toString(),
}));
