// POLL's wait set on FreeBSD: a kqueue holding the vCPU's wake pipe and
// every attached tap (EVFILT_READ, level-triggered), keyed by manifest index,
// with the contracts of host_waitset_linux.cc (native/binding/host.ts).
// kevent takes a nanosecond timespec, so a POLL costs no timer syscall.
#include "../native_util.h"
#include "fbsd_sys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

namespace ukvm {

// waitsetCreate(): a new kqueue (close-on-exec).
static Napi::Value WaitsetCreate(const Napi::CallbackInfo& info) {
  int kq = kqueue();
  if (kq < 0 || fcntl(kq, F_SETFD, FD_CLOEXEC) < 0) {
    int e = errno;
    if (kq >= 0) close(kq);
    ThrowErrno(info.Env(), "kqueue", e);
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), kq);
}

// Adds fd for input to kq with `key` as its user data; 0 or an errno.
static int AddRead(int kq, int fd, int key) {
  struct kevent change;
  memset(&change, 0, sizeof change);
  change.ident = static_cast<uintptr_t>(fd);
  change.filter = fbsd::kEvfiltRead;
  change.flags = fbsd::kEvAdd | fbsd::kEvReceipt;
  change.udata = reinterpret_cast<void*>(static_cast<intptr_t>(key));
  struct kevent result;
  memset(&result, 0, sizeof result);
  // EV_RECEIPT: the change is reported back with EV_ERROR and data = errno (0 = added).
  int n = kevent(kq, &change, 1, &result, 1, nullptr);
  if (n < 0) return errno;
  if (n == 1 && (result.flags & fbsd::kEvError) && result.data != 0) return static_cast<int>(result.data);
  return 0;
}

// waitsetAdd(kq, fd, key)
static Napi::Value WaitsetAdd(const Napi::CallbackInfo& info) {
  int kq, fd;
  if (!ArgInt(info, 0, &kq) || !ArgInt(info, 1, &fd)) return info.Env().Undefined();
  if (info.Length() < 3 || !info[2].IsNumber()) {
    ThrowType(info.Env(), "expected a key");
    return info.Env().Undefined();
  }
  int err = AddRead(kq, fd, info[2].As<Napi::Number>().Int32Value());
  if (err != 0) ThrowErrno(info.Env(), "kevent", err);
  return info.Env().Undefined();
}

// checkPollable(fd): kqueue accepts regular files (always "readable"), which
// epoll refuses; refuse them here too (EPERM), so a POLL never spins on one.
static Napi::Value CheckPollable(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ThrowErrno(info.Env(), "fstat", errno);
    return info.Env().Undefined();
  }
  if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
    ThrowErrno(info.Env(), "kevent", EPERM);
    return info.Env().Undefined();
  }
  int kq = kqueue();
  if (kq < 0) {
    ThrowErrno(info.Env(), "kqueue", errno);
    return info.Env().Undefined();
  }
  int err = AddRead(kq, fd, 0);
  close(kq);
  if (err != 0) ThrowErrno(info.Env(), "kevent", err);
  return info.Env().Undefined();
}

static double NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// waitsetWait(kq, timeoutNs, keysOut: Int32Array, spinNs = 0): as on Linux.
// Returns the number of ready keys written, 0 on timeout, -1 on EINTR.
static Napi::Value WaitsetWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int kq;
  if (!ArgInt(info, 0, &kq)) return env.Undefined();
  if (info.Length() < 3 || !info[1].IsNumber() || !info[2].IsTypedArray() ||
      info[2].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
      info[2].As<Napi::TypedArray>().ElementLength() == 0) {
    ThrowType(env, "expected (kq, timeoutNs, non-empty Int32Array)");
    return env.Undefined();
  }
  double ns = info[1].As<Napi::Number>().DoubleValue();
  if (!(ns >= 0)) ns = 0;
  Napi::Int32Array keys = info[2].As<Napi::Int32Array>();
  int cap = static_cast<int>(keys.ElementLength() < 64 ? keys.ElementLength() : 64);
  struct kevent evs[64];
  const struct timespec zero = {0, 0};
  int n = 0;
  double spin = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().DoubleValue() : 0;
  if (spin > ns) spin = ns;
  if (spin > 0) {
    double start = NowNs();
    double now = start;
    do {
      n = kevent(kq, nullptr, 0, evs, cap, &zero);
      if (n != 0) break;
      now = NowNs();
    } while (now - start < spin);
    if (n == 0) ns -= now - start;
    if (ns < 1) ns = 1;
  }
  if (n == 0) {
    struct timespec ts;
    double secs = ns / 1e9;
    if (secs >= 9.2e18) {
      ts.tv_sec = INT64_MAX;  // beyond ~292 years: the guest cannot tell
      ts.tv_nsec = 0;
    } else {
      ts.tv_sec = static_cast<time_t>(secs);
      double rest = ns - static_cast<double>(ts.tv_sec) * 1e9;
      ts.tv_nsec = rest < 0 ? 0 : rest > 999999999 ? 999999999 : static_cast<long>(rest);
    }
    n = kevent(kq, nullptr, 0, evs, cap, &ts);
  }
  if (n < 0) {
    if (errno == EINTR) return Napi::Number::New(env, -1);
    ThrowErrno(env, "kevent", errno);
    return env.Undefined();
  }
  for (int i = 0; i < n; i++) keys[i] = static_cast<int32_t>(reinterpret_cast<intptr_t>(evs[i].udata));
  return Napi::Number::New(env, n);
}

void RegisterWaitset(Napi::Env env, Napi::Object exports) {
  exports.Set("checkPollable", Napi::Function::New(env, CheckPollable));
  exports.Set("waitsetCreate", Napi::Function::New(env, WaitsetCreate));
  exports.Set("waitsetAdd", Napi::Function::New(env, WaitsetAdd));
  exports.Set("waitsetWait", Napi::Function::New(env, WaitsetWait));
}

}  // namespace ukvm
