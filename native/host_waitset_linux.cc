// POLL's wait set: an epoll instance holding the vCPU's wake eventfd and every
// attached tap, level-triggered, keyed by manifest index. Timeouts are waited
// with epoll_pwait2's nanosecond timespec, so a POLL costs no timer syscall;
// kernels without epoll_pwait2 fall back to epoll_wait rounded up to 1 ms.
#include "native_util.h"

#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif

namespace ukvm {

static std::atomic<bool> g_have_pwait2{true};

// waitsetCreate(): a new epoll descriptor (close-on-exec).
static Napi::Value WaitsetCreate(const Napi::CallbackInfo& info) {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) {
    ThrowErrno(info.Env(), "epoll_create1", errno);
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), fd);
}

// waitsetAdd(epfd, fd, key): watch fd for input; key comes back from wait.
static Napi::Value WaitsetAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ep, fd;
  if (!ArgInt(info, 0, &ep) || !ArgInt(info, 1, &fd)) return env.Undefined();
  if (info.Length() < 3 || !info[2].IsNumber()) {
    ThrowType(env, "expected a key");
    return env.Undefined();
  }
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  ev.data.u64 = static_cast<uint64_t>(static_cast<int64_t>(info[2].As<Napi::Number>().Int32Value()));
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) ThrowErrno(env, "epoll_ctl", errno);
  return env.Undefined();
}

static double NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// waitsetWait(epfd, timeoutNs, keysOut: Int32Array, spinNs = 0): waits until a
// watched descriptor is readable or timeoutNs elapses. It first checks without
// sleeping for up to spinNs (a packet that arrives then is taken without the
// cost of waking a blocked thread). Writes the keys of the ready descriptors
// into keysOut and returns how many; 0 on timeout; -1 if interrupted by a signal.
static Napi::Value WaitsetWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ep;
  if (!ArgInt(info, 0, &ep)) return env.Undefined();
  if (info.Length() < 3 || !info[1].IsNumber() || !info[2].IsTypedArray()) {
    ThrowType(env, "expected (epfd, timeoutNs, Int32Array)");
    return env.Undefined();
  }
  double ns = info[1].As<Napi::Number>().DoubleValue();
  if (!(ns >= 0)) ns = 0;
  Napi::TypedArray ta = info[2].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_int32_array || ta.ElementLength() == 0) {
    ThrowType(env, "keysOut must be a non-empty Int32Array");
    return env.Undefined();
  }
  Napi::Int32Array keys = ta.As<Napi::Int32Array>();
  size_t cap = keys.ElementLength() < 64 ? keys.ElementLength() : 64;
  struct epoll_event evs[64];
  int n = 0;
  double spin = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().DoubleValue() : 0;
  if (spin > ns) spin = ns;
  if (spin > 0) {
    double start = NowNs();
    double now = start;
    do {
      n = epoll_wait(ep, evs, static_cast<int>(cap), 0);
      if (n != 0) break;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
      now = NowNs();
    } while (now - start < spin);
    if (n == 0) ns -= now - start;
    if (ns < 1) ns = 1;
  }
  if (n != 0) {
    // Found while spinning (or failed): handled below.
  } else if (ns == 0) {
    n = epoll_wait(ep, evs, static_cast<int>(cap), 0);
  } else if (g_have_pwait2.load()) {
    // Timeouts beyond ~292 years are clamped; the guest cannot tell.
    double secs = ns / 1e9;
    struct timespec ts;
    if (secs >= 9.2e18) {
      ts.tv_sec = INT64_MAX;
      ts.tv_nsec = 0;
    } else {
      ts.tv_sec = static_cast<time_t>(secs);
      double rest = ns - static_cast<double>(ts.tv_sec) * 1e9;
      ts.tv_nsec = rest < 0 ? 0 : rest > 999999999 ? 999999999 : static_cast<long>(rest);
    }
    n = static_cast<int>(syscall(SYS_epoll_pwait2, ep, evs, static_cast<int>(cap), &ts, nullptr, 0));
    if (n < 0 && errno == ENOSYS) {
      g_have_pwait2.store(false);
      return WaitsetWait(info);
    }
  } else {
    double ms = ns / 1e6;
    int timeout = ms >= 2147483647.0 ? 2147483647 : static_cast<int>(ms) + (ms > static_cast<int>(ms) ? 1 : 0);
    n = epoll_wait(ep, evs, static_cast<int>(cap), timeout);
  }
  if (n < 0) {
    if (errno == EINTR) return Napi::Number::New(env, -1);
    ThrowErrno(env, "epoll_wait", errno);
    return env.Undefined();
  }
  for (int i = 0; i < n; i++) keys[i] = static_cast<int32_t>(static_cast<int64_t>(evs[i].data.u64));
  return Napi::Number::New(env, n);
}

// checkPollable(fd): whether epoll can watch fd (a regular file or /dev/null
// cannot: EPERM), checked when a device is attached rather than at first POLL.
static Napi::Value CheckPollable(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    ThrowErrno(info.Env(), "epoll_create1", errno);
    return info.Env().Undefined();
  }
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  int r = epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  int e = errno;
  close(ep);
  if (r < 0) ThrowErrno(info.Env(), "epoll_ctl", e);
  return info.Env().Undefined();
}

void RegisterWaitset(Napi::Env env, Napi::Object exports) {
  exports.Set("checkPollable", Napi::Function::New(env, CheckPollable));
  exports.Set("waitsetCreate", Napi::Function::New(env, WaitsetCreate));
  exports.Set("waitsetAdd", Napi::Function::New(env, WaitsetAdd));
  exports.Set("waitsetWait", Napi::Function::New(env, WaitsetWait));
}

}  // namespace ukvm
