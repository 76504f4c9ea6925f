/**
 * @module
 * The kvm backend: trace ops on the real Linux KVM through /dev/kvm and Deno FFI
 * (`--allow-ffi`). See README.md for the guest agent and the constraints a trace must
 * respect ({@linkcode kvmTraceConstraints}).
 */
import type { BackendFactory, BackendOptions } from "../backend.ts";
import type { Config, Op } from "../trace/types.ts";
import { KvmBackend, type KvmBackendOptions } from "./backend.ts";
import { staticViolation } from "./constraints.ts";
import { type KvmHost, kvmHost } from "./host.ts";
import { kvmUnavailable } from "./vm.ts";

export { KVM_WATCHDOG_MS, KvmBackend, TRAIL_STATS, watchdogMessage } from "./backend.ts";
export type { KvmBackendOptions } from "./backend.ts";
export { kvmConfigMismatch } from "./capabilities.ts";
export type { KvmMismatch } from "./capabilities.ts";
export {
  isKvmPvm,
  KVM_PVM_DIFFERS,
  KvmConstraintError,
  kvmTraceConstraints,
  UNSUPPORTED,
} from "./constraints.ts";
export type { KvmTraceConstraints } from "./constraints.ts";
export { kvmHost, readKvmHost, TDP_NOTE } from "./host.ts";
export { closeIdleVms, idleVms, POOL_MAX } from "./pool.ts";
export { kvmCounters, kvmOptions, kvmProfile } from "./vm.ts";
export type { KvmHost, KvmMmuMode } from "./host.ts";

/** The kvm factories: they make {@linkcode KvmBackend}s and give the host record. */
export interface KvmBackendFactory extends BackendFactory {
  /**
   * A backend on a VM for `config` (a pooled one unless the options say otherwise);
   * `backend.trail` asks it to record each step's trail.
   */
  create(config: Config, backend?: BackendOptions): KvmBackend;
  /** The host record ({@linkcode kvmHost}). */
  host(): Readonly<KvmHost>;
}

/**
 * A kvm backend factory whose backends take `options` (e.g. `{ reuse: false }` for a new VM
 * per trace, as replays that must not depend on an earlier trace may want, or
 * `{ watchdogMs }`). `kvmFactory` is `kvmFactoryWith({})`.
 */
export function kvmFactoryWith(options: KvmBackendOptions): KvmBackendFactory {
  return {
    name: "kvm",
    available(): string | null {
      return kvmUnavailable();
    },
    cannotRun(op: Op, config: Config): string | null {
      return staticViolation(op, config);
    },
    create(config: Config, backend?: BackendOptions): KvmBackend {
      return new KvmBackend(config, backend?.trail ? { ...options, trail: true } : options);
    },
    host(): Readonly<KvmHost> {
      return kvmHost();
    },
  };
}

/**
 * Makes kvm backends (reusing VMs unless SHADOWFUZZ_KVM_VM=fresh); `available()` says why
 * /dev/kvm cannot be used here, `host()` is the host record ({@linkcode kvmHost}) for run
 * records and findings.
 */
export const kvmFactory: KvmBackendFactory = kvmFactoryWith({});
