/* SPDX-License-Identifier: MIT */
/*
 * A minimal stand-in for tools/testing/selftests/kvm/include/x86/processor.h (see
 * kvm_util.h here): kvm_get_supported_cpuid() with the upstream signature, on the ioctl.
 */
#ifndef SHADOWFUZZ_STUB_PROCESSOR_H
#define SHADOWFUZZ_STUB_PROCESSOR_H

#include "kvm_util.h"

static inline const struct kvm_cpuid2 *kvm_get_supported_cpuid(void)
{
	static struct kvm_cpuid2 *cpuid;
	if (cpuid == NULL) {
		int fd = stub_kvm_fd();
		cpuid = calloc(1, sizeof(*cpuid) + 256 * sizeof(struct kvm_cpuid_entry2));
		cpuid->nent = 256;
		TEST_ASSERT(ioctl(fd, KVM_GET_SUPPORTED_CPUID, cpuid) == 0, "KVM_GET_SUPPORTED_CPUID failed");
		close(fd);
	}
	return cpuid;
}

#endif
