/**
 * @module
 * Dashboard benchmark over 10,000 synthetic findings (docs/design.md, issue 5):
 * server time of the list and finding pages through `app.request` (no network), then
 * 50 concurrent clients on loopback against `Deno.serve` with a bounded number of
 * requests. Prints one JSON object with p50/p99 in milliseconds; the goal is a p99
 * under 300 ms, reported, never asserted.
 *
 * The `big` scenario (issue 13 item 7) adds one finding with a 100,000-op trace to a
 * small corpus, puts 20 clients on its page for a bounded number of requests, and
 * meanwhile times a probe client on the other routes (list, a small finding, runs, the
 * API); it reports the page size, both latencies and the server's resident memory
 * before, at peak and after. With `--allow-run` the server is a child process
 * (`serve.ts`), so its memory is its own; without, it shares this process with the
 * clients, and the output says so.
 *
 *     deno run --allow-read --allow-write --allow-net=127.0.0.1 [--allow-run] \
 *       bench/dashboard_bench.ts [--scenario all|list|big] [--findings 10000] \
 *       [--clients 50] [--requests 2000] [--big-ops 100000] [--big-clients 20] \
 *       [--big-requests 100]
 *
 * The clients run in the server's process, so loopback latencies include the client
 * side too (an upper bound on what a browser would see).
 */
import { join } from "node:path";
import { createApp } from "../src/dashboard/app.tsx";
import { bigSampleFinding, sampleFinding, sampleId, sampleRun } from "../src/dashboard/_sample.ts";
import { taskArgsOrExit } from "./args.ts";

const USAGE = `Usage: deno task bench:dashboard [--scenario all|list|big] [--findings N]
         [--clients N] [--requests N] [--big-ops N] [--big-clients N] [--big-requests N]

Dashboard latency: the list and finding pages over N synthetic findings, in process
and under concurrent loopback clients (list); one finding with a huge trace under
concurrent clients while a probe times the other routes, and the server's memory
(big). Prints one JSON object with p50/p99 in ms; asserts nothing about time.

  --scenario S       all (default), list or big
  --findings N       synthetic findings of the list scenario (default 10000)
  --clients N        concurrent loopback clients of the list scenario (default 50)
  --requests N       requests they make in all (default 2000)
  --big-ops N        ops of the big finding's trace (default 100000)
  --big-clients N    clients on the big finding's page (default 20)
  --big-requests N   requests they make in all (default 100)
  --help, -h         print this help`;

const values = taskArgsOrExit("bench:dashboard", Deno.args, {
  scenario: { type: "string", default: "all" },
  findings: { type: "string", default: "10000" },
  clients: { type: "string", default: "50" },
  requests: { type: "string", default: "2000" },
  "big-ops": { type: "string", default: "100000" },
  "big-clients": { type: "string", default: "20" },
  "big-requests": { type: "string", default: "100" },
}, USAGE);
/** A positive integer option, or exit 2 with a one-line message naming it. */
function count(name: keyof typeof values): number {
  const text = String(values[name]);
  if (!/^\d{1,9}$/.test(text) || Number(text) < 1) {
    console.error(`Cannot parse arguments: --${name} ${text} is not a positive integer`);
    Deno.exit(2);
  }
  return Number(text);
}
const SCENARIO = values.scenario;
if (SCENARIO !== "all" && SCENARIO !== "list" && SCENARIO !== "big") {
  console.error(`Cannot parse arguments: --scenario ${SCENARIO} is not all, list or big`);
  Deno.exit(2);
}
const FINDINGS = count("findings");
const CLIENTS = count("clients");
const REQUESTS = count("requests");
const BIG_OPS = count("big-ops");
const BIG_CLIENTS = count("big-clients");
const BIG_REQUESTS = count("big-requests");

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

async function listScenario() {
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
      {
        hostname: "127.0.0.1",
        port: 0,
        signal: controller.signal,
        onListen: (a) => resolve(a.port),
      },
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

    return {
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
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A running dashboard server: its origin, how to read its memory, how to stop it. */
interface Server {
  origin: string;
  /** Resident set size in bytes, and the peak so far when the OS tells it. */
  memory(): Promise<{ rss: number; peak: number | null }>;
  stop(): Promise<void>;
  where: "child process" | "in-process (shared with the clients: run with --allow-run)";
}

/** `/proc/<pid>/status` fields in kB, as bytes. */
async function procMemory(pid: number): Promise<{ rss: number; peak: number | null }> {
  const text = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = (key: string) => {
    const m = text.match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"));
    return m ? Number(m[1]) * 1024 : null;
  };
  return { rss: kb("VmRSS") ?? 0, peak: kb("VmHWM") };
}

async function startServer(corpusDir: string): Promise<Server> {
  if ((await Deno.permissions.query({ name: "run" })).state === "granted") {
    const root = new URL("../", import.meta.url);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        "--allow-net=127.0.0.1",
        "--config",
        new URL("deno.json", root).pathname,
        new URL("src/dashboard/serve.ts", root).pathname,
        "--port",
        "0",
        "--corpus",
        corpusDir,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    let origin: string | null = null;
    while (origin === null) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`The dashboard server exited before listening: ${seen}`);
      seen += value;
      origin = seen.match(/(http:\/\/127\.0\.0\.1:\d+)\//)?.[1] ?? null;
    }
    // Keep draining its output so it never blocks on a full pipe.
    (async () => {
      while (!(await reader.read()).done) { /* discard */ }
    })();
    return {
      origin,
      memory: () => procMemory(child.pid),
      stop: async () => {
        child.kill("SIGTERM");
        await child.status;
      },
      where: "child process",
    };
  }
  const controller = new AbortController();
  const { promise: listening, resolve } = Promise.withResolvers<number>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: controller.signal, onListen: (a) => resolve(a.port) },
    createApp({ corpusDir }).fetch,
  );
  const port = await listening;
  return {
    origin: `http://127.0.0.1:${port}`,
    memory: () => Promise.resolve({ rss: Deno.memoryUsage().rss, peak: null }),
    stop: async () => {
      controller.abort();
      await server.finished;
    },
    where: "in-process (shared with the clients: run with --allow-run)",
  };
}

/** Issue 13 item 7: 20 clients on one huge finding while a probe uses every other route. */
async function bigScenario() {
  const dir = await Deno.makeTempDir({ prefix: "shadowfuzz-dash-bench-big-" });
  try {
    const base = join(dir, "findings");
    await Deno.mkdir(base);
    for (let n = 1; n <= 200; n++) {
      const f = sampleFinding(n);
      await Deno.writeTextFile(join(base, `${f.id}.json`), JSON.stringify(f, null, 2));
    }
    await Deno.mkdir(join(dir, "runs"));
    for (let n = 0; n < 20; n++) {
      await Deno.writeTextFile(join(dir, "runs", `run-${n}.json`), JSON.stringify(sampleRun(n)));
    }
    const big = bigSampleFinding(201, BIG_OPS);
    // Compact JSON, like the file of the report (1.4 MB for 100,000 ops).
    const bigText = JSON.stringify(big);
    await Deno.writeTextFile(join(base, `${big.id}.json`), bigText);
    const bigPath = `/findings/${big.id}`;
    const probePaths = ["/", `/findings/${sampleId(7)}`, "/runs", "/api/findings?sort=hits"];

    const server = await startServer(dir);
    try {
      const get = async (path: string) => {
        const t = performance.now();
        const res = await fetch(server.origin + path);
        const bytes = (await res.arrayBuffer()).byteLength;
        return { ms: performance.now() - t, status: res.status, bytes };
      };
      // Warm up: the list index and the code paths of each route, the big page once.
      for (const p of probePaths) await get(p);
      const idle = await server.memory();
      const first = await get(bigPath);

      let peakRss = 0;
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          peakRss = Math.max(peakRss, (await server.memory()).rss);
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const bigLat: number[] = [];
      const probeLat: number[] = [];
      let failures = 0;
      let issued = 0;
      let running = true;
      const wallStart = performance.now();
      const clients = Promise.all(Array.from({ length: BIG_CLIENTS }, async () => {
        while (issued < BIG_REQUESTS) {
          issued++;
          try {
            const r = await get(bigPath);
            if (r.status !== 200) failures++;
            bigLat.push(r.ms);
          } catch {
            failures++;
          }
        }
      })).finally(() => {
        running = false;
      });
      const probe = (async () => {
        for (let i = 0; running; i++) {
          try {
            const r = await get(probePaths[i % probePaths.length] ?? "/");
            if (r.status !== 200) failures++;
            probeLat.push(r.ms);
          } catch {
            failures++;
          }
        }
      })();
      await Promise.all([clients, probe]);
      const wallSeconds = (performance.now() - wallStart) / 1000;
      sampling = false;
      await sampler;
      await new Promise((r) => setTimeout(r, 1000));
      const after = await server.memory();
      const mb = (b: number | null) => b === null ? null : Math.round(b / 1048576);
      return {
        server: server.where,
        bigFinding: {
          ops: BIG_OPS,
          fileBytes: bigText.length,
          pageBytes: first.bytes,
          firstPageMs: Math.round(first.ms),
        },
        clients: BIG_CLIENTS,
        bigRequests: bigLat.length,
        probeRequests: probeLat.length,
        failures,
        wallSeconds: Math.round(wallSeconds * 100) / 100,
        bigPage: stats(bigLat),
        otherRoutes: stats(probeLat),
        rssMB: { idle: mb(idle.rss), peakSampled: mb(peakRss), after: mb(after.rss) },
        peakRssMB: mb(after.peak),
      };
    } finally {
      await server.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const report: Record<string, unknown> = { bench: "dashboard" };
if (SCENARIO !== "big") Object.assign(report, await listScenario());
if (SCENARIO !== "list") report.big = await bigScenario();
console.log(JSON.stringify(report, null, 2));
