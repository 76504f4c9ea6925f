/**
 * @module
 * `union kvm_mmu_page_role` (docs/kvm-facts.md B.3; `arch/x86/include/asm/kvm_host.h`, v6.10)
 * as a 32-bit word. The core never uses 4-byte gptes, quadrants, guest mode,
 * passthrough or SMM, but keeps their positions so a role prints as in KVM.
 */

export const ROLE_LEVEL_MASK = 0xf; // level:4, bits 3:0
export const ROLE_HAS_4_BYTE_GPTE = 1 << 4;
export const ROLE_QUADRANT_SHIFT = 5; // quadrant:2, bits 6:5
export const ROLE_DIRECT = 1 << 7;
export const ROLE_ACCESS_SHIFT = 8; // access:3, bits 10:8
export const ROLE_ACCESS_MASK = 7 << ROLE_ACCESS_SHIFT;
export const ROLE_INVALID = 1 << 11;
export const ROLE_EFER_NX = 1 << 12;
export const ROLE_CR0_WP = 1 << 13;
export const ROLE_SMEP_ANDNOT_WP = 1 << 14;
export const ROLE_SMAP_ANDNOT_WP = 1 << 15;
export const ROLE_AD_DISABLED = 1 << 16;
export const ROLE_GUEST_MODE = 1 << 17;
export const ROLE_PASSTHROUGH = 1 << 18;

/** ACC_* (KVM mmu.h): the positive rights of a walk or a shadow page. */
export const ACC_EXEC = 1;
export const ACC_WRITE = 2;
export const ACC_USER = 4;
export const ACC_ALL = 7;

/**
 * `sync_role_ign` (mmu.c `kvm_sync_page_check`): role bits a synced page may differ
 * in from the current root role.
 */
export const SYNC_ROLE_IGN = ROLE_LEVEL_MASK | ROLE_ACCESS_MASK | (3 << ROLE_QUADRANT_SHIFT) |
  ROLE_PASSTHROUGH;

/** The level of a role. */
export function roleLevel(role: number): number {
  return role & ROLE_LEVEL_MASK;
}

/** The access of a role. */
export function roleAccess(role: number): number {
  return (role & ROLE_ACCESS_MASK) >>> ROLE_ACCESS_SHIFT;
}

/** `kvm_mmu_child_role`: one level down, with the given direct flag and access. */
export function childRole(parent: number, direct: boolean, access: number): number {
  const level = (parent & ROLE_LEVEL_MASK) - 1;
  let role = parent & ~(ROLE_LEVEL_MASK | ROLE_ACCESS_MASK | ROLE_DIRECT | ROLE_PASSTHROUGH);
  role |= level | (access << ROLE_ACCESS_SHIFT);
  if (direct) role |= ROLE_DIRECT;
  return role >>> 0;
}

/** A role in KVM's trace notation, for audit messages. */
export function formatRole(role: number): string {
  const parts = [`level=${roleLevel(role)}`, `access=${roleAccess(role)}`];
  if (role & ROLE_DIRECT) parts.push("direct");
  if (role & ROLE_INVALID) parts.push("invalid");
  if (role & ROLE_CR0_WP) parts.push("cr0_wp");
  if (role & ROLE_EFER_NX) parts.push("efer_nx");
  if (role & ROLE_SMEP_ANDNOT_WP) parts.push("smep_andnot_wp");
  if (role & ROLE_SMAP_ANDNOT_WP) parts.push("smap_andnot_wp");
  return parts.join(" ");
}
