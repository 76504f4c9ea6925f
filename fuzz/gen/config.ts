/**
 * @module
 * The config generator: vendor, vPMU version and shape, MAXPHYADDR, 1 GiB pages,
 * control bits, the slot-zap quirk, `mmioGenBits` (often small, so that memslot
 * churn reaches MMIO generation wraparound within a trace) and, as a late decision, the
 * manual dirty-log protect cap. Choice 0 everywhere gives the default config.
 */
import { defaultConfig } from "../../src/trace/config.ts";
import type { Config, PmuConfig } from "../../src/trace/types.ts";
import type { Source } from "../model/source.ts";
import { chance, pick, weighted } from "./_pick.ts";

/** Options of {@linkcode genConfig}. */
export interface ConfigConstraints {
  /** Use exactly this config (e.g. the one the real KVM here supports); no fuzzing. */
  fixed?: Config;
}

/** MAXPHYADDR values worth testing: the default first, then the reserved-bit edges. */
const MAX_PHY_ADDRS = [46, 36, 39, 40, 48, 52] as const;
/** Small generation widths reach wraparound after a few dozen memslot updates. */
const MMIO_GEN_BITS = [19, 4, 5, 6, 8, 12] as const;

/** A config drawn from `src`. */
export function genConfig(src: Source, constraints: ConfigConstraints = {}): Config {
  if (constraints.fixed !== undefined) return structuredClone(constraints.fixed);
  const c = defaultConfig();
  if (chance(src, 35)) c.vendor = "amd";
  c.maxPhyAddr = pick(src, MAX_PHY_ADDRS);
  c.gbPages = !chance(src, 25);
  c.features.smep = !chance(src, 20);
  c.features.smap = !chance(src, 20);
  c.cr0.wp = !chance(src, 25);
  c.cr4.smep = c.features.smep && chance(src, 25);
  c.cr4.smap = c.features.smap && chance(src, 25);
  c.cr4.pce = chance(src, 30);
  c.efer.nx = !chance(src, 20);
  c.rflags.ac = chance(src, 20);
  c.quirks.slotZapAll = !chance(src, 40);
  c.mmioGenBits = MMIO_GEN_BITS[weighted(src, [4, 3, 2, 2, 1, 1])]!;
  c.pmu = genPmu(src, c.vendor);
  return c;
}

/**
 * KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 (api.rst 7.18) for `c`: GET only reports and
 * `dirtyclear` clears and re-protects; sometimes with every bitmap initially set. A late
 * decision (`generate.ts` `lateRng`), drawn after the prologue; nothing the prologue
 * emits depends on it.
 */
export function genDirtyLogConfig(src: Source, c: Config): void {
  c.dirtyLog.manualProtect = chance(src, 30);
  c.dirtyLog.initiallySet = c.dirtyLog.manualProtect && chance(src, 40);
}

function genPmu(src: Source, vendor: Config["vendor"]): PmuConfig {
  const version = ([2, 1, 0] as const)[weighted(src, [7, 2, 1])]!;
  if (vendor === "amd") {
    const gp = version === 0 ? 0 : version === 2 ? 6 : pick(src, [4, 6]);
    return {
      version,
      gp,
      fixed: 0,
      gpWidth: 48,
      fixedWidth: 48,
      fullWidthWrites: true,
      tsx: false,
    };
  }
  const gp = version === 0 ? 0 : pick(src, [4, 8, 1, 2, 3, 0]);
  const fixed = version === 2 ? pick(src, [3, 1, 2, 0]) : 0;
  const widths = [48, 32, 40, 47, 33] as const;
  return {
    version,
    gp,
    fixed,
    gpWidth: pick(src, widths),
    fixedWidth: pick(src, widths),
    fullWidthWrites: !chance(src, 30),
    // HLE/RTM in guest CPUID un-reserves IN_TX (filter-mask-in-tx needs it).
    tsx: chance(src, 30),
  };
}
