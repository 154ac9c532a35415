// Process-wide table of FreeBSD vmm vCPUs (defined in vcpu_freebsd.cc), the
// counterpart of the Linux vcpu_registry.h. A termination signal, kick() and
// interrupt() read it to get a vCPU thread out of VM_RUN or its POLL wait;
// JavaScript only ever holds a token.
//
// Getting a thread out of VM_RUN: vmm returns from VM_RUN (a BOGUS exit, or
// EINTR) when a signal is pending for the thread. A signal that lands just
// before the ioctl is entered is handled in user space and then missed, and
// vmm has no kvm_run.immediate_exit to close that window. So the vCPU thread
// marks the window (in_run) and a kicker thread repeats the signal, once per
// millisecond, until every vCPU asked to stop has left VM_RUN.
#pragma once
#include <atomic>
#include <pthread.h>

namespace ukvm {

constexpr int kMaxVcpus = 512;

struct VmmSlot {
  std::atomic<bool> reserved{false};  // taken by createVcpu
  std::atomic<bool> used{false};      // fully set up: interrupters may touch it
  int vm_fd = -1;                     // the VM descriptor (owned by TypeScript)
  int vcpu = 0;                       // vCPU number inside the VM
  int run_abi = 14;                   // 13: VM_RUN with the exit inside; 14: caller-owned exit
  int wake_r = -1;                    // pipe in this vCPU's POLL wait set (read end)
  int wake_w = -1;                    // its write end (signal handler, kick, interrupt)
  std::atomic<bool> has_thread{false};
  std::atomic<pthread_t> thread{};    // thread that last called run()
  std::atomic<bool> in_run{false};    // between the last check and the end of VM_RUN
  std::atomic<bool> stop{false};      // kick() was called: the run ends
  std::atomic<bool> interrupt{false};  // interrupt() posted, not yet taken (one-shot)
  std::atomic<uint32_t> generation{0};  // bumped each time the slot is reused
};

extern VmmSlot g_vmm_slots[kMaxVcpus];
// First SIGINT/SIGTERM number caught, 0 if none (host_signals_freebsd.cc).
extern std::atomic<int> g_pending_signal;
// Signal used to knock a vCPU thread out of VM_RUN / kevent (no-op handler).
int KickSignal();

// The slot a token names if that vCPU is live, else -1 (token = generation ×
// kMaxVcpus + slot, so a stale token never reaches a reused slot).
int LiveSlot(double token);
// Makes slot i leave VM_RUN or its POLL wait as soon as possible: writes its
// wake pipe, signals its thread (unless that is the caller) and wakes the
// kicker thread. Async-signal-safe.
void InterruptSlot(int i);
// Bracket code that may touch slots from a signal handler or another thread,
// so destroyVcpu can wait for it before closing descriptors.
void EnterInterrupt();
void LeaveInterrupt();

}  // namespace ukvm
