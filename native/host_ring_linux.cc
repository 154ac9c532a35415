// What the net ring (docs/abi.md §13.5) needs from Linux besides guest
// memory: an eventfd for the kick, and KVM_IOEVENTFD, which makes the
// guest's 32-bit OUT to the kick port signal that eventfd inside KVM instead
// of exiting to us. One export per system call or ioctl; the policy (which
// port, the fallbacks and their warnings) is in modules/net/.
#include "kvm_common.h"

#include <sys/eventfd.h>

namespace ukvm {

static_assert(sizeof(struct kvm_ioeventfd) == 64 && offsetof(struct kvm_ioeventfd, addr) == 8 &&
                  offsetof(struct kvm_ioeventfd, len) == 16 && offsetof(struct kvm_ioeventfd, fd) == 20 &&
                  offsetof(struct kvm_ioeventfd, flags) == 24,
              "kvm_ioeventfd layout (Appendix A)");
static_assert(KVM_IOEVENTFD == 0x4040AE79 && KVM_IOEVENTFD_FLAG_PIO == 2 && KVM_CAP_IOEVENTFD == 36,
              "ioeventfd values (Appendix A)");

// eventfdCreate(): a blocking eventfd, counter 0, close-on-exec. Blocking on
// purpose: the ring's consumer thread sleeps in read(2) on it.
static Napi::Value EventfdCreate(const Napi::CallbackInfo& info) {
  int fd = eventfd(0, EFD_CLOEXEC);
  if (fd < 0) {
    ThrowErrno(info.Env(), "eventfd", errno);
    return info.Env().Undefined();
  }
  return Num(info.Env(), fd);
}

// ioeventfd(vmFd, port, length, eventFd, assign): KVM_IOEVENTFD for port I/O
// of `length` bytes at `port`, any value (no datamatch); assign false
// removes it again.
static Napi::Value Ioeventfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int vm, port, len, fd;
  if (!ArgInt(info, 0, &vm) || !ArgInt(info, 1, &port) || !ArgInt(info, 2, &len) || !ArgInt(info, 3, &fd)) {
    return env.Undefined();
  }
  if (info.Length() < 5 || !info[4].IsBoolean() || port > 0xffff || !(len == 1 || len == 2 || len == 4)) {
    ThrowType(env, "expected (vmFd, port 0..65535, length 1|2|4, eventFd, assign)");
    return env.Undefined();
  }
  struct kvm_ioeventfd io;
  memset(&io, 0, sizeof io);
  io.addr = static_cast<uint64_t>(port);
  io.len = static_cast<uint32_t>(len);
  io.fd = fd;
  io.flags = KVM_IOEVENTFD_FLAG_PIO | (info[4].As<Napi::Boolean>().Value() ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN);
  if (ioctl(vm, KVM_IOEVENTFD, &io) < 0) ThrowErrno(env, "KVM_IOEVENTFD", errno);
  return env.Undefined();
}

void RegisterRing(Napi::Env env, Napi::Object exports) {
  exports.Set("eventfdCreate", Napi::Function::New(env, EventfdCreate));
  exports.Set("ioeventfd", Napi::Function::New(env, Ioeventfd));
}

}  // namespace ukvm
