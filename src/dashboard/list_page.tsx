/**
 * @module
 * The findings list page: filters, search, sortable columns (title, backend, area,
 * status, first and last seen, hits, minimized length), corrupt files as error rows,
 * and a pager. The signature is printed under the title only when the title does not
 * already contain it.
 */
import type { FC } from "hono/jsx";
import { FINDING_STATUSES } from "../corpus/types.ts";
import type { FileError } from "../corpus/store.ts";
import { Layout, Options, Time } from "./layout.tsx";
import { formatInt } from "./format.ts";
import { titleShowsSignature } from "./summary.ts";
import {
  AREAS,
  defaultDir,
  LIST_BACKENDS,
  type ListPage,
  type ListQuery,
  queryString,
  type SortKey,
} from "./list_query.ts";

export interface ListProps {
  query: ListQuery;
  page: ListPage;
  errors: FileError[];
  /** All valid findings, before filtering. */
  count: number;
}

const COLUMNS: { key: SortKey; label: string; num?: boolean }[] = [
  { key: "title", label: "Title" },
  { key: "backend", label: "Backend" },
  { key: "area", label: "Area" },
  { key: "status", label: "Status" },
  { key: "firstSeen", label: "First seen" },
  { key: "lastSeen", label: "Last seen" },
  { key: "hits", label: "Hits", num: true },
  { key: "ops", label: "Min. ops", num: true },
];

export const ListPageView: FC<ListProps> = ({ query, page, errors, count }) => (
  <Layout title="Findings" section="findings">
    <h1>Findings</h1>
    <form class="filters" method="get" action="/" role="search">
      <label>
        Area
        <select name="area" id="filter-area">
          <option value="">all</option>
          <Options values={AREAS} selected={query.area} />
        </select>
      </label>
      <label>
        Status
        <select name="status" id="filter-status">
          <option value="">all</option>
          <Options values={FINDING_STATUSES} selected={query.status} />
        </select>
      </label>
      <label>
        Backend
        <select name="backend" id="filter-backend">
          <option value="">all</option>
          <Options values={LIST_BACKENDS} selected={query.backend} />
        </select>
      </label>
      <label>
        Search signature and title
        <input type="search" name="q" id="filter-q" value={query.q} maxlength={200} />
      </label>
      {query.sort !== "lastSeen" || query.dir !== "desc"
        ? (
          <>
            <input type="hidden" name="sort" value={query.sort} />
            <input type="hidden" name="dir" value={query.dir} />
          </>
        )
        : null}
      <button type="submit" id="filter-apply">Apply</button>
      <a href="/">Clear</a>
    </form>
    <p class="muted" id="count">
      {page.total} of {count} findings
      {errors.length > 0 ? `, ${errors.length} unreadable file(s)` : ""}
    </p>
    <table id="findings">
      <thead>
        <tr>
          {COLUMNS.map((c) => {
            const active = query.sort === c.key;
            const dir = active ? (query.dir === "asc" ? "desc" : "asc") : defaultDir(c.key);
            const arrow = active ? (query.dir === "asc" ? " ▲" : " ▼") : "";
            return (
              <th
                class={c.num ? "num" : undefined}
                aria-sort={active ? (query.dir === "asc" ? "ascending" : "descending") : undefined}
              >
                <a href={`/${queryString(query, { sort: c.key, dir, page: 1 })}`}>
                  {c.label}
                  {arrow}
                </a>
              </th>
            );
          })}
        </tr>
      </thead>
      <tbody>
        {page.page === 1
          ? errors.map((e) => (
            <tr class="error">
              <td colspan={COLUMNS.length}>
                Cannot read <code>findings/{e.file}</code>: {e.error}
              </td>
            </tr>
          ))
          : null}
        {page.rows.map((s) => (
          <tr data-id={s.id}>
            <td class="title">
              <a href={`/findings/${s.id}`}>{s.title}</a>
              {titleShowsSignature(s.title, s.signature) ? null : (
                <>
                  <br />
                  <code class="muted sig">{s.signature}</code>
                </>
              )}
            </td>
            <td class="backend">{s.backend}</td>
            <td class="area">{s.area}</td>
            <td>
              <span class={`badge status-${s.status}`}>{s.status}</span>
            </td>
            <td>
              <Time iso={s.firstSeen} />
            </td>
            <td>
              <Time iso={s.lastSeen} />
            </td>
            <td class="num">{formatInt(s.hits)}</td>
            <td class="num">{formatInt(s.minimizedOps)}</td>
          </tr>
        ))}
        {page.rows.length === 0
          ? (
            <tr>
              <td colspan={COLUMNS.length} class="muted">No finding matches.</td>
            </tr>
          )
          : null}
      </tbody>
    </table>
    {page.pages > 1
      ? (
        <nav class="pager" aria-label="pages">
          {page.page > 1
            ? (
              <>
                <a href={`/${queryString(query, { page: 1 })}`}>« first</a>
                <a href={`/${queryString(query, { page: page.page - 1 })}`} rel="prev">
                  ‹ previous
                </a>
              </>
            )
            : null}
          <span>page {page.page} of {page.pages}</span>
          {page.page < page.pages
            ? (
              <>
                <a href={`/${queryString(query, { page: page.page + 1 })}`} rel="next">next ›</a>
                <a href={`/${queryString(query, { page: page.pages })}`}>last »</a>
              </>
            )
            : null}
        </nav>
      )
      : null}
  </Layout>
);
