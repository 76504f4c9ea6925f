/**
 * @module
 * The harness version recorded in findings: `git rev-parse HEAD`, or "unknown" when
 * git or the permission to run it is missing.
 */

/** The commit of the harness, or "unknown". */
export async function harnessVersion(): Promise<string> {
  try {
    const out = await new Deno.Command("git", {
      args: ["rev-parse", "HEAD"],
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    return out.success && /^[0-9a-f]{40}$/.test(text) ? text : "unknown";
  } catch {
    return "unknown";
  }
}
