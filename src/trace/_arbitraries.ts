/**
 * @module
 * fast-check arbitraries of VALID trace values: every op, config and trace they
 * generate passes `parseOpJson` / `parseConfig` / `parseTrace` and comes back
 * deep-equal after a format/parse round trip (slot flags in canonical order, optional
 * fields absent rather than `undefined`).
 *
 * They are uniform over the format, not biased toward meaning: the fuzzer's generators
 * (fuzz/) aim at page tables and memslots; these are for tests of code that must accept
 * any valid trace (parsers, formatters, totality of backends). A test helper: nothing
 * outside tests imports it, and `mod.ts` does not export it.
 */
import fc from "fast-check";
import type { Arbitrary } from "fast-check";
import { PAGE_INDEX_MAX, pageRunsOf } from "./pages.ts";
import { checkOp, type FieldSpec, opSpec } from "./ops.ts";
import {
  type AccessKind,
  type Config,
  type Errno,
  type Op,
  OP_KINDS,
  type OpKind,
  type Outcome,
  type PageRuns,
  type Permitted,
  type PmuConfig,
  type Size,
  type SlotFlag,
  type Trace,
  TRACE_FORMAT,
  type Vendor,
} from "./types.ts";

/** Options of {@linkcode arbOp}. */
export interface OpConstraints {
  /** Only these op kinds (default: all). */
  kinds?: readonly OpKind[];
}

const U32_MAX = 0xffff_ffff;
const PAGE = 4096;

/**
 * `fc.record` with ordinary prototypes: fast-check makes null-prototype objects by
 * default, which never deep-equal what a parser returns.
 */
function record<T>(model: { [K in keyof T]: Arbitrary<T[K]> }): Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true });
}

/** Any 64-bit value (fast-check biases toward small values and the edges). */
export function arbU64(): Arbitrary<bigint> {
  return fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
}

function arbU32(): Arbitrary<number> {
  return fc.integer({ min: 0, max: U32_MAX });
}

function arbSize(): Arbitrary<Size> {
  return fc.constantFrom<Size>(1, 2, 4, 8);
}

/** An address below `pages * 4096` whose `size` bytes stay inside one page. */
function arbInPage(size: Size, pages: bigint): Arbitrary<bigint> {
  return fc.tuple(fc.bigInt({ min: 0n, max: pages - 1n }), fc.integer({ min: 0, max: PAGE - size }))
    .map(([page, offset]) => page * BigInt(PAGE) + BigInt(offset));
}

/** Small ids are the interesting ones; large ones still test the u32 range. */
function arbId(): Arbitrary<number> {
  return fc.oneof(fc.integer({ min: 0, max: 32 }), arbU32());
}

/**
 * Hand-made arbitraries of the op kinds whose valid ops a field-by-field draw would
 * rarely hit (accesses that stay in a page, a ctl with some field); any other kind is
 * drawn from its declaration in the op table ({@linkcode arbFromTable}).
 */
const OP_ARBITRARIES: { [K in OpKind]?: () => Arbitrary<Extract<Op, { op: K }>> } = {
  slot: () =>
    record({
      op: fc.constant("slot" as const),
      id: arbId(),
      gpa: arbU64(),
      pages: fc.oneof(fc.integer({ min: 0, max: 1024 }), fc.integer({ min: 0, max: 2 ** 40 })),
      hva: arbU64(),
      flags: fc.subarray<SlotFlag>(["log", "ro"]),
    }),
  write: () =>
    arbSize().chain((size) =>
      record({
        op: fc.constant("write" as const),
        // Direct-map stores take a gpa below 2^52.
        gpa: arbInPage(size, 1n << 40n),
        size: fc.constant(size),
        value: arbU64(),
      })
    ),
  read: () =>
    arbSize().chain((size) =>
      record({
        op: fc.constant("read" as const),
        gpa: arbInPage(size, 1n << 40n),
        size: fc.constant(size),
      })
    ),
  access: () =>
    fc.tuple(arbSize(), fc.constantFrom<AccessKind>("read", "write", "fetch")).chain((
      [size, kind],
    ) =>
      record({
        gva: arbInPage(size, 1n << 52n),
        user: fc.boolean(),
        value: arbU64(),
      }).map(({ gva, user, value }) => ({
        op: "access" as const,
        gva,
        kind,
        user,
        size,
        ...(kind === "write" ? { value } : {}),
      }))
    ),
  invlpg: () => record({ op: fc.constant("invlpg" as const), gva: arbU64() }),
  cr3: () => record({ op: fc.constant("cr3" as const), gpa: arbU64() }),
  ctl: () =>
    fc.record(
      {
        op: fc.constant("ctl" as const),
        wp: fc.boolean(),
        smep: fc.boolean(),
        smap: fc.boolean(),
        nx: fc.boolean(),
        ac: fc.boolean(),
        pce: fc.boolean(),
      },
      { requiredKeys: ["op"], noNullPrototype: true },
    ).filter((op) => Object.keys(op).length > 1),
  discard: () =>
    record({
      op: fc.constant("discard" as const),
      hva: arbU64(),
      pages: fc.integer({ min: 1, max: 2 ** 20 }),
    }),
  dirtylog: () => record({ op: fc.constant("dirtylog" as const), id: arbId() }),
  age: () =>
    record({
      op: fc.constant("age" as const),
      gpa: arbU64(),
      pages: fc.integer({ min: 1, max: 2 ** 20 }),
    }),
  wrmsr: () => record({ op: fc.constant("wrmsr" as const), msr: arbU32(), value: arbU64() }),
  rdmsr: () => record({ op: fc.constant("rdmsr" as const), msr: arbU32() }),
  rdpmc: () => record({ op: fc.constant("rdpmc" as const), ecx: arbU32(), user: fc.boolean() }),
  filter: () =>
    record({
      op: fc.constant("filter" as const),
      action: fc.oneof(fc.constantFrom(0, 1), arbU32()),
      flags: fc.oneof(fc.constant(0), arbU32()),
      fixed: fc.oneof(fc.constant(0), arbU32()),
      events: fc.array(arbU64(), { maxLength: 8 }),
    }),
  events: () =>
    record({
      op: fc.constant("events" as const),
      event: fc.integer({ min: 0, max: 0xfff }),
      umask: fc.integer({ min: 0, max: 0xff }),
      count: arbU32(),
      user: fc.boolean(),
    }),
  pmis: () => fc.constant({ op: "pmis" as const }),
};

/** A value of one field of the op table: small values and the edges, then anything in range. */
function arbFieldValue(f: FieldSpec<unknown>): Arbitrary<unknown> {
  const c = f.codec;
  if (c.kind === "bool") return fc.boolean();
  if (c.kind === "flags") return fc.subarray([...c.words!]);
  if (c.kind === "list") return fc.array(arbU64(), { maxLength: 8 });
  if (c.values !== undefined) return fc.constantFrom(...c.values);
  const [min, max] = c.range!;
  if (typeof min === "bigint") return fc.bigInt({ min, max: max as bigint });
  const lo = min as number, hi = max as number;
  return fc.oneof(
    fc.integer({ min: lo, max: Math.min(hi, lo + 1024) }),
    fc.integer({ min: lo, max: hi }),
  );
}

/**
 * A valid op of `kind` drawn field by field from its declaration in the op table
 * (optional fields sometimes absent), kept only when it passes the kind's rules.
 */
export function arbFromTable(kind: OpKind): Arbitrary<Op> {
  const spec = opSpec(kind);
  const fields = Object.entries(spec.fields);
  return fc.tuple(
    ...fields.map(([, f]) =>
      f.optional ? fc.option(arbFieldValue(f), { nil: undefined }) : arbFieldValue(f)
    ),
  ).map((values) => {
    const op: Record<string, unknown> = { op: kind };
    fields.forEach(([name], i) => {
      if (values[i] !== undefined) op[name] = values[i];
    });
    return op as unknown as Op;
  }).filter((op) => checkOp(op) === undefined);
}

/** A valid op of any kind (or of `constraints.kinds`). */
export function arbOp(constraints: OpConstraints = {}): Arbitrary<Op> {
  const kinds = constraints.kinds ?? OP_KINDS;
  if (kinds.length === 0) throw new RangeError("arbOp: constraints.kinds is empty");
  return fc.oneof(
    ...kinds.map((kind) => (OP_ARBITRARIES[kind]?.() ?? arbFromTable(kind)) as Arbitrary<Op>),
  );
}

function arbPmu(vendor: Vendor): Arbitrary<PmuConfig> {
  const version = fc.constantFrom<PmuConfig["version"]>(0, 1, 2);
  if (vendor === "amd") {
    return record({
      version,
      gp: fc.constantFrom(4, 6, 0),
      fullWidthWrites: fc.boolean(),
    }).map((p) => ({
      ...p,
      tsx: false,
      gp: p.version === 0 ? 0 : p.gp,
      fixed: 0,
      gpWidth: 48,
      fixedWidth: 48,
    }));
  }
  return record({
    version,
    gp: fc.integer({ min: 0, max: 8 }),
    fixed: fc.integer({ min: 0, max: 3 }),
    gpWidth: fc.integer({ min: 32, max: 48 }),
    fixedWidth: fc.integer({ min: 32, max: 48 }),
    fullWidthWrites: fc.boolean(),
    tsx: fc.boolean(),
  }).map((p) => ({
    ...p,
    gp: p.version === 0 ? 0 : p.gp,
    fixed: p.version === 2 ? p.fixed : 0,
  }));
}

/** A valid config (every field set, the vPMU consistent with the vendor). */
export function arbConfig(): Arbitrary<Config> {
  return fc.constantFrom<Vendor>("intel", "amd").chain((vendor) =>
    record({
      vendor: fc.constant(vendor),
      maxPhyAddr: fc.integer({ min: 36, max: 52 }),
      gbPages: fc.boolean(),
      smm: fc.boolean(),
      features: record({ smep: fc.boolean(), smap: fc.boolean() }),
      cr0: record({ wp: fc.boolean() }),
      cr4: record({ smep: fc.boolean(), smap: fc.boolean(), pce: fc.boolean() }),
      efer: record({ nx: fc.boolean() }),
      rflags: record({ ac: fc.boolean() }),
      pmu: arbPmu(vendor),
      quirks: record({ slotZapAll: fc.boolean() }),
      dirtyLog: record({ manualProtect: fc.boolean(), initiallySet: fc.boolean() }).map((d) => ({
        manualProtect: d.manualProtect,
        initiallySet: d.manualProtect && d.initiallySet,
      })),
      mmioGenBits: fc.integer({ min: 2, max: 19 }),
    })
  );
}

/** A valid trace of up to `maxOps` ops (default 20). */
export function arbTrace(constraints: OpConstraints & { maxOps?: number } = {}): Arbitrary<Trace> {
  return record({
    comment: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
    config: arbConfig(),
    ops: fc.array(arbOp(constraints), { maxLength: constraints.maxOps ?? 20 }),
  }).map(({ comment, config, ops }) => ({
    format: TRACE_FORMAT,
    ...(comment === undefined ? {} : { comment }),
    config,
    ops,
  }));
}

const ERRNOS: readonly Errno[] = [
  0,
  "EINVAL",
  "EEXIST",
  "ENOENT",
  "E2BIG",
  "EFAULT",
  "ENOMEM",
  "EPERM",
];

/** A valid outcome of any kind. */
export function arbOutcome(): Arbitrary<Outcome> {
  return fc.oneof(
    fc.constantFrom(...ERRNOS).map((errno): Outcome => ({ errno })),
    fc.constant<Outcome>({ ok: true }),
    fc.constant<Outcome>({ gp: true }),
    arbU64().map((value): Outcome => ({ value })),
    record({ gpa: arbU64(), write: fc.boolean() }).map((mmio): Outcome => ({ mmio })),
    record({ code: arbU32(), cr2: arbU64() }).map((pf): Outcome => ({ pf })),
    arbPageRuns().map((bitmap): Outcome => ({ bitmap })),
    arbPageRuns().map((young): Outcome => ({ young })),
    fc.nat().map((count): Outcome => ({ count })),
    fc.string({ maxLength: 40 }).map((crash): Outcome => ({ crash })),
  );
}

/**
 * A page set: few or many pages and runs, near page 0 (the hex form) or anywhere up to
 * the largest page index (the page-list form).
 */
export function arbPageRuns(): Arbitrary<PageRuns> {
  const page = fc.oneof(fc.nat(70), fc.nat(5000), fc.integer({ min: 0, max: PAGE_INDEX_MAX }));
  const run = fc.tuple(page, fc.oneof(fc.constant(0), fc.nat(3), fc.nat(100)))
    .map(([first, extra]) => [first, Math.min(first + extra, PAGE_INDEX_MAX)] as const);
  return fc.array(run, { maxLength: 8 }).map((runs) => {
    const pages: number[] = [];
    for (const [first, last] of runs) for (let p = first; p <= last; p++) pages.push(p);
    return pageRunsOf(pages);
  });
}

/**
 * A permitted outcome, with a `dontCare` mask sometimes (`dontCarePages`, a non-empty
 * page set, for bitmap and young outcomes).
 */
export function arbPermitted(): Arbitrary<Permitted> {
  return record({
    outcome: arbOutcome(),
    dontCare: fc.option(arbU64(), { nil: undefined }),
    dontCarePages: fc.option(arbPageRuns().filter((r) => r.length > 0), { nil: undefined }),
    why: fc.string({ maxLength: 40 }),
  }).map(({ outcome, dontCare, dontCarePages, why }) => {
    const pages = "bitmap" in outcome || "young" in outcome;
    return {
      outcome,
      ...(pages || dontCare === undefined ? {} : { dontCare }),
      ...(!pages || dontCarePages === undefined ? {} : { dontCarePages }),
      why,
    };
  });
}
