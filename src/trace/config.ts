/**
 * @module
 * Config defaults and merging of a partial config from a trace file.
 */
import type { Config, ConfigInput } from "./types.ts";

/**
 * The default machine: an Intel guest with 4-level paging, MAXPHYADDR 46, 1 GiB pages,
 * CR0.WP and EFER.NXE on, SMEP/SMAP available but off, and a version-2 vPMU with 4 GP
 * and 3 fixed 48-bit counters (what KVM v6.10 offers on a recent Intel host).
 */
export function defaultConfig(): Config {
  return {
    vendor: "intel",
    maxPhyAddr: 46,
    gbPages: true,
    smm: true,
    features: { smep: true, smap: true },
    cr0: { wp: true },
    cr4: { smep: false, smap: false, pce: false },
    efer: { nx: true },
    rflags: { ac: false },
    pmu: {
      version: 2,
      gp: 4,
      fixed: 3,
      gpWidth: 48,
      fixedWidth: 48,
      fullWidthWrites: true,
      tsx: false,
    },
    quirks: { slotZapAll: true },
    dirtyLog: { manualProtect: false, initiallySet: false },
    mmioGenBits: 19,
  };
}

/**
 * The config that matches the KVM on this machine kind (kvm_pvm; docs/measurements.md):
 * an AMD guest, MAXPHYADDR 48, no 1 GiB pages, no vPMU. Measured on kvm_pvm (see
 * corpus/regressions/kvm-pvm-*.json): the VM has no SMM address space, and CR4.SMEP
 * and CR4.SMAP can be set (and are enforced) although CPUID does not list them, so for
 * `ctl` they behave as present features.
 */
export function kvmPvmConfig(): Config {
  return mergeConfig({
    vendor: "amd",
    maxPhyAddr: 48,
    gbPages: false,
    smm: false,
    features: { smep: true, smap: true },
    pmu: { version: 0 },
  });
}

/**
 * The PMU defaults for a vendor and version, so that a trace may say only
 * `"pmu": {"version": 0}` or `"vendor": "amd"` (docs/trace-format.md): no vPMU has no
 * counters; Intel version 1 has no fixed counters; AMD has 48-bit counters, no fixed
 * counters, the 4 K7 counters in version 1 and 6 (PerfCtrExtCore) in version 2.
 */
export function pmuDefaults(vendor: Config["vendor"], version: 0 | 1 | 2): Config["pmu"] {
  const base = defaultConfig().pmu;
  if (version === 0) return { ...base, version, gp: 0, fixed: 0 };
  if (vendor === "amd") {
    return { ...base, version, gp: version === 1 ? 4 : 6, fixed: 0, gpWidth: 48, fixedWidth: 48 };
  }
  return { ...base, version, fixed: version === 1 ? 0 : base.fixed };
}

/** Fills a partial config with defaults (one level deep, like the trace format). */
export function mergeConfig(input: ConfigInput = {}): Config {
  const base = defaultConfig();
  base.vendor = input.vendor ?? base.vendor;
  base.pmu = pmuDefaults(base.vendor, input.pmu?.version ?? base.pmu.version);
  const out = { ...base } as Record<string, unknown>;
  for (const [key, value] of Object.entries(input)) {
    const def = (base as unknown as Record<string, unknown>)[key];
    if (def !== null && typeof def === "object" && value !== null && typeof value === "object") {
      out[key] = { ...def, ...value };
    } else if (value !== undefined) {
      out[key] = value;
    }
  }
  return out as unknown as Config;
}
