/**
 * @module
 * Generators of the PMU area: event selects near the reserved bits, counter writes near
 * the counter width (legacy sign-extending and full-width aliases), fixed-counter
 * control, global control/status/overflow MSRs, RDPMC with edge ECX values, event
 * filters of every shape (allow/deny, masked entries, AMD 12-bit selects, bits above the
 * event, E2BIG and bad flags), events that count toward overflow, and PMI reads.
 * MSR numbers are from `src/x86/pmu.ts` (docs/kvm-facts.md C.1).
 */
import type { Op } from "../../src/trace/types.ts";
import {
  FILTER_FLAG_MASKED_EVENTS,
  FILTER_FLAGS_VALID_MASK,
  FILTER_MAX_EVENTS,
  MASKED_ENTRY_EVENT_SELECT,
  MASKED_ENTRY_EXCLUDE,
  MASKED_ENTRY_UMASK_MASK,
  MASKED_ENTRY_UMASK_MATCH,
  MSR_AMD64_PERF_CNTR_GLOBAL_CTL,
  MSR_AMD64_PERF_CNTR_GLOBAL_STATUS,
  MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR,
  MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_SET,
  MSR_F15H_PERF_CTL0,
  MSR_F15H_PERF_CTR0,
  MSR_IA32_A_PMC0,
  MSR_IA32_FIXED_CTR0,
  MSR_IA32_FIXED_CTR_CTRL,
  MSR_IA32_PERF_GLOBAL_CTRL,
  MSR_IA32_PERF_GLOBAL_OVF_CTRL,
  MSR_IA32_PERF_GLOBAL_STATUS,
  MSR_IA32_PERFEVTSEL0,
  MSR_IA32_PMC0,
  MSR_K7_EVNTSEL0,
  MSR_K7_PERFCTR0,
} from "../../src/x86/pmu.ts";
import { FILTER_ALLOW, FILTER_DENY } from "../../src/trace/types.ts";
import type { Source } from "../model/source.ts";
import { between, chance, nearPower, pick, u64, weighted } from "./_pick.ts";
import type { World } from "../model/world.ts";

/** What a PMU MSR holds, so that its value can be aimed. */
type MsrKind = "eventsel" | "counter" | "fullcounter" | "fixedctr" | "fixedctrl" | "global";

/**
 * Events the filter tests use (docs/kvm-facts.md C.8): instructions retired 0xC0, branches
 * 0xC4 (Intel) / 0xC2 (AMD), cycles 0x3C, MEM_INST_RETIRED 0xD0/0x81, AMD LS_DISPATCH
 * 0x29, and 0x1C2 whose bits 11:8 only AMD sees.
 */
const INTEL_EVENTS: readonly (readonly [number, number])[] = [
  [0xc0, 0],
  [0xc4, 0],
  [0x3c, 0],
  [0xd0, 0x81],
  [0x2e, 0x41],
];
const AMD_EVENTS: readonly (readonly [number, number])[] = [
  [0xc0, 0],
  [0xc2, 0],
  [0x1c2, 0],
  [0x29, 1],
  [0x76, 0],
];

/**
 * The events KVM emulates (`kvm_pmu_eventsel`, docs/kvm-facts.md C.5): instructions retired and
 * branches retired, umask 0, in a filter entry's encoding (event select and umask).
 */
const INTEL_EMULATED: readonly bigint[] = [0xc0n, 0xc4n];
const AMD_EMULATED: readonly bigint[] = [0xc0n, 0xc2n];

function eventPair(src: Source, world: World): { event: number; umask: number } {
  if (world.events.length > 0 && chance(src, 60)) return pick(src, world.events);
  const table = world.config.vendor === "amd" ? AMD_EVENTS : INTEL_EVENTS;
  const [event, umask] = pick(src, table);
  return { event, umask };
}

function gpCount(world: World): number {
  return Math.max(world.config.pmu.gp, 1);
}

/** A PMU MSR (sometimes one past the last counter) and what it holds. */
function pickMsr(src: Source, world: World): { msr: number; kind: MsrKind; index: number } {
  const gp = gpCount(world);
  const i = chance(src, 10) ? gp : src.int(gp);
  if (world.config.vendor === "amd") {
    switch (weighted(src, [30, 30, 15, 15, 10])) {
      case 0:
        return { msr: MSR_K7_EVNTSEL0 + Math.min(i, 4), kind: "eventsel", index: i };
      case 1:
        return { msr: MSR_K7_PERFCTR0 + Math.min(i, 4), kind: "counter", index: i };
      case 2:
        return { msr: MSR_F15H_PERF_CTL0 + 2 * i, kind: "eventsel", index: i };
      case 3:
        return { msr: MSR_F15H_PERF_CTR0 + 2 * i, kind: "counter", index: i };
      default:
        return {
          msr: pick(src, [
            MSR_AMD64_PERF_CNTR_GLOBAL_CTL,
            MSR_AMD64_PERF_CNTR_GLOBAL_STATUS,
            MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_CLR,
            MSR_AMD64_PERF_CNTR_GLOBAL_STATUS_SET,
          ]),
          kind: "global",
          index: 0,
        };
    }
  }
  const fixed = Math.max(world.config.pmu.fixed, 1);
  const f = chance(src, 10) ? fixed : src.int(fixed);
  switch (weighted(src, [30, 20, 12, 12, 10, 16])) {
    case 0:
      return { msr: MSR_IA32_PERFEVTSEL0 + i, kind: "eventsel", index: i };
    case 1:
      return { msr: MSR_IA32_PMC0 + i, kind: "counter", index: i };
    case 2:
      return { msr: MSR_IA32_A_PMC0 + i, kind: "fullcounter", index: i };
    case 3:
      return { msr: MSR_IA32_FIXED_CTR0 + f, kind: "fixedctr", index: f };
    case 4:
      return { msr: MSR_IA32_FIXED_CTR_CTRL, kind: "fixedctrl", index: 0 };
    default:
      return {
        msr: pick(src, [
          MSR_IA32_PERF_GLOBAL_CTRL,
          MSR_IA32_PERF_GLOBAL_STATUS,
          MSR_IA32_PERF_GLOBAL_OVF_CTRL,
        ]),
        kind: "global",
        index: 0,
      };
  }
}

/** An event select with EN/USR/OS/INT and, sometimes, a reserved or odd bit. */
function eventsel(src: Source, world: World): bigint {
  const { event, umask } = eventPair(src, world);
  world.events.push({ event, umask });
  if (world.events.length > 8) world.events.shift();
  // AMD keeps event select bits 11:8 in PerfEvtSel 35:32 (docs/kvm-facts.md C.2).
  let v = BigInt(event & 0xff) | (BigInt(umask) << 8n) | (BigInt(event >> 8) << 32n);
  v |= 1n << 22n; // EN
  if (!chance(src, 30)) v |= 1n << 16n; // USR
  if (!chance(src, 30)) v |= 1n << 17n; // OS
  if (chance(src, 50)) v |= 1n << 20n; // INT
  if (chance(src, 10)) v &= ~(1n << 22n);
  // IN_TX is legal with TSX in guest CPUID: the filter must still match such events.
  if (world.config.pmu.tsx && chance(src, 20)) v |= 1n << 32n;
  // IN_TXCP (bit 33): legal on counter 2 only (SDM vol. 3B 20.3.6.5); the filter lookup
  // must mask it off like IN_TX (aa570a7481c3).
  if (world.config.pmu.tsx && chance(src, 15)) v |= 1n << 33n;
  if (chance(src, 12)) v |= 1n << BigInt(pick(src, [21, 32, 33, 35, 19, 40, 41, 63, 18, 23]));
  return v;
}

/** A counter value near an edge of `width` bits or of the legacy 32-bit write. */
function counterValue(src: Source, width: number): bigint {
  switch (weighted(src, [10, 30, 20, 10, 10, 10, 10])) {
    case 0:
      return BigInt(src.int(16));
    case 1:
      return (1n << BigInt(width)) - BigInt(1 + src.int(16));
    case 2:
      return nearPower(src, 31);
    case 3:
      return nearPower(src, 32);
    case 4:
      return nearPower(src, width);
    case 5:
      return 0xffff_ffff_ffff_ffffn;
    default:
      return u64(src);
  }
}

function gpMask(world: World): bigint {
  return (1n << BigInt(world.config.pmu.gp)) - 1n;
}

function fixedMask(world: World): bigint {
  return ((1n << BigInt(world.config.pmu.fixed)) - 1n) << 32n;
}

/** A value for `kind`, aimed at its edges. */
function msrValue(src: Source, world: World, kind: MsrKind): bigint {
  const pmu = world.config.pmu;
  switch (kind) {
    case "eventsel":
      return eventsel(src, world);
    case "counter":
    case "fullcounter":
      return counterValue(src, pmu.gpWidth);
    case "fixedctr":
      return counterValue(src, pmu.fixedWidth);
    case "fixedctrl": {
      let v = 0n;
      for (let i = 0; i < Math.max(pmu.fixed, 1); i++) {
        v |= BigInt(pick(src, [0xb, 3, 1, 2, 8, 0, 4])) << BigInt(4 * i);
      }
      if (chance(src, 10)) v |= 1n << BigInt(between(src, 4 * pmu.fixed, 63));
      return v;
    }
    case "global": {
      const all = gpMask(world) | fixedMask(world);
      const k = weighted(src, [50, 20, 15, 15]);
      if (k === 0) return all;
      if (k === 1) return all & u64(src);
      if (k === 2) return all | (1n << BigInt(pick(src, [pmu.gp, 32 + pmu.fixed, 62, 63, 31])));
      return u64(src);
    }
  }
}

/** WRMSR to a PMU MSR. */
export function genWrmsr(src: Source, world: World, out: Op[]): void {
  const { msr, kind, index } = pickMsr(src, world);
  let value = msrValue(src, world, kind);
  // Now and then (a late decision) an event select is aimed at an entry of the installed
  // filter, with the TSX qualifiers its lookup must ignore (`filteredSelect`).
  const f = world.filter;
  if (kind === "eventsel" && f !== null && f.length > 0 && chance(world.late, 30)) {
    const late = world.late;
    const sel = filteredSelect(late, world, pick(late, f), index);
    // The mode, enable and INT bits stay as drawn.
    value = (value & ~0xf_0000_ffffn) | sel.value;
  }
  out.push({ op: "wrmsr", msr, value });
}

/** RDMSR of a PMU MSR (sometimes a non-PMU one). */
export function genRdmsr(src: Source, world: World, out: Op[]): void {
  const msr = chance(src, 5)
    ? pick(src, [0x10, 0x345, 0xc0010008, 0x1a0])
    : pickMsr(src, world).msr;
  out.push({ op: "rdmsr", msr });
}

/** RDPMC with an edge ECX (docs/kvm-facts.md C.6), from user or kernel mode. */
export function genRdpmc(src: Source, world: World, out: Op[]): void {
  const pmu = world.config.pmu;
  const i = src.int(Math.max(pmu.gp, 1));
  const ecx = pick(src, [
    i,
    0x4000_0000 + src.int(Math.max(pmu.fixed, 1)),
    pmu.gp,
    0x4000_0000 + pmu.fixed,
    0x8000_0000 + i,
    0xc000_0000 + i,
    0x2000_0000 + i,
    0x0001_0000 + i,
    0x1_0000 + src.int(3),
    0xffff_ffff,
  ]);
  out.push({ op: "rdpmc", ecx, user: chance(src, 40) });
}

/** A filter entry: plain, with extra bits, AMD 12-bit, masked, or all ones. */
function filterEntry(src: Source, world: World, masked: boolean): bigint {
  const { event, umask } = eventPair(src, world);
  const select = BigInt(event & 0xff) | (BigInt(event >> 8) << 32n);
  if (masked) {
    // KVM_PMU_ENCODE_MASKED_ENTRY: mask 63:56, exclude 55, match 15:8 (docs/kvm-facts.md C.7).
    const mask = BigInt(pick(src, [0xff, 0x00, 0x80, 0x03]));
    const exclude = chance(src, 25) ? 1n << 55n : 0n;
    let v = select | (BigInt(umask) << 8n) | exclude | (mask << 56n);
    if (chance(src, 8)) v |= 1n << 40n; // outside every field: EINVAL
    return v;
  }
  switch (weighted(src, [70, 10, 10, 10])) {
    case 0:
      return select | (BigInt(umask) << 8n);
    case 1:
      return select | (BigInt(umask) << 8n) | (1n << 32n); // IN_TX: dropped, not matched
    case 2:
      return 0xffff_ffff_ffff_ffffn;
    default:
      return u64(src);
  }
}

/**
 * KVM_SET_PMU_EVENT_FILTER of any shape; now and then (a late decision) followed by a
 * counter programmed with one of its entries ({@linkcode genFilteredCount}).
 */
export function genFilter(src: Source, world: World, out: Op[]): void {
  const action = pick(src, [1, 0, 2, 0xffff_ffff]);
  const flags = pick(src, [0, 0, 0, 1, 2]);
  const fixed = pick(src, [0, 1, 2, 4, 7, 0xffff_ffff]);
  const n = chance(src, 3) ? 301 : between(src, 0, 4);
  const events: bigint[] = [];
  for (let i = 0; i < n; i++) events.push(filterEntry(src, world, flags === 1));
  out.push({ op: "filter", action, flags, fixed, events });
  const kept = keptEntries(world, action, flags, events);
  if (kept !== null) world.filter = kept;
  if (world.filter !== null && world.filter.length > 0 && chance(world.late, 70)) {
    genFilteredCount(world.late, world, out, world.filter);
  }
}

/**
 * The entries KVM keeps of a filter (docs/kvm-facts.md C.7), or null when it rejects the op: a bad
 * action or flag is EINVAL, more than 300 entries E2BIG, a masked entry with a bit outside
 * its fields EINVAL; a legacy entry with a bit outside event select and umask is dropped.
 * The event select is bits 7:0, and on AMD also 35:32.
 */
function keptEntries(
  world: World,
  action: number,
  flags: number,
  events: readonly bigint[],
): bigint[] | null {
  if (action !== FILTER_ALLOW && action !== FILTER_DENY) return null;
  if ((flags & ~FILTER_FLAGS_VALID_MASK) !== 0 || events.length > FILTER_MAX_EVENTS) return null;
  const select = world.config.vendor === "amd" ? MASKED_ENTRY_EVENT_SELECT : 0xffn;
  if ((flags & FILTER_FLAG_MASKED_EVENTS) === 0) {
    return events.filter((e) => (e & ~(select | MASKED_ENTRY_UMASK_MATCH)) === 0n);
  }
  const legal = select | MASKED_ENTRY_UMASK_MATCH | MASKED_ENTRY_EXCLUDE |
    MASKED_ENTRY_UMASK_MASK;
  return events.some((e) => (e & ~legal) !== 0n) ? null : [...events];
}

/**
 * The event select, umask and TSX qualifier bits of an eventsel of GP counter `i` aimed at
 * filter entry `e` (legacy or masked: event select 7:0, on AMD 11:8 from 35:32; the umask
 * or a masked entry's match in 15:8): sometimes one umask bit off, a near miss of a
 * masked entry; with TSX in guest CPUID often IN_TXCP (bit 33, legal on counter 2 only)
 * and IN_TX (bit 32), SDM vol. 3B 20.3.6.5, which KVM's lookup must ignore: it keys on the
 * Intel eventsel's bits 15:0 only (docs/kvm-facts.md C.7, aa570a7481c3). The pair joins
 * `world.events`, so that later events are of its kind.
 */
function filteredSelect(
  src: Source,
  world: World,
  e: bigint,
  i: number,
): { value: bigint; event: number; umask: number } {
  const amd = world.config.vendor === "amd";
  const event = Number(e & 0xffn) | (amd ? Number((e >> 32n) & 0xfn) << 8 : 0);
  let umask = Number((e >> 8n) & 0xffn);
  if (chance(src, 20)) umask ^= 1 << src.int(8);
  let value = BigInt(event & 0xff) | (BigInt(umask) << 8n) | (BigInt(event >> 8) << 32n);
  const tsx = !amd && world.config.pmu.tsx;
  const txcp = tsx && i === 2 && !chance(src, 20);
  if (txcp) value |= 1n << 33n;
  // IN_TX confines counting to transactions (none here): rarely with IN_TXCP.
  if (tsx && chance(src, txcp ? 10 : 40)) value |= 1n << 32n;
  world.events.push({ event, umask });
  if (world.events.length > 8) world.events.shift();
  return { value, event, umask };
}

/** The MSRs of GP counter `i`: its event select and its counter. */
function gpMsrs(world: World, i: number): { sel: number; ctr: number } {
  if (world.config.vendor === "amd") {
    // K7 PerfEvtSel0..3/PerfCtr0..3; counters 4 and 5 exist only as the F15H pairs.
    return i < 4
      ? { sel: MSR_K7_EVNTSEL0 + i, ctr: MSR_K7_PERFCTR0 + i }
      : { sel: MSR_F15H_PERF_CTL0 + 2 * i, ctr: MSR_F15H_PERF_CTR0 + 2 * i };
  }
  return { sel: MSR_IA32_PERFEVTSEL0 + i, ctr: MSR_IA32_PMC0 + i };
}

/**
 * After a filter: a GP counter programmed with one of the installed filter's `entries`
 * ({@linkcode filteredSelect}: with TSX in guest CPUID mostly counter 2 with IN_TXCP),
 * counting in both modes, then events of that kind and a read of the counter, so that the
 * filter's decision on exactly its own entries shows in the count.
 */
function genFilteredCount(src: Source, world: World, out: Op[], entries: bigint[]): void {
  const pmu = world.config.pmu;
  const amd = world.config.vendor === "amd";
  // IN_TXCP is legal on counter 2 only: aim there when the guest has it.
  const i = !amd && pmu.tsx && pmu.gp > 2 && !chance(src, 30) ? 2 : src.int(gpCount(world));
  // Mostly an entry whose events the hardware counts: KVM counts the two events it
  // emulates through kvm_pmu_trigger_event instead (docs/kvm-facts.md C.5), which never matches
  // an eventsel with IN_TX or IN_TXCP (a known deviation, `trigger-event-match-in-tx`).
  const emulated = amd ? AMD_EMULATED : INTEL_EMULATED;
  const hardware = entries.filter((e) => !emulated.includes(e & 0xf_0000_ffffn));
  const e = pick(src, hardware.length > 0 && !chance(src, 20) ? hardware : entries);
  const { value, event, umask } = filteredSelect(src, world, e, i);
  const { sel, ctr } = gpMsrs(world, i);
  // EN, USR, OS: the events count in either mode.
  out.push({ op: "wrmsr", msr: sel, value: value | (1n << 22n) | (1n << 16n) | (1n << 17n) });
  // The counter's global enable (v2 and later) may be clear: at RESET in the core, or
  // cleared by an earlier step.
  if (pmu.version >= 2 && !chance(src, 15)) {
    const msr = amd ? MSR_AMD64_PERF_CNTR_GLOBAL_CTL : MSR_IA32_PERF_GLOBAL_CTRL;
    out.push({ op: "wrmsr", msr, value: gpMask(world) | fixedMask(world) });
  }
  const count = pick(src, [16, 1, 100]);
  out.push({ op: "events", event, umask, count, user: chance(src, 50) });
  if (chance(src, 50)) out.push({ op: "rdmsr", msr: ctr });
  else out.push({ op: "rdpmc", ecx: i, user: false });
}

/** Events happen: a few, or enough to carry a counter near its width over. */
export function genEvents(src: Source, world: World, out: Op[]): void {
  const { event, umask } = eventPair(src, world);
  const count = pick(src, [1, 2, 16, 100, 0x8000_0000, 0xffff_ffff, 0]);
  out.push({ op: "events", event, umask, count, user: chance(src, 40) });
  if (chance(src, 40)) out.push({ op: "pmis" });
}

/** PMIs since the last read. */
export function genPmis(_src: Source, _world: World, out: Op[]): void {
  out.push({ op: "pmis" });
}
