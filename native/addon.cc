// Registration of every native export. The typed declaration of the whole
// surface is native/binding.d.ts; keep the two in step.
#include "native_util.h"


namespace ukvm {
#ifndef __linux__
void RegisterKvm(Napi::Env, Napi::Object) {}
void RegisterVcpu(Napi::Env, Napi::Object) {}
void RegisterSignals(Napi::Env, Napi::Object) {}
void RegisterWaitset(Napi::Env, Napi::Object) {}
void RegisterBench(Napi::Env, Napi::Object) {}
void RegisterTap(Napi::Env, Napi::Object) {}
#endif
}  // namespace ukvm

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ukvm::RegisterKvm(env, exports);
  ukvm::RegisterVcpu(env, exports);
  ukvm::RegisterSignals(env, exports);
  ukvm::RegisterWaitset(env, exports);
  ukvm::RegisterBench(env, exports);
  ukvm::RegisterIo(env, exports);
  ukvm::RegisterTap(env, exports);
#ifdef __linux__
  exports.Set("platform", Napi::String::New(env, "linux-kvm"));
#else
  exports.Set("platform", Napi::String::New(env, "unsupported"));
#endif
  return exports;
}

NODE_API_MODULE(ukvm_native, Init)
