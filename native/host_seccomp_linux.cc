// The sandbox's three system calls (monitor/sandbox/): read the process
// personality, set no-new-privileges, install a seccomp-BPF filter. The
// filter itself, which calls it allows and with which arguments, is built
// and reviewed in TypeScript (monitor/sandbox/policy.ts, bpf.ts); here it is
// only copied into aligned memory and handed to the kernel.
#include "native_util.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

namespace ukvm {

// personality(): the calling thread's persona (personality(0xffffffff) only
// reads it), so TypeScript can refuse READ_IMPLIES_EXEC (docs/abi.md §17.1).
static Napi::Value Personality(const Napi::CallbackInfo& info) {
  int p = personality(0xffffffff);
  if (p < 0) {
    ThrowErrno(info.Env(), "personality", errno);
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), p);
}

// setNoNewPrivs(): prctl(PR_SET_NO_NEW_PRIVS, 1) on the calling thread (and
// whatever it creates later). Needed before a filter can be installed without
// CAP_SYS_ADMIN, and wanted anyway: execve can then never gain privileges.
static Napi::Value SetNoNewPrivs(const Napi::CallbackInfo& info) {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ThrowErrno(info.Env(), "prctl(PR_SET_NO_NEW_PRIVS)", errno);
  return info.Env().Undefined();
}

// seccompFilter(program, allThreads): seccomp(SECCOMP_SET_MODE_FILTER) with
// the classic-BPF program in `program` (8 bytes per struct sock_filter, as
// bpf.ts encodes them). allThreads adds SECCOMP_FILTER_FLAG_TSYNC: every
// thread of the process gets the filter at once, or none does (a thread
// that cannot be synchronised is reported by its id).
static Napi::Value SeccompFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsTypedArray() || !info[1].IsBoolean() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(env, "expected (Uint8Array program, boolean allThreads)");
    return env.Undefined();
  }
  Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  size_t len = bytes.ByteLength();
  if (len == 0 || len % sizeof(struct sock_filter) != 0 || len / sizeof(struct sock_filter) > BPF_MAXINSNS) {
    ThrowType(env, "a seccomp program is 1..4096 instructions of 8 bytes");
    return env.Undefined();
  }
  static_assert(sizeof(struct sock_filter) == 8, "struct sock_filter is 8 bytes");
  std::vector<struct sock_filter> insns(len / sizeof(struct sock_filter));
  memcpy(insns.data(), bytes.Data(), len);
  struct sock_fprog prog;
  prog.len = static_cast<unsigned short>(insns.size());
  prog.filter = insns.data();
  unsigned int flags = info[1].As<Napi::Boolean>().Value() ? SECCOMP_FILTER_FLAG_TSYNC : 0;
  long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
  if (r < 0) {
    ThrowErrno(env, "seccomp", errno);
  } else if (r > 0) {
    // TSYNC: thread r is under a filter this one does not descend from.
    std::string msg = "seccomp: thread " + std::to_string(r) + " could not be synchronised";
    Napi::Error::New(env, msg).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

void RegisterSeccomp(Napi::Env env, Napi::Object exports) {
  exports.Set("personality", Napi::Function::New(env, Personality));
  exports.Set("setNoNewPrivs", Napi::Function::New(env, SetNoNewPrivs));
  exports.Set("seccompFilter", Napi::Function::New(env, SeccompFilter));
}

}  // namespace ukvm
