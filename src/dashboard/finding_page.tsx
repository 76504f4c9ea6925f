/**
 * @module
 * One finding: the minimized trace as op lines with the diverging op marked, the
 * observed outcome beside the permitted set, the known deviation, host record, aliases
 * and hit history when the finding has them, the config, the replay commands and the
 * C reproducer, the triage control, and the full trace and raw JSON folded away.
 *
 * Everything is bounded (issue 13 item 7): long traces fold into their head, the ops
 * around the divergence and their tail, with the rest on op pages; long values fold and
 * are cut; the permitted set, the history and other lists show their first or newest
 * entries; the raw JSON of a large file is a link to the API rather than inline.
 */
import type { FC } from "hono/jsx";
import { FINDING_STATUSES } from "../corpus/types.ts";
import type { Finding } from "../corpus/types.ts";
import { MAX_NOTE_LENGTH } from "../corpus/store.ts";
import { foldSpans } from "./bounds.ts";
import { clip, clipLine, countOf, formatBytes, formatInt } from "./format.ts";
import {
  aliasesOf,
  type DescribeDeviation,
  deviationOf,
  historyOf,
  hostOf,
  MAX_LIST_ITEMS,
} from "./finding_extras.ts";
import { Layout, Options, Time } from "./layout.tsx";
import { LongText, OpList, opsPageHref } from "./op_list.tsx";
import {
  configText,
  outcomeText,
  parsedOp,
  permittedRow,
  traceConfig,
  traceOps,
} from "./ops_view.ts";

/** Permitted outcomes listed; the page says how many more there are. */
export const MAX_PERMITTED_ROWS = 50;
/** Seeds listed. */
export const MAX_SEEDS = 20;
/** Findings files up to this size show their raw JSON inline (bytes). */
export const MAX_INLINE_RAW_BYTES = 64 * 1024;
/** Longest title, signature or harness shown (characters). */
export const MAX_TITLE_CHARS = 500;

export interface FindingProps {
  finding: Finding;
  /** The finding file's size in bytes (decides whether the raw JSON is inline). */
  bytes?: number;
  /** The CSRF token the status form must send back. */
  token: string;
  /** Set after a successful status write-back. */
  saved?: boolean;
  /** A refused write-back, shown above the form. */
  error?: string;
  /** The corpus folder served, so the replay commands name it. */
  corpusDir?: string;
  /** Looks up what a known deviation is (`AppOptions.describeDeviation`). */
  describeDeviation?: DescribeDeviation;
  /** Whether `/findings/:id/repro.c` can export a C reproducer. */
  exportC?: boolean;
}

/**
 * The commands that replay a finding, by id and by file, for the corpus the dashboard
 * serves (`--corpus DIR` is added unless it is the default `corpus`).
 */
export function replayCommands(id: string, corpusDir = "corpus"): string[] {
  const dir = corpusDir.replace(/\/+$/, "") || ".";
  if (dir === "corpus") {
    return [`deno task replay ${id}`, `deno task replay corpus/findings/${id}.json`];
  }
  return [
    `deno task replay ${id} --corpus ${shellQuote(dir)}`,
    `deno task replay ${shellQuote(`${dir}/findings/${id}.json`)}`,
  ];
}

/** A word for a POSIX shell: as is when plain, else single-quoted. */
function shellQuote(word: string): string {
  return /^[\w./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

const CopyLine: FC<{ id: string; text: string }> = ({ id, text }) => (
  <div class="copy">
    <input id={id} type="text" readonly value={text} aria-label="replay command" />
    <button type="button" data-copy={id}>Copy</button>
  </div>
);

export const FindingPageView: FC<FindingProps> = (props) => {
  const { finding: f, token, saved, error, corpusDir } = props;
  const d = f.divergence;
  const minOps = traceOps(f.minimized);
  const fullOps = traceOps(f.trace);
  const minConfig = traceConfig(f.minimized);
  const fullConfig = traceConfig(f.trace);
  // The diverging op decodes its outcomes: an rdmsr's MSR, a load's PTE fields.
  const divOp = parsedOp(minOps, d.opIndex);
  const observed = outcomeText(d.observed, divOp, minConfig);
  const permittedAll = Array.isArray(d.permitted) ? d.permitted : [];
  const permitted = permittedAll.slice(0, MAX_PERMITTED_ROWS).map((p) =>
    permittedRow(p, divOp, minConfig)
  );
  const config = configText(f.minimized);
  const [byId, byFile] = replayCommands(f.id, corpusDir);
  const title = clipLine(f.title, MAX_TITLE_CHARS);
  const minSpans = foldSpans(minOps.length, d.opIndex);
  const fullSpans = foldSpans(fullOps.length, undefined);
  const folded = (spans: readonly { from: number; to: number }[], total: number) =>
    spans.reduce((n, s) => n + s.to - s.from, 0) < total;
  return (
    <Layout title={clipLine(f.title, 120)} section="findings">
      <p>
        <a href="/">« all findings</a>
      </p>
      <h1 id="title">{title}</h1>
      {saved ? <p class="flash" role="status" id="saved">Saved: status is {f.status}.</p> : null}
      <dl class="meta">
        <dt>Signature</dt>
        <dd>
          <code id="signature">{clipLine(f.signature, MAX_TITLE_CHARS)}</code>
        </dd>
        <dt>Id</dt>
        <dd>
          <code>{f.id}</code>
        </dd>
        <dt>Backend</dt>
        <dd id="backend">{d.backend}</dd>
        <dt>Area / kind</dt>
        <dd>{f.area} / {f.kind}</dd>
        <dt>Status</dt>
        <dd>
          <span class={`badge status-${f.status}`} id="status">{f.status}</span>
        </dd>
        <Deviation finding={f} describe={props.describeDeviation} />
        <Aliases finding={f} />
        {f.note !== undefined
          ? (
            <>
              <dt>Note</dt>
              <dd id="note">{clip(f.note, MAX_NOTE_LENGTH).text}</dd>
            </>
          )
          : null}
        <dt>First / last seen</dt>
        <dd>
          <Time iso={f.firstSeen} /> / <Time iso={f.lastSeen} />
        </dd>
        <dt>Hits</dt>
        <dd id="hits">{formatInt(f.hits)}</dd>
        <dt>Seeds</dt>
        <dd class="mono">
          {f.seeds.slice(0, MAX_SEEDS).map((s) => clipLine(String(s), 40)).join(" ")}
          {f.seeds.length > MAX_SEEDS
            ? <span class="muted">{` and ${formatInt(f.seeds.length - MAX_SEEDS)} more`}</span>
            : null}
        </dd>
        {f.inject !== undefined
          ? (
            <>
              <dt>Injected bug</dt>
              <dd class="mono">{clipLine(f.inject, MAX_TITLE_CHARS)}</dd>
            </>
          )
          : null}
        <dt>Harness</dt>
        <dd class="mono">{clipLine(f.harness, MAX_TITLE_CHARS)}</dd>
      </dl>

      <Host finding={f} />

      <h2>Divergence at op {formatInt(d.opIndex)}</h2>
      <div class="cols">
        <div class="box" id="observed">
          <h3>Observed ({d.backend})</h3>
          <div class="outcome" title={observed.plain}>
            <LongText text={observed.text} />
          </div>
          {observed.error ? <p class="alert">{clipLine(observed.error, 1000)}</p> : null}
          {d.invariant !== undefined
            ? (
              <p>
                Broken invariant: <code>{clipLine(d.invariant, 1000)}</code>
              </p>
            )
            : null}
        </div>
        <div class="box" id="permitted">
          <h3>Permitted (reference)</h3>
          {permitted.length === 0 ? <p class="muted">none recorded</p> : (
            <table>
              <thead>
                <tr>
                  <th>outcome</th>
                  <th>don't-care bits</th>
                  <th>why</th>
                </tr>
              </thead>
              <tbody>
                {permitted.map((p) => (
                  <tr>
                    <td
                      class="outcome"
                      title={p.outcome.error !== undefined
                        ? clipLine(p.outcome.error, 1000)
                        : p.outcome.plain === undefined
                        ? undefined
                        : clipLine(p.outcome.plain, 1000)}
                    >
                      <LongText text={p.outcome.text} />
                    </td>
                    <td class="mono">{p.dontCare ?? ""}</td>
                    <td>
                      <LongText text={p.why} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {permittedAll.length > permitted.length
            ? (
              <p class="muted" id="permitted-more">
                and {formatInt(permittedAll.length - permitted.length)}{" "}
                more permitted outcomes (see the raw JSON)
              </p>
            )
            : null}
        </div>
      </div>

      <h2>Minimized trace ({formatInt(minOps.length)} ops)</h2>
      {folded(minSpans, minOps.length)
        ? (
          <p class="muted" id="minimized-folded">
            Long trace: the first and last ops and those around the divergence are shown;{" "}
            <a href={opsPageHref(f.id, "minimized", 0)}>page through all of them</a>.
          </p>
        )
        : null}
      <OpList
        ops={minOps}
        spans={minSpans}
        mark={d.opIndex}
        id="minimized"
        findingId={f.id}
        trace="minimized"
        config={minConfig}
      />

      <History finding={f} />

      <h2>Replay</h2>
      <CopyLine id="replay-id" text={byId ?? ""} />
      <CopyLine id="replay-file" text={byFile ?? ""} />
      <p id="repro-c">
        {props.exportC
          ? (
            <a href={`/findings/${f.id}/repro.c`} download={`shadowfuzz-${f.id}.c`}>
              Download a C reproducer (repro.c)
            </a>
          )
          : <span class="muted">C reproducer: no C export yet.</span>}
      </p>

      <h2>Triage</h2>
      {error ? <p class="alert" role="alert" id="triage-error">{error}</p> : null}
      <form class="triage" method="post" action={`/findings/${f.id}/status`}>
        <input type="hidden" name="csrf" value={token} />
        <label>
          Status{" "}
          <select name="status" id="triage-status">
            <Options values={FINDING_STATUSES} selected={f.status} />
          </select>
        </label>
        <label for="triage-note">Note</label>
        <textarea name="note" id="triage-note" maxlength={MAX_NOTE_LENGTH}>
          {clip(f.note ?? "", MAX_NOTE_LENGTH).text}
        </textarea>
        <div>
          <button type="submit" id="triage-save">Save</button>
        </div>
      </form>

      <h2>Config</h2>
      <pre id="config">{clip(config.text, 16_000).text}</pre>
      {config.error ? <p class="alert">{clipLine(config.error, 1000)}</p> : null}

      <details id="full-trace">
        <summary>Full trace ({formatInt(fullOps.length)} ops)</summary>
        {folded(fullSpans, fullOps.length)
          ? (
            <p class="muted">
              The first and last ops are shown;{" "}
              <a href={opsPageHref(f.id, "full", 0)}>page through all of them</a>.
            </p>
          )
          : null}
        <OpList
          ops={fullOps}
          spans={fullSpans}
          id="full"
          findingId={f.id}
          trace="full"
          config={fullConfig}
        />
      </details>
      <RawJson finding={f} bytes={props.bytes} />
    </Layout>
  );
};

const RawJson: FC<{ finding: Finding; bytes: number | undefined }> = ({ finding, bytes }) => {
  const api = `/api/findings/${finding.id}`;
  if (bytes !== undefined && bytes > MAX_INLINE_RAW_BYTES) {
    return (
      <p id="raw">
        Raw JSON ({formatBytes(bytes)}): <a href={api}>{api}</a>
      </p>
    );
  }
  const text = clip(JSON.stringify(finding, null, 2), 2 * MAX_INLINE_RAW_BYTES);
  return (
    <details id="raw">
      <summary>Raw JSON</summary>
      <pre>{text.text}</pre>
      {text.cut > 0
        ? (
          <p class="muted">
            Cut; the whole file is at <a href={api}>{api}</a>.
          </p>
        )
        : null}
    </details>
  );
};

const Deviation: FC<{ finding: Finding; describe: DescribeDeviation | undefined }> = (
  { finding, describe },
) => {
  const name = deviationOf(finding);
  if (name === null) return null;
  const info = describe?.(name);
  return (
    <>
      <dt>Known deviation</dt>
      <dd id="deviation">
        <code>{name}</code>
        {info !== undefined
          ? <>: {clipLine(info.title, 1000)}</>
          : describe !== undefined
          ? <span class="muted">(not in the known-deviation table)</span>
          : null}
        {info !== undefined &&
            (info.path !== undefined || info.architecture !== undefined ||
              info.correction !== undefined)
          ? (
            <details class="deviation">
              <summary>What this deviation is</summary>
              <dl class="meta">
                {info.path !== undefined
                  ? (
                    <>
                      <dt>KVM path</dt>
                      <dd>{clipLine(info.path, 2000)}</dd>
                    </>
                  )
                  : null}
                {info.architecture !== undefined
                  ? (
                    <>
                      <dt>Architecture</dt>
                      <dd>{clipLine(info.architecture, 2000)}</dd>
                    </>
                  )
                  : null}
                {info.correction !== undefined
                  ? (
                    <>
                      <dt>Correction</dt>
                      <dd>{clipLine(info.correction, 2000)}</dd>
                    </>
                  )
                  : null}
              </dl>
            </details>
          )
          : null}
      </dd>
    </>
  );
};

const Aliases: FC<{ finding: Finding }> = ({ finding }) => {
  const a = aliasesOf(finding);
  if (a === null || a.total === 0) return null;
  return (
    <>
      <dt>Also known as</dt>
      <dd id="aliases">
        <ul class="plain">
          {a.items.map((x) => (
            <li>
              <code>{x}</code>
            </li>
          ))}
        </ul>
        {a.total > a.items.length
          ? <span class="muted">and {formatInt(a.total - a.items.length)} more</span>
          : null}
      </dd>
    </>
  );
};

const Host: FC<{ finding: Finding }> = ({ finding }) => {
  const h = hostOf(finding);
  if (h === null) return null;
  return (
    <section id="host">
      <h2>Host</h2>
      {h.error !== undefined ? <p class="alert">Cannot show the host record: {h.error}</p> : null}
      {h.summary !== null
        ? <p id="host-summary">{h.summary}</p>
        : h.error === undefined
        ? <p class="muted">The host record has no summary.</p>
        : null}
      {h.details.length > 0
        ? (
          <details id="host-details">
            <summary>Host details ({formatInt(h.total)} fields)</summary>
            <dl class="meta">
              {h.details.map(([k, v]) => (
                <>
                  <dt>{k}</dt>
                  <dd class="mono">{v}</dd>
                </>
              ))}
            </dl>
            {h.total > MAX_LIST_ITEMS
              ? <p class="muted">and {formatInt(h.total - MAX_LIST_ITEMS)} more fields</p>
              : null}
          </details>
        )
        : null}
    </section>
  );
};

const History: FC<{ finding: Finding }> = ({ finding }) => {
  const h = historyOf(finding);
  if (h === null) return null;
  return (
    <section id="history">
      <h2>Hit history</h2>
      {h.error !== undefined ? <p class="alert">Cannot show the hit history: {h.error}</p> : (
        <>
          <p class="muted" id="history-summary">
            {`${countOf(h.hits, "hit")} in ${countOf(h.total, "sighting")} from ` +
              `${countOf(h.seeds, "seed")}` +
              (h.total > h.rows.length ? `; the newest ${formatInt(h.rows.length)} shown` : "") +
              "."}
          </p>
          <table id="history-table">
            <thead>
              <tr>
                <th>When</th>
                <th>Seed</th>
                <th class="num">Hits</th>
              </tr>
            </thead>
            <tbody>
              {h.rows.map((r) =>
                r.error !== undefined
                  ? (
                    <tr class="error">
                      <td colspan={3}>{r.error}</td>
                    </tr>
                  )
                  : (
                    <tr>
                      <td>
                        <Time iso={r.time} />
                      </td>
                      <td class="mono">{r.seed}</td>
                      <td class="num">{r.hits === null ? "" : formatInt(r.hits)}</td>
                    </tr>
                  )
              )}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
};
