/**
 * @module
 * The core backend: KVM's shadow MMU (`mmu.ts`, after `arch/x86/kvm/mmu/`) and vPMU
 * (`pmu.ts`, after `arch/x86/kvm/pmu.c`) in typed arrays, behind the one
 * {@linkcode Backend} contract. Ops are decoded here without `bigint` arithmetic on
 * the access path (a shared BigUint64Array splits 64-bit values into halves).
 */
import type { Backend, BackendFactory, BackendOptions } from "../backend.ts";
import type { AccessOp, Config, CtlOp, Errno, Op, Outcome, SlotOp } from "../trace/types.ts";
import { PFERR_FETCH, PFERR_USER, PFERR_WRITE, PTE_ADDR_MASK_LO } from "../x86/paging.ts";
import { pageRunsOf } from "../trace/pages.ts";
import { Cov, COVERAGE_NAMES } from "./coverage.ts";
import { SparseMemory } from "./memory.ts";
import { KVM_USER_MEM_SLOTS, type MemslotHooks, Memslots, SLOT_LOG, SLOT_RO } from "./memslots.ts";
import { ShadowMmu, Tr } from "./mmu.ts";
import { auditMmu } from "./audit.ts";
import { CorePmu } from "./pmu.ts";
import { type BugFlags, bugFlags } from "./bugs.ts";
import { DEVIATION_NAMES } from "./deviations.ts";

const OK: Outcome = Object.freeze({ ok: true }) as Outcome;
const GP: Outcome = Object.freeze({ gp: true }) as Outcome;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = LITTLE_ENDIAN ? 1 : 0;
const TWO32 = 4294967296;

/** Names of `CoreBackend.coverage`: the MMU's events, then the vPMU's as `pmu:<name>`. */
export const CORE_COVERAGE_NAMES: readonly string[] = [
  ...COVERAGE_NAMES,
  ...CorePmu.COVERAGE_NAMES.map((n) => `pmu:${n}`),
];

export class CoreBackend implements Backend {
  readonly name = "core" as const;
  readonly mem = new SparseMemory(8);
  readonly slots: Memslots;
  readonly mmu: ShadowMmu;
  readonly pmu: CorePmu;
  /** The injected bugs (`BackendOptions.inject`), one flag per catalogue name. */
  readonly bug: BugFlags;
  /** Known deviations corrected in this instance (`deviations.ts`). */
  readonly fixes: ReadonlySet<string>;
  readonly coverageNames: readonly string[] = CORE_COVERAGE_NAMES;
  #cov: Uint32Array;
  #pce: boolean;
  #hooks: MemslotHooks;
  readonly #u64 = new BigUint64Array(1);
  readonly #u32 = new Uint32Array(this.#u64.buffer);

  constructor(readonly config: Config, options: BackendOptions = {}) {
    // A name not in the catalogue is a TypeError naming it (`bugFlags`).
    this.bug = bugFlags(options.inject);
    this.slots = new Memslots(
      config.smm ? 2 : 1,
      this.bug,
      config.dirtyLog.manualProtect && config.dirtyLog.initiallySet,
    );
    this.fixes = new Set(options.fix ?? []);
    for (const name of this.fixes) {
      if (!DEVIATION_NAMES.has(name)) {
        throw new TypeError(`Cannot correct deviation "${name}": not in src/core/deviations.ts`);
      }
    }
    this.#cov = new Uint32Array(CORE_COVERAGE_NAMES.length);
    const mmuCov = this.#cov.subarray(0, COVERAGE_NAMES.length);
    this.mmu = new ShadowMmu(config, this.slots, this.mem, mmuCov, this.bug, this.fixes);
    this.pmu = new CorePmu(config, this.bug, {}, this.fixes);
    this.#pce = config.cr4.pce;
    const mmu = this.mmu;
    this.#hooks = {
      flushShadowMemslot: (old) => mmu.flushShadowMemslot(old),
      memslotsUpdated: (as, gen) => mmu.memslotsUpdated(as, gen),
      inWindow: (as, oldView) => mmu.inWindow(as, oldView),
      applyFlags: (slot, oldFlags) => mmu.applyFlags(slot, oldFlags),
      retired: (slot) => {
        if (slot.rmap.size === 0) this.slots.bySerial.delete(slot.serial);
      },
    };
    mmu.loadRoot();
  }

  /**
   * Gfns, rmap entries and memory words the age and discard paths visited so far: tests
   * check that it follows what a trace mapped and wrote, not its slots' and ranges' sizes.
   */
  get pagesVisited(): number {
    return this.mmu.rangeScanned + this.mem.scanned;
  }

  /** Named event counters (MMU, then vPMU); see {@linkcode CORE_COVERAGE_NAMES}. */
  get coverage(): Uint32Array {
    this.#cov.set(this.pmu.coverage, COVERAGE_NAMES.length);
    return this.#cov;
  }

  #serial = 0;

  step(op: Op): Outcome {
    this.mmu.opSerial = this.#serial++;
    this.mmu.servedBy = -1;
    return this.#step(op);
  }

  /**
   * The index (among the ops this backend ran) of the op that last set the leaf spte the
   * last access was served by, or null when no cached spte served it.
   */
  origin(): number | null {
    return this.mmu.servedBy >= 0 ? this.mmu.servedBy : null;
  }

  #step(op: Op): Outcome {
    switch (op.op) {
      case "access":
        return this.#access(op);
      case "write": {
        const gpa = this.#split(op.gpa);
        const slot = gpa < 0 ? null : this.slots.find(Math.floor(gpa / 4096));
        if (slot === null || (slot.flags & SLOT_RO) !== 0) {
          return { mmio: { gpa: op.gpa, write: true } };
        }
        const gfn = Math.floor(gpa / 4096);
        this.#u64[0] = op.value;
        const hva = slot.hva + (gfn - slot.baseGfn) * 4096 + (gpa % 4096);
        this.mmu.guestWrite(slot, gfn, hva, op.size, this.#u32[LO]!, this.#u32[HI]!);
        this.mmu.ensureRoot(); // a zapped root is reloaded before the vCPU re-enters
        return OK;
      }
      case "read": {
        const gpa = this.#split(op.gpa);
        const slot = gpa < 0 ? null : this.slots.find(Math.floor(gpa / 4096));
        if (slot === null) return { mmio: { gpa: op.gpa, write: false } };
        const gfn = Math.floor(gpa / 4096);
        this.mem.read(slot.hva + (gfn - slot.baseGfn) * 4096 + (gpa % 4096), op.size);
        return { value: this.#value() };
      }
      case "invlpg": {
        const gva = this.#canonical(op.gva);
        if (gva !== null) this.mmu.invalidateAddr(gva);
        return OK;
      }
      case "cr3": {
        this.#u64[0] = op.gpa;
        const hi = this.#u32[HI]!;
        if (Math.floor(hi / 2 ** (this.config.maxPhyAddr - 32)) !== 0) return GP;
        this.mmu.setCr3(hi * TWO32 + ((this.#u32[LO]! & PTE_ADDR_MASK_LO) >>> 0));
        return OK;
      }
      case "ctl":
        return this.#ctl(op);
      case "slot":
        return { errno: this.#slot(op) };
      case "discard": {
        const hva = Number(op.hva), bytes = op.pages * 4096;
        this.mmu.invalidateRange(hva, bytes, () => this.mem.zeroRange(hva, bytes));
        return OK;
      }
      case "dirtylog": {
        const id = op.id >>> 0;
        if (id >>> 16 >= this.slots.nrAs || (id & 0xffff) >= KVM_USER_MEM_SLOTS) {
          return { errno: "EINVAL" };
        }
        const slot = this.slots.byId(id);
        if (slot === undefined || (slot.flags & SLOT_LOG) === 0) return { errno: "ENOENT" };
        return { bitmap: this.mmu.getDirtyLog(slot) };
      }
      case "dirtyclear": {
        const slot = this.slots.clearDirtyLogSlot(op);
        if (typeof slot !== "object") return { errno: slot };
        this.mmu.clearDirtyLog(slot, op.first, op.pages);
        return { errno: 0 };
      }
      case "age": {
        const gpa = this.#split(op.gpa);
        if (gpa < 0) return { young: [] };
        return { young: pageRunsOf(this.mmu.age(Math.floor(gpa / 4096), op.pages)) };
      }
      case "wrmsr":
        return this.pmu.wrmsr(op.msr, op.value);
      case "rdmsr":
        return this.pmu.rdmsr(op.msr) ?? GP;
      case "rdpmc":
        return this.pmu.rdpmc(op.ecx, op.user, this.#pce);
      case "filter":
        return this.pmu.filter(op);
      case "events":
        return this.pmu.events(op);
      case "pmis":
        return this.pmu.pmis();
    }
  }

  /** A gpa as a number, or -1 when it lies at or above 2^52 (no memslot can hold it). */
  #split(v: bigint): number {
    this.#u64[0] = v;
    const hi = this.#u32[HI]!;
    if (hi >= 0x100000) return -1;
    return hi * TWO32 + this.#u32[LO]!;
  }

  #value(): bigint {
    this.#u32[LO] = this.mem.word[0]!;
    this.#u32[HI] = this.mem.word[1]!;
    return this.#u64[0]!;
  }

  /** A canonical gva as a signed number, or null. */
  #canonical(gva: bigint): number | null {
    this.#u64[0] = gva;
    const hi = this.#u32[HI]!;
    const top = hi >>> 15;
    if (top !== 0 && top !== 0x1ffff) return null;
    return (hi | 0) * TWO32 + this.#u32[LO]!;
  }

  #access(op: AccessOp): Outcome {
    const gva = this.#canonical(op.gva);
    if (gva === null) return GP;
    const write = op.kind === "write";
    const pfec = (write ? PFERR_WRITE : 0) | (op.user ? PFERR_USER : 0) |
      (op.kind === "fetch" ? PFERR_FETCH : 0);
    const mmu = this.mmu;
    switch (mmu.translate(gva, pfec)) {
      case Tr.Memory:
        if (write) {
          this.#u64[0] = op.value ?? 0n;
          this.mem.write(mmu.hva, op.size, this.#u32[LO]!, this.#u32[HI]!);
          return OK;
        }
        this.mem.read(mmu.hva, op.size);
        return { value: this.#value() };
      case Tr.Emulate:
        this.#u64[0] = op.value ?? 0n;
        mmu.guestWrite(mmu.slot!, mmu.gfn, mmu.hva, op.size, this.#u32[LO]!, this.#u32[HI]!);
        mmu.ensureRoot();
        return OK;
      case Tr.Mmio:
        return { mmio: { gpa: BigInt(mmu.gpa), write } };
      default:
        return { pf: { code: mmu.faultCode, cr2: op.gva } };
    }
  }

  #ctl(op: CtlOp): Outcome {
    const mmu = this.mmu;
    if (op.smep === true && !this.config.features.smep) return GP;
    if (op.smap === true && !this.config.features.smap) return GP;
    let reset = false;
    if (op.wp !== undefined && op.wp !== mmu.wp) (mmu.wp = op.wp), (reset = true);
    if (op.smep !== undefined && op.smep !== mmu.smep) (mmu.smep = op.smep), (reset = true);
    if (op.smap !== undefined && op.smap !== mmu.smap) (mmu.smap = op.smap), (reset = true);
    if (op.nx !== undefined && op.nx !== mmu.nx) (mmu.nx = op.nx), (reset = true);
    if (op.ac !== undefined) mmu.ac = op.ac;
    if (op.pce !== undefined) this.#pce = op.pce;
    if (reset) mmu.resetContext();
    return OK;
  }

  #slot(op: SlotOp): Errno {
    const old = this.slots.byId(op.id >>> 0);
    const oldBase = old?.baseGfn, oldFlags = old?.flags;
    this.mmu.beginSlotUpdate();
    const errno = this.slots.set(op, this.#hooks);
    this.mmu.endSlotUpdate();
    const cov = this.mmu.cov;
    if (errno === "EINVAL") cov[Cov.SLOT_EINVAL]!++;
    else if (errno === "EEXIST") cov[Cov.SLOT_EEXIST]!++;
    else if (op.pages === 0) cov[Cov.SLOT_DELETE]!++;
    else if (old === undefined) cov[Cov.SLOT_CREATE]!++;
    else if (oldBase !== this.slots.byId(op.id >>> 0)?.baseGfn) cov[Cov.SLOT_MOVE]!++;
    else if (oldFlags !== this.slots.byId(op.id >>> 0)?.flags) cov[Cov.SLOT_FLAGS]!++;
    else cov[Cov.SLOT_NOOP]!++;
    return errno;
  }

  close(): void {}

  /** The invariants of docs/kvm-facts.md B.12 and the vPMU's own; empty when all hold. */
  audit(): string[] {
    return [...auditMmu(this.mmu), ...this.pmu.audit()];
  }
}

/** The core backend's factory (no OS resources: always available). */
export const coreFactory: BackendFactory = {
  name: "core",
  available: () => null,
  create: (config, options) => new CoreBackend(config, options),
};
