// Process-wide table of running vCPUs. The signal handler and kick() read it
// to interrupt a vCPU thread that sits in KVM_RUN or in a POLL wait; JS only
// ever sees the slot index, never the run area's host address.
#pragma once
#include <atomic>
#include <pthread.h>
#include <linux/kvm.h>

namespace ukvm {

constexpr int kMaxVcpus = 512;

struct VcpuSlot {
  std::atomic<bool> reserved{false};  // slot taken by createVcpu
  std::atomic<bool> used{false};      // fully set up: interrupters may touch it
  int fd = -1;                       // vCPU descriptor
  int wake_fd = -1;                  // eventfd in this vCPU's POLL wait set
  struct kvm_run* run = nullptr;     // mmap'd run area (owned by an ArrayBuffer)
  std::atomic<bool> has_thread{false};
  std::atomic<pthread_t> thread{};   // thread that last called run()
  std::atomic<bool> stop{false};     // kick() was called
};

extern VcpuSlot g_vcpus[kMaxVcpus];
// First SIGINT/SIGTERM number caught, 0 if none (see signals_linux.cc).
extern std::atomic<int> g_pending_signal;
// Signal used to knock a vCPU thread out of KVM_RUN / epoll (no-op handler).
int KickSignal();
// Makes slot i leave KVM_RUN or its POLL wait as soon as possible.
void InterruptSlot(int i);
// Bracket code that may touch slots from a signal handler or another thread,
// so destroyVcpu can wait for it before closing descriptors.
void EnterInterrupt();
void LeaveInterrupt();

}  // namespace ukvm
