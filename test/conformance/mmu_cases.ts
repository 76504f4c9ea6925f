/**
 * @module
 * Conformance cases for guest paging: walks, permissions, error codes, A/D bits,
 * reserved bits, large pages, MMIO, and the stale translations the architecture
 * permits between a PTE change and its invalidation. Every backend must pass them.
 *
 * Layout of most cases (see {@linkcode tables}): slot 0 maps gpa 0-4 MiB; PML4 at
 * 0x1000, PDPT at 0x2000, PD at 0x3000, PT at 0x4000; gva 0x400000 is PML4[0] ->
 * PDPT[0] -> PD[2] -> PT[0]; data frames at 0x5000 and 0x6000.
 */
import type { ConformanceCase } from "./case.ts";

type Steps = [string, string][];

/** Builds the standard tables; any entry may be overridden (hex strings). */
export function tables(
  e: { pml4e?: string; pdpte?: string; pde?: string; pte?: string } = {},
): Steps {
  return [
    ["slot 0 gpa=0x0 pages=1024 hva=0x100000000", "errno 0"],
    [`write 0x1000 ${e.pml4e ?? "0x2007"}`, "ok"],
    [`write 0x2000 ${e.pdpte ?? "0x3007"}`, "ok"],
    [`write 0x3010 ${e.pde ?? "0x4007"}`, "ok"],
    [`write 0x4000 ${e.pte ?? "0x5007"}`, "ok"],
    ["cr3 0x1000", "ok"],
  ];
}

/**
 * The fetch cases put a ret (0xc3) at the target and preset the A bits: the kvm backend
 * executes only a ret its check load read there, and refuses a faulting fetch whose
 * check load would set an A bit (src/kvm/README.md "Fetches").
 */
const RET = ["write 0x5000 0xc3 size=1", "ok"] satisfies [string, string];
const A_SET = { pml4e: "0x2027", pdpte: "0x3027", pde: "0x4027", pte: "0x5027" };

const SDM_WALK = "Intel SDM vol. 3A 4.5 (4-level paging); docs/kvm-facts.md A.1";
const SDM_PF = "Intel SDM vol. 3A 4.7 (page-fault error code); docs/kvm-facts.md A.4";
const SDM_PERM = "Intel SDM vol. 3A 4.6 (access rights); docs/kvm-facts.md A.3";
const SDM_AD = "Intel SDM vol. 3A 4.8 (accessed and dirty flags); docs/kvm-facts.md A.5";
const RSVD = "KVM __reset_rsvds_bits_mask; docs/kvm-facts.md A.2";
const TLB = "Intel SDM vol. 3A 4.10.2-4.10.4 (TLBs, invalidation); docs/semantics.md rule 5";

export const mmuCases: ConformanceCase[] = [
  {
    name: "mmu: a read through present tables returns the frame's memory and sets A at every level",
    source: SDM_AD,
    steps: [
      ...tables(),
      ["write 0x5000 0x1122334455667788", "ok"],
      ["access r 0x400000", "value 0x1122334455667788"],
      ["read 0x4000", "value 0x5027"],
      ["read 0x3010", "value 0x4027"],
      ["read 0x2000", "value 0x3027"],
      ["read 0x1000", "value 0x2027"],
    ],
  },
  {
    name: "mmu: a write stores through the translation and sets D in the leaf only",
    source: SDM_AD,
    steps: [
      ...tables(),
      ["access w 0x400008 0x99", "ok"],
      ["read 0x5008", "value 0x99"],
      ["read 0x4000", "value 0x5067"],
      ["read 0x3010", "value 0x4027"],
    ],
  },
  {
    name: "mmu: narrow accesses read and write only their bytes",
    source: SDM_WALK,
    steps: [
      ...tables(),
      ["write 0x5000 0x1122334455667788", "ok"],
      ["access r 0x400002 size=2", "value 0x5566"],
      ["access w 0x400001 0xab size=1", "ok"],
      ["read 0x5000", "value 0x112233445566ab88"],
    ],
  },
  {
    name: "mmu: a not-present PTE faults with P=0, the access bits, and cr2 = the gva",
    source: SDM_PF,
    steps: [
      ...tables({ pte: "0x5006" }),
      ["access r 0x400123", "pf code=0x0 cr2=0x400123"],
      ["access w 0x400123 0x1", "pf code=0x2 cr2=0x400123"],
      ["access r 0x400123 user", "pf code=0x4 cr2=0x400123"],
      ["access x 0x400123", "pf code=0x10 cr2=0x400123"],
      ["read 0x4000", "value 0x5006"],
    ],
  },
  {
    name: "mmu: a not-present PML4E faults before anything below it is read",
    source: SDM_WALK,
    steps: [
      ...tables({ pml4e: "0x2006" }),
      ["access r 0x400000", "pf code=0x0 cr2=0x400000"],
    ],
  },
  {
    name: "mmu: a user access to a supervisor page faults with P|U",
    source: SDM_PERM,
    steps: [
      ...tables({ pde: "0x4003" }),
      ["access r 0x400000 user", "pf code=0x5 cr2=0x400000"],
      ["access r 0x400000", "value 0x0"],
    ],
  },
  {
    name: "mmu: with CR0.WP=1 a supervisor write to a read-only page faults with P|W",
    source: SDM_PERM,
    steps: [
      ...tables({ pte: "0x5005" }),
      ["access w 0x400000 0x1", "pf code=0x3 cr2=0x400000"],
      ["read 0x4000", "value 0x5005"],
      ["read 0x5000", "value 0x0"],
    ],
  },
  {
    name: "mmu: with CR0.WP=0 supervisor writes ignore R/W but user writes do not",
    source: SDM_PERM,
    config: { cr0: { wp: false } },
    steps: [
      ...tables({ pte: "0x5005" }),
      ["access w 0x400000 0x5a", "ok"],
      ["read 0x5000", "value 0x5a"],
      ["read 0x4000", "value 0x5065"],
      ["access w 0x400000 0x1 user", "pf code=0x7 cr2=0x400000"],
    ],
  },
  {
    name: "mmu: a read-only upper level makes the whole translation read-only",
    source: SDM_PERM,
    steps: [
      ...tables({ pdpte: "0x3005" }),
      ["access w 0x400000 0x1 user", "pf code=0x7 cr2=0x400000"],
      ["access r 0x400000 user", "value 0x0"],
    ],
  },
  {
    name: "mmu: with EFER.NXE=1 a fetch from an NX page faults with P|I/D",
    source: SDM_PERM,
    steps: [
      ...tables({ ...A_SET, pte: "0x8000000000005027" }),
      RET,
      ["access x 0x400000", "pf code=0x11 cr2=0x400000"],
      ["access x 0x400000 user", "pf code=0x15 cr2=0x400000"],
      ["access r 0x400000", "value 0xc3"],
    ],
  },
  {
    name: "mmu: NX in an upper level forbids fetches below it",
    source: SDM_PERM,
    steps: [
      ...tables({ ...A_SET, pde: "0x8000000000004027" }),
      RET,
      ["access x 0x400000", "pf code=0x11 cr2=0x400000"],
    ],
  },
  {
    name: "mmu: with EFER.NXE=0 bit 63 is reserved and fetch faults carry no I/D",
    source: `${RSVD}; ${SDM_PF}`,
    config: { efer: { nx: false } },
    steps: [
      ...tables({ pte: "0x8000000000005007" }),
      ["access r 0x400000", "pf code=0x9 cr2=0x400000"],
      ["access x 0x400000", "pf code=0x9 cr2=0x400000"],
      ["write 0x4000 0x5006", "ok"],
      ["invlpg 0x400000", "ok"],
      ["access x 0x400000", "pf code=0x0 cr2=0x400000"],
    ],
  },
  {
    name: "mmu: a PTE bit between MAXPHYADDR and 51 is reserved (RSVD|P with the access bits)",
    source: RSVD,
    steps: [
      ...tables({ pte: "0x8000000005007" }),
      ["access r 0x400000", "pf code=0x9 cr2=0x400000"],
      ["access w 0x400000 0x1 user", "pf code=0xf cr2=0x400000"],
      ["read 0x4000", "value 0x8000000005007"],
    ],
  },
  {
    name: "mmu: with MAXPHYADDR 52 bit 51 is an address bit, not reserved",
    source: RSVD,
    config: { maxPhyAddr: 52 },
    steps: [
      ...tables({ pte: "0x8000000005007" }),
      ["access r 0x400000", "mmio 0x8000000005000 r"],
    ],
  },
  {
    name: "mmu: a reserved bit in the PDE wins over a not-present PTE below it",
    source: RSVD,
    steps: [
      ...tables({ pde: "0x8000000004007", pte: "0x0" }),
      ["access r 0x400000", "pf code=0x9 cr2=0x400000"],
    ],
  },
  {
    name: "mmu: a reserved-bit fault wins over a permission fault",
    source: RSVD,
    steps: [
      ...tables({ pde: "0x4005", pte: "0x8000000005005" }),
      ["access w 0x400000 0x1 user", "pf code=0xf cr2=0x400000"],
    ],
  },
  {
    name: "mmu: bits 62:52 of an entry are ignored",
    source: "Intel SDM vol. 3A table 4-19 (bits 62:52 ignored without PKE); docs/kvm-facts.md A.2",
    steps: [
      ...tables({ pte: "0x7ff0000000005007" }),
      ["write 0x5000 0x42", "ok"],
      ["access r 0x400000", "value 0x42"],
    ],
  },
  {
    name: "mmu: PML4E bit 7 is reserved",
    source: RSVD,
    steps: [
      ...tables({ pml4e: "0x2087" }),
      ["access r 0x400000", "pf code=0x9 cr2=0x400000"],
    ],
  },
  {
    name: "mmu: on AMD PML4E bit 8 is reserved",
    source: `${RSVD} (non-leaf PML4Es reserve bit 8 on AMD; measured on kvm_pvm)`,
    config: { vendor: "amd" },
    steps: [
      ...tables({ pml4e: "0x2107" }),
      ["access r 0x400000", "pf code=0x9 cr2=0x400000"],
    ],
  },
  {
    name: "mmu: on Intel PML4E bit 8 is ignored",
    source: "Intel SDM vol. 3A table 4-15 (bit 8 ignored)",
    steps: [
      ...tables({ pml4e: "0x2107" }),
      ["access r 0x400000", "value 0x0"],
    ],
  },
  {
    name: "mmu: a 2 MiB page maps the whole 2 MiB region and sets A and D in the PDE",
    source: SDM_WALK,
    steps: [
      ...tables({ pde: "0x200087" }),
      ["write 0x201230 0x77", "ok"],
      ["access r 0x401230", "value 0x77"],
      ["read 0x3010", "value 0x2000a7"],
      ["access w 0x401238 0x1", "ok"],
      ["read 0x3010", "value 0x2000e7"],
      ["read 0x201238", "value 0x1"],
    ],
  },
  {
    name: "mmu: bits 20:13 of a 2 MiB PDE are reserved",
    source: RSVD,
    steps: [
      ...tables({ pde: "0x202087" }),
      ["access r 0x400000", "pf code=0x9 cr2=0x400000"],
    ],
  },
  {
    name: "mmu: a 1 GiB page maps through a PDPTE with PS when 1 GiB pages exist",
    requires: ["gbPages"],
    source: SDM_WALK,
    steps: [
      ...tables({ pdpte: "0x87" }),
      ["write 0x5008 0x66", "ok"],
      ["access r 0x5008", "value 0x66"],
    ],
  },
  {
    name: "mmu: without 1 GiB pages a PDPTE with PS is a reserved-bit fault",
    source: RSVD,
    config: { gbPages: false },
    steps: [
      ...tables({ pdpte: "0x87" }),
      ["access r 0x5008", "pf code=0x9 cr2=0x5008"],
    ],
  },
  {
    name: "mmu: bits 29:13 of a 1 GiB PDPTE are reserved",
    requires: ["gbPages"],
    source: RSVD,
    steps: [
      ...tables({ pdpte: "0x2087" }),
      ["access r 0x5008", "pf code=0x9 cr2=0x5008"],
    ],
  },
  {
    name: "mmu: with CR4.SMEP a supervisor fetch from a user page faults",
    source: SDM_PERM,
    config: { cr4: { smep: true } },
    steps: [
      ...tables(A_SET),
      RET,
      ["access x 0x400000", "pf code=0x11 cr2=0x400000"],
      ["access x 0x400000 user", "value 0xc3"],
      ["access r 0x400000", "value 0xc3"],
    ],
  },
  {
    name: "mmu: with CR4.SMEP and EFER.NXE=0 fetch faults still carry I/D",
    source: SDM_PF,
    config: { cr4: { smep: true }, efer: { nx: false } },
    steps: [
      ...tables({ pte: "0x5006" }),
      ["access x 0x400000", "pf code=0x10 cr2=0x400000"],
    ],
  },
  {
    name: "mmu: with CR4.SMAP a supervisor data access to a user page faults unless EFLAGS.AC",
    source: SDM_PERM,
    config: { cr4: { smap: true } },
    steps: [
      ...tables(),
      RET,
      ["access r 0x400000", "pf code=0x1 cr2=0x400000"],
      ["access w 0x400000 0x1", "pf code=0x3 cr2=0x400000"],
      ["access x 0x400000", "value 0xc3"],
      ["ctl ac=1", "ok"],
      ["access r 0x400000", "value 0xc3"],
      ["access r 0x400000 user", "value 0xc3"],
    ],
  },
  {
    name: "mmu: an access to a non-canonical address raises #GP",
    source: "Intel SDM vol. 3A 3.3.7.1 (canonical addressing)",
    steps: [
      ...tables(),
      ["access r 0x800000000000", "gp"],
      ["access r 0xffff800000000000", "pf code=0x0 cr2=0xffff800000000000"],
    ],
  },
  {
    name: "mmu: a translation to a gpa without a memslot exits as MMIO",
    source: "KVM api.rst KVM_EXIT_MMIO; SEMANTICS item 4",
    steps: [
      ...tables({ pte: "0x800007" }),
      ["access r 0x400010", "mmio 0x800010 r"],
      ["access w 0x400010 0x1", "mmio 0x800010 w"],
      ["read 0x4000", "value 0x800067"],
    ],
  },
  {
    name: "mmu: a page table in a gpa without a memslot faults as not present",
    source: "KVM FNAME(walk_addr_generic): kvm_is_error_hva goes to error with errcode 0",
    steps: [
      ...tables({ pml4e: "0x10000007" }),
      ["access r 0x400000", "pf code=0x0 cr2=0x400000"],
    ],
  },
  {
    name: "mmu: MOV to CR3 with bits above MAXPHYADDR raises #GP",
    source: "Intel SDM vol. 3A 4.5.2 (CR3 reserved bits)",
    steps: [
      ...tables(),
      ["cr3 0x800000001000", "gp"],
      ["access r 0x400000", "value 0x0"],
    ],
  },
  {
    name: "mmu: setting CR4.SMEP without CPUID SMEP raises #GP and changes nothing",
    source: "Intel SDM vol. 3A 2.5 (CR4 reserved bits #GP); SEMANTICS item 7",
    config: { features: { smep: false, smap: false } },
    steps: [
      ...tables(),
      ["ctl wp=0 smep=1", "gp"],
      ["access w 0x400000 0x1", "ok"],
    ],
  },
  {
    name: "mmu: a 4-byte write to the low half of a PTE takes effect after a flush",
    source: "docs/kvm-facts.md B.6 (4-byte gpte writes)",
    steps: [
      ...tables(),
      ["write 0x6000 0x22", "ok"],
      ["write 0x4000 0x6007 size=4", "ok"],
      ["cr3 0x1000", "ok"],
      ["access r 0x400000", "value 0x22"],
    ],
  },
  {
    name: "mmu: after a PTE rewrite without INVLPG the old frame may still be read",
    source: TLB,
    steps: [
      ...tables(),
      ["write 0x5000 0x11", "ok"],
      ["write 0x6000 0x22", "ok"],
      ["access r 0x400000", "value 0x11"],
      ["write 0x4000 0x6007", "ok"],
      ["access r 0x400000", "value 0x22 | value 0x11"],
      ["invlpg 0x400000", "ok"],
      ["access r 0x400000", "value 0x22"],
    ],
  },
  {
    name: "mmu: INVLPG of another 4 KiB page leaves a stale 4 KiB translation permitted",
    source: TLB,
    steps: [
      ...tables(),
      ["write 0x5000 0x11", "ok"],
      ["write 0x6000 0x22", "ok"],
      ["access r 0x400000", "value 0x11"],
      ["write 0x4000 0x6007", "ok"],
      ["invlpg 0x401000", "ok"],
      ["access r 0x400000", "value 0x22 | value 0x11"],
    ],
  },
  {
    name: "mmu: reloading the same CR3 ends every stale translation",
    source: TLB,
    steps: [
      ...tables(),
      ["write 0x5000 0x11", "ok"],
      ["write 0x6000 0x22", "ok"],
      ["access r 0x400000", "value 0x11"],
      ["write 0x4000 0x6007", "ok"],
      ["cr3 0x1000", "ok"],
      ["access r 0x400000", "value 0x22"],
    ],
  },
  {
    name: "mmu: changing CR0.WP ends every stale translation",
    source: `${TLB}; KVM_MMU_CR0_ROLE_BITS reset the MMU context`,
    steps: [
      ...tables(),
      ["write 0x5000 0x11", "ok"],
      ["write 0x6000 0x22", "ok"],
      ["access r 0x400000", "value 0x11"],
      ["write 0x4000 0x6007", "ok"],
      ["ctl wp=0", "ok"],
      ["access r 0x400000", "value 0x22"],
    ],
  },
  {
    name: "mmu: a permission upgrade without a flush may still fault (spurious #PF)",
    source: TLB,
    steps: [
      ...tables({ pte: "0x5005" }),
      ["access w 0x400000 0x1", "pf code=0x3 cr2=0x400000"],
      ["write 0x4000 0x5007", "ok"],
      ["access w 0x400000 0x1", "ok | pf code=0x3 cr2=0x400000"],
      ["invlpg 0x400000", "ok"],
      ["access w 0x400000 0x2", "ok"],
      ["read 0x5000", "value 0x2"],
    ],
  },
  {
    name: "mmu: a not-present entry is never cached",
    source: TLB,
    steps: [
      ...tables({ pte: "0x0" }),
      ["write 0x5000 0x33", "ok"],
      ["access r 0x400000", "pf code=0x0 cr2=0x400000"],
      ["write 0x4000 0x5007", "ok"],
      ["access r 0x400000", "value 0x33"],
    ],
  },
  {
    name: "mmu: a write through a stale translation may land in the old frame",
    source: TLB,
    steps: [
      ...tables(),
      ["access r 0x400000", "value 0x0"],
      ["write 0x4000 0x6007", "ok"],
      ["access w 0x400000 0x77", "ok"],
      ["read 0x5000", "value 0x0 | value 0x77"],
      ["read 0x6000", "value 0x77 | value 0x0"],
    ],
  },
  {
    name: "mmu: a faulting access leaves every entry's A bit of the leaf unchanged",
    source: "kvm-unit-tests access.c (leaf unchanged on fault); docs/kvm-facts.md A.5",
    steps: [
      ...tables({ pte: "0x5001" }),
      ["access r 0x400000 user", "pf code=0x5 cr2=0x400000"],
      ["read 0x4000", "value 0x5001"],
    ],
  },
  {
    name: "mmu: INVLPG of a non-canonical address is a no-op",
    source: "Intel SDM vol. 2A INVLPG (non-canonical: no operation)",
    steps: [
      ...tables(),
      ["invlpg 0x800000000000", "ok"],
      ["access r 0x400000", "value 0x0"],
    ],
  },
];
