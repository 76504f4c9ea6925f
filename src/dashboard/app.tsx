/**
 * @module
 * The findings dashboard (docs/design.md) as a Hono app: server-rendered pages
 * (findings list, finding, runs) and the same data as JSON under `/api/`. It only
 * reads the corpus, except for the status/note write-back, which is same-origin only,
 * carries a per-process CSRF token and goes through the store's atomic update.
 *
 * @example
 * ```ts ignore
 * import { createApp } from "./app.tsx";
 * const app = createApp({ corpusDir: "corpus" });
 * const res = await app.request("/api/findings");
 * ```
 */
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import {
  errorText,
  isFindingId,
  isFindingStatus,
  listRuns,
  MAX_NOTE_LENGTH,
  readSelfTest,
  type SelfTest,
  updateFinding,
} from "../corpus/store.ts";
import { type Finding, FINDING_STATUSES } from "../corpus/types.ts";
import { FindingCache, type LoadError } from "./finding_cache.ts";
import type { DescribeDeviation } from "./finding_extras.ts";
import { OpsPageView, parseOpsQuery } from "./ops_page.tsx";
import { FindingsIndex } from "./findings_index.ts";
import { applyListQuery, parseListQuery } from "./list_query.ts";
import {
  crossSiteReason,
  hostGuard,
  type HostPolicy,
  newToken,
  securityHeaders,
  tokenMatches,
} from "./guard.ts";
import { documentHtml, ErrorPage } from "./layout.tsx";
import { ListPageView } from "./list_page.tsx";
import { FindingPageView } from "./finding_page.tsx";
import { RunsPageView } from "./runs_page.tsx";
import { CSS, JS } from "./static.ts";

export interface AppOptions {
  /** The corpus directory (with `findings/`, `runs/`, `selftest.json`). */
  corpusDir: string;
  /** `loopback` (default) answers only loopback Host names; `any` with `--allow-remote`. */
  hosts?: HostPolicy;
  /** The CSRF token of the status form; a fresh random one by default. */
  token?: string;
  /** Longest time the list may lag a file edited in place (default 10 s). */
  maxAgeMs?: number;
  /**
   * Longest time a parsed finding is reused while its files are unchanged (default
   * 5 s), so that many clients on one huge finding parse it once.
   */
  findingCacheMs?: number;
  /**
   * Exports a finding as a C reproducer for `/findings/:id/repro.c`. Without it, that
   * route answers 404 "No C export yet" and the finding page offers no download.
   */
  exportC?: (finding: Finding) => string | Promise<string>;
  /**
   * Says what a known deviation is, by the name in a finding's `deviation` field (the
   * lead's `KNOWN_DEVIATIONS` table). Without it, the page shows the name only.
   */
  describeDeviation?: DescribeDeviation;
}

/**
 * The largest status form body accepted: a note of MAX_NOTE_LENGTH characters of 4
 * UTF-8 bytes each, URL-encoded (3 bytes per byte: 12 per character), plus the other
 * fields.
 */
const MAX_FORM_BYTES = 12 * MAX_NOTE_LENGTH + 1024;

/** Creates the dashboard app over a corpus directory. */
export function createApp(options: AppOptions): Hono {
  const dir = options.corpusDir;
  const token = options.token ?? newToken();
  const index = new FindingsIndex(
    dir,
    options.maxAgeMs === undefined ? {} : { maxAgeMs: options.maxAgeMs },
  );
  const cache = new FindingCache(
    dir,
    options.findingCacheMs === undefined ? {} : { maxAgeMs: options.findingCacheMs },
  );
  const app = new Hono();

  app.use("*", securityHeaders());
  app.use("*", hostGuard(options.hosts ?? "loopback"));

  app.get("/static/app.css", (c) => {
    c.header("Cache-Control", "max-age=300");
    return c.body(CSS, 200, { "Content-Type": "text/css; charset=utf-8" });
  });
  app.get("/static/app.js", (c) => {
    c.header("Cache-Control", "max-age=300");
    return c.body(JS, 200, { "Content-Type": "text/javascript; charset=utf-8" });
  });
  app.get("/favicon.ico", (c) => c.body(null, 204));

  app.get("/", async (c) => {
    const { summaries, errors } = await index.snapshot();
    const query = parseListQuery(new URL(c.req.url).searchParams);
    const page = applyListQuery(summaries, query);
    return html(
      c,
      <ListPageView query={query} page={page} errors={errors} count={summaries.length} />,
    );
  });
  app.get("/findings", (c) => c.redirect(`/${new URL(c.req.url).search}`, 301));

  app.get("/api/findings", async (c) => {
    const { summaries, errors } = await index.snapshot();
    const query = parseListQuery(new URL(c.req.url).searchParams);
    const page = applyListQuery(summaries, query);
    return c.json({
      query,
      count: summaries.length,
      total: page.total,
      page: page.page,
      pages: page.pages,
      findings: page.rows,
      errors,
    });
  });

  const pageExtras = {
    corpusDir: dir,
    exportC: options.exportC !== undefined,
    ...(options.describeDeviation === undefined
      ? {}
      : { describeDeviation: options.describeDeviation }),
  };

  app.get("/findings/:id", async (c) => {
    const got = await cache.load(c.req.param("id"));
    if ("error" in got) return await aliasRedirect(c, got) ?? errorPage(c, got);
    return html(
      c,
      <FindingPageView
        finding={got.finding}
        bytes={got.bytes}
        token={token}
        saved={c.req.query("saved") === "1"}
        {...pageExtras}
      />,
    );
  });

  app.get("/findings/:id/ops", async (c) => {
    const got = await cache.load(c.req.param("id"));
    if ("error" in got) return await aliasRedirect(c, got) ?? errorPage(c, got);
    const query = parseOpsQuery(new URL(c.req.url).searchParams);
    return html(c, <OpsPageView finding={got.finding} query={query} />);
  });

  app.get("/findings/:id/repro.c", async (c) => {
    const id = c.req.param("id");
    const got = await cache.load(id);
    if ("error" in got) return await aliasRedirect(c, got) ?? errorPage(c, got);
    if (options.exportC === undefined) {
      return html(
        c,
        <ErrorPage
          status={404}
          message={`No C export yet: this dashboard cannot write finding ${id} as a C reproducer`}
        />,
        404,
      );
    }
    let text: string;
    try {
      text = await options.exportC(got.finding);
    } catch (e) {
      return html(
        c,
        <ErrorPage status={500} message={`Cannot export finding ${id} as C: ${errorText(e)}`} />,
        500,
      );
    }
    return c.body(text, 200, {
      "Content-Type": "text/x-csrc; charset=utf-8",
      "Content-Disposition": `attachment; filename="shadowfuzz-${id}.c"`,
    });
  });

  app.get("/api/findings/:id", async (c) => {
    const got = await cache.json(c.req.param("id"));
    if ("error" in got) {
      return await aliasRedirect(c, got) ?? c.json({ error: got.error }, got.status);
    }
    return c.body(got.json, 200, { "Content-Type": "application/json" });
  });

  app.post(
    "/findings/:id/status",
    bodyLimit({
      maxSize: MAX_FORM_BYTES,
      onError: (c) => html(c, <ErrorPage status={413} message="The form is too large" />, 413),
    }),
    async (c) => {
      const id = c.req.param("id");
      const refuse = (status: 400 | 403 | 404 | 415, message: string) =>
        html(c, <ErrorPage status={status} message={message} />, status);
      if (!isFindingId(id)) {
        return refuse(400, "Not a finding id: expected 16 lowercase hex digits");
      }
      const crossSite = crossSiteReason(c.req.raw);
      if (crossSite !== null) {
        return refuse(403, `Refused a cross-site status change: ${crossSite}`);
      }
      const type = c.req.header("content-type") ?? "";
      if (!/^(application\/x-www-form-urlencoded|multipart\/form-data)\b/i.test(type)) {
        return refuse(415, "The status change must be a form post");
      }
      let body: Record<string, string | File | (string | File)[]>;
      try {
        body = await c.req.parseBody({ all: true });
      } catch {
        return refuse(400, "Cannot parse the form");
      }
      if (!tokenMatches(body.csrf, token)) {
        return refuse(
          403,
          "Refused a status change: missing or wrong CSRF token (reload the page)",
        );
      }
      const status = body.status;
      const rawNote = body.note ?? "";
      let problem: string | null = null;
      if (!isFindingStatus(status)) {
        problem = `Status must be one of ${FINDING_STATUSES.join(", ")}`;
      } else if (typeof rawNote !== "string") problem = "The note must be text";
      else if ([...rawNote.replace(/\r\n/g, "\n")].length > MAX_NOTE_LENGTH) {
        problem = `The note is longer than ${MAX_NOTE_LENGTH} characters`;
      }
      if (problem !== null || !isFindingStatus(status) || typeof rawNote !== "string") {
        const got = await cache.load(id);
        if ("error" in got) {
          return refuse(got.status === 500 || got.status === 413 ? 400 : got.status, got.error);
        }
        return html(
          c,
          <FindingPageView
            finding={got.finding}
            bytes={got.bytes}
            token={token}
            error={problem ?? "Bad form"}
            {...pageExtras}
          />,
          400,
        );
      }
      // Textareas submit CRLF line ends; files keep LF.
      const note = rawNote.replace(/\r\n/g, "\n").trim();
      let updated;
      try {
        updated = await updateFinding(dir, id, { status, note });
      } catch (e) {
        return refuse(400, `Cannot update finding ${id}: ${errorText(e)}`);
      }
      cache.invalidate(id);
      if (updated === null) return refuse(404, `No finding ${id}`);
      index.invalidate();
      return c.redirect(`/findings/${id}?saved=1`, 303);
    },
  );

  app.get("/runs", async (c) => {
    const data = await runsData(dir);
    return html(c, <RunsPageView {...data} />);
  });
  app.get("/api/runs", async (c) => c.json(await runsData(dir)));

  app.notFound((c) => {
    if (c.req.path.startsWith("/api/")) return c.json({ error: "Not found" }, 404);
    return html(c, <ErrorPage status={404} message={`No page at ${c.req.path}`} />, 404);
  });
  app.onError((err, c) => {
    console.error("dashboard:", err);
    const text = `Internal error: ${errorText(err)}`;
    if (c.req.path.startsWith("/api/")) return c.json({ error: text }, 500);
    return html(c, <ErrorPage status={500} message={text} />, 500);
  });

  /**
   * For a finding that is not there under this id, a redirect to the finding that has
   * the id among its `aliases` (an id under earlier identity rules), the rest of the
   * path and the query kept; else `null`. Looked up in the list's index, never by
   * reading every file per request.
   */
  async function aliasRedirect(c: Context, got: LoadError): Promise<Response | null> {
    if (got.status !== 404) return null;
    const id = c.req.param("id") ?? "";
    const real = (await index.snapshot()).aliases.get(id);
    if (real === undefined || real === id) return null;
    const url = new URL(c.req.url);
    const path = url.pathname.replace(`/${id}`, `/${real}`);
    return c.redirect(`${path}${url.search}`, 301);
  }

  return app;
}

async function runsData(dir: string) {
  const { runs, errors } = await listRuns(dir);
  let selftest: SelfTest | null = null;
  let selftestError: string | null = null;
  try {
    selftest = await readSelfTest(dir);
  } catch (e) {
    selftestError = errorText(e);
  }
  return { runs, errors, selftest, selftestError };
}

async function html(
  c: Context,
  node: unknown,
  status: 200 | 400 | 403 | 404 | 413 | 415 | 500 = 200,
) {
  return c.html(await documentHtml(node), status);
}

function errorPage(c: Context, got: LoadError) {
  return html(c, <ErrorPage status={got.status} message={got.error} />, got.status);
}
