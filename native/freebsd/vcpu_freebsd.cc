// FreeBSD vmm, vCPU level: the vCPU table, VM_RUN for FreeBSD 13 and for
// FreeBSD ≥ 14, and the cross-thread controls kick / interrupt /
// stopRequested / takeInterrupt / threadCpuNs, with the same contracts as the
// Linux exports of the same names (native/binding/vmm.ts). Why a kicker
// thread exists: vcpu_slots.h.
#include "../native_util.h"
#include "fbsd_sys.h"
#include "vcpu_slots.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

namespace ukvm {

VmmSlot g_vmm_slots[kMaxVcpus];
static std::atomic<int> g_interrupters{0};

// The kicker: a thread that sleeps on a pipe until someone asks for a kick,
// then re-sends the kick signal every millisecond to each vCPU thread that is
// asked to stop but still inside VM_RUN.
static int g_kicker_r = -1;
static int g_kicker_w = -1;
static pthread_once_t g_kicker_once = PTHREAD_ONCE_INIT;
static bool g_kicker_ok = false;

static bool Wanted(const VmmSlot& s) {
  return s.used.load() && s.in_run.load() && s.has_thread.load() &&
         (s.stop.load() || s.interrupt.load() || g_pending_signal.load() != 0);
}

static void* KickerMain(void*) {
  for (;;) {
    char buf[64];
    ssize_t n = read(g_kicker_r, buf, sizeof buf);
    if (n == 0) return nullptr;
    if (n < 0 && errno != EINTR) return nullptr;
    for (;;) {
      bool pending = false;
      EnterInterrupt();
      for (int i = 0; i < kMaxVcpus; i++) {
        if (!Wanted(g_vmm_slots[i])) continue;
        pending = true;
        pthread_kill(g_vmm_slots[i].thread.load(), KickSignal());
      }
      LeaveInterrupt();
      if (!pending) break;
      struct timespec ms = {0, 1000000};
      nanosleep(&ms, nullptr);
    }
  }
}

static void StartKicker() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return;
  int fl = fcntl(p[1], F_GETFL);
  fcntl(p[1], F_SETFL, fl | O_NONBLOCK);  // a full pipe already means "kick"
  g_kicker_r = p[0];
  g_kicker_w = p[1];
  // The kicker takes no signals: they are for the vCPU and main threads.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  pthread_t t;
  g_kicker_ok = pthread_create(&t, nullptr, KickerMain, nullptr) == 0;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (g_kicker_ok) pthread_detach(t);
}

int LiveSlot(double token) {
  if (!(token >= 0 && token < 9007199254740992.0)) return -1;
  uint64_t t = static_cast<uint64_t>(token);
  if (static_cast<double>(t) != token) return -1;
  int slot = static_cast<int>(t % kMaxVcpus);
  VmmSlot& s = g_vmm_slots[slot];
  return s.used.load() && s.generation.load() == t / kMaxVcpus ? slot : -1;
}

int ArgSlot(const Napi::CallbackInfo& info, size_t i) {
  int slot = info.Length() > i && info[i].IsNumber() ? LiveSlot(info[i].As<Napi::Number>().DoubleValue()) : -1;
  if (slot < 0) ThrowType(info.Env(), "no such vCPU");
  return slot;
}

void EnterInterrupt() { g_interrupters.fetch_add(1); }
void LeaveInterrupt() { g_interrupters.fetch_sub(1); }

// Async-signal-safe: atomics, write(2) and pthread_kill(3) only.
void InterruptSlot(int i) {
  VmmSlot& s = g_vmm_slots[i];
  if (!s.used.load()) return;
  if (s.wake_w >= 0) {
    char one = 1;
    ssize_t r = write(s.wake_w, &one, 1);
    (void)r;
  }
  if (s.has_thread.load()) {
    pthread_t t = s.thread.load();
    if (!pthread_equal(t, pthread_self())) pthread_kill(t, KickSignal());
  }
  if (g_kicker_w >= 0) {
    char one = 1;
    ssize_t r = write(g_kicker_w, &one, 1);
    (void)r;
  }
}

// createVcpu(vmFd, vcpu, runAbi): a slot in the table with a wake-up pipe
// for POLL; runAbi 13 or 14 says which VM_RUN the kernel takes. Returns
// { token, wakeFd }.
static Napi::Value CreateVcpu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int vm, vcpu, abi;
  if (!ArgInt(info, 0, &vm) || !ArgInt(info, 1, &vcpu) || !ArgInt(info, 2, &abi)) return env.Undefined();
  if (abi != 13 && abi != 14) {
    ThrowType(env, "runAbi must be 13 or 14");
    return env.Undefined();
  }
  pthread_once(&g_kicker_once, StartKicker);
  if (!g_kicker_ok) {
    ThrowErrno(env, "pthread_create", EAGAIN);
    return env.Undefined();
  }
  int slot = -1;
  for (int i = 0; i < kMaxVcpus && slot < 0; i++) {
    bool expected = false;
    if (g_vmm_slots[i].reserved.compare_exchange_strong(expected, true)) slot = i;
  }
  if (slot < 0) {
    ThrowErrno(env, "createVcpu", EMFILE);
    return env.Undefined();
  }
  VmmSlot& s = g_vmm_slots[slot];
  int p[2];
  if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
    int e = errno;
    s.reserved.store(false);
    ThrowErrno(env, "pipe2", e);
    return env.Undefined();
  }
  s.vm_fd = vm;
  s.vcpu = vcpu;
  s.run_abi = abi;
  s.wake_r = p[0];
  s.wake_w = p[1];
  s.thread.store(pthread_self());
  s.has_thread.store(true);
  s.in_run.store(false);
  s.stop.store(false);
  s.interrupt.store(false);
  uint32_t gen = s.generation.fetch_add(1) + 1;
  s.used.store(true);
  Napi::Object out = Napi::Object::New(env);
  out.Set("token", Napi::Number::New(env, static_cast<double>(gen) * kMaxVcpus + slot));
  out.Set("wakeFd", Napi::Number::New(env, p[0]));
  return out;
}

// destroyVcpu(token): leaves the table and closes the wake pipe (never the
// VM descriptor, which TypeScript owns).
static Napi::Value DestroyVcpu(const Napi::CallbackInfo& info) {
  int slot = ArgSlot(info, 0);
  if (slot < 0) return info.Env().Undefined();
  VmmSlot& s = g_vmm_slots[slot];
  s.used.store(false);
  while (g_interrupters.load() != 0) sched_yield();
  close(s.wake_r);
  close(s.wake_w);
  s.wake_r = s.wake_w = -1;
  s.vm_fd = -1;
  s.has_thread.store(false);
  s.reserved.store(false);
  return info.Env().Undefined();
}

// run(token, exit: Uint8Array(136)): one VM_RUN on the calling thread.
// Returns 0 with the struct vm_exit copied into `exit`, or 1 when
// interrupted (EINTR, or a signal, kick or interrupt() is pending). Any
// other failure throws ("VM_RUN", errno).
static Napi::Value Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int slot = ArgSlot(info, 0);
  if (slot < 0) return env.Undefined();
  uint8_t* out = ArgBytes(info, 1, sizeof(fbsd::VmExit));
  if (out == nullptr) return env.Undefined();
  VmmSlot& s = g_vmm_slots[slot];
  s.thread.store(pthread_self());
  s.has_thread.store(true);
  s.in_run.store(true);  // before the check: see vcpu_slots.h
  if (g_pending_signal.load() != 0 || s.stop.load() || s.interrupt.load()) {
    s.in_run.store(false);
    return Napi::Number::New(env, 1);
  }
  int r;
  int e = 0;
  if (s.run_abi == 14) {
    fbsd::VmExit exit;
    uint8_t cpuset[128];  // cpuset_t of 14 (1024 CPUs); written only for IPI exits
    fbsd::VmRun14 vr;
    memset(&vr, 0, sizeof vr);
    vr.cpuid = s.vcpu;
    vr.cpuset = cpuset;
    vr.cpusetsize = sizeof cpuset;
    vr.vm_exit = &exit;
    r = ioctl(s.vm_fd, fbsd::kVmRun14, &vr);
    e = errno;
    if (r == 0) memcpy(out, &exit, sizeof exit);
  } else {
    fbsd::VmRun13 vr;
    memset(&vr, 0, sizeof vr);
    vr.cpuid = s.vcpu;
    r = ioctl(s.vm_fd, fbsd::kVmRun13, &vr);
    e = errno;
    if (r == 0) memcpy(out, &vr.vm_exit, sizeof vr.vm_exit);
  }
  s.in_run.store(false);
  if (r == 0) return Napi::Number::New(env, 0);
  if (e == EINTR || e == EAGAIN) return Napi::Number::New(env, 1);
  ThrowErrno(env, "VM_RUN", e);
  return env.Undefined();
}

// kick(token): the run ends (from any thread). False if no such vCPU.
static Napi::Value Kick(const Napi::CallbackInfo& info) {
  double token = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  EnterInterrupt();
  int slot = LiveSlot(token);
  if (slot >= 0) {
    g_vmm_slots[slot].stop.store(true);
    InterruptSlot(slot);
  }
  LeaveInterrupt();
  return Napi::Boolean::New(info.Env(), slot >= 0);
}

// interrupt(token): leave VM_RUN once, the run goes on (a debugger's Ctrl-C).
static Napi::Value Interrupt(const Napi::CallbackInfo& info) {
  double token = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  EnterInterrupt();
  int slot = LiveSlot(token);
  if (slot >= 0) {
    g_vmm_slots[slot].interrupt.store(true);
    InterruptSlot(slot);
  }
  LeaveInterrupt();
  return Napi::Boolean::New(info.Env(), slot >= 0);
}

// takeInterrupt(token): true once per interrupt(), draining the wake pipe.
static Napi::Value TakeInterrupt(const Napi::CallbackInfo& info) {
  int slot = ArgSlot(info, 0);
  if (slot < 0) return info.Env().Undefined();
  VmmSlot& s = g_vmm_slots[slot];
  bool taken = s.interrupt.exchange(false);
  if (taken) {
    char buf[64];
    while (read(s.wake_r, buf, sizeof buf) > 0) {
    }
  }
  return Napi::Boolean::New(info.Env(), taken);
}

static Napi::Value StopRequested(const Napi::CallbackInfo& info) {
  int slot = ArgSlot(info, 0);
  if (slot < 0) return info.Env().Undefined();
  return Napi::Boolean::New(info.Env(), g_vmm_slots[slot].stop.load());
}

// threadCpuNs(token): CPU time of the thread running that vCPU; -1 if unknown.
static Napi::Value ThreadCpuNs(const Napi::CallbackInfo& info) {
  double token = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  int slot = LiveSlot(token);
  clockid_t clock;
  struct timespec ts;
  if (slot < 0 || !g_vmm_slots[slot].has_thread.load() ||
      pthread_getcpuclockid(g_vmm_slots[slot].thread.load(), &clock) != 0 || clock_gettime(clock, &ts) != 0) {
    return Napi::Number::New(info.Env(), -1);
  }
  return Napi::Number::New(info.Env(), static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec));
}

void RegisterVmmVcpu(Napi::Env env, Napi::Object exports) {
  exports.Set("createVcpu", Napi::Function::New(env, CreateVcpu));
  exports.Set("destroyVcpu", Napi::Function::New(env, DestroyVcpu));
  exports.Set("run", Napi::Function::New(env, Run));
  exports.Set("kick", Napi::Function::New(env, Kick));
  exports.Set("interrupt", Napi::Function::New(env, Interrupt));
  exports.Set("takeInterrupt", Napi::Function::New(env, TakeInterrupt));
  exports.Set("stopRequested", Napi::Function::New(env, StopRequested));
  exports.Set("threadCpuNs", Napi::Function::New(env, ThreadCpuNs));
  exports.Set("vmExitSize", Napi::Number::New(env, sizeof(fbsd::VmExit)));
}

}  // namespace ukvm
