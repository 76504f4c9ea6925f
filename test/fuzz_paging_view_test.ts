/**
 * The paging view the generator and the reducer share (`fuzz/model/paging.ts`): walks
 * honour `gbPages` and memslots, the reducer's model of a trace keeps tables in host
 * memory (they follow a moved slot, vanish with a deleted one), and the reducer's
 * paging proposals read page tables through it.
 */
import assert from "node:assert/strict";
import { walk } from "../fuzz/model/paging.ts";
import { World } from "../fuzz/model/world.ts";
import {
  leafCollapses,
  modelBefore,
  pagingVariants,
  walksAt,
} from "../fuzz/reduce/minimize_paging.ts";
import { defaultConfig } from "../src/trace/config.ts";
import { formatOp, parseOp } from "../src/trace/text.ts";
import { type Config, type Trace, TRACE_FORMAT } from "../src/trace/types.ts";

function trace(lines: string[], config: Partial<Config> = {}): Trace {
  return {
    format: TRACE_FORMAT,
    config: { ...defaultConfig(), ...config },
    ops: lines.map(parseOp),
  };
}

/** Root at page 0 (PML4[0] -> 0x1000), PDPT[0] is `pdpte`. */
const ONE_GIB = (pdpte: string) => [
  "slot 0 gpa=0x0 pages=16 hva=0x100000000",
  "write 0x0 0x1007",
  `write 0x1000 ${pdpte}`,
];

Deno.test("paging view: PDPTE.PS is a 1 GiB leaf only with gbPages, PML4E.PS is reserved", () => {
  const t = [...ONE_GIB("0x87"), "access r 0x1234"];
  const withGb = modelBefore(trace(t), 3).walk(0x1234n);
  assert.equal(withGb.end, "leaf");
  assert.deepEqual(withGb.steps.map((s) => s.level), [4, 3]);
  const without = modelBefore(trace(t, { gbPages: false }), 3).walk(0x1234n);
  assert.equal(without.end, "reserved");
  assert.deepEqual(without.steps.map((s) => s.level), [4, 3]);
  const pml4 = modelBefore(trace(["slot 0 gpa=0x0 pages=16 hva=0x100000000", "write 0x0 0x87"]), 2);
  assert.equal(pml4.walk(0n).end, "reserved");
});

Deno.test("paging view: a table no memslot backs ends the walk, in the generator's world too", () => {
  // PML4[0] -> 0x20000, outside the 16-page slot.
  const t = trace(["slot 0 gpa=0x0 pages=16 hva=0x100000000", "write 0x0 0x20007"]);
  const w = modelBefore(t, 2).walk(0n);
  assert.equal(w.end, "unbacked");
  assert.equal(w.steps.length, 1);
  // The generator's belief, through the same walk: entries it wrote, slots it made.
  const world = new World(defaultConfig());
  world.apply(parseOp("slot 0 gpa=0x0 pages=16 hva=0x100000000"));
  world.root = 0;
  world.recordEntry({ gpa: 0n, level: 4, value: 0x1007n, gva: 0n });
  world.recordEntry({ gpa: 0x1000n, level: 3, value: 0x87n, gva: 0n });
  assert.equal(world.walk(0n).end, "leaf");
  assert.deepEqual(world.walk(0n), walk(world, 0n, 0n));
  world.apply(parseOp("slot 0 gpa=0x0 pages=0 hva=0x100000000"));
  assert.equal(world.walk(0n).end, "unbacked");
  assert.equal(world.walk(0n).steps.length, 0);
});

Deno.test("paging view: the trace model keeps tables in host memory through slot moves and discards", () => {
  const t = trace([
    "slot 0 gpa=0x0 pages=16 hva=0x100000000",
    "write 0x0 0x1007",
    "write 0x1000 0x87",
    "slot 0 gpa=0x200000 pages=16 hva=0x100000000",
    "cr3 0x200000",
    "discard 0x100001000 pages=1",
    "slot 1 gpa=0x0 pages=1 hva=0x200000000 ro",
    "write 0x0 0x1007",
  ]);
  // After the move the tables sit at 0x200000 (same host pages); PML4[0] still says 0x1000.
  const moved = modelBefore(t, 5);
  assert.equal(moved.entry(0x200000n), 0x1007n);
  assert.equal(moved.entry(0n), null);
  assert.equal(moved.walk(0n).end, "unbacked");
  // The discard zeroes the second page; a store to a readonly slot is lost.
  const after = modelBefore(t, 8);
  assert.equal(after.entry(0x201000n), 0n);
  assert.equal(after.entry(0n), 0n);
});

Deno.test("paging view: a guest store through a self-map changes the entry, a read-only one does not", () => {
  const tables = (w: string) => [
    "slot 0 gpa=0x0 pages=16 hva=0x100000000",
    `write 0x0 0x${w}`,
    `write 0x18 0x100${w}`,
    `write 0x1000 0x100${w}`,
  ];
  // PML4, PDPT and PD self at page 0 (entry 0), PD[3] -> PT 0x1000, PT[0] maps the PT.
  const store = "access w 0x600008 0x5003";
  const stored = modelBefore(trace([...tables("3"), store]), 5);
  assert.equal(stored.entry(0x1008n), 0x5003n);
  // W clear, CR0.WP on: the supervisor store faults and stores nothing.
  const faulted = modelBefore(trace([...tables("1"), store]), 5);
  assert.equal(faulted.entry(0x1008n), 0n);
});

Deno.test("paging view: no 1 GiB leaf is proposed without gbPages", () => {
  const lines = [
    "slot 0 gpa=0x0 pages=64 hva=0x100000000",
    "write 0x0 0x1007",
    "write 0x1000 0x2007",
    "write 0x2000 0x3007",
    "write 0x3000 0x5007",
    "access r 0x0",
  ];
  const ps = (t: Trace) =>
    leafCollapses(t).some((ops) =>
      ops.some((op) => op.op === "write" && op.gpa === 0x1000n && (op.value & 0x80n) !== 0n)
    );
  assert.ok(ps(trace(lines)));
  assert.ok(!ps(trace(lines, { gbPages: false })));
  // The PDE becomes a 2 MiB leaf either way.
  assert.ok(
    leafCollapses(trace(lines, { gbPages: false })).some((ops) =>
      ops.some((op) => op.op === "write" && op.gpa === 0x2000n && (op.value & 0x80n) !== 0n)
    ),
  );
});

Deno.test("paging view: a fold re-indexes the same address after its slot went, not only the walk it read", () => {
  const t = trace([
    "slot 0 gpa=0x0 pages=3 hva=0x100000000",
    "write 0x0 0x1001",
    "slot 1 gpa=0x1600000 pages=1 hva=0x107000000",
    "write 0x1000 0x2001 size=4",
    "write 0x2000 0x1600081",
    "access r 0x0",
    "slot 0 gpa=0x0 pages=0 hva=0x100000000",
    "access r 0x0 size=4",
  ]);
  // The last access walks nothing (its tables went with slot 0).
  assert.equal(walksAt(t).get(7)!.end, "unbacked");
  // Folding PDPT 0x1000 into the root moves its entry to index 1: both accesses follow.
  const folded = pagingVariants(t).find((ops) =>
    ops.some((op) => op.op === "write" && op.gpa === 0x8n)
  )!;
  const gvas = folded.flatMap((op) => op.op === "access" ? [formatOp(op)] : []);
  assert.deepEqual(gvas, ["access r 0x40000000", "access r 0x40000000 size=4"]);
});
