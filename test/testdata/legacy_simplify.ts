/**
 * @module
 * `simplerOps` of `fuzz/reduce/minimize.ts` as it was before the op table (issue 11), copied
 * verbatim from commit 94fad73. Test-only: `test/ops_simplify_test.ts` checks that the
 * table's simplifiers propose the same variants in the same order.
 */
import type { Op } from "../../src/trace/types.ts";

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

const ADDR = 0x000f_ffff_ffff_f000n;

/** Simpler variants of one op, most promising first; each is a valid op. */
export function legacySimplerOps(op: Op): Op[] {
  const out: Op[] = [];
  switch (op.op) {
    case "write":
      // A table pointer made a large leaf (1 GiB, then 2 MiB aligned): the tables below
      // it can then go. Not from frame 0: clearing bit 7 again would undo it forever.
      if (
        (op.size === 8 || (op.size === 4 && (op.gpa & 7n) === 0n)) &&
        (op.value & 0x81n) === 1n && (op.value & ADDR) !== 0n
      ) {
        for (const align of [0x3fff_ffffn, 0x1f_ffffn]) {
          const value = (op.value & ~(ADDR & align)) | 0x80n;
          // Only when the frame gets simpler: bit 7 alone is undone by clearing it again.
          if ((value & ADDR) !== (op.value & ADDR)) out.push({ ...op, value });
        }
        out.push({ ...op, value: (op.value & ~ADDR) | 0x80n }); // at frame 0
      }
      for (const b of CLEAR_BITS) {
        if ((op.value >> b) & 1n) out.push({ ...op, value: op.value & ~(1n << b) });
      }
      // The default size (an aligned 4-byte low half written as the whole qword).
      if (op.size === 4 && (op.gpa & 7n) === 0n) out.push({ ...op, size: 8 });
      break;
    case "wrmsr":
      if (op.value !== 0n) out.push({ ...op, value: 0n });
      for (const b of CLEAR_BITS) {
        if ((op.value >> b) & 1n) out.push({ ...op, value: op.value & ~(1n << b) });
      }
      break;
    case "access": {
      if (op.user) out.push({ ...op, user: false });
      if (op.kind !== "read") {
        const { value: _value, ...rest } = op;
        out.push({ ...rest, kind: "read" });
      }
      if (op.kind === "write" && op.value !== undefined && op.value !== 0n) {
        const value = op.value;
        out.push({ ...op, value: 0n });
        // A store of a PTE through a mapping of its table: its frame to 0, then its bits
        // one at a time.
        if ((value & ADDR) !== 0n) out.push({ ...op, value: value & ~ADDR });
        for (const b of CLEAR_BITS) {
          if ((value >> b) & 1n) out.push({ ...op, value: value & ~(1n << b) });
        }
      }
      // Linear address 0: with a self-referencing entry 0 it walks the tables already
      // written, so the entries another gva needed can go.
      if (op.gva !== 0n) out.push({ ...op, gva: 0n });
      // The same top-level entries with the lower indexes (and the offset) cleared: the
      // walk keeps its upper path and reuses entries the trace already wrote lower down.
      for (const bits of [39n, 30n, 21n, 12n]) {
        const low = op.gva & ((1n << bits) - 1n);
        if (low !== 0n && op.gva - low !== 0n) out.push({ ...op, gva: op.gva - low });
      }
      break;
    }
    case "read":
      if ((op.gpa & 0xfffn) !== 0n) out.push({ ...op, gpa: op.gpa & ~0xfffn });
      break;
    case "slot":
      if (op.flags.length > 0) out.push({ ...op, flags: [] });
      break;
    case "ctl": {
      const fields = (["wp", "smep", "smap", "nx", "ac", "pce"] as const).filter((f) =>
        op[f] !== undefined
      );
      if (fields.length > 1) {
        for (const f of fields) {
          const copy = { ...op };
          delete copy[f];
          out.push(copy);
        }
      }
      break;
    }
    case "filter":
      for (let i = 0; i < op.events.length; i++) {
        out.push({ ...op, events: op.events.filter((_, j) => j !== i) });
      }
      if (op.events.length > 8) out.push({ ...op, events: op.events.slice(0, 1) });
      if (op.fixed !== 0) out.push({ ...op, fixed: 0 });
      break;
    case "events":
      if (op.count > 1) out.push({ ...op, count: 1 }, { ...op, count: Math.floor(op.count / 2) });
      if (op.user) out.push({ ...op, user: false });
      break;
    case "rdpmc":
      if (op.user) out.push({ ...op, user: false });
      break;
    case "discard":
    case "age":
      if (op.pages > 1) out.push({ ...op, pages: 1 });
      break;
  }
  return out;
}
