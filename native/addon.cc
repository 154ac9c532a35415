// Registration of every native export. Built twice (binding.gyp):
//   ukvm_native.node — the product: the kvm and host surfaces
//                      (native/binding/kvm.ts, native/binding/host.ts,
//                      and on Linux native/binding/sched.ts);
//   ukvm_bench.node  — the same plus the bench-only floor loop
//                      (native/binding/bench.ts), compiled with UKVM_BENCH.
// The product never loads the bench addon. Each addon has its own vCPU
// table: a token from one means nothing to the other. Keep the typed
// declarations in native/binding/ in step with what is registered here
// (native/binding/load.ts checks the shape at load). On FreeBSD the vmm
// surface (native/binding/vmm.ts) replaces the KVM one. Elsewhere only the
// POSIX host exports exist, and the shape check says which are missing.
#include "native_util.h"
#ifdef __FreeBSD__
#include "freebsd/register.h"
#endif

namespace ukvm {
#ifndef __linux__
void RegisterKvm(Napi::Env, Napi::Object) {}
void RegisterVcpu(Napi::Env, Napi::Object) {}
void RegisterVcpuDebug(Napi::Env, Napi::Object) {}
void RegisterSeccomp(Napi::Env, Napi::Object) {}
void RegisterRing(Napi::Env, Napi::Object) {}
void RegisterBench(Napi::Env, Napi::Object) {}
void RegisterWaitWatch(Napi::Env, Napi::Object) {}
void RegisterLanes(Napi::Env, Napi::Object) {}
#endif
#if !defined(__linux__) && !defined(__FreeBSD__)
void RegisterGuestMapping(Napi::Env, Napi::Object) {}
void RegisterSignals(Napi::Env, Napi::Object) {}
void RegisterWaitset(Napi::Env, Napi::Object) {}
void RegisterTap(Napi::Env, Napi::Object) {}
#endif
}  // namespace ukvm

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ukvm::RegisterKvm(env, exports);
  ukvm::RegisterVcpu(env, exports);
  ukvm::RegisterVcpuDebug(env, exports);
  ukvm::RegisterIo(env, exports);
  ukvm::RegisterSignals(env, exports);
  ukvm::RegisterWaitset(env, exports);
  ukvm::RegisterTap(env, exports);
  ukvm::RegisterSeccomp(env, exports);
  ukvm::RegisterRing(env, exports);
  ukvm::RegisterGuestMapping(env, exports);
  ukvm::RegisterWaitWatch(env, exports);
  ukvm::RegisterLanes(env, exports);
#ifdef __FreeBSD__
  ukvm::RegisterVmm(env, exports);
  ukvm::RegisterVmmVcpu(env, exports);
  ukvm::RegisterVmmConfine(env, exports);
  ukvm::RegisterDisk(env, exports);
#endif
#ifdef UKVM_BENCH
  ukvm::RegisterBench(env, exports);
#endif
  return exports;
}

#ifdef UKVM_BENCH
NODE_API_MODULE(ukvm_bench, Init)
#else
NODE_API_MODULE(ukvm_native, Init)
#endif
