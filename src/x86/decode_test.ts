/**
 * Tests of `decode.ts`. Expected names and positions are written out here from the
 * manuals (each table cites its section), not derived from the code under test.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  bitmapDelta,
  bitsText,
  formatNumber,
  msrFieldDelta,
  msrFields,
  msrName,
  msrText,
  type PageRange,
  pagesOfBitmap,
  pagesText,
  pfecDelta,
  pfecNames,
  pteBitsText,
  pteText,
  valueDelta,
  wrapText,
} from "./decode.ts";

const U64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });

// ---------------------------------------------------------------------------------------
// #PF error code: SDM vol. 3A 4.7, figure "Page-Fault Error Code" (bit 0 P, 1 W/R,
// 2 U/S, 3 RSVD, 4 I/D, 5 PK, 6 SS, 15 SGX); AMD APM vol. 2 8.4.2 (bit 31 RMP).
// ---------------------------------------------------------------------------------------

const SDM_PFEC: readonly [number, string][] = [
  [0, "P"],
  [1, "W"],
  [2, "U"],
  [3, "RSVD"],
  [4, "I/D"],
  [5, "PK"],
  [6, "SS"],
  [15, "SGX"],
  [31, "RMP"],
];

Deno.test("pfecNames: names the SDM error-code bits in bit order", () => {
  assert.equal(pfecNames(0x5), "P|U");
  assert.equal(pfecNames(0x4), "U");
  assert.equal(pfecNames(0x0), "none");
  assert.equal(pfecNames(0x1f), "P|W|U|RSVD|I/D");
  assert.equal(pfecNames(0x27), "P|W|U|PK");
  assert.equal(pfecNames(0x40), "SS");
  assert.equal(pfecNames(0x8000), "SGX");
  assert.equal(pfecNames(0x8000_0000), "RMP");
  assert.equal(pfecNames(0x80), "bit7");
  assert.equal(pfecNames(0x8000_0009), "P|RSVD|RMP");
});

Deno.test("pfecNames: one name per set bit, the SDM's name where it has one", () => {
  const byBit = new Map(SDM_PFEC);
  fc.assert(fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), (code) => {
    const expected: string[] = [];
    for (let bit = 0; bit < 32; bit++) {
      if (Math.floor(code / 2 ** bit) % 2 === 1) expected.push(byBit.get(bit) ?? `bit${bit}`);
    }
    assert.equal(pfecNames(code), expected.length === 0 ? "none" : expected.join("|"));
  }));
});

Deno.test("pfecDelta: the names of the bits that differ", () => {
  assert.deepEqual(pfecDelta(0x4, 0x5), ["P"]);
  assert.deepEqual(pfecDelta(0x7, 0x5), ["W"]);
  assert.deepEqual(pfecDelta(0x5, 0x5), []);
  assert.deepEqual(pfecDelta(0x0, 0x8000_0019), ["P", "RSVD", "I/D", "RMP"]);
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffff_ffff }),
      fc.integer({ min: 0, max: 0xffff_ffff }),
      (a, b) => {
        assert.deepEqual(pfecDelta(a, b), pfecDelta(b, a));
        const x = (a ^ b) >>> 0;
        assert.deepEqual(pfecDelta(a, b), x === 0 ? [] : pfecNames(x).split("|"));
      },
    ),
  );
});

Deno.test("pfecNames: a code that is not a u32 is a RangeError naming it", () => {
  for (const bad of [-1, 2 ** 32, 1.5, NaN]) {
    assert.throws(() => pfecNames(bad), {
      name: "RangeError",
      message: `Cannot decode page-fault error code ${bad}: it is not a 32-bit unsigned integer`,
    });
  }
});

// ---------------------------------------------------------------------------------------
// Page-table entries: SDM vol. 3A 4.5, table 4-15 (PML4E), 4-16 (PDPTE mapping 1 GiB),
// 4-18 (PDE mapping 2 MiB), 4-20 (PTE mapping 4 KiB).
// ---------------------------------------------------------------------------------------

Deno.test("pteText: a 4 KiB PTE (table 4-20): flags, NX, frame", () => {
  // 0x67 = P(0) W(1) U(2) A(5) D(6); bit 63 XD; address 0x400000.
  assert.equal(pteText(0x8000000000400067n), "P W U A D NX frame=0x400000");
  assert.equal(pteText(0x8000000000400067n, { level: 1 }), "P W U A D NX frame=0x400000");
  // Bit 7 of a PTE is PAT; bits 3 and 4 PWT, PCD; bit 8 G.
  assert.equal(pteText(0x400199n, { level: 1 }), "P PWT PCD PAT G frame=0x400000");
  // Bit 12 of a PTE is an address bit.
  assert.equal(pteText(0x1001n, { level: 1 }), "P frame=0x1000");
  assert.equal(pteText(0x0n), "not-present frame=0x0");
  assert.equal(pteText(0x400002n), "not-present W frame=0x400000");
});

Deno.test("pteText: a 2 MiB PDE (table 4-18): PS, PAT in bit 12, bits 20:13 reserved", () => {
  assert.equal(pteText(0x2000e7n, { level: 2 }), "P W U A D PS frame=0x200000");
  assert.equal(pteText(0x2010e7n, { level: 2 }), "P W U A D PS PAT frame=0x200000");
  assert.equal(pteText(0x2020e7n, { level: 2 }), "P W U A D PS frame=0x200000 rsvd=0x2000");
  assert.equal(pteText(0x3fe081n, { level: 2 }), "P PS frame=0x200000 rsvd=0x1fe000");
  // `large` without a level reads a 2 MiB leaf too.
  assert.equal(pteText(0x2010e7n, { large: true }), "P W U A D PS PAT frame=0x200000");
  // A non-leaf PDE (PS=0): bit 12 is an address bit.
  assert.equal(pteText(0x201027n, { level: 2 }), "P W U A frame=0x201000");
});

Deno.test("pteText: a 1 GiB PDPTE (table 4-16): bits 29:13 reserved", () => {
  assert.equal(pteText(0x40000000e3n, { level: 3 }), "P W A D PS frame=0x4000000000");
  assert.equal(
    pteText(0x40200010e3n, { level: 3 }),
    "P W A D PS PAT frame=0x4000000000 rsvd=0x20000000",
  );
});

Deno.test("pteText: a PML4E (table 4-15): bit 7 is reserved, not PS", () => {
  assert.equal(pteText(0x1000a3n, { level: 4 }), "P W A frame=0x100000 rsvd=0x80");
  assert.equal(pteText(0x100023n, { level: 4 }), "P W A frame=0x100000");
});

Deno.test("pteText: MAXPHYADDR, EFER.NXE=0 and ignored bits", () => {
  // MAXPHYADDR 46: bits 51:46 reserved (SDM 4.5 "Reserved (must be 0)").
  assert.equal(
    pteText(0x4000_0000_1003n, { maxPhyAddr: 46 }),
    "P W frame=0x1000 rsvd=0x400000000000",
  );
  assert.equal(pteText(0x4000_0000_1003n), "P W frame=0x400000001000");
  // EFER.NXE=0: bit 63 is reserved (SDM 4.5, table note "If IA32_EFER.NXE = 0 ...").
  assert.equal(
    pteText(0x8000000000001001n, { nx: false }),
    "P frame=0x1000 rsvd=0x8000000000000000",
  );
  // Bits 11:9 and 62:52 are ignored.
  assert.equal(pteText(0x0010_0000_0000_1e01n), "P frame=0x1000 ign=0x10000000000e00");
});

Deno.test("pteText: bad options are RangeErrors naming the problem", () => {
  assert.throws(() => pteText(0x81n, { level: 1, large: true }), {
    name: "RangeError",
    message: "Cannot decode page-table entry: a large page is mapped at level 2 or 3, not 1",
  });
  assert.throws(() => pteText(0n, { level: 5 }), {
    name: "RangeError",
    message: "Cannot decode page-table entry: level 5 is not 1, 2, 3 or 4",
  });
  assert.throws(() => pteText(0n, { maxPhyAddr: 53 }), {
    name: "RangeError",
    message: "Cannot decode page-table entry: MAXPHYADDR 53 is not an integer in 13..52",
  });
  assert.throws(() => pteText(1n << 64n), {
    name: "RangeError",
    message: `Cannot decode page-table entry ${1n << 64n}: it is not a 64-bit unsigned value`,
  });
});

/** Table 4-20 flags, by bit (a PTE: bit 7 is PAT). */
const PTE_4K_FLAGS: readonly [number, string][] = [
  [1, "W"],
  [2, "U"],
  [3, "PWT"],
  [4, "PCD"],
  [5, "A"],
  [6, "D"],
  [7, "PAT"],
  [8, "G"],
  [63, "NX"],
];

Deno.test("pteText: a PTE names each table 4-20 flag exactly when it is set", () => {
  fc.assert(fc.property(U64, (v) => {
    const tokens = pteText(v, { level: 1 }).split(" ");
    assert.equal(tokens[0], (v & 1n) === 1n ? "P" : "not-present");
    for (const [bit, name] of PTE_4K_FLAGS) {
      assert.equal(tokens.includes(name), ((v >> BigInt(bit)) & 1n) === 1n, `${name} of ${v}`);
    }
    // MAXPHYADDR 52: the frame is bits 51:12.
    assert.ok(tokens.includes(`frame=0x${(v & 0x000ffffffffff000n).toString(16)}`));
  }));
});

// ---------------------------------------------------------------------------------------
// MSR numbers: SDM vol. 4 table 2-2 (architectural MSRs); AMD APM vol. 2 13.2 and
// appendix A; Linux msr-index.h (PerfMonV2 0xc0000300..0xc0000303).
// ---------------------------------------------------------------------------------------

Deno.test("msrName: the SDM and APM numbers", () => {
  const expected: [number, string][] = [
    [0xc1, "PMC0"],
    [0xc8, "PMC7"],
    [0x186, "PERFEVTSEL0"],
    [0x18d, "PERFEVTSEL7"],
    [0x309, "FIXED_CTR0"],
    [0x30b, "FIXED_CTR2"],
    [0x30c, "FIXED_CTR3"],
    [0x345, "PERF_CAPABILITIES"],
    [0x38d, "FIXED_CTR_CTRL"],
    [0x38e, "PERF_GLOBAL_STATUS"],
    [0x38f, "PERF_GLOBAL_CTRL"],
    [0x390, "PERF_GLOBAL_OVF_CTRL"],
    [0x391, "PERF_GLOBAL_STATUS_SET"],
    [0x392, "PERF_GLOBAL_INUSE"],
    [0x4c1, "A_PMC0"],
    [0x4c8, "A_PMC7"],
    [0xc0010000, "K7_EVNTSEL0"],
    [0xc0010003, "K7_EVNTSEL3"],
    [0xc0010004, "K7_PERFCTR0"],
    [0xc0010007, "K7_PERFCTR3"],
    [0xc0010200, "F15H_PERF_CTL0"],
    [0xc0010201, "F15H_PERF_CTR0"],
    [0xc0010202, "F15H_PERF_CTL1"],
    [0xc001020a, "F15H_PERF_CTL5"],
    [0xc001020b, "F15H_PERF_CTR5"],
    [0xc0000300, "PERF_CNTR_GLOBAL_STATUS"],
    [0xc0000301, "PERF_CNTR_GLOBAL_CTL"],
    [0xc0000302, "PERF_CNTR_GLOBAL_STATUS_CLR"],
    [0xc0000303, "PERF_CNTR_GLOBAL_STATUS_SET"],
    [0xc0000080, "EFER"],
    [0x10, "TSC"],
    [0x1a0, "MISC_ENABLE"],
  ];
  for (const [msr, name] of expected) assert.equal(msrName(msr), name, `0x${msr.toString(16)}`);
  // One past each block, and numbers nothing here names.
  for (const msr of [0xc9, 0x18e, 0x30d, 0x4c9, 0xc0010008, 0xc001020c, 0xc0000304, 0x1234]) {
    assert.equal(msrName(msr), null, `0x${msr.toString(16)}`);
  }
});

Deno.test("msrText: name and number, or the number alone", () => {
  assert.equal(msrText(0x38f), "PERF_GLOBAL_CTRL (0x38f)");
  assert.equal(msrText(0xc0010201), "F15H_PERF_CTR0 (0xc0010201)");
  assert.equal(msrText(0x1234), "0x1234");
});

// Event select: SDM vol. 3B 20.2.1.1 figure "Layout of IA32_PERFEVTSELx MSRs" and the
// TSX facilities of ch. 20 (IN_TX 32, IN_TXCP 33); AMD APM vol. 2 13.2 "PerfEvtSeln".
const INTEL_EVENTSEL_BITS: readonly [number, string][] = [
  [16, "USR"],
  [17, "OS"],
  [18, "E"],
  [19, "PC"],
  [20, "INT"],
  [21, "ANY"],
  [22, "EN"],
  [23, "INV"],
  [32, "IN_TX"],
  [33, "IN_TXCP"],
  [34, "ADAPTIVE"],
];
const AMD_EVENTSEL_BITS: readonly [number, string][] = [
  [16, "USR"],
  [17, "OS"],
  [18, "E"],
  [20, "INT"],
  [22, "EN"],
  [23, "INV"],
  [40, "GO"],
  [41, "HO"],
];

Deno.test("msrFields: Intel event selects", () => {
  assert.equal(msrFields(0x186, 0x4300c0n), "event=0xc0 umask=0x0 USR OS EN");
  assert.equal(msrFields(0x187, 0x5301c4n), "event=0xc4 umask=0x1 USR OS INT EN");
  assert.equal(msrFields(0x188, 0x03d301c4n), "event=0xc4 umask=0x1 USR OS INT EN INV cmask=0x3");
  assert.equal(msrFields(0x188, 0x2004300c0n), "event=0xc0 umask=0x0 USR OS EN IN_TXCP");
  assert.equal(msrFields(0x186, 0x0n), "event=0x0 umask=0x0");
  assert.equal(msrFields(0x186, 0x100000000c0n), "event=0xc0 umask=0x0 other=0x10000000000");
});

Deno.test("msrFields: AMD event selects, 12-bit event in bits 7:0 and 35:32", () => {
  assert.equal(msrFields(0xc0010000, 0x1004300c2n), "event=0x1c2 umask=0x0 USR OS EN");
  assert.equal(
    msrFields(0xc0010200, 0x30000530129n),
    "event=0x29 umask=0x1 USR OS INT EN GO HO",
  );
  // Bits 19 and 21 are reserved on AMD (APM; KVM's amd reserved_bits).
  assert.equal(msrFields(0xc0010002, 0x2800c0n), "event=0xc0 umask=0x0 other=0x280000");
});

Deno.test("msrFieldDelta: an event-select bit names its SDM field", () => {
  fc.assert(fc.property(U64, fc.integer({ min: 0, max: 63 }), (v, bit) => {
    const flipped = v ^ (1n << BigInt(bit));
    const named = new Map(INTEL_EVENTSEL_BITS).get(bit) ??
      (bit < 8 ? "event" : bit < 16 ? "umask" : bit >= 24 && bit < 32 ? "cmask" : `bit ${bit}`);
    assert.deepEqual(msrFieldDelta(0x186, v, flipped), [named]);
    const amd = new Map(AMD_EVENTSEL_BITS).get(bit) ??
      (bit < 8 || (bit >= 32 && bit < 36)
        ? "event"
        : bit >= 8 && bit < 16
        ? "umask"
        : bit >= 24 && bit < 32
        ? "cmask"
        : `bit ${bit}`);
    assert.deepEqual(msrFieldDelta(0xc0010200, v, flipped), [amd]);
  }));
  assert.deepEqual(msrFieldDelta(0x188, 0x4300c0n, 0x2004300c0n), ["IN_TXCP"]);
  assert.deepEqual(msrFieldDelta(0x186, 0x4300c0n, 0x4300c0n), []);
  assert.deepEqual(msrFieldDelta(0x186, 0x4300c0n, 0x5301c4n), ["event", "umask", "INT"]);
});

// IA32_FIXED_CTR_CTRL: SDM vol. 3B 20.2.2 figure "Layout of IA32_FIXED_CTR_CTRL MSR":
// per counter i, bits 4i+1:4i EN (1 = OS, 2 = USR), 4i+2 AnyThread, 4i+3 PMI.
Deno.test("msrFields: FIXED_CTR_CTRL per counter", () => {
  assert.equal(msrFields(0x38d, 0xbn), "FIXED_CTR0=OS|USR|PMI");
  assert.equal(msrFields(0x38d, 0xb0bn), "FIXED_CTR0=OS|USR|PMI FIXED_CTR2=OS|USR|PMI");
  assert.equal(msrFields(0x38d, 0x2040n), "FIXED_CTR1=ANY FIXED_CTR3=USR");
  assert.equal(msrFields(0x38d, 0x0n), "none");
  assert.equal(msrFields(0x38d, 0x10001n), "FIXED_CTR0=OS other=0x10000");
  assert.deepEqual(msrFieldDelta(0x38d, 0x3n, 0xbn), ["FIXED_CTR0.PMI"]);
  assert.deepEqual(msrFieldDelta(0x38d, 0x0n, 0x21n), ["FIXED_CTR0.OS", "FIXED_CTR1.USR"]);
  assert.deepEqual(msrFieldDelta(0x38d, 0x0n, 0x400n), ["FIXED_CTR2.ANY"]);
});

// IA32_PERF_GLOBAL_CTRL / STATUS: SDM vol. 3B 20.2.2 figures "Layout of
// IA32_PERF_GLOBAL_CTRL MSR" and "... IA32_PERF_GLOBAL_STATUS MSR" (PMC i at bit i, fixed
// i at 32 + i; status 62 OvfBuffer, 63 CondChgd); Linux perf_event.h GLOBAL_STATUS_*.
Deno.test("msrFields: global control and status as counter bits", () => {
  assert.equal(msrFields(0x38f, 0x3n), "PMC0 PMC1");
  assert.equal(msrFields(0x38f, 0x700000003n), "PMC0 PMC1 FIXED_CTR0-2");
  assert.equal(msrFields(0x38f, 0xffn), "PMC0-7");
  assert.equal(msrFields(0x38f, 0x0n), "none");
  assert.equal(msrFields(0x38e, 0xc000000000000001n), "PMC0 BUFFER_OVF COND_CHG");
  assert.equal(msrFields(0x390, 0x200000004n), "PMC2 FIXED_CTR1");
  // AMD PerfMonV2: bit i is core counter i (APM vol. 2 13.2).
  assert.equal(msrFields(0xc0000301, 0x3fn), "PMC0-5");
  assert.equal(msrFields(0xc0000300, 0x1n << 32n), "other=0x100000000");
  assert.deepEqual(msrFieldDelta(0x38f, 0x0n, 0x3n), ["PMC0", "PMC1"]);
  assert.deepEqual(msrFieldDelta(0x38f, 0x3n, 0x200000003n), ["FIXED_CTR1"]);
  assert.deepEqual(msrFieldDelta(0x38e, 0x0n, 1n << 62n), ["BUFFER_OVF"]);
});

Deno.test("msrFields: PERF_CAPABILITIES and EFER flags", () => {
  // SDM vol. 4 table 2-2: IA32_PERF_CAPABILITIES bit 13 FW_WRITE, 5:0 LBR format.
  assert.equal(msrFields(0x345, 0x2000n), "FW_WRITE");
  assert.equal(msrFields(0x345, 0x2005n), "lbr_fmt=0x5 FW_WRITE");
  // APM vol. 2 3.1.7: EFER bit 0 SCE, 8 LME, 10 LMA, 11 NXE.
  assert.equal(msrFields(0xc0000080, 0xd01n), "SCE LME LMA NXE");
  assert.deepEqual(msrFieldDelta(0xc0000080, 0xd01n, 0x501n), ["NXE"]);
});

Deno.test("msrFields: counters and unknown MSRs are plain values, deltas by position", () => {
  assert.equal(msrFields(0xc1, 0xffff80000000n), "0xffff80000000");
  assert.equal(msrFields(0x1234, 0x5n), "0x5");
  // A legacy PMCx write sign-extends from bit 31 (docs/kvm-facts.md C.3): bits 47:32 differ.
  assert.deepEqual(msrFieldDelta(0xc1, 0x80000000n, 0xffff80000000n), ["bits 32-47"]);
  assert.deepEqual(msrFieldDelta(0x1234, 0x0n, 0x1n), ["bit 0"]);
});

Deno.test("msrFieldDelta: empty exactly when the values are equal, and symmetric", () => {
  const msrs = [0x186, 0x38d, 0x38e, 0x38f, 0xc1, 0xc0010200, 0xc0000301, 0x345, 0x1234];
  fc.assert(fc.property(fc.constantFrom(...msrs), U64, U64, (msr, a, b) => {
    assert.equal(msrFieldDelta(msr, a, b).length === 0, a === b);
    assert.deepEqual(msrFieldDelta(msr, a, b), msrFieldDelta(msr, b, a));
  }));
});

Deno.test("msrName and msrFields: bad input is a RangeError", () => {
  assert.throws(() => msrName(-1), {
    name: "RangeError",
    message: "Cannot decode MSR -1: it is not a 32-bit unsigned integer",
  });
  assert.throws(() => msrFields(0x186, -1n), {
    name: "RangeError",
    message: "Cannot decode MSR 0x186 value -1: it is not a 64-bit unsigned value",
  });
});

// ---------------------------------------------------------------------------------------
// Pages, bits, values
// ---------------------------------------------------------------------------------------

/** The pages of "3,7-9", read independently of the code under test. */
function parseList(text: string): number[] {
  if (text === "none") return [];
  return text.split(",").flatMap((item) => {
    const [a, b] = item.split("-").map(Number) as [number, number | undefined];
    return Array.from({ length: (b ?? a) - a + 1 }, (_, i) => a + i);
  });
}

const PAGES = fc.array(fc.nat(300), { maxLength: 40 });

Deno.test("pagesText: sorted runs, from lists, bitmaps and runs alike", () => {
  assert.equal(pagesText([9, 3, 7, 8]), "3,7-9");
  assert.equal(pagesText([3, 3, 4]), "3-4");
  assert.equal(pagesText([]), "none");
  assert.equal(pagesText(0x388n), "3,7-9");
  assert.equal(pagesText(0n), "none");
  assert.equal(pagesText([[7, 9], [3, 3]] as PageRange[]), "3,7-9");
  assert.equal(pagesText([[0, 2 ** 30 - 1]] as PageRange[]), `0-${2 ** 30 - 1}`);
  assert.equal(pagesText(new Set([5, 1])), "1,5");
  fc.assert(fc.property(PAGES, (pages) => {
    const text = pagesText(pages);
    assert.deepEqual(parseList(text), [...new Set(pages)].sort((a, b) => a - b));
    const bitmap = pages.reduce((m, p) => m | (1n << BigInt(p)), 0n);
    assert.equal(pagesText(bitmap), text);
    assert.equal(pagesText(pages.map((p) => [p, p] as const)), text);
  }));
});

Deno.test("pagesText: a bad page is a RangeError naming it", () => {
  assert.throws(() => pagesText([1, -2]), {
    name: "RangeError",
    message: "Cannot format pages: page -2 is not a non-negative integer",
  });
  assert.throws(() => pagesText([[4, 2]] as PageRange[]), {
    name: "RangeError",
    message: "Cannot format pages: run 0 runs backwards",
  });
});

Deno.test("pagesOfBitmap: bit i is page i, also for a million-page bitmap", () => {
  assert.deepEqual(pagesOfBitmap(0x388n), [3, 7, 8, 9]);
  assert.deepEqual(pagesOfBitmap(0n), []);
  const big = (1n << 1_000_000n) | 1n;
  assert.deepEqual(pagesOfBitmap(big), [0, 1_000_000]);
});

Deno.test("bitmapDelta: missing and extra pages outside don't-care", () => {
  assert.deepEqual(bitmapDelta(0x6n, 0x3n), { missing: [[0, 0]], extra: [[2, 2]] });
  assert.deepEqual(bitmapDelta([1, 2], [0, 1], [0]), { missing: [], extra: [[2, 2]] });
  assert.deepEqual(bitmapDelta([], [[0, 2 ** 30 - 1]]), { missing: [[0, 2 ** 30 - 1]], extra: [] });
  assert.deepEqual(bitmapDelta([[0, 9]], [[0, 9]], [[3, 4]]), { missing: [], extra: [] });
  assert.deepEqual(bitmapDelta([[0, 2], [6, 9]], [[0, 9]], [[7, 7]]), {
    missing: [[3, 5]],
    extra: [],
  });
  fc.assert(fc.property(PAGES, PAGES, PAGES, (o, e, dc) => {
    const os = new Set(o), es = new Set(e), dcs = new Set(dc);
    const missing = [...es].filter((p) => !os.has(p) && !dcs.has(p));
    const extra = [...os].filter((p) => !es.has(p) && !dcs.has(p));
    const bits = (ps: number[]) => ps.reduce((m, p) => m | (1n << BigInt(p)), 0n);
    const runs = (ps: number[]) => ps.map((p) => [p, p] as const);
    for (const d of [bitmapDelta(o, e, dc), bitmapDelta(bits(o), bits(e), bits(dc))]) {
      assert.equal(pagesText(d.missing), pagesText(missing));
      assert.equal(pagesText(d.extra), pagesText(extra));
    }
    assert.deepEqual(bitmapDelta(runs(o), bits(e), dc), bitmapDelta(o, e, dc));
  }));
});

Deno.test("bitsText: set bit positions as runs", () => {
  assert.equal(bitsText(0x60n), "bits 5-6");
  assert.equal(bitsText(1n << 63n), "bit 63");
  assert.equal(bitsText(0x1ff000n | (1n << 63n)), "bits 12-20,63");
  assert.equal(bitsText(0n), "no bits");
  fc.assert(fc.property(U64, (v) => {
    const text = bitsText(v);
    const listed = text === "no bits" ? [] : parseList(text.replace(/^bits? /, ""));
    assert.equal(listed.reduce((m, b) => m | (1n << BigInt(b)), 0n), v);
  }));
});

Deno.test("valueDelta: PTE flags by name, other differences by position", () => {
  // Table 4-20: bit 5 A, bit 6 D.
  assert.equal(valueDelta(0x8000000000400067n, 0x8000000000400047n), "A");
  assert.equal(valueDelta(0x400067n, 0x400007n), "A|D");
  assert.equal(valueDelta(0x400003n, 0x400001n), "W");
  assert.equal(valueDelta(0x8000000000400003n, 0x400003n), "NX");
  // An address difference, and values that are not present entries.
  assert.equal(valueDelta(0x400067n, 0x500067n), "bit 20");
  assert.equal(valueDelta(0x66n, 0x06n), "bits 5-6");
  assert.equal(valueDelta(0x123n, 0x123n), "none");
  // Bits 62:52 set: not what a guest's page table holds.
  assert.equal(valueDelta(0x7ff0000000000067n, 0x7ff0000000000047n), "bit 5");
  assert.equal(pteBitsText(0x60n), "A|D");
  assert.equal(pteBitsText(0x1060n), "bits 5-6,12");
});

// ---------------------------------------------------------------------------------------
// Numbers and wrapping
// ---------------------------------------------------------------------------------------

Deno.test("formatNumber: seconds to two digits, counts with separators", () => {
  assert.equal(formatNumber(0.17439878400000086, "s"), "0.17 s");
  assert.equal(formatNumber(0.00123, "s"), "0.0012 s");
  assert.equal(formatNumber(12.5, "s"), "12.50 s");
  assert.equal(formatNumber(61234.567, "s"), "61,234.57 s");
  assert.equal(formatNumber(1234567), "1,234,567");
  assert.equal(formatNumber(999), "999");
  assert.equal(formatNumber(1000), "1,000");
  assert.equal(formatNumber(-1500), "-1,500");
  assert.equal(formatNumber(0), "0");
  assert.equal(formatNumber(3, "runs"), "3 runs");
  fc.assert(fc.property(fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }), (n) => {
    const text = formatNumber(n);
    assert.equal(text.replaceAll(",", ""), String(n));
    assert.match(text, /^-?\d{1,3}(,\d{3})*$/);
  }));
});

Deno.test("wrapText: lines fit, break after spaces or commas, lose only break spaces", () => {
  assert.deepEqual(wrapText("short"), ["short"]);
  assert.deepEqual(wrapText("a".repeat(250)).map((l) => l.length), [100, 100, 50]);
  assert.deepEqual(wrapText("1,2,3,4,5,6", 4), ["1,2,", "3,4,", "5,6"]);
  assert.deepEqual(wrapText("dirty pages 3,7-9", 11), ["dirty pages", "3,7-9"]);
  fc.assert(
    fc.property(
      fc.string({ unit: fc.constantFrom("a", "b", " ", ",", "7"), maxLength: 300 }),
      fc.integer({ min: 1, max: 40 }),
      (s, width) => {
        const lines = wrapText(s, width);
        for (const line of lines) assert.ok(line.length <= width, JSON.stringify(line));
        assert.equal(lines.join("").replaceAll(" ", ""), s.replaceAll(" ", ""));
      },
    ),
  );
  assert.throws(() => wrapText("x", 0), {
    name: "RangeError",
    message: "Cannot wrap text: width 0 is not a positive integer",
  });
});
