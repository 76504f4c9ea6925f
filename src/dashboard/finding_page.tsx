/**
 * @module
 * One finding: the minimized trace as op lines with the diverging op marked, the
 * observed outcome beside the permitted set, the config, the replay commands, the
 * triage control, and the full trace and raw JSON folded away.
 */
import type { FC } from "hono/jsx";
import { FINDING_STATUSES } from "../corpus/types.ts";
import type { Finding } from "../corpus/types.ts";
import { MAX_NOTE_LENGTH } from "../corpus/store.ts";
import { Layout, Options, Time } from "./layout.tsx";
import { configText, opLines, outcomeText, permittedRow, type Shown } from "./ops_view.ts";

export interface FindingProps {
  finding: Finding;
  /** The CSRF token the status form must send back. */
  token: string;
  /** Set after a successful status write-back. */
  saved?: boolean;
  /** A refused write-back, shown above the form. */
  error?: string;
  /** The corpus folder served, so the replay commands name it. */
  corpusDir?: string;
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

const OpList: FC<{ lines: Shown[]; mark?: number; id: string }> = ({ lines, mark, id }) => (
  <ol class="ops" id={id}>
    {lines.map((l, i) => (
      <li
        class={[i === mark ? "diverge" : "", l.error ? "bad" : ""].join(" ").trim() || undefined}
        id={i === mark ? `${id}-diverge` : undefined}
        title={l.error}
      >
        <span class="idx">{i}</span>
        <span>{l.text}</span>
        {i === mark ? <span class="mark">◀ diverges here</span> : null}
        {l.error ? <span>({l.error})</span> : null}
      </li>
    ))}
  </ol>
);

const CopyLine: FC<{ id: string; text: string }> = ({ id, text }) => (
  <div class="copy">
    <input id={id} type="text" readonly value={text} aria-label="replay command" />
    <button type="button" data-copy={id}>Copy</button>
  </div>
);

export const FindingPageView: FC<FindingProps> = (
  { finding: f, token, saved, error, corpusDir },
) => {
  const lines = opLines(f.minimized);
  const fullLines = opLines(f.trace);
  const d = f.divergence;
  const observed = outcomeText(d.observed);
  const permitted = d.permitted.map(permittedRow);
  const config = configText(f.minimized);
  const [byId, byFile] = replayCommands(f.id, corpusDir);
  return (
    <Layout title={f.title} section="findings">
      <p>
        <a href="/">« all findings</a>
      </p>
      <h1 id="title">{f.title}</h1>
      {saved ? <p class="flash" role="status" id="saved">Saved: status is {f.status}.</p> : null}
      <dl class="meta">
        <dt>Signature</dt>
        <dd>
          <code id="signature">{f.signature}</code>
        </dd>
        <dt>Id</dt>
        <dd>
          <code>{f.id}</code>
        </dd>
        <dt>Area / kind</dt>
        <dd>{f.area} / {f.kind}</dd>
        <dt>Status</dt>
        <dd>
          <span class={`badge status-${f.status}`} id="status">{f.status}</span>
        </dd>
        {f.note !== undefined
          ? (
            <>
              <dt>Note</dt>
              <dd id="note">{f.note}</dd>
            </>
          )
          : null}
        <dt>First / last seen</dt>
        <dd>
          <Time iso={f.firstSeen} /> / <Time iso={f.lastSeen} />
        </dd>
        <dt>Hits</dt>
        <dd>{f.hits}</dd>
        <dt>Seeds</dt>
        <dd class="mono">{f.seeds.join(" ")}</dd>
        {f.inject !== undefined
          ? (
            <>
              <dt>Injected bug</dt>
              <dd class="mono">{f.inject}</dd>
            </>
          )
          : null}
        <dt>Harness</dt>
        <dd class="mono">{f.harness}</dd>
      </dl>

      <h2>Divergence at op {d.opIndex}</h2>
      <div class="cols">
        <div class="box" id="observed">
          <h3>Observed ({d.backend})</h3>
          <div class="outcome">{observed.text}</div>
          {observed.error ? <p class="alert">{observed.error}</p> : null}
          {d.invariant !== undefined
            ? (
              <p>
                Broken invariant: <code>{d.invariant}</code>
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
                    <td class="outcome" title={p.outcome.error}>{p.outcome.text}</td>
                    <td class="mono">{p.dontCare ?? ""}</td>
                    <td>{p.why}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      </div>

      <h2>Minimized trace ({lines.length} ops)</h2>
      <OpList lines={lines} mark={d.opIndex} id="minimized" />

      <h2>Replay</h2>
      <CopyLine id="replay-id" text={byId ?? ""} />
      <CopyLine id="replay-file" text={byFile ?? ""} />

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
        <textarea name="note" id="triage-note" maxlength={MAX_NOTE_LENGTH}>{f.note ?? ""}</textarea>
        <div>
          <button type="submit" id="triage-save">Save</button>
        </div>
      </form>

      <h2>Config</h2>
      <pre id="config">{config.text}</pre>
      {config.error ? <p class="alert">{config.error}</p> : null}

      <details id="full-trace">
        <summary>Full trace ({fullLines.length} ops)</summary>
        <OpList lines={fullLines} id="full" />
      </details>
      <details id="raw">
        <summary>Raw JSON</summary>
        <pre>{JSON.stringify(f, null, 2)}</pre>
      </details>
    </Layout>
  );
};
