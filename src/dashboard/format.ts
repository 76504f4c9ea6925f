/**
 * @module
 * Number formats of the dashboard's pages (`1,234,567`, `0.17 s`, `1.8 MB`) and the
 * clipping of long text, both used by every page.
 */

/**
 * An integer with thousands separators (`1,234,567`); anything else as is. Not
 * `toLocaleString`, which costs ~30 us a call (3 ms for a list page of 50 rows).
 */
export function formatInt(n: number): string {
  return Number.isFinite(n) ? group(Math.round(n).toFixed(0)) : String(n);
}

/** A number with `digits` decimals and thousands separators (`1,234.57`). */
export function formatFixed(n: number, digits = 2): string {
  if (!Number.isFinite(n)) return String(n);
  const [whole = "", fraction] = n.toFixed(digits).split(".");
  return fraction === undefined ? group(whole) : `${group(whole)}.${fraction}`;
}

/** Commas between groups of three digits of an integer's decimal digits. */
function group(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+$)/g, ",");
}

/** Seconds with two decimals: `0.17 s`, `1,234.50 s`. */
export function formatSeconds(s: number): string {
  return `${formatFixed(s, 2)} s`;
}

/** A size in bytes as `812 B`, `64.0 KB`, `1.8 MB` (powers of 1,000). */
export function formatBytes(b: number): string {
  if (b < 1000) return `${formatInt(b)} B`;
  if (b < 1e6) return `${(b / 1e3).toFixed(1)} KB`;
  if (b < 1e9) return `${(b / 1e6).toFixed(1)} MB`;
  return `${(b / 1e9).toFixed(1)} GB`;
}

/** A text cut to at most `max` characters, and how many were cut. */
export interface Clipped {
  text: string;
  /** Characters left out; 0 when the text is whole. */
  cut: number;
}

/** The first `max` characters of `text` (never splitting a surrogate pair). */
export function clip(text: string, max: number): Clipped {
  if (text.length <= max) return { text, cut: 0 };
  let end = max;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--;
  return { text: text.slice(0, end), cut: text.length - end };
}

/** `text`, cut to `max` characters with an ellipsis when longer (for one-line fields). */
export function clipLine(text: string, max: number): string {
  const c = clip(text, max);
  return c.cut === 0 ? c.text : `${c.text}…`;
}

/** `1 hit`, `2 hits`, `1,500 hits`: a count and a noun (plural with `s` unless told). */
export function countOf(n: number, noun: string, plural = `${noun}s`): string {
  return `${formatInt(n)} ${n === 1 ? noun : plural}`;
}
