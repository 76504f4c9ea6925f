import assert from "node:assert/strict";
import { join } from "node:path";
import { createApp } from "./app.tsx";
import { readFinding, recordSighting, writeFinding, writeRun } from "../corpus/store.ts";
import type { Finding } from "../corpus/types.ts";
import { bigSampleFinding, sampleFinding, sampleId, sampleRun, sampleSelfTest } from "./_sample.ts";

const TOKEN = "t".repeat(64);
const ORIGIN = "http://localhost";

interface Corpus {
  dir: string;
  app: ReturnType<typeof createApp>;
}

async function withCorpus(
  count: number,
  fn: (c: Corpus) => Promise<void>,
  setup?: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "shadowfuzz-dash-" });
  try {
    for (let i = 1; i <= count; i++) await writeFinding(dir, sampleFinding(i));
    await setup?.(dir);
    await fn({ dir, app: createApp({ corpusDir: dir, token: TOKEN }) });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Posts a status form; `headers` override the same-origin defaults, `null` removes one. */
function post(
  app: Corpus["app"],
  id: string,
  fields: Record<string, string>,
  headers: Record<string, string | null> = {},
): Promise<Response> {
  const h = new Headers({
    "Content-Type": "application/x-www-form-urlencoded",
    Origin: ORIGIN,
    "Sec-Fetch-Site": "same-origin",
  });
  for (const [k, v] of Object.entries(headers)) {
    if (v === null) h.delete(k);
    else h.set(k, v);
  }
  return Promise.resolve(app.request(`/findings/${id}/status`, {
    method: "POST",
    headers: h,
    body: new URLSearchParams(fields).toString(),
  }));
}

function rowIds(html: string): string[] {
  return [...html.matchAll(/<tr data-id="([0-9a-f]{16})"/g)].map((m) => m[1]!);
}

Deno.test("dashboard: the list shows every finding with its columns", async () => {
  await withCorpus(4, async ({ app }) => {
    const res = await app.request("/");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/html/);
    const html = await res.text();
    assert.ok(html.startsWith("<!DOCTYPE html>"));
    assert.equal(rowIds(html).length, 4);
    const f = sampleFinding(2);
    assert.ok(html.includes(`href="/findings/${f.id}"`));
    assert.ok(html.includes(f.title));
    assert.ok(html.includes(`>${f.hits}</td>`));
    for (
      const col of [
        "Title",
        "Backend",
        "Area",
        "Status",
        "First seen",
        "Last seen",
        "Hits",
        "Min. ops",
      ]
    ) {
      assert.match(html, new RegExp(`>${col}( [▲▼])?</a></th>`), col);
    }
    assert.match(html, /4 of 4 findings/);
  });
});

Deno.test("dashboard: the list filters by area and status and searches title and signature", async () => {
  await withCorpus(15, async ({ app }) => {
    const byArea = rowIds(await (await app.request("/?area=pmu")).text());
    assert.deepEqual(
      byArea.sort(),
      [2, 5, 8, 11, 14].map(sampleId).sort(),
    );
    const byStatus = rowIds(await (await app.request("/?status=confirmed")).text());
    assert.deepEqual(byStatus.sort(), [3, 4, 5].map(sampleId).sort());
    const both = rowIds(await (await app.request("/?status=confirmed&area=mmu")).text());
    assert.deepEqual(both, [sampleId(3)]);
    const search = rowIds(await (await app.request("/?q=SAMPLE+12%29")).text());
    assert.deepEqual(search, [sampleId(12)]);
    const bySig = rowIds(await (await app.request("/?q=%2311")).text());
    assert.deepEqual(bySig, [sampleId(11)]);
    const none = await (await app.request("/?q=nothing-like-this")).text();
    assert.match(none, /No finding matches/);
  });
});

Deno.test("dashboard: the list sorts by each column both ways and pages", async () => {
  await withCorpus(9, async ({ app }) => {
    const api = async (qs: string) =>
      (await (await app.request(`/api/findings${qs}`)).json()) as {
        findings: { id: string; hits: number; lastSeen: string; minimizedOps: number }[];
        total: number;
        pages: number;
        page: number;
      };
    const asc = (await api("?sort=hits&dir=asc")).findings.map((f) => f.hits);
    assert.deepEqual(asc, [...asc].sort((a, b) => a - b));
    const desc = (await api("?sort=hits&dir=desc")).findings.map((f) => f.hits);
    assert.deepEqual(desc, [...asc].reverse());
    for (const key of ["area", "status", "title", "signature", "firstSeen", "lastSeen", "ops"]) {
      const a = (await api(`?sort=${key}&dir=asc`)).findings.map((f) => f.id);
      const d = (await api(`?sort=${key}&dir=desc`)).findings.map((f) => f.id);
      assert.equal(a.length, 9, key);
      assert.notDeepEqual(a, d, key);
    }
    const p2 = await api("?per=4&page=2&sort=title&dir=asc");
    assert.equal(p2.total, 9);
    assert.equal(p2.pages, 3);
    assert.equal(p2.findings.length, 4);
    const all = (await api("?sort=title&dir=asc")).findings.map((f) => f.id);
    assert.deepEqual(p2.findings.map((f) => f.id), all.slice(4, 8));
    const html = await (await app.request("/?per=4&page=2&sort=title&dir=asc")).text();
    assert.deepEqual(rowIds(html), all.slice(4, 8));
    assert.match(html, /page 2 of 3/);
    assert.ok(html.includes('href="/?sort=title&amp;dir=asc&amp;page=3&amp;per=4"'));
  });
});

Deno.test("dashboard: /api/findings returns the rows the list page shows", async () => {
  await withCorpus(7, async ({ app }) => {
    const qs = "?area=mmu&sort=hits&dir=asc";
    const html = await (await app.request(`/${qs}`)).text();
    const json = await (await app.request(`/api/findings${qs}`)).json();
    assert.deepEqual(json.findings.map((f: { id: string }) => f.id), rowIds(html));
    assert.equal(json.count, 7);
    assert.deepEqual(json.errors, []);
  });
});

Deno.test("dashboard: a corrupt finding file is an error row, never a crash", async () => {
  await withCorpus(2, async ({ app }) => {
    const list = await app.request("/");
    assert.equal(list.status, 200);
    const html = await list.text();
    assert.equal(rowIds(html).length, 2);
    assert.match(html, /<tr class="error">/);
    assert.ok(html.includes("findings/aaaaaaaaaaaaaaaa.json"));
    assert.ok(html.includes("findings/bbbbbbbbbbbbbbbb.json"));
    const api = await (await app.request("/api/findings")).json();
    assert.deepEqual(api.errors.map((e: { file: string }) => e.file), [
      "aaaaaaaaaaaaaaaa.json",
      "bbbbbbbbbbbbbbbb.json",
    ]);
    const page = await app.request("/findings/aaaaaaaaaaaaaaaa");
    assert.equal(page.status, 500);
    assert.match(
      await page.text(),
      /Cannot read findings\/aaaaaaaaaaaaaaaa.json: Cannot parse JSON/,
    );
    const apiOne = await app.request("/api/findings/bbbbbbbbbbbbbbbb");
    assert.equal(apiOne.status, 500);
    assert.match((await apiOne.json()).error, /"hits"/);
  }, async (dir) => {
    await Deno.writeTextFile(join(dir, "findings", "aaaaaaaaaaaaaaaa.json"), '{"format": ');
    const bad = { ...sampleFinding(0), id: "bbbbbbbbbbbbbbbb", hits: "many" };
    await Deno.writeTextFile(join(dir, "findings", "bbbbbbbbbbbbbbbb.json"), JSON.stringify(bad));
  });
});

Deno.test("dashboard: hostile ids are refused and nothing outside the corpus is read", async () => {
  await withCorpus(1, async ({ app }) => {
    const hostile = [
      "..%2F..%2Fsecret",
      "..%2Fsecret",
      "%2E%2E%2Fsecret",
      "ABCDEF0123456789",
      "0000000000000001.json",
      "000000000000001",
      "00000000000000001",
      "0000000000000001%00",
      "%3Cscript%3E",
    ];
    for (const id of hostile) {
      for (const prefix of ["/findings/", "/api/findings/"]) {
        const res = await app.request(prefix + id);
        const text = await res.text();
        assert.ok(res.status === 400 || res.status === 404, `${prefix}${id}: ${res.status}`);
        assert.ok(!text.includes("TOP SECRET"), `${prefix}${id} leaked`);
        assert.ok(!text.includes("<script>"), `${prefix}${id} reflected`);
      }
    }
    const traversal = await app.request("/findings/..%2F..%2Fsecret");
    assert.equal(traversal.status, 400);
    const missing = await app.request(`/api/findings/${sampleId(77)}`);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { error: `No finding ${sampleId(77)}` });
    const dotted = await app.request("/findings/../../secret");
    assert.equal(dotted.status, 404);
  }, async (dir) => {
    const secret = sampleFinding(5, { title: "TOP SECRET" });
    await Deno.writeTextFile(join(dir, "secret.json"), JSON.stringify(secret));
  });
});

Deno.test("dashboard: every string from a file is escaped on every page", async () => {
  const evil = '<script>alert("x")</script><img src=x onerror=alert(1)>';
  await withCorpus(0, async ({ app }) => {
    const pages = [
      "/",
      `/findings/${sampleId(1)}`,
      `/findings/${sampleId(1)}/ops?trace=full`,
      "/runs",
      "/?q=%3Cscript%3E",
    ];
    for (const path of pages) {
      const res = await app.request(path);
      assert.equal(res.status, 200, path);
      const html = await res.text();
      assert.ok(!html.includes("<script>alert"), `${path} has a live script`);
      assert.ok(!html.includes("<img src=x"), `${path} has a live img`);
      assert.ok(!/<script(?! src="\/static\/app\.js")/.test(html), `${path} has an inline script`);
      if (path !== "/?q=%3Cscript%3E") assert.ok(html.includes("&lt;script&gt;alert"), path);
    }
    const detail = await (await app.request(`/findings/${sampleId(1)}`)).text();
    // The unparseable op and outcome are shown as (escaped) raw JSON with their error.
    assert.match(detail, /Cannot parse trace op 1/);
    assert.ok(detail.includes("&lt;/script&gt;"));
    // The optional fields are shown, escaped.
    assert.ok(detail.includes('<p id="host-summary">&lt;script&gt;alert'));
    assert.ok(detail.includes('<dd id="deviation"><code>&lt;script&gt;alert'));
    assert.match(detail, /<table id="history-table">.*<td class="mono">&lt;script&gt;alert/);
    const res = await app.request("/");
    assert.match(res.headers.get("content-security-policy") ?? "", /script-src 'self'/);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    // Under no-referrer Chromium posts our own forms with Origin: null (found in e2e).
    assert.equal(res.headers.get("referrer-policy"), "same-origin");
  }, async (dir) => {
    const f = sampleFinding(1, {
      title: evil,
      signature: evil,
      note: evil,
      seeds: [evil],
      inject: evil,
      harness: evil,
    });
    Object.assign(f, {
      history: [{ time: "2026-11-02T10:00:00.000Z", seed: evil, hits: 1 }],
      host: { summary: evil, [evil]: evil },
      deviation: evil,
    });
    (f.minimized as { ops: unknown[] }).ops[1] = { op: evil, gpa: evil };
    (f.trace as { ops: unknown[] }).ops[1] = { op: evil, gpa: evil };
    f.divergence = {
      opIndex: 0,
      backend: "core",
      observed: { crash: evil },
      permitted: [{ outcome: { value: evil }, why: evil }, { outcome: { ok: true }, why: evil }],
      invariant: evil,
    };
    // A hostile file on disk (the store itself refuses to write unreplayable traces).
    await Deno.mkdir(join(dir, "findings"), { recursive: true });
    await Deno.writeTextFile(join(dir, "findings", `${f.id}.json`), JSON.stringify(f));
    await writeRun(dir, sampleRun(1, { seed: evil, inject: evil }));
    await Deno.writeTextFile(
      join(dir, "selftest.json"),
      JSON.stringify({
        ...sampleSelfTest(),
        bugs: [{ name: evil, found: true, seconds: 1, minimizedOps: 2 }],
      }),
    );
  });
});

Deno.test("dashboard: the finding page shows the trace, divergence, config and replay command", async () => {
  await withCorpus(3, async ({ app, dir }) => {
    const f = sampleFinding(2);
    const res = await app.request(`/findings/${f.id}`);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.ok(html.includes(f.title));
    assert.ok(html.includes("slot 0 gpa=0x0 pages=1024 hva=0x100000000"));
    assert.ok(html.includes('title="write 0x1000 0x2003"'));
    assert.ok(html.includes("write 0x1000 0x2003 [P W frame=0x2000]"));
    const mark = html.match(
      /<li class="diverge" id="minimized-diverge"[^>]*><span class="idx">(\d+)<\/span><span class="op"><span class="val">([^<]*)</,
    );
    assert.ok(mark, "the diverging op is marked");
    assert.equal(Number(mark[1]), f.divergence.opIndex);
    assert.equal(mark[2], "access r 0x400000");
    // Decoded, with the text form as the tooltip: an 8-byte load as PTE fields.
    assert.match(
      html,
      /Observed \(core\)<\/h3><div class="outcome" title="value 0x2003"><span class="val">value 0x2003 \[P W frame=0x2000\]</,
    );
    assert.match(
      html,
      /title="mmio 0x400000 r"><span class="val">mmio read 0x400000<\/span><\/td><td class="mono"><\/td><td><span class="val">current walk</,
    );
    // The temp corpus is not the default one: the commands name it.
    assert.ok(html.includes(`value="deno task replay ${f.id} --corpus ${dir}"`));
    assert.ok(html.includes(`value="deno task replay ${dir}/findings/${f.id}.json"`));
    assert.match(html, /<pre id="config">\{\n {2}&quot;vendor&quot;: &quot;amd&quot;/);
    assert.match(html, /<details id="full-trace"><summary>Full trace \(\d+ ops\)/);
    assert.match(html, /rdmsr 0x186/);
    assert.match(html, /<details id="raw">/);
    assert.ok(html.includes(`name="csrf" value="${TOKEN}"`));
    for (const s of ["new", "confirmed", "fixed", "wontfix", "invalid"]) {
      assert.ok(html.includes(`<option value="${s}"`), s);
    }
    const api = await (await app.request(`/api/findings/${f.id}`)).json();
    assert.deepEqual(api, f);
  });
});

Deno.test("dashboard: a same-origin status post with the token is written and listed", async () => {
  await withCorpus(3, async ({ app, dir }) => {
    const id = sampleId(1);
    // Prime the list so that the write has to invalidate it.
    assert.match(await (await app.request("/")).text(), /status-new/);
    const res = await post(app, id, {
      csrf: TOKEN,
      status: "confirmed",
      note: "real bug\r\nsee B.5",
    });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get("location"), `/findings/${id}?saved=1`);
    const stored = await readFinding(dir, id);
    assert.equal(stored?.status, "confirmed");
    assert.equal(stored?.note, "real bug\nsee B.5");
    const page = await (await app.request(`/findings/${id}?saved=1`)).text();
    assert.match(page, /Saved: status is confirmed/);
    assert.match(page, /<dd id="note">real bug\nsee B.5<\/dd>/);
    const listed = await (await app.request("/api/findings?status=confirmed")).json();
    assert.ok(listed.findings.some((f: { id: string }) => f.id === id));
    const names = [];
    for await (const e of Deno.readDir(join(dir, "findings"))) names.push(e.name);
    assert.equal(names.length, 3, "no temp or lock file is left");
  });
});

Deno.test("dashboard: cross-site, tokenless and malformed status posts write nothing", async () => {
  await withCorpus(1, async ({ app, dir }) => {
    const id = sampleId(1);
    const path = join(dir, "findings", `${id}.json`);
    const before = await Deno.readTextFile(path);
    const good = { csrf: TOKEN, status: "fixed", note: "" };
    const cases: [string, () => Promise<Response>, number][] = [
      [
        "foreign Origin",
        () =>
          post(app, id, good, { Origin: "http://evil.example", "Sec-Fetch-Site": "cross-site" }),
        403,
      ],
      [
        "foreign Origin only",
        () => post(app, id, good, { Origin: "http://evil.example", "Sec-Fetch-Site": null }),
        403,
      ],
      [
        "opaque Origin (sandboxed frame)",
        () => post(app, id, good, { Origin: "null", "Sec-Fetch-Site": null }),
        403,
      ],
      [
        "same-site fetch",
        () => post(app, id, good, { "Sec-Fetch-Site": "same-site", Origin: null }),
        403,
      ],
      [
        "no Origin, no Sec-Fetch-Site",
        () => post(app, id, good, { Origin: null, "Sec-Fetch-Site": null }),
        403,
      ],
      ["no token", () => post(app, id, { status: "fixed" }), 403],
      ["wrong token", () => post(app, id, { ...good, csrf: "x".repeat(64) }), 403],
      ["bad status", () => post(app, id, { ...good, status: "pwned" }), 400],
      ["empty status", () => post(app, id, { ...good, status: "" }), 400],
      ["note too long", () => post(app, id, { ...good, note: "n".repeat(4001) }), 400],
      ["huge body", () => post(app, id, { ...good, note: "n".repeat(100_000) }), 413],
      [
        "JSON body",
        () => post(app, id, good, { "Content-Type": "application/json" }),
        415,
      ],
      ["bad id", () => post(app, "..%2Fx", good), 400],
      ["missing finding", () => post(app, sampleId(50), good), 404],
    ];
    for (const [name, send, status] of cases) {
      const res = await send();
      assert.equal(res.status, status, name);
      await res.body?.cancel();
      assert.equal(await Deno.readTextFile(path), before, `${name} wrote`);
    }
    const badStatus = await post(app, id, { ...good, status: "<b>pwned</b>" });
    const text = await badStatus.text();
    assert.match(text, /Status must be one of new, confirmed, fixed, wontfix, invalid/);
    assert.ok(!text.includes("<b>pwned"));
    // Sec-Fetch-Site alone (no Origin) from our own page is accepted.
    const ok = await post(app, id, good, { Origin: null });
    assert.equal(ok.status, 303);
  });
});

Deno.test("dashboard: only loopback Host names are answered unless remote is allowed", async () => {
  await withCorpus(1, async ({ app, dir }) => {
    assert.equal((await app.request("http://evil.example/")).status, 421);
    assert.equal((await app.request("http://evil.example:8080/api/findings")).status, 421);
    for (const host of ["localhost", "127.0.0.1:8080", "[::1]:8080", "127.1.2.3"]) {
      const res = await app.request(`http://${host}/api/findings`);
      assert.equal(res.status, 200, host);
      await res.body?.cancel();
    }
    const open = createApp({ corpusDir: dir, hosts: "any" });
    const res = await open.request("http://dash.example/");
    assert.equal(res.status, 200);
    await res.body?.cancel();
  });
});

Deno.test("dashboard: the runs page draws charts with axes and lists runs and the self-test", async () => {
  await withCorpus(0, async ({ app }) => {
    const res = await app.request("/runs");
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.equal((html.match(/<svg class="chart"/g) ?? []).length, 4);
    for (
      const label of [
        "Throughput",
        "ops/s",
        "Coverage",
        "core events reached",
        "Findings per run",
        "time (UTC)",
      ]
    ) {
      assert.ok(html.includes(`>${label}<`), label);
    }
    assert.equal((html.match(/<polyline/g) ?? []).length, 4);
    assert.ok((html.match(/<circle /g) ?? []).length >= 4 * 5);
    assert.match(html, /11-01 00:00/);
    assert.match(html, /Cannot read <code>runs\/broken.json<\/code>/);
    assert.match(html, /Found 2 of 3 injected bugs; median time to find 1.60 s/);
    assert.match(html, /filter-stale/);
    const api = await (await app.request("/api/runs")).json();
    assert.equal(api.runs.length, 5);
    assert.equal(api.errors.length, 1);
    assert.equal(api.selftest.total, 3);
    assert.equal(api.selftestError, null);
  }, async (dir) => {
    for (let i = 0; i < 5; i++) await writeRun(dir, sampleRun(i));
    await Deno.writeTextFile(join(dir, "runs", "broken.json"), "]");
    await Deno.writeTextFile(join(dir, "selftest.json"), JSON.stringify(sampleSelfTest()));
  });
});

Deno.test("dashboard: the runs page copes with no runs and a corrupt self-test file", async () => {
  await withCorpus(0, async ({ app }) => {
    const html = await (await app.request("/runs")).text();
    assert.match(html, /no runs recorded yet/);
    assert.match(html, /Cannot read selftest.json: Cannot parse JSON/);
    const api = await (await app.request("/api/runs")).json();
    assert.deepEqual(api.runs, []);
    assert.match(api.selftestError, /Cannot parse JSON/);
  }, async (dir) => {
    await Deno.writeTextFile(join(dir, "selftest.json"), "{");
  });
});

Deno.test("dashboard: an empty corpus, static files and unknown routes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const app = createApp({ corpusDir: join(dir, "missing") });
    const list = await app.request("/");
    assert.equal(list.status, 200);
    assert.match(await list.text(), /0 of 0 findings/);
    const css = await app.request("/static/app.css");
    assert.match(css.headers.get("content-type") ?? "", /text\/css/);
    assert.match(await css.text(), /ol\.ops/);
    const js = await app.request("/static/app.js");
    assert.match(await js.text(), /data-copy/);
    const nf = await app.request("/nope");
    assert.equal(nf.status, 404);
    assert.match(await nf.text(), /No page at \/nope/);
    const apiNf = await app.request("/api/nope");
    assert.equal(apiNf.status, 404);
    assert.deepEqual(await apiNf.json(), { error: "Not found" });
    const redirect = await app.request("/findings?area=mmu");
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.get("location"), "/?area=mmu");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dashboard: the list sees a finding written after it was first served", async () => {
  await withCorpus(1, async ({ app, dir }) => {
    assert.equal(rowIds(await (await app.request("/")).text()).length, 1);
    await writeFinding(dir, sampleFinding(2));
    assert.equal(rowIds(await (await app.request("/")).text()).length, 2);
    await Deno.remove(join(dir, "findings", `${sampleId(1)}.json`));
    assert.deepEqual(rowIds(await (await app.request("/")).text()), [sampleId(2)]);
  });
});

Deno.test("dashboard: replay commands name a corpus other than the default", async () => {
  const { replayCommands } = await import("./finding_page.tsx");
  assert.deepEqual(replayCommands("0123456789abcdef"), [
    "deno task replay 0123456789abcdef",
    "deno task replay corpus/findings/0123456789abcdef.json",
  ]);
  assert.deepEqual(replayCommands("0123456789abcdef", "/tmp/my corpus/"), [
    "deno task replay 0123456789abcdef --corpus '/tmp/my corpus'",
    "deno task replay '/tmp/my corpus/findings/0123456789abcdef.json'",
  ]);
});

/** Writes a finding file as is (the store refuses what these tests need to plant). */
async function plant(dir: string, f: unknown, text?: string): Promise<void> {
  const id = (f as { id: string }).id;
  await Deno.mkdir(join(dir, "findings"), { recursive: true });
  await Deno.writeTextFile(join(dir, "findings", `${id}.json`), text ?? JSON.stringify(f));
}

Deno.test("dashboard: a 100,000-op finding renders a bounded page that folds its traces", async () => {
  const big = bigSampleFinding(40, 100_000, 100_000);
  // The divergence in the middle of the minimized trace.
  big.divergence = { ...big.divergence, opIndex: 50_000 };
  await withCorpus(2, async ({ app }) => {
    const res = await app.request(`/findings/${big.id}`);
    assert.equal(res.status, 200);
    const html = await res.text();
    // Issue 13 item 7: this page was 13 MB; the fold keeps it small whatever the length.
    assert.ok(html.length < 100_000, `page is ${html.length} characters`);
    assert.match(html, /Minimized trace \(100,000 ops\)/);
    assert.match(html, /Full trace \(100,000 ops\)/);
    const idx = [...html.matchAll(/<span class="idx">(\d+)<\/span>/g)].map((m) => Number(m[1]));
    assert.ok(idx.includes(0) && idx.includes(29) && !idx.includes(30), "the head");
    assert.ok(idx.includes(49_990) && idx.includes(50_010) && !idx.includes(50_011), "the middle");
    assert.ok(idx.includes(99_999) && !idx.includes(99_989), "the tail");
    const mark = html.match(/id="minimized-diverge"[^>]*><span class="idx">(\d+)</);
    assert.equal(mark?.[1], "50000");
    // The gaps say what they hide and link to the op pages.
    assert.match(html, /ops 30–49,989 \(49,960\) not shown/);
    assert.ok(html.includes(`href="/findings/${big.id}/ops?trace=minimized&amp;from=30"`));
    assert.ok(html.includes(`href="/findings/${big.id}/ops?trace=full&amp;from=30"`));
    // The raw JSON of a large file is a link, not inline.
    assert.match(html, /Raw JSON \(\d+\.\d MB\): <a href="\/api\/findings\/0000000000000028"/);
    assert.ok(!html.includes('<details id="raw">'));

    // An op page: 500 ops, the pager, the diverging op marked where it is.
    const page = await (await app.request(`/findings/${big.id}/ops?trace=minimized&from=49800`))
      .text();
    const pidx = [...page.matchAll(/<span class="idx">(\d+)<\/span>/g)].map((m) => Number(m[1]));
    assert.equal(pidx.length, 500);
    assert.equal(pidx[0], 49_800);
    assert.equal(pidx[499], 50_299);
    assert.match(page, /id="page-ops-diverge"[^>]*><span class="idx">50000</);
    assert.ok(page.includes(`href="/findings/${big.id}/ops?trace=minimized&amp;from=50300"`));
    assert.ok(page.includes(`href="/findings/${big.id}/ops?trace=minimized&amp;from=49300"`));
    assert.ok(page.length < 200_000, `op page is ${page.length} characters`);
    // Past the end: the last op; a bad query: the first page of the minimized trace.
    const end = await (await app.request(`/findings/${big.id}/ops?trace=full&from=999999999`))
      .text();
    assert.match(end, /Full trace: ops 99,999–99,999 of 100,000/);
    const bad = await (await app.request(`/findings/${big.id}/ops?trace=../x&from=-1`)).text();
    assert.match(bad, /Minimized trace: ops 0–499 of 100,000/);
    // The API still has every op.
    const api = await (await app.request(`/api/findings/${big.id}`)).json();
    assert.equal(api.trace.ops.length, 100_000);
  }, (dir) => plant(dir, big));
});

Deno.test("dashboard: concurrent requests for one huge finding parse it once", async () => {
  const big = bigSampleFinding(41, 20_000);
  await withCorpus(0, async ({ dir }) => {
    const { FindingCache } = await import("./finding_cache.ts");
    const cache = new FindingCache(dir);
    const got = await Promise.all(Array.from({ length: 20 }, () => cache.load(big.id)));
    const first = got[0];
    assert.ok(first !== undefined && "finding" in first);
    for (const g of got) assert.ok("finding" in g && g.finding === first.finding);
    // A changed file is read again at once, whatever the cache's age limit.
    await plant(dir, { ...big, title: "changed" });
    const again = await cache.load(big.id);
    assert.ok("finding" in again && again.finding.title === "changed");
    // Too large for the configured limit: 413 with a message that says what to do.
    const small = new FindingCache(dir, { maxFileBytes: 1000 });
    const refused = await small.load(big.id);
    assert.ok("error" in refused);
    assert.equal(refused.status, 413);
    assert.match(refused.error, /over the dashboard's limit of 1\.0 KB \(the CLI's too\)/);
  }, (dir) => plant(dir, big));
});

Deno.test("dashboard: a file over the size limit is an error row and a 413, never read", async () => {
  const { MAX_FINDING_BYTES } = await import("./bounds.ts");
  const id = "cccccccccccccccc";
  await withCorpus(1, async ({ app }) => {
    const html = await (await app.request("/")).text();
    assert.equal(rowIds(html).length, 1);
    assert.match(
      html,
      /Cannot read <code>findings\/cccccccccccccccc.json<\/code>: The file is 16\.8 MB, over the dashboard&#39;s limit of 16\.8 MB/,
    );
    const page = await app.request(`/findings/${id}`);
    assert.equal(page.status, 413);
    assert.match(
      await page.text(),
      /Cannot show findings\/cccccccccccccccc.json: it is 16\.8 MB, over the dashboard&#39;s limit/,
    );
  }, async (dir) => {
    // Not JSON at all: were it read, the error would say so.
    await plant(dir, { id }, "x".repeat(MAX_FINDING_BYTES + 1));
  });
});

Deno.test("dashboard: deeply nested JSON in an unchecked field is a clear error, not a 500 overflow", async () => {
  const depth = 100_000;
  const fields = ["observed", "permitted", "config", "op", "extra"] as const;
  const planted = fields.map((field, i) => {
    const f = sampleFinding(60 + i) as unknown as Record<string, unknown> & {
      divergence: Record<string, unknown>;
      minimized: { config: unknown; ops: unknown[] };
    };
    if (field === "observed") f.divergence.observed = "__DEEP__";
    if (field === "permitted") f.divergence.permitted = ["__DEEP__"];
    if (field === "config") f.minimized.config = "__DEEP__";
    if (field === "op") f.minimized.ops[1] = "__DEEP__";
    if (field === "extra") f.extra = "__DEEP__";
    const deep = "[".repeat(depth) + "]".repeat(depth);
    return { f, text: JSON.stringify(f).replace('"__DEEP__"', deep) };
  });
  const where = {
    observed: "divergence.observed",
    permitted: "divergence.permitted",
    config: "minimized.config",
    op: "minimized.ops",
    extra: "extra[0]",
  };
  await withCorpus(1, async ({ app }) => {
    const list = await (await app.request("/")).text();
    assert.equal(rowIds(list).length, 1);
    for (const [i, field] of fields.entries()) {
      const id = planted[i]!.f.id as string;
      // The store refuses the file when it parses it (src/corpus/depth.ts).
      const message = `Cannot read findings/${id}.json: Cannot read corpus file: field ` +
        `"${where[field]}" nests deeper than 64 levels`;
      const page = await app.request(`/findings/${id}`);
      assert.equal(page.status, 500, field);
      const html = await page.text();
      assert.ok(html.includes(message.replaceAll('"', "&quot;")), `${field}: ${html.slice(-600)}`);
      assert.ok(!html.includes("call stack"), field);
      const api = await app.request(`/api/findings/${id}`);
      assert.equal(api.status, 500);
      assert.deepEqual(await api.json(), { error: message });
      assert.ok(
        list.includes(`findings/${id}.json</code>: `) &&
          list.includes(`&quot;${where[field]}&quot; nests deeper`),
        `${field} listed as unreadable: ${list.slice(list.indexOf(id), list.indexOf(id) + 300)}`,
      );
      const ops = await app.request(`/findings/${id}/ops`);
      assert.equal(ops.status, 500);
      await ops.body?.cancel();
    }
  }, async (dir) => {
    for (const p of planted) await plant(dir, p.f, p.text);
  });
});

Deno.test("dashboard: long values are folded and cut, so a pathological finding stays small", async () => {
  const f = sampleFinding(70, {
    title: "T".repeat(100_000),
    seeds: Array.from({ length: 500 }, (_, i) => String(i)),
  });
  const events = Array.from({ length: 1000 }, (_, i) => `0x${i.toString(16)}`);
  const ops = (f.minimized as { ops: unknown[] }).ops;
  for (let i = 0; i < 200; i++) {
    ops.splice(1, 0, { op: "filter", action: 0, flags: 0, fixed: 0, events });
  }
  f.divergence = {
    opIndex: ops.length - 1,
    backend: "core",
    observed: { bitmap: `0x${"f".repeat(262_144)}` },
    permitted: Array.from({ length: 300 }, (_, i) => ({
      outcome: { bitmap: `0x${"e".repeat(5_000)}${i}` },
      why: "w".repeat(5_000),
    })),
  };
  await withCorpus(0, async ({ app }) => {
    const res = await app.request(`/findings/${f.id}`);
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.ok(html.length < 600_000, `page is ${html.length} characters`);
    // The `why` of 5,000 characters and each filter op of 1,000 events fold.
    assert.match(html, /… \(5,000 characters\)<\/summary>/);
    assert.match(html, /<span class="idx">1<\/span><span class="op"><details class="long">/);
    assert.match(html, /and 250 more permitted outcomes/);
    assert.match(html, /and 480 more/);
    assert.match(html, /<details class="long">/);
    // The list keeps a short title.
    const list = await (await app.request("/")).text();
    assert.ok(list.length < 20_000, `list is ${list.length} characters`);
  }, (dir) => plant(dir, f));
});

Deno.test("dashboard: the list shows backend, area, status, times, hits and length, each once", async () => {
  const kvm = sampleFinding(80, {
    area: "mmu",
    hits: 12_345,
    title: "access r user 0x400000: kvm #PF 0x4 (U), architecture #PF 0x5 (P|U)",
    signature: "mmu/access: kvm=pf, permitted={pf}",
  });
  kvm.divergence = { ...kvm.divergence, backend: "kvm" };
  const old = sampleFinding(81, {
    title: "mmu/access: core=value, permitted={mmio} at `read 0x8`",
  });
  old.signature = "mmu/access: core=value, permitted={mmio}";
  await withCorpus(0, async ({ app }) => {
    const html = await (await app.request("/")).text();
    const row = (id: string) => html.match(new RegExp(`<tr data-id="${id}">(.*?)</tr>`))?.[1] ?? "";
    const k = row(kvm.id);
    assert.match(k, /<td class="backend">kvm<\/td><td class="area">mmu<\/td>/);
    assert.match(k, />12,345<\/td>/);
    assert.match(k, /<td class="num">5<\/td>$/);
    // The signature differs from the title: it is printed under it.
    assert.ok(k.includes(`<code class="muted sig">${kvm.signature}</code>`));
    // The title contains the signature: printed once.
    const o = row(old.id);
    assert.equal(o.split("mmu/access: core=value, permitted={mmio}").length - 1, 1, o);
    assert.match(row(old.id), /<td class="backend">core<\/td>/);
    const byBackend = rowIds(await (await app.request("/?backend=kvm")).text());
    assert.deepEqual(byBackend, [kvm.id]);
    const api = await (await app.request("/api/findings?sort=backend&dir=desc")).json();
    assert.deepEqual(api.findings.map((f: { backend: string }) => f.backend), ["kvm", "core"]);
  }, async (dir) => {
    await writeFinding(dir, kvm);
    await writeFinding(dir, old);
  });
});

Deno.test("dashboard: the runs page prints seconds with 2 decimals and counts with separators", async () => {
  await withCorpus(0, async ({ app }) => {
    const html = await (await app.request("/runs")).text();
    assert.match(html, /<td class="num">0\.17<\/td>/);
    assert.ok(!html.includes("0.17439878400000086"));
    assert.match(html, /<td class="num">1,234,567<\/td>/);
    assert.match(html, /<td class="num">98,766<\/td>/);
    assert.match(html, /median time to find 1\.60 s/);
    assert.match(html, /<td class="num">2\.40<\/td>/);
  }, async (dir) => {
    await writeRun(
      dir,
      sampleRun(1, { seconds: 0.17439878400000086, ops: 1_234_567, opsPerSec: 98_765.5 }),
    );
    await Deno.writeTextFile(join(dir, "selftest.json"), JSON.stringify(sampleSelfTest()));
  });
});

Deno.test("dashboard: the finding page shows history, deviation, host and aliases when present", async () => {
  const f = sampleFinding(90) as Finding & Record<string, unknown>;
  f.divergence = { ...f.divergence, backend: "kvm" };
  Object.assign(f, {
    history: [
      { time: "2026-11-02T10:00:00.000Z", seed: "111", hits: 3 },
      { time: "2026-11-03T11:30:00.000Z", seed: "222", hits: 1_500 },
    ],
    deviation: "np-pf-keeps-stale-spte",
    host: { summary: "Linux 6.10.0 on AMD EPYC 7B13, kvm_amd npt=1", kernel: "6.10.0", cpus: 2 },
    aliases: ["0123456789abcdef", "fedcba9876543210"],
  });
  const plain = sampleFinding(91);
  await withCorpus(0, async ({ dir }) => {
    const describeDeviation = (name: string) =>
      name === "np-pf-keeps-stale-spte"
        ? {
          title: "a not-present #PF leaves the stale spte",
          path: "FNAME(page_fault) -> ...",
          architecture: "SDM vol. 3A 4.10.4.1",
          correction: "zap it",
        }
        : undefined;
    const app = createApp({ corpusDir: dir, token: TOKEN, describeDeviation });
    const html = await (await app.request(`/findings/${f.id}`)).text();
    assert.match(html, /<dd id="backend">kvm<\/dd>/);
    assert.match(
      html,
      /<dd id="deviation"><code>np-pf-keeps-stale-spte<\/code>: a not-present #PF leaves the stale spte/,
    );
    assert.match(html, /<dt>Architecture<\/dt><dd>SDM vol. 3A 4.10.4.1<\/dd>/);
    assert.match(html, /<dt>Also known as<\/dt><dd id="aliases">.*0123456789abcdef/);
    assert.match(html, /<p id="host-summary">Linux 6.10.0 on AMD EPYC 7B13, kvm_amd npt=1<\/p>/);
    assert.match(html, /<summary>Host details \(2 fields\)<\/summary>/);
    assert.match(html, /<dt>cpus<\/dt><dd class="mono">2<\/dd>/);
    assert.match(html, /1,503 hits in 2 sightings from 2 seeds\./);
    // Newest first.
    const history = html.match(/<table id="history-table">.*?<\/table>/)?.[0] ?? "";
    assert.ok(history.indexOf("222") < history.indexOf("111"), history);
    assert.match(history, /<td class="num">1,500<\/td>/);
    assert.match(history, /<time datetime="2026-11-03T11:30:00.000Z"/);
    // Without the hook the name is still shown; unknown to the hook, it says so.
    const bare = createApp({ corpusDir: dir, token: TOKEN });
    const bareHtml = await (await bare.request(`/findings/${f.id}`)).text();
    assert.match(bareHtml, /<dd id="deviation"><code>np-pf-keeps-stale-spte<\/code><\/dd>/);
    const unknown = createApp({ corpusDir: dir, token: TOKEN, describeDeviation: () => undefined });
    assert.match(
      await (await unknown.request(`/findings/${f.id}`)).text(),
      /not in the known-deviation table/,
    );
    // A finding with none of them shows no such section.
    const none = await (await app.request(`/findings/${plain.id}`)).text();
    for (const id of ["deviation", "aliases", "host", "history"]) {
      assert.ok(!none.includes(`id="${id}"`), id);
    }
  }, async (dir) => {
    await plant(dir, f);
    await writeFinding(dir, plain);
  });
});

Deno.test("dashboard: malformed optional fields are shown as errors, never a crash", async () => {
  // The store validates these fields; the page must still cope with a file it let
  // through (an older store, or a field it does not know).
  const { aliasesOf, deviationOf, historyOf, hostOf } = await import("./finding_extras.ts");
  const { FindingPageView } = await import("./finding_page.tsx");
  const { documentHtml } = await import("./layout.tsx");
  const f = sampleFinding(92) as Finding & Record<string, unknown>;
  Object.assign(f, {
    history: [
      { time: "2026-11-02T10:00:00.000Z", seed: "111", hits: 3 },
      { time: "not a time", seed: 5, hits: -1 },
      "junk",
    ],
    host: { kernel: { release: "6.10" } },
    aliases: "one",
    deviation: 7,
  });
  const h = historyOf(f);
  assert.equal(h?.total, 3);
  assert.equal(h?.rows[0]?.error, "entry 2 is not an object");
  assert.equal(
    h?.rows[1]?.error,
    "entry 1: time is not an ISO 8601 time, seed is not a string, hits is not a non-negative integer",
  );
  assert.deepEqual(h?.rows[2], { time: "2026-11-02T10:00:00.000Z", seed: "111", hits: 3 });
  assert.deepEqual(aliasesOf(f), { items: ["one"], total: 1 });
  assert.equal(deviationOf(f), "7");
  assert.deepEqual(hostOf(f), {
    summary: null,
    details: [["kernel", '{"release":"6.10"}']],
    total: 1,
  });
  const html = await documentHtml(FindingPageView({ finding: f, token: TOKEN }));
  assert.match(html, /<td colspan="3">entry 2 is not an object<\/td>/);
  assert.match(html, /The host record has no summary/);
  const worse = { ...f, history: { not: "a list" }, host: ["x"] } as unknown as Finding;
  const worseHtml = await documentHtml(FindingPageView({ finding: worse, token: TOKEN }));
  assert.match(worseHtml, /Cannot show the hit history: the history is not a list/);
  assert.match(worseHtml, /Cannot show the host record: the host record is not an object/);
});

Deno.test("dashboard: repro.c is 404 'No C export yet' until an exporter is injected", async () => {
  const f = sampleFinding(95);
  await withCorpus(0, async ({ dir, app }) => {
    const res = await app.request(`/findings/${f.id}/repro.c`);
    assert.equal(res.status, 404);
    assert.match(await res.text(), /No C export yet: this dashboard cannot write finding/);
    const page = await (await app.request(`/findings/${f.id}`)).text();
    assert.ok(!page.includes('repro.c"'), "no download link without an exporter");
    assert.match(page, /C reproducer: no C export yet/);

    const seen: string[] = [];
    const hooked = createApp({
      corpusDir: dir,
      exportC: (finding) => {
        seen.push(finding.id);
        return `/* ${finding.id} */\nint main(void) { return 0; }\n`;
      },
    });
    const c = await hooked.request(`/findings/${f.id}/repro.c`);
    assert.equal(c.status, 200);
    assert.equal(c.headers.get("content-type"), "text/x-csrc; charset=utf-8");
    assert.equal(
      c.headers.get("content-disposition"),
      `attachment; filename="shadowfuzz-${f.id}.c"`,
    );
    assert.equal(await c.text(), `/* ${f.id} */\nint main(void) { return 0; }\n`);
    assert.deepEqual(seen, [f.id]);
    const hookedPage = await (await hooked.request(`/findings/${f.id}`)).text();
    assert.ok(hookedPage.includes(`href="/findings/${f.id}/repro.c"`));
    // A missing finding, a bad id, a failing exporter.
    const missing = await hooked.request(`/findings/${sampleId(99)}/repro.c`);
    assert.equal(missing.status, 404);
    assert.match(await missing.text(), /No finding 0000000000000063/);
    assert.equal(seen.length, 1, "not exported when missing");
    const badId = await hooked.request("/findings/..%2F..%2Fetc/repro.c");
    assert.equal(badId.status, 400);
    await badId.body?.cancel();
    const failing = createApp({
      corpusDir: dir,
      exportC: () => {
        throw new Error("op 3 (filter) has no C form");
      },
    });
    const err = await failing.request(`/findings/${f.id}/repro.c`);
    assert.equal(err.status, 500);
    assert.match(
      await err.text(),
      new RegExp(`Cannot export finding ${f.id} as C: op 3 \\(filter\\) has no C form`),
    );
  }, (dir) => writeFinding(dir, f));
});

Deno.test("dashboard: the new routes refuse hostile ids like the finding page", async () => {
  await withCorpus(1, async ({ app }) => {
    for (const id of ["..%2F..%2Fsecret", "%2E%2E%2Fsecret", "ABCDEF0123456789", "%3Cscript%3E"]) {
      for (const suffix of ["/ops", "/ops?trace=full", "/repro.c"]) {
        const res = await app.request(`/findings/${id}${suffix}`);
        const text = await res.text();
        assert.ok(res.status === 400 || res.status === 404, `${id}${suffix}: ${res.status}`);
        assert.ok(!text.includes("TOP SECRET"), `${id}${suffix} leaked`);
        assert.ok(!text.includes("<script>"), `${id}${suffix} reflected`);
      }
    }
    const res = await app.request(`/findings/${sampleId(1)}/ops`);
    assert.match(res.headers.get("content-security-policy") ?? "", /script-src 'self'/);
    await res.body?.cancel();
  }, async (dir) => {
    await Deno.writeTextFile(
      join(dir, "secret.json"),
      JSON.stringify(sampleFinding(5, { title: "TOP SECRET" })),
    );
  });
});

Deno.test("dashboard: an id a finding had under earlier rules redirects to it", async () => {
  const old = "0123456789abcdef";
  const f = sampleFinding(96, { aliases: [old] } as Partial<Finding>);
  await withCorpus(1, async ({ app }) => {
    for (
      const [from, to] of [
        [`/findings/${old}`, `/findings/${f.id}`],
        [`/findings/${old}/ops?trace=full&from=2`, `/findings/${f.id}/ops?trace=full&from=2`],
        [`/findings/${old}/repro.c`, `/findings/${f.id}/repro.c`],
        [`/api/findings/${old}`, `/api/findings/${f.id}`],
      ]
    ) {
      const res = await app.request(from!);
      assert.equal(res.status, 301, from);
      assert.equal(res.headers.get("location"), to, from);
    }
    // An unknown id is still a plain 404.
    const missing = await app.request(`/findings/${sampleId(98)}`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  }, (dir) => plant(dir, f));
});

Deno.test("dashboard: a sighting recorded while the finding is cached shows at once", async () => {
  await withCorpus(1, async ({ app, dir }) => {
    const id = sampleId(1);
    const before = await (await app.request(`/findings/${id}`)).text();
    assert.ok(!before.includes('id="history"'));
    await recordSighting(dir, id, { hits: 4321, time: "2026-11-05T08:00:00.000Z", seed: "777" });
    const after = await (await app.request(`/findings/${id}`)).text();
    assert.match(after, /4,321 hits in 1 sighting from 1 seed\./);
    assert.match(after, /<td class="mono">777<\/td><td class="num">4,321<\/td>/);
    const api = await (await app.request(`/api/findings/${id}`)).json();
    assert.equal(api.history.length, 1);
    // The same through a cache that keeps every finding: the state file is in its key.
    const { FindingCache } = await import("./finding_cache.ts");
    const cache = new FindingCache(dir, { minBytes: 0, maxAgeMs: 60_000 });
    const first = await cache.load(id);
    assert.ok("finding" in first && first.finding.history?.length === 1);
    await recordSighting(dir, id, { hits: 1, time: "2026-11-06T08:00:00.000Z", seed: "778" });
    const second = await cache.load(id);
    assert.ok("finding" in second && second.finding.history?.length === 2);
    assert.equal(second.finding.hits, first.finding.hits + 1);
  });
});

Deno.test("dashboard: #PF codes, event selects, MSRs and dirty bitmaps are decoded by name", async () => {
  const base = sampleFinding(100);
  const config = (base.minimized as { config: unknown }).config;
  const trace = (ops: unknown[]) => ({ format: "shadowfuzz.trace/1", config, ops });
  const pmu = sampleFinding(101, {
    area: "pmu",
    minimized: trace([
      { op: "wrmsr", msr: "0x186", value: "0x4300c0" },
      { op: "rdmsr", msr: "0x38f" },
    ]),
  });
  pmu.divergence = {
    opIndex: 1,
    backend: "core",
    observed: { value: "0x0" },
    permitted: [{ outcome: { value: "0x3" }, why: "GP enables at RESET" }],
  };
  const pf = sampleFinding(102, {
    minimized: trace([
      { op: "write", gpa: "0x1000", size: 8, value: "0x8000000000002067" },
      { op: "access", gva: "0x400000", kind: "read", user: true, size: 8 },
    ]),
  });
  pf.divergence = {
    opIndex: 1,
    backend: "kvm",
    observed: { pf: { code: "0x4", cr2: "0x400000" } },
    permitted: [{ outcome: { pf: { code: "0x5", cr2: "0x400000" } }, why: "present entry" }],
  };
  const dirty = sampleFinding(103, {
    area: "memslot",
    minimized: trace([
      { op: "slot", id: 5, gpa: "0x0", pages: 64, hva: "0x100000000", flags: ["log"] },
      { op: "dirtylog", id: 5 },
    ]),
  });
  dirty.divergence = {
    opIndex: 1,
    backend: "core",
    observed: { bitmap: "0x1d" },
    permitted: [{ outcome: { bitmap: "0x1f" }, why: "written at op 9" }],
  };
  await withCorpus(0, async ({ app }) => {
    const p = await (await app.request(`/findings/${pmu.id}`)).text();
    assert.match(p, /wrmsr PERFEVTSEL0 \(0x186\) 0x4300c0 \[event=0xc0 [^\]]*\bEN\b[^\]]*\]/);
    assert.match(p, /rdmsr PERF_GLOBAL_CTRL \(0x38f\)/);
    assert.match(p, /title="wrmsr 0x186 0x4300c0"/);
    const f = await (await app.request(`/findings/${pf.id}`)).text();
    assert.match(f, /<span class="val">#PF 0x4 \(U\) cr2=0x400000<\/span>/);
    assert.match(f, /<span class="val">#PF 0x5 \(P\|U\) cr2=0x400000<\/span>/);
    // An 8-byte store of a page-table entry, by field.
    assert.match(f, /write 0x1000 0x8000000000002067 \[[^\]]*\bNX\b[^\]]*\]/);
    const d = await (await app.request(`/findings/${dirty.id}`)).text();
    assert.match(d, /<span class="val">dirty pages 0,2-4<\/span>/);
    assert.match(d, /<span class="val">dirty pages 0-4<\/span>/);
  }, async (dir) => {
    for (const f of [pmu, pf, dirty]) await writeFinding(dir, f);
  });
});
