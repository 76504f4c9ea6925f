/**
 * @module
 * Linux uAPI constants the kvm backend needs: KVM ioctl numbers, the byte layouts of
 * the structs it passes, exit reasons, mmap/madvise flags and errno numbers. Constants
 * only. Sources: `include/uapi/linux/kvm.h` and `arch/x86/include/uapi/asm/kvm.h`
 * (Linux v6.10), `include/uapi/asm-generic/ioctl.h` (the _IO/_IOW/_IOR/_IOWR encoding),
 * `include/uapi/asm-generic/mman-common.h`, `arch/x86/include/uapi/asm/mman.h`,
 * `include/uapi/asm-generic/errno-base.h` and `errno.h`.
 */

/** `KVMIO` (kvm.h): the ioctl type byte of every KVM ioctl. */
const KVMIO = 0xae;

/** asm-generic/ioctl.h: dir in bits 31:30 (1 write, 2 read), size in 29:16, type 15:8, nr 7:0. */
function ioc(dir: number, nr: number, size: number): number {
  return ((dir << 30) >>> 0) + (size << 16) + (KVMIO << 8) + nr;
}
const IOC_NONE = 0;
const IOC_WRITE = 1;
const IOC_READ = 2;

/** System ioctls (on the /dev/kvm fd). */
export const KVM_GET_API_VERSION = ioc(IOC_NONE, 0x00, 0);
export const KVM_CREATE_VM = ioc(IOC_NONE, 0x01, 0);
export const KVM_GET_VCPU_MMAP_SIZE = ioc(IOC_NONE, 0x04, 0);
/** `_IOWR(KVMIO, 0x05, struct kvm_cpuid2)`; sizeof(struct kvm_cpuid2) = 8 (nent, padding). */
export const KVM_GET_SUPPORTED_CPUID = ioc(IOC_READ | IOC_WRITE, 0x05, 8);

/** `_IO(KVMIO, 0x03)`: KVM_CHECK_EXTENSION (on the VM fd: what this VM supports). */
export const KVM_CHECK_EXTENSION = ioc(IOC_NONE, 0x03, 0);

/** VM ioctls. */
export const KVM_CREATE_VCPU = ioc(IOC_NONE, 0x41, 0);
/** `_IOW(KVMIO, 0x42, struct kvm_dirty_log)`, 16 bytes. */
export const KVM_GET_DIRTY_LOG = ioc(IOC_WRITE, 0x42, 16);
/** `_IOW(KVMIO, 0x46, struct kvm_userspace_memory_region)`, 32 bytes. */
export const KVM_SET_USER_MEMORY_REGION = ioc(IOC_WRITE, 0x46, 32);
export const KVM_SET_TSS_ADDR = ioc(IOC_NONE, 0x47, 0);
/** `_IOW(KVMIO, 0x48, __u64)`. */
export const KVM_SET_IDENTITY_MAP_ADDR = ioc(IOC_WRITE, 0x48, 8);
/**
 * `_IOW(KVMIO, 0xa3, struct kvm_enable_cap)`: struct kvm_enable_cap is u32 cap, u32 flags,
 * u64 args[4], u8 pad[64] = 104 bytes.
 */
export const KVM_ENABLE_CAP = ioc(IOC_WRITE, 0xa3, 104);
export const ENABLE_CAP_SIZE = 104;
export const ENABLE_CAP_ARGS = 8;
/**
 * `_IOWR(KVMIO, 0xc0, struct kvm_clear_dirty_log)`: u32 slot, u32 num_pages, u64
 * first_page, u64 dirty_bitmap (a pointer; the union with padding2), 24 bytes.
 */
export const KVM_CLEAR_DIRTY_LOG = ioc(IOC_READ | IOC_WRITE, 0xc0, 24);
export const CLEAR_DIRTY_LOG_SIZE = 24;
/** KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 (kvm.h; api.rst 7.18). */
export const KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 = 168;
/** args[0] bits of KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 (kvm.h). */
export const KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE = 1 << 0;
export const KVM_DIRTY_LOG_INITIALLY_SET = 1 << 1;
/** `_IOW(KVMIO, 0xb2, struct kvm_pmu_event_filter)`, 32 bytes without the events. */
export const KVM_SET_PMU_EVENT_FILTER = ioc(IOC_WRITE, 0xb2, 32);

/** vCPU ioctls. */
export const KVM_RUN = ioc(IOC_NONE, 0x80, 0);
/** struct kvm_regs: 18 u64 (rax rbx rcx rdx rsi rdi rsp rbp r8-r15 rip rflags) = 144. */
export const KVM_GET_REGS = ioc(IOC_READ, 0x81, 144);
export const KVM_SET_REGS = ioc(IOC_WRITE, 0x82, 144);
/** struct kvm_sregs: 312 bytes (see SREGS_* below). */
export const KVM_GET_SREGS = ioc(IOC_READ, 0x83, 312);
export const KVM_SET_SREGS = ioc(IOC_WRITE, 0x84, 312);
export const KVM_SET_CPUID2 = ioc(IOC_WRITE, 0x90, 8);
/**
 * `_IOWR(KVMIO, 0x88, struct kvm_msrs)` and `_IOW(KVMIO, 0x89, struct kvm_msrs)`; the
 * struct is `__u32 nmsrs, pad` (8 bytes) then `struct kvm_msr_entry { __u32 index,
 * reserved; __u64 data; }` (16 bytes each). Both return the number of MSRs processed.
 */
export const KVM_GET_MSRS = ioc(IOC_READ | IOC_WRITE, 0x88, 8);
export const KVM_SET_MSRS = ioc(IOC_WRITE, 0x89, 8);
export const MSRS_HEADER = 8;
export const MSR_ENTRY_SIZE = 16;
/**
 * `_IOW(KVMIO, 0x8b, struct kvm_signal_mask)`; the struct is `__u32 len; __u8 sigset[]`,
 * 4 bytes. `len` must be the kernel's sizeof(sigset_t), 8 on x86-64 (api.rst 4.15
 * KVM_SET_SIGNAL_MASK: the mask replaces the thread's mask while KVM_RUN executes).
 */
export const KVM_SET_SIGNAL_MASK = ioc(IOC_WRITE, 0x8b, 4);
export const KERNEL_SIGSET_BYTES = 8;

export const KVM_API_VERSION = 12;

/** struct kvm_regs byte offsets. */
export const REGS_SIZE = 144;
export const REGS_RSP = 6 * 8;
export const REGS_R12 = 12 * 8;
export const REGS_RIP = 16 * 8;
export const REGS_RFLAGS = 17 * 8;

/**
 * struct kvm_sregs: eight struct kvm_segment (cs ds es fs gs ss tr ldt, 24 bytes each:
 * u64 base, u32 limit, u16 selector, u8 type present dpl db s l g avl unusable padding),
 * two struct kvm_dtable (gdt idt: u64 base, u16 limit, u16 padding[3]), then cr0 cr2
 * cr3 cr4 cr8 efer apic_base and u64 interrupt_bitmap[4].
 */
export const SREGS_SIZE = 312;
export const SREGS_CS = 0;
export const SREGS_DS = 24;
export const SREGS_ES = 48;
export const SREGS_FS = 72;
export const SREGS_GS = 96;
export const SREGS_SS = 120;
export const SREGS_TR = 144;
export const SREGS_LDT = 168;
export const SREGS_GDT = 192;
export const SREGS_IDT = 208;
export const SREGS_CR0 = 224;
export const SREGS_CR3 = 240;
export const SREGS_CR4 = 248;
export const SREGS_EFER = 264;
/** Offsets inside struct kvm_segment. */
export const SEG_BASE = 0;
export const SEG_LIMIT = 8;
export const SEG_SELECTOR = 12;
export const SEG_TYPE = 14;
export const SEG_PRESENT = 15;
export const SEG_DPL = 16;
export const SEG_DB = 17;
export const SEG_S = 18;
export const SEG_L = 19;
export const SEG_G = 20;
export const SEG_UNUSABLE = 22;
/** Offsets inside struct kvm_dtable. */
export const DT_BASE = 0;
export const DT_LIMIT = 8;

/** struct kvm_cpuid_entry2: function index flags eax ebx ecx edx padding[3] (u32), 40 bytes. */
export const CPUID_ENTRY_SIZE = 40;
export const CPUID_FUNCTION = 0;
export const CPUID_INDEX = 4;
export const CPUID_FLAGS = 8;
export const CPUID_EAX = 12;
export const CPUID_EBX = 16;
export const CPUID_ECX = 20;
export const CPUID_EDX = 24;
/** struct kvm_cpuid2 header: u32 nent, u32 padding. */
export const CPUID2_HEADER = 8;

/** struct kvm_userspace_memory_region: u32 slot, u32 flags, u64 gpa, u64 size, u64 hva. */
export const MEM_REGION_SIZE = 32;
export const KVM_MEM_LOG_DIRTY_PAGES = 1 << 0;
export const KVM_MEM_READONLY = 1 << 1;

/** struct kvm_pmu_event_filter: u32 action, nevents, fixed_counter_bitmap, flags, pad[4]; u64 events[]. */
export const PMU_FILTER_HEADER = 32;
/** kvm_pmu_event_filter.action (kvm.h): KVM_PMU_EVENT_ALLOW 0, KVM_PMU_EVENT_DENY 1. */
export const KVM_PMU_EVENT_DENY = 1;

/**
 * struct kvm_run: u8 request_interrupt_window, immediate_exit, padding[6]; u32
 * exit_reason at 8; ...; the exit union at 32.
 */
export const RUN_IMMEDIATE_EXIT = 1;
export const RUN_EXIT_REASON = 8;
/** union member `mmio`: u64 phys_addr, u8 data[8], u32 len, u8 is_write. */
export const RUN_MMIO_PHYS_ADDR = 32;
export const RUN_MMIO_DATA = 40;
export const RUN_MMIO_LEN = 48;
export const RUN_MMIO_IS_WRITE = 52;
/** union member `io`: u8 direction, u8 size, u16 port, u32 count, u64 data_offset. */
export const RUN_IO_DIRECTION = 32;
export const RUN_IO_PORT = 34;
/** union member `internal`: u32 suberror, u32 ndata, u64 data[16]. */
export const RUN_INTERNAL_SUBERROR = 32;
/** union member `fail_entry`: u64 hardware_entry_failure_reason. */
export const RUN_FAIL_REASON = 32;
/**
 * After the 256-byte exit union: u64 kvm_valid_regs at 288, u64 kvm_dirty_regs at 296,
 * then the union `s` whose x86 member struct kvm_sync_regs starts with struct kvm_regs
 * (kvm.h; arch/x86/include/uapi/asm/kvm.h). With KVM_SYNC_X86_REGS in kvm_valid_regs,
 * KVM copies the registers there on every exit of KVM_RUN (api.rst, "The kvm_run
 * structure": kvm_valid_regs; and its KVM_CAP_SYNC_REGS entry).
 */
export const RUN_VALID_REGS = 288;
export const RUN_SYNC_REGS = 304;
/** KVM_CAP_SYNC_REGS (kvm.h): KVM_CHECK_EXTENSION returns the valid kvm_valid_regs bits. */
export const KVM_CAP_SYNC_REGS = 74;
/** KVM_SYNC_X86_REGS (arch/x86/include/uapi/asm/kvm.h): bit 0 of kvm_valid_regs. */
export const KVM_SYNC_X86_REGS = 1;

/** KVM_EXIT_* (kvm.h). */
export const KVM_EXIT_NAMES: Readonly<Record<number, string>> = {
  0: "KVM_EXIT_UNKNOWN",
  1: "KVM_EXIT_EXCEPTION",
  2: "KVM_EXIT_IO",
  3: "KVM_EXIT_HYPERCALL",
  4: "KVM_EXIT_DEBUG",
  5: "KVM_EXIT_HLT",
  6: "KVM_EXIT_MMIO",
  7: "KVM_EXIT_IRQ_WINDOW_OPEN",
  8: "KVM_EXIT_SHUTDOWN",
  9: "KVM_EXIT_FAIL_ENTRY",
  10: "KVM_EXIT_INTR",
  17: "KVM_EXIT_INTERNAL_ERROR",
  24: "KVM_EXIT_SYSTEM_EVENT",
  29: "KVM_EXIT_X86_RDMSR",
  30: "KVM_EXIT_X86_WRMSR",
  39: "KVM_EXIT_MEMORY_FAULT",
};
export const KVM_EXIT_IO = 2;
export const KVM_EXIT_MMIO = 6;
export const KVM_EXIT_SHUTDOWN = 8;
export const KVM_EXIT_INTR = 10;

/**
 * POSIX timers and signals for the KVM_RUN watchdog. `struct sigevent`
 * (include/uapi/asm-generic/siginfo.h, 64 bytes on x86-64): sigev_value at 0 (8 bytes),
 * sigev_signo (int) at 8, sigev_notify (int) at 12, the union at 16 whose `_tid` (int) a
 * SIGEV_THREAD_ID timer signals. `struct itimerspec` (include/uapi/linux/time.h):
 * it_interval then it_value, each { i64 tv_sec, i64 tv_nsec }. CLOCK_MONOTONIC
 * (include/uapi/linux/time.h). SIG_BLOCK (asm-generic/signal-defs.h). glibc's sigset_t is
 * 128 bytes (1024 signals), signal n is bit n - 1.
 */
export const SIGEVENT_SIZE = 64;
export const SIGEV_SIGNO = 8;
export const SIGEV_NOTIFY = 12;
export const SIGEV_TID = 16;
export const SIGEV_THREAD_ID = 4;
export const ITIMERSPEC_SIZE = 32;
export const ITIMERSPEC_VALUE_SEC = 16;
export const ITIMERSPEC_VALUE_NSEC = 24;
export const CLOCK_MONOTONIC = 1;
export const SIG_BLOCK = 0;
export const GLIBC_SIGSET_BYTES = 128;

/** open(2) flags (asm-generic/fcntl.h). */
export const O_RDWR = 2;
export const O_CLOEXEC = 0x80000;

/** mmap/madvise (asm-generic/mman-common.h, mman.h). */
export const PROT_NONE = 0;
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const MADV_DONTNEED = 4;

/** errno numbers (asm-generic/errno-base.h, errno.h) to names. */
export const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  2: "ENOENT",
  4: "EINTR",
  5: "EIO",
  7: "E2BIG",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  20: "ENOTDIR",
  21: "EISDIR",
  22: "EINVAL",
  25: "ENOTTY",
  28: "ENOSPC",
  34: "ERANGE",
  38: "ENOSYS",
  95: "EOPNOTSUPP",
};
export const EINTR = 4;
export const EAGAIN = 11;
export const EACCES = 13;
export const ENOENT = 2;

/**
 * The binary stats interface (Documentation/virt/kvm/api.rst 4.133 KVM_GET_STATS_FD;
 * kvm.h struct kvm_stats_header and struct kvm_stats_desc): `_IO(KVMIO, 0xce)` on a VM
 * or vCPU fd returns a read-only fd. The header is six u32: flags, name_size, num_desc,
 * id_offset, desc_offset, data_offset. Each descriptor is u32 flags, s16 exponent, u16
 * size, u32 offset, u32 bucket_size, then `name_size` bytes of name; a stat's `size` u64
 * values lie at data_offset + offset.
 */
export const KVM_GET_STATS_FD = ioc(IOC_NONE, 0xce, 0);
export const STATS_HEADER_SIZE = 24;
export const STATS_DESC_SIZE = 16;
/** KVM_STATS_TYPE_* in bits 3:0 of a descriptor's flags (kvm.h). */
export const KVM_STATS_TYPE_MASK = 0xf;
export const KVM_STATS_TYPE_CUMULATIVE = 0;
