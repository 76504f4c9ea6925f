/**
 * @module
 * The page frame shared by every dashboard page (navigation, style sheet, script) and
 * the error page.
 */
import type { FC, PropsWithChildren } from "hono/jsx";

export type Section = "findings" | "runs" | "none";

export const Layout: FC<PropsWithChildren<{ title: string; section: Section }>> = (props) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <title>{props.title} · shadowfuzz</title>
      <link rel="stylesheet" href="/static/app.css" />
      <script src="/static/app.js" defer></script>
    </head>
    <body>
      <header class="top">
        <a class="brand" href="/">shadowfuzz</a>
        <a href="/" aria-current={props.section === "findings" ? "page" : undefined}>Findings</a>
        <a href="/runs" aria-current={props.section === "runs" ? "page" : undefined}>Runs</a>
        <a href="/api/findings">API</a>
      </header>
      <main>{props.children}</main>
    </body>
  </html>
);

export const ErrorPage: FC<{ status: number; message: string }> = (props) => (
  <Layout title={`Error ${props.status}`} section="none">
    <h1>Error {props.status}</h1>
    <p class="alert" role="alert">{props.message}</p>
    <p>
      <a href="/">Back to the findings</a>
    </p>
  </Layout>
);

/** A time as `2026-11-21 14:05` (UTC) with the full ISO time as its machine value. */
export const Time: FC<{ iso: string }> = ({ iso }) => {
  const ms = Date.parse(iso);
  const short = Number.isNaN(ms) ? iso : new Date(ms).toISOString().slice(0, 16).replace("T", " ");
  return <time datetime={iso} title={iso}>{short}</time>;
};

/** A rendered JSX tree as a complete HTML document. */
export async function documentHtml(node: unknown): Promise<string> {
  // A hono/jsx element renders through toString(), which is async when a component is.
  const body = await (node as { toString(): string | Promise<string> }).toString();
  return "<!DOCTYPE html>" + body;
}

/** The `<option>`s of a select, one per value, the current one selected. */
export const Options: FC<{ values: readonly string[]; selected: string | null }> = (props) => {
  // No `key`: hono/jsx renders it as an HTML attribute, and a server-rendered list
  // is never reconciled.
  const items = props.values.map((v) => (
    <option value={v} selected={v === props.selected}>{v}</option>
  ));
  return <>{items}</>;
};
