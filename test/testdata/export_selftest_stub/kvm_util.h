/* SPDX-License-Identifier: MIT */
/*
 * A minimal stand-in for tools/testing/selftests/kvm/include/kvm_util.h, written for
 * shadowfuzz's test/export_test.ts only: it declares the handful of library names a
 * `deno task export --format selftest` file uses, with the signatures of the upstream
 * library as of Linux 6.x, implemented directly on the KVM ioctls. It is not the
 * kernel's library (no code of it is here): it lets the test check that the generated
 * selftest compiles and runs against that API shape. Build a real selftest in a kernel
 * tree.
 */
#ifndef SHADOWFUZZ_STUB_KVM_UTIL_H
#define SHADOWFUZZ_STUB_KVM_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/kvm.h>

/* kselftest.h exit codes. */
#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_SKIP 4

#define pr_info(...) printf(__VA_ARGS__)

static inline void ksft_exit_pass(void) { exit(KSFT_PASS); }
static inline __attribute__((noreturn, format(printf, 1, 2))) void ksft_exit_skip(const char *fmt, ...)
{
	va_list ap;
	printf("# SKIP ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	exit(KSFT_SKIP);
}

/* The library's assertion: message and exit 254 (test_util.c test_assert). */
#define TEST_ASSERT(cond, fmt, ...)                                                       \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "==== Test Assertion Failure ====\n  %s:%d: %s\n  " fmt "\n", \
				__FILE__, __LINE__, #cond, ##__VA_ARGS__);                \
			exit(254);                                                        \
		}                                                                         \
	} while (0)
#define TEST_FAIL(fmt, ...) TEST_ASSERT(false, fmt, ##__VA_ARGS__)
#define TEST_REQUIRE(f)                                                                   \
	do {                                                                              \
		if (!(f))                                                                 \
			ksft_exit_skip("- " #f "\n");                                     \
	} while (0)

struct kvm_vm {
	int kvm_fd;
	int fd;
};

struct kvm_vcpu {
	int fd;
	struct kvm_run *run;
};

static inline int stub_kvm_fd(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		ksft_exit_skip("/dev/kvm: %s\n", strerror(errno));
	return fd;
}

static inline bool kvm_has_cap(long cap)
{
	int fd = stub_kvm_fd();
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);
	close(fd);
	return r > 0;
}

#define __vm_ioctl(vm, cmd, arg) ioctl((vm)->fd, cmd, arg)
#define __vcpu_ioctl(vcpu, cmd, arg) ioctl((vcpu)->fd, cmd, arg)
#define vcpu_ioctl(vcpu, cmd, arg) \
	TEST_ASSERT(__vcpu_ioctl(vcpu, cmd, arg) == 0, "%s failed: %s", #cmd, strerror(errno))

static inline struct kvm_vm *vm_create_barebones(void)
{
	struct kvm_vm *vm = calloc(1, sizeof(*vm));
	vm->kvm_fd = stub_kvm_fd();
	vm->fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	TEST_ASSERT(vm->fd >= 0, "KVM_CREATE_VM failed: %s", strerror(errno));
	return vm;
}

static inline struct kvm_vcpu *__vm_vcpu_add(struct kvm_vm *vm, uint32_t vcpu_id)
{
	struct kvm_vcpu *vcpu = calloc(1, sizeof(*vcpu));
	vcpu->fd = ioctl(vm->fd, KVM_CREATE_VCPU, vcpu_id);
	TEST_ASSERT(vcpu->fd >= 0, "KVM_CREATE_VCPU failed: %s", strerror(errno));
	int size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	vcpu->run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	TEST_ASSERT(vcpu->run != MAP_FAILED, "mmap of kvm_run failed");
	return vcpu;
}

static inline int __vcpu_run(struct kvm_vcpu *vcpu) { return __vcpu_ioctl(vcpu, KVM_RUN, NULL); }
static inline void vcpu_regs_get(struct kvm_vcpu *vcpu, struct kvm_regs *regs) { vcpu_ioctl(vcpu, KVM_GET_REGS, regs); }
static inline void vcpu_regs_set(struct kvm_vcpu *vcpu, struct kvm_regs *regs) { vcpu_ioctl(vcpu, KVM_SET_REGS, regs); }
static inline void vcpu_sregs_get(struct kvm_vcpu *vcpu, struct kvm_sregs *sregs) { vcpu_ioctl(vcpu, KVM_GET_SREGS, sregs); }
static inline void vcpu_sregs_set(struct kvm_vcpu *vcpu, struct kvm_sregs *sregs) { vcpu_ioctl(vcpu, KVM_SET_SREGS, sregs); }

static inline int __vm_set_user_memory_region(struct kvm_vm *vm, uint32_t slot, uint32_t flags,
					      uint64_t gpa, uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region region = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa, .memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
	};
	return ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &region);
}

static inline void kvm_vm_free(struct kvm_vm *vm)
{
	close(vm->fd);
	close(vm->kvm_fd);
	free(vm);
}

#endif
