/**
 * @module
 * Campaign progress on stderr: a live status line rewritten in place on a TTY, plain
 * lines every 10 seconds otherwise (CI logs), nothing with `quiet`.
 */
import type { Progress } from "./campaign.ts";

/** Formats a rate with k/M suffixes. */
export function rate(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}

/** One status line. */
export function statusLine(p: Progress): string {
  const cov = p.coverageTotal > 0 ? `${p.coverage}/${p.coverageTotal}` : "n/a";
  return `${p.elapsed.toFixed(1)}s  runs ${p.runs}  ops/s ${
    rate(p.ops / Math.max(p.elapsed, 1e-9))
  }` +
    `  coverage ${cov}  findings ${p.findings}`;
}

/** Writes progress lines to stderr. */
export class ProgressReporter {
  readonly #tty: boolean;
  readonly #quiet: boolean;
  #last = 0;
  #drawn = false;
  readonly #enc = new TextEncoder();

  constructor(quiet = false) {
    this.#quiet = quiet;
    this.#tty = !quiet && Deno.stderr.isTerminal();
  }

  update(p: Progress): void {
    if (this.#quiet) return;
    const now = performance.now();
    if (this.#tty) {
      if (now - this.#last < 200) return;
      this.#last = now;
      Deno.stderr.writeSync(this.#enc.encode(`\r\x1b[K${statusLine(p)}`));
      this.#drawn = true;
    } else if (now - this.#last >= 10_000) {
      this.#last = now;
      console.error(statusLine(p));
    }
  }

  /** Prints a line above the status line. */
  line(text: string): void {
    if (this.#quiet) return;
    this.clear();
    console.error(text);
  }

  /** Removes the status line. */
  clear(): void {
    if (this.#drawn) Deno.stderr.writeSync(this.#enc.encode("\r\x1b[K"));
    this.#drawn = false;
  }
}
