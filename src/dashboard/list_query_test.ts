import assert from "node:assert/strict";
import {
  applyListQuery,
  DEFAULT_QUERY,
  MAX_PER_PAGE,
  parseListQuery,
  queryString,
} from "./list_query.ts";
import { summarize } from "./summary.ts";
import { sampleFinding } from "./_sample.ts";

const rows = Array.from({ length: 12 }, (_, i) => summarize(sampleFinding(i)));

Deno.test("list query: bad parameters fall back to their defaults", () => {
  const q = parseListQuery(
    new URLSearchParams("area=gpu&status=pwned&sort=evil&dir=up&page=-3&per=0"),
  );
  assert.deepEqual(q, DEFAULT_QUERY);
  assert.equal(parseListQuery(new URLSearchParams("per=100000")).per, MAX_PER_PAGE);
  assert.equal(parseListQuery(new URLSearchParams("q=" + "x".repeat(500))).q.length, 200);
});

Deno.test("list query: sorting by a column alone takes that column's natural direction", () => {
  assert.equal(parseListQuery(new URLSearchParams("sort=hits")).dir, "desc");
  assert.equal(parseListQuery(new URLSearchParams("sort=title")).dir, "asc");
  assert.equal(parseListQuery(new URLSearchParams("sort=title&dir=desc")).dir, "desc");
});

Deno.test("list query: status sorts in triage order and ties break by id", () => {
  const q = { ...DEFAULT_QUERY, sort: "status" as const, dir: "asc" as const, per: 100 };
  const out = applyListQuery(rows, q).rows;
  const order = ["new", "confirmed", "fixed", "wontfix", "invalid"];
  for (let i = 1; i < out.length; i++) {
    const a = out[i - 1]!;
    const b = out[i]!;
    const d = order.indexOf(a.status) - order.indexOf(b.status);
    assert.ok(d < 0 || (d === 0 && a.id < b.id), `${a.id} before ${b.id}`);
  }
});

Deno.test("list query: a page past the end shows the last page", () => {
  const page = applyListQuery(rows, { ...DEFAULT_QUERY, per: 5, page: 99 });
  assert.equal(page.pages, 3);
  assert.equal(page.page, 3);
  assert.equal(page.rows.length, 2);
  assert.equal(page.total, 12);
});

Deno.test("list query: query strings omit defaults and round-trip", () => {
  assert.equal(queryString(DEFAULT_QUERY), "");
  const q = {
    ...DEFAULT_QUERY,
    area: "pmu" as const,
    q: "a&b",
    sort: "hits" as const,
    dir: "asc" as const,
    page: 2,
  };
  const s = queryString(q);
  assert.equal(s, "?area=pmu&q=a%26b&sort=hits&dir=asc&page=2");
  assert.deepEqual(parseListQuery(new URLSearchParams(s.slice(1))), q);
});
