/**
 * @module
 * Which parts of a trace config the KVM on this machine cannot provide, so that runners
 * skip such traces with a reason instead of reporting the machine as a divergence. Reads
 * KVM_GET_SUPPORTED_CPUID and the `kvm.enable_pmu` module parameter (both through FFI).
 */
import type { Config } from "../trace/types.ts";
import { cString, libc } from "./libc.ts";
import * as U from "./uapi.ts";

interface Host {
  vendor: "intel" | "amd" | "other";
  gbPages: boolean;
  pmu: boolean;
}

let host: Host | null = null;

function readHost(): Host {
  const c = libc();
  const fd = c.open(cString("/dev/kvm"), U.O_RDWR | U.O_CLOEXEC, 0);
  if (fd < 0) throw new Error("Cannot open /dev/kvm");
  const max = 256;
  const b = new Uint8Array(U.CPUID2_HEADER + max * U.CPUID_ENTRY_SIZE);
  const v = new DataView(b.buffer);
  v.setUint32(0, max, true);
  const r = c.ioctl_buf(fd, BigInt(U.KVM_GET_SUPPORTED_CPUID), b);
  c.close(fd);
  if (r < 0) throw new Error("Cannot read KVM_GET_SUPPORTED_CPUID");
  let vendor: Host["vendor"] = "other", gbPages = false;
  for (let i = 0; i < v.getUint32(0, true); i++) {
    const e = U.CPUID2_HEADER + i * U.CPUID_ENTRY_SIZE;
    const fn = v.getUint32(e + U.CPUID_FUNCTION, true);
    // Leaf 0 EBX: "Auth" (0x68747541) or "Genu" (0x756e6547).
    if (fn === 0) {
      const ebx = v.getUint32(e + U.CPUID_EBX, true);
      vendor = ebx === 0x68747541 ? "amd" : ebx === 0x756e6547 ? "intel" : "other";
    }
    // 0x80000001 EDX[26]: Page1GB.
    if (fn === 0x80000001) gbPages = (v.getUint32(e + U.CPUID_EDX, true) & (1 << 26)) !== 0;
  }
  return { vendor, gbPages, pmu: enablePmu() };
}

/** `kvm.enable_pmu` ("Y"/"N"); a missing parameter means an old KVM with a vPMU. */
function enablePmu(): boolean {
  const c = libc();
  const fd = c.open(cString("/sys/module/kvm/parameters/enable_pmu"), U.O_CLOEXEC, 0);
  if (fd < 0) return true;
  const buf = new Uint8Array(8);
  const n = Number(c.read(fd, buf, 8n));
  c.close(fd);
  return n > 0 && buf[0] === 0x59; // "Y"
}

/** The config fields the KVM here cannot provide, each with the reason. */
export interface KvmMismatch {
  /** Why 1 GiB pages cannot be given to the guest here. */
  gbPages?: string;
  /** Why the config's vPMU cannot be given to the guest here. */
  pmu?: string;
}

/**
 * Whether KVM here has a vPMU at all (`kvm.enable_pmu`). Without one a PMU event filter
 * is inert: KVM reads it only when it programs a counter (arch/x86/kvm/pmu.c
 * `pmc_is_event_allowed()`), and no vCPU has counters then. Call only when
 * `kvmFactory.available()` is null.
 */
export function kvmHasVpmu(): boolean {
  host ??= readHost();
  return host.pmu;
}

/**
 * Which config fields the KVM here cannot provide faithfully (empty object: none). A
 * trace that never depends on a listed field still runs fine (most MMU traces do not
 * care about the vPMU), so runners skip by field: PMU traces on `pmu`, traces with 1 GiB
 * pages on `gbPages`. Call only when `kvmFactory.available()` is null.
 */
export function kvmConfigMismatch(config: Config): KvmMismatch {
  host ??= readHost();
  const out: KvmMismatch = {};
  if (config.gbPages && !host.gbPages) {
    out.gbPages = "kvm: no 1 GiB pages here (supported CPUID 0x80000001 EDX[26] clear)";
  }
  if (config.pmu.version > 0 && !host.pmu) out.pmu = "kvm: no vPMU here (kvm.enable_pmu=N)";
  else if (config.pmu.version > 0 && config.vendor !== host.vendor) {
    out.pmu =
      `kvm: the vPMU follows the host vendor (${host.vendor}), the config says ${config.vendor}`;
  }
  return out;
}
