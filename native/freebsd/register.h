// Registration of the FreeBSD-only sources (called by native/addon.cc when
// built on FreeBSD). The POSIX host exports (host_io_posix.cc) are shared.
#pragma once
#include <napi.h>

namespace ukvm {
void RegisterVmm(Napi::Env env, Napi::Object exports);       // native/vmm_freebsd.cc
void RegisterVmmVcpu(Napi::Env env, Napi::Object exports);   // freebsd/vcpu_freebsd.cc
void RegisterVmmConfine(Napi::Env env, Napi::Object exports);  // freebsd/vmm_confine_freebsd.cc
void RegisterSignals(Napi::Env env, Napi::Object exports);   // freebsd/host_signals_freebsd.cc
void RegisterWaitset(Napi::Env env, Napi::Object exports);   // freebsd/host_waitset_freebsd.cc
void RegisterTap(Napi::Env env, Napi::Object exports);       // freebsd/host_tap_freebsd.cc
void RegisterDisk(Napi::Env env, Napi::Object exports);      // freebsd/host_disk_freebsd.cc
}  // namespace ukvm
