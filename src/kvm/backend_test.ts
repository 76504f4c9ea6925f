/**
 * @module
 * The kvm backend on the real /dev/kvm. Every test is skipped, with the reason
 * printed, when /dev/kvm or FFI is unavailable.
 */
import assert from "node:assert/strict";
import { kvmPvmConfig, mergeConfig } from "../trace/config.ts";
import { diffTrace } from "../diff.ts";
import { traceFromJson } from "../trace/parse.ts";
import { formatOutcome, parseOp } from "../trace/text.ts";
import type { Outcome } from "../trace/types.ts";
import {
  closeIdleVms,
  idleVms,
  KvmBackend,
  kvmConfigMismatch,
  KvmConstraintError,
  kvmFactory,
  kvmFactoryWith,
  kvmTraceConstraints,
} from "./mod.ts";

const why = kvmFactory.available();
if (why !== null) console.log(`kvm backend tests skipped: ${why}`);

function kvmTest(name: string, fn: () => void): void {
  Deno.test({ name, ignore: why !== null, fn });
}

/** Runs op lines on a fresh backend and returns the outcomes as text. */
function run(lines: string[], backend?: KvmBackend): string[] {
  const b = backend ?? new KvmBackend(kvmPvmConfig());
  try {
    return lines.map((l) => formatOutcome(b.step(parseOp(l))));
  } finally {
    if (backend === undefined) b.close();
  }
}

/**
 * Slot 0 (gpa 0, 64 pages) with a hierarchy at 0x1000 (PML4) -> 0x2000 -> 0x3000 ->
 * PT 0x4000; `leaves` are the PTE values for gva 0, 0x1000, ...
 */
function tables(leaves: string[]): string[] {
  return [
    "slot 0 gpa=0x0 pages=64 hva=0x100000000",
    "write 0x1000 0x2007",
    "write 0x2000 0x3007",
    "write 0x3000 0x4007",
    ...leaves.map((v, i) => `write 0x${(0x4000 + 8 * i).toString(16)} ${v}`),
    "cr3 0x1000",
  ];
}

function tail(out: string[], n: number): string[] {
  return out.slice(out.length - n);
}

kvmTest("kvm: a new VM runs the agent and reports a gpa without a slot as mmio", () => {
  assert.deepEqual(run(["read 0x5000", "write 0x6008 0x1 size=4"]), [
    "mmio 0x5000 r",
    "mmio 0x6008 w",
  ]);
});

kvmTest("kvm: a store then a load through the trace's page tables return the value", () => {
  const out = run([
    ...tables(["0x5003"]),
    "access w 0x10 0x1122334455667788",
    "access r 0x10",
    "access r 0x12 size=2",
    "read 0x5010",
  ]);
  assert.deepEqual(tail(out, 4), [
    "ok",
    "value 0x1122334455667788",
    "value 0x5566",
    "value 0x1122334455667788",
  ]);
});

kvmTest("kvm: a not-present access gives #PF code 0 with cr2 = the gva", () => {
  const out = run([...tables(["0x5003"]), "access r 0x1234", "access w 0x400000 0x1"]);
  assert.deepEqual(tail(out, 2), ["pf code=0x0 cr2=0x1234", "pf code=0x2 cr2=0x400000"]);
});

kvmTest("kvm: a user access to a supervisor page faults with code 5 (7 for a write)", () => {
  const out = run([
    ...tables(["0x5003", "0x6007"]),
    "access r 0x0 user",
    "access w 0x0 0x1 user",
    "access r 0x1000 user",
  ]);
  assert.deepEqual(tail(out, 3), ["pf code=0x5 cr2=0x0", "pf code=0x7 cr2=0x0", "value 0x0"]);
});

kvmTest("kvm: deleting a memslot turns an access to its memory into mmio", () => {
  const out = run([
    ...tables(["0x100003"]),
    "slot 1 gpa=0x100000 pages=1 hva=0x200000000",
    "access w 0x8 0x77",
    "access r 0x8",
    "slot 1 gpa=0x100000 pages=0 hva=0x200000000",
    "access r 0x8",
    "slot 1 gpa=0x100000 pages=1 hva=0x200000000",
    "access r 0x8",
  ]);
  assert.deepEqual(tail(out, 7), [
    "errno 0",
    "ok",
    "value 0x77",
    "errno 0",
    "mmio 0x100008 r",
    "errno 0",
    "value 0x77",
  ]);
});

kvmTest("kvm: the dirty log reports a written page once, then clears it", () => {
  const out = run([
    "slot 2 gpa=0x10000000 pages=8 hva=0x300000000 log",
    "dirtylog 2",
    "write 0x10003000 0x1",
    "write 0x10005008 0x1 size=1",
    "read 0x10006000",
    "dirtylog 2",
    "dirtylog 2",
  ]);
  assert.deepEqual(out, [
    "errno 0",
    "bitmap none",
    "ok",
    "ok",
    "value 0x0",
    "bitmap pages 3,5",
    "bitmap none",
  ]);
});

kvmTest("kvm: discarded host memory reads back zero, through every alias", () => {
  const out = run([
    "slot 0 gpa=0x0 pages=4 hva=0x100000000",
    "slot 1 gpa=0x800000 pages=4 hva=0x100000000",
    "write 0x2000 0xabcd",
    "read 0x802000",
    "discard 0x100002000 pages=1",
    "read 0x2000",
    "read 0x802000",
  ]);
  assert.deepEqual(out, [
    "errno 0",
    "errno 0",
    "ok",
    "value 0xabcd",
    "ok",
    "value 0x0",
    "value 0x0",
  ]);
});

kvmTest("kvm: a write to a readonly slot exits as an mmio write; reads work", () => {
  const out = run([
    "slot 0 gpa=0x0 pages=4 hva=0x100000000",
    "write 0x1000 0x99",
    "slot 1 gpa=0x400000 pages=4 hva=0x100000000 ro",
    "read 0x401000",
    "write 0x401000 0x1",
    "read 0x1000",
  ]);
  assert.deepEqual(out, [
    "errno 0",
    "ok",
    "errno 0",
    "value 0x99",
    "mmio 0x401000 w",
    "value 0x99",
  ]);
});

kvmTest("kvm: PMU MSRs #GP without a vPMU, except the K7 and P6 ones, which read 0", () => {
  const readable = [0xc0010000, 0xc0010003, 0xc0010004, 0xc0010007, 0x186, 0x187, 0xc1, 0xc2];
  const faulting = [0x188, 0xc3, 0x38f, 0x309, 0xc0010200, 0xc0000301];
  const ops = [
    ...readable.map((m) => `rdmsr 0x${m.toString(16)}`),
    ...faulting.map((m) => `rdmsr 0x${m.toString(16)}`),
    "wrmsr 0xc0010004 0x1234",
    "rdmsr 0xc0010004",
    "wrmsr 0x38f 0x1",
    "rdpmc 0x0",
    "rdpmc 0x0 user",
  ];
  assert.deepEqual(run(ops), [
    ...readable.map(() => "value 0x0"),
    ...faulting.map(() => "gp"),
    "ok",
    "value 0x0",
    "gp",
    "gp",
    "gp",
  ]);
});

kvmTest("kvm: memslot errnos come from KVM", () => {
  const out = run([
    "slot 0 gpa=0x0 pages=4 hva=0x100000000",
    "slot 1 gpa=0x2000 pages=4 hva=0x200000000",
    "slot 0 gpa=0x0 pages=4 hva=0x100000000",
    "slot 0 gpa=0x0 pages=8 hva=0x100000000",
    "slot 5 gpa=0x0 pages=0 hva=0x100000000",
    "slot 0 gpa=0x0 pages=4 hva=0x100000800",
    "dirtylog 0",
    "dirtylog 7",
    "slot 40000 gpa=0x0 pages=1 hva=0x100000000",
  ]);
  assert.deepEqual(out, [
    "errno 0",
    "errno EEXIST",
    "errno 0",
    "errno EINVAL",
    "errno EINVAL",
    "errno EINVAL",
    "errno ENOENT",
    "errno ENOENT",
    "errno EINVAL",
  ]);
});

kvmTest("kvm: the agent's PML4 entries never show in a page that is no longer the root", () => {
  const out = run([
    ...tables(["0x5003"]),
    "write 0x8000 0x2007",
    "cr3 0x8000",
    "access r 0x0",
    "read 0x1ff0",
    "read 0x1ff8",
    "cr3 0x1000",
    "read 0x8ff0",
  ]);
  assert.deepEqual(tail(out, 6), ["ok", "value 0x0", "value 0x0", "value 0x0", "ok", "value 0x0"]);
});

kvmTest("kvm: with the root outside every memslot every op runs and accesses fault P=0", () => {
  const b = new KvmBackend(kvmPvmConfig());
  try {
    assert.deepEqual(run(["access r 0x0", "access w 0x1000 0x1 user", "read 0x0"], b), [
      "pf code=0x0 cr2=0x0",
      "pf code=0x6 cr2=0x1000",
      "mmio 0x0 r",
    ]);
    assert.deepEqual(
      run([...tables(["0x5003"]), "write 0x5000 0x42", "access r 0x0"], b).slice(-2),
      [
        "ok",
        "value 0x42",
      ],
    );
    assert.deepEqual(
      run([
        "slot 0 gpa=0x0 pages=0 hva=0x100000000",
        "access r 0x0",
        "slot 0 gpa=0x40000 pages=64 hva=0x100000000",
        "access r 0x0",
        "read 0x45000",
        "cr3 0x41000",
      ], b),
      ["errno 0", "pf code=0x0 cr2=0x0", "errno 0", "pf code=0x0 cr2=0x0", "value 0x42", "ok"],
    );
    // The moved tables still hold the old absolute gpas: the PDPT at gpa 0x2000 has no
    // slot now, and KVM's walk reports that as not present; pointing the PML4 entry at
    // the moved PDPT (0x42000) is not enough either, its entry still says 0x3000.
    assert.deepEqual(run(["access r 0x0", "write 0x41000 0x42007", "access r 0x0"], b), [
      "pf code=0x0 cr2=0x0",
      "ok",
      "pf code=0x0 cr2=0x0",
    ]);
  } finally {
    b.close();
  }
});

kvmTest("kvm: ops that break the backend's constraints are refused with a reason", () => {
  const b = new KvmBackend(kvmPvmConfig());
  const c = kvmTraceConstraints(kvmPvmConfig());
  try {
    for (
      const line of [
        `slot ${c.reservedSlotIds[0]} gpa=0x0 pages=1 hva=0x100000000`,
        `slot 3 gpa=0x${c.reservedGpa.start.toString(16)} pages=1 hva=0x100000000`,
        `dirtylog ${c.reservedSlotIds[0]}`,
        // Larger than the hva window (1020 GiB): no placement keeps it contiguous.
        "slot 3 gpa=0x0 pages=268435456 hva=0x0",
        `read 0x${c.reservedGpa.start.toString(16)}`,
        "access r 0xffffff8000000000",
        "age 0x0 pages=1",
        "wrmsr 0xc0000080 0x0",
      ]
    ) {
      const op = parseOp(line);
      assert.notEqual(b.supports(op), null, line);
      assert.throws(() => b.step(op), KvmConstraintError, line);
    }
    // Slots KVM rejects by itself are passed through for KVM to judge.
    const big = "slot 3 gpa=0x0 pages=2147483648 hva=0x100000000";
    assert.equal(b.supports(parseOp(big)), null);
    assert.deepEqual(run(["slot 3 gpa=0x0 pages=1 hva=0x800000000000", big], b), [
      "errno EINVAL",
      "errno EINVAL",
    ]);
  } finally {
    b.close();
  }
});

kvmTest("kvm: a refusal names the op's index in the trace, not its place in a batch", () => {
  const b = new KvmBackend(kvmPvmConfig());
  const refused = parseOp("age 0x0 pages=1");
  const expectIndex = (f: () => unknown, i: number) =>
    assert.throws(
      f,
      (e: Error) =>
        e instanceof KvmConstraintError && e.message.startsWith(`Cannot run op ${i} on kvm: `),
      `op ${i}`,
    );
  try {
    run(["slot 0 gpa=0x0 pages=16 hva=0x100000000", "read 0x0", "write 0x8 0x1"], b);
    expectIndex(() => b.step(refused), 3);
    // A refused op counts: the runner goes on with the next op of the trace.
    assert.deepEqual(run(["read 0x8"], b), ["value 0x1"]);
    expectIndex(() => b.runBatch([parseOp("read 0x0"), parseOp("read 0x8"), refused]), 7);
    // The ops before the refused one ran.
    expectIndex(() => b.step(refused), 8);
  } finally {
    b.close();
  }
});

kvmTest("kvm: runBatch gives the same outcomes as step", () => {
  const lines = [
    ...tables(["0x5003", "0x6007", "0x0", "0x100003"]),
    "access w 0x0 0x1",
    "access r 0x1000 user",
    "access r 0x2000",
    "access r 0x3000",
    "ctl wp=0",
    "access w 0x1000 0x2",
    "read 0x6000",
    "invlpg 0x0",
    "rdmsr 0x186",
    "access r 0x8000000000000000",
  ];
  const stepped = run(lines);
  const b = new KvmBackend(kvmPvmConfig());
  let batched: Outcome[];
  try {
    batched = b.runBatch(lines.map(parseOp));
  } finally {
    b.close();
  }
  assert.deepEqual(batched.map(formatOutcome), stepped);
  assert.deepEqual(stepped.slice(-10), [
    "ok",
    "value 0x0",
    "pf code=0x0 cr2=0x2000",
    "mmio 0x100000 r",
    "ok",
    "ok",
    "value 0x2",
    "ok",
    "value 0x0",
    "gp",
  ]);
});

kvmTest("kvm: ctl changes WP, SMAP and AC as the guest sees them", () => {
  const config = mergeConfig({ ...kvmPvmConfig(), features: { smep: true, smap: true } });
  const b = new KvmBackend(config);
  try {
    const out = run([
      ...tables(["0x5005", "0x6007"]),
      "access w 0x0 0x1",
      "ctl wp=0",
      "access w 0x0 0x2",
      "ctl wp=1",
      "access r 0x1000",
      "ctl smap=1",
      "access r 0x1000",
      "ctl ac=1",
      "access r 0x1000",
      "ctl ac=0",
      "access r 0x1000",
      "read 0x5000",
    ], b);
    assert.deepEqual(tail(out, 12), [
      "pf code=0x3 cr2=0x0",
      "ok",
      "ok",
      "ok",
      "value 0x0",
      "ok",
      "pf code=0x1 cr2=0x1000",
      "ok",
      "value 0x0",
      "ok",
      "pf code=0x1 cr2=0x1000",
      "value 0x2",
    ]);
  } finally {
    b.close();
  }
});

kvmTest("kvm: MOV CR3 with bits at or above MAXPHYADDR #GPs and keeps the old root", () => {
  const out = run([
    ...tables(["0x5003"]),
    "write 0x5000 0x33",
    "cr3 0x1000000001000",
    "access r 0x0",
  ]);
  assert.deepEqual(tail(out, 3), ["ok", "gp", "value 0x33"]);
});

kvmTest("kvm: KVM_SET_PMU_EVENT_FILTER errnos come from KVM", () => {
  const b = new KvmBackend(kvmPvmConfig());
  const filter = (action: number, flags: number, events: bigint[]) =>
    formatOutcome(b.step({ op: "filter", action, flags, fixed: 0, events }));
  try {
    assert.deepEqual(
      [
        filter(0, 0, [0x3cn]),
        filter(1, 0, []),
        filter(2, 0, [0x3cn]),
        filter(0, 2, [0x3cn]),
        filter(0, 0, new Array<bigint>(301).fill(0x3cn)),
        filter(0, 1, [0xffff_ffff_ffff_ffffn]),
      ],
      ["errno 0", "errno 0", "errno EINVAL", "errno EINVAL", "errno E2BIG", "errno EINVAL"],
    );
  } finally {
    b.close();
  }
});

kvmTest("kvm: two VMs in one process never share trace memory at the same hva", () => {
  const a = new KvmBackend(kvmPvmConfig());
  const b = new KvmBackend(kvmPvmConfig());
  try {
    const slot = "slot 0 gpa=0x0 pages=1 hva=0x100000000";
    assert.deepEqual(run([slot, "write 0x0 0x5a"], a), ["errno 0", "ok"]);
    assert.deepEqual(run([slot, "read 0x0"], b), ["errno 0", "value 0x0"]);
    assert.deepEqual(run(["read 0x0"], a), ["value 0x5a"]);
  } finally {
    a.close();
    b.close();
  }
});

kvmTest("kvm: this KVM can provide everything the kvm_pvm config asks for", () => {
  assert.deepEqual(kvmConfigMismatch(kvmPvmConfig()), {});
});

kvmTest(
  "kvm: a closed backend hands its VM back, reset, unless the reset cannot restore it",
  () => {
    closeIdleVms();
    const config = kvmPvmConfig();
    const trace = (lines: string[]) => {
      const b = new KvmBackend(config, { reuse: true });
      const out = run(lines, b);
      b.close();
      return { out, reused: b.reusedVm, noReuse: b.noReuse };
    };
    try {
      const first = trace([...tables(["0x5003"]), "access w 0x0 0x1", "wrmsr 0x174 0x8"]);
      assert.deepEqual([first.reused, first.noReuse, idleVms()], [false, null, 1]);
      // The next backend takes that VM and finds it as new: memory zero, MSR as before.
      const second = trace(["rdmsr 0x174", "read 0x5000", "read 0x1000"]);
      assert.deepEqual(second.out, ["value 0x0", "mmio 0x5000 r", "mmio 0x1000 r"]);
      assert.equal(second.reused, true);
      // A PMU event filter is replaced by one that filters nothing (left as it is where KVM
      // has no vPMU: it is inert then): the VM is kept.
      const filtered = trace(["filter deny 0xc0"]);
      assert.deepEqual(
        [filtered.out, filtered.reused, filtered.noReuse, idleVms()],
        [["errno 0"], true, null, 1],
      );
      // A write to an MSR KVM does not emulate here #GPs and leaves nothing behind.
      const gp = trace(["wrmsr 0xc0010200 0x1"]);
      assert.deepEqual([gp.out, gp.noReuse, idleVms()], [["gp"], null, 1]);
      // IA32_PRED_CMD (0x49) is write-only (SDM vol. 4): a write that succeeds cannot be
      // undone, so that VM is closed.
      const pred = trace(["wrmsr 0x49 0x1"]);
      assert.equal(
        pred.noReuse,
        pred.out[0] === "ok"
          ? "the trace wrote MSR 0x49, which KVM_GET_MSRS cannot read back"
          : null,
      );
      if (pred.out[0] === "ok") assert.equal(idleVms(), 0);
      // A trace whose tables alias the agent's own root page (gva 0x2000 -> the agent's
      // gpa + 0x48000) and write into it: that memslot is read-only to the guest, so the
      // write is an MMIO exit, the agent stays as built and the VM is kept.
      const root = (0xff0000000n + 0x48000n) | 0x3n;
      const aliased = trace([
        ...tables(["0x5003", "0x6003", `0x${root.toString(16)}`]),
        "access w 0x2100 0x1234",
        // PML4 entry 511 of the agent's root, as built.
        "access r 0x2ff8",
      ]);
      assert.deepEqual(aliased.out.slice(-2), [
        "mmio 0xff0048100 w",
        `value 0x${(0xff0049000n | 0x27n).toString(16)}`,
      ]);
      assert.deepEqual([aliased.noReuse, idleVms()], [null, 1]);
      assert.deepEqual(trace([...tables(["0x5003"]), "access r 0x0"]).out.at(-1), "value 0x0");
      // Fresh mode never pools (nor takes the idle VM).
      const b = new KvmBackend(config, { reuse: false });
      b.close();
      assert.deepEqual([b.reusedVm, b.noReuse, idleVms()], [false, "fresh-VM mode", 1]);
    } finally {
      closeIdleVms();
    }
  },
);

kvmTest("kvm: kvmFactoryWith passes its options to every backend it makes", () => {
  const fresh = kvmFactoryWith({ reuse: false, watchdogMs: 1234 }).create(kvmPvmConfig());
  fresh.close();
  assert.deepEqual([fresh.noReuse, fresh.watchdogMs], ["fresh-VM mode", 1234]);
  assert.equal(kvmFactoryWith({}).host(), kvmFactory.host());
});

// ---- fetches (README.md "Fetches") ---------------------------------------------------

/**
 * Slot 0 (gpa 0, 64 pages, at hva 0) with A set at every level above the PTs, PT 0x4000;
 * `leaves` are the PTE values for gva 0, 0x1000, ...; a ret at the first byte of frames
 * 0x5000-0x7000.
 */
function fetchTables(leaves: string[]): string[] {
  return [
    "slot 0 gpa=0x0 pages=64 hva=0x0",
    "write 0x1000 0x2027",
    "write 0x2000 0x3027",
    "write 0x3000 0x4027",
    ...leaves.map((v, i) => `write 0x${(0x4000 + 8 * i).toString(16)} ${v}`),
    "write 0x5000 0xc3 size=1",
    "write 0x6000 0xc3 size=1",
    "write 0x7000 0xc3 size=1",
    "cr3 0x1000",
  ];
}

kvmTest("kvm: a fetch runs the ret it read; NX, SMEP and U faults carry I/D (SDM 4.6, 4.7)", () => {
  const lines = [
    // gva 0: user page, frame 0x5000; 0x1000: NX user page; 0x2000: supervisor page;
    // 0x3000: not present; 0x4000: reserved bit 51 (MAXPHYADDR 46).
    ...fetchTables([
      "0x5027",
      "0x8000000000006027",
      "0x7023",
      "0x0",
      "0x8000000000005027",
    ]),
    "access x 0x0",
    "access x 0x0 user",
    "access x 0x1000",
    "access x 0x1000 user",
    "access x 0x2000",
    "access x 0x2000 user",
    "access x 0x3000",
    "access x 0x3000 user",
    "ctl smep=1",
    "access x 0x0",
    "access x 0x0 user",
    "access x 0x2000",
    "ctl nx=0",
    "access x 0x1000",
    "ctl smep=0",
    "access x 0x3000",
  ];
  const out = run(lines);
  assert.deepEqual(tail(out, 16), [
    "value 0xc3",
    "value 0xc3",
    "pf code=0x11 cr2=0x1000",
    "pf code=0x15 cr2=0x1000",
    "value 0xc3",
    "pf code=0x15 cr2=0x2000",
    "pf code=0x10 cr2=0x3000",
    "pf code=0x14 cr2=0x3000",
    "ok",
    "pf code=0x11 cr2=0x0",
    "value 0xc3",
    "value 0xc3",
    "ok",
    // NX without EFER.NXE is a reserved bit; SMEP still sets I/D.
    "pf code=0x19 cr2=0x1000",
    "ok",
    // Neither NXE nor SMEP: no I/D.
    "pf code=0x0 cr2=0x3000",
  ]);
});

kvmTest("kvm: a fetch's value is the bytes its check load read, of the fetch's size", () => {
  const out = run([
    ...fetchTables(["0x5027"]),
    "write 0x5010 0x1122334455c3 size=8",
    "access x 0x10",
    "access x 0x10 size=2",
    "access x 0x10 size=4 user",
  ]);
  assert.deepEqual(tail(out, 3), ["value 0x1122334455c3", "value 0x55c3", "value 0x334455c3"]);
});

kvmTest("kvm: a fetch is refused unless the gva leads to a ret it may check", () => {
  const b = new KvmBackend(kvmPvmConfig());
  try {
    run([
      ...fetchTables(["0x5027", "0x6007", "0x30000027", "0x8000000000005007"]),
      "write 0x5008 0x90 size=1",
    ], b);
    const why = (line: string) => b.supports(parseOp(line));
    assert.match(why("access x 0x8")!, /byte at gpa 0x5008 is 0x90, not ret \(0xc3\)/);
    assert.match(why("access x 0x2000")!, /frame 0x30000000 has no memslot \(MMIO\)/);
    // The check load would set the A bit of PTE 0x4008 (or 0x4018), which these faulting
    // fetches (SMEP for 0x1000, NX for 0x3000) must leave clear.
    run(["ctl smep=1"], b);
    assert.match(why("access x 0x1000")!, /set the A bit of the entry at gpa 0x4008/);
    assert.match(why("access x 0x3000 user")!, /set the A bit of the entry at gpa 0x4018/);
    // A fetch that succeeds sets the same A bits as its check: it runs.
    assert.equal(why("access x 0x1000 user"), null);
    assert.throws(() => b.step(parseOp("access x 0x8")), KvmConstraintError);
    // Nothing ran: the PTE of 0x1000 is as written until the user fetch sets its A bit.
    assert.deepEqual(run(["read 0x4008", "access x 0x1000 user", "read 0x4008"], b), [
      "value 0x6007",
      "value 0xc3",
      "value 0x6027",
    ]);
  } finally {
    b.close();
  }
});

kvmTest("kvm: a fetch at the low byte of its own walk's entry is refused (the walk sets A)", () => {
  // PTE 0x4000 maps gva 0 onto its own page table with A clear: the host sees the low
  // byte 0xc3 (P|W|D|PAT), but the check load's walk would set A first and read 0xe3.
  const b = new KvmBackend(kvmPvmConfig());
  try {
    run(fetchTables(["0x40c3"]), b);
    assert.match(
      b.supports(parseOp("access x 0x0"))!,
      /low byte of the walk's own entry at gpa 0x4000, whose A bit the walk sets/,
    );
  } finally {
    b.close();
  }
});

kvmTest("kvm: the agent's own check refuses what is no ret once it ran, executing nothing", () => {
  // Without the host's refusals the agent alone decides: it runs only a ret it read.
  const lines = [
    // gva 0: its own PT (low byte 0xc3 until the walk sets A); 0x1000: frame 0x5000,
    // holding hlt (0xf4), which would stop the vCPU (KVM_EXIT_HLT, a dead VM) had it
    // run; 0x2000: a frame without a memslot; 0x3000: frame 0x6000 with a ret.
    ...fetchTables(["0x40c3", "0x5027", "0x30000027", "0x6027"]),
    "write 0x5000 0xf4 size=1",
    "access x 0x0",
    "access x 0x1000",
    "access x 0x1000 user",
    "access x 0x2000",
    "access x 0x3000",
    "read 0x4000",
    "read 0x5000",
  ];
  const b = new KvmBackend(kvmPvmConfig(), { hostFetchCheck: false });
  try {
    const res = b.stepMany(lines.map(parseOp)).slice(-7);
    const text = res.map((r) => "skip" in r ? `skip ${r.skip}` : formatOutcome(r));
    assert.match(
      text[0]!,
      /^skip .*check load read 0x40e3 .*not ret \(0xc3\).*nothing was executed/,
    );
    assert.match(text[1]!, /^skip .*check load read 0xf4 /);
    assert.match(text[2]!, /^skip .*check load read 0xf4 /);
    assert.match(text[3]!, /^skip .*check load reached MMIO at gpa 0x30000000/);
    // The VM lives on: the ret runs, and nothing else changed memory.
    assert.deepEqual(text.slice(4), ["value 0xc3", "value 0x40e3", "value 0xf4"]);
    assert.equal(b.dead, null);
  } finally {
    b.close();
  }
  const c = new KvmBackend(kvmPvmConfig(), { hostFetchCheck: false });
  try {
    run([...fetchTables(["0x5027"]), "write 0x5000 0xf4 size=1"], c);
    assert.equal(c.supports(parseOp("access x 0x0")), null);
    assert.throws(
      () => c.step(parseOp("access x 0x0")),
      (e: Error) => e instanceof KvmConstraintError && /check load read 0xf4/.test(e.message),
    );
  } finally {
    c.close();
  }
});

// ---- trace hvas anywhere (README.md "Host memory") ---------------------------------

kvmTest("kvm: slots at any hva run, aliasing and discards follow the trace's hvas", () => {
  const out = run([
    "slot 0 gpa=0x0 pages=4 hva=0x0",
    "slot 1 gpa=0x800000 pages=4 hva=0x0",
    "slot 2 gpa=0x1000000 pages=1 hva=0x7ff000000000",
    "slot 3 gpa=0x2000000 pages=1 hva=0x100000000",
    "write 0x2000 0xabcd",
    "read 0x802000",
    "write 0x1000000 0x77",
    "write 0x2000000 0x88",
    "read 0x0",
    "discard 0x2000 pages=1",
    "read 0x2000",
    "read 0x802000",
    "read 0x1000000",
    "discard 0x7ff000000000 pages=1",
    "read 0x1000000",
    "read 0x2000000",
  ]);
  assert.deepEqual(out, [
    "errno 0",
    "errno 0",
    "errno 0",
    "errno 0",
    "ok",
    "value 0xabcd",
    "ok",
    "ok",
    "value 0x0",
    "ok",
    "value 0x0",
    "value 0x0",
    "value 0x77",
    "ok",
    "value 0x0",
    "value 0x88",
  ]);
});

kvmTest("kvm: the stale-TLB example with its slot at hva 0 agrees with the reference", async () => {
  const text = await Deno.readTextFile(
    new URL("../../corpus/examples/stale-tlb.json", import.meta.url),
  );
  const json = JSON.parse(text);
  json.ops[0].hva = "0x0";
  json.config = { ...kvmPvmConfig(), maxPhyAddr: kvmPvmConfig().maxPhyAddr };
  const trace = traceFromJson(json);
  for (const factory of [kvmFactory, kvmFactoryWith({ reuse: false })]) {
    const r = diffTrace(trace, factory);
    assert.deepEqual([r.divergence, r.skipped, r.ops], [null, 0, trace.ops.length]);
  }
});

// ---- stepMany ------------------------------------------------------------------------

kvmTest("kvm: stepMany gives step's outcomes, and skips where supports refuses", () => {
  const lines = [
    ...fetchTables(["0x5027", "0x6007", "0x0", "0x100003"]),
    "access w 0x0 0x1",
    "access x 0x0",
    "access r 0x1000 user",
    "age 0x0 pages=1",
    "write 0x4010 0x7027",
    "access r 0x2000",
    "access x 0x8",
    "slot 5 gpa=0x100000 pages=1 hva=0x0",
    "read 0x100000",
    "access r 0x3000",
    "ctl wp=0",
    "access w 0x1000 0x2",
    "read 0x6000",
    "invlpg 0x0",
    "rdmsr 0x186",
    "access r 0x8000000000000000",
  ];
  const ops = lines.map(parseOp);
  const stepped: string[] = [];
  const a = new KvmBackend(kvmPvmConfig());
  try {
    for (const op of ops) {
      const why = a.supports(op);
      stepped.push(why === null ? formatOutcome(a.step(op)) : `skip ${why}`);
    }
  } finally {
    a.close();
  }
  const b = new KvmBackend(kvmPvmConfig());
  let many: string[];
  try {
    many = b.stepMany(ops).map((r) => "skip" in r ? `skip ${r.skip}` : formatOutcome(r));
  } finally {
    b.close();
  }
  assert.deepEqual(many, stepped);
  assert.deepEqual(
    stepped.slice(-16).map((s) => s.replace(/^skip kvm: (\w+).*/, "skip $1")),
    [
      "ok",
      // The store replaced the ret at gva 0.
      "skip fetch",
      "value 0xc3",
      "skip no",
      "ok",
      "value 0xc3",
      "skip fetch",
      "errno 0",
      // Slot 5 aliases slot 0's hva 0: gpa 0x100000 is gpa 0.
      "value 0x0",
      "value 0x0",
      "ok",
      "ok",
      "value 0x2",
      "ok",
      "value 0x0",
      "gp",
    ],
  );
});
