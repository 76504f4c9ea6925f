/**
 * @module
 * The pieces the finding page and its op pages share: an op list that shows only some
 * spans of a trace (the rest as gap rows linking to the op pages), and long text that
 * folds (a 2^20-page dirty bitmap is 262,144 hex digits).
 */
import type { FC } from "hono/jsx";
import { OPS_PAGE, type Span } from "./bounds.ts";
import { clip, formatInt } from "./format.ts";
import { opLine, type Shown } from "./ops_view.ts";
import type { Config } from "../trace/types.ts";

/** Longest op or outcome text shown unfolded (characters). */
export const INLINE_CHARS = 240;
/** Longest text shown at all, folded (characters); the rest is in the raw JSON. */
export const FOLDED_CHARS = 2000;

/** Text that is shown whole when short, else folded, and cut at `max` characters. */
export const LongText: FC<{ text: string; max?: number; inline?: number }> = (
  { text, max = FOLDED_CHARS, inline = INLINE_CHARS },
) => {
  if (text.length <= inline) return <span class="val">{text}</span>;
  const head = clip(text, Math.min(80, inline));
  const body = clip(text, max);
  return (
    <details class="long">
      <summary>
        <span class="val">{head.text}</span>… ({formatInt(text.length)} characters)
      </summary>
      <span class="val">{body.text}</span>
      {body.cut > 0
        ? <span class="muted">… {formatInt(body.cut)} more characters (see the raw JSON)</span>
        : null}
    </details>
  );
};

/** Which trace of a finding an op list shows, as in `?trace=`. */
export type TraceName = "minimized" | "full";

export interface OpListProps {
  /** The trace's ops, in JSON form. */
  ops: readonly unknown[];
  /** The spans shown, in order; ops between them fold into gap rows. */
  spans: readonly Span[];
  /** The diverging op, marked. */
  mark?: number | undefined;
  /** The element id (`minimized`, `full`); the marked op gets `<id>-diverge`. */
  id: string;
  /** The finding, for the gap rows' links to its op pages. */
  findingId: string;
  trace: TraceName;
  /** Whether folded runs of ops show as gap rows (default true). */
  gaps?: boolean;
  /** The trace's config, for decoding (MAXPHYADDR, the vendor's RDPMC encoding). */
  config?: Config | undefined;
}

/** The op list of some spans of a trace, with a gap row per folded run of ops. */
export const OpList: FC<OpListProps> = (
  { ops, spans, mark, id, findingId, trace, gaps = true, config },
) => {
  const items: unknown[] = [];
  let at = 0;
  const gap = (from: number, to: number) => (
    <li class="gap">
      <span class="idx">⋯</span>
      <span>
        ops {formatInt(from)}–{formatInt(to - 1)} ({formatInt(to - from)}) not shown:{" "}
        <a href={opsPageHref(findingId, trace, from)}>
          show ops {formatInt(from)}–{formatInt(Math.min(to, from + OPS_PAGE) - 1)}
        </a>
      </span>
    </li>
  );
  for (const s of spans) {
    if (gaps && s.from > at) items.push(gap(at, s.from));
    for (let i = s.from; i < s.to; i++) {
      items.push(<OpItem line={opLine(ops[i], i, config)} index={i} mark={i === mark} id={id} />);
    }
    at = s.to;
  }
  if (gaps && at < ops.length) items.push(gap(at, ops.length));
  return <ol class="ops" id={id}>{items}</ol>;
};

const OpItem: FC<{ line: Shown; index: number; mark: boolean; id: string }> = (
  { line, index, mark, id },
) => (
  <li
    class={[mark ? "diverge" : "", line.error ? "bad" : ""].join(" ").trim() || undefined}
    id={mark ? `${id}-diverge` : undefined}
    title={line.error !== undefined
      ? clip(line.error, FOLDED_CHARS).text
      : line.plain === undefined
      ? undefined
      : clip(line.plain, FOLDED_CHARS).text}
  >
    <span class="idx">{index}</span>
    <span class="op">
      <LongText text={line.text} />
    </span>
    {mark ? <span class="mark">◀ diverges here</span> : null}
    {line.error ? <span class="err">({clip(line.error, INLINE_CHARS).text})</span> : null}
  </li>
);

/** The op page of a finding's trace that starts at op `from`. */
export function opsPageHref(findingId: string, trace: TraceName, from: number): string {
  return `/findings/${findingId}/ops?trace=${trace}&from=${from}`;
}
