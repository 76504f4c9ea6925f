/**
 * @module
 * x86-64 paging constants: page-table entry bits, page-fault error-code bits and
 * page sizes. Constants only, and {@linkcode levelShift}, the one-line shift they
 * define (shared by every backend, which share no logic).
 *
 * Sources: Intel SDM vol. 3A section 4.5 (4-level paging) table 4-14..4-20 and 4.7
 * (page-fault error code); AMD APM vol. 2 section 5.3; docs/kvm-facts.md A.1 and A.4.
 */

/** Bit 0: present. */
export const PTE_P = 1n << 0n;
/** Bit 1: read/write (writes allowed if set at every level). */
export const PTE_W = 1n << 1n;
/** Bit 2: user/supervisor (CPL 3 allowed if set at every level). */
export const PTE_U = 1n << 2n;
/** Bit 3: page-level write-through (cache attribute; no effect on permissions). */
export const PTE_PWT = 1n << 3n;
/** Bit 4: page-level cache disable (cache attribute; no effect on permissions). */
export const PTE_PCD = 1n << 4n;
/** Bit 5: accessed. */
export const PTE_A = 1n << 5n;
/** Bit 6: dirty (leaf entries only; ignored in non-leaf entries). */
export const PTE_D = 1n << 6n;
/** Bit 7: page size in PDPTEs and PDEs (1 GiB / 2 MiB leaf); PAT in PTEs; MBZ in PML4Es. */
export const PTE_PS = 1n << 7n;
/** Bit 8: global (leaf); AMD: MBZ in PML4Es (docs/kvm-facts.md A.2). */
export const PTE_G = 1n << 8n;
/** Bit 12 of a large-page leaf: PAT. */
export const PTE_LARGE_PAT = 1n << 12n;
/** Bit 63: execute-disable when EFER.NXE=1, reserved otherwise. */
export const PTE_NX = 1n << 63n;
/** Bits 11:9: ignored in every 4-level entry (SDM tables 4-15..4-20; AMD APM "AVL"). */
export const PTE_IGNORED_LOW = 0xe00n;
/**
 * Bits 62:52: ignored in every 4-level entry (SDM tables 4-15..4-20); in leaves, bits
 * 62:59 are the protection key when CR4.PKE/PKS is set (docs/kvm-facts.md A.1).
 */
export const PTE_IGNORED_HIGH = 0x7ff0000000000000n;
/** Physical addresses have at most 52 bits: entry bits 51:M are reserved (SDM 4.1.4). */
export const MAX_PHYS_ADDR_BITS = 52;
/**
 * Bits 51:12 of an entry (and of CR3): the physical address of the next table or page,
 * at the architectural maximum MAXPHYADDR of 52 (SDM 4.5, tables 4-14..4-20); bits
 * 51:M below that are reserved, not address (SDM 4.1.4).
 */
export const PTE_ADDR_MASK = 0x000f_ffff_ffff_f000n;
/** {@linkcode PTE_ADDR_MASK} on the low u32 half of an entry (the core's split form): bits 31:12. */
export const PTE_ADDR_MASK_LO = 0xfffff000;
/** {@linkcode PTE_ADDR_MASK} on the high u32 half of an entry: bits 51:32 as 19:0. */
export const PTE_ADDR_MASK_HI = 0x000fffff;

/** Page-fault error code bits (SDM 4.7; KVM PFERR_*_MASK). */
export const PFERR_PRESENT = 1 << 0;
export const PFERR_WRITE = 1 << 1;
export const PFERR_USER = 1 << 2;
export const PFERR_RSVD = 1 << 3;
export const PFERR_FETCH = 1 << 4;
export const PFERR_PK = 1 << 5;
/** Bit 6 SS: shadow-stack access (SDM 4.7; Linux `trap_pf.h` X86_PF_SHSTK). */
export const PFERR_SS = 1 << 6;
/** Bit 15 SGX: SGX-specific access-control violation (SDM 4.7; X86_PF_SGX, PFERR_SGX_MASK). */
export const PFERR_SGX = 1 << 15;
/**
 * Bit 31 RMP: SEV-SNP RMP violation (AMD APM vol. 2 8.4.2; X86_PF_RMP, KVM
 * PFERR_GUEST_RMP_MASK). Written as a literal: `1 << 31` is negative in JavaScript.
 */
export const PFERR_RMP = 0x8000_0000;

/** Page sizes and shifts: a 4 KiB page, 512 entries of 8 bytes per table. */
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 4096;
/** The offset of an address within its 4 KiB page: bits 11:0 (not Linux's PAGE_MASK, ~this). */
export const PAGE_OFFSET_MASK = 0xfff;
export const PT_ENTRIES = 512;
/** Index bits per level: log2(PT_ENTRIES). */
export const PT_INDEX_BITS = 9;
/** Linear-address bit where level L's index starts: 12 + 9 * (L - 1), by level. */
export const LEVEL_SHIFT = [0, 12, 21, 30, 39] as const;

/**
 * The linear-address bit where level `level`'s table index starts (1 = PTE: 12, 2 = PDE:
 * 21, 3 = PDPTE: 30, 4 = PML4E: 39), which is also log2 of the bytes a level-`level`
 * leaf maps (SDM 4.5, figures 4-8..4-10).
 */
export function levelShift(level: number): number {
  return PAGE_SHIFT + PT_INDEX_BITS * (level - 1);
}
/** Levels: 1 = PTE (4 KiB), 2 = PDE (2 MiB), 3 = PDPTE (1 GiB), 4 = PML4E. */
export const PG_LEVEL_4K = 1;
export const PG_LEVEL_2M = 2;
export const PG_LEVEL_1G = 3;
export const PT64_ROOT_4LEVEL = 4;

/** Linear addresses are 48 bits wide in 4-level paging; bits 63:47 must be equal. */
export const VA_BITS = 48;

/**
 * The gfn limit of KVM_SET_USER_MEMORY_REGION under shadow paging: `kvm_mmu_max_gfn()`
 * uses 52 address bits when TDP is off (`arch/x86/kvm/mmu/mmu.c`), so slots must end
 * below 2^52.
 */
export const KVM_MAX_GPA_BITS_SHADOW = 52;
