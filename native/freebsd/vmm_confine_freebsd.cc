// FreeBSD vmm(4): what keeps a VM from outliving the monitor, and what
// confines the monitor (docs/abi.md §18 step 7, §18.1): the reaper process
// that destroys the VM once this process is gone, and Capsicum's descriptor
// limits and capability mode. One export each; policy is
// monitor/backend/vmm/vms.ts and sandbox.ts.
#include "../native_util.h"
#include "fbsd_sys.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

namespace ukvm {

// The same check as vmm_freebsd.cc's VM names.
static bool ReaperName(const Napi::CallbackInfo& info, std::string* out) {
  if (info.Length() < 1 || !info[0].IsString()) {
    ThrowType(info.Env(), "expected a VM name");
    return false;
  }
  *out = info[0].As<Napi::String>().Utf8Value();
  bool ok = !out->empty() && out->size() <= 64;
  for (char c : *out) ok = ok && c > ' ' && c < 0x7f && c != '/';
  if (!ok) ThrowType(info.Env(), "VM name must be 1..64 printable characters without '/'");
  return ok;
}

static Napi::Value Fail(const Napi::CallbackInfo& info, const char* what, int err) {
  ThrowErrno(info.Env(), what, err);
  return info.Env().Undefined();
}

static Napi::Value Ok(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }

// vmmReaper(name): a detached helper process that waits for the returned
// descriptor to close (this process closed it, or ended in any way, even
// SIGKILL) and then destroys the VM with sysctl hw.vmm.destroy. It is made
// before the sandbox is entered, so it keeps the right to that sysctl that
// a process in Capsicum's capability mode no longer has (§18 step 7's
// "sysctl channel"). The helper makes async-signal-safe calls only: this
// process has other threads.
static Napi::Value Reaper(const Napi::CallbackInfo& info) {
  std::string name;
  if (!ReaperName(info, &name)) return info.Env().Undefined();
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Fail(info, "pipe2", errno);
  pid_t child = fork();
  if (child < 0) {
    int e = errno;
    close(p[0]);
    close(p[1]);
    return Fail(info, "fork", e);
  }
  if (child == 0) {
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, nullptr);
    if (fork() != 0) _exit(0);  // the grandchild is adopted by init: no zombie here
    setsid();
    for (int fd = 0; fd < p[0]; fd++) close(fd);
    closefrom(p[0] + 1);
    char b;
    for (;;) {
      ssize_t n = read(p[0], &b, 1);
      if (n == 0 || (n < 0 && errno != EINTR)) break;
    }
    sysctlbyname("hw.vmm.destroy", nullptr, nullptr, name.c_str(), name.size());
    _exit(0);
  }
  close(p[0]);
  int status;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return Napi::Number::New(info.Env(), p[1]);
}

// capRightsLimitIoctl(fd): cap_rights_limit to CAP_IOCTL only.
static Napi::Value CapRightsLimitIoctl(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  cap_rights_t rights;
  fbsd::IoctlOnlyRights(&rights);
  if (cap_rights_limit(fd, &rights) != 0) return Fail(info, "cap_rights_limit", errno);
  return Ok(info);
}

// capRightsLimitKick(fd, writeEnd): cap_rights_limit of a ring kick pipe
// end: the read end to CAP_READ | CAP_EVENT (the consumer thread's read),
// the write end to CAP_WRITE (the vCPU loop's kicks, the stop's wake-up).
static Napi::Value CapRightsLimitKick(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  if (info.Length() < 2 || !info[1].IsBoolean()) {
    ThrowType(info.Env(), "expected (fd, writeEnd: boolean)");
    return info.Env().Undefined();
  }
  cap_rights_t rights;
  if (info[1].As<Napi::Boolean>().Value()) {
    fbsd::KickWriteRights(&rights);
  } else {
    fbsd::KickReadRights(&rights);
  }
  if (cap_rights_limit(fd, &rights) != 0) return Fail(info, "cap_rights_limit", errno);
  return Ok(info);
}

// capIoctlsLimit(fd, commands: number[]): cap_ioctls_limit.
static Napi::Value CapIoctlsLimit(const Napi::CallbackInfo& info) {
  int fd;
  if (!ArgInt(info, 0, &fd)) return info.Env().Undefined();
  if (info.Length() < 2 || !info[1].IsArray() || info[1].As<Napi::Array>().Length() > 32) {
    ThrowType(info.Env(), "expected at most 32 ioctl numbers");
    return info.Env().Undefined();
  }
  Napi::Array a = info[1].As<Napi::Array>();
  cap_ioctl_t cmds[32];
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value v = a.Get(i);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= 4294967295.0) || d != static_cast<double>(static_cast<uint64_t>(d))) {
      ThrowType(info.Env(), "ioctl numbers are 32-bit unsigned integers");
      return info.Env().Undefined();
    }
    cmds[i] = static_cast<cap_ioctl_t>(d);
  }
  if (cap_ioctls_limit(fd, cmds, a.Length()) != 0) return Fail(info, "cap_ioctls_limit", errno);
  return Ok(info);
}

// capEnter(): Capsicum's capability mode for the whole process.
static Napi::Value CapEnter(const Napi::CallbackInfo& info) {
  if (cap_enter() != 0) return Fail(info, "cap_enter", errno);
  return Ok(info);
}

void RegisterVmmConfine(Napi::Env env, Napi::Object exports) {
  exports.Set("vmmReaper", Napi::Function::New(env, Reaper));
  exports.Set("capRightsLimitIoctl", Napi::Function::New(env, CapRightsLimitIoctl));
  exports.Set("capRightsLimitKick", Napi::Function::New(env, CapRightsLimitKick));
  exports.Set("capIoctlsLimit", Napi::Function::New(env, CapIoctlsLimit));
  exports.Set("capEnter", Napi::Function::New(env, CapEnter));
}

}  // namespace ukvm
