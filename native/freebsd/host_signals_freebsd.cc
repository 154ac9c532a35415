// FreeBSD signal dispositions, with the contracts of host_signals_linux.cc:
// SIGINT/SIGTERM handling, the kick signal's no-op handler, and the default
// action back for the signals Node takes over. A termination signal may land
// on any thread; the handler records it and interrupts every vmm vCPU
// (InterruptSlot, vcpu_freebsd.cc: the POLL wake pipe, a kick signal to its
// thread, and the kicker thread that repeats it until VM_RUN is left). The
// vCPU loop then returns to TypeScript, which destroys the VM, prints
// "Exiting on signal N" and exits 1.
#include "../native_util.h"
#include "vcpu_slots.h"

#include <signal.h>
#include <unistd.h>

namespace ukvm {

std::atomic<int> g_pending_signal{0};

int KickSignal() { return SIGRTMIN + 3; }

static void OnTerminate(int sig) {
  int saved = errno;  // a handler must leave errno as it found it
  int expected = 0;
  g_pending_signal.compare_exchange_strong(expected, sig);
  EnterInterrupt();
  for (int i = 0; i < kMaxVcpus; i++) InterruptSlot(i);
  LeaveInterrupt();
  errno = saved;
}

static void OnKick(int) {}

static bool Install(int sig, void (*fn)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sigfillset(&sa.sa_mask);  // all signals blocked while handling, as the reference
  sa.sa_flags = 0;          // no SA_RESTART: VM_RUN and kevent must see EINTR
  return sigaction(sig, &sa, nullptr) == 0;
}

// installKickHandler(): the no-op handler for the kick signal. Needed by every
// process that runs a vCPU (CLI or library), so kick() interrupts VM_RUN.
static Napi::Value InstallKickHandler(const Napi::CallbackInfo& info) {
  if (!Install(KickSignal(), OnKick)) ThrowErrno(info.Env(), "sigaction", errno);
  return info.Env().Undefined();
}

// installTerminationHandlers([2, 15]): the CLI's SIGINT/SIGTERM handling.
static Napi::Value InstallTerminationHandlers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) {
    ThrowType(env, "expected an array of signal numbers");
    return env.Undefined();
  }
  Napi::Array sigs = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < sigs.Length(); i++) {
    Napi::Value v = sigs.Get(i);
    int sig = v.IsNumber() ? v.As<Napi::Number>().Int32Value() : -1;
    if (sig != SIGINT && sig != SIGTERM && sig != SIGHUP) {
      ThrowType(env, "only SIGINT, SIGTERM and SIGHUP can be handled");
      return env.Undefined();
    }
    if (!Install(sig, OnTerminate)) {
      ThrowErrno(env, "sigaction", errno);
      return env.Undefined();
    }
  }
  return env.Undefined();
}

// restoreDefaultSignals([1, 3, 10, 12, 13, 14]): the default action (and
// unblocked on this thread) for signals Node takes over at start: SIGUSR1
// would open Node's inspector, a debugging port that runs any code it is sent;
// SIGPIPE is ignored by Node. The reference tender dies of all of these.
static Napi::Value RestoreDefaultSignals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) {
    ThrowType(env, "expected an array of signal numbers");
    return env.Undefined();
  }
  Napi::Array sigs = info[0].As<Napi::Array>();
  sigset_t set;
  sigemptyset(&set);
  for (uint32_t i = 0; i < sigs.Length(); i++) {
    Napi::Value v = sigs.Get(i);
    int sig = v.IsNumber() ? v.As<Napi::Number>().Int32Value() : -1;
    if (sig != SIGHUP && sig != SIGQUIT && sig != SIGUSR1 && sig != SIGUSR2 && sig != SIGPIPE && sig != SIGALRM) {
      ThrowType(env, "only SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE and SIGALRM can be restored");
      return env.Undefined();
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    if (sigaction(sig, &sa, nullptr) != 0) {
      ThrowErrno(env, "sigaction", errno);
      return env.Undefined();
    }
    sigaddset(&set, sig);
  }
  int err = pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  if (err != 0) ThrowErrno(env, "pthread_sigmask", err);
  return env.Undefined();
}

// pendingSignal(): the first termination signal caught, or 0.
static Napi::Value PendingSignal(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), g_pending_signal.load());
}

void RegisterSignals(Napi::Env env, Napi::Object exports) {
  exports.Set("installKickHandler", Napi::Function::New(env, InstallKickHandler));
  exports.Set("installTerminationHandlers", Napi::Function::New(env, InstallTerminationHandlers));
  exports.Set("pendingSignal", Napi::Function::New(env, PendingSignal));
  exports.Set("restoreDefaultSignals", Napi::Function::New(env, RestoreDefaultSignals));
}

}  // namespace ukvm
