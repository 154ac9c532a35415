// Process-wide table of running vCPUs (defined in vcpu_linux.cc). The signal
// handler, kick() and interrupt() read it to get a vCPU thread out of KVM_RUN
// or its POLL wait; JS only ever sees a token, never the run area's host
// address.
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
  std::atomic<bool> stop{false};     // kick() was called: the run ends
  std::atomic<bool> interrupt{false};  // interrupt() posted, not yet taken (one-shot)
  std::atomic<uint32_t> generation{0};  // bumped each time the slot is reused
};

extern VcpuSlot g_vcpus[kMaxVcpus];

// JavaScript names a vCPU by a token, generation × kMaxVcpus + slot, so a
// stale token (a VM that ended, its slot since reused) never reaches another
// VM. Returns the slot a token names if that vCPU is live, else -1.
inline int LiveSlot(double token) {
  if (!(token >= 0 && token < 9007199254740992.0)) return -1;
  uint64_t t = static_cast<uint64_t>(token);
  if (static_cast<double>(t) != token) return -1;
  int slot = static_cast<int>(t % kMaxVcpus);
  uint64_t gen = t / kMaxVcpus;
  VcpuSlot& s = g_vcpus[slot];
  return s.used.load() && s.generation.load() == gen ? slot : -1;
}
// First SIGINT/SIGTERM number caught, 0 if none (see host_signals_linux.cc).
extern std::atomic<int> g_pending_signal;
// Signal used to knock a vCPU thread out of KVM_RUN / epoll (no-op handler).
int KickSignal();
// Makes slot i leave KVM_RUN or its POLL wait as soon as possible: sets
// kvm_run.immediate_exit, writes the wake eventfd, and signals the vCPU's
// thread (unless that is the calling thread). Async-signal-safe.
void InterruptSlot(int i);
// Bracket code that may touch slots from a signal handler or another thread,
// so destroyVcpu can wait for it before closing descriptors.
void EnterInterrupt();
void LeaveInterrupt();

}  // namespace ukvm
