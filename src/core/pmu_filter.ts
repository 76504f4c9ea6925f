/**
 * @module
 * The PMU event filter as KVM v6.10 stores and consults it (`pmu.c`:
 * `kvm_vm_ioctl_set_pmu_event_filter`, `prepare_filter_lists`, `convert_to_masked_filter`,
 * `is_masked_filter_valid`, `filter_contains_match`, `is_gp_event_allowed`,
 * `is_fixed_event_allowed`; uAPI in `Documentation/virt/kvm/api.rst`; docs/kvm-facts.md C.7).
 *
 * Every entry is kept in the masked form: legacy entries become (event select, match =
 * umask, mask = 0xff); entries are sorted by (exclude, event select), so the includes
 * come first and the excludes after them, and a lookup binary-searches the event select
 * and walks both ways over the entries that share it.
 */
import type { Errno, FilterOp } from "../trace/types.ts";
import { FILTER_ALLOW, FILTER_DENY } from "../trace/types.ts";
import {
  FILTER_FLAG_MASKED_EVENTS,
  FILTER_FLAGS_VALID_MASK,
  FILTER_MAX_EVENTS,
  MASKED_ENTRY_EXCLUDE,
  MASKED_ENTRY_UMASK_MASK,
  MASKED_ENTRY_UMASK_MATCH,
} from "../x86/pmu.ts";

/** Event select bits 11:8 sort above 7:0 and the exclude flag above both (filter_sort_cmp). */
const SORT_EXCLUDE = 0x1000;
const EVENT12 = 0xfff;

/** A filter as installed (`struct kvm_x86_pmu_event_filter`). */
export interface PmuEventFilter {
  readonly action: number;
  readonly fixedCounterBitmap: number;
  readonly flags: number;
  /** Entries after conversion, sorted: key = exclude << 12 | event select (12 bits). */
  readonly key: Uint16Array;
  readonly umaskMatch: Uint8Array;
  readonly umaskMask: Uint8Array;
  readonly nrIncludes: number;
  readonly nevents: number;
}

/**
 * KVM_SET_PMU_EVENT_FILTER. `eventselEventHi` is the vendor's `EVENTSEL_EVENT` bits 35:32
 * (Intel 0, AMD 0xf): on Intel a legacy entry with bits 35:32 is dropped and a masked
 * entry with them is EINVAL. Returns the errno or the filter to install.
 */
export function preparePmuEventFilter(
  op: FilterOp,
  eventselEventHi: number,
): { errno: Errno } | PmuEventFilter {
  if (op.action !== FILTER_ALLOW && op.action !== FILTER_DENY) return { errno: "EINVAL" };
  if ((op.flags & ~FILTER_FLAGS_VALID_MASK) !== 0) return { errno: "EINVAL" };
  if (op.events.length > FILTER_MAX_EVENTS) return { errno: "E2BIG" };
  const masked = (op.flags & FILTER_FLAG_MASKED_EVENTS) !== 0;
  const eventselEvent = 0xffn | (BigInt(eventselEventHi) << 32n);
  const entries: bigint[] = [];
  if (!masked) {
    // convert_to_masked_filter: impossible entries are dropped, not rejected.
    const legal = eventselEvent | 0xff00n;
    for (const e of op.events) {
      if ((e & ~legal) !== 0n) continue;
      entries.push(e | MASKED_ENTRY_UMASK_MASK);
    }
  } else {
    const legal = eventselEvent | MASKED_ENTRY_UMASK_MASK | MASKED_ENTRY_UMASK_MATCH |
      MASKED_ENTRY_EXCLUDE;
    for (const e of op.events) {
      if ((e & ~legal) !== 0n) return { errno: "EINVAL" };
      entries.push(e);
    }
  }
  const n = entries.length;
  const decoded = entries.map((e) => ({
    key: (masked && (e & MASKED_ENTRY_EXCLUDE) !== 0n ? SORT_EXCLUDE : 0) |
      Number(e & 0xffn) | (Number((e >> 32n) & 0xfn) << 8),
    match: Number((e >> 8n) & 0xffn),
    mask: Number((e >> 56n) & 0xffn),
  }));
  decoded.sort((a, b) => a.key - b.key);
  const key = new Uint16Array(n);
  const umaskMatch = new Uint8Array(n);
  const umaskMask = new Uint8Array(n);
  let nrIncludes = n;
  for (let i = 0; i < n; i++) {
    const d = decoded[i]!;
    key[i] = d.key;
    umaskMatch[i] = d.match;
    umaskMask[i] = d.mask;
    if (nrIncludes === n && (d.key & SORT_EXCLUDE) !== 0) nrIncludes = i;
  }
  return {
    action: op.action,
    fixedCounterBitmap: op.fixed >>> 0,
    flags: op.flags,
    key,
    umaskMatch,
    umaskMask,
    nrIncludes,
    nevents: n,
  };
}

/**
 * `filter_contains_match()` over entries [start, end): bsearch on the event select, then
 * every neighbour with the same event select is tried against the guest umask.
 */
function containsMatch(
  f: PmuEventFilter,
  start: number,
  end: number,
  event12: number,
  umask: number,
): boolean {
  let lo = start;
  let hi = end;
  let index = -1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const k = f.key[mid]! & EVENT12;
    if (k === event12) {
      index = mid;
      break;
    }
    if (k < event12) lo = mid + 1;
    else hi = mid;
  }
  if (index < 0) return false;
  for (let i = index; i < end && (f.key[i]! & EVENT12) === event12; i++) {
    if ((umask & f.umaskMask[i]!) === f.umaskMatch[i]!) return true;
  }
  for (let i = index - 1; i >= start && (f.key[i]! & EVENT12) === event12; i--) {
    if ((umask & f.umaskMask[i]!) === f.umaskMatch[i]!) return true;
  }
  return false;
}

/**
 * `is_gp_event_allowed()` for a guest eventsel (two u32 halves); `eventselEventHi` is the
 * part of bits 35:32 that belongs to the event select (the vendor's EVENTSEL_EVENT).
 */
export function isGpEventAllowed(
  f: PmuEventFilter,
  selLo: number,
  selHi: number,
  eventselEventHi: number,
): boolean {
  const event12 = (selLo & 0xff) | ((selHi & eventselEventHi) << 8);
  const umask = (selLo >>> 8) & 0xff;
  if (
    containsMatch(f, 0, f.nrIncludes, event12, umask) &&
    !containsMatch(f, f.nrIncludes, f.nevents, event12, umask)
  ) {
    return f.action === FILTER_ALLOW;
  }
  return f.action === FILTER_DENY;
}

/** `is_fixed_event_allowed()`: the fixed-counter bitmap alone decides. */
export function isFixedEventAllowed(f: PmuEventFilter, fixedIdx: number): boolean {
  const bit = ((f.fixedCounterBitmap >>> fixedIdx) & 1) !== 0;
  if (f.action === FILTER_DENY && bit) return false;
  if (f.action === FILTER_ALLOW && !bit) return false;
  return true;
}

/** Audit: the entries are sorted and split as `prepare_filter_lists` leaves them. */
export function auditPmuEventFilter(f: PmuEventFilter): string[] {
  const out: string[] = [];
  for (let i = 1; i < f.nevents; i++) {
    if (f.key[i - 1]! > f.key[i]!) out.push(`pmu filter: entry ${i} is out of order`);
  }
  for (let i = 0; i < f.nevents; i++) {
    const exclude = (f.key[i]! & SORT_EXCLUDE) !== 0;
    if (exclude !== (i >= f.nrIncludes)) {
      out.push(`pmu filter: entry ${i} is on the wrong side of the include/exclude split`);
    }
  }
  return out;
}
