// Preemption lanes: several VMs share one thread (monitor/library/
// scheduler.ts), and a guest that computes without exits would keep the
// others from running. A lane names one such thread's "current slice": the
// scheduler arms it before a slice with the vCPU's token and a length, and
// disarms it after. One watchdog thread per process, started by the first
// laneCreate (so call that before the thread is confined: it clones), sleeps
// while no lane is armed, else until the earliest deadline (at least ~1 ms
// apart), and then interrupt()s (vcpu_debug_linux.cc's one-shot: the run
// leaves KVM_RUN with a 'debug' interrupt exit) the vCPU of every lane past
// its deadline, once per arming.
//
// The lane's state word makes disarm race-free: ARMED -> FIRING (watchdog,
// by compare-and-swap) -> FIRED once the interrupt is posted; disarm waits
// out FIRING, so when it returns the caller knows whether an interrupt is
// pending for it (and takes it with takeInterrupt before the vCPU blocks).
// The watchdog reaches a vCPU only through LiveSlot inside EnterInterrupt/
// LeaveInterrupt, like kick(): it never touches a vCPU that is gone.
#include "kvm_common.h"
#include "vcpu_registry.h"

#include <condition_variable>
#include <mutex>
#include <thread>
#include <time.h>

namespace ukvm {
namespace {

constexpr int kMaxLanes = 64;
constexpr int64_t kMinTickNs = 1000000;  // the watchdog wakes at most every ~1 ms

enum : uint32_t { kIdle = 0, kArmed = 1, kFiring = 2, kFired = 3 };

struct Lane {
  std::atomic<bool> taken{false};
  std::atomic<uint32_t> generation{0};
  std::atomic<uint32_t> state{kIdle};
  std::atomic<double> token{-1};
  std::atomic<int64_t> deadline{0};
  napi_env env = nullptr;  // the environment that created it (freed with it)
};

Lane g_lanes[kMaxLanes];
std::atomic<bool> g_started{false};
// When the watchdog next wakes by itself (INT64_MAX: only when notified).
std::atomic<int64_t> g_wake_at{INT64_MAX};
// Never destroyed: the watchdog may be waiting on them when the process exits.
std::mutex* g_mu = new std::mutex;
std::condition_variable* g_cv = new std::condition_variable;

int64_t Now() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void Post(Lane& l) {
  EnterInterrupt();  // before the liveness check, so destroyVcpu waits for us
  int slot = LiveSlot(l.token.load());
  if (slot >= 0) {
    g_vcpus[slot].interrupt.store(true);
    InterruptSlot(slot);
  }
  LeaveInterrupt();
}

void Watchdog() {
  std::unique_lock<std::mutex> lock(*g_mu);
  for (;;) {
    // While scanning, every arm notifies (see LaneArm): none is missed.
    g_wake_at.store(INT64_MAX);
    int64_t now = Now();
    int64_t next = INT64_MAX;
    for (Lane& l : g_lanes) {
      if (l.state.load() != kArmed) continue;
      int64_t d = l.deadline.load();
      if (d > now) {
        if (d < next) next = d;
        continue;
      }
      uint32_t armed = kArmed;
      if (l.state.compare_exchange_strong(armed, kFiring)) {
        Post(l);
        l.state.store(kFired);
      }
    }
    if (next != INT64_MAX && next < now + kMinTickNs) next = now + kMinTickNs;
    g_wake_at.store(next);
    if (next == INT64_MAX) {
      g_cv->wait(lock);  // until an arm (fired lanes wait for their disarm, not for us)
    } else {
      // Woken early by an arm whose deadline comes first, or at `next`.
      g_cv->wait_for(lock, std::chrono::nanoseconds(next - now));
    }
  }
}

// Ids: generation × kMaxLanes + index, so a stale id never names a reused lane.
int LaneOf(const Napi::CallbackInfo& info) {
  double id = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  if (!(id >= 0 && id < 9007199254740992.0) || id != static_cast<double>(static_cast<uint64_t>(id))) return -1;
  uint64_t v = static_cast<uint64_t>(id);
  int i = static_cast<int>(v % kMaxLanes);
  Lane& l = g_lanes[i];
  return l.taken.load() && l.generation.load() == v / kMaxLanes && l.env == info.Env() ? i : -1;
}

// ARMED/FIRED -> IDLE; waits out a watchdog that is posting. True if an
// interrupt was posted for this arming.
bool Disarm(Lane& l) {
  for (;;) {
    uint32_t s = l.state.load();
    if (s == kIdle) return false;
    if (s == kFiring) {
      std::this_thread::yield();
      continue;
    }
    if (l.state.compare_exchange_strong(s, kIdle)) {
      return s == kFired;
    }
  }
}

void Release(int i) {
  Lane& l = g_lanes[i];
  Disarm(l);
  l.env = nullptr;
  l.taken.store(false);
}

void OnEnvCleanup(void* arg) { Release(static_cast<int>(reinterpret_cast<intptr_t>(arg))); }

}  // namespace

// laneCreate(): a lane for the calling thread's scheduler; starts the
// watchdog thread if this is the first. Throws EMFILE when all are taken.
static Napi::Value LaneCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!g_started.load()) {
    std::lock_guard<std::mutex> guard(*g_mu);
    if (!g_started.load()) {
      try {
        std::thread(Watchdog).detach();
      } catch (const std::system_error& e) {
        ThrowErrno(env, "pthread_create", e.code().value());
        return env.Undefined();
      }
      g_started.store(true);
    }
  }
  for (int i = 0; i < kMaxLanes; i++) {
    bool expected = false;
    if (!g_lanes[i].taken.compare_exchange_strong(expected, true)) continue;
    Lane& l = g_lanes[i];
    l.env = env;
    l.state.store(kIdle);
    uint32_t gen = l.generation.fetch_add(1) + 1;
    napi_add_env_cleanup_hook(env, OnEnvCleanup, reinterpret_cast<void*>(static_cast<intptr_t>(i)));
    return Napi::Number::New(env, static_cast<double>(gen) * kMaxLanes + i);
  }
  ThrowErrno(env, "laneCreate", EMFILE);
  return env.Undefined();
}

// laneArm(lane, token, sliceNs): from now, the vCPU `token` names gets one
// interrupt() once sliceNs has passed, unless laneDisarm comes first. Atomics
// and the vDSO clock only, except when the watchdog must wake earlier than
// it planned (then one futex wake).
static Napi::Value LaneArm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int i = LaneOf(info);
  if (i < 0) {
    ThrowType(env, "no such lane");
    return env.Undefined();
  }
  if (info.Length() < 3 || !info[1].IsNumber() || !info[2].IsNumber()) {
    ThrowType(env, "expected (lane, token, sliceNs)");
    return env.Undefined();
  }
  double slice = info[2].As<Napi::Number>().DoubleValue();
  if (!(slice >= 0 && slice <= 1e15)) {
    ThrowType(env, "slice out of range");
    return env.Undefined();
  }
  Lane& l = g_lanes[i];
  if (l.state.load() != kIdle) {
    ThrowType(env, "lane already armed");
    return env.Undefined();
  }
  int64_t deadline = Now() + static_cast<int64_t>(slice);
  l.token.store(info[1].As<Napi::Number>().DoubleValue());
  l.deadline.store(deadline);
  l.state.store(kArmed);
  // After the store: a scan that missed this lane has not yet published its
  // next wake-up, and g_wake_at reads INT64_MAX until it does.
  if (deadline < g_wake_at.load()) {
    std::lock_guard<std::mutex> guard(*g_mu);
    g_cv->notify_one();
  }
  return env.Undefined();
}

// laneDisarm(lane): true if the watchdog posted an interrupt for this arming
// (take it with takeInterrupt); false if not, and none will come.
static Napi::Value LaneDisarm(const Napi::CallbackInfo& info) {
  int i = LaneOf(info);
  if (i < 0) {
    ThrowType(info.Env(), "no such lane");
    return info.Env().Undefined();
  }
  return Napi::Boolean::New(info.Env(), Disarm(g_lanes[i]));
}

// laneFree(lane): disarms and gives the lane back; an unknown id does nothing.
static Napi::Value LaneFree(const Napi::CallbackInfo& info) {
  int i = LaneOf(info);
  if (i >= 0) {
    napi_remove_env_cleanup_hook(info.Env(), OnEnvCleanup, reinterpret_cast<void*>(static_cast<intptr_t>(i)));
    Release(i);
  }
  return info.Env().Undefined();
}

void RegisterLanes(Napi::Env env, Napi::Object exports) {
  exports.Set("laneCreate", Napi::Function::New(env, LaneCreate));
  exports.Set("laneArm", Napi::Function::New(env, LaneArm));
  exports.Set("laneDisarm", Napi::Function::New(env, LaneDisarm));
  exports.Set("laneFree", Napi::Function::New(env, LaneFree));
}

}  // namespace ukvm
