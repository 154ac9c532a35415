// Helpers shared by the KVM sources (kvm_linux.cc: system and VM ioctls;
// vcpu_linux.cc: vCPU ioctls).
#pragma once
#include "native_util.h"

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/kvm.h>

namespace ukvm {

// Compiled as C++, the kernel header's flexible array member makes
// sizeof(struct kvm_cpuid2) 12 instead of 8, so the ioctl numbers derived from
// it are wrong (EINVAL). Use the C ABI values and sizes (spec Appendix A).
inline constexpr unsigned long kGetSupportedCpuid = 0xC008AE05;
inline constexpr unsigned long kSetCpuid2 = 0x4008AE90;
inline constexpr size_t kCpuid2Header = 8;
static_assert(sizeof(struct kvm_cpuid_entry2) == 40, "kvm_cpuid_entry2 layout");
static_assert(sizeof(struct kvm_regs) == 144 && sizeof(struct kvm_sregs) == 312, "register layouts");

inline Napi::Value Num(Napi::Env env, double v) { return Napi::Number::New(env, v); }

// An ArrayBuffer over an mmap'd area, unmapped when the buffer is collected.
inline void Unmap(Napi::Env, void* data, size_t* len) {
  munmap(data, *len);
  delete len;
}

inline Napi::ArrayBuffer MappedBuffer(Napi::Env env, void* p, size_t len) {
  return Napi::ArrayBuffer::New(env, p, len, Unmap, new size_t(len));
}

// One argument-less ioctl on fd (argument 0), its result as a number.
inline Napi::Value SimpleIoctl(const Napi::CallbackInfo& info, unsigned long req, const char* name) {
  int fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  int r = ioctl(fd, req, 0);
  if (r < 0) {
    ThrowErrno(info.Env(), name, errno);
    return info.Env().Undefined();
  }
  return Num(info.Env(), r);
}

}  // namespace ukvm
