/**
 * @module
 * `deno task export` (src/export/): the C reproducers of the shipped kvm findings build
 * with `cc` and reproduce (exit 1) on /dev/kvm, in the words of `replay`/`diff` and with
 * the kvm backend's outcomes op for op; an agreeing trace exits 0; an op the exporter
 * cannot emit is refused by name (at export time, or at run time for a state the export
 * did not see: exit 4); the judge's branch rule gives exit 3 and the note; the C file
 * builds the agent region byte for byte as `KvmVm` does; the selftest format has the
 * selftest library's structure (it cannot be built here without a kernel tree: it is
 * built only against the stand-in headers in test/testdata/export_selftest_stub/, which
 * are not the kernel's library); the dashboard hook serves the C file.
 *
 * Tests that need /dev/kvm or `cc` skip with the reason printed.
 */
import assert from "node:assert/strict";
import { createApp } from "../src/dashboard/app.tsx";
import { parseFindingFile } from "../src/corpus/store.ts";
import type { Finding } from "../src/corpus/types.ts";
import { diffTrace } from "../src/diff.ts";
import {
  configNeeds,
  emitC,
  exportFinding,
  type ExportPlan,
  ExportRefusal,
  exportTrace,
  planExport,
} from "../src/export/mod.ts";
import { closeIdleVms, KvmBackend, kvmConfigMismatch, kvmFactory } from "../src/kvm/mod.ts";
import { KvmVm } from "../src/kvm/vm.ts";
import { mergeConfig, pmuDefaults } from "../src/trace/config.ts";
import { parseTrace, traceFromJson } from "../src/trace/parse.ts";
import { formatOp, formatOutcome, parseOp } from "../src/trace/text.ts";
import type { Op, Trace } from "../src/trace/types.ts";
import { cmdExport, exportFindingC } from "../fuzz/commands/export.ts";
import { signatureOf } from "../fuzz/campaign/identity.ts";
import { main as cliMain } from "../fuzz/cli.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const STUB = `${ROOT}test/testdata/export_selftest_stub`;

const kvmWhy = kvmFactory.available();
const ccWhy = await (async () => {
  try {
    const r = await new Deno.Command("cc", { args: ["--version"], stdout: "null", stderr: "null" })
      .output();
    return r.success ? null : "cc --version failed";
  } catch (e) {
    return `cc not runnable: ${(e as Error).message}`;
  }
})();
const runWhy = kvmWhy ?? ccWhy;
if (kvmWhy !== null) console.log(`skip the export tests that run on /dev/kvm: ${kvmWhy}`);
if (ccWhy !== null) console.log(`skip the export tests that build C: ${ccWhy}`);

const signature = (d: Parameters<typeof signatureOf>[0], t: Trace) =>
  signatureOf(d, "kvm", t.config);

/** The shipped findings whose divergence is on the kvm backend (read, not hard-coded). */
async function kvmFindings(): Promise<Finding[]> {
  const out: Finding[] = [];
  for await (const e of Deno.readDir(`${ROOT}corpus/findings`)) {
    if (!e.isFile || !e.name.endsWith(".json")) continue;
    const f = parseFindingFile(await Deno.readTextFile(`${ROOT}corpus/findings/${e.name}`), e.name);
    if (f.divergence.backend === "kvm") out.push(f);
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

interface Built {
  exe: string;
  bytes: number;
  buildMs: number;
}

let dir: string | null = null;
async function tmp(): Promise<string> {
  dir ??= await Deno.makeTempDir({ prefix: "shadowfuzz-export-test-" });
  return dir;
}

/** Writes `text` and builds it with `cc -O2` (plus `flags`). */
async function build(text: string, name: string, flags: string[] = []): Promise<Built> {
  const d = await tmp();
  const src = `${d}/${name}.c`, exe = `${d}/${name}`;
  await Deno.writeTextFile(src, text);
  const t0 = performance.now();
  const r = await new Deno.Command("cc", {
    args: ["-O2", "-Wall", "-Wextra", "-Werror", ...flags, "-o", exe, src],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const buildMs = performance.now() - t0;
  assert.ok(r.success, `cc ${name}.c: ${new TextDecoder().decode(r.stderr)}`);
  return { exe, bytes: new TextEncoder().encode(text).length, buildMs };
}

async function run(exe: string, ...args: string[]) {
  const r = await new Deno.Command(exe, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

/** The `-v` lines of a run: op index to outcome text. */
function verboseOutcomes(stdout: string): Map<number, string> {
  const m = new Map<number, string>();
  for (const line of stdout.split("\n")) {
    const x = /^#(\d+) .* {2}-> {2}(.*)$/.exec(line);
    if (x !== null) m.set(Number(x[1]), x[2]!);
  }
  return m;
}

/** The kvm backend's outcome of every op (as `step` runs them), unsupported ones left out. */
function kvmOutcomes(trace: Trace): Map<number, string> {
  const b = new KvmBackend(trace.config, { reuse: false });
  const m = new Map<number, string>();
  try {
    trace.ops.forEach((op, i) => {
      // The export leaves fetches out (the C engine does not run them), so this does too.
      if (op.op === "access" && op.kind === "fetch") return;
      if (b.supports(op) !== null) return;
      m.set(i, formatOutcome(b.step(op)));
    });
  } finally {
    b.close();
  }
  return m;
}

const figures: string[] = [];

Deno.test({
  name: "export: the C files of the kvm findings build and reproduce (exit 1), like diff on kvm",
  ignore: runWhy !== null,
  async fn() {
    const findings = await kvmFindings();
    assert.ok(findings.length > 0, "no kvm findings in corpus/findings");
    let reproducers = 0;
    for (const f of findings) {
      for (const which of ["minimized", "full"] as const) {
        const trace = traceFromJson(which === "minimized" ? f.minimized : f.trace);
        const d = diffTrace(trace, kvmFactory).divergence;
        closeIdleVms();
        if (which === "minimized") {
          assert.ok(d !== null, `${f.id}: the minimized trace agrees on kvm`);
        }
        if (d === null) continue;
        const { text, plan } = exportFinding(f, which, {
          format: "c",
          skipUnsupported: true,
          signature,
        });
        const b = await build(text, `${f.id}-${which}`);
        const t0 = performance.now();
        const r = await run(b.exe);
        const runMs = performance.now() - t0;
        figures.push(
          `${f.id} ${which}: ${plan.ops.length} ops (${plan.skipped.length} left out), ` +
            `${b.bytes} bytes, cc -O2 ${b.buildMs.toFixed(0)} ms, run ${
              runMs.toFixed(0)
            } ms, exit ${r.code}`,
        );
        assert.equal(r.code, 1, `${f.id} ${which}: exit ${r.code}\n${r.stdout}${r.stderr}`);
        reproducers++;
        // replay's and diff's words: the op, what kvm returned, every permitted outcome.
        const lines = r.stdout.split("\n");
        assert.match(lines[0]!, new RegExp(`^reproduces \\(${which} trace\\): `));
        assert.ok(lines[0]!.includes(signatureOf(d, "kvm", trace.config)), lines[0]);
        assert.equal(lines[1], `  ${d.kind} at op ${d.index}: ${formatOp(d.op)}`);
        assert.equal(lines[2], `  kvm returned: ${formatOutcome(d.observed)}`);
        assert.equal(lines.filter((l) => l.startsWith("  permitted: ")).length, d.permitted.length);
        assert.ok(r.stdout.includes(`  title: ${f.title}`));
        if (which === "minimized") {
          assert.equal(d.index, f.divergence.opIndex, `${f.id}: the recorded op`);
        }
      }
    }
    // The two minimized traces and at least the merged finding's full trace.
    assert.ok(reproducers >= 3, `${reproducers} reproducers`);
    console.log(figures.join("\n"));
  },
});

Deno.test({
  name: "export: the C engine gets the kvm backend's outcome for every op (-v)",
  ignore: runWhy !== null,
  async fn() {
    const traces: [string, Trace][] = [
      ["stale-tlb", parseTrace(await Deno.readTextFile(`${ROOT}corpus/examples/stale-tlb.json`))],
    ];
    for (const f of await kvmFindings()) {
      traces.push([`${f.id}-min`, traceFromJson(f.minimized)]);
      traces.push([`${f.id}-full`, traceFromJson(f.trace)]);
    }
    // A trace written for the reference (slot hva 0): it runs wherever the backend's hva
    // rules let it (constraints.ts), and the export follows the same rules.
    const stale = traces[0]![1];
    const slot = stale.ops[0]!;
    assert.equal(slot.op, "slot");
    const atZero: Trace = { ...stale, ops: [{ ...slot, hva: 0n } as Op, ...stale.ops.slice(1)] };
    let refused: ExportRefusal | null = null;
    try {
      exportTrace(atZero, { label: "t", source: "t" }, { format: "c", kvm: false });
      traces.push(["stale-tlb-hva0", atZero]);
    } catch (e) {
      if (!(e instanceof ExportRefusal)) throw e;
      refused = e;
    }
    if (refused !== null) {
      const b = new KvmBackend(atZero.config, { reuse: false });
      try {
        assert.equal(b.supports(atZero.ops[0]!), refused.reason);
      } finally {
        b.close();
      }
      console.log(`stale-tlb at hva 0 is refused as the backend refuses it: ${refused.reason}`);
    }
    for (const [name, trace] of traces) {
      const { text } = exportTrace(trace, { label: name, source: name }, {
        format: "c",
        skipUnsupported: true,
      });
      const b = await build(text, `${name}-v`);
      const r = await run(b.exe, "-v");
      const c = verboseOutcomes(r.stdout);
      const k = kvmOutcomes(trace);
      assert.ok(c.size > 0, `${name}: no -v lines: ${r.stdout}${r.stderr}`);
      // The C run stops at the first divergence; up to there every outcome is kvm's.
      for (const [i, outcome] of c) assert.equal(outcome, k.get(i), `${name} op ${i}`);
      assert.equal(c.size, r.code === 0 ? k.size : c.size);
    }
  },
});

Deno.test({
  name: "export: an agreeing trace (corpus/examples/stale-tlb.json) exits 0 in diff's words",
  ignore: runWhy !== null,
  async fn() {
    const path = `${ROOT}corpus/examples/stale-tlb.json`;
    const trace = parseTrace(await Deno.readTextFile(path));
    assert.equal(diffTrace(trace, kvmFactory).divergence, null, "stale-tlb agrees on kvm");
    closeIdleVms();
    for (const kvm of [true, false]) {
      const { text, plan } = exportTrace(trace, { label: "trace stale-tlb.json", source: path }, {
        format: "c",
        kvm,
      });
      assert.equal(plan.kvmAbsent === null, kvm);
      const b = await build(text, `stale-tlb-${kvm}`);
      const r = await run(b.exe);
      figures.push(`stale-tlb (kvm at export: ${kvm}): ${b.bytes} bytes, exit ${r.code}`);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.equal(r.stdout, `agree: reference and kvm agree on all ${trace.ops.length} ops\n`);
    }
  },
});

Deno.test({
  name: "export: a guest that never exits is a crash at its op after the watchdog (alarm), exit 1",
  ignore: runWhy !== null,
  async fn() {
    // The trace's tables alias the agent's records and point the done record at a loop.
    const path = `${ROOT}src/kvm/testdata/kvm-hang-records.json`;
    const trace = parseTrace(await Deno.readTextFile(path));
    const { text } = exportTrace(trace, { label: "trace hang", source: path }, { format: "c" });
    const b = await build(text, "hang");
    for (const ms of [undefined, 1000]) {
      const t0 = performance.now();
      const r = await new Deno.Command(b.exe, {
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        env: ms === undefined ? {} : { SHADOWFUZZ_KVM_WATCHDOG_MS: String(ms) },
      }).output();
      const seconds = (performance.now() - t0) / 1000;
      const out = new TextDecoder().decode(r.stdout);
      assert.equal(r.code, 1, out);
      const bound = ms ?? 2000;
      assert.match(out, /\n {2}crash at op 6: access w 0x3040 0xffffff80000000a0\n/);
      assert.ok(
        out.includes(
          `  kvm returned: crash kvm: guest did not exit within ${bound} ms: KVM_RUN watchdog`,
        ),
        out,
      );
      figures.push(`hang (watchdog ${bound} ms): exit ${r.code} after ${seconds.toFixed(2)} s`);
    }
  },
});

Deno.test({
  name: "export: without /dev/kvm the reproducer exits 4 (a mount namespace hides it)",
  ignore: ccWhy !== null,
  async fn() {
    const trace = parseTrace(await Deno.readTextFile(`${ROOT}corpus/examples/stale-tlb.json`));
    const { text } = exportTrace(trace, { label: "t", source: "t" }, { format: "c", kvm: false });
    const b = await build(text, "nokvm");
    let r;
    try {
      r = await new Deno.Command("unshare", {
        args: ["-m", "sh", "-c", `mount -t tmpfs none /dev && exec ${b.exe}`],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (e) {
      console.log(`skip: unshare not runnable: ${(e as Error).message}`);
      return;
    }
    const stderr = new TextDecoder().decode(r.stderr);
    if (r.code !== 4 && /unshare|mount/.test(stderr)) {
      console.log(`skip: no private mount namespace here: ${stderr.trim()}`);
      return;
    }
    assert.equal(r.code, 4, stderr);
    assert.equal(stderr, "cannot run here: /dev/kvm: not present\n");
  },
});

/** A trace whose access at 0x7f80000000 walks through the root page as its own PDPT. */
const SELF_MAP = `{
  "format": "shadowfuzz.trace/1",
  "config": { "vendor": "amd", "maxPhyAddr": 48, "pmu": { "version": 0 } },
  "ops": [
    { "op": "slot", "id": 0, "gpa": "0x0", "pages": 16, "hva": "0x100000000", "flags": [] },
    { "op": "write", "gpa": "0x1000", "size": 8, "value": "0x1007" },
    { "op": "cr3", "gpa": "0x1000" },
    { "op": "access", "gva": "0x7f80000000", "kind": "read", "user": false }
  ]
}`;

Deno.test("export: an op the kvm backend cannot run is refused by index, text and reason", () => {
  const base = parseTrace(SELF_MAP);
  const trace: Trace = {
    ...base,
    ops: [...base.ops.slice(0, 3), parseOp("access x 0x2000 size=1"), parseOp("age 0x0 pages=4")],
  };
  assert.throws(
    () => exportTrace(trace, { label: "t", source: "t" }, { format: "c", kvm: false }),
    (e: unknown) => {
      assert.ok(e instanceof ExportRefusal);
      assert.equal(e.index, 3);
      assert.match(
        e.message,
        /^Cannot export op 3 \(access x 0x2000 size=1\): kvm: instruction fetches would execute trace-controlled bytes/,
      );
      assert.match(e.message, /--skip-unsupported/);
      return true;
    },
  );
  // Left out with skipUnsupported, as diff leaves them out, and named in the file.
  const { text, plan } = exportTrace(trace, { label: "t", source: "t" }, {
    format: "c",
    kvm: false,
    skipUnsupported: true,
  });
  assert.deepEqual(plan.skipped.map((s) => s.index), [3, 4]);
  assert.deepEqual(plan.ops.map((p) => p.index), [0, 1, 2]);
  assert.match(text, /op 3: access x 0x2000 size=1: kvm: instruction fetches/);
  assert.match(text, /op 4: age 0x0 pages=4: kvm: no userspace interface runs clear_young/);
});

Deno.test("export: a dirty-log clear or a manual-protect config is refused, not emitted wrong", () => {
  const base = parseTrace(SELF_MAP);
  const meta = { label: "t", source: "t" };
  const clear: Trace = {
    ...base,
    ops: [
      parseOp("slot 1 gpa=0x400000 pages=64 hva=0x300000000 log"),
      parseOp("dirtyclear 1 first=0 pages=64"),
    ],
  };
  assert.throws(
    () => exportTrace(clear, meta, { format: "c", kvm: false }),
    RangeError,
    "Cannot emit op 1 (dirtyclear 1 first=0 pages=64) as C: the C runtime has no KVM_CLEAR_DIRTY_LOG yet",
  );
  const manual: Trace = {
    ...base,
    config: { ...base.config, dirtyLog: { manualProtect: true, initiallySet: false } },
  };
  assert.throws(
    () => exportTrace(manual, meta, { format: "selftest", kvm: false }),
    RangeError,
    "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 (dirtyLog.manualProtect), which the C runtime does not",
  );
});

Deno.test("export: the CLI refuses such a trace with one line naming the op, exit 2", async () => {
  const d = await tmp();
  const path = `${d}/fetch.json`;
  await Deno.writeTextFile(
    path,
    JSON.stringify({
      format: "shadowfuzz.trace/1",
      config: { vendor: "amd" },
      ops: [{ op: "access", gva: "0x1000", kind: "fetch", user: false, size: 1 }],
    }),
  );
  const errors: string[] = [];
  const err = console.error;
  console.error = (...a: unknown[]) => errors.push(a.join(" "));
  let code: number;
  try {
    code = await cliMain(["export", path, "--no-kvm", "--out", `${d}/never.c`]);
  } finally {
    console.error = err;
  }
  assert.equal(code, 2);
  assert.equal(errors.length, 1, errors.join("\n"));
  assert.match(
    errors[0]!,
    /Cannot export op 0 \(access x 0x1000 size=1\): kvm: instruction fetches/,
  );
  await assert.rejects(() => Deno.stat(`${d}/never.c`));
});

Deno.test({
  name:
    "export: a state the export did not check (walk into the agent's entries) exits 4 at run time",
  ignore: runWhy !== null,
  async fn() {
    const trace = parseTrace(SELF_MAP);
    // With kvm at export time the backend's state check refuses op 3 up front.
    assert.throws(
      () => exportTrace(trace, { label: "t", source: "t" }, { format: "c" }),
      (e: unknown) =>
        e instanceof ExportRefusal && e.index === 3 &&
        /reaches its bytes 0xff0-0xfff/.test(e.message),
    );
    // Without it only the static checks run; the C program makes the backend's check.
    const { text } = exportTrace(trace, { label: "t", source: "t" }, { format: "c", kvm: false });
    const b = await build(text, "self-map");
    const r = await run(b.exe);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /^cannot run here: Cannot run op 3 on kvm: kvm: the walk of 0x7f80000000 uses the current root page as a lower table or frame/,
    );
  },
});

Deno.test({
  name: "export: a config this host cannot provide exits 4 (the vPMU, where enable_pmu=N)",
  ignore: runWhy !== null,
  async fn() {
    const config = mergeConfig({ vendor: "amd", pmu: { version: 1 } });
    const why = kvmConfigMismatch(config).pmu;
    if (why === undefined) {
      console.log("skip: this host provides an AMD vPMU");
      return;
    }
    const trace: Trace = {
      format: "shadowfuzz.trace/1",
      config,
      ops: [parseOp("rdpmc 0x0")],
    };
    const { text } = exportTrace(trace, { label: "t", source: "t" }, { format: "c" });
    const b = await build(text, "pmu");
    const r = await run(b.exe);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.equal(r.stderr, `cannot run here: ${why}\n`);
  },
});

Deno.test("export: a host must provide a config field only where the trace depends on it", () => {
  const selfMap = parseTrace(SELF_MAP);
  assert.equal(selfMap.config.gbPages, true);
  assert.deepEqual(configNeeds(selfMap), { gbPages: false, pmu: false });
  // A 1 GiB page (PDPTE.PS, reserved without Page1GB) and an RDPMC of GP counter 0.
  const huge: Trace = {
    ...selfMap,
    config: { ...selfMap.config, pmu: pmuDefaults("amd", 1) },
    ops: [
      selfMap.ops[0]!,
      parseOp("write 0x1000 0x2007"),
      parseOp("write 0x2000 0x87"),
      parseOp("cr3 0x1000"),
      parseOp("access r 0x1000"),
      parseOp("rdpmc 0x0"),
    ],
  };
  assert.deepEqual(configNeeds(huge), { gbPages: true, pmu: true });
  const { text } = exportTrace(huge, { label: "t", source: "t" }, { format: "c", kvm: false });
  assert.match(text, /#define SF_NEEDS_GB_PAGES 1\n#define SF_NEEDS_PMU 1\n/);
});

/** The stale-tlb plan with op 10 followed on its other permitted entry. */
async function staleTlbPlan(): Promise<{ plan: ExportPlan; at: number }> {
  const trace = parseTrace(await Deno.readTextFile(`${ROOT}corpus/examples/stale-tlb.json`));
  const plan = planExport(trace, { kvm: { absent: "test" } });
  const at = plan.ops.findIndex((p) => p.permitted.length > 1);
  assert.ok(at >= 0, "stale-tlb has an op with several permitted outcomes");
  return { plan, at };
}

Deno.test({
  name: "export: an access off the followed branch makes a later divergence inconclusive (exit 3)",
  ignore: runWhy !== null,
  async fn() {
    const { plan, at } = await staleTlbPlan();
    const p = plan.ops[at]!;
    const last = plan.ops.length - 1;
    // kvm takes the current walk here (the -v test pins kvm's outcomes): pretend the
    // export followed the stale entry, then make the last op's set one kvm misses.
    const current = p.permitted.findIndex((q) => q.why.startsWith("current walk"));
    const other = current === 0 ? 1 : 0;
    const wrongLast = {
      ...plan.ops[last]!,
      permitted: [{ outcome: { value: 0x1234n }, why: "planted" }],
    };
    const offBranch: ExportPlan = {
      ...plan,
      ops: plan.ops.map((q, i) =>
        i === at ? { ...q, followed: other, committed: q.permitted[other]!.outcome } : q
      ),
    };
    const meta = { label: "trace stale-tlb", source: "stale-tlb" };
    // Off the branch, a later divergence: inconclusive.
    const b1 = await build(
      emitC(
        { ...offBranch, ops: offBranch.ops.map((q, i) => i === last ? wrongLast : q) },
        meta,
        "c",
      ),
      "inconclusive",
    );
    const r1 = await run(b1.exe);
    assert.equal(r1.code, 3, r1.stdout + r1.stderr);
    assert.match(
      r1.stdout,
      new RegExp(`^inconclusive \\(trace stale-tlb\\): op ${p.index} took a permitted outcome`),
    );
    assert.match(r1.stdout, new RegExp(`  divergence at op ${plan.ops[last]!.index}: `));
    // Off the branch, agreement: exit 0 with the note.
    const b2 = await build(emitC(offBranch, meta, "c"), "offbranch");
    const r2 = await run(b2.exe);
    assert.equal(r2.code, 0, r2.stdout + r2.stderr);
    assert.match(
      r2.stdout,
      new RegExp(`\\n  note: op ${p.index} returned .* but the export followed`),
    );
    // On the branch, the same planted divergence reproduces.
    const b3 = await build(
      emitC({ ...plan, ops: plan.ops.map((q, i) => i === last ? wrongLast : q) }, meta, "c"),
      "onbranch",
    );
    const r3 = await run(b3.exe);
    assert.equal(r3.code, 1, r3.stdout + r3.stderr);
    assert.match(
      r3.stdout,
      /^reproduces \(trace stale-tlb\): a divergence the export did not see\n/,
    );
  },
});

Deno.test({
  name:
    "export: don't-care bits and pages match either way; other don't-care bits leave the branch",
  ignore: runWhy !== null,
  async fn() {
    const { plan } = await staleTlbPlan();
    const meta = { label: "trace planted", source: "planted" };
    // The first access reads 0x11 on kvm (the -v test pins kvm's outcomes).
    const at = plan.ops.findIndex((p) => p.op.op === "access");
    const read = plan.ops[at]!;
    assert.deepEqual(read.permitted.map((p) => p.outcome), [{ value: 0x11n }]);
    const planted = (committed: bigint): ExportPlan => ({
      ...plan,
      ops: plan.ops.map((q, i) =>
        i === at
          ? {
            ...q,
            permitted: [{ outcome: { value: 0x11n ^ 0x6n }, dontCare: 0x6n, why: "planted" }],
            committed: { value: committed },
          }
          : q
      ),
    });
    const same = await run((await build(emitC(planted(0x11n), meta, "c"), "dontcare")).exe);
    assert.equal(same.code, 0, same.stdout + same.stderr);
    assert.doesNotMatch(same.stdout, /note:/);
    // The export committed other don't-care bits than kvm returns: off its branch.
    const other = await run((await build(emitC(planted(0x17n), meta, "c"), "dontcare2")).exe);
    assert.equal(other.code, 0, other.stdout + other.stderr);
    assert.match(other.stdout, new RegExp(`note: op ${read.index} returned value 0x11`));
    // A dirty log with don't-care pages: page 3 is written, pages 5 and 3 may go either way.
    const log = parseTrace(`{
      "format": "shadowfuzz.trace/1",
      "config": { "vendor": "amd", "maxPhyAddr": 48, "pmu": { "version": 0 } },
      "ops": [
        { "op": "slot", "id": 0, "gpa": "0x0", "pages": 16, "hva": "0x100000000", "flags": ["log"] },
        { "op": "write", "gpa": "0x3000", "size": 8, "value": "0x1" },
        { "op": "dirtylog", "id": 0 }
      ]
    }`);
    const lp = planExport(log, { kvm: { absent: "test" } });
    assert.deepEqual(lp.ops[2]!.permitted[0]!.outcome, { bitmap: [[3, 3]] });
    for (
      const [bitmap, dontCarePages, code] of [
        [[[3, 3], [5, 5]], [[5, 5]], 0],
        [[], [[3, 3]], 0],
        [[[3, 3], [5, 5]], [], 1],
        [[], [], 1],
      ] as const
    ) {
      const p: ExportPlan = {
        ...lp,
        ops: lp.ops.map((q, i) =>
          i === 2
            ? { ...q, permitted: [{ outcome: { bitmap }, dontCarePages, why: "planted" }] }
            : q
        ),
      };
      const r = await run((await build(emitC(p, meta, "c"), `log-${code}`)).exe);
      assert.equal(r.code, code, `${JSON.stringify([bitmap, dontCarePages])}: ${r.stdout}`);
    }
  },
});

Deno.test({
  name: "export: the C file builds the agent region byte for byte as KvmVm does",
  ignore: runWhy !== null,
  async fn() {
    for (
      const config of [
        mergeConfig({ vendor: "amd", maxPhyAddr: 48 }),
        mergeConfig({ vendor: "intel", maxPhyAddr: 36, cr0: { wp: true }, rflags: { ac: true } }),
      ]
    ) {
      const trace: Trace = { format: "shadowfuzz.trace/1", config, ops: [] };
      const { text } = exportTrace(trace, { label: "t", source: "t" }, { format: "c", kvm: false });
      const b = await build(text, `agent-${config.vendor}`);
      const out = `${await tmp()}/agent-${config.vendor}.bin`;
      const r = await run(b.exe, "--dump-agent", out);
      assert.equal(r.code, 0, r.stderr);
      const vm = new KvmVm(config);
      try {
        const mine = await Deno.readFile(out);
        assert.equal(mine.length, vm.agentBytes.length);
        const diff = mine.findIndex((x, i) => x !== vm.agentBytes[i]);
        assert.equal(diff, -1, `first difference at offset 0x${diff.toString(16)}`);
      } finally {
        vm.close();
      }
    }
  },
});

Deno.test("export: the selftest format is a kselftest for tools/testing/selftests/kvm", async () => {
  const f = (await kvmFindings())[0]!;
  const { text } = exportFinding(f, "minimized", { format: "selftest", kvm: false, signature });
  assert.match(text, /^\/\/ SPDX-License-Identifier: GPL-2\.0-only\n/);
  assert.match(text, /#include "kvm_util\.h"\n#include "processor\.h"\n/);
  // The library's names and conventions, not raw /dev/kvm handling.
  for (
    const name of [
      "vm_create_barebones()",
      "__vm_vcpu_add(vm, 0)",
      "__vcpu_run(vcpu)",
      "vcpu_sregs_get(vcpu,",
      "vcpu_regs_get(vcpu,",
      "__vm_set_user_memory_region(vm,",
      "kvm_get_supported_cpuid()",
      "vcpu_ioctl(vcpu, KVM_SET_CPUID2,",
      "__vm_ioctl(vm, KVM_GET_DIRTY_LOG,",
      "TEST_REQUIRE(kvm_has_cap(KVM_CAP_IMMEDIATE_EXIT))",
      "TEST_ASSERT(r == SF_AGREES,",
      "ksft_exit_skip(",
      "ksft_exit_pass()",
      "kvm_vm_free(vm)",
      "#define SF_AGREES KSFT_PASS",
      "#define SF_INCONCLUSIVE KSFT_SKIP",
      "alarm(",
    ]
  ) assert.ok(text.includes(name), `selftest lacks ${name}`);
  assert.match(
    text,
    /\nint main\(int argc, char \*argv\[\]\)\n\{\n[^}]*test_shadowfuzz_trace\(\);\n\tksft_exit_pass\(\);\n\}/,
  );
  assert.doesNotMatch(text, /open\("\/dev\/kvm"/);
  assert.doesNotMatch(text, /#include <linux\/kvm\.h>/);
  // The same trace and data as the C format.
  const c = exportFinding(f, "minimized", { format: "c", kvm: false, signature }).text;
  const data = (s: string) =>
    s.slice(s.indexOf("static const struct sf_perm"), s.indexOf("/* ---- platform"));
  assert.equal(data(text), data(c));
});

Deno.test({
  name: "export: the selftest builds and runs against stand-in library headers (not the kernel's)",
  ignore: runWhy !== null,
  async fn() {
    const f = (await kvmFindings())[0]!;
    const { text } = exportFinding(f, "minimized", { format: "selftest", signature });
    const b = await build(text, "selftest", ["-I", STUB]);
    const r = await run(b.exe);
    // The stand-in's TEST_ASSERT exits 254 as the library's test_assert does.
    assert.equal(r.code, 254, r.stdout + r.stderr);
    assert.match(r.stdout, /^reproduces \(minimized trace\): /);
    const trace = parseTrace(await Deno.readTextFile(`${ROOT}corpus/examples/stale-tlb.json`));
    const ok = exportTrace(trace, { label: "t", source: "t" }, { format: "selftest" });
    const b2 = await build(ok.text, "selftest-ok", ["-I", STUB]);
    const r2 = await run(b2.exe);
    assert.equal(r2.code, 0, r2.stdout + r2.stderr);
  },
});

Deno.test("export: the dashboard's repro.c is the finding's C reproducer", async () => {
  const f = (await kvmFindings())[0]!;
  const app = createApp({ corpusDir: `${ROOT}corpus`, hosts: "loopback", exportC: exportFindingC });
  const res = await app.request(`/findings/${f.id}/repro.c`);
  assert.equal(res.status, 200, await res.clone().text());
  const text = await res.text();
  assert.ok(text.includes(`static const char SF_FINDING_ID[] = "${f.id}";`));
  assert.ok(text.includes("int main(int argc, char **argv)"));
  if (ccWhy === null) await build(text, "dashboard");
});

Deno.test("export: the CLI writes --out and says what it wrote", async () => {
  const f = (await kvmFindings())[0]!;
  const out = `${await tmp()}/cli.c`;
  const errors: string[] = [];
  const err = console.error;
  console.error = (...a: unknown[]) => errors.push(a.join(" "));
  try {
    assert.equal(await cmdExport([f.id, "--no-kvm", "--out", out, "--corpus", `${ROOT}corpus`]), 0);
    assert.equal(await cliMain(["export", f.id, "--format", "asm"]), 2);
  } finally {
    console.error = err;
  }
  assert.match(
    errors[0]!,
    new RegExp(`^${out}: c, \\d+ ops, \\d+ bytes; export-time kvm run: none`),
  );
  assert.match(errors[1]!, /--format must be c or selftest, got "asm"/);
  assert.ok((await Deno.readTextFile(out)).includes(f.signature));
});

Deno.test({
  name: "export: cleanup",
  sanitizeResources: false,
  async fn() {
    if (dir !== null) await Deno.remove(dir, { recursive: true });
    if (figures.length > 0) console.log(figures.join("\n"));
  },
});
