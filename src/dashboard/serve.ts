/**
 * @module
 * `deno task dashboard [--host 127.0.0.1] [--port 8080] [--corpus DIR] [--allow-remote]`:
 * serves the findings dashboard and prints its URL. It binds to loopback unless told
 * otherwise; any other address needs `--allow-remote` (the dashboard can change
 * finding files) and prints a warning. Exit code 2 on a usage error.
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { createApp } from "./app.tsx";
// The known deviations' table (names, titles, KVM paths): data only, no core logic.
import { deviation } from "../core/deviations.ts";
import { isLoopbackHost } from "./guard.ts";
// The C reproducer of /findings/:id/repro.c (src/export/): the minimized trace, --format c.
import { exportFindingC } from "../../fuzz/commands/export.ts";

export interface ServeOptions {
  host: string;
  port: number;
  corpus: string;
  allowRemote: boolean;
  help: boolean;
}

export const USAGE =
  `Usage: deno task dashboard [--host 127.0.0.1] [--port 8080] [--corpus DIR] [--allow-remote]

Serves the shadowfuzz findings dashboard.
  --host ADDR       address to bind (default 127.0.0.1); a non-loopback address
                    needs --allow-remote
  --port N          TCP port, 0 for any free port (default 8080)
  --corpus DIR      corpus directory with findings/ and runs/ (default corpus)
  --allow-remote    allow binding to a non-loopback address (anyone who can reach
                    it can read findings and change their status)
  -h, --help        show this help`;

/** A command-line mistake: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * Parses the dashboard's arguments.
 *
 * @throws {UsageError} An unknown flag, a missing or bad value, or a non-loopback host
 *   without `--allow-remote`.
 */
export function parseServeArgs(args: string[]): ServeOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: "string", default: "127.0.0.1" },
        port: { type: "string", default: "8080" },
        corpus: { type: "string", default: "corpus" },
        "allow-remote": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    throw new UsageError(`Cannot parse arguments: ${e instanceof Error ? e.message : e}`);
  }
  const host = values.host.trim();
  if (host === "") throw new UsageError("Cannot parse arguments: --host is empty");
  if (!/^\d{1,5}$/.test(values.port) || Number(values.port) > 65535) {
    throw new UsageError(`Cannot parse arguments: --port ${values.port} is not 0..65535`);
  }
  if (values.corpus === "") throw new UsageError("Cannot parse arguments: --corpus is empty");
  const allowRemote = values["allow-remote"];
  if (!isLoopbackHost(host) && !allowRemote) {
    throw new UsageError(
      `Cannot bind to ${host}: not a loopback address; pass --allow-remote to serve the ` +
        "dashboard (which can change finding files) to the network",
    );
  }
  return {
    host,
    port: Number(values.port),
    corpus: values.corpus,
    allowRemote,
    help: values.help,
  };
}

/** The URL a browser should open for a bound address. */
export function serverUrl(hostname: string, port: number): string {
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return `http://${host}:${port}/`;
}

/** Runs the server until the process is stopped; returns an exit code on failure. */
export async function main(args: string[]): Promise<number> {
  let options: ServeOptions;
  try {
    options = parseServeArgs(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(
      `${
        e.message.replace(
          /^Cannot parse arguments:/,
          "Cannot parse arguments of deno task dashboard:",
        )
      }` +
        " (deno task dashboard --help for usage)",
    );
    return 2;
  }
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  const corpusDir = resolve(options.corpus);
  const remote = !isLoopbackHost(options.host);
  if (remote) {
    console.error(
      `warning: serving on ${options.host}, which is not loopback: anyone who can reach ` +
        "it can read every finding and change its status",
    );
  }
  try {
    await Deno.stat(corpusDir);
  } catch {
    console.error(`note: ${corpusDir} does not exist yet; the dashboard shows an empty corpus`);
  }
  const app = createApp({
    corpusDir,
    hosts: remote ? "any" : "loopback",
    // The hook for what a finding's `deviation` is; the lead may swap in another table.
    describeDeviation: deviation,
    exportC: exportFindingC,
  });
  let server: Deno.HttpServer;
  try {
    server = Deno.serve({
      hostname: options.host,
      port: options.port,
      onListen: ({ hostname, port }) => {
        console.log(`shadowfuzz dashboard: ${serverUrl(hostname, port)} (corpus ${corpusDir})`);
      },
    }, app.fetch);
  } catch (e) {
    console.error(
      `Cannot listen on ${options.host}:${options.port}: ${e instanceof Error ? e.message : e}`,
    );
    return 3;
  }
  await server.finished;
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
