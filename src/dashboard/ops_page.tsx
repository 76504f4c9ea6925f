/**
 * @module
 * `/findings/:id/ops?trace=minimized|full&from=N`: one page of {@linkcode OPS_PAGE}
 * ops of a finding's trace, with the diverging op marked and links to the other pages,
 * for traces too long for the finding page, which folds them.
 */
import type { FC } from "hono/jsx";
import type { Finding } from "../corpus/types.ts";
import { OPS_PAGE } from "./bounds.ts";
import { clipLine, formatInt } from "./format.ts";
import { Layout } from "./layout.tsx";
import { OpList, opsPageHref, type TraceName } from "./op_list.tsx";
import { traceConfig, traceOps } from "./ops_view.ts";

/** Which op page a request asks for. */
export interface OpsQuery {
  trace: TraceName;
  /** The first op shown (0-based). */
  from: number;
}

/**
 * Reads `?trace=` and `?from=` leniently, as the list's query is read: an unknown trace
 * is the minimized one, a bad `from` is 0.
 */
export function parseOpsQuery(params: URLSearchParams): OpsQuery {
  const trace = params.get("trace") === "full" ? "full" : "minimized";
  const text = params.get("from") ?? "";
  const from = /^\d{1,15}$/.test(text) ? Number(text) : 0;
  return { trace, from };
}

export const OpsPageView: FC<{ finding: Finding; query: OpsQuery }> = (
  { finding: f, query },
) => {
  const trace = query.trace === "full" ? f.trace : f.minimized;
  const ops = traceOps(trace);
  const last = Math.max(0, ops.length - 1);
  const from = Math.min(query.from, ops.length === 0 ? 0 : last);
  const to = Math.min(ops.length, from + OPS_PAGE);
  const mark = query.trace === "minimized" ? f.divergence.opIndex : undefined;
  const name = query.trace === "full" ? "Full trace" : "Minimized trace";
  const href = (at: number) => opsPageHref(f.id, query.trace, at);
  const lastPage = Math.max(0, Math.floor(last / OPS_PAGE) * OPS_PAGE);
  return (
    <Layout title={`${name} of ${f.id}`} section="findings">
      <p>
        <a href={`/findings/${f.id}`}>« {clipLine(f.title, 200)}</a>
      </p>
      <h1>
        {name}: ops {formatInt(from)}–{formatInt(Math.max(from, to - 1))} of {formatInt(ops.length)}
      </h1>
      {mark !== undefined && mark < ops.length
        ? (
          <p>
            The divergence is at op{" "}
            <a href={href(Math.floor(mark / OPS_PAGE) * OPS_PAGE)}>{formatInt(mark)}</a>.
          </p>
        )
        : null}
      <Pager from={from} to={to} total={ops.length} lastPage={lastPage} href={href} />
      <OpList
        ops={ops}
        spans={to > from ? [{ from, to }] : []}
        mark={mark}
        id="page-ops"
        findingId={f.id}
        trace={query.trace}
        gaps={false}
        config={traceConfig(trace)}
      />
      <Pager from={from} to={to} total={ops.length} lastPage={lastPage} href={href} />
    </Layout>
  );
};

const Pager: FC<
  { from: number; to: number; total: number; lastPage: number; href: (at: number) => string }
> = ({ from, to, total, lastPage, href }) => (
  <nav class="pager" aria-label="op pages">
    {from > 0
      ? (
        <>
          <a href={href(0)}>« first</a>
          <a href={href(Math.max(0, from - OPS_PAGE))} rel="prev">‹ previous</a>
        </>
      )
      : null}
    <span>
      ops {formatInt(from)}–{formatInt(Math.max(from, to - 1))} of {formatInt(total)}
    </span>
    {to < total
      ? (
        <>
          <a href={href(to)} rel="next">next ›</a>
          <a href={href(lastPage)}>last »</a>
        </>
      )
      : null}
  </nav>
);
