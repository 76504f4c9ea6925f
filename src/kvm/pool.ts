/**
 * @module
 * Idle VMs kept for reuse (README.md "VM reuse"): a backend closed after a clean trace
 * hands its VM back, reset to its state right after setup, and the next backend for the
 * same config takes it instead of building a new one (about 10 ms of setup and teardown
 * per trace here). Module state, so one pool per thread: a VM's watchdog signals the
 * thread that made it, and a Deno worker has its own module instances.
 */
import type { Config } from "../trace/types.ts";
import { KvmVm } from "./vm.ts";

/** Idle VMs kept at most (each holds about 2.5 MiB of agent memory and KVM state). */
export const POOL_MAX = 4;

const idle = new Map<string, KvmVm>();

/** The pool key: the whole config (CPUID, control registers and the direct map follow it). */
function keyOf(config: Config): string {
  return JSON.stringify(config, (_k, v) => typeof v === "bigint" ? `0x${v.toString(16)}` : v);
}

/** Each pooled VM's key, computed once when it was taken (its config is not read again). */
const vmKeys = new WeakMap<KvmVm, string>();

/** An idle VM for `config`, or a new one. */
export function takeVm(config: Config): KvmVm {
  const key = keyOf(config);
  const vm = idle.get(key);
  if (vm !== undefined) {
    idle.delete(key);
    return vm;
  }
  const made = new KvmVm(config);
  vmKeys.set(made, key);
  return made;
}

/** Keeps a VM that was reset for reuse (closing the oldest idle one beyond POOL_MAX). */
export function giveVm(vm: KvmVm): void {
  const key = vmKeys.get(vm) ?? keyOf(vm.config);
  idle.get(key)?.close();
  idle.delete(key);
  if (idle.size >= POOL_MAX) {
    const [oldest, old] = idle.entries().next().value!;
    old.close();
    idle.delete(oldest);
  }
  idle.set(key, vm);
}

/** The number of idle VMs (tests). */
export function idleVms(): number {
  return idle.size;
}

/** Closes every idle VM of this thread. */
export function closeIdleVms(): void {
  for (const vm of idle.values()) vm.close();
  idle.clear();
}
