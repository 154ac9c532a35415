// Registration of every native export. The typed declaration of the whole
// surface is native/binding.d.ts; keep the two in step.
#include "native_util.h"

#include <time.h>

namespace ukvm {
#ifndef __linux__
void RegisterKvm(Napi::Env, Napi::Object) {}
void RegisterSignals(Napi::Env, Napi::Object) {}
void RegisterWaitset(Napi::Env, Napi::Object) {}
void RegisterBench(Napi::Env, Napi::Object) {}
#endif
}  // namespace ukvm

// realtimeNs(): CLOCK_REALTIME in nanoseconds since the epoch, as a BigInt
// (WALLTIME needs the host's wall clock at full resolution; Date.now() has ms).
static Napi::Value RealtimeNs(const Napi::CallbackInfo& info) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t ns = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  return Napi::BigInt::New(info.Env(), ns);
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ukvm::RegisterKvm(env, exports);
  ukvm::RegisterSignals(env, exports);
  ukvm::RegisterWaitset(env, exports);
  ukvm::RegisterBench(env, exports);
  exports.Set("realtimeNs", Napi::Function::New(env, RealtimeNs));
#ifdef __linux__
  exports.Set("platform", Napi::String::New(env, "linux-kvm"));
#else
  exports.Set("platform", Napi::String::New(env, "unsupported"));
#endif
  return exports;
}

NODE_API_MODULE(ukvm_native, Init)
