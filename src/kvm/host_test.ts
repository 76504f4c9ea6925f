/**
 * @module
 * The host record (host.ts) on fake /proc and /sys trees in a temporary directory, one
 * per kind of host, then live on this machine against `uname`, `cat` and `grep`, and
 * `deno task kvm-info` as a command. The live tests are skipped, with the reason
 * printed, without --allow-run (or where the kernel has no kvm module).
 */
import assert from "node:assert/strict";
import { kvmFactory, type KvmHost, kvmHost, readKvmHost, TDP_NOTE } from "./mod.ts";

const canWrite = Deno.permissions.querySync({ name: "write" }).state === "granted";
const canRun = Deno.permissions.querySync({ name: "run" }).state === "granted";
if (!canWrite) console.log("kvm host fake-tree tests skipped: need --allow-write for a temp dir");

/** A fake tree: paths (relative, under root) to contents; a trailing "/" makes a directory. */
function fakeTree(files: Record<string, string>): string {
  const root = Deno.makeTempDirSync({ prefix: "kvm-host-test-" });
  for (const [path, text] of Object.entries(files)) {
    const full = `${root}/${path}`;
    if (path.endsWith("/")) {
      Deno.mkdirSync(full, { recursive: true });
      continue;
    }
    Deno.mkdirSync(full.slice(0, full.lastIndexOf("/")), { recursive: true });
    Deno.writeTextFileSync(full, text);
  }
  return root;
}

function onTree(files: Record<string, string>, f: (h: KvmHost, root: string) => void): void {
  const root = fakeTree(files);
  try {
    f(readKvmHost(root), root);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
}

const CPU = (flags: string) =>
  `processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: ${flags}\nbugs\t\t: none\n\n` +
  `processor\t: 1\nflags\t\t: ${flags}\n`;

function fakeTest(name: string, fn: () => void): void {
  Deno.test({ name, ignore: !canWrite, fn });
}

fakeTest("kvm host: kvm_intel with ept=Y and tdp_mmu=Y is the TDP MMU, with the note", () => {
  onTree({
    "proc/sys/kernel/osrelease": "6.9.0-test\n",
    "proc/cpuinfo": CPU("fpu vme pae vmx ept"),
    "sys/module/kvm/parameters/tdp_mmu": "Y\n",
    "sys/module/kvm/parameters/enable_pmu": "Y\n",
    "sys/module/kvm/parameters/mmio_caching": "Y\n",
    "sys/module/kvm_intel/parameters/ept": "Y\n",
    "sys/module/kvm_intel/parameters/nested": "Y\n",
    // A module without parameters, whose name starts with kvm but is no vendor module.
    "sys/module/kvmgt/": "",
    "sys/module/vfio/parameters/enable_unsafe_noiommu_mode": "N\n",
  }, (h) => {
    assert.deepEqual(h, {
      format: "shadowfuzz.kvm-host/1",
      kernel: "6.9.0-test",
      vendorModule: "kvm_intel",
      vendor: "intel",
      modules: {
        kvm: { enable_pmu: "Y", mmio_caching: "Y", tdp_mmu: "Y" },
        kvm_intel: { ept: "Y", nested: "Y" },
        kvmgt: {},
      },
      mmu: {
        mode: "TDP MMU",
        tdp: true,
        from: { "kvm_intel.ept": "Y", "kvm.tdp_mmu": "Y" },
        why: "kvm_intel.ept=Y, kvm.tdp_mmu=Y",
      },
      nested: false,
      summary: "Linux 6.9.0-test kvm_intel, TDP MMU (ept=Y, tdp_mmu=Y), enable_pmu=Y, " +
        "mmio_caching=Y",
      note: TDP_NOTE,
      absent: [],
      unreadable: {},
    });
  });
});

fakeTest("kvm host: kvm_amd with npt=1 and tdp_mmu=N is legacy TDP; hypervisor is nested", () => {
  onTree({
    "proc/sys/kernel/osrelease": "6.1.0\n",
    "proc/cpuinfo": CPU("fpu svm npt hypervisor lahf_lm"),
    "sys/module/kvm/parameters/tdp_mmu": "N\n",
    "sys/module/kvm_amd/parameters/npt": "1\n",
  }, (h) => {
    assert.equal(h.vendor, "amd");
    assert.equal(h.mmu.mode, "legacy TDP");
    assert.equal(h.mmu.tdp, true);
    assert.equal(h.nested, true);
    assert.equal(h.note, TDP_NOTE);
    assert.equal(h.summary, "Linux 6.1.0 kvm_amd, legacy TDP (npt=1, tdp_mmu=N), nested");
  });
});

fakeTest("kvm host: without kvm.tdp_mmu (before Linux 5.10) TDP is the legacy code", () => {
  onTree({
    "proc/sys/kernel/osrelease": "5.4.0\n",
    "sys/module/kvm/parameters/halt_poll_ns": "200000\n",
    "sys/module/kvm_intel/parameters/ept": "Y\n",
  }, (h) => {
    assert.equal(h.mmu.mode, "legacy TDP");
    assert.match(h.mmu.why, /no kvm\.tdp_mmu parameter/);
    // cpuinfo is missing: nested is unknown, and said so.
    assert.equal(h.nested, null);
    assert.deepEqual(h.absent, ["/proc/cpuinfo"]);
  });
});

fakeTest("kvm host: ept=N is shadow paging whatever tdp_mmu says, and has no note", () => {
  onTree({
    "proc/sys/kernel/osrelease": "6.18.0\n",
    "proc/cpuinfo": CPU("fpu vmx"),
    "sys/module/kvm/parameters/tdp_mmu": "Y\n",
    "sys/module/kvm_intel/parameters/ept": "N\n",
  }, (h) => {
    assert.equal(h.mmu.mode, "shadow paging");
    assert.equal(h.mmu.tdp, false);
    assert.equal(h.note, undefined);
    assert.equal(h.summary, "Linux 6.18.0 kvm_intel, shadow paging (ept=N, tdp_mmu=Y)");
  });
});

fakeTest("kvm host: a vendor module without ept/npt (kvm_pvm) is shadow paging", () => {
  onTree({
    "proc/sys/kernel/osrelease": "6.18.44-fc\n",
    "proc/cpuinfo": CPU("fpu hypervisor"),
    "sys/module/kvm/parameters/tdp_mmu": "N\n",
    "sys/module/kvm/parameters/enable_pmu": "N\n",
    "sys/module/kvm/parameters/mmio_caching": "N\n",
    "sys/module/kvm_pvm/parameters/pvm_native": "Y\n",
  }, (h) => {
    assert.equal(h.vendorModule, "kvm_pvm");
    assert.equal(h.vendor, "other");
    assert.equal(h.mmu.mode, "shadow paging");
    assert.equal(
      h.summary,
      "Linux 6.18.44-fc kvm_pvm, shadow paging (tdp_mmu=N), enable_pmu=N, mmio_caching=N, nested",
    );
    assert.deepEqual(h.modules["kvm_pvm"], { pvm_native: "Y" });
  });
});

fakeTest("kvm host: an empty tree is reported as absent, never thrown", () => {
  onTree({}, (h) => {
    assert.equal(h.kernel, null);
    assert.equal(h.vendorModule, null);
    assert.equal(h.vendor, "none");
    assert.equal(h.mmu.mode, "none");
    assert.equal(h.nested, null);
    assert.deepEqual(h.modules, {});
    assert.deepEqual(h.absent, [
      "/proc/sys/kernel/osrelease",
      "/sys/module",
      "/sys/module/kvm",
      "/proc/cpuinfo",
    ]);
    assert.equal(
      h.summary,
      "Linux (release unknown) (no kvm vendor module), no MMU (KVM not loaded)",
    );
  });
});

fakeTest("kvm host: a parameter that cannot be read is listed with its errno", () => {
  onTree({
    "proc/sys/kernel/osrelease": "6.18.0\n",
    "sys/module/kvm/parameters/tdp_mmu": "N\n",
    "sys/module/kvm/parameters/odd/": "",
    "sys/module/kvm_amd/parameters/other": "0\n",
  }, (h) => {
    assert.deepEqual(h.unreadable, { "/sys/module/kvm/parameters/odd": "EISDIR" });
    assert.deepEqual(h.modules["kvm"], { tdp_mmu: "N" });
    // kvm_amd without npt: taken as off, and the missing parameter is named.
    assert.equal(h.mmu.mode, "shadow paging");
    assert.ok(h.absent.includes("/sys/module/kvm_amd/parameters/npt"), String(h.absent));
  });
});

fakeTest("kvm host: kvmHost reads once per process and root, and the record is frozen", () => {
  const root = fakeTree({
    "proc/sys/kernel/osrelease": "1.0\n",
    "sys/module/kvm/parameters/tdp_mmu": "N\n",
  });
  try {
    const a = kvmHost(root);
    Deno.writeTextFileSync(`${root}/proc/sys/kernel/osrelease`, "2.0\n");
    const b = kvmHost(root);
    assert.equal(b, a);
    assert.equal(b.kernel, "1.0");
    assert.ok(Object.isFrozen(a) && Object.isFrozen(a.modules["kvm"]));
    assert.equal(readKvmHost(root).kernel, "2.0");
    // Plain JSON: a round trip changes nothing.
    assert.deepEqual(JSON.parse(JSON.stringify(a)), a);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

// ---- live ----------------------------------------------------------------------------

const live = !canRun
  ? "needs --allow-run for uname, sh and cat"
  : kvmHost().modules["kvm"] === undefined
  ? "no kvm module on this kernel"
  : null;
if (live !== null) console.log(`kvm host live tests skipped: ${live}`);

async function sh(script: string): Promise<string> {
  const out = await new Deno.Command("sh", { args: ["-c", script], stdout: "piped" }).output();
  assert.ok(out.success, script);
  return new TextDecoder().decode(out.stdout);
}

Deno.test({
  name: "kvm host (live): the record matches uname, the sysfs files and /proc/cpuinfo",
  ignore: live !== null,
  async fn() {
    const h = kvmHost();
    assert.equal(h.kernel, (await sh("uname -r")).trim());
    const listed = await sh(
      'for f in /sys/module/kvm*/parameters/*; do printf "%s\\t%s\\n" "$f" "$(cat "$f")"; done',
    );
    const fromSh: Record<string, Record<string, string>> = {};
    for (const l of listed.trim().split("\n")) {
      const [path, value] = l.split("\t") as [string, string];
      const [, , , module, , param] = path.split("/");
      (fromSh[module!] ??= {})[param!] = value;
    }
    for (const [m, params] of Object.entries(fromSh)) assert.deepEqual(h.modules[m], params, m);
    const hyper = Number((await sh("grep -c -w hypervisor /proc/cpuinfo || true")).trim()) > 0;
    assert.equal(h.nested, hyper);
    assert.ok(h.summary.startsWith(`Linux ${h.kernel} ${h.vendorModule}, ${h.mmu.mode}`));
    assert.equal(h.note !== undefined, h.mmu.tdp);
    assert.equal(kvmFactory.host(), h);
  },
});

const INFO = new URL("./info.ts", import.meta.url).pathname;

async function info(flags: string[], args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, INFO, ...args],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

Deno.test({
  name: "kvm-info: --json prints the record, plain text its summary first; --help exits 0",
  ignore: live !== null || kvmFactory.available() !== null,
  async fn() {
    const j = await info(["--allow-ffi"], ["--json"]);
    assert.equal(j.code, 0, j.stderr);
    assert.deepEqual(JSON.parse(j.stdout), kvmHost());
    const t = await info(["--allow-ffi"], []);
    assert.equal(t.code, 0);
    assert.equal(t.stdout.split("\n")[0], kvmHost().summary);
    assert.match(t.stdout, /^\/dev\/kvm {6}usable$/m);
    assert.match(t.stdout, /^kvm parameters$/m);
    const help = await info([], ["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: deno task kvm-info/);
    const bad = await info([], ["--verbose"]);
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /^Cannot parse arguments of deno task kvm-info: unknown argument "--verbose"/,
    );
  },
});

Deno.test({
  name: "kvm-info: where /dev/kvm cannot be used it exits 4, says why, prints what it read",
  ignore: !canRun,
  async fn() {
    // Without --allow-ffi neither /dev/kvm nor /sys can be opened.
    const r = await info([], []);
    assert.equal(r.code, 4);
    assert.match(r.stderr, /^kvm-info: the kvm backend cannot run here: Deno FFI not permitted/);
    assert.match(r.stdout, /^Linux \(release unknown\) \(no kvm vendor module\)/);
    assert.match(r.stdout, /unreadable: \/proc\/sys\/kernel\/osrelease \(not permitted/);
  },
});
