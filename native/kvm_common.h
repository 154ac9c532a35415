// Helpers shared by the KVM sources (kvm_linux.cc: system and VM ioctls;
// vcpu_linux.cc: vCPU ioctls; vcpu_debug_linux.cc: debug ioctls).
#pragma once
#include "native_util.h"

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/kvm.h>

#include <cstddef>
#include <mutex>
#include <unordered_map>

namespace ukvm {

// Compiled as C++, the kernel header's flexible array member makes
// sizeof(struct kvm_cpuid2) 12 instead of 8, so the ioctl numbers derived from
// it are wrong (EINVAL). Use the C ABI values and sizes (spec Appendix A).
inline constexpr unsigned long kGetSupportedCpuid = 0xC008AE05;
inline constexpr unsigned long kSetCpuid2 = 0x4008AE90;
inline constexpr size_t kCpuid2Header = 8;
static_assert(sizeof(struct kvm_cpuid_entry2) == 40, "kvm_cpuid_entry2 layout");
static_assert(sizeof(struct kvm_regs) == 144 && sizeof(struct kvm_sregs) == 312, "register layouts");
// The layouts monitor/backend/kvm/x86.ts and debug.ts read and write.
static_assert(offsetof(struct kvm_regs, rax) == 0 && offsetof(struct kvm_regs, rdi) == 40 &&
                  offsetof(struct kvm_regs, rsp) == 48 && offsetof(struct kvm_regs, rbp) == 56 &&
                  offsetof(struct kvm_regs, r8) == 64 && offsetof(struct kvm_regs, r15) == 120 &&
                  offsetof(struct kvm_regs, rip) == 128 && offsetof(struct kvm_regs, rflags) == 136,
              "kvm_regs layout (Appendix A)");
static_assert(sizeof(struct kvm_segment) == 24 && offsetof(struct kvm_segment, limit) == 8 &&
                  offsetof(struct kvm_segment, selector) == 12 && offsetof(struct kvm_segment, type) == 14 &&
                  offsetof(struct kvm_segment, unusable) == 22,
              "kvm_segment layout (Appendix A)");
static_assert(offsetof(struct kvm_sregs, cs) == 0 && offsetof(struct kvm_sregs, ds) == 24 &&
                  offsetof(struct kvm_sregs, ss) == 120 && offsetof(struct kvm_sregs, tr) == 144 &&
                  offsetof(struct kvm_sregs, ldt) == 168 && offsetof(struct kvm_sregs, gdt) == 192 &&
                  offsetof(struct kvm_sregs, idt) == 208 && offsetof(struct kvm_sregs, cr0) == 224 &&
                  offsetof(struct kvm_sregs, cr2) == 232 && offsetof(struct kvm_sregs, cr8) == 256 &&
                  offsetof(struct kvm_sregs, efer) == 264 && offsetof(struct kvm_sregs, apic_base) == 272 &&
                  offsetof(struct kvm_sregs, interrupt_bitmap) == 280,
              "kvm_sregs layout (Appendix A)");
static_assert(KVM_GET_REGS == 0x8090AE81 && KVM_SET_REGS == 0x4090AE82, "regs ioctl numbers (Appendix A)");
static_assert(KVM_GET_SREGS == 0x8138AE83 && KVM_SET_SREGS == 0x4138AE84, "sregs ioctl numbers (Appendix A)");

inline Napi::Value Num(Napi::Env env, double v) { return Napi::Number::New(env, v); }

// An ArrayBuffer over an mmap'd area (guest memory, a vCPU's run area),
// unmapped when the buffer is collected or, earlier, by unmapBuffer (the VM
// is closed: a mapping of a vCPU's run area keeps the whole KVM VM alive in
// the kernel, so waiting for the garbage collector would keep closed VMs
// around). Mapped() records each live area's length by address; unmapBuffer
// takes the area out, unmaps it and sets that length to 0, so the finalizer
// that runs later unmaps nothing (the range may hold a new mapping by then).
struct MappedAreas {
  std::mutex lock;
  std::unordered_map<void*, size_t*> len;
};
inline MappedAreas& Mapped() {
  static MappedAreas areas;
  return areas;
}

inline void Unmap(Napi::Env, void* data, size_t* len) {
  {
    std::lock_guard<std::mutex> g(Mapped().lock);
    auto it = Mapped().len.find(data);
    // Only our own entry: after an early unmap the address may name a newer area.
    if (it != Mapped().len.end() && it->second == len) Mapped().len.erase(it);
  }
  if (*len != 0) munmap(data, *len);
  delete len;
}

inline Napi::ArrayBuffer MappedBuffer(Napi::Env env, void* p, size_t len) {
  size_t* hint = new size_t(len);
  {
    std::lock_guard<std::mutex> g(Mapped().lock);
    Mapped().len[p] = hint;
  }
  return Napi::ArrayBuffer::New(env, p, len, Unmap, hint);
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

// One ioctl on vcpuFd (argument 0) that reads or writes a fixed-size struct T
// whose image is argument 1, a Uint8Array of exactly sizeof(T) bytes. The
// image is copied into aligned storage, passed to the kernel and copied back
// (so a GET fills the caller's bytes; a SET leaves them as given).
template <typename T, unsigned long REQ>
inline Napi::Value StructIoctl(const Napi::CallbackInfo& info, const char* name) {
  int fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  uint8_t* bytes = ArgBytes(info, 1, sizeof(T));
  if (!bytes) return info.Env().Undefined();
  T value;
  memcpy(&value, bytes, sizeof value);
  if (ioctl(fd, REQ, &value) < 0) {
    ThrowErrno(info.Env(), name, errno);
    return info.Env().Undefined();
  }
  memcpy(bytes, &value, sizeof value);
  return info.Env().Undefined();
}

}  // namespace ukvm
