// Bench-only: the physical floor of this machine's hypercalls. Runs a vCPU to
// HALT answering WALLTIME, zero-timeout POLL and PUTS in C++ without returning
// to JavaScript, so bench/ can compare the TypeScript path against it.
#include "native_util.h"
#include "vcpu_registry.h"

#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

namespace ukvm {

// benchRunToHalt(token, memory, memSize, putsFd): returns the HALT status, or
// throws on anything the floor loop does not serve.
static Napi::Value BenchRunToHalt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int puts_fd;
  uint64_t mem_size;
  int slot = ArgSlot(info, 0);
  if (slot < 0) return env.Undefined();
  if (info.Length() < 2 || !info[1].IsArrayBuffer() ||
      !ArgSize(info, 2, &mem_size) || !ArgInt(info, 3, &puts_fd)) {
    ThrowType(env, "expected (slot, memory, memSize, putsFd)");
    return env.Undefined();
  }
  Napi::ArrayBuffer ab = info[1].As<Napi::ArrayBuffer>();
  if (mem_size > ab.ByteLength()) {
    ThrowType(env, "bad vCPU or memory size");
    return env.Undefined();
  }
  uint8_t* mem = static_cast<uint8_t*>(ab.Data());
  VcpuSlot& s = g_vcpus[slot];
  auto ok = [&](uint64_t gpa, uint64_t len) { return gpa < mem_size && len <= mem_size - gpa; };
  for (;;) {
    if (ioctl(s.fd, KVM_RUN, 0) < 0) {
      if (errno == EINTR) continue;
      ThrowErrno(env, "KVM_RUN", errno);
      return env.Undefined();
    }
    struct kvm_run* r = s.run;
    if (r->exit_reason != KVM_EXIT_IO || r->io.direction != KVM_EXIT_IO_OUT || r->io.size != 4) {
      ThrowType(env, "bench floor: unexpected exit");
      return env.Undefined();
    }
    uint32_t gpa;
    memcpy(&gpa, reinterpret_cast<uint8_t*>(r) + r->io.data_offset, 4);
    switch (r->io.port) {
      case 0x501: {  // WALLTIME
        if (!ok(gpa, 8)) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = uint64_t(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
        memcpy(mem + gpa, &ns, 8);
        continue;
      }
      case 0x502: {  // PUTS
        if (!ok(gpa, 16)) break;
        uint64_t data, len;
        memcpy(&data, mem + gpa, 8);
        memcpy(&len, mem + gpa + 8, 8);
        if (!ok(data, len)) break;
        ssize_t w = write(puts_fd, mem + data, len);
        (void)w;
        continue;
      }
      case 0x503: {  // POLL, zero timeout only: nothing is ever ready
        if (!ok(gpa, 24)) break;
        memset(mem + gpa + 8, 0, 12);
        continue;
      }
      case 0x508: {  // HALT
        if (!ok(gpa, 16)) break;
        int32_t status;
        memcpy(&status, mem + gpa + 8, 4);
        return Napi::Number::New(env, status);
      }
      default:
        break;
    }
    ThrowType(env, "bench floor: bad hypercall");
    return env.Undefined();
  }
}

void RegisterBench(Napi::Env env, Napi::Object exports) {
  exports.Set("benchRunToHalt", Napi::Function::New(env, BenchRunToHalt));
}

}  // namespace ukvm
