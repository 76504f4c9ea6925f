/**
 * @module
 * The KVM_RUN watchdog (issue 13 item 3): a guest that never exits becomes a `crash`
 * outcome within the watchdog's time, the VM is torn down, and the next backend in the
 * same thread runs normally. The guests run in a child process
 * (`testdata/watchdog_child.ts`) so that a backend without a watchdog fails this test on
 * its timeout instead of hanging the suite. Skipped, with the reason printed, where
 * /dev/kvm is unusable or subprocesses are not permitted.
 */
import assert from "node:assert/strict";
import { KVM_WATCHDOG_MS, KvmBackend, kvmFactory } from "./mod.ts";
import { kvmPvmConfig } from "../trace/config.ts";

const CHILD = new URL("./testdata/watchdog_child.ts", import.meta.url).pathname;
/** The child needs about 5 s (twice 2 s of watchdog, 0.5 s of the MMIO loop, startup). */
const CHILD_TIMEOUT_MS = 30_000;

const why = kvmFactory.available() ??
  (Deno.permissions.querySync({ name: "run" }).state === "granted"
    ? null
    : "needs --allow-run for its child process");
if (why !== null) console.log(`kvm watchdog tests skipped: ${why}`);

interface Scenario {
  scenario: string;
  outs: string[];
  ms?: number[] | number;
  maxMs?: number;
  watchdogMs?: number;
  dead?: string | null;
}

let child: Promise<Scenario[]> | null = null;

/** Runs the child once for every test here; rejects when it outlives its timeout. */
function runChild(): Promise<Scenario[]> {
  child ??= (async () => {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), CHILD_TIMEOUT_MS);
    try {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-read", "--allow-ffi", CHILD],
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
        signal: ac.signal,
      }).output();
      if (ac.signal.aborted) {
        throw new Error(
          `The kvm guest did not come back within ${CHILD_TIMEOUT_MS} ms: no KVM_RUN watchdog`,
        );
      }
      const text = new TextDecoder().decode(out.stdout);
      assert.ok(out.success, `child failed: ${new TextDecoder().decode(out.stderr)}`);
      return text.trim().split("\n").map((l) => JSON.parse(l) as Scenario);
    } finally {
      clearTimeout(timer);
    }
  })();
  return child;
}

async function scenario(name: string): Promise<Scenario> {
  const s = (await runChild()).find((x) => x.scenario === name);
  assert.ok(s !== undefined, `the child printed no scenario ${name}`);
  return s;
}

function kvmTest(name: string, fn: () => void | Promise<void>): void {
  Deno.test({ name, ignore: why !== null, fn });
}

const HEALTHY_OUTS = [
  "errno 0",
  "ok",
  "ok",
  "ok",
  "ok",
  "ok",
  "ok",
  "value 0x1122334455667788",
  "mmio 0x123456789 r",
];

kvmTest(
  "kvm watchdog: the hang repro's looping op is a crash after 2 s, later ops too",
  async () => {
    const s = await scenario("repro");
    assert.equal(s.watchdogMs, KVM_WATCHDOG_MS);
    const message = `guest did not exit within ${KVM_WATCHDOG_MS} ms: KVM_RUN watchdog`;
    assert.deepEqual(s.outs, [
      "errno 0",
      "ok",
      "ok",
      "ok",
      "ok",
      "ok",
      `crash kvm: ${message}`,
      `crash kvm: the VM is dead: ${message}`,
    ]);
    const ms = s.ms as number[];
    // Times are printed, not asserted (a loaded machine stretches them): the outcomes
    // above say which bound fired.
    console.log(`watchdog: op 6 took ${ms[6]} ms, op 7 on the dead VM ${ms[7]} ms`);
    assert.equal(s.dead, message);
  },
);

kvmTest("kvm watchdog: a fresh backend in the same thread runs normally afterwards", async () => {
  for (const name of ["after repro", "after mmio loop"]) {
    const s = await scenario(name);
    assert.deepEqual(s.outs, HEALTHY_OUTS, name);
    // A watchdog signal left pending would cut a KVM_RUN short (a crash outcome above).
    console.log(`watchdog: ${name}: slowest op ${s.maxMs} ms`);
  }
});

kvmTest("kvm watchdog: a batch looping through MMIO exits is cut off as a whole", async () => {
  const s = await scenario("mmio loop");
  assert.equal(s.watchdogMs, 500);
  const message = "guest did not exit within 500 ms: KVM_RUN watchdog";
  // The crash lands on the op whose record the guest was in when the timer went off.
  const at = s.outs.findIndex((o) => o.startsWith("crash"));
  assert.ok(at >= 0, `no crash: ${s.outs}`);
  assert.deepEqual(s.outs.slice(0, at), ["ok"].slice(0, at));
  assert.equal(s.outs[at], `crash kvm: ${message}`);
  for (const o of s.outs.slice(at + 1)) assert.equal(o, `crash kvm: the VM is dead: ${message}`);
  const ms = s.ms as number;
  console.log(`watchdog: the MMIO-looping batch took ${ms} ms`);
});

kvmTest("kvm watchdog: it cuts off a guest on a worker thread too", async () => {
  const s = await scenario("worker") as Scenario & { after: string };
  assert.equal(
    s.outs[6],
    `crash kvm: guest did not exit within ${KVM_WATCHDOG_MS} ms: KVM_RUN watchdog`,
  );
  console.log(`watchdog: the trace on a worker took ${s.ms} ms`);
  assert.equal(s.after, "errno 0");
});

Deno.test("kvm watchdog: a bad watchdogMs option is refused with a clear error", () => {
  for (const bad of [0, -1, 1.5, 3_600_001, NaN]) {
    assert.throws(
      () => new KvmBackend(kvmPvmConfig(), { watchdogMs: bad }),
      (e: Error) =>
        e instanceof RangeError &&
        e.message === "Cannot use the kvm watchdogMs option: expected whole milliseconds " +
            `from 1 to 3600000, got ${bad}`,
    );
  }
});

kvmTest("kvm watchdog: SHADOWFUZZ_KVM_WATCHDOG_MS sets the default, the option wins", () => {
  const env = Deno.permissions.querySync({ name: "env" }).state === "granted";
  if (!env) {
    console.log("kvm watchdog env test: needs --allow-env, checked the option only");
  }
  const old = env ? Deno.env.get("SHADOWFUZZ_KVM_WATCHDOG_MS") : undefined;
  try {
    if (env) {
      Deno.env.set("SHADOWFUZZ_KVM_WATCHDOG_MS", "750");
      const b = new KvmBackend(kvmPvmConfig());
      assert.equal(b.watchdogMs, 750);
      b.close();
      Deno.env.set("SHADOWFUZZ_KVM_WATCHDOG_MS", "2s");
      assert.throws(
        () => new KvmBackend(kvmPvmConfig()),
        /^RangeError: Cannot use SHADOWFUZZ_KVM_WATCHDOG_MS: expected whole milliseconds from 1 to 3600000, got "2s"$/,
      );
    }
    const b = new KvmBackend(kvmPvmConfig(), { watchdogMs: 1234 });
    assert.equal(b.watchdogMs, 1234);
    b.close();
  } finally {
    if (env) {
      if (old === undefined) Deno.env.delete("SHADOWFUZZ_KVM_WATCHDOG_MS");
      else Deno.env.set("SHADOWFUZZ_KVM_WATCHDOG_MS", old);
    }
  }
});
