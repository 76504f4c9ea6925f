import assert from "node:assert/strict";
import { join } from "node:path";
import { createApp } from "./app.tsx";
import { readFinding, writeFinding, writeRun } from "../corpus/store.ts";
import { sampleFinding, sampleId, sampleRun, sampleSelfTest } from "./_sample.ts";

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
    for (const path of ["/", `/findings/${sampleId(1)}`, "/runs", "/?q=%3Cscript%3E"]) {
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
    (f.minimized as { ops: unknown[] }).ops[1] = { op: evil, gpa: evil };
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
    assert.ok(html.includes("write 0x1000 0x2003"));
    const mark = html.match(
      /<li class="diverge" id="minimized-diverge" ><span class="idx">(\d+)<\/span><span class="op"><span class="val">([^<]*)</,
    );
    assert.ok(mark, "the diverging op is marked");
    assert.equal(Number(mark[1]), f.divergence.opIndex);
    assert.equal(mark[2], "access r 0x400000");
    assert.match(
      html,
      /Observed \(core\)<\/h3><div class="outcome"><span class="val">value 0x2003</,
    );
    assert.match(
      html,
      /mmio 0x400000 r<\/span><\/td><td class="mono"><\/td><td><span class="val">current walk</,
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
