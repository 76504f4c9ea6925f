/**
 * @module
 * The kvm backend: runs trace ops on the real Linux KVM. Guest ops become agent
 * commands and run in batches inside one KVM_RUN; host ops (memslots, dirty log,
 * discard, PMU filter) run between batches. README.md explains how the agent reaches
 * its own code through the trace's page tables and what a trace must leave alone.
 */
import type { Backend, StepResult } from "../backend.ts";
import type { Config, CtlOp, Errno, Op, Outcome } from "../trace/types.ts";
import { PAGE_SIZE, PTE_ADDR_MASK } from "../x86/paging.ts";
import { isKvmPvm, KvmConstraintError, plausibleSlot, staticViolation } from "./constraints.ts";
import * as L from "./layout.ts";
import { ctlWords, sizeIndex } from "./layout.ts";
import { ERRNO_NAMES, KVM_MEM_LOG_DIRTY_PAGES, KVM_MEM_READONLY } from "./uapi.ts";
import { kvmConfigMismatch, kvmHasVpmu } from "./capabilities.ts";
import { HvaMap } from "./hva.ts";
import { giveVm, takeVm } from "./pool.ts";
import { KvmVm } from "./vm.ts";

interface Slot {
  gpa: bigint;
  pages: number;
  /** The host address KVM got (inside this VM's hva window, or the trace hva). */
  host: bigint;
}

/** The `op` of a command that settles the VM before a traced op (trail mode). */
const SETTLE = -2;

/** The op kinds that run as agent commands (the rest are the host's ioctls). */
const GUEST_OPS: ReadonlySet<string> = new Set([
  "write",
  "read",
  "access",
  "invlpg",
  "cr3",
  "ctl",
  "wrmsr",
  "rdmsr",
  "rdpmc",
]);

/**
 * One agent command and the trace op it stands for (-1: an internal CR3 switch; -2:
 * a settling load of the agent's own pages).
 */
interface Command {
  op: number;
  /** Routine index (layout.ts K_*). */
  kind: number;
  addr: bigint;
  value: bigint;
  aux: bigint;
  /** The status the routine leaves on success (pre-filled; exceptions overwrite it). */
  status: number;
  /** For K_CTL: the op, whose bits the backend follows once it succeeded. */
  ctl?: CtlOp;
}

/** One entry of the backend's own walk of the trace's tables over host memory. */
interface WalkEntry {
  /** Level of the table holding it (4 = PML4). */
  level: number;
  /** Guest-physical address of the entry. */
  gpa: bigint;
  /** Host address of the entry. */
  host: bigint;
  value: bigint;
}

/**
 * The backend's own walk of `gva` through the trace's current tables (present bits,
 * large leaves, addresses; permissions are read by the callers). `end`: "leaf" with the
 * `frame` gpa of the byte at gva, "absent" at a not-present entry, "noslot" at a table
 * no memslot backs. Only refusals use it, never an outcome.
 */
interface HostWalk {
  entries: WalkEntry[];
  end: "leaf" | "absent" | "noslot";
  frame: bigint;
  /** Host page of each table visited, level 4 first (for the agent's-bytes check). */
  tables: bigint[];
}

/** Page-table entry bits the fetch checks read (SDM vol. 3A 4.5, tables 4-14ff). */
const PTE_P = 1n, PTE_U = 4n, PTE_A = 0x20n, PTE_PS = 0x80n, PTE_NX = 1n << 63n;
const PTE_ADDR = 0x000f_ffff_ffff_f000n;
/** The byte a fetch target must hold: RET (near, C3; SDM vol. 2B RET). */
const RET = 0xc3;

const PAGE = BigInt(PAGE_SIZE);
/** The largest KVM_CLEAR_DIRTY_LOG bitmap the backend allocates: 64 MiB (2^29 pages). */
const CLEAR_BITMAP_MAX = 2 ** 26;

/**
 * The default KVM_RUN watchdog, in milliseconds: how long a `step` (one op), or each
 * started {@linkcode KVM_WATCHDOG_OPS} ops of a `runBatch` batch, may keep the guest
 * running, MMIO round trips included, before the op gets a `crash` outcome. A batch of
 * 4,000 guest ops takes about 200 ms here (kvm-throughput: 17-21k ops/s), so the bound
 * leaves a factor of 40 for a loaded machine. `SHADOWFUZZ_KVM_WATCHDOG_MS` (read when
 * `--allow-env` grants it) or the backend option `watchdogMs` change it.
 */
export const KVM_WATCHDOG_MS = 2000;
/** The batch size one watchdog period covers (see {@linkcode KVM_WATCHDOG_MS}). */
export const KVM_WATCHDOG_OPS = 1000;
const WATCHDOG_ENV = "SHADOWFUZZ_KVM_WATCHDOG_MS";

/** The watchdog from the option, else the environment, else the default. */
function watchdogMs(option: number | undefined): number {
  const check = (v: number, where: string, shown: string) => {
    if (!Number.isInteger(v) || v < 1 || v > 3_600_000) {
      throw new RangeError(
        `Cannot use ${where}: expected whole milliseconds from 1 to 3600000, got ${shown}`,
      );
    }
    return v;
  };
  if (option !== undefined) return check(option, "the kvm watchdogMs option", String(option));
  let env: string | undefined;
  try {
    env = Deno.env.get(WATCHDOG_ENV);
  } catch {
    env = undefined; // no --allow-env: the default
  }
  if (env === undefined || env === "") return KVM_WATCHDOG_MS;
  return check(/^\d+$/.test(env) ? Number(env) : NaN, WATCHDOG_ENV, JSON.stringify(env));
}

const VM_ENV = "SHADOWFUZZ_KVM_VM";

/** Whether backends reuse VMs: the option, else SHADOWFUZZ_KVM_VM (reuse|fresh), else yes. */
function reuseVms(option: boolean | undefined): boolean {
  if (option !== undefined) return option;
  let env: string | undefined;
  try {
    env = Deno.env.get(VM_ENV);
  } catch {
    env = undefined; // no --allow-env: the default
  }
  if (env === undefined || env === "" || env === "reuse") return true;
  if (env === "fresh") return false;
  throw new RangeError(`Cannot use ${VM_ENV}: expected reuse or fresh, got ${JSON.stringify(env)}`);
}

/** The crash message of a batch the watchdog cut off. */
export function watchdogMessage(ms: number): string {
  return `guest did not exit within ${ms} ms: KVM_RUN watchdog`;
}
const ROOT_BYTES = 8 * L.DIRECT_PML4_INDEX;

function errnoOutcome(n: number): Outcome {
  if (n === 0) return { errno: 0 };
  return { errno: (ERRNO_NAMES[n] ?? `E${n}`) as Errno };
}

/** Options of {@linkcode KvmBackend}. */
export interface KvmBackendOptions {
  /** Run the ops of KVM_PVM_DIFFERS instead of refusing them. */
  runPvmDiffs?: boolean;
  /** The KVM_RUN watchdog in milliseconds ({@linkcode KVM_WATCHDOG_MS}). */
  watchdogMs?: number;
  /**
   * Take an idle VM of this thread for the same config and hand it back, reset, on
   * `close` (default: SHADOWFUZZ_KVM_VM=reuse|fresh, else reuse). `false`: a new VM per
   * backend, closed on `close`.
   */
  reuse?: boolean;
  /**
   * Tests only: `false` skips the host's fetch refusals (README.md "Fetches"), so that
   * the agent's own check alone decides what runs (it still executes nothing but a ret
   * it read; what it refuses is then refused once it ran).
   */
  hostFetchCheck?: boolean;
  /**
   * Record each `step`'s trail (README.md "The trail"; {@linkcode KvmBackend.trail}): a
   * settling KVM_RUN before each guest op and two stats reads around it. For the reruns
   * that read a finding's path (`diffTrace`), not for campaigns' own runs.
   */
  trail?: boolean;
}

/**
 * The KVM stats a trail names when they moved during the op (README.md "The trail"):
 * what KVM decided for it. Left out, because they follow the VM's history or the
 * agent rather than the op: `pf_taken`, `pf_fixed`, `pf_spurious` and `mmu_cache_miss`
 * (whether an spte or shadow page already existed; the agent's own pages after a zap:
 * measured, `pf_spurious` moved on a reused VM only, for one op of 40 campaign
 * traces), `tlb_flush` (a consequence of a zap or CR3 load the trail names otherwise,
 * and counted only when no flush was pending yet: measured, it moved on a fresh VM but
 * not on a reused one for a write that zapped a flooded shadow page), the exit
 * counts (the exits are named instead), `insn_emulation` (kvm_pvm emulates every guest
 * instruction), and the halt, interrupt, preemption and reload counters. On kvm_pvm
 * also `mmu_pte_write` ({@linkcode TRAIL_STATS_PVM_NOISE}).
 */
export const TRAIL_STATS: ReadonlySet<string> = new Set([
  // VM (arch/x86/kvm/x86.c kvm_vm_stats_desc)
  "remote_tlb_flush",
  "mmu_shadow_zapped",
  "mmu_pte_write",
  "mmu_pde_zapped",
  "mmu_flooded",
  "mmu_recycled",
  // vCPU (kvm_vcpu_stats_desc)
  "pf_emulate",
  "pf_fast",
  "pf_mmio_spte_created",
  "pf_guest",
  "invlpg",
  "insn_emulation_fail",
]);

/**
 * Stats of {@linkcode TRAIL_STATS} left out on kvm_pvm: it emulates every guest
 * instruction, so every guest write, the agent's own result stores included, reaches
 * `kvm_mmu_track_write()`, which counts `mmu_pte_write` whenever any indirect shadow
 * page exists (arch/x86/kvm/mmu/mmu.c), that is on almost every op. Measured here: the
 * stat moved on 9 of the 10 ops of `corpus/findings/cbe0175ad6fb1ec6.json`, reads too.
 */
export const TRAIL_STATS_PVM_NOISE: ReadonlySet<string> = new Set(["mmu_pte_write"]);

/** The kvm backend (see the module doc). */
export class KvmBackend implements Backend {
  readonly name = "kvm" as const;
  readonly #vm: KvmVm;
  readonly #config: Config;
  readonly #slots = new Map<number, Slot>();
  /** The trace's CR3 (what `cr3` last loaded successfully; 0 at reset, SEMANTICS 1). */
  #traceCr3 = 0n;
  /** What the vCPU's CR3 holds: the trace's CR3 or the agent's own root. */
  #vcpuCr3: bigint;
  /** Host pages that hold the agent's PML4 entries, with the 16 trace bytes they replaced. */
  readonly #installed = new Map<bigint, [bigint, bigint]>();
  readonly #agentEntries: [bigint, bigint];
  readonly #routines: bigint[] = [];
  /** Why the VM is dead (a fatal exit, the watchdog); its fds and memory are gone then. */
  #dead: string | null = null;
  #closed = false;
  /** Ops handed to step/runBatch so far: the trace index of the next one. */
  #handed = 0;
  readonly #watchdogMs: number;
  readonly #reuse: boolean;
  /** The value before the trace's first `wrmsr` of each MSR, for the reset. */
  readonly #savedMsrs = new Map<number, bigint>();
  /** MSRs KVM_GET_MSRS cannot read: a guest write that succeeds there blocks reuse. */
  readonly #unreadableMsrs = new Set<number>();
  /** Whether the trace called KVM_SET_PMU_EVENT_FILTER (the reset installs a no-op one). */
  #filtered = false;
  /** Why this VM must not be reused (state the reset cannot restore), or null. */
  #noReuse: string | null = null;
  /** Whether this backend got an idle VM (reuse) rather than a new one. */
  readonly reusedVm: boolean;
  #batch: Command[] = [];
  /**
   * What the queued commands may change in memory, for the host walks that decide
   * refusals without running them first: the host qwords queued direct writes touch,
   * and whether a queued command may write memory the host cannot tell (a store through
   * the trace's tables) or change the root (a `cr3`).
   */
  readonly #pendingQwords = new Set<bigint>();
  #pendingOpaque = false;
  #outcomes: (StepResult | undefined)[] = [];
  /** Whether `step` records its trail (the `trail` option), and the last step's. */
  readonly #recordTrail: boolean;
  #trail: string[] = [];
  /** Where the trace's hvas lie in the VM's window (hva.ts). */
  readonly #hva = new HvaMap(L.HVA_WINDOW_END - L.HVA_WINDOW_START, L.HVA_WINDOW_START);
  /** EFER.NXE and CR4.SMEP as the trace left them (the config, then each `ctl` that ran). */
  #nxe: boolean;
  #smep: boolean;

  /** Refuse the ops whose kvm_pvm behaviour is documented as different (default). */
  readonly #refusePvmDiffs: boolean;
  readonly #hostFetchCheck: boolean;

  /**
   * `options.runPvmDiffs` runs the ops of KVM_PVM_DIFFERS anyway (the test that pins
   * those behaviours uses it); `options.watchdogMs` sets the KVM_RUN watchdog
   * ({@linkcode KVM_WATCHDOG_MS}).
   */
  constructor(config: Config, options: KvmBackendOptions = {}) {
    this.#refusePvmDiffs = !options.runPvmDiffs;
    this.#hostFetchCheck = options.hostFetchCheck ?? true;
    this.#recordTrail = options.trail ?? false;
    this.#watchdogMs = watchdogMs(options.watchdogMs);
    this.#reuse = reuseVms(options.reuse);
    this.#config = config;
    this.#nxe = config.efer.nx;
    this.#smep = config.cr4.smep;
    if (this.#reuse) {
      this.#vm = takeVm(config);
      this.reusedVm = this.#vm.used;
    } else {
      this.#vm = new KvmVm(config);
      this.reusedVm = false;
    }
    this.#vm.used = true;
    // Live vPMU counters count on their own: the reset does not restore them.
    if (config.pmu.version > 0 && kvmConfigMismatch(config).pmu === undefined) {
      this.#noReuse = "the VM has a live vPMU, whose counters the reset does not restore";
    }
    this.#vcpuCr3 = this.#vm.agentRoot;
    this.#agentEntries = this.#vm.agentPml4Entries();
    for (let k = 0; k < L.ROUTINE_COUNT; k++) this.#routines.push(this.#vm.routine(k));
  }

  /**
   * Why `op` cannot run now (an unsupported op kind or a constraint violation, which
   * may depend on the current state), or null. Call it right before `step`.
   */
  supports(op: Op): string | null {
    const why = staticViolation(op, this.#config, this.#refusePvmDiffs);
    // A dead VM runs nothing (every op gets its crash), and its memory is gone.
    if (why !== null || this.#dead !== null || this.#closed) return why;
    return this.#stateViolation(op);
  }

  /** The KVM_RUN watchdog of this backend, in milliseconds. */
  get watchdogMs(): number {
    return this.#watchdogMs;
  }

  step(op: Op): Outcome {
    if (!this.#recordTrail) {
      const [out] = this.runBatch([op]);
      return out ?? { crash: "kvm: no outcome" };
    }
    this.#trail = [];
    const stats = this.#dead === null && !this.#closed ? this.#vm.stats() : null;
    // A guest op runs after a settling KVM_RUN of its own: the CR3 switch back to the
    // trace's root and the agent's own page faults (after a zap) land there, not in the
    // op's KVM_RUN.
    if (stats !== null && GUEST_OPS.has(op.op) && this.supports(op) === null) this.#settle();
    const before = stats?.map((st) => st.read());
    const log: string[] = [];
    if (this.#dead === null && !this.#closed) this.#vm.log = log;
    let out: Outcome | undefined;
    try {
      [out] = this.runBatch([op]);
    } finally {
      this.#vm.log = null;
    }
    const moved: string[] = [];
    if (stats !== null && before !== undefined && this.#dead === null) {
      const noise = isKvmPvm() ? TRAIL_STATS_PVM_NOISE : new Set<string>();
      stats.forEach((st, k) => {
        for (const name of st.moved(before[k]!, st.read())) {
          if (TRAIL_STATS.has(name) && !noise.has(name)) moved.push(name);
        }
      });
    }
    // Each name once, in order: counts depend on batching and history, names do not.
    this.#trail = [...new Set([...log, ...moved])];
    return out ?? { crash: "kvm: no outcome" };
  }

  /**
   * What KVM did for the last `step` (with the `trail` option; empty otherwise), in
   * order, each name once: the ioctls it issued but KVM_RUN (`KVM_SET_USER_MEMORY_REGION`,
   * `KVM_GET_DIRTY_LOG`, `KVM_SET_SREGS` when the root lost its slot, `madvise`), the
   * exits of its KVM_RUNs other than the agent's end of batch (`KVM_EXIT_MMIO`,
   * `KVM_EXIT_SHUTDOWN`, `watchdog`), then the {@linkcode TRAIL_STATS} that moved
   * (`pf_guest`, `mmu_pte_write`, ...). No addresses or counts: one root cause gives one
   * trail (README.md "The trail").
   */
  trail(): readonly string[] {
    return this.#trail;
  }

  /**
   * Runs the prologue (a CR3 switch back to the trace's root) and touches the agent's
   * pages in a KVM_RUN of their own, so that the next op's KVM_RUN holds only what the op
   * itself made KVM do (trail mode).
   */
  #settle(): void {
    const touch = (off: number): Command => ({
      op: SETTLE,
      kind: L.K_LOAD + 3,
      addr: L.AGENT_GVA + BigInt(off),
      value: 0n,
      aux: 0n,
      status: L.S_VALUE,
    });
    this.#batch = [L.OFF_VECTORS, L.OFF_DATA, L.OFF_LOOP_STACK_TOP - 8, L.OFF_FAULT_STACK_TOP - 8]
      .map(touch);
    this.#outcomes = [];
    this.#flush();
  }

  /**
   * Runs `ops` in order and returns their outcomes; consecutive guest ops share one
   * KVM_RUN. Throws {@linkcode KvmConstraintError} (with the ops before it already run)
   * at the first op `supports` rejects; its message names the op's index among all the
   * ops handed to this backend (`step` and `runBatch` alike), which is its index in the
   * trace when the runner hands every op over. A fetch refused only while it ran (its
   * check load read no ret: README.md "Fetches") throws too, once the whole batch ran.
   */
  runBatch(ops: readonly Op[]): Outcome[] {
    const base = this.#handed;
    const results = this.#run(ops, false);
    const refused = results.findIndex((r) => "skip" in r);
    if (refused >= 0) {
      throw new KvmConstraintError(
        `Cannot run op ${base + refused} on kvm: ${(results[refused] as { skip: string }).skip}`,
      );
    }
    return results as Outcome[];
  }

  /**
   * Runs `ops` as `supports` and `step` per op would, in as few KVM_RUNs as `runBatch`:
   * an op `supports` refuses in the state the ops before it left is not run and gets
   * `{skip: why}`, as does a fetch refused while it ran. diffTrace runs whole traces so.
   */
  stepMany(ops: readonly Op[]): StepResult[] {
    return this.#run(ops, true);
  }

  #run(ops: readonly Op[], skipRefused: boolean): StepResult[] {
    const base = this.#handed;
    // After close the agent's memory is unmapped: touching it would fault the process.
    if (this.#closed) {
      this.#handed += ops.length;
      return ops.map(() => ({ crash: "kvm: the backend is closed" }));
    }
    this.#outcomes = new Array(ops.length);
    this.#batch = [];
    this.#pendingQwords.clear();
    this.#pendingOpaque = false;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      const why = this.supports(op);
      if (why !== null) {
        if (skipRefused) {
          this.#outcomes[i] = { skip: why };
          continue;
        }
        this.#flush();
        this.#handed = base + i + 1;
        throw new KvmConstraintError(`Cannot run op ${base + i} on kvm: ${why}`);
      }
      if (this.#dead !== null) {
        this.#outcomes[i] = { crash: `kvm: the VM is dead: ${this.#dead}` };
        continue;
      }
      try {
        this.#add(i, op);
      } catch (e) {
        this.#outcomes[i] = { crash: `kvm: ${e instanceof Error ? e.message : String(e)}` };
      }
      if (this.#batch.length >= L.MAX_RECORDS - 2) this.#flush();
    }
    this.#flush();
    this.#handed = base + ops.length;
    return this.#outcomes.map((o) => o ?? { crash: "kvm: no outcome" });
  }

  /**
   * Releases the VM: with reuse, a VM that lived through the trace is reset and kept
   * for the next backend of this config; otherwise (fresh mode, a dead VM, state the
   * reset cannot restore) it is closed.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#reuse && this.#dead === null && this.#noReuse === null) {
      // Without a vPMU a filter is inert, and the next trace's filter op replaces it
      // whatever it is: the reset leaves it (a KVM_SET_PMU_EVENT_FILTER waits for an SRCU
      // grace period like a memslot update).
      const why = this.#vm.reset(
        this.#slots.keys(),
        this.#savedMsrs,
        this.#filtered && kvmHasVpmu(),
      );
      if (why === null) return giveVm(this.#vm);
      this.#noReuse = why;
    }
    this.#vm.close();
  }

  /** Why this backend's VM will not be (or was not) handed back for reuse, or null. */
  get noReuse(): string | null {
    return this.#reuse ? this.#dead ?? this.#noReuse : "fresh-VM mode";
  }

  /** Whether the VM died (fatal exit, watchdog) and was torn down. */
  get dead(): string | null {
    return this.#dead;
  }

  // ---- ops -----------------------------------------------------------------------

  #add(i: number, op: Op): void {
    const cmd = (kind: number, addr: bigint, value = 0n, aux = 0n, status = L.S_OK) =>
      this.#batch.push({ op: i, kind, addr, value, aux, status });
    switch (op.op) {
      case "write": {
        const page = this.#hostPage(op.gpa);
        if (page !== null) {
          const at = page + (op.gpa & 0xfffn);
          this.#pendingQwords.add(at & ~7n);
          this.#pendingQwords.add((at + BigInt(op.size) - 1n) & ~7n);
        }
        return void cmd(L.K_STORE + sizeIndex(op.size), L.DIRECT_GVA + op.gpa, op.value);
      }
      case "read":
        return void cmd(L.K_LOAD + sizeIndex(op.size), L.DIRECT_GVA + op.gpa, 0n, 0n, L.S_VALUE);
      case "access": {
        const s = sizeIndex(op.size);
        if (op.kind === "fetch") {
          // agent.S FETCHES: value word bit 0 = user; the check's bytes are the value.
          if (op.user) {
            return void cmd(L.K_UFETCH, op.gva, 1n, this.#routines[L.U_LOAD + s]!, L.S_VALUE);
          }
          return void cmd(L.K_FETCH + s, op.gva, 0n, 0n, L.S_VALUE);
        }
        if (op.kind === "write") {
          this.#pendingOpaque = true;
          if (op.user) {
            return void cmd(L.K_USER, op.gva, op.value ?? 0n, this.#routines[L.U_STORE + s]!);
          }
          return void cmd(L.K_STORE + s, op.gva, op.value ?? 0n);
        }
        if (op.user) {
          return void cmd(L.K_USER, op.gva, 0n, this.#routines[L.U_LOAD + s]!, L.S_VALUE);
        }
        return void cmd(L.K_LOAD + s, op.gva, 0n, 0n, L.S_VALUE);
      }
      case "invlpg":
        return void cmd(L.K_INVLPG, op.gva);
      case "cr3":
        return this.#cr3(i, op.gpa);
      case "ctl": {
        const [mask, value] = ctlWords(op);
        this.#batch.push({
          op: i,
          kind: L.K_CTL,
          addr: 0n,
          value,
          aux: mask,
          status: L.S_OK,
          ctl: op,
        });
        return;
      }
      case "wrmsr":
        if (this.#reuse && !this.#savedMsrs.has(op.msr) && this.#noReuse === null) {
          // Before the first write: later writes in the batch cannot have run yet.
          // An MSR the host cannot read is one KVM does not emulate here (the vPMU's
          // without one): the guest's write #GPs and leaves nothing behind. Should it
          // succeed, the flush blocks reuse.
          const v = this.#vm.initialMsr(op.msr);
          if (v === null) this.#unreadableMsrs.add(op.msr);
          else this.#savedMsrs.set(op.msr, v);
        }
        return void cmd(L.K_WRMSR, BigInt(op.msr), op.value);
      case "rdmsr":
        return void cmd(L.K_RDMSR, BigInt(op.msr), 0n, 0n, L.S_VALUE);
      case "rdpmc":
        if (op.user) {
          return void cmd(L.K_USER, BigInt(op.ecx), 0n, this.#routines[L.U_RDPMC]!, L.S_VALUE);
        }
        return void cmd(L.K_RDPMC, BigInt(op.ecx), 0n, 0n, L.S_VALUE);
      case "slot":
        if (!this.#flushBefore(i)) return;
        this.#outcomes[i] = this.#slot(op.id, op.gpa, op.pages, op.hva, op.flags);
        this.#leaveDeadRoot();
        return;
      case "dirtylog": {
        if (!this.#flushBefore(i)) return;
        const s = this.#slots.get(op.id);
        const pages = s?.pages ?? 1;
        const r = this.#vm.getDirtyLog(op.id, pages);
        this.#outcomes[i] = r.errno === 0 ? { bitmap: r.dirty } : errnoOutcome(r.errno);
        return;
      }
      case "dirtyclear": {
        if (!this.#flushBefore(i)) return;
        // KVM checks the range against the slot before it reads the bitmap: a range
        // beyond the slot (or no slot) needs no buffer.
        const s = this.#slots.get(op.id);
        const inside = s !== undefined && op.first <= s.pages && op.pages <= s.pages - op.first;
        this.#outcomes[i] = errnoOutcome(
          this.#vm.clearDirtyLog(op.id, op.first, op.pages, inside),
        );
        return;
      }
      case "discard":
        if (!this.#flushBefore(i)) return;
        this.#outcomes[i] = this.#discard(op.hva, op.pages);
        return;
      case "filter":
        if (!this.#flushBefore(i)) return;
        this.#filtered = true;
        this.#outcomes[i] = errnoOutcome(
          this.#vm.setPmuEventFilter(op.action, op.flags, op.fixed, op.events),
        );
        return;
      default:
        throw new Error(`unsupported op ${op.op}`);
    }
  }

  /**
   * Runs the pending guest ops before host op `i`; false (with op `i` given its crash)
   * when that killed the VM.
   */
  #flushBefore(i: number): boolean {
    this.#flush();
    if (this.#dead === null) return true;
    this.#outcomes[i] = { crash: `kvm: the VM is dead: ${this.#dead}` };
    return false;
  }

  /**
   * MOV CR3. A new root page gets the agent's PML4 entries (host write) and the load
   * runs alone so that the old root's bytes can be restored right after it. A root
   * outside every memslot cannot hold them: the host then records the new CR3 and the
   * vCPU loads the agent's own root (also a full flush, as SEMANTICS 6 asks).
   */
  #cr3(i: number, value: bigint): void {
    const high = value >> BigInt(this.#config.maxPhyAddr);
    const page = this.#hostPage(value & PTE_ADDR_MASK);
    const sameRoot = this.#vcpuCr3 === this.#traceCr3 &&
      (value & ~0xfffn) === (this.#traceCr3 & ~0xfffn);
    if (high !== 0n || sameRoot) {
      // The guest judges: #GP leaves everything unchanged, success keeps the agent's
      // entries (same page, or a value KVM should refuse).
      this.#pendingOpaque = true;
      this.#batch.push({ op: i, kind: L.K_CR3, addr: value, value: 0n, aux: 0n, status: L.S_OK });
      return;
    }
    if (!this.#flushBefore(i)) return;
    if (page === null) {
      this.#traceCr3 = value;
      this.#outcomes[i] = { ok: true };
      this.#batch.push({
        op: -1,
        kind: L.K_CR3,
        addr: this.#vm.agentRoot,
        value: 0n,
        aux: 0n,
        status: L.S_OK,
      });
      this.#vcpuCr3 = this.#vm.agentRoot;
      this.#flush();
      return;
    }
    this.#install(page);
    this.#batch.push({ op: i, kind: L.K_CR3, addr: value, value: 0n, aux: 0n, status: L.S_OK });
    this.#flush();
  }

  #slot(id: number, gpa: bigint, pages: number, hva: bigint, flags: readonly string[]): Outcome {
    const size = BigInt(pages) * PAGE;
    // A slot KVM could accept gets its hvas placed in the window (supports checked that
    // they fit); deletions and slots KVM rejects by itself keep the trace's hva, for KVM
    // to judge.
    let host = hva;
    if (pages > 0 && plausibleSlot(id, gpa, pages, hva)) {
      const at = this.#hva.place(hva, size);
      if (typeof at === "string") return { crash: `kvm: slot hva 0x${hva.toString(16)}: ${at}` };
      host = this.#vm.windowBase + at;
    }
    const f = (flags.includes("log") ? KVM_MEM_LOG_DIRTY_PAGES : 0) |
      (flags.includes("ro") ? KVM_MEM_READONLY : 0);
    const r = this.#vm.setMemoryRegion(id, f, gpa, size, host);
    if (r === 0) {
      if (pages === 0) this.#slots.delete(id);
      else this.#slots.set(id, { gpa, pages, host });
    }
    return errnoOutcome(r);
  }

  /** MADV_DONTNEED of the window memory that trace hvas [hva, hva + pages) occupy. */
  #discard(hva: bigint, pages: number): Outcome {
    // Regions no slot ever placed hold no memory: nothing to drop there (and they start
    // zero-filled should a later slot use them).
    for (const [off, len] of this.#hva.runs(hva, BigInt(pages) * PAGE)) {
      const r = this.#vm.discard(this.#vm.windowBase + off, len);
      if (r !== 0) return { crash: `kvm: madvise(MADV_DONTNEED): ${ERRNO_NAMES[r] ?? r}` };
    }
    return { ok: true };
  }

  // ---- roots ---------------------------------------------------------------------

  /** The host address of the page holding gpa (address space 0), inside the window. */
  #hostPage(gpa: bigint): bigint | null {
    for (const [id, s] of this.#slots) {
      if (id >>> 16 !== 0) continue;
      if (gpa >= s.gpa && gpa < s.gpa + BigInt(s.pages) * PAGE) {
        const host = s.host + ((gpa - s.gpa) & ~0xfffn);
        const lo = this.#vm.windowBase, hi = lo + (L.HVA_WINDOW_END - L.HVA_WINDOW_START);
        return host >= lo && host < hi ? host : null;
      }
    }
    return null;
  }

  /** The host page of the trace's current root, or null when no slot backs it. */
  #rootPage(): bigint | null {
    return this.#hostPage(this.#traceCr3 & PTE_ADDR_MASK);
  }

  /** Puts the agent's PML4 entries into a root page, saving the trace's bytes. */
  #install(page: bigint): void {
    const [v, o] = this.#vm.hostView(page + BigInt(ROOT_BYTES));
    const cur: [bigint, bigint] = [v.getBigUint64(o, true), v.getBigUint64(o + 8, true)];
    const [e0, e1] = this.#agentEntries;
    if (cur[0] === e0 && cur[1] === e1 && this.#installed.has(page)) return;
    // Not ours (first install, or the page was discarded meanwhile): save what is there.
    this.#installed.set(page, cur);
    v.setBigUint64(o, e0, true);
    v.setBigUint64(o + 8, e1, true);
  }

  /** Restores the trace's bytes in every installed page but `keep`. */
  #restoreExcept(keep: bigint | null): void {
    const [e0, e1] = this.#agentEntries;
    for (const [page, saved] of [...this.#installed]) {
      if (page === keep) continue;
      const [v, o] = this.#vm.hostView(page + BigInt(ROOT_BYTES));
      if (v.getBigUint64(o, true) === e0 && v.getBigUint64(o + 8, true) === e1) {
        v.setBigUint64(o, saved[0], true);
        v.setBigUint64(o + 8, saved[1], true);
      }
      this.#installed.delete(page);
    }
  }

  #stateViolation(op: Op): string | null {
    switch (op.op) {
      case "write":
      case "read": {
        const page = this.#hostPage(op.gpa);
        const off = Number(op.gpa & 0xfffn);
        if (page !== null && page === this.#rootPage() && off + op.size > ROOT_BYTES) {
          return `kvm: ${op.op} at 0x${op.gpa.toString(16)} touches PML4 entries 510-511 of the ` +
            "current root, which the agent owns";
        }
        return null;
      }
      case "dirtyclear": {
        const s = this.#slots.get(op.id);
        const bytes = 8 * Math.ceil(op.pages / 64);
        if (s === undefined || op.first > s.pages || op.pages > s.pages - op.first) return null;
        return bytes > CLEAR_BITMAP_MAX
          ? `kvm: a KVM_CLEAR_DIRTY_LOG of ${op.pages} pages needs a ${bytes}-byte bitmap, ` +
            `more than the backend allocates (${CLEAR_BITMAP_MAX})`
          : null;
      }
      case "slot": {
        if (op.pages === 0 || !plausibleSlot(op.id, op.gpa, op.pages, op.hva)) return null;
        const why = this.#hva.whyNot(op.hva, BigInt(op.pages) * PAGE);
        return why === null
          ? null
          : `kvm: slot hva 0x${op.hva.toString(16)} (+0x${
            (BigInt(op.pages) * PAGE).toString(16)
          }) ` +
            `cannot be placed in the backend's hva window: ${why}`;
      }
      case "access": {
        // A fetch reads A bits and the target byte, which any queued access may change.
        const walk = this.#hostWalk(op.gva, op.kind === "fetch");
        if (walk !== null && this.#walkReachesAgent(walk, op.size)) {
          return `kvm: the walk of 0x${op.gva.toString(16)} uses the current root page as a ` +
            "lower table or frame and reaches its bytes 0xff0-0xfff (the agent's PML4 entries " +
            "510-511)";
        }
        return op.kind === "fetch" && walk !== null && this.#hostFetchCheck
          ? this.#fetchViolation(op.gva, op.user, walk)
          : null;
      }
      default:
        return null;
    }
  }

  /**
   * Whether a guest access of `size` bytes would read the agent's entries in the root
   * page: a trace that maps its root page as a lower-level table or as the data frame.
   */
  #walkReachesAgent(walk: HostWalk, size: number): boolean {
    const root = this.#rootPage();
    if (root === null) return false;
    for (let k = 0; k < walk.tables.length; k++) {
      const index = Number((walk.entries[k]?.gpa ?? 0n) & 0xfffn) / 8;
      if (
        walk.tables[k] === root && walk.entries[k] !== undefined && index >= L.DIRECT_PML4_INDEX
      ) {
        return true;
      }
    }
    if (walk.end !== "leaf") return false;
    const frame = this.#hostPage(walk.frame);
    return frame === root && Number(walk.frame & 0xfffn) + size > ROOT_BYTES;
  }

  /**
   * The backend's own walk of `gva` over host memory as the ops before it left it, or
   * null when no memslot backs the root (the vCPU then runs on the agent's root, where
   * the access faults) or the VM died. Queued commands run first when they may have
   * changed what the walk reads: always with `exact` (the caller reads A bits or data
   * bytes too), else when one stored through the trace's tables or loaded CR3, or a
   * queued direct write touched an entry the walk read (its present bits, addresses and
   * PS bits are what it needs; A/D updates of queued accesses leave those alone).
   */
  #hostWalk(gva: bigint, exact: boolean): HostWalk | null {
    if (this.#batch.length > 0 && this.#pendingOpaque) this.#flush();
    if (this.#dead !== null || this.#rootPage() === null) return null;
    if (this.#batch.length > 0 && exact) this.#flush();
    if (this.#dead !== null) return null;
    const walk: HostWalk = { entries: [], end: "absent", frame: 0n, tables: [] };
    let table = this.#traceCr3 & PTE_ADDR;
    for (let level = 4; level >= 1; level--) {
      const shift = BigInt(12 + 9 * (level - 1));
      const gpa = table + ((gva >> shift) & 0x1ffn) * 8n;
      const page = this.#hostPage(table);
      if (page === null) {
        walk.end = "noslot";
        break;
      }
      walk.tables.push(page);
      const host = page + (gpa & 0xfffn);
      const [hv, ho] = this.#vm.hostView(host);
      const value = hv.getBigUint64(ho, true);
      walk.entries.push({ level, gpa, host, value });
      if ((value & PTE_P) === 0n) break;
      if (level === 1 || (level <= 3 && (value & PTE_PS) !== 0n)) {
        const pageMask = (1n << shift) - 1n;
        walk.end = "leaf";
        walk.frame = (value & PTE_ADDR & ~pageMask) | (gva & pageMask);
        break;
      }
      table = value & PTE_ADDR;
    }
    if (this.#batch.length > 0 && walk.entries.some((e) => this.#pendingQwords.has(e.host))) {
      this.#flush();
      return this.#hostWalk(gva, exact);
    }
    return walk;
  }

  /**
   * Why a fetch cannot run now (README.md "Fetches"), from the current tables: where the
   * agent's check load would succeed, the byte it reads must be a ret, and it must not
   * set an A bit a faulting fetch leaves clear. Where the check faults (an absent entry,
   * a reserved bit, U=0 for a user fetch), so does the fetch, which then runs to report
   * its own error code. A stale translation the tables no longer show is caught by the
   * agent's check itself (a skip once the op ran).
   */
  #fetchViolation(gva: bigint, user: boolean, walk: HostWalk): string | null {
    const at = `kvm: fetch at 0x${gva.toString(16)}`;
    if (walk.end !== "leaf") return null;
    if (walk.entries.some((e) => this.#reservedBits(e))) return null;
    const allU = walk.entries.every((e) => (e.value & PTE_U) !== 0n);
    if (user && !allU) return null;
    const frame = this.#hostPage(walk.frame);
    if (frame === null) {
      return `${at}: the translation's frame 0x${walk.frame.toString(16)} has no memslot ` +
        "(MMIO): KVM cannot execute from there, and the agent runs only a ret it read";
    }
    const target = frame + (walk.frame & 0xfffn);
    const [tv, to] = this.#vm.hostView(target);
    const byte = tv.getUint8(to);
    if (byte !== RET) {
      return `${at}: the byte at gpa 0x${walk.frame.toString(16)} is 0x${byte.toString(16)}, not ` +
        `ret (0x${RET.toString(16)}); the agent executes nothing else (write 0xc3 there first)`;
    }
    // 0xc3 has A (bit 5) clear: as the low byte of an entry of this very walk, the walk
    // sets that A bit before the check reads it (SDM vol. 3A 4.8), which then reads 0xe3.
    const self = walk.entries.find((e) => e.host === target);
    if (self !== undefined) {
      return `${at}: its target is the low byte of the walk's own entry at gpa ` +
        `0x${self.gpa.toString(16)}, whose A bit the walk sets before the check reads it: no ret ` +
        "can be read there";
    }
    const faults = (this.#nxe && walk.entries.some((e) => (e.value & PTE_NX) !== 0n)) ||
      (!user && this.#smep && allU);
    const clear = walk.entries.find((e) => (e.value & PTE_A) === 0n);
    if (faults && clear !== undefined) {
      return `${at}: the agent's check load would set the A bit of the entry at gpa ` +
        `0x${clear.gpa.toString(16)}, which this faulting fetch (NX or SMEP) leaves clear ` +
        "(a faulting walk sets no A bit, docs/kvm-facts.md A.5); set the A bits first";
    }
    return null;
  }

  /**
   * Whether an entry has a bit the guest's walk treats as reserved (docs/kvm-facts.md A.2): one
   * the check load then faults on. Only the plain cases (address bits at or above
   * MAXPHYADDR, NX without EFER.NXE, PS in a PML4E or without 1 GiB pages, a large
   * leaf's low address bits); a missed one only refuses a fetch that could have run.
   */
  #reservedBits(e: WalkEntry): boolean {
    const m = BigInt(this.#config.maxPhyAddr);
    if (((e.value & PTE_ADDR) >> m) !== 0n) return true;
    if (!this.#nxe && (e.value & PTE_NX) !== 0n) return true;
    const ps = (e.value & PTE_PS) !== 0n;
    if (ps && (e.level === 4 || (e.level === 3 && !this.#config.gbPages))) return true;
    if (ps && e.level === 3 && (e.value & 0x3fff_e000n) !== 0n) return true;
    if (ps && e.level === 2 && (e.value & 0x1f_e000n) !== 0n) return true;
    return false;
  }

  /** Whether command record `n` ended with the fetch check's "not a ret". */
  #notRet(n: number): boolean {
    return this.#vm.agent.getUint32(L.OFF_CMD + L.REC_SIZE * n + L.R_STATUS, true) === L.S_NOT_RET;
  }

  /** The skip reason of a fetch the agent refused while it ran (record `n`). */
  #fetchRefusal(gva: bigint, out: Outcome, n: number): string {
    const at = `kvm: fetch at 0x${gva.toString(16)}`;
    if ("mmio" in out) {
      return `${at}: its check load reached MMIO at gpa 0x${out.mmio.gpa.toString(16)} (no ` +
        "memslot): KVM cannot execute from there, and the agent runs only a ret it read";
    }
    const value = this.#vm.agent.getBigUint64(L.OFF_CMD + L.REC_SIZE * n + L.R_RESULT, true);
    return `${at}: its check load read 0x${value.toString(16)} through the gva, whose first ` +
      `byte is not ret (0x${RET.toString(16)}), although the current tables lead to a ret ` +
      "(the walk's own A/D update changed it, or the load went through a translation the " +
      "tables no longer show): nothing was executed";
  }

  // ---- batches -------------------------------------------------------------------

  /** Runs the pending commands in one KVM_RUN (plus MMIO round trips). */
  #flush(): void {
    if (this.#batch.length === 0) return;
    const batch = this.#prologue().concat(this.#batch);
    this.#batch = [];
    this.#pendingQwords.clear();
    this.#pendingOpaque = false;
    const a = this.#vm.agent;
    const write = (n: number, c: Command) => {
      const o = L.OFF_CMD + L.REC_SIZE * n;
      a.setBigUint64(o + L.R_ROUTINE, this.#routines[c.kind]!, true);
      a.setBigUint64(o + L.R_ADDR, BigInt.asUintN(64, c.addr), true);
      a.setBigUint64(o + L.R_VALUE, BigInt.asUintN(64, c.value), true);
      a.setBigUint64(o + L.R_AUX, BigInt.asUintN(64, c.aux), true);
      a.setUint32(o + L.R_STATUS, c.status, true);
    };
    batch.forEach((c, n) => write(n, c));
    write(batch.length, { op: -1, kind: L.K_DONE, addr: 0n, value: 0n, aux: 0n, status: L.S_OK });
    const mmio = new Map<number, { gpa: bigint; write: boolean }>();
    const first = L.AGENT_GVA + BigInt(L.OFF_CMD);
    let fatal: { at: number; message: string } | null = null;
    const bound = this.#watchdogMs * Math.max(1, Math.ceil(batch.length / KVM_WATCHDOG_OPS));
    this.#vm.armWatchdog(bound);
    try {
      for (;;) {
        const exit = this.#vm.run();
        if (exit.kind === "done") break;
        if (exit.kind === "mmio") {
          const n = Number((exit.record - first) / BigInt(L.REC_SIZE));
          if (!mmio.has(n)) mmio.set(n, { gpa: exit.gpa, write: exit.write });
          continue;
        }
        // The agent's r12 names the command that was running, when it still points
        // into the records; otherwise the whole batch is lost. At the final record
        // (the guest never left it, or died there) the batch's last op gets the crash:
        // its step did not come back cleanly.
        const n = Number((exit.record - first) / BigInt(L.REC_SIZE));
        const message = exit.kind === "timeout" ? watchdogMessage(bound) : exit.message;
        fatal = { at: n >= 0 && n <= batch.length ? Math.min(n, batch.length - 1) : 0, message };
        break;
      }
    } finally {
      this.#vm.disarmWatchdog();
    }
    // The crash goes to a trace op: the first at or after the failing record, else the
    // last one before it (the failing record was an internal CR3 switch).
    let crashAt = -1;
    if (fatal !== null) {
      crashAt = batch.findIndex((c, n) => n >= fatal!.at && c.op >= 0);
      if (crashAt < 0) crashAt = batch.findLastIndex((c) => c.op >= 0);
      if (crashAt < 0) crashAt = batch.length;
    }
    // The VM is torn down only after every record has been read.
    let death = fatal?.message ?? null;
    for (let n = 0; n < batch.length; n++) {
      const c = batch[n]!;
      if (c.op === SETTLE) continue;
      if (c.op < 0) {
        // An internal CR3 switch: its failure kills the VM (a fatal exit already did).
        if (fatal === null && death === null) {
          const out = mmio.has(n)
            ? { mmio: mmio.get(n)! }
            : this.#result(L.OFF_CMD + L.REC_SIZE * n);
          if (!("ok" in out)) {
            death = `the agent's CR3 switch failed: ${JSON.stringify(out, bigintJson)}`;
          }
        }
        continue;
      }
      let out: Outcome;
      const lost = fatal !== null && n >= crashAt;
      if (fatal !== null && lost) {
        out = {
          crash: n === crashAt ? `kvm: ${fatal.message}` : `kvm: the VM is dead: ${fatal.message}`,
        };
      } else {
        const m = mmio.get(n);
        out = m !== undefined ? { mmio: m } : this.#result(L.OFF_CMD + L.REC_SIZE * n);
      }
      if (c.kind === L.K_CR3 && "ok" in out) this.#vcpuCr3 = this.#traceCr3 = c.addr;
      if (c.ctl !== undefined && "ok" in out) {
        if (c.ctl.nx !== undefined) this.#nxe = c.ctl.nx;
        if (c.ctl.smep !== undefined) this.#smep = c.ctl.smep;
      }
      const fetch = c.kind === L.K_UFETCH || (c.kind >= L.K_FETCH && c.kind < L.K_FETCH + 4);
      if (fetch && !lost && ("mmio" in out || this.#notRet(n))) {
        this.#outcomes[c.op] = { skip: this.#fetchRefusal(c.addr, out, n) };
        continue;
      }
      if (c.kind === L.K_WRMSR && "ok" in out && this.#unreadableMsrs.has(Number(c.addr))) {
        this.#noReuse ??= `the trace wrote MSR 0x${c.addr.toString(16)}, which KVM_GET_MSRS ` +
          "cannot read back";
      }
      this.#outcomes[c.op] = out;
    }
    if (death !== null) this.#die(death);
    if (this.#dead !== null) return;
    this.#restoreExcept(this.#vcpuCr3 === this.#traceCr3 ? this.#rootPage() : null);
  }

  /**
   * After a memslot change: if the vCPU runs on the trace's root and no slot backs that
   * root any more, the agent could not even fetch its next instruction, so the host
   * loads the agent's root through KVM_SET_SREGS. That is a full flush, which costs the
   * trace nothing: every translation it had went through the root page that was just
   * deleted or moved (SEMANTICS 5). Then the trace's bytes go back into pages that are
   * no longer the root.
   */
  #leaveDeadRoot(): void {
    if (this.#dead !== null) return;
    const page = this.#rootPage();
    if (page === null && this.#vcpuCr3 !== this.#vm.agentRoot) {
      this.#vm.setCr3(this.#vm.agentRoot);
      this.#vcpuCr3 = this.#vm.agentRoot;
    }
    this.#restoreExcept(this.#vcpuCr3 === this.#traceCr3 ? page : null);
  }

  /**
   * The CR3 switch the vCPU needs before the batch: back to the trace's root once a
   * slot backs it again (a guest MOV CR3 from the agent's root, which is always valid).
   */
  #prologue(): Command[] {
    const page = this.#rootPage();
    if (page === null) return [];
    this.#install(page);
    if (this.#vcpuCr3 === this.#traceCr3) return [];
    this.#vcpuCr3 = this.#traceCr3;
    return [{ op: -1, kind: L.K_CR3, addr: this.#traceCr3, value: 0n, aux: 0n, status: L.S_OK }];
  }

  /**
   * Marks the VM dead and tears it down at once: a vCPU the watchdog cut off is still
   * in the middle of the trace's loop, and a shut-down one is of no further use. Every
   * later op gets a `crash` outcome; the next trace gets a fresh VM.
   */
  #die(message: string): void {
    if (this.#dead !== null) return;
    this.#dead = message;
    this.#vm.close();
  }

  #result(o: number): Outcome {
    const a = this.#vm.agent;
    const status = a.getUint32(o + L.R_STATUS, true);
    if (status === L.S_OK) return { ok: true };
    if (status === L.S_VALUE) return { value: a.getBigUint64(o + L.R_RESULT, true) };
    if (status === L.S_NOT_RET) return { crash: "kvm: the fetch check read no ret" };
    if (status === L.S_UNVERIFIED) {
      return {
        crash: "kvm: the fetch succeeded although the agent's check load through the same " +
          "gva faulted (no translation permitted a load, which every fetch needs); EFLAGS.TF " +
          "stopped the guest after the one unverified instruction",
      };
    }
    if (status === L.S_STRAY) {
      const rip = a.getBigUint64(o + L.R_ERROR, true), rsp = a.getBigUint64(o + L.R_CR2, true);
      return {
        crash: "kvm: the fetch ran an instruction other than the ret its check load read " +
          `through the same gva (after it rip 0x${rip.toString(16)}, rsp 0x${rsp.toString(16)}); ` +
          "EFLAGS.TF stopped the guest there",
      };
    }
    if (status === L.S_EXCEPTION) {
      const vector = a.getUint32(o + L.R_VECTOR, true);
      if (vector === 14) {
        const code = Number(a.getBigUint64(o + L.R_ERROR, true) & 0xffff_ffffn);
        return { pf: { code, cr2: a.getBigUint64(o + L.R_CR2, true) } };
      }
      if (vector === 13) return { gp: true };
      const rip = a.getBigUint64(o + L.R_RESULT, true);
      return { crash: `kvm: unexpected exception vector ${vector} at rip 0x${rip.toString(16)}` };
    }
    return { crash: `kvm: the agent left status ${status}` };
  }
}

function bigintJson(_k: string, v: unknown): unknown {
  return typeof v === "bigint" ? "0x" + v.toString(16) : v;
}
