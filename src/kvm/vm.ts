/**
 * @module
 * One KVM virtual machine with one vCPU and the guest agent loaded: /dev/kvm, the VM
 * and vCPU fds, the kvm_run mapping, the agent's memslot, the per-VM host-virtual
 * window that backs trace memory, CPUID filtered to the trace config, and 64-bit long
 * mode set up through KVM_SET_SREGS. The trace semantics live in `backend.ts`; this file
 * only talks to the kernel.
 */
import type { Config, PageRuns } from "../trace/types.ts";
import { AGENT_BYTES } from "./agent/agent_bin.ts";
import * as L from "./layout.ts";
import {
  addressPointer,
  cString,
  errno,
  libc,
  MAP_FAILED,
  memoryView,
  pointerAddress,
} from "./libc.ts";
import * as U from "./uapi.ts";
import { KvmStats } from "./stats.ts";

/** Page-table entry bits the agent's tables use (SDM vol. 3A 4.5; docs/kvm-facts.md A.1). */
const P = 1 << 0, W = 1 << 1, US = 1 << 2, A = 1 << 5, D = 1 << 6, PS = 1 << 7;
const GIB = 1n << 30n;

/** What KVM_RUN ended with. */
export type Exit =
  | { kind: "done" }
  /** `record`: the agent's r12 at the exit, the command record that caused it. */
  | { kind: "mmio"; gpa: bigint; write: boolean; record: bigint }
  | { kind: "fatal"; message: string; record: bigint }
  /** The watchdog expired (see {@linkcode KvmVm.armWatchdog}); `record` as for mmio. */
  | { kind: "timeout"; record: bigint };

/**
 * The watchdog's signal: a real-time signal (glibc keeps 32 and 33 for itself, so its
 * SIGRTMIN is 34; nothing in Deno or V8 uses 40). It is sent to the vCPU thread only
 * (SIGEV_THREAD_ID), blocked there outside KVM_RUN, and let through during KVM_RUN by
 * KVM_SET_SIGNAL_MASK: a pending unblocked signal makes KVM_RUN return -EINTR
 * (api.rst 4.10 KVM_RUN, 4.15 KVM_SET_SIGNAL_MASK). Since KVM restores the blocked
 * mask before returning to userspace, the signal is never delivered to a handler (or
 * its default action); the host takes it with sigtimedwait, as QEMU does with SIG_IPI.
 */
export const WATCHDOG_SIGNAL = 40;

/** The signal set holding only `sig`, in glibc's sigset_t layout (bit sig - 1). */
function sigset(sig: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(U.GLIBC_SIGSET_BYTES);
  b[(sig - 1) >> 3] = 1 << ((sig - 1) & 7);
  return b;
}

function itimerspec(ms: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(U.ITIMERSPEC_SIZE);
  const v = new DataView(b.buffer);
  v.setBigInt64(U.ITIMERSPEC_VALUE_SEC, BigInt(Math.floor(ms / 1000)), true);
  v.setBigInt64(U.ITIMERSPEC_VALUE_NSEC, BigInt(Math.round((ms % 1000) * 1e6)), true);
  return b;
}

/**
 * Counts of this thread's KVM_RUNs and KVM_SET_USER_MEMORY_REGION calls, for
 * measurements (`deno task bench`): where a trace's time goes.
 */
export const kvmCounters = { runs: 0, memslots: 0 };

/**
 * Switches for measurements only (`deno task bench` runs the backend with and without
 * them in one run): `noSyncRegs` reads the agent's r12 with KVM_GET_REGS after each MMIO
 * exit instead of from kvm_run (KVM_CAP_SYNC_REGS), `noMsrCache` reads an MSR with
 * KVM_GET_MSRS before each trace's first write of it instead of once per VM.
 */
export const kvmOptions = { noSyncRegs: false, noMsrCache: false };

/**
 * Time spent in each kind of ioctl (and madvise) of this thread while `enabled`, for
 * measurements (`deno task bench`'s breakdown): name to calls and milliseconds.
 */
export const kvmProfile = {
  enabled: false,
  calls: new Map<string, { calls: number; ms: number }>(),
};

/** Names of the ioctl requests the VM issues, for {@linkcode kvmProfile}. */
const IOCTL_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(U).filter(([k, v]) =>
    k.startsWith("KVM_") && typeof v === "number" &&
    !k.startsWith("KVM_EXIT") && !k.startsWith("KVM_CAP") && !k.startsWith("KVM_MEM_") &&
    !k.startsWith("KVM_DIRTY") && !k.startsWith("KVM_PMU") && k !== "KVM_API_VERSION"
  ).map(([k, v]) => [v as number, k]),
);

/**
 * Ioctls {@linkcode KvmVm.log} leaves out: KVM_RUN (its exits are logged instead) and
 * the reads the backend makes for itself (registers, MSRs before a write).
 */
const UNLOGGED: ReadonlySet<number> = new Set([
  U.KVM_RUN,
  U.KVM_GET_REGS,
  U.KVM_GET_SREGS,
  U.KVM_GET_MSRS,
  U.KVM_CHECK_EXTENSION,
  U.KVM_GET_STATS_FD,
]);

function profiled(name: string, t0: number): void {
  const e = kvmProfile.calls.get(name);
  const ms = performance.now() - t0;
  if (e === undefined) kvmProfile.calls.set(name, { calls: 1, ms });
  else {
    e.calls++;
    e.ms += ms;
  }
}

/** The agent's memslots: [start, end) offsets in the agent region and their flags. */
const AGENT_PARTS = [
  [0, L.OFF_DATA, U.KVM_MEM_READONLY],
  [L.OFF_DATA, L.OFF_ROOT, 0],
  [L.OFF_ROOT, L.AGENT_MEM_SIZE, U.KVM_MEM_READONLY],
] as const;

/** Thrown when a syscall needed to build or run the VM fails. */
export class KvmError extends Error {
  override name = "KvmError";
}

function errnoName(n: number): string {
  return U.ERRNO_NAMES[n] ?? `errno ${n}`;
}

/** Why /dev/kvm cannot be used here, or null. */
export function kvmUnavailable(): string | null {
  // Deno's own file APIs demand --allow-all for /dev paths, so /dev/kvm is probed with
  // libc open(2) through FFI only.
  let c: ReturnType<typeof libc>;
  try {
    c = libc();
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) return "Deno FFI not permitted: run with --allow-ffi";
    return `Cannot load libc.so.6: ${e instanceof Error ? e.message : String(e)}`;
  }
  const fd = c.open(cString("/dev/kvm"), U.O_RDWR | U.O_CLOEXEC, 0);
  if (fd < 0) {
    const e = errno();
    if (e === U.ENOENT) return "/dev/kvm: not present";
    return e === U.EACCES || e === 1 ? "/dev/kvm: permission denied" : `/dev/kvm: ${errnoName(e)}`;
  }
  const version = Number(c.ioctl_int(fd, BigInt(U.KVM_GET_API_VERSION), 0n));
  c.close(fd);
  if (version !== U.KVM_API_VERSION) return `/dev/kvm: KVM API version ${version}, expected 12`;
  return null;
}

/** A VM with the agent loaded, ready for batches. */
export class KvmVm {
  readonly #c = libc();
  #kvmFd = -1;
  #vmFd = -1;
  #vcpuFd = -1;
  #runAddr = 0n;
  #runSize = 0;
  #run!: DataView;
  /** Whether KVM copies the registers into kvm_run on each exit (KVM_CAP_SYNC_REGS). */
  #syncRegs = false;
  /** Each MSR's value right after setup (null: KVM_GET_MSRS cannot read it), read once. */
  readonly #initialMsrs = new Map<number, bigint | null>();
  /** The watchdog's two timer values, made once (an allocation per batch otherwise). */
  readonly #armSpec = new Map<number, Uint8Array<ArrayBuffer>>();
  readonly #disarmSpec = itimerspec(0);
  #agentAddr = 0n;
  #windowMap = 0n;
  #windowMapLen = 0n;
  /** The watchdog's POSIX timer (glibc timer_t), or null before it exists. */
  #timer: bigint | null = null;
  #watchdogArmed = false;
  readonly #watchdogSet = sigset(WATCHDOG_SIGNAL);
  /** The state right after setup, for {@linkcode reset}: agent bytes, sregs, regs. */
  #pristine: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  #initialSregs: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  #initialRegs: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  /** Host address of trace hva HVA_WINDOW_START. */
  windowBase = 0n;
  /** The agent region (host view). */
  agent!: DataView;
  agentBytes!: Uint8Array;
  /** The highest direct-mapped gpa + 1 (min of 512 GiB and 2^MAXPHYADDR). */
  readonly directLimit: bigint;
  /** Whether a backend has run on this VM (set by the backend; pool statistics). */
  used = false;
  /**
   * While not null, what the VM did is appended here in order, by name: each ioctl but
   * KVM_RUN and the backend's own reads ({@linkcode UNLOGGED}), `madvise`, and each exit
   * of KVM_RUN other than the agent's end of batch (`KVM_EXIT_MMIO`, a fatal exit's
   * name, `watchdog`). The backend's trail (README.md "The trail") reads it.
   */
  log: string[] | null = null;
  /**
   * Whether KVM may hold shadow pages: the guest ran since the VM was made or since the
   * last memslot deletion (which zaps them all). The reset zaps them when a trace left
   * some and no slot of its own to delete.
   */
  #shadowPages = false;
  /** The VM's and the vCPU's KVM_GET_STATS_FD readers, made on first use. */
  #stats: [KvmStats, KvmStats] | null = null;
  /** The agent's own root (CR3 while the trace root is unusable). */
  readonly agentRoot = L.AGENT_GPA + BigInt(L.OFF_ROOT);

  constructor(readonly config: Config) {
    const limit = 1n << BigInt(config.maxPhyAddr);
    this.directLimit = limit < L.DIRECT_MAP_LIMIT ? limit : L.DIRECT_MAP_LIMIT;
    try {
      this.#open();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  #ioctl(fd: number, req: number, arg: Uint8Array<ArrayBuffer> | bigint): number {
    const t0 = kvmProfile.enabled ? performance.now() : 0;
    const r = typeof arg === "bigint"
      ? this.#c.ioctl_int(fd, BigInt(req), arg)
      : this.#c.ioctl_buf(fd, BigInt(req), arg);
    if (kvmProfile.enabled) profiled(IOCTL_NAMES.get(req) ?? `ioctl 0x${req.toString(16)}`, t0);
    if (this.log !== null && !UNLOGGED.has(req)) {
      this.log.push(IOCTL_NAMES.get(req) ?? `ioctl 0x${req.toString(16)}`);
    }
    return r < 0 ? -errno() : r;
  }

  #must(what: string, r: number): number {
    if (r < 0) throw new KvmError(`Cannot set up the KVM guest: ${what}: ${errnoName(-r)}`);
    return r;
  }

  #mmap(len: bigint, prot: number, flags: number, fd: number): bigint {
    const p = this.#c.mmap(null, len, prot, flags, fd, 0n);
    const addr = pointerAddress(p);
    if (addr === MAP_FAILED || addr === 0n) {
      throw new KvmError(`Cannot set up the KVM guest: mmap: ${errnoName(errno())}`);
    }
    return addr;
  }

  #open(): void {
    const c = this.#c;
    this.#kvmFd = c.open(cString("/dev/kvm"), U.O_RDWR | U.O_CLOEXEC, 0);
    if (this.#kvmFd < 0) throw new KvmError(`Cannot open /dev/kvm: ${errnoName(errno())}`);
    this.#vmFd = this.#must("KVM_CREATE_VM", this.#ioctl(this.#kvmFd, U.KVM_CREATE_VM, 0n));
    // KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 as the config asks (api.rst 7.18), before any
    // memslot exists: KVM_DIRTY_LOG_INITIALLY_SET applies to bitmaps allocated after it.
    const { manualProtect, initiallySet } = this.config.dirtyLog;
    if (manualProtect) {
      const args0 = U.KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
        (initiallySet ? U.KVM_DIRTY_LOG_INITIALLY_SET : 0);
      this.#must(
        "KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)",
        this.#enableCap(U.KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, BigInt(args0)),
      );
    }
    this.#runSize = this.#must(
      "KVM_GET_VCPU_MMAP_SIZE",
      this.#ioctl(this.#kvmFd, U.KVM_GET_VCPU_MMAP_SIZE, 0n),
    );
    // The trace hva window: one private, lazily allocated, zero-filled mapping per VM.
    const windowLen = L.HVA_WINDOW_END - L.HVA_WINDOW_START;
    this.#windowMapLen = windowLen + GIB;
    this.#windowMap = this.#mmap(
      this.#windowMapLen,
      U.PROT_READ | U.PROT_WRITE,
      U.MAP_PRIVATE | U.MAP_ANONYMOUS | U.MAP_NORESERVE,
      -1,
    );
    this.windowBase = (this.#windowMap + GIB - 1n) & ~(GIB - 1n);
    // The agent region and its memslot.
    this.#agentAddr = this.#mmap(
      BigInt(L.AGENT_MEM_SIZE),
      U.PROT_READ | U.PROT_WRITE,
      U.MAP_PRIVATE | U.MAP_ANONYMOUS | U.MAP_NORESERVE,
      -1,
    );
    const buf = memoryView(this.#agentAddr, L.AGENT_MEM_SIZE);
    this.agent = new DataView(buf);
    this.agentBytes = new Uint8Array(buf);
    this.#buildAgent();
    // Code, descriptor tables and page tables read-only to the guest: a write there (a
    // trace whose tables map the agent's gpas) is an MMIO exit and never lands, so a
    // VM's agent is as built after any trace (the reset need not compare it).
    AGENT_PARTS.forEach(([lo, hi, flags], i) => {
      const r = this.setMemoryRegion(
        L.AGENT_SLOTS[i]!,
        flags,
        L.AGENT_GPA + BigInt(lo),
        BigInt(hi - lo),
        this.#agentAddr + BigInt(lo),
      );
      if (r !== 0) {
        throw new KvmError(`Cannot set up the KVM guest: agent memslot ${i}: ${errnoName(r)}`);
      }
    });
    this.#vcpuFd = this.#must("KVM_CREATE_VCPU", this.#ioctl(this.#vmFd, U.KVM_CREATE_VCPU, 0n));
    this.#runAddr = this.#mmap(
      BigInt(this.#runSize),
      U.PROT_READ | U.PROT_WRITE,
      U.MAP_SHARED,
      this.#vcpuFd,
    );
    this.#run = new DataView(memoryView(this.#runAddr, this.#runSize));
    // The registers on every exit in kvm_run, so that attributing an MMIO exit to its
    // command (the agent's r12) costs no KVM_GET_REGS.
    const sync = this.#ioctl(this.#vmFd, U.KVM_CHECK_EXTENSION, BigInt(U.KVM_CAP_SYNC_REGS));
    if (sync > 0 && (sync & U.KVM_SYNC_X86_REGS) !== 0) {
      this.#run.setBigUint64(U.RUN_VALID_REGS, BigInt(U.KVM_SYNC_X86_REGS), true);
      this.#syncRegs = true;
    }
    this.#setUpWatchdog();
    this.#setCpuid();
    this.#setSregs();
    this.#setRegs();
    this.#pristine = this.agentBytes.slice();
    this.#initialSregs = new Uint8Array(U.SREGS_SIZE);
    this.#must("KVM_GET_SREGS", this.#ioctl(this.#vcpuFd, U.KVM_GET_SREGS, this.#initialSregs));
    this.#initialRegs = new Uint8Array(U.REGS_SIZE);
    this.#must("KVM_GET_REGS", this.#ioctl(this.#vcpuFd, U.KVM_GET_REGS, this.#initialRegs));
  }

  /**
   * The value MSR `index` had right after setup, or null when KVM_GET_MSRS cannot read
   * it: read once per VM. A reset puts every MSR a trace wrote back to this value, so it
   * is also the value before each later trace's first write of it.
   */
  initialMsr(index: number): bigint | null {
    if (kvmOptions.noMsrCache) return this.getMsr(index);
    let v = this.#initialMsrs.get(index);
    if (v === undefined) {
      v = this.getMsr(index);
      this.#initialMsrs.set(index, v);
    }
    return v;
  }

  /** KVM_GET_MSRS of one MSR: its value, or null when KVM cannot read it. */
  getMsr(index: number): bigint | null {
    const b = new Uint8Array(U.MSRS_HEADER + U.MSR_ENTRY_SIZE);
    const v = new DataView(b.buffer);
    v.setUint32(0, 1, true);
    v.setUint32(U.MSRS_HEADER, index >>> 0, true);
    const r = this.#ioctl(this.#vcpuFd, U.KVM_GET_MSRS, b);
    return r === 1 ? v.getBigUint64(U.MSRS_HEADER + 8, true) : null;
  }

  /**
   * Puts the VM back into the state it had right after setup, so that the next trace
   * can run on it as on a fresh one (VM reuse, README.md): the pending exit completed,
   * the given trace memslots deleted, the trace's host memory dropped (zero-filled
   * again), the agent's data page and stacks, sregs and regs as after setup, and each
   * MSR in `msrs` back to its saved value, and with `filtered` a PMU event filter that
   * filters nothing (an empty deny list: no ioctl removes a filter, and an empty deny
   * list allows every event and fixed counter, as no filter does; arch/x86/kvm/pmu.c
   * is_gp_event_allowed, is_fixed_event_allowed). Returns null, or why the VM cannot be
   * reused (then close it): KVM refused a step. The agent's code and tables need no
   * check: their memslots are read-only to the guest (a write through an alias in the
   * trace's tables is an MMIO exit and changes nothing).
   */
  reset(
    slots: Iterable<number>,
    msrs: ReadonlyMap<number, bigint>,
    filtered = false,
  ): string | null {
    if (this.#vcpuFd < 0) return "the VM is closed";
    this.#run.setUint8(U.RUN_IMMEDIATE_EXIT, 1);
    const r = this.#ioctl(this.#vcpuFd, U.KVM_RUN, 0n);
    this.#run.setUint8(U.RUN_IMMEDIATE_EXIT, 0);
    if (r >= 0 || -r !== U.EINTR) return `KVM_RUN with immediate_exit: ${errnoName(-r)}`;
    // The agent's code, descriptor tables and page tables are as built: their memslots
    // are read-only to the guest, and the host never writes them after setup.
    for (const id of slots) {
      const e = this.setMemoryRegion(id, 0, 0n, 0n, 0n);
      if (e !== 0) return `cannot delete memslot ${id}: ${errnoName(e)}`;
    }
    // A fresh VM has no shadow pages. Deleting any memslot zaps them all (the
    // "fast zap", kvm_mmu_zap_all_fast() from kvm_arch_flush_shadow_memslot(), unless
    // userspace turned KVM_X86_QUIRK_SLOT_ZAP_ALL off), so a trace that left slots is
    // covered; after one that left none while the guest ran since the last deletion,
    // the agent's first slot is deleted and made again for that zap alone. Without it
    // the next trace's first deletion would zap the agent's pages left from this one
    // (a trail with mmu_shadow_zapped that a fresh VM does not give:
    // test/kvm_trail_test.ts).
    if (this.#shadowPages) {
      const [lo, hi, flags] = AGENT_PARTS[0];
      const gpa = L.AGENT_GPA + BigInt(lo), size = BigInt(hi - lo);
      const e = this.setMemoryRegion(L.AGENT_SLOTS[0]!, flags, gpa, 0n, 0n) ||
        this.setMemoryRegion(L.AGENT_SLOTS[0]!, flags, gpa, size, this.#agentAddr + BigInt(lo));
      if (e !== 0) return `cannot delete and make again agent memslot 0: ${errnoName(e)}`;
    }
    const d = this.discard(this.#windowMap, this.#windowMapLen);
    if (d !== 0) return `madvise(MADV_DONTNEED) of the window: ${errnoName(d)}`;
    // Data page, stacks and the first record (which ends a batch until the host writes one).
    this.agentBytes.set(this.#pristine.subarray(L.OFF_DATA, L.OFF_CMD + L.REC_SIZE), L.OFF_DATA);
    const rs = this.#ioctl(this.#vcpuFd, U.KVM_SET_SREGS, this.#initialSregs.slice());
    if (rs < 0) return `KVM_SET_SREGS: ${errnoName(-rs)}`;
    const rr = this.#ioctl(this.#vcpuFd, U.KVM_SET_REGS, this.#initialRegs.slice());
    if (rr < 0) return `KVM_SET_REGS: ${errnoName(-rr)}`;
    if (msrs.size > 0) {
      const b = new Uint8Array(U.MSRS_HEADER + U.MSR_ENTRY_SIZE * msrs.size);
      const v = new DataView(b.buffer);
      v.setUint32(0, msrs.size, true);
      let i = 0;
      for (const [index, value] of msrs) {
        v.setUint32(U.MSRS_HEADER + U.MSR_ENTRY_SIZE * i, index >>> 0, true);
        v.setBigUint64(U.MSRS_HEADER + U.MSR_ENTRY_SIZE * i + 8, value, true);
        i++;
      }
      const n = this.#ioctl(this.#vcpuFd, U.KVM_SET_MSRS, b);
      if (n !== msrs.size) {
        return n < 0
          ? `KVM_SET_MSRS: ${errnoName(-n)}`
          : `KVM_SET_MSRS restored ${n} of ${msrs.size} MSRs`;
      }
    }
    if (filtered) {
      const e = this.setPmuEventFilter(U.KVM_PMU_EVENT_DENY, 0, 0, []);
      if (e !== 0) return `KVM_SET_PMU_EVENT_FILTER (empty deny list): ${errnoName(e)}`;
    }
    this.#drainWatchdog();
    return null;
  }

  /** KVM_SET_USER_MEMORY_REGION; returns 0 or the errno number. */
  setMemoryRegion(slot: number, flags: number, gpa: bigint, size: bigint, hva: bigint): number {
    kvmCounters.memslots++;
    const b = new Uint8Array(U.MEM_REGION_SIZE);
    const v = new DataView(b.buffer);
    v.setUint32(0, slot >>> 0, true);
    v.setUint32(4, flags >>> 0, true);
    v.setBigUint64(8, BigInt.asUintN(64, gpa), true);
    v.setBigUint64(16, BigInt.asUintN(64, size), true);
    v.setBigUint64(24, BigInt.asUintN(64, hva), true);
    const r = this.#ioctl(this.#vmFd, U.KVM_SET_USER_MEMORY_REGION, b);
    if (r >= 0 && size === 0n) this.#shadowPages = false;
    return r < 0 ? -r : 0;
  }

  /**
   * KVM_GET_DIRTY_LOG of a slot of `pages` pages, as the runs of dirty pages below
   * `pages`. KVM writes a bitmap of the slot's size (rounded up to 64-bit words); the
   * scan skips zero words, so it costs O(pages / 32) and allocates per run, never a
   * number of the slot's size.
   */
  getDirtyLog(slot: number, pages: number): { errno: number; dirty: PageRuns } {
    const words = Math.max(1, Math.ceil(pages / 64));
    // An explicit ArrayBuffer keeps its bytes off the V8 heap, so KVM's write lands in
    // memory that cannot move.
    const buf = new ArrayBuffer(8 * words);
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setUint32(0, slot >>> 0, true);
    const ptr = Deno.UnsafePointer.of(buf);
    v.setBigUint64(8, ptr === null ? 0n : BigInt(Deno.UnsafePointer.value(ptr)), true);
    const r = this.#ioctl(this.#vmFd, U.KVM_GET_DIRTY_LOG, b);
    if (r < 0) return { errno: -r, dirty: [] };
    // Little-endian: 32-bit word w holds pages 32w .. 32w + 31.
    const half = new Uint32Array(buf);
    const runs: [number, number][] = [];
    for (let w = 0; w < half.length; w++) {
      let x = half[w]!;
      while (x !== 0) {
        const bit = 31 - Math.clz32(x & -x);
        x = (x & (x - 1)) >>> 0;
        const page = 32 * w + bit;
        if (page >= pages) break;
        const last = runs.at(-1);
        if (last !== undefined && last[1] === page - 1) last[1] = page;
        else runs.push([page, page]);
      }
    }
    return { errno: 0, dirty: runs };
  }

  /** KVM_ENABLE_CAP on the VM with args[0] = `arg0`; 0 or the negative errno. */
  #enableCap(cap: number, arg0: bigint): number {
    const b = new Uint8Array(U.ENABLE_CAP_SIZE);
    const v = new DataView(b.buffer);
    v.setUint32(0, cap, true);
    v.setBigUint64(U.ENABLE_CAP_ARGS, arg0, true);
    return this.#ioctl(this.#vmFd, U.KVM_ENABLE_CAP, b);
  }

  /**
   * KVM_CLEAR_DIRTY_LOG of `pages` pages of `slot` from page `first`, with a bitmap of
   * all ones (every page of the range is cleared); returns 0 or the errno number. With
   * `bitmap` false the bitmap pointer is NULL: for a range that KVM refuses before it
   * reads the bitmap (`kvm_clear_dirty_log_protect` checks the range first), so that a
   * huge `pages` costs no buffer; should KVM read it after all, the call fails EFAULT.
   */
  clearDirtyLog(slot: number, first: number, pages: number, bitmap: boolean): number {
    const b = new Uint8Array(U.CLEAR_DIRTY_LOG_SIZE);
    const v = new DataView(b.buffer);
    v.setUint32(0, slot >>> 0, true);
    v.setUint32(4, pages >>> 0, true);
    v.setBigUint64(8, BigInt(first), true);
    // KVM copies ALIGN(num_pages, 64) / 8 bytes: whole 64-bit words. An explicit
    // ArrayBuffer keeps its bytes off the V8 heap while KVM reads them.
    const buf = new ArrayBuffer(bitmap ? 8 * Math.ceil(pages / 64) : 0);
    new Uint8Array(buf).fill(0xff);
    const ptr = bitmap && pages > 0 ? Deno.UnsafePointer.of(buf) : null;
    v.setBigUint64(16, ptr === null ? 0n : BigInt(Deno.UnsafePointer.value(ptr)), true);
    const r = this.#ioctl(this.#vmFd, U.KVM_CLEAR_DIRTY_LOG, b);
    return r < 0 ? -r : 0;
  }

  /** KVM_SET_PMU_EVENT_FILTER; returns 0 or the errno number. */
  setPmuEventFilter(
    action: number,
    flags: number,
    fixed: number,
    events: readonly bigint[],
  ): number {
    const b = new Uint8Array(U.PMU_FILTER_HEADER + 8 * events.length);
    const v = new DataView(b.buffer);
    v.setUint32(0, action >>> 0, true);
    v.setUint32(4, events.length, true);
    v.setUint32(8, fixed >>> 0, true);
    v.setUint32(12, flags >>> 0, true);
    events.forEach((e, i) =>
      v.setBigUint64(U.PMU_FILTER_HEADER + 8 * i, BigInt.asUintN(64, e), true)
    );
    const r = this.#ioctl(this.#vmFd, U.KVM_SET_PMU_EVENT_FILTER, b);
    return r < 0 ? -r : 0;
  }

  /** MADV_DONTNEED over host memory [addr, addr + len); returns 0 or the errno number. */
  discard(addr: bigint, len: bigint): number {
    const t0 = kvmProfile.enabled ? performance.now() : 0;
    const r = this.#c.madvise(addressPointer(addr), len, U.MADV_DONTNEED);
    if (kvmProfile.enabled) profiled("madvise", t0);
    this.log?.push("madvise");
    return r < 0 ? errno() : 0;
  }

  /** A view of each host page of the window the backend has read or written. */
  readonly #pageViews = new Map<bigint, DataView>();

  /**
   * A host view of trace memory at host address `addr` (inside the window) and the
   * offset of `addr` in it: a view of its whole page, made once per page (the window's
   * mapping lives as long as the VM; the cache goes with it).
   */
  hostView(addr: bigint): [DataView, number] {
    const page = addr & ~0xfffn;
    let v = this.#pageViews.get(page);
    if (v === undefined) {
      if (this.#pageViews.size >= 4096) this.#pageViews.clear();
      v = new DataView(memoryView(page, 4096));
      this.#pageViews.set(page, v);
    }
    return [v, Number(addr - page)];
  }

  /**
   * Blocks the watchdog signal on the calling thread (the one that will run KVM_RUN),
   * lets it through while KVM_RUN executes, and makes a one-shot timer that sends it
   * to this thread. Per VM, so that each worker thread gets its own.
   */
  #setUpWatchdog(): void {
    const c = this.#c;
    const old = new Uint8Array(U.GLIBC_SIGSET_BYTES);
    const e = c.pthread_sigmask(U.SIG_BLOCK, this.#watchdogSet, old);
    if (e !== 0) {
      throw new KvmError(`Cannot set up the KVM_RUN watchdog: pthread_sigmask: ${errnoName(e)}`);
    }
    // During KVM_RUN: the thread's mask as it was, without the watchdog signal.
    const m = new Uint8Array(4 + U.KERNEL_SIGSET_BYTES);
    new DataView(m.buffer).setUint32(0, U.KERNEL_SIGSET_BYTES, true);
    m.set(old.subarray(0, U.KERNEL_SIGSET_BYTES), 4);
    const bit = WATCHDOG_SIGNAL - 1;
    m[4 + (bit >> 3)]! &= ~(1 << (bit & 7));
    this.#must("KVM_SET_SIGNAL_MASK", this.#ioctl(this.#vcpuFd, U.KVM_SET_SIGNAL_MASK, m));
    const sev = new Uint8Array(U.SIGEVENT_SIZE);
    const v = new DataView(sev.buffer);
    v.setInt32(U.SIGEV_SIGNO, WATCHDOG_SIGNAL, true);
    v.setInt32(U.SIGEV_NOTIFY, U.SIGEV_THREAD_ID, true);
    v.setInt32(U.SIGEV_TID, c.gettid(), true);
    const id = new Uint8Array(8);
    if (c.timer_create(U.CLOCK_MONOTONIC, sev, id) !== 0) {
      throw new KvmError(`Cannot set up the KVM_RUN watchdog: timer_create: ${errnoName(errno())}`);
    }
    this.#timer = new DataView(id.buffer).getBigUint64(0, true);
  }

  /**
   * Starts the watchdog: if the KVM_RUNs until {@linkcode disarmWatchdog} take longer
   * than `ms` in all (MMIO round trips included), the KVM_RUN then executing, or the
   * next one, returns `{kind: "timeout"}`. A guest stuck in a loop never exits by
   * itself; the timer signal kicks it out.
   */
  armWatchdog(ms: number): void {
    if (this.#timer === null) return;
    let spec = this.#armSpec.get(ms);
    if (spec === undefined) {
      if (this.#armSpec.size > 16) this.#armSpec.clear();
      spec = itimerspec(ms);
      this.#armSpec.set(ms, spec);
    }
    if (this.#c.timer_settime(this.#timer, 0, spec, null) !== 0) {
      throw new KvmError(`Cannot arm the KVM_RUN watchdog: timer_settime: ${errnoName(errno())}`);
    }
    this.#watchdogArmed = true;
  }

  /** Stops the watchdog. A signal it sent meanwhile stays pending and is taken later. */
  disarmWatchdog(): void {
    if (this.#timer === null || !this.#watchdogArmed) return;
    this.#watchdogArmed = false;
    this.#c.timer_settime(this.#timer, 0, this.#disarmSpec, null);
  }

  /** Whether the armed one-shot timer has gone off (its it_value reads 0 then). */
  #watchdogExpired(): boolean {
    if (this.#timer === null || !this.#watchdogArmed) return false;
    const b = new Uint8Array(U.ITIMERSPEC_SIZE);
    if (this.#c.timer_gettime(this.#timer, b) !== 0) return false;
    const v = new DataView(b.buffer);
    return v.getBigInt64(U.ITIMERSPEC_VALUE_SEC, true) === 0n &&
      v.getBigInt64(U.ITIMERSPEC_VALUE_NSEC, true) === 0n;
  }

  /** Takes every pending watchdog signal off this thread (sigtimedwait, zero timeout). */
  #drainWatchdog(): void {
    const zero = new Uint8Array(16);
    while (this.#c.sigtimedwait(this.#watchdogSet, null, zero) > 0) { /* taken */ }
  }

  /**
   * KVM_RUN until the agent finishes the batch, an MMIO exit, a fatal exit, or the
   * watchdog's timeout.
   */
  run(): Exit {
    this.#shadowPages = true;
    for (;;) {
      kvmCounters.runs++;
      const r = this.#ioctl(this.#vcpuFd, U.KVM_RUN, 0n);
      if (r < 0) {
        if (-r === U.EINTR) {
          // The watchdog's signal, or one left pending by a timer that went off after
          // the previous KVM_RUN had returned, or another signal: only an expired
          // armed timer ends the run.
          this.#drainWatchdog();
          if (this.#watchdogExpired()) {
            this.#watchdogArmed = false;
            this.log?.push("watchdog");
            return { kind: "timeout", record: this.#reg(U.REGS_R12) };
          }
          continue;
        }
        if (-r === U.EAGAIN) continue;
        this.log?.push(`KVM_RUN ${errnoName(-r)}`);
        return {
          kind: "fatal",
          message: `KVM_RUN: ${errnoName(-r)}`,
          record: this.#reg(U.REGS_R12),
        };
      }
      const reason = this.#run.getUint32(U.RUN_EXIT_REASON, true);
      if (reason === U.KVM_EXIT_IO && this.#run.getUint16(U.RUN_IO_PORT, true) === L.EXIT_PORT) {
        return { kind: "done" };
      }
      if (reason === U.KVM_EXIT_MMIO) {
        const gpa = this.#run.getBigUint64(U.RUN_MMIO_PHYS_ADDR, true);
        const write = this.#run.getUint8(U.RUN_MMIO_IS_WRITE) !== 0;
        // Reads complete with zeros when KVM_RUN is re-entered.
        if (!write) this.#run.setBigUint64(U.RUN_MMIO_DATA, 0n, true);
        this.log?.push("KVM_EXIT_MMIO");
        return { kind: "mmio", gpa, write, record: this.#reg(U.REGS_R12) };
      }
      if (reason === U.KVM_EXIT_INTR) continue;
      const name = U.KVM_EXIT_NAMES[reason] ?? `exit reason ${reason}`;
      this.log?.push(name);
      let detail = "";
      if (reason === 17) detail = ` suberror ${this.#run.getUint32(U.RUN_INTERNAL_SUBERROR, true)}`;
      if (reason === 9) {
        detail = ` reason 0x${this.#run.getBigUint64(U.RUN_FAIL_REASON, true).toString(16)}`;
      }
      if (reason === U.KVM_EXIT_IO) {
        detail = ` port 0x${this.#run.getUint16(U.RUN_IO_PORT, true).toString(16)}`;
      }
      return {
        kind: "fatal",
        message: `${name}${detail} at rip ${this.#rip()}`,
        record: this.#reg(U.REGS_R12),
      };
    }
  }

  /**
   * Loads CR3 from the host (KVM_SET_SREGS). The pending `out` exit is completed first
   * with immediate_exit, as api.rst asks before guest state is changed.
   */
  setCr3(value: bigint): void {
    this.#run.setUint8(U.RUN_IMMEDIATE_EXIT, 1);
    const r = this.#ioctl(this.#vcpuFd, U.KVM_RUN, 0n);
    this.#run.setUint8(U.RUN_IMMEDIATE_EXIT, 0);
    if (r >= 0 || -r !== U.EINTR) {
      throw new KvmError(`Cannot complete the pending exit: ${errnoName(-r)}`);
    }
    const b = new Uint8Array(U.SREGS_SIZE);
    const v = new DataView(b.buffer);
    this.#must("KVM_GET_SREGS", this.#ioctl(this.#vcpuFd, U.KVM_GET_SREGS, b));
    v.setBigUint64(U.SREGS_CR3, value, true);
    this.#must("KVM_SET_SREGS", this.#ioctl(this.#vcpuFd, U.KVM_SET_SREGS, b));
  }

  #reg(offset: number): bigint {
    if (this.#syncRegs && !kvmOptions.noSyncRegs) {
      return this.#run.getBigUint64(U.RUN_SYNC_REGS + offset, true);
    }
    const regs = new Uint8Array(U.REGS_SIZE);
    if (this.#ioctl(this.#vcpuFd, U.KVM_GET_REGS, regs) < 0) return -1n;
    return new DataView(regs.buffer).getBigUint64(offset, true);
  }

  #rip(): string {
    return "0x" + this.#reg(U.REGS_RIP).toString(16);
  }

  /**
   * The VM's and the vCPU's binary stats (KVM_GET_STATS_FD), opened on first use; null
   * when this kernel has none (KVM_CAP_BINARY_STATS_FD, Linux 5.14) or the VM is closed.
   */
  stats(): [KvmStats, KvmStats] | null {
    if (this.#stats !== null || this.#vcpuFd < 0) return this.#stats;
    const vm = this.#ioctl(this.#vmFd, U.KVM_GET_STATS_FD, 0n);
    if (vm < 0) return null;
    const vcpu = this.#ioctl(this.#vcpuFd, U.KVM_GET_STATS_FD, 0n);
    if (vcpu < 0) {
      this.#c.close(vm);
      return null;
    }
    this.#stats = [new KvmStats(vm), new KvmStats(vcpu)];
    return this.#stats;
  }

  /** The gva of agent routine `k` (layout.ts K_* / U_*). */
  routine(k: number): bigint {
    return L.AGENT_GVA + BigInt(routineOffset(k));
  }

  close(): void {
    const c = this.#c;
    if (this.#stats !== null) {
      for (const st of this.#stats) st.close();
      this.#stats = null;
    }
    if (this.#timer !== null) {
      c.timer_delete(this.#timer);
      this.#timer = null;
      this.#watchdogArmed = false;
      this.#drainWatchdog();
    }
    if (this.#runAddr !== 0n) c.munmap(addressPointer(this.#runAddr), BigInt(this.#runSize));
    if (this.#vcpuFd >= 0) c.close(this.#vcpuFd);
    if (this.#vmFd >= 0) c.close(this.#vmFd);
    if (this.#kvmFd >= 0) c.close(this.#kvmFd);
    // The memory goes only after the VM that maps it.
    if (this.#agentAddr !== 0n) c.munmap(addressPointer(this.#agentAddr), BigInt(L.AGENT_MEM_SIZE));
    if (this.#windowMap !== 0n) c.munmap(addressPointer(this.#windowMap), this.#windowMapLen);
    this.#runAddr = this.#agentAddr = this.#windowMap = 0n;
    this.#pageViews.clear();
    this.#vcpuFd = this.#vmFd = this.#kvmFd = -1;
  }

  /** Writes the agent code, GDT, TSS, IDT, data page and page tables into agent memory. */
  #buildAgent(): void {
    const a = this.agent;
    this.agentBytes.set(AGENT_BYTES, L.OFF_CODE);
    // GDT (SDM vol. 3A 3.4.5): null, kernel code64, kernel data, user data, user code64,
    // then the 16-byte 64-bit TSS descriptor. Accessed bits preset so the CPU need not
    // write them.
    const gdt = [
      0n,
      0x00af9b000000ffffn,
      0x00cf93000000ffffn,
      0x00cff3000000ffffn,
      0x00affb000000ffffn,
    ];
    gdt.forEach((d, i) => a.setBigUint64(L.OFF_GDT + 8 * i, d, true));
    const tss = L.AGENT_GVA + BigInt(L.OFF_TSS);
    const tssLimit = 0x67n;
    // Type 0xB (busy 64-bit TSS), present: access byte 0x8B (SDM vol. 3A 8.2.3).
    const tssLow = (tssLimit & 0xffffn) | ((tss & 0xffffffn) << 16n) | (0x8bn << 40n) |
      (((tss >> 24n) & 0xffn) << 56n);
    a.setBigUint64(L.OFF_GDT + 40, tssLow, true);
    a.setBigUint64(L.OFF_GDT + 48, tss >> 32n, true);
    // TSS: RSP0 at offset 4 (ring-3 faults land on their own stack), no I/O bitmap.
    a.setBigUint64(L.OFF_TSS + 4, L.AGENT_GVA + BigInt(L.OFF_FAULT_STACK_TOP), true);
    a.setUint16(L.OFF_TSS + 0x66, 0x68, true);
    // IDT: 32 interrupt gates (type 0xE, DPL 0, present: 0x8E) to vectors 16 bytes apart.
    for (let v = 0; v < 32; v++) {
      const h = L.AGENT_GVA + BigInt(L.OFF_VECTORS + 16 * v);
      const lo = (h & 0xffffn) | (BigInt(L.SEL_KERNEL_CS) << 16n) | (0x8en << 40n) |
        (((h >> 16n) & 0xffffn) << 48n);
      a.setBigUint64(L.OFF_IDT + 16 * v, lo, true);
      a.setBigUint64(L.OFF_IDT + 16 * v + 8, h >> 32n, true);
    }
    a.setBigUint64(L.OFF_DATA + L.D_RFLAGS, this.config.rflags.ac ? 0x40002n : 0x2n, true);
    // Until the host writes a batch, the first record ends it.
    a.setBigUint64(L.OFF_CMD + L.R_ROUTINE, this.routine(L.K_DONE), true);
    // The agent's tables. Upper levels of the agent mapping carry U=1 because the ring-3
    // stub page needs it; every other leaf has U=0. A and D are preset everywhere so KVM
    // never writes them (no A/D writes into the trace's root page). No NX bits: the
    // trace owns EFER.NXE.
    const g = (off: number) => L.AGENT_GPA + BigInt(off);
    const entry = (off: number, v: bigint) => a.setBigUint64(off, v, true);
    entry(L.OFF_ROOT + 8 * L.AGENT_PML4_INDEX, g(L.OFF_AGENT_PDPT) | BigInt(P | W | US | A));
    entry(L.OFF_ROOT + 8 * L.DIRECT_PML4_INDEX, g(L.OFF_DIRECT_PDPT) | BigInt(P | W | A));
    entry(L.OFF_AGENT_PDPT, g(L.OFF_AGENT_PD) | BigInt(P | W | US | A));
    entry(L.OFF_AGENT_PD, g(L.OFF_AGENT_PT) | BigInt(P | W | US | A));
    for (let i = 0; i < L.AGENT_MAPPED_PAGES; i++) {
      const u = i * 4096 === L.OFF_USER ? US : 0;
      entry(L.OFF_AGENT_PT + 8 * i, g(i * 4096) | BigInt(P | W | A | D | u));
    }
    // The direct map: gpa g at DIRECT_GVA + g, 2 MiB pages, up to directLimit, except the
    // agent region (a trace op there is a constraint violation, never a write).
    const pds = Number((this.directLimit + GIB - 1n) / GIB);
    const u32 = new Uint32Array(
      this.agentBytes.buffer,
      this.agentBytes.byteOffset,
      L.AGENT_MEM_SIZE / 4,
    );
    const agentLo = Number(L.AGENT_GPA >> 21n),
      agentHi = Number((L.AGENT_GPA + L.AGENT_GPA_SIZE) >> 21n);
    const limit2m = Number(this.directLimit >> 21n);
    for (let j = 0; j < pds; j++) {
      entry(L.OFF_DIRECT_PDPT + 8 * j, g(L.OFF_DIRECT_PD + 4096 * j) | BigInt(P | W | A));
      const base = (L.OFF_DIRECT_PD + 4096 * j) / 4;
      for (let k = 0; k < 512; k++) {
        const n = j * 512 + k; // 2 MiB frame number
        if (n >= limit2m || (n >= agentLo && n < agentHi)) continue;
        u32[base + 2 * k] = (((n & 0x7ff) << 21) | P | W | A | D | PS) >>> 0;
        u32[base + 2 * k + 1] = Math.floor(n / 2048);
      }
    }
  }

  /** The two PML4 entries the agent needs in whatever root it runs on. */
  agentPml4Entries(): [bigint, bigint] {
    const root = L.OFF_ROOT;
    return [
      this.agent.getBigUint64(root + 8 * L.DIRECT_PML4_INDEX, true),
      this.agent.getBigUint64(root + 8 * L.AGENT_PML4_INDEX, true),
    ];
  }

  #setCpuid(): void {
    const max = 256;
    const b = new Uint8Array(U.CPUID2_HEADER + max * U.CPUID_ENTRY_SIZE);
    const v = new DataView(b.buffer);
    v.setUint32(0, max, true);
    this.#must("KVM_GET_SUPPORTED_CPUID", this.#ioctl(this.#kvmFd, U.KVM_GET_SUPPORTED_CPUID, b));
    const n = v.getUint32(0, true);
    filterCpuid(v, n, this.config);
    this.#must("KVM_SET_CPUID2", this.#ioctl(this.#vcpuFd, U.KVM_SET_CPUID2, b));
  }

  #setSregs(): void {
    const b = new Uint8Array(U.SREGS_SIZE);
    const v = new DataView(b.buffer);
    this.#must("KVM_GET_SREGS", this.#ioctl(this.#vcpuFd, U.KVM_GET_SREGS, b));
    const seg = (
      off: number,
      sel: number,
      type: number,
      s: number,
      dpl: number,
      l: number,
      db: number,
    ) => {
      v.setBigUint64(off + U.SEG_BASE, 0n, true);
      v.setUint32(off + U.SEG_LIMIT, 0xffffffff, true);
      v.setUint16(off + U.SEG_SELECTOR, sel, true);
      v.setUint8(off + U.SEG_TYPE, type);
      v.setUint8(off + U.SEG_PRESENT, 1);
      v.setUint8(off + U.SEG_DPL, dpl);
      v.setUint8(off + U.SEG_DB, db);
      v.setUint8(off + U.SEG_S, s);
      v.setUint8(off + U.SEG_L, l);
      v.setUint8(off + U.SEG_G, 1);
      v.setUint8(off + U.SEG_UNUSABLE, 0);
    };
    seg(U.SREGS_CS, L.SEL_KERNEL_CS, 0xb, 1, 0, 1, 0);
    for (const off of [U.SREGS_DS, U.SREGS_ES, U.SREGS_FS, U.SREGS_GS, U.SREGS_SS]) {
      seg(off, L.SEL_KERNEL_DS, 0x3, 1, 0, 0, 1);
    }
    seg(U.SREGS_TR, L.SEL_TSS, 0xb, 0, 0, 0, 0);
    v.setBigUint64(U.SREGS_TR + U.SEG_BASE, L.AGENT_GVA + BigInt(L.OFF_TSS), true);
    v.setUint32(U.SREGS_TR + U.SEG_LIMIT, 0x67, true);
    v.setUint8(U.SREGS_TR + U.SEG_G, 0);
    v.setUint16(U.SREGS_LDT + U.SEG_SELECTOR, 0, true);
    v.setUint8(U.SREGS_LDT + U.SEG_PRESENT, 0);
    v.setUint8(U.SREGS_LDT + U.SEG_UNUSABLE, 1);
    v.setUint8(U.SREGS_LDT + U.SEG_TYPE, 2);
    v.setBigUint64(U.SREGS_GDT + U.DT_BASE, L.AGENT_GVA + BigInt(L.OFF_GDT), true);
    v.setUint16(U.SREGS_GDT + U.DT_LIMIT, 7 * 8 - 1, true);
    v.setBigUint64(U.SREGS_IDT + U.DT_BASE, L.AGENT_GVA + BigInt(L.OFF_IDT), true);
    v.setUint16(U.SREGS_IDT + U.DT_LIMIT, 32 * 16 - 1, true);
    // CR0: PE(0) MP(1) ET(4) NE(5) WP(16) PG(31); AM(18) stays 0 so EFLAGS.AC never
    // enables alignment checks in ring 3. CR4: PAE(5), PCE(8), SMEP(20), SMAP(21).
    // EFER: LME(8) LMA(10) NXE(11). (SDM vol. 3A 2.5, 2.2.1.)
    const cfg = this.config;
    const cr0 = 0x80000033n | (cfg.cr0.wp ? 1n << 16n : 0n);
    const cr4 = (1n << 5n) | (cfg.cr4.pce ? 1n << 8n : 0n) | (cfg.cr4.smep ? 1n << 20n : 0n) |
      (cfg.cr4.smap ? 1n << 21n : 0n);
    const efer = (1n << 8n) | (1n << 10n) | (cfg.efer.nx ? 1n << 11n : 0n);
    v.setBigUint64(U.SREGS_CR0, cr0, true);
    v.setBigUint64(U.SREGS_CR3, this.agentRoot, true);
    v.setBigUint64(U.SREGS_CR4, cr4, true);
    v.setBigUint64(U.SREGS_EFER, efer, true);
    this.#must("KVM_SET_SREGS", this.#ioctl(this.#vcpuFd, U.KVM_SET_SREGS, b));
  }

  #setRegs(): void {
    const b = new Uint8Array(U.REGS_SIZE);
    const v = new DataView(b.buffer);
    v.setBigUint64(U.REGS_RIP, L.AGENT_GVA + BigInt(L.OFF_CODE), true);
    v.setBigUint64(U.REGS_RSP, L.AGENT_GVA + BigInt(L.OFF_LOOP_STACK_TOP), true);
    v.setBigUint64(U.REGS_RFLAGS, this.config.rflags.ac ? 0x40002n : 0x2n, true);
    this.#must("KVM_SET_REGS", this.#ioctl(this.#vcpuFd, U.KVM_SET_REGS, b));
  }
}

/**
 * Makes the supported CPUID match the trace config where KVM lets it (src/kvm/README.md,
 * "The VM"): vendor string, MAXPHYADDR, Page1GB, SMEP/SMAP, no PCID/PKU/LA57, and no vPMU
 * when `pmu.version` is 0. Bit positions: SDM vol. 2A CPUID; AMD APM vol. 3 appendix E.
 */
function filterCpuid(v: DataView, n: number, cfg: Config): void {
  const vendor = cfg.vendor === "amd" ? ["Auth", "enti", "cAMD"] : ["Genu", "ineI", "ntel"];
  const word = (s: string) =>
    s.split("").reduce((acc, ch, i) => acc | (ch.charCodeAt(0) << (8 * i)), 0) >>> 0;
  const setBit = (x: number, bit: number, on: boolean) =>
    (on ? x | (1 << bit) : x & ~(1 << bit)) >>> 0;
  for (let i = 0; i < n; i++) {
    const e = U.CPUID2_HEADER + i * U.CPUID_ENTRY_SIZE;
    const fn = v.getUint32(e + U.CPUID_FUNCTION, true);
    const idx = v.getUint32(e + U.CPUID_INDEX, true);
    const get = (r: number) => v.getUint32(e + r, true);
    const set = (r: number, x: number) => v.setUint32(e + r, x >>> 0, true);
    if (fn === 0) {
      set(U.CPUID_EBX, word(vendor[0]!));
      set(U.CPUID_EDX, word(vendor[1]!));
      set(U.CPUID_ECX, word(vendor[2]!));
    } else if (fn === 1) {
      set(U.CPUID_ECX, setBit(get(U.CPUID_ECX), 17, false)); // PCID
    } else if (fn === 7 && idx === 0) {
      set(
        U.CPUID_EBX,
        setBit(setBit(get(U.CPUID_EBX), 7, cfg.features.smep), 20, cfg.features.smap),
      );
      set(U.CPUID_ECX, setBit(setBit(get(U.CPUID_ECX), 3, false), 16, false)); // PKU, LA57
    } else if (fn === 0xa && cfg.pmu.version === 0) {
      set(U.CPUID_EAX, 0);
      set(U.CPUID_EBX, 0);
      set(U.CPUID_ECX, 0);
      set(U.CPUID_EDX, 0);
    } else if (fn === 0x80000001) {
      set(U.CPUID_EDX, setBit(get(U.CPUID_EDX), 26, cfg.gbPages)); // Page1GB
      if (cfg.pmu.version === 0) set(U.CPUID_ECX, setBit(get(U.CPUID_ECX), 23, false)); // PerfCtrExtCore
    } else if (fn === 0x80000008) {
      set(U.CPUID_EAX, ((get(U.CPUID_EAX) & ~0xff) | cfg.maxPhyAddr) >>> 0);
    } else if (fn === 0x80000022 && cfg.pmu.version === 0) {
      set(U.CPUID_EAX, 0); // PerfMonV2
      set(U.CPUID_EBX, 0);
    }
  }
}

/** The offset of agent routine `k` in the agent (its entry in `routines` or `routines2`). */
export function routineOffset(k: number): number {
  const at = k < L.ROUTINES2_FIRST
    ? L.OFF_ROUTINES + 4 * k
    : L.OFF_ROUTINES2 + 4 * (k - L.ROUTINES2_FIRST);
  return new DataView(AGENT_BYTES.buffer, AGENT_BYTES.byteOffset).getUint32(at, true);
}
