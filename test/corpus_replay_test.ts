/**
 * Replays every trace checked into `corpus/` against every backend available here:
 * examples and regressions must agree with the reference on each backend; every
 * finding file must parse, and a finding marked `fixed` must no longer reproduce.
 * A backend that cannot run here is skipped with its reason printed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { resolveBackendFlag } from "../fuzz/commands/backend_ref.ts";
import { type BackendFactory, JUDGED_BACKEND_NAMES } from "../src/backend.ts";
import { identifyTrace } from "../fuzz/campaign/identity.ts";
import { listFindings } from "../src/corpus/store.ts";
import { diffTrace } from "../src/diff.ts";
import { kvmConfigMismatch } from "../src/kvm/mod.ts";
import { ReferenceBackend } from "../src/reference/mod.ts";
import { parseTrace, traceFromJson } from "../src/trace/parse.ts";
import { formatOp } from "../src/trace/text.ts";
import type { Trace } from "../src/trace/types.ts";

const CORPUS = new URL("../corpus/", import.meta.url).pathname;

async function traces(sub: string): Promise<{ file: string; trace: Trace }[]> {
  const out: { file: string; trace: Trace }[] = [];
  try {
    for await (const e of Deno.readDir(join(CORPUS, sub))) {
      if (!e.isFile || !e.name.endsWith(".json")) continue;
      const file = `${sub}/${e.name}`;
      out.push({ file, trace: parseTrace(await Deno.readTextFile(join(CORPUS, file))) });
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return out.sort((a, b) => a.file.localeCompare(b.file));
}

function backends(): { name: string; factory: BackendFactory }[] {
  const out: { name: string; factory: BackendFactory }[] = [];
  for (const name of JUDGED_BACKEND_NAMES) {
    try {
      out.push({ name, factory: resolveBackendFlag(name, [name]).factory });
    } catch (e) {
      console.log(`corpus replay: skipping backend ${name}: ${(e as Error).message}`);
    }
  }
  return out;
}

Deno.test("corpus: every example and regression trace agrees on every backend", async () => {
  const all = [...await traces("examples"), ...await traces("regressions")];
  assert.ok(all.length > 0, "corpus/ holds no traces");
  for (const { trace } of all) {
    // The reference itself runs it to the end.
    const ref = new ReferenceBackend(trace.config);
    for (const op of trace.ops) ref.step(op);
  }
  for (const { name, factory } of backends()) {
    for (const { file, trace } of all) {
      const cannot = name === "kvm" ? Object.values(kvmConfigMismatch(trace.config))[0] : undefined;
      if (cannot !== undefined) {
        console.log(`corpus replay: ${file} skipped on kvm: ${cannot}`);
        continue;
      }
      const d = diffTrace(trace, factory).divergence;
      assert.equal(
        d,
        null,
        d === null ? "" : `${file} on ${name}: ${d.kind} at op ${d.index} (${formatOp(d.op)})`,
      );
    }
  }
});

Deno.test("corpus: every finding parses; a fixed one no longer reproduces, the rest still do", async () => {
  const { findings, errors } = await listFindings(CORPUS);
  assert.deepEqual(errors, [], "corrupt finding files");
  const available = new Map(backends().map((b) => [b.name, b.factory]));
  let checked = 0;
  for (const f of findings) {
    const minimized = traceFromJson(f.minimized);
    traceFromJson(f.trace);
    if (f.status === "invalid" || f.status === "wontfix") continue;
    const factory = available.get(f.divergence.backend);
    if (factory === undefined) {
      console.log(
        `corpus replay: finding ${f.id} (${f.status}) not re-checked: backend ` +
          `${f.divergence.backend} is not available here`,
      );
      continue;
    }
    const options = {
      inject: f.inject === undefined ? [] : [f.inject],
      audit: f.kind === "invariant",
    };
    const d = diffTrace(minimized, factory, options).divergence;
    checked++;
    if (f.status === "fixed") {
      assert.equal(d, null, `finding ${f.id} is marked fixed but still reproduces`);
    } else {
      assert.notEqual(d, null, `finding ${f.id} (${f.status}) no longer reproduces: mark it fixed`);
      const id = identifyTrace(minimized, d!, factory, options);
      assert.equal(id.signature, f.signature, `finding ${f.id}`);
    }
  }
  assert.ok(checked > 0, "no finding was re-checked");
});
