// Shared helpers of the native addon: errno-carrying JS errors and argument
// access. Every export is one system call (or a pair that must not be split);
// policy lives in TypeScript.
#pragma once
#include <napi.h>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#ifndef __linux__
#include "freebsd/errno_name.h"  // no strerrorname_np outside glibc
#endif

namespace ukvm {

// Throws a JS Error whose message is "SYSCALL: strerror", with errno, code
// (e.g. "ENOENT") and syscall as properties, like Node's own system errors.
inline void ThrowErrno(Napi::Env env, const char* syscall, int err) {
#ifdef __linux__
  const char* name = strerrorname_np(err);
#else
  const char* name = ErrnoName(err);
#endif
  std::string msg = std::string(syscall) + ": " + strerror(err);
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, name ? name : "UNKNOWN"));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
}

inline void ThrowType(Napi::Env env, const char* what) {
  Napi::TypeError::New(env, what).ThrowAsJavaScriptException();
}

// Reads argument i as a non-negative integer that fits in an int (an fd or an
// index). Returns false (with a pending TypeError) otherwise.
inline bool ArgInt(const Napi::CallbackInfo& info, size_t i, int* out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    ThrowType(info.Env(), "expected an integer argument");
    return false;
  }
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 2147483647.0) || d != static_cast<double>(static_cast<long long>(d))) {
    ThrowType(info.Env(), "integer argument out of range");
    return false;
  }
  *out = static_cast<int>(d);
  return true;
}

// Reads argument i as a non-negative integer below 2^53 (sizes, offsets).
inline bool ArgSize(const Napi::CallbackInfo& info, size_t i, uint64_t* out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    ThrowType(info.Env(), "expected a size argument");
    return false;
  }
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<uint64_t>(d))) {
    ThrowType(info.Env(), "size argument out of range");
    return false;
  }
  *out = static_cast<uint64_t>(d);
  return true;
}

// Argument i must be a Uint8Array of exactly `len` bytes; returns its data.
inline uint8_t* ArgBytes(const Napi::CallbackInfo& info, size_t i, size_t len) {
  if (info.Length() <= i || !info[i].IsTypedArray()) {
    ThrowType(info.Env(), "expected a Uint8Array");
    return nullptr;
  }
  Napi::TypedArray ta = info[i].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_uint8_array || ta.ByteLength() != len) {
    ThrowType(info.Env(), "Uint8Array has the wrong size");
    return nullptr;
  }
  Napi::Uint8Array u8 = ta.As<Napi::Uint8Array>();
  return u8.Data();
}

// Reads argument i as a vCPU token (vcpu_registry.h) naming a live vCPU;
// returns its slot, or -1 with a pending TypeError.
int ArgSlot(const Napi::CallbackInfo& info, size_t i);

// Registration, one function per source file. KVM (Linux only):
void RegisterKvm(Napi::Env env, Napi::Object exports);        // kvm_linux.cc
void RegisterVcpu(Napi::Env env, Napi::Object exports);       // vcpu_linux.cc
void RegisterVcpuDebug(Napi::Env env, Napi::Object exports);  // vcpu_debug_linux.cc
// Host:
void RegisterIo(Napi::Env env, Napi::Object exports);       // host_io_posix.cc
void RegisterSignals(Napi::Env env, Napi::Object exports);  // host_signals_linux.cc
void RegisterWaitset(Napi::Env env, Napi::Object exports);  // host_waitset_linux.cc
void RegisterTap(Napi::Env env, Napi::Object exports);      // host_tap_linux.cc
void RegisterSeccomp(Napi::Env env, Napi::Object exports);  // host_seccomp_linux.cc
void RegisterRing(Napi::Env env, Napi::Object exports);     // host_ring_linux.cc
void RegisterGuestMapping(Napi::Env env, Napi::Object exports);  // guest_mapping.cc
// Several VMs on one thread (Linux only):
void RegisterWaitWatch(Napi::Env env, Napi::Object exports);  // host_waitwatch_linux.cc
void RegisterLanes(Napi::Env env, Napi::Object exports);      // vcpu_lanes_linux.cc
// The bench addon only (target ukvm_bench):
void RegisterBench(Napi::Env env, Napi::Object exports);  // bench_linux.cc

}  // namespace ukvm
