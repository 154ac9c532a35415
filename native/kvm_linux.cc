// Linux KVM: one export per ioctl, plus the pairs that must not be separated
// (create VM + map guest memory + register it; create vCPU + map its run
// area), so no host address ever reaches JavaScript. No policy here: checks of
// API version, capabilities and sizes are made in monitor/backend/kvm.ts.
#include "native_util.h"
#include "vcpu_registry.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vector>

namespace ukvm {

static std::atomic<int> g_interrupters{0};  // handlers/kicks in flight (see DestroyVcpu)

// Compiled as C++, the kernel header's flexible array member makes
// sizeof(struct kvm_cpuid2) 12 instead of 8, so the ioctl numbers derived from
// it are wrong (EINVAL). Use the C ABI values and sizes (spec Appendix A).
constexpr unsigned long kGetSupportedCpuid = 0xC008AE05;
constexpr unsigned long kSetCpuid2 = 0x4008AE90;
constexpr size_t kCpuid2Header = 8;
static_assert(sizeof(struct kvm_cpuid_entry2) == 40, "kvm_cpuid_entry2 layout");
static_assert(sizeof(struct kvm_regs) == 144 && sizeof(struct kvm_sregs) == 312, "register layouts");  // handlers/kicks in flight (see DestroyVcpu)

static Napi::Value Num(Napi::Env env, double v) { return Napi::Number::New(env, v); }

int ArgSlot(const Napi::CallbackInfo& info, size_t i) {
  int slot = info.Length() > i && info[i].IsNumber() ? LiveSlot(info[i].As<Napi::Number>().DoubleValue()) : -1;
  if (slot < 0) ThrowType(info.Env(), "no such vCPU");
  return slot;
}

// openKvm(): fd of /dev/kvm, opened read/write and close-on-exec.
static Napi::Value OpenKvm(const Napi::CallbackInfo& info) {
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    ThrowErrno(info.Env(), "open", errno);
    return info.Env().Undefined();
  }
  return Num(info.Env(), fd);
}

// ioctlNoArg-style exports: apiVersion(kvmFd), vcpuMmapSize(kvmFd).
static Napi::Value SimpleIoctl(const Napi::CallbackInfo& info, unsigned long req, const char* name) {
  int fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  int r = ioctl(fd, req, 0);
  if (r < 0) {
    ThrowErrno(info.Env(), name, errno);
    return info.Env().Undefined();
  }
  return Num(info.Env(), r);
}
static Napi::Value ApiVersion(const Napi::CallbackInfo& info) {
  return SimpleIoctl(info, KVM_GET_API_VERSION, "KVM_GET_API_VERSION");
}
static Napi::Value VcpuMmapSize(const Napi::CallbackInfo& info) {
  return SimpleIoctl(info, KVM_GET_VCPU_MMAP_SIZE, "KVM_GET_VCPU_MMAP_SIZE");
}
// tscKhz(vcpuFd): KVM_GET_TSC_KHZ.
static Napi::Value TscKhz(const Napi::CallbackInfo& info) {
  return SimpleIoctl(info, KVM_GET_TSC_KHZ, "KVM_GET_TSC_KHZ");
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

// setCpuid(vcpuFd, bytes): KVM_SET_CPUID2 with a kvm_cpuid2 image.
static Napi::Value SetCpuid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgInt(info, 0, &fd)) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsTypedArray()) {
    ThrowType(env, "expected a Uint8Array");
    return env.Undefined();
  }
  Napi::Uint8Array a = info[1].As<Napi::Uint8Array>();
  if (a.ByteLength() < kCpuid2Header) {
    ThrowType(env, "cpuid image too short");
    return env.Undefined();
  }
  // Copy to aligned storage, then check nent against the size actually given.
  std::vector<uint64_t> buf((a.ByteLength() + 7) / 8, 0);
  memcpy(buf.data(), a.Data(), a.ByteLength());
  auto* c = reinterpret_cast<struct kvm_cpuid2*>(buf.data());
  if (kCpuid2Header + uint64_t(c->nent) * sizeof(struct kvm_cpuid_entry2) > a.ByteLength()) {
    ThrowType(env, "cpuid image shorter than nent says");
    return env.Undefined();
  }
  if (ioctl(fd, kSetCpuid2, c) < 0) ThrowErrno(env, "KVM_SET_CPUID2", errno);
  return env.Undefined();
}

static void Unmap(Napi::Env, void* data, size_t* len) {
  munmap(data, *len);
  delete len;
}

static Napi::ArrayBuffer MappedBuffer(Napi::Env env, void* p, size_t len) {
  return Napi::ArrayBuffer::New(env, p, len, Unmap, new size_t(len));
}

// createVm(kvmFd, memSize): KVM_CREATE_VM, a zero-filled anonymous shared
// mapping of memSize bytes, and KVM_SET_USER_MEMORY_REGION slot 0 at GPA 0.
// Returns { vmFd, memory } where memory is that mapping as an ArrayBuffer.
static Napi::Value CreateVm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int kvm;
  uint64_t size;
  if (!ArgInt(info, 0, &kvm) || !ArgSize(info, 1, &size)) return env.Undefined();
  if (size == 0 || size % 4096 != 0) {
    ThrowType(env, "memory size must be a non-zero multiple of 4096");
    return env.Undefined();
  }
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) {
    ThrowErrno(env, "KVM_CREATE_VM", errno);
    return env.Undefined();
  }
  fcntl(vm, F_SETFD, FD_CLOEXEC);
  void* mem = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) {
    int e = errno;
    close(vm);
    ThrowErrno(env, "mmap", e);
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
    close(vm);
    ThrowErrno(env, "KVM_SET_USER_MEMORY_REGION", e);
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("vmFd", Num(env, vm));
  out.Set("memory", MappedBuffer(env, mem, size));
  return out;
}

// createVcpu(vmFd, runSize): KVM_CREATE_VCPU 0, mmap of its run area, and a
// slot in the process-wide vCPU table with a wake-up eventfd for POLL.
// Returns { token, vcpuFd, wakeFd, run }.
static Napi::Value CreateVcpu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int vm, run_size;
  if (!ArgInt(info, 0, &vm) || !ArgInt(info, 1, &run_size)) return env.Undefined();
  if (run_size < static_cast<int>(sizeof(struct kvm_run))) {
    ThrowType(env, "run area smaller than struct kvm_run");
    return env.Undefined();
  }
  int slot = -1;
  for (int i = 0; i < kMaxVcpus; i++) {
    bool expected = false;
    if (g_vcpus[i].reserved.compare_exchange_strong(expected, true)) {
      slot = i;
      break;
    }
  }
  if (slot < 0) {
    ThrowErrno(env, "createVcpu", EMFILE);
    return env.Undefined();
  }
  VcpuSlot& s = g_vcpus[slot];
  int fd = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (fd < 0) {
    int e = errno;
    s.reserved.store(false);
    ThrowErrno(env, "KVM_CREATE_VCPU", e);
    return env.Undefined();
  }
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  void* run = mmap(nullptr, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (run == MAP_FAILED) {
    int e = errno;
    close(fd);
    s.reserved.store(false);
    ThrowErrno(env, "mmap", e);
    return env.Undefined();
  }
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    int e = errno;
    munmap(run, run_size);
    close(fd);
    s.reserved.store(false);
    ThrowErrno(env, "eventfd", e);
    return env.Undefined();
  }
  s.fd = fd;
  s.wake_fd = wake;
  s.run = static_cast<struct kvm_run*>(run);
  // The creating thread is the one expected to run it (run() re-records it).
  s.thread.store(pthread_self());
  s.has_thread.store(true);
  s.stop.store(false);
  uint32_t gen = s.generation.fetch_add(1) + 1;
  s.used.store(true);
  Napi::Object out = Napi::Object::New(env);
  out.Set("token", Num(env, static_cast<double>(gen) * kMaxVcpus + slot));
  out.Set("vcpuFd", Num(env, fd));
  out.Set("wakeFd", Num(env, wake));
  out.Set("run", MappedBuffer(env, run, run_size));
  return out;
}

// destroyVcpu(token): leaves the table, closes the vCPU and wake descriptors.
// The run area stays mapped until its ArrayBuffer is collected.
static Napi::Value DestroyVcpu(const Napi::CallbackInfo& info) {
  int slot = ArgSlot(info, 0);
  if (slot < 0) return info.Env().Undefined();
  VcpuSlot& s = g_vcpus[slot];
  s.used.store(false);
  // A signal handler on another thread may still be about to write to wake_fd;
  // wait for it so that we never write into a descriptor number reused later.
  while (g_interrupters.load() != 0) sched_yield();
  close(s.wake_fd);
  close(s.fd);
  s.wake_fd = -1;
  s.run = nullptr;
  s.has_thread.store(false);
  s.fd = -1;
  s.reserved.store(false);
  return info.Env().Undefined();
}

void EnterInterrupt() { g_interrupters.fetch_add(1); }
void LeaveInterrupt() { g_interrupters.fetch_sub(1); }

// run(token): one KVM_RUN. Returns 0 when the run area holds an exit to decode,
// 1 when interrupted (EINTR, or a signal/kick is pending), 2 on EFAULT (the
// host could not back a guest access: a host/guest translation fault).
static Napi::Value Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int slot = ArgSlot(info, 0);
  if (slot < 0) return env.Undefined();
  VcpuSlot& s = g_vcpus[slot];
  s.thread.store(pthread_self());
  s.has_thread.store(true);
  if (g_pending_signal.load() != 0 || s.stop.load()) return Num(env, 1);
  if (ioctl(s.fd, KVM_RUN, 0) == 0) return Num(env, 0);
  int e = errno;
  if (e == EINTR || e == EAGAIN) return Num(env, 1);
  if (e == EFAULT) return Num(env, 2);
  ThrowErrno(env, "KVM_RUN", e);
  return env.Undefined();
}

// Register-file transfers: getRegs/setRegs (144 bytes), getSregs/setSregs (312).
template <typename T, unsigned long REQ>
static Napi::Value RegsIoctl(const Napi::CallbackInfo& info, const char* name) {
  int fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  uint8_t* bytes = ArgBytes(info, 1, sizeof(T));
  if (!bytes) return info.Env().Undefined();
  T regs;
  memcpy(&regs, bytes, sizeof regs);
  if (ioctl(fd, REQ, &regs) < 0) {
    ThrowErrno(info.Env(), name, errno);
    return info.Env().Undefined();
  }
  memcpy(bytes, &regs, sizeof regs);
  return info.Env().Undefined();
}
static Napi::Value GetRegs(const Napi::CallbackInfo& i) { return RegsIoctl<kvm_regs, KVM_GET_REGS>(i, "KVM_GET_REGS"); }
static Napi::Value SetRegs(const Napi::CallbackInfo& i) { return RegsIoctl<kvm_regs, KVM_SET_REGS>(i, "KVM_SET_REGS"); }
static Napi::Value GetSregs(const Napi::CallbackInfo& i) { return RegsIoctl<kvm_sregs, KVM_GET_SREGS>(i, "KVM_GET_SREGS"); }
static Napi::Value SetSregs(const Napi::CallbackInfo& i) { return RegsIoctl<kvm_sregs, KVM_SET_SREGS>(i, "KVM_SET_SREGS"); }

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

// closeFd(fd)
static Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  if (close(fd) < 0) ThrowErrno(info.Env(), "close", errno);
  return info.Env().Undefined();
}

void RegisterKvm(Napi::Env env, Napi::Object exports) {
  exports.Set("openKvm", Napi::Function::New(env, OpenKvm));
  exports.Set("apiVersion", Napi::Function::New(env, ApiVersion));
  exports.Set("checkExtension", Napi::Function::New(env, CheckExtension));
  exports.Set("vcpuMmapSize", Napi::Function::New(env, VcpuMmapSize));
  exports.Set("supportedCpuid", Napi::Function::New(env, SupportedCpuid));
  exports.Set("createVm", Napi::Function::New(env, CreateVm));
  exports.Set("createVcpu", Napi::Function::New(env, CreateVcpu));
  exports.Set("destroyVcpu", Napi::Function::New(env, DestroyVcpu));
  exports.Set("setCpuid", Napi::Function::New(env, SetCpuid));
  exports.Set("getRegs", Napi::Function::New(env, GetRegs));
  exports.Set("setRegs", Napi::Function::New(env, SetRegs));
  exports.Set("getSregs", Napi::Function::New(env, GetSregs));
  exports.Set("setSregs", Napi::Function::New(env, SetSregs));
  exports.Set("tscKhz", Napi::Function::New(env, TscKhz));
  exports.Set("run", Napi::Function::New(env, Run));
  exports.Set("protect", Napi::Function::New(env, Protect));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd));
  exports.Set("kvmRunSize", Num(env, sizeof(struct kvm_run)));
}

}  // namespace ukvm
