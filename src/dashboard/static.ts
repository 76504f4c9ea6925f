/**
 * @module
 * The dashboard's one style sheet and one small script, served from `/static/` so
 * that the Content-Security-Policy can forbid every inline style and script.
 */

/** The style sheet (`/static/app.css`). */
export const CSS = `
:root { --fg: #1d2125; --muted: #5c6670; --line: #d5dae0; --bg: #ffffff; --alt: #f4f6f8;
  --accent: #1f5fbf; --bad: #b3261e; --good: #1e7a3c; --warn: #8a5a00; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header.top { display: flex; gap: 1.5em; align-items: baseline; padding: .6em 1.2em;
  background: #20262d; color: #fff; }
header.top a { color: #cfe0ff; text-decoration: none; }
header.top .brand { font-weight: 700; color: #fff; }
main { padding: 1em 1.2em 3em; max-width: 1400px; }
h1 { font-size: 1.35em; margin: .2em 0 .6em; }
h2 { font-size: 1.1em; margin: 1.4em 0 .5em; border-bottom: 1px solid var(--line); }
a { color: var(--accent); }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; }
pre { background: var(--alt); padding: .6em .8em; overflow: auto; max-height: 32em;
  white-space: pre-wrap; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; }
/* Fixed columns, so a long outcome wraps instead of squeezing "why" to one letter. */
#permitted table { table-layout: fixed; }
#permitted th:nth-child(1) { width: 55%; }
#permitted th:nth-child(2) { width: 17%; }
#permitted th:nth-child(3) { width: 28%; }
th, td { text-align: left; padding: .3em .6em; border-bottom: 1px solid var(--line); vertical-align: top; }
th a { color: inherit; text-decoration: none; }
th a:hover { text-decoration: underline; }
tbody tr:nth-child(even) { background: var(--alt); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.error td { background: #fde8e7; color: var(--bad); }
form.filters { display: flex; flex-wrap: wrap; gap: .6em; align-items: end; margin-bottom: .8em; }
form.filters label { display: flex; flex-direction: column; font-size: .85em; color: var(--muted); }
input, select, textarea, button { font: inherit; }
input[type=search] { min-width: 22em; }
.badge { display: inline-block; padding: 0 .45em; border-radius: 3px; font-size: .85em;
  border: 1px solid var(--line); background: var(--alt); }
.status-new { color: var(--accent); border-color: var(--accent); }
.status-confirmed { color: var(--bad); border-color: var(--bad); }
.status-fixed { color: var(--good); border-color: var(--good); }
.status-wontfix, .status-invalid { color: var(--muted); }
.pager { display: flex; gap: 1em; margin: .8em 0; align-items: center; }
.muted { color: var(--muted); }
.flash { padding: .5em .8em; background: #e6f4ea; border: 1px solid var(--good); margin-bottom: 1em; }
.alert { padding: .5em .8em; background: #fde8e7; border: 1px solid var(--bad); margin-bottom: 1em; color: var(--bad); }
ol.ops { list-style: none; padding: 0; margin: 0; counter-reset: none; }
ol.ops li { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px;
  padding: .1em .5em; display: flex; gap: 1em; min-width: 0; }
ol.ops li .idx { color: var(--muted); min-width: 3em; text-align: right; }
ol.ops li.diverge { background: #fff1c2; border-left: 4px solid var(--warn); font-weight: 600; }
ol.ops li.bad { color: var(--bad); }
.mark { color: var(--warn); }
.cols { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 2fr); gap: 1.2em; }
.cols > * { min-width: 0; }
/* Long values (a dirty bitmap, a filter's event list) wrap anywhere instead of pushing
   the page sideways; the longest also fold (details.long) and are cut. */
td, dd, .outcome, .val, ol.ops li > span, #title, .box { overflow-wrap: anywhere; word-break: break-word; }
ol.ops li > span.op { min-width: 0; flex: 1; }
ol.ops li.gap { color: var(--muted); font-style: italic; background: var(--alt); }
details.long { display: inline; }
details.long > summary { font-weight: normal; display: inline; }
details.long[open] > summary { display: block; }
ul.plain { list-style: none; padding: 0; margin: 0; }
#findings td.title { min-width: 18em; }
#findings code.sig { font-size: 12px; }
.box { border: 1px solid var(--line); padding: .6em .8em; }
.box h3 { margin: 0 0 .4em; font-size: 1em; }
.outcome { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 15px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; margin: 0; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; }
.copy { display: flex; gap: .5em; margin: .3em 0; }
.copy input { flex: 1; font-family: ui-monospace, monospace; }
form.triage { display: grid; gap: .5em; max-width: 40em; }
form.triage textarea { min-height: 5em; }
details { margin: .6em 0; }
summary { cursor: pointer; font-weight: 600; }
svg.chart { background: #fff; border: 1px solid var(--line); max-width: 100%; height: auto; }
svg.chart text { font: 11px system-ui, sans-serif; fill: #333; }
svg.chart text.title { font-size: 13px; font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; }
`;

/** The script (`/static/app.js`): copy buttons, with select-all as the fallback. */
export const JS = `
document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("button[data-copy]") : null;
  if (!button) return;
  const input = document.getElementById(button.getAttribute("data-copy"));
  if (!input) return;
  const done = () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy"; }, 1500); };
  input.select();
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(input.value).then(done, () => { document.execCommand("copy"); done(); });
  } else {
    document.execCommand("copy");
    done();
  }
});
`;
