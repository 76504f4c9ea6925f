/**
 * @module
 * Dashboard benchmark over 10,000 synthetic findings (DESIGN.md section 8, issue 5):
 * server time of the list and finding pages through `app.request` (no network), then
 * 50 concurrent clients on loopback against `Deno.serve` with a bounded number of
 * requests. Prints one JSON object with p50/p99 in milliseconds; the goal is a p99
 * under 300 ms, reported, never asserted.
 *
 *     deno run --allow-read --allow-write --allow-net=127.0.0.1 bench/dashboard_bench.ts \
 *       [--findings 10000] [--clients 50] [--requests 2000]
 *
 * The clients run in the server's process, so loopback latencies include the client
 * side too (an upper bound on what a browser would see).
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { createApp } from "../src/dashboard/app.tsx";
import { sampleFinding, sampleId } from "../src/dashboard/_sample.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    findings: { type: "string", default: "10000" },
    clients: { type: "string", default: "50" },
    requests: { type: "string", default: "2000" },
  },
});
const FINDINGS = Number(values.findings);
const CLIENTS = Number(values.clients);
const REQUESTS = Number(values.requests);

/** A deterministic generator, so every run asks the same questions. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function stats(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
  const round = (v: number) => Math.round(v * 100) / 100;
  return {
    n: s.length,
    p50: round(at(0.5)),
    p99: round(at(0.99)),
    max: round(s[s.length - 1] ?? 0),
    mean: round(s.reduce((a, b) => a + b, 0) / Math.max(1, s.length)),
  };
}

const LIST_QUERIES = [
  "",
  "?sort=hits&dir=desc",
  "?sort=title&dir=asc",
  "?area=pmu",
  "?status=confirmed&sort=firstSeen",
  "?q=sample+12",
  "?page=57",
  "?area=mmu&status=new&sort=ops&dir=asc&page=3",
];

function listQuery(r: () => number): string {
  return LIST_QUERIES[Math.floor(r() * LIST_QUERIES.length)] ?? "";
}

function detailPath(r: () => number): string {
  return `/findings/${sampleId(1 + Math.floor(r() * FINDINGS))}`;
}

const dir = await Deno.makeTempDir({ prefix: "shadowfuzz-dash-bench-" });
try {
  const setupStart = performance.now();
  const base = join(dir, "findings");
  await Deno.mkdir(base);
  // Plain writes: this sets up data, the store's atomic writes are not what is measured.
  for (let i = 1; i <= FINDINGS; i += 200) {
    const batch = [];
    for (let n = i; n < Math.min(i + 200, FINDINGS + 1); n++) {
      const f = sampleFinding(n);
      batch.push(Deno.writeTextFile(join(base, `${f.id}.json`), JSON.stringify(f, null, 2)));
    }
    await Promise.all(batch);
  }
  const setupSeconds = (performance.now() - setupStart) / 1000;

  const app = createApp({ corpusDir: dir });
  const timeRequest = async (path: string) => {
    const t = performance.now();
    const res = await app.request(path);
    if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status}`);
    await res.text();
    return performance.now() - t;
  };

  const coldListMs = await timeRequest("/");
  const r = rng(42);
  const list: number[] = [];
  const apiList: number[] = [];
  const detail: number[] = [];
  for (let i = 0; i < 200; i++) list.push(await timeRequest(`/${listQuery(r)}`));
  for (let i = 0; i < 100; i++) apiList.push(await timeRequest(`/api/findings${listQuery(r)}`));
  for (let i = 0; i < 500; i++) detail.push(await timeRequest(detailPath(r)));

  // The periodic full re-read (every file statted, none re-parsed): an app whose
  // index never trusts the directory mtime.
  const rescanApp = createApp({ corpusDir: dir, maxAgeMs: 0 });
  await (await rescanApp.request("/")).text();
  const rescan: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t = performance.now();
    await (await rescanApp.request("/")).text();
    rescan.push(performance.now() - t);
  }

  const controller = new AbortController();
  const { promise: listening, resolve } = Promise.withResolvers<number>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: controller.signal, onListen: (a) => resolve(a.port) },
    app.fetch,
  );
  const origin = `http://127.0.0.1:${await listening}`;
  const latencies: number[] = [];
  const listLat: number[] = [];
  const detailLat: number[] = [];
  let next = 0;
  let failures = 0;
  const wallStart = performance.now();
  await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
    const cr = rng(1000 + c);
    while (next < REQUESTS) {
      next++;
      const isList = cr() < 0.5;
      const path = isList ? `/${listQuery(cr)}` : detailPath(cr);
      const t = performance.now();
      try {
        const res = await fetch(origin + path);
        await res.text();
        if (res.status !== 200) failures++;
      } catch {
        failures++;
      }
      const ms = performance.now() - t;
      latencies.push(ms);
      (isList ? listLat : detailLat).push(ms);
    }
  }));
  const wallSeconds = (performance.now() - wallStart) / 1000;
  controller.abort();
  await server.finished;

  console.log(JSON.stringify(
    {
      bench: "dashboard",
      findings: FINDINGS,
      setupSeconds: Math.round(setupSeconds * 100) / 100,
      goalP99Ms: 300,
      inProcess: {
        coldListMs: Math.round(coldListMs),
        list: stats(list),
        apiList: stats(apiList),
        detail: stats(detail),
        listWithFullRescan: stats(rescan),
      },
      loopback: {
        clients: CLIENTS,
        requests: latencies.length,
        failures,
        requestsPerSec: Math.round(latencies.length / wallSeconds),
        all: stats(latencies),
        list: stats(listLat),
        detail: stats(detailLat),
      },
    },
    null,
    2,
  ));
} finally {
  await Deno.remove(dir, { recursive: true });
}
