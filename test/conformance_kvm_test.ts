/**
 * @module
 * The shared conformance suite on the real KVM (/dev/kvm). Skips print their reason:
 * the whole suite when /dev/kvm is unusable, a case whose ops the backend can never
 * run from userspace (fetches, aging, hardware events), a case that needs a machine
 * feature this kernel lacks, and the measured kvm_pvm-specific behaviours below (each
 * with a regression trace in corpus/regressions/).
 *
 * Paging and memslot cases do not depend on the vPMU: they run with the vPMU off when
 * this kernel has none, and with 1 GiB pages off when it has none (only the cases that
 * require 1 GiB pages are skipped then).
 */
import { kvmConfigMismatch, kvmFactory } from "../src/kvm/mod.ts";
import { pmuDefaults } from "../src/trace/config.ts";
import { mergeConfig } from "../src/trace/config.ts";
import type { Config } from "../src/trace/types.ts";
import type { ConformanceCase } from "./conformance/case.ts";
import { runConformance, type Skip } from "./conformance/runner.ts";

const usable = kvmFactory.available() === null;

function isPmu(c: ConformanceCase): boolean {
  return c.areas?.includes("pmu") ?? false;
}

function adaptConfig(c: ConformanceCase, config: Config): Config {
  const m = kvmConfigMismatch(config);
  const out = { ...config };
  if (!isPmu(c) && m.pmu !== undefined) out.pmu = pmuDefaults(config.vendor, 0);
  if (!c.requires?.includes("gbPages") && m.gbPages !== undefined) out.gbPages = false;
  return out;
}

const skip: Skip[] = [
  {
    reason: "this kernel has no vPMU (kvm.enable_pmu=N) or not this vendor's",
    cases: (c) =>
      usable && isPmu(c) && kvmConfigMismatch(mergeConfig(c.config ?? {})).pmu !== undefined,
  },
  {
    reason: "this kernel has no 1 GiB pages (supported CPUID 0x80000001 EDX[26] clear)",
    cases: (c) =>
      usable && (c.requires?.includes("gbPages") ?? false) &&
      kvmConfigMismatch(mergeConfig(c.config ?? {})).gbPages !== undefined,
  },
  {
    reason: "kvm_pvm: CR4.SMEP/SMAP can be set although CPUID lacks them " +
      "(corpus/regressions/kvm-pvm-cr4-smep-without-cpuid.json)",
    cases: ["mmu: setting CR4.SMEP without CPUID SMEP raises #GP and changes nothing"],
  },
  {
    reason: "kvm_pvm: the VM has no SMM address space, so slot ids >= 0x10000 are EINVAL " +
      "(corpus/regressions/kvm-pvm-no-smm-slots.json)",
    cases: ["memslot: a slot overlapping another in the same address space is refused with EEXIST"],
  },
];

runConformance(kvmFactory, { skip, adaptConfig });
