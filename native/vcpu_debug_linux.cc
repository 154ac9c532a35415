// Linux KVM, vCPU debugging: the x87/SSE state (KVM_GET_FPU), guest-debug
// control (KVM_SET_GUEST_DEBUG: single-step, software and hardware
// breakpoints), and interrupt(), which makes a running vCPU leave KVM_RUN (or
// its POLL wait) once, from any thread, the way a debugger's Ctrl-C needs.
// General and special registers are getRegs/setRegs/getSregs/setSregs
// (vcpu_linux.cc). The images are converted to neutral x86_64 values in
// monitor/backend/kvm/debug.ts.
#include "kvm_common.h"
#include "vcpu_registry.h"

#include <cstddef>
#include <unistd.h>

namespace ukvm {

// Request numbers from the C ABI (docs/abi.md Appendix A), and the layouts
// the TypeScript conversion reads.
static_assert(KVM_GET_FPU == 0x81A0AE8C, "KVM_GET_FPU number");
static_assert(KVM_SET_GUEST_DEBUG == 0x4048AE9B, "KVM_SET_GUEST_DEBUG number");
static_assert(sizeof(struct kvm_fpu) == 416, "kvm_fpu size");
static_assert(offsetof(struct kvm_fpu, fpr) == 0 && offsetof(struct kvm_fpu, fcw) == 128 &&
                  offsetof(struct kvm_fpu, fsw) == 130 && offsetof(struct kvm_fpu, ftwx) == 132 &&
                  offsetof(struct kvm_fpu, last_opcode) == 134 && offsetof(struct kvm_fpu, last_ip) == 136 &&
                  offsetof(struct kvm_fpu, last_dp) == 144 && offsetof(struct kvm_fpu, xmm) == 152 &&
                  offsetof(struct kvm_fpu, mxcsr) == 408,
              "kvm_fpu layout");
static_assert(sizeof(struct kvm_guest_debug) == 72 && offsetof(struct kvm_guest_debug, control) == 0 &&
                  offsetof(struct kvm_guest_debug, arch) == 8 && sizeof(struct kvm_guest_debug_arch) == 64,
              "kvm_guest_debug layout: control u32 @0, debugreg[8] @8");
static_assert(KVM_GUESTDBG_ENABLE == 0x1 && KVM_GUESTDBG_SINGLESTEP == 0x2 && KVM_GUESTDBG_USE_SW_BP == 0x10000 &&
                  KVM_GUESTDBG_USE_HW_BP == 0x20000,
              "guest-debug control bits (Appendix A)");

// getFpu(vcpuFd, bytes): KVM_GET_FPU into a 416-byte kvm_fpu image.
static Napi::Value GetFpu(const Napi::CallbackInfo& i) { return StructIoctl<kvm_fpu, KVM_GET_FPU>(i, "KVM_GET_FPU"); }

// setGuestDebug(vcpuFd, bytes): KVM_SET_GUEST_DEBUG from a 72-byte
// kvm_guest_debug image (control flags, then debugreg[0..7]).
static Napi::Value SetGuestDebug(const Napi::CallbackInfo& i) {
  return StructIoctl<kvm_guest_debug, KVM_SET_GUEST_DEBUG>(i, "KVM_SET_GUEST_DEBUG");
}

// interrupt(token): from any thread, makes that vCPU leave KVM_RUN (or its
// POLL wait) once. Unlike kick() the run does not end: run() returns 1 and
// takeInterrupt() then answers true once, after which the vCPU runs normally
// again. Returns false if that vCPU no longer exists.
static Napi::Value Interrupt(const Napi::CallbackInfo& info) {
  double token = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  EnterInterrupt();  // before the liveness check, so destroyVcpu waits for us
  int slot = LiveSlot(token);
  if (slot >= 0) {
    g_vcpus[slot].interrupt.store(true);
    InterruptSlot(slot);
  }
  LeaveInterrupt();
  return Napi::Boolean::New(info.Env(), slot >= 0);
}

// takeInterrupt(token): on the vCPU's own thread, after run() returned 1.
// True once per interrupt() (concurrent ones may merge into one): the flag is
// cleared, kvm_run.immediate_exit reset and the wake eventfd drained, so the
// next KVM_RUN enters the guest and the next POLL waits. If a stop or a
// termination signal (or another interrupt) came meanwhile, immediate_exit
// and the eventfd are armed again so that it is not lost. False if no
// interrupt was pending.
static Napi::Value TakeInterrupt(const Napi::CallbackInfo& info) {
  int slot = ArgSlot(info, 0);
  if (slot < 0) return info.Env().Undefined();
  VcpuSlot& s = g_vcpus[slot];
  if (!s.interrupt.exchange(false)) return Napi::Boolean::New(info.Env(), false);
  __atomic_store_n(&s.run->immediate_exit, 0, __ATOMIC_SEQ_CST);
  uint64_t count;
  ssize_t r = read(s.wake_fd, &count, sizeof count);  // non-blocking; one read empties an eventfd
  (void)r;
  // kick() and the signal handler set their flag before they arm; seeing no
  // flag here means their arming comes after the reset above.
  if (g_pending_signal.load() != 0 || s.stop.load() || s.interrupt.load()) {
    __atomic_store_n(&s.run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    uint64_t one = 1;
    r = write(s.wake_fd, &one, sizeof one);
    (void)r;
  }
  return Napi::Boolean::New(info.Env(), true);
}

void RegisterVcpuDebug(Napi::Env env, Napi::Object exports) {
  exports.Set("getFpu", Napi::Function::New(env, GetFpu));
  exports.Set("setGuestDebug", Napi::Function::New(env, SetGuestDebug));
  exports.Set("interrupt", Napi::Function::New(env, Interrupt));
  exports.Set("takeInterrupt", Napi::Function::New(env, TakeInterrupt));
}

}  // namespace ukvm
