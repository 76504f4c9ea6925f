/**
 * @module
 * The op table: one declaration per op kind, and everything the trace layer knows about
 * ops is generic code over it. Each entry gives
 *
 * - `area`: which part of KVM the op exercises (a finding's area, `--areas`);
 * - `fields`: each field's codec (hex 64-bit value, integer, enum, boolean, flags, list),
 *   which fixes its TypeScript type, its range rule and its JSON and text forms, and
 *   whether it may be left out (a default, or optional);
 * - `text`: the one-line syntax, item by item (positional tokens, `key=value` options,
 *   words, bare tokens);
 * - `check` and `rules`: the value rules, in the order they are checked (the first
 *   broken one is reported);
 * - `simplify`: the value passes the minimizer tries, most promising first.
 *
 * The op types ({@linkcode Op}, {@linkcode SlotOp}, ...), the JSON reader (`parse.ts`)
 * and writer (`json.ts`), the text form (`text.ts`), the validation ({@linkcode checkOp}),
 * an op's area ({@linkcode opArea}) and the minimizer's value passes
 * ({@linkcode simplerOps}) all read this table. A new op is one entry here (and its
 * meaning in each backend); CONTRIBUTING.md says the rest.
 */
import { hex } from "./_hex.ts";
import {
  bool,
  clearBits,
  clearMask,
  dropEach,
  dropOneOf,
  enumOf,
  field,
  type FieldSpec,
  firstOnly,
  flags,
  int,
  lowerCount,
  namedU32,
  numberOf,
  optional,
  type Problem,
  rule,
  type Simplifier,
  type TextItem,
  toEmpty,
  toFalse,
  toValue,
  u64,
  u64List,
} from "./_fields.ts";

export type { Codec, FieldSpec, JsonRead, Problem, Simplifier, TextItem } from "./_fields.ts";

/**
 * The area of an op and of a finding: which part of KVM it exercises (the MMU and
 * guest paging, memslots and dirty logging, the vPMU).
 */
export type Area = "mmu" | "memslot" | "pmu";

/** Every area, in the order the CLI (`--areas`) and the dashboard list them. */
export const AREAS: readonly Area[] = ["mmu", "memslot", "pmu"];

/** Guest pages are 4 KiB; an op never crosses one (docs/trace-format.md). */
export const PAGE_SIZE = 4096;
/** Largest u32 (uAPI `slot`, MSR index, RDPMC ECX, filter fields). */
export const U32_MAX = 0xffff_ffff;
/**
 * Direct-map loads and stores take a gpa below 2^52, the architectural MAXPHYADDR limit
 * (SDM vol. 3A 4.1.4).
 */
export const GPA_LIMIT = 1n << 52n;
/** A memslot may hold up to 2^40 pages (4 PiB): room for huge layouts, still a safe integer. */
export const SLOT_PAGES_MAX = 2 ** 40;
/** `discard` and `age` cover at most 2^20 pages (4 GiB) so that one op stays cheap. */
export const RANGE_PAGES_MAX = 2 ** 20;
/**
 * At most 1000 filter events per op. KVM itself rejects more than
 * KVM_PMU_EVENT_FILTER_MAX_EVENTS = 300 with E2BIG (arch/x86/kvm/pmu.c), so the format
 * leaves room to reach that path while keeping one op bounded.
 */
export const FILTER_EVENTS_MAX = 1000;
/**
 * AMD event selects have 12 bits: EventSelect[11:8] sit in PerfEvtSel bits 35:32 (APM
 * vol. 2 13.2.1).
 */
export const EVENT_MAX = 0xfff;
/** Unit masks have 8 bits (SDM vol. 3B 20.2.1.1; APM vol. 2 13.2.1). */
export const UMASK_MAX = 0xff;

/** KVM_PMU_EVENT_ALLOW (api.rst): only the listed events may count. */
export const FILTER_ALLOW = 0;
/** KVM_PMU_EVENT_DENY (api.rst): the listed events may not count. */
export const FILTER_DENY = 1;

/** Access sizes of guest loads and stores, in bytes. */
export const SIZES = [1, 2, 4, 8] as const;
/** Access sizes of guest loads and stores. */
export type Size = typeof SIZES[number];
/** What an `access` does: a load, a store or an instruction fetch. */
export const ACCESS_KINDS = ["read", "write", "fetch"] as const;
/** What an `access` does: a load, a store or an instruction fetch. */
export type AccessKind = typeof ACCESS_KINDS[number];
/** Memslot flags in canonical order: KVM_MEM_LOG_DIRTY_PAGES (`log`), KVM_MEM_READONLY (`ro`). */
export const SLOT_FLAGS = ["log", "ro"] as const;
/** Memslot flags: KVM_MEM_LOG_DIRTY_PAGES (`log`) and KVM_MEM_READONLY (`ro`). */
export type SlotFlag = typeof SLOT_FLAGS[number];
/** `ctl` fields in canonical order. */
export const CTL_FIELDS = ["wp", "smep", "smap", "nx", "ac", "pce"] as const;
/** A `ctl` field. */
export type CtlField = typeof CTL_FIELDS[number];

// ------------------------------------------------------------------------ the op shape

/** The fields of an op kind, by name. */
export type Fields = { readonly [name: string]: FieldSpec<unknown> };

/** The value type of a field declaration (`FieldSpec<bigint>` holds a `bigint`). */
export type ValueOf<S> = S extends FieldSpec<infer T> ? T : never;
/** An intersection of object types as one object type (for readable hovers and docs). */
export type Flat<T> = { [K in keyof T]: T[K] } & unknown;

/** The op object a field list describes: `{op: kind}`, then each field (optional ones may be absent). */
export type Shape<K extends string, F> = Flat<
  & { op: K }
  & { -readonly [N in keyof F as F[N] extends { optional: true } ? never : N]: ValueOf<F[N]> }
  & { -readonly [N in keyof F as F[N] extends { optional: true } ? N : never]?: ValueOf<F[N]> }
>;

/** A rule over a whole op (a cross-field rule), checked where {@linkcode OpSpec.check} lists it. */
export type OpRule<O> = (op: O) => Problem | undefined;

/** One op kind's declaration (see the module doc). */
export interface OpSpec<K extends string, F extends Fields> {
  /** The kind, the `op` field of the JSON form and the first word of the text form. */
  readonly kind: K;
  /** Which part of KVM the op exercises. */
  readonly area: Area;
  /** The fields, in the order the op object holds them. */
  readonly fields: F;
  /** The text syntax after the kind, in the order the text form writes it. */
  readonly text: readonly TextItem<keyof F & string, Shape<K, F>>[];
  /** The JSON fields in the order `opToJson` writes them (default: `fields` order). */
  readonly json?: readonly (keyof F & string)[];
  /**
   * The order the JSON reader reads (and type-checks) the fields in, which decides which
   * type error it reports first (default: the `json` order).
   */
  readonly jsonRead?: readonly (keyof F & string)[];
  /**
   * The value rules in the order they are checked: a field name stands for that field's
   * own rule (its codec's range), a function for a rule over the op. Default: every
   * field's rule in `fields` order, then `rules`.
   */
  readonly check?: readonly ((keyof F & string) | OpRule<Shape<K, F>>)[];
  /** Rules over the whole op, checked after the fields' (unless `check` orders them). */
  readonly rules?: readonly OpRule<Shape<K, F>>[];
  /** The minimizer's value passes for this kind, most promising first. */
  readonly simplify?: readonly Simplifier<Shape<K, F>>[];
}

/** Declares one op kind: `fields` fixes the op's type, the rest is checked against it. */
function defineOp<const K extends string, const F extends Fields>(
  spec: OpSpec<K, F> & { readonly fields: F },
): OpSpec<K, F> {
  return spec;
}

// ---------------------------------------------------------------- cross-field rules

/** A load or store of `size` bytes at the field's address must stay in one 4 KiB page. */
function inPage<F extends string>(
  name: F,
): OpRule<{ [N in F]: bigint } & { size: number }> {
  return (op) => {
    const address = op[name], bytes = op.size;
    const offset = Number(address & BigInt(PAGE_SIZE - 1));
    if (address >= 0n && offset + bytes <= PAGE_SIZE) return undefined;
    return rule(
      name,
      `crosses a page boundary: offset ${hex(offset)} + size ${bytes} > ${PAGE_SIZE}`,
    );
  };
}

/** An access has a `value` exactly when it is a store. */
function valueIffWrite(op: { kind: AccessKind; value?: bigint }): Problem | undefined {
  if (op.kind === "write" && op.value === undefined) {
    return {
      field: "value",
      detail: 'is missing: an access of kind "write" needs one',
      error: TypeError,
    };
  }
  if (op.kind !== "write" && op.value !== undefined) {
    return {
      field: "value",
      detail: 'is not allowed: only an access of kind "write" has a value',
      error: TypeError,
    };
  }
  return undefined;
}

/** A `ctl` sets at least one control bit. */
function someCtlField(op: { [F in CtlField]?: boolean }): Problem | undefined {
  return CTL_FIELDS.some((f) => op[f] !== undefined) ? undefined : {
    detail: `ctl needs at least one of ${CTL_FIELDS.join(", ")}`,
    error: TypeError,
  };
}

// -------------------------------------------------------------- paging-aware passes

/** Bits worth clearing one by one in a written value: attributes and high bits. */
const CLEAR_BITS: readonly bigint[] = [
  0n,
  1n,
  2n,
  3n,
  4n,
  5n,
  6n,
  7n,
  8n,
  9n,
  10n,
  11n,
  63n,
  62n,
  52n,
  51n,
  48n,
  47n,
  46n,
  40n,
  39n,
  36n,
  35n,
  33n,
  32n,
  31n,
  23n,
  22n,
  21n,
  20n,
  19n,
  18n,
  17n,
  16n,
  13n,
];

/** The frame bits of a 4-level paging entry, 51:12 (SDM vol. 3A tables 4-15..4-20). */
const FRAME = 0x000f_ffff_ffff_f000n;
/** A fetch or store made a load (a store's value goes). */
function toLoad<O extends { kind: AccessKind; value?: bigint }>(op: O): O[] {
  if (op.kind === "read") return [];
  const { value: _value, ...rest } = op;
  return [{ ...rest, kind: "read" } as unknown as O];
}

/**
 * The same top-level entries with the lower indexes (and the offset) cleared: the walk
 * keeps its upper path and reuses entries the trace already wrote lower down.
 */
function toLowerIndexes<O extends { gva: bigint }>(op: O): O[] {
  const out: O[] = [];
  for (const bits of [39n, 30n, 21n, 12n]) {
    const low = op.gva & ((1n << bits) - 1n);
    if (low !== 0n && op.gva - low !== 0n) out.push({ ...op, gva: op.gva - low });
  }
  return out;
}

/** A load at the start of its page. */
function toPageStart<O extends { gpa: bigint }>(op: O): O[] {
  return (op.gpa & 0xfffn) !== 0n ? [{ ...op, gpa: op.gpa & ~0xfffn }] : [];
}

// -------------------------------------------------------------------------- the table

const id = () => field(int({ max: U32_MAX }));
const user = () => field(bool(), { default: false });
const size = () => field(numberOf(SIZES), { default: 8, jsonRequired: true });
const rangePages = () => field(int({ min: 1, max: RANGE_PAGES_MAX }));

const slot = defineOp({
  kind: "slot",
  area: "memslot",
  fields: {
    /** The uAPI `slot` field: address space in bits 31:16, slot id in 15:0. */
    id: id(),
    /** First guest-physical address; 4 KiB aligned for KVM to accept it. */
    gpa: field(u64()),
    /** Size in 4 KiB pages (at most 2^40 in the format; KVM takes up to 2^31 - 1); 0 deletes. */
    pages: field(int({ max: SLOT_PAGES_MAX })),
    /** Host virtual address of the first page (`userspace_addr`). */
    hva: field(u64()),
    /** The memslot flags, each at most once, in the order `log`, `ro`. */
    flags: field(flags(SLOT_FLAGS), { default: [] }),
  },
  text: [{ pos: "id" }, { key: "gpa" }, { key: "pages" }, { key: "hva" }, { words: "flags" }],
  simplify: [toEmpty("flags")],
});

const write = defineOp({
  kind: "write",
  area: "mmu",
  fields: {
    /** Guest-physical address, below 2^52. */
    gpa: field(u64({ below: GPA_LIMIT })),
    /** Bytes stored (default 8 in text; JSON always has it). */
    size: size(),
    /** The stored value; its low `size` bytes are stored, little-endian. */
    value: field(u64()),
  },
  text: [{ pos: "gpa" }, { pos: "value" }, { key: "size" }],
  check: ["gpa", "size", inPage("gpa"), "value"],
  // No large-leaf or widening variants: they grow the value in the reducer's order
  // (fuzz/reduce/reduce.ts); the paging pass makes large leaves where the walk allows them.
  simplify: [clearBits("value", CLEAR_BITS)],
});

const read = defineOp({
  kind: "read",
  area: "mmu",
  fields: {
    /** Guest-physical address, below 2^52. */
    gpa: field(u64({ below: GPA_LIMIT })),
    /** Bytes loaded (default 8 in text; JSON always has it). */
    size: size(),
  },
  text: [{ pos: "gpa" }, { key: "size" }],
  rules: [inPage("gpa")],
  simplify: [toPageStart],
});

const access = defineOp({
  kind: "access",
  area: "mmu",
  fields: {
    /** Linear address (a non-canonical one #GPs). */
    gva: field(u64()),
    /** Load, store or instruction fetch. */
    kind: field(enumOf(ACCESS_KINDS, { read: "r", write: "w", fetch: "x" })),
    /** From CPL 3 (true) or CPL 0. */
    user: user(),
    /** Bytes accessed (default 8). */
    size: field(numberOf(SIZES), { default: 8, jsonOmitDefault: true }),
    /** The stored value; present exactly when `kind` is `"write"`. */
    value: optional(u64()),
  },
  text: [
    { pos: "kind" },
    { pos: "gva" },
    { pos: "value", when: (op) => op.kind === "write" },
    { word: "user" },
    { key: "size" },
  ],
  json: ["gva", "kind", "value", "user", "size"],
  jsonRead: ["value", "gva", "kind", "user", "size"],
  check: ["gva", "size", inPage("gva"), "kind", valueIffWrite, "value"],
  simplify: [
    toFalse("user"),
    toLoad,
    // A store of a PTE through a mapping of its table: its value to 0, its frame to 0,
    // then its bits one at a time.
    toValue("value", 0n),
    clearMask("value", FRAME),
    clearBits("value", CLEAR_BITS),
    // Linear address 0: with a self-referencing entry 0 it walks the tables already
    // written, so the entries another gva needed can go.
    toValue("gva", 0n),
    toLowerIndexes,
  ],
});

const invlpg = defineOp({
  kind: "invlpg",
  area: "mmu",
  fields: {
    /** The linear address whose translations are invalidated. */
    gva: field(u64()),
  },
  text: [{ pos: "gva" }],
});

const cr3 = defineOp({
  kind: "cr3",
  area: "mmu",
  fields: {
    /** The new CR3 value: the root table's address in bits 51:12 (bits at or above MAXPHYADDR #GP). */
    gpa: field(u64()),
  },
  text: [{ pos: "gpa" }],
});

const ctlBit = () => optional(bool());

const ctl = defineOp({
  kind: "ctl",
  area: "mmu",
  fields: {
    /** CR0.WP: supervisor writes honour read-only entries. */
    wp: ctlBit(),
    /** CR4.SMEP: supervisor fetches from user pages fault (#GP without the feature). */
    smep: ctlBit(),
    /** CR4.SMAP: supervisor data accesses to user pages fault unless EFLAGS.AC (#GP without the feature). */
    smap: ctlBit(),
    /** EFER.NXE: the NX bit of paging entries takes effect. */
    nx: ctlBit(),
    /** EFLAGS.AC: suspends SMAP for data accesses. */
    ac: ctlBit(),
    /** CR4.PCE: RDPMC is allowed at CPL 3. */
    pce: ctlBit(),
  },
  text: CTL_FIELDS.map((f) => ({ key: f })),
  rules: [someCtlField],
  simplify: [dropOneOf(CTL_FIELDS)],
});

const discard = defineOp({
  kind: "discard",
  area: "memslot",
  fields: {
    /** Host virtual address of the first page dropped. */
    hva: field(u64()),
    /** Pages dropped (1 to 2^20). */
    pages: rangePages(),
  },
  text: [{ pos: "hva" }, { key: "pages" }],
  simplify: [lowerCount("pages", { halve: false })],
});

const dirtylog = defineOp({
  kind: "dirtylog",
  area: "memslot",
  fields: {
    /** The memslot (`slot` field of the uAPI, as in {@linkcode SlotOp}). */
    id: id(),
  },
  text: [{ pos: "id" }],
});

/**
 * `pages` of a dirty-log clear made smaller: to 64 (one bitmap word, which KVM takes
 * anywhere in a slot), then halved while a multiple of 64 (api.rst KVM_CLEAR_DIRTY_LOG).
 */
function fewerClearPages<O extends { pages: number }>(op: O): O[] {
  const out: O[] = [];
  if (op.pages > 64) out.push({ ...op, pages: 64 });
  const half = Math.floor(op.pages / 128) * 64;
  if (half > 64) out.push({ ...op, pages: half });
  return out;
}

const dirtyclear = defineOp({
  kind: "dirtyclear",
  area: "memslot",
  fields: {
    /** The memslot (`slot` field of the uAPI, as in {@linkcode SlotOp}). */
    id: id(),
    /**
     * `first_page`: the slot page the cleared range starts at (KVM takes only multiples
     * of 64; at most 2^40 in the format, where the uAPI field is a u64).
     */
    first: field(int({ max: SLOT_PAGES_MAX })),
    /**
     * `num_pages`, a u32: the pages cleared from `first` on, every one of them (the
     * backends pass a bitmap of all ones); KVM takes a multiple of 64, or a range that
     * ends at the slot's last page.
     */
    pages: field(int({ max: U32_MAX })),
  },
  text: [{ pos: "id" }, { key: "first" }, { key: "pages" }],
  simplify: [toValue("first", 0), fewerClearPages],
});

const age = defineOp({
  kind: "age",
  area: "memslot",
  fields: {
    /** First guest-physical address of the range. */
    gpa: field(u64()),
    /** Pages in the range (1 to 2^20). */
    pages: rangePages(),
  },
  text: [{ pos: "gpa" }, { key: "pages" }],
  simplify: [lowerCount("pages", { halve: false })],
});

const msr = () => field(int({ max: U32_MAX, token: "hex", json: "u32" }));

const wrmsr = defineOp({
  kind: "wrmsr",
  area: "pmu",
  fields: {
    /** The MSR index (ECX), a u32. */
    msr: msr(),
    /** The 64-bit value (EDX:EAX). */
    value: field(u64()),
  },
  text: [{ pos: "msr" }, { pos: "value" }],
  simplify: [toValue("value", 0n), clearBits("value", CLEAR_BITS)],
});

const rdmsr = defineOp({
  kind: "rdmsr",
  area: "pmu",
  fields: {
    /** The MSR index (ECX), a u32. */
    msr: msr(),
  },
  text: [{ pos: "msr" }],
});

const rdpmc = defineOp({
  kind: "rdpmc",
  area: "pmu",
  fields: {
    /**
     * The counter selector (ECX): the index, with bit 30 for fixed counters (Intel) and
     * bit 31 for fast reads.
     */
    ecx: msr(),
    /** From CPL 3 (then CR4.PCE decides) or CPL 0. */
    user: user(),
  },
  text: [{ pos: "ecx" }, { word: "user" }],
  simplify: [toFalse("user")],
});

const u32Hex = () => field(int({ max: U32_MAX, token: "hex" }), { default: 0 });

const filter = defineOp({
  kind: "filter",
  area: "pmu",
  fields: {
    /** KVM_PMU_EVENT_ALLOW (0) or KVM_PMU_EVENT_DENY (1); others are EINVAL. */
    action: field(namedU32("action", ["allow", "deny"], U32_MAX)),
    /** Filter flags: KVM_PMU_EVENT_FLAG_MASKED_EVENTS (bit 0) makes `events` masked entries. */
    flags: u32Hex(),
    /** fixed_counter_bitmap. */
    fixed: u32Hex(),
    /** The event entries: event select and umask (or masked entries, see `flags`). */
    events: field(u64List({ max: FILTER_EVENTS_MAX }), { default: [] }),
  },
  text: [{ pos: "action" }, { key: "flags" }, { key: "fixed" }, { rest: "events" }],
  simplify: [dropEach("events"), firstOnly("events", 8), toValue("fixed", 0)],
});

const events = defineOp({
  kind: "events",
  area: "pmu",
  fields: {
    /** Event select: 8 bits on Intel, 12 bits on AMD. */
    event: field(int({ max: EVENT_MAX, token: "hex", hexBounds: true })),
    /** Unit mask, 8 bits. */
    umask: field(int({ max: UMASK_MAX, token: "hex" })),
    /** How many occurrences (a u32). */
    count: field(int({ max: U32_MAX })),
    /** The events happen at CPL 3 (counted by USR) or CPL 0 (counted by OS). */
    user: user(),
  },
  text: [{ pos: "event" }, { key: "umask" }, { key: "count" }, { word: "user" }],
  simplify: [lowerCount("count"), toFalse("user")],
});

const pmis = defineOp({
  kind: "pmis",
  area: "pmu",
  fields: {},
  text: [],
});

/**
 * Every op kind's declaration, in the order of docs/trace-format.md (which is the order
 * of {@linkcode OP_KINDS}).
 */
export const OPS = {
  slot,
  write,
  read,
  access,
  invlpg,
  cr3,
  ctl,
  discard,
  dirtylog,
  dirtyclear,
  age,
  wrmsr,
  rdmsr,
  rdpmc,
  filter,
  events,
  pmis,
} as const;

// ------------------------------------------------------------------------ the op types

/** The name of an op kind: `"slot"`, `"write"`, ... */
export type OpKind = keyof typeof OPS;

/** The op object of kind `K`, as the table declares it. */
export type OpOf<K extends OpKind> = Shape<K, typeof OPS[K]["fields"]>;

/** One trace op: what the guest or the host does next, discriminated by `op`. */
export type Op = { [K in OpKind]: OpOf<K> }[OpKind];

/** KVM_SET_USER_MEMORY_REGION. `pages: 0` deletes the slot. */
export type SlotOp = OpOf<"slot">;
/** A guest store to guest-physical memory through a direct map. Never crosses a page. */
export type WriteOp = OpOf<"write">;
/** A guest load from guest-physical memory through a direct map. Never crosses a page. */
export type ReadOp = OpOf<"read">;
/**
 * A load, store or instruction fetch at a linear address through the current page
 * tables, from CPL 3 (`user`) or CPL 0. Never crosses a page. A fetch reads `size`
 * bytes like a load.
 */
export type AccessOp = OpOf<"access">;
/** INVLPG. */
export type InvlpgOp = OpOf<"invlpg">;
/** MOV to CR3 (`gpa` is the whole CR3 value). */
export type Cr3Op = OpOf<"cr3">;
/** Changes control bits: CR0.WP, CR4.SMEP/SMAP/PCE, EFER.NXE, EFLAGS.AC. */
export type CtlOp = OpOf<"ctl">;
/** The host drops pages of its memory (MADV_DONTNEED); they read back as zero. */
export type DiscardOp = OpOf<"discard">;
/** KVM_GET_DIRTY_LOG: returns (and without manual protect, clears) the slot's dirty bitmap. */
export type DirtyLogOp = OpOf<"dirtylog">;
/**
 * KVM_CLEAR_DIRTY_LOG of pages [first, first + pages) of a slot: clears their dirty
 * bits and re-protects the pages whose bit was set, so that a later write is logged.
 */
export type DirtyClearOp = OpOf<"dirtyclear">;
/** mmu-notifier clear_young over guest-physical pages [gpa, gpa + pages * 4096). */
export type AgeOp = OpOf<"age">;
/** Guest WRMSR. */
export type WrmsrOp = OpOf<"wrmsr">;
/** Guest RDMSR. */
export type RdmsrOp = OpOf<"rdmsr">;
/** Guest RDPMC from CPL 3 (`user`) or CPL 0. */
export type RdpmcOp = OpOf<"rdpmc">;
/** KVM_SET_PMU_EVENT_FILTER. `action`, `flags`, `fixed` are the raw u32 uAPI fields. */
export type FilterOp = OpOf<"filter">;
/** `count` occurrences of hardware event (event select, umask) happen in the guest. */
export type EventsOp = OpOf<"events">;
/** The number of PMIs delivered since the last `pmis`. */
export type PmisOp = OpOf<"pmis">;

/** Every op kind, in the order of docs/trace-format.md. */
export const OP_KINDS: readonly OpKind[] = Object.keys(OPS) as OpKind[];

/** The declaration of an op kind, erased to what the generic code needs. */
// deno-lint-ignore no-explicit-any
export type AnyOpSpec = OpSpec<string, Fields> & { readonly check?: readonly any[] };

/** The declaration of `kind` (for generic code: parsers, formatters, the minimizer). */
export function opSpec(kind: OpKind): AnyOpSpec {
  return OPS[kind] as unknown as AnyOpSpec;
}

/** Whether `kind` names an op kind. */
export function isOpKind(kind: string): kind is OpKind {
  return Object.hasOwn(OPS, kind);
}

// --------------------------------------------------------------- generic over the table

/** The area an op kind exercises. */
export function opArea(kind: OpKind): Area {
  return OPS[kind].area;
}

/** The first broken value rule of a typed op, or `undefined` if the op is valid. */
export function checkOp(op: Op): Problem | undefined {
  const spec = opSpec(op.op);
  const values = op as unknown as Record<string, unknown>;
  const order = spec.check ?? [...Object.keys(spec.fields), ...(spec.rules ?? [])];
  for (const step of order) {
    const problem = typeof step === "string"
      ? fieldProblem(spec.fields[step]!, step, values[step])
      : (step as OpRule<unknown>)(op);
    if (problem) return problem;
  }
  return undefined;
}

function fieldProblem(spec: FieldSpec<unknown>, name: string, value: unknown) {
  return value === undefined ? undefined : spec.codec.check?.(name, value);
}

/** A valid op in canonical form (slot flags in canonical order); checkOp must pass first. */
export function normalizeOp<O extends Op>(op: O): O {
  const spec = opSpec(op.op);
  const values = op as unknown as Record<string, unknown>;
  for (const [name, f] of Object.entries(spec.fields)) {
    const value = values[name];
    if (f.codec.normalize !== undefined && value !== undefined) {
      values[name] = f.codec.normalize(value);
    }
  }
  return op;
}

/** Simpler variants of one op (the table's value passes), most promising first; each valid. */
export function simplerOps(op: Op): Op[] {
  const passes = opSpec(op.op).simplify ?? [];
  return passes.flatMap((pass) => (pass as Simplifier<Op>)(op));
}

/**
 * The text syntax of an op kind, for usage lines and docs:
 * `slot <id> gpa=<dec> pages=<dec> hva=<hex> [log] [ro]`.
 */
export function opSyntax(kind: OpKind): string {
  const spec = opSpec(kind);
  const parts: string[] = [kind];
  for (const item of spec.text) {
    if ("pos" in item) {
      const f = spec.fields[item.pos]!;
      const shown = f.codec.token === "hex" || f.codec.token === "dec"
        ? `<${item.pos}>`
        : `<${f.codec.token}>`;
      parts.push("when" in item ? `[${shown}]` : shown);
    } else if ("key" in item) {
      const f = spec.fields[item.key]!;
      const shown = `${item.key}=<${f.codec.token}>`;
      parts.push(f.default !== undefined || f.optional ? `[${shown}]` : shown);
    } else if ("word" in item) parts.push(`[${item.word}]`);
    else if ("words" in item) {
      for (const w of spec.fields[item.words]!.codec.words ?? []) parts.push(`[${w}]`);
    } else parts.push(`[<${item.rest}> ...]`);
  }
  return parts.join(" ");
}
