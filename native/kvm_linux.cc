// Linux KVM, system and VM level: one export per ioctl, plus the triple that
// must not be separated (create VM + map guest memory + register it), so no
// host address ever reaches JavaScript. No policy here: checks of API
// version, capabilities and sizes are made in monitor/backend/kvm/. The
// vCPU exports are in vcpu_linux.cc and vcpu_debug_linux.cc. Also exported:
// the struct kvm_run size and the offset of every field TypeScript reads,
// each pinned here to the value docs/abi.md Appendix A gives, and checked
// again by native/binding/load.ts when the addon is loaded.
#include "kvm_common.h"
#include "guest_mapping.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <vector>

namespace ukvm {

// The kvm_run fields the TypeScript decoder reads (monitor/backend/kvm/),
// named as in native/binding/kvm.ts KVM_RUN_OFFSETS.
struct RunField {
  const char* name;
  size_t offset;
};
#define UKVM_RUN_FIELD(js, member, expected)                                      \
  static_assert(offsetof(struct kvm_run, member) == (expected), "kvm_run." #member); \
  constexpr RunField kRun_##js{#js, offsetof(struct kvm_run, member)};
UKVM_RUN_FIELD(immediateExit, immediate_exit, 1)
UKVM_RUN_FIELD(exitReason, exit_reason, 8)
UKVM_RUN_FIELD(ioDirection, io.direction, 32)
UKVM_RUN_FIELD(ioSize, io.size, 33)
UKVM_RUN_FIELD(ioPort, io.port, 34)
UKVM_RUN_FIELD(ioCount, io.count, 36)
UKVM_RUN_FIELD(ioDataOffset, io.data_offset, 40)
UKVM_RUN_FIELD(mmioPhysAddr, mmio.phys_addr, 32)
UKVM_RUN_FIELD(mmioData, mmio.data, 40)
UKVM_RUN_FIELD(mmioLen, mmio.len, 48)
UKVM_RUN_FIELD(mmioIsWrite, mmio.is_write, 52)
UKVM_RUN_FIELD(failEntryReason, fail_entry.hardware_entry_failure_reason, 32)
UKVM_RUN_FIELD(internalSuberror, internal.suberror, 32)
UKVM_RUN_FIELD(debugException, debug.arch.exception, 32)
UKVM_RUN_FIELD(debugPc, debug.arch.pc, 40)
UKVM_RUN_FIELD(debugDr6, debug.arch.dr6, 48)
UKVM_RUN_FIELD(debugDr7, debug.arch.dr7, 56)
#undef UKVM_RUN_FIELD
static_assert(sizeof(struct kvm_run) == 2352, "struct kvm_run size (Appendix A)");
static_assert(sizeof(((struct kvm_run*)nullptr)->io.data_offset) == 8, "io.data_offset is a u64");
static_assert(KVM_EXIT_IO == 2 && KVM_EXIT_DEBUG == 4 && KVM_EXIT_HLT == 5 && KVM_EXIT_MMIO == 6 &&
                  KVM_EXIT_SHUTDOWN == 8 && KVM_EXIT_FAIL_ENTRY == 9 && KVM_EXIT_INTERNAL_ERROR == 17,
              "exit reasons (Appendix A)");

constexpr RunField kRunFields[] = {
    kRun_immediateExit, kRun_exitReason, kRun_ioDirection, kRun_ioSize, kRun_ioPort, kRun_ioCount,
    kRun_ioDataOffset, kRun_mmioPhysAddr, kRun_mmioData, kRun_mmioLen, kRun_mmioIsWrite,
    kRun_failEntryReason, kRun_internalSuberror, kRun_debugException, kRun_debugPc, kRun_debugDr6,
    kRun_debugDr7,
};

// openKvm(): fd of /dev/kvm, opened read/write and close-on-exec.
static Napi::Value OpenKvm(const Napi::CallbackInfo& info) {
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    ThrowErrno(info.Env(), "open", errno);
    return info.Env().Undefined();
  }
  return Num(info.Env(), fd);
}

static Napi::Value ApiVersion(const Napi::CallbackInfo& info) {
  return SimpleIoctl(info, KVM_GET_API_VERSION, "KVM_GET_API_VERSION");
}
static Napi::Value VcpuMmapSize(const Napi::CallbackInfo& info) {
  return SimpleIoctl(info, KVM_GET_VCPU_MMAP_SIZE, "KVM_GET_VCPU_MMAP_SIZE");
}
// checkExtension(fd, cap): KVM_CHECK_EXTENSION.
static Napi::Value CheckExtension(const Napi::CallbackInfo& info) {
  int fd, cap;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &cap)) return info.Env().Undefined();
  int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);
  if (r < 0) {
    ThrowErrno(info.Env(), "KVM_CHECK_EXTENSION", errno);
    return info.Env().Undefined();
  }
  return Num(info.Env(), r);
}

// supportedCpuid(kvmFd, maxEntries): the kvm_cpuid2 bytes KVM reports.
static Napi::Value SupportedCpuid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd, max;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &max)) return env.Undefined();
  if (max < 1 || max > 4096) {
    ThrowType(env, "maxEntries out of range");
    return env.Undefined();
  }
  size_t bytes = kCpuid2Header + max * sizeof(struct kvm_cpuid_entry2);
  std::vector<uint8_t> buf(bytes, 0);
  auto* c = reinterpret_cast<struct kvm_cpuid2*>(buf.data());
  c->nent = max;
  if (ioctl(fd, kGetSupportedCpuid, c) < 0) {
    ThrowErrno(env, "KVM_GET_SUPPORTED_CPUID", errno);
    return env.Undefined();
  }
  size_t used = kCpuid2Header + c->nent * sizeof(struct kvm_cpuid_entry2);
  Napi::ArrayBuffer out = Napi::ArrayBuffer::New(env, used);
  memcpy(out.Data(), buf.data(), used);
  return out;
}

// The two halves of a VM: KVM_CREATE_VM (close-on-exec), and its guest RAM,
// a zero-filled anonymous shared mapping registered as slot 0 at GPA 0. They
// throw, and leave nothing behind, on failure. A library worker makes the
// first half ahead, while it is idle (monitor/backend/kvm/backend.ts).
static int NewVm(Napi::Env env, int kvm) {
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) {
    ThrowErrno(env, "KVM_CREATE_VM", errno);
    return -1;
  }
  fcntl(vm, F_SETFD, FD_CLOEXEC);
  return vm;
}

static bool MemSizeArg(const Napi::CallbackInfo& info, size_t i, uint64_t* size) {
  if (!ArgSize(info, i, size)) return false;
  if (*size == 0 || *size % 4096 != 0) {
    ThrowType(info.Env(), "memory size must be a non-zero multiple of 4096");
    return false;
  }
  return true;
}

static Napi::Value AttachMemory(Napi::Env env, int vm, uint64_t size) {
  void* mem = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) {
    ThrowErrno(env, "mmap", errno);
    return env.Undefined();
  }
  struct kvm_userspace_memory_region region;
  memset(&region, 0, sizeof region);
  region.slot = 0;
  region.guest_phys_addr = 0;
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uint64_t>(mem);
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
    int e = errno;
    munmap(mem, size);
    ThrowErrno(env, "KVM_SET_USER_MEMORY_REGION", e);
    return env.Undefined();
  }
  return GuestMappingBuffer(env, mem, size);
}

// createVm(kvmFd, memSize): both halves. Returns { vmFd, memory } where
// memory is the mapping as an ArrayBuffer.
static Napi::Value CreateVm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int kvm;
  uint64_t size;
  if (!ArgInt(info, 0, &kvm) || !MemSizeArg(info, 1, &size)) return env.Undefined();
  int vm = NewVm(env, kvm);
  if (vm < 0) return env.Undefined();
  Napi::Value memory = AttachMemory(env, vm, size);
  if (env.IsExceptionPending()) {
    close(vm);
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("vmFd", Num(env, vm));
  out.Set("memory", memory);
  return out;
}

// vmCreate(kvmFd): the first half alone; returns the VM descriptor.
static Napi::Value VmCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int kvm;
  if (!ArgInt(info, 0, &kvm)) return env.Undefined();
  int vm = NewVm(env, kvm);
  return vm < 0 ? env.Undefined() : Num(env, vm);
}

// vmAttachMemory(vmFd, memSize): the second half for a VM made by vmCreate;
// returns the mapping as an ArrayBuffer (the VM descriptor stays the caller's).
static Napi::Value VmAttachMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int vm;
  uint64_t size;
  if (!ArgInt(info, 0, &vm) || !MemSizeArg(info, 1, &size)) return env.Undefined();
  return AttachMemory(env, vm, size);
}

// protect(memory, offset, length, prot): mprotect of a page-aligned range
// inside a guest-memory ArrayBuffer; prot bits 1 = read, 2 = write, 4 = exec.
static Napi::Value Protect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) {
    ThrowType(env, "expected the guest memory ArrayBuffer");
    return env.Undefined();
  }
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  uint64_t off, len;
  int prot;
  if (!ArgSize(info, 1, &off) || !ArgSize(info, 2, &len) || !ArgInt(info, 3, &prot)) return env.Undefined();
  if (off % 4096 || len % 4096 || off > ab.ByteLength() || len > ab.ByteLength() - off || prot > 7) {
    ThrowType(env, "protect range must be page aligned and inside guest memory");
    return env.Undefined();
  }
  int p = (prot & 1 ? PROT_READ : 0) | (prot & 2 ? PROT_WRITE : 0) | (prot & 4 ? PROT_EXEC : 0);
  if (len && mprotect(static_cast<uint8_t*>(ab.Data()) + off, len, p) < 0) ThrowErrno(env, "mprotect", errno);
  return env.Undefined();
}

// unmapBuffer(area): unmaps an area MappedBuffer made (a run area) or guest
// memory (GuestMappingBuffer: unmapped once no other thread shares it) now,
// and detaches its ArrayBuffer, so JavaScript can no longer reach
// the range (views of it read as empty). Once the VM is closed. An area
// already unmapped (a detached buffer) is left alone; any other buffer is a
// TypeError.
static Napi::Value UnmapBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) {
    ThrowType(env, "expected a mapped ArrayBuffer");
    return env.Undefined();
  }
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  if (ab.IsDetached()) return env.Undefined();
  void* data = ab.Data();
  // Guest memory (guest_mapping.cc): another thread may still hold it shared.
  if (ReleaseGuestMapping(data, ab.ByteLength())) {
    ab.Detach();
    return env.Undefined();
  }
  size_t* len = nullptr;
  {
    std::lock_guard<std::mutex> g(Mapped().lock);
    auto it = Mapped().len.find(data);
    if (it != Mapped().len.end()) {
      len = it->second;
      Mapped().len.erase(it);
    }
  }
  if (len == nullptr) {
    ThrowType(env, "not a mapped area");
    return env.Undefined();
  }
  // The finalizer (on this thread: the buffer belongs to this isolate) then frees only the length.
  munmap(data, *len);
  *len = 0;
  ab.Detach();
  return env.Undefined();
}

void RegisterKvm(Napi::Env env, Napi::Object exports) {
  exports.Set("unmapBuffer", Napi::Function::New(env, UnmapBuffer));
  exports.Set("openKvm", Napi::Function::New(env, OpenKvm));
  exports.Set("apiVersion", Napi::Function::New(env, ApiVersion));
  exports.Set("checkExtension", Napi::Function::New(env, CheckExtension));
  exports.Set("vcpuMmapSize", Napi::Function::New(env, VcpuMmapSize));
  exports.Set("supportedCpuid", Napi::Function::New(env, SupportedCpuid));
  exports.Set("createVm", Napi::Function::New(env, CreateVm));
  exports.Set("vmCreate", Napi::Function::New(env, VmCreate));
  exports.Set("vmAttachMemory", Napi::Function::New(env, VmAttachMemory));
  exports.Set("protect", Napi::Function::New(env, Protect));
  exports.Set("kvmRunSize", Num(env, sizeof(struct kvm_run)));
  Napi::Object offsets = Napi::Object::New(env);
  for (const RunField& f : kRunFields) offsets.Set(f.name, Num(env, static_cast<double>(f.offset)));
  exports.Set("kvmRunOffsets", offsets);
}

}  // namespace ukvm
