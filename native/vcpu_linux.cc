// Linux KVM, vCPU level: the process-wide vCPU table, creation (with its run
// area and a slot in the table), KVM_RUN, registers, CPUID and TSC rate, and
// the cross-thread controls kick/stopRequested/threadCpuNs. One export per
// ioctl; JavaScript names a vCPU by its token (vcpu_registry.h). Debug
// ioctls and interrupt() are in vcpu_debug_linux.cc.
#include "kvm_common.h"
#include "vcpu_registry.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <vector>

namespace ukvm {

VcpuSlot g_vcpus[kMaxVcpus];
static std::atomic<int> g_interrupters{0};  // handlers/kicks in flight (see DestroyVcpu)

// Async-signal-safe: atomics, write(2) and pthread_kill(3) only.
void InterruptSlot(int i) {
  VcpuSlot& s = g_vcpus[i];
  if (!s.used.load()) return;
  if (s.run) __atomic_store_n(&s.run->immediate_exit, 1, __ATOMIC_SEQ_CST);
  if (s.wake_fd >= 0) {
    uint64_t one = 1;
    ssize_t r = write(s.wake_fd, &one, sizeof one);
    (void)r;
  }
  if (s.has_thread.load()) {
    pthread_t t = s.thread.load();
    if (!pthread_equal(t, pthread_self())) pthread_kill(t, KickSignal());
  }
}

int ArgSlot(const Napi::CallbackInfo& info, size_t i) {
  int slot = info.Length() > i && info[i].IsNumber() ? LiveSlot(info[i].As<Napi::Number>().DoubleValue()) : -1;
  if (slot < 0) ThrowType(info.Env(), "no such vCPU");
  return slot;
}

// tscKhz(vcpuFd): KVM_GET_TSC_KHZ.
static Napi::Value TscKhz(const Napi::CallbackInfo& info) {
  return SimpleIoctl(info, KVM_GET_TSC_KHZ, "KVM_GET_TSC_KHZ");
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
  s.interrupt.store(false);
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
// 1 when interrupted (EINTR, or a signal, kick or interrupt() is pending), 2 on
// EFAULT (the host could not back a guest access: a host/guest translation
// fault).
static Napi::Value Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int slot = ArgSlot(info, 0);
  if (slot < 0) return env.Undefined();
  VcpuSlot& s = g_vcpus[slot];
  s.thread.store(pthread_self());
  s.has_thread.store(true);
  if (g_pending_signal.load() != 0 || s.stop.load() || s.interrupt.load()) return Num(env, 1);
  if (ioctl(s.fd, KVM_RUN, 0) == 0) return Num(env, 0);
  int e = errno;
  if (e == EINTR || e == EAGAIN) return Num(env, 1);
  if (e == EFAULT) return Num(env, 2);
  ThrowErrno(env, "KVM_RUN", e);
  return env.Undefined();
}

// Register-file transfers: getRegs/setRegs (144 bytes), getSregs/setSregs (312).
static Napi::Value GetRegs(const Napi::CallbackInfo& i) { return StructIoctl<kvm_regs, KVM_GET_REGS>(i, "KVM_GET_REGS"); }
static Napi::Value SetRegs(const Napi::CallbackInfo& i) { return StructIoctl<kvm_regs, KVM_SET_REGS>(i, "KVM_SET_REGS"); }
static Napi::Value GetSregs(const Napi::CallbackInfo& i) { return StructIoctl<kvm_sregs, KVM_GET_SREGS>(i, "KVM_GET_SREGS"); }
static Napi::Value SetSregs(const Napi::CallbackInfo& i) { return StructIoctl<kvm_sregs, KVM_SET_SREGS>(i, "KVM_SET_SREGS"); }

// kick(token): ask a vCPU (possibly on another thread) to stop running.
// Returns false if that vCPU no longer exists (nothing to stop).
static Napi::Value Kick(const Napi::CallbackInfo& info) {
  double token = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  EnterInterrupt();  // before the liveness check, so destroyVcpu waits for us
  int slot = LiveSlot(token);
  if (slot >= 0) {
    g_vcpus[slot].stop.store(true);
    InterruptSlot(slot);
  }
  LeaveInterrupt();
  return Napi::Boolean::New(info.Env(), slot >= 0);
}

// stopRequested(token): whether kick() was called for this vCPU.
static Napi::Value StopRequested(const Napi::CallbackInfo& info) {
  int slot = ArgSlot(info, 0);
  if (slot < 0) return info.Env().Undefined();
  return Napi::Boolean::New(info.Env(), g_vcpus[slot].stop.load());
}

// threadCpuNs(token): CPU time in ns of the thread running that vCPU (guest
// time included), readable from any thread; -1 if the vCPU no longer exists.
static Napi::Value ThreadCpuNs(const Napi::CallbackInfo& info) {
  double token = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  int slot = LiveSlot(token);
  if (slot < 0 || !g_vcpus[slot].has_thread.load()) return Napi::Number::New(info.Env(), -1);
  clockid_t clock;
  struct timespec ts;
  if (pthread_getcpuclockid(g_vcpus[slot].thread.load(), &clock) != 0 || clock_gettime(clock, &ts) != 0) {
    return Napi::Number::New(info.Env(), -1);
  }
  return Napi::Number::New(info.Env(), static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec));
}

void RegisterVcpu(Napi::Env env, Napi::Object exports) {
  exports.Set("createVcpu", Napi::Function::New(env, CreateVcpu));
  exports.Set("destroyVcpu", Napi::Function::New(env, DestroyVcpu));
  exports.Set("setCpuid", Napi::Function::New(env, SetCpuid));
  exports.Set("getRegs", Napi::Function::New(env, GetRegs));
  exports.Set("setRegs", Napi::Function::New(env, SetRegs));
  exports.Set("getSregs", Napi::Function::New(env, GetSregs));
  exports.Set("setSregs", Napi::Function::New(env, SetSregs));
  exports.Set("tscKhz", Napi::Function::New(env, TscKhz));
  exports.Set("run", Napi::Function::New(env, Run));
  exports.Set("kick", Napi::Function::New(env, Kick));
  exports.Set("stopRequested", Napi::Function::New(env, StopRequested));
  exports.Set("threadCpuNs", Napi::Function::New(env, ThreadCpuNs));
}

}  // namespace ukvm
