/**
 * @module
 * The project stands on its own (issue 11 item 9): every relative link of its markdown
 * resolves in a clone (file and, for `#anchor`, a heading of that file), and no tracked
 * file sends a reader outside the repository (`../shared/`, its `KVM-FACTS.md`,
 * `DESIGN.md` or `STYLE.md`): the facts the code cites live in `docs/kvm-facts.md`.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;

/** The tracked files (`git ls-files`), or null when this is not a git checkout. */
function trackedFiles(): string[] | null {
  try {
    const out = new Deno.Command("git", { args: ["ls-files"], cwd: ROOT, stdout: "piped" })
      .outputSync();
    if (!out.success) return null;
    return new TextDecoder().decode(out.stdout).split("\n").filter((f) => f !== "");
  } catch {
    return null;
  }
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes. */
export function anchorOf(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, "").replace(/ /g, "-");
}

/** The anchors of a markdown text's headings. */
function anchorsOf(text: string): Set<string> {
  const out = new Set<string>();
  let fenced = false;
  for (const line of text.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*)$/.exec(line);
    if (m !== null) out.add(anchorOf(m[1]!));
  }
  return out;
}

/** The relative links of a markdown text that do not resolve, as `target: why`. */
export function brokenLinks(
  path: string,
  text: string,
  read: (path: string) => string | null,
): string[] {
  const bad: string[] = [];
  const body = text.replace(/```[\s\S]*?```/g, "").replace(/`[^`\n]*`/g, "");
  for (const m of body.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = m[1]!;
    if (/^[a-z]+:/.test(target)) continue; // http:, https:, mailto:
    const [file, anchor] = target.split("#") as [string, string | undefined];
    const resolved = file === "" ? path : normalize(join(dirname(path), file));
    const content = read(resolved);
    if (content === null) {
      bad.push(`${path}: ${target}: no such file`);
      continue;
    }
    if (anchor !== undefined && resolved.endsWith(".md") && !anchorsOf(content).has(anchor)) {
      bad.push(`${path}: ${target}: no heading #${anchor}`);
    }
  }
  return bad;
}

function readOrNull(path: string): string | null {
  try {
    const info = Deno.statSync(join(ROOT, path));
    return info.isDirectory ? "" : Deno.readTextFileSync(join(ROOT, path));
  } catch {
    return null;
  }
}

Deno.test("docs: brokenLinks finds a missing file and a missing heading", () => {
  const files: Record<string, string> = {
    "docs/a.md": "# Title\n\n## Two words\n",
    "README.md": "",
  };
  const read = (p: string) => files[p] ?? null;
  const text = "[ok](docs/a.md#two-words) [x](docs/missing.md) [y](docs/a.md#nope) " +
    "[web](https://example.org) `[code](nowhere.md)`";
  assert.deepEqual(brokenLinks("README.md", text, read), [
    "README.md: docs/missing.md: no such file",
    "README.md: docs/a.md#nope: no heading #nope",
  ]);
});

const FILES = trackedFiles();
if (FILES === null) console.log("docs tests skipped: not a git checkout (git ls-files failed)");

Deno.test({
  name: "docs: every relative link in the project's markdown resolves in a clone",
  ignore: FILES === null,
}, () => {
  const files = FILES!;
  const bad: string[] = [];
  for (const f of files.filter((f) => f.endsWith(".md"))) {
    bad.push(...brokenLinks(f, Deno.readTextFileSync(join(ROOT, f)), readOrNull));
  }
  assert.deepEqual(bad, [], `broken links:\n  ${bad.join("\n  ")}`);
});

Deno.test({
  name: "docs: no tracked file points outside the repository (../shared, KVM-FACTS)",
  ignore: FILES === null,
}, () => {
  const files = FILES!;
  const outside = /\.\.\/shared\b|KVM-FACTS|\/work\/shared/;
  const bad: string[] = [];
  for (const f of files) {
    if (!/\.(ts|tsx|md|json|yml|yaml|c|S)$/.test(f) || f === "test/docs_test.ts") continue;
    const lines = Deno.readTextFileSync(join(ROOT, f)).split("\n");
    lines.forEach((line, i) => {
      if (outside.test(line)) bad.push(`${f}:${i + 1}: ${line.trim().slice(0, 100)}`);
    });
  }
  assert.deepEqual(bad, [], `references outside the repository:\n  ${bad.join("\n  ")}`);
});
