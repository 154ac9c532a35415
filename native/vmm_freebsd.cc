// FreeBSD vmm(4), VM level (docs/abi.md §18): one export per sysctl or
// ioctl of the §18 sequence, the host mapping of guest RAM and the TSC
// sysctls. The reaper and Capsicum are freebsd/vmm_confine_freebsd.cc.
// No policy here: order, checks and wording are monitor/backend/vmm/. The
// vCPU exports are native/freebsd/vcpu_freebsd.cc; the structures and
// numbers, pinned to FreeBSD's headers, are native/freebsd/fbsd_sys.h.
#include "native_util.h"
#include "freebsd/fbsd_sys.h"
#include "guest_mapping.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace ukvm {

// A VM name as hw.vmm.create takes it: printable, no '/', short enough for
// /dev/vmm/NAME (VM_MAX_NAMELEN is at least 229 on 13 and 14; we allow 64).
static bool NameArg(const Napi::CallbackInfo& info, size_t i, std::string* out) {
  if (info.Length() <= i || !info[i].IsString()) {
    ThrowType(info.Env(), "expected a VM name");
    return false;
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  bool ok = !out->empty() && out->size() <= 64;
  for (char c : *out) ok = ok && c > ' ' && c < 0x7f && c != '/';
  if (!ok) ThrowType(info.Env(), "VM name must be 1..64 printable characters without '/'");
  return ok;
}

static bool ArgU64(const Napi::CallbackInfo& info, size_t i, uint64_t* out) {
  bool lossless = false;
  if (info.Length() <= i || !info[i].IsBigInt() || (*out = info[i].As<Napi::BigInt>().Uint64Value(&lossless), !lossless)) {
    ThrowType(info.Env(), "expected a BigInt below 2^64");
    return false;
  }
  return true;
}

static Napi::Value Ok(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }

static Napi::Value Fail(const Napi::CallbackInfo& info, const char* what, int err) {
  ThrowErrno(info.Env(), what, err);
  return info.Env().Undefined();
}

// vmmCreate(name) / vmmDestroy(name): sysctl hw.vmm.create / hw.vmm.destroy.
template <bool CREATE>
static Napi::Value CreateOrDestroy(const Napi::CallbackInfo& info) {
  std::string name;
  if (!NameArg(info, 0, &name)) return info.Env().Undefined();
  const char* oid = CREATE ? "hw.vmm.create" : "hw.vmm.destroy";
  if (sysctlbyname(oid, nullptr, nullptr, name.c_str(), name.size()) != 0) return Fail(info, oid, errno);
  return Ok(info);
}

// vmmOpen(name): /dev/vmm/NAME, read/write, close-on-exec.
static Napi::Value Open(const Napi::CallbackInfo& info) {
  std::string name;
  if (!NameArg(info, 0, &name)) return info.Env().Undefined();
  std::string path = "/dev/vmm/" + name;
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Fail(info, "open", errno);
  return Napi::Number::New(info.Env(), fd);
}

// vmSetCapability(fd, vcpu, cap, value): VM_SET_CAPABILITY.
static Napi::Value SetCapability(const Napi::CallbackInfo& info) {
  int fd, vcpu, cap, value;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &vcpu) || !ArgInt(info, 2, &cap) || !ArgInt(info, 3, &value)) {
    return info.Env().Undefined();
  }
  fbsd::VmCapability c;
  memset(&c, 0, sizeof c);
  c.cpuid = vcpu;
  c.captype = cap;
  c.capval = value;
  if (ioctl(fd, fbsd::kVmSetCapability, &c) != 0) return Fail(info, "VM_SET_CAPABILITY", errno);
  return Ok(info);
}

// vmAllocMemseg(fd, segid, length): VM_ALLOC_MEMSEG (system memory, no name).
static Napi::Value AllocMemseg(const Napi::CallbackInfo& info) {
  int fd, segid;
  uint64_t len;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &segid) || !ArgSize(info, 2, &len)) return info.Env().Undefined();
  fbsd::VmMemseg m;
  memset(&m, 0, sizeof m);
  m.segid = segid;
  m.len = len;
  if (ioctl(fd, fbsd::kVmAllocMemseg, &m) != 0) return Fail(info, "VM_ALLOC_MEMSEG", errno);
  return Ok(info);
}

// vmMmapMemseg(fd, gpa, segid, segoff, length, prot): VM_MMAP_MEMSEG;
// prot bits 1 read, 2 write, 4 exec (PROT_* have these values on FreeBSD).
static Napi::Value MmapMemseg(const Napi::CallbackInfo& info) {
  int fd, segid, prot;
  uint64_t gpa, off, len;
  if (!ArgInt(info, 0, &fd) || !ArgSize(info, 1, &gpa) || !ArgInt(info, 2, &segid) || !ArgSize(info, 3, &off) ||
      !ArgSize(info, 4, &len) || !ArgInt(info, 5, &prot)) {
    return info.Env().Undefined();
  }
  fbsd::VmMemmap m;
  memset(&m, 0, sizeof m);
  m.gpa = gpa;
  m.segid = segid;
  m.segoff = static_cast<int64_t>(off);
  m.len = len;
  m.prot = (prot & 1 ? PROT_READ : 0) | (prot & 2 ? PROT_WRITE : 0) | (prot & 4 ? PROT_EXEC : 0);
  if (ioctl(fd, fbsd::kVmMmapMemseg, &m) != 0) return Fail(info, "VM_MMAP_MEMSEG", errno);
  return Ok(info);
}

// vmMapGuest(fd, length): mmap of the VM descriptor at offset 0 (guest
// physical 0), shared, read/write: the host's view of guest RAM, as a
// reference-counted guest mapping (guest_mapping.h) so that the net ring's
// thread can share it (shareMemory); unmapped when its last holder goes.
static Napi::Value MapGuest(const Napi::CallbackInfo& info) {
  int fd;
  uint64_t len;
  if (!ArgInt(info, 0, &fd) || !ArgSize(info, 1, &len)) return info.Env().Undefined();
  if (len == 0 || len % 4096 != 0) {
    ThrowType(info.Env(), "guest memory length must be a non-zero multiple of 4096");
    return info.Env().Undefined();
  }
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return Fail(info, "mmap", errno);
  return GuestMappingBuffer(info.Env(), p, len);
}

// vmProtect(memory, offset, length, prot): mprotect of a page-aligned range
// of the host mapping (vmm cannot change the guest's own view, §18).
static Napi::Value Protect(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) {
    ThrowType(info.Env(), "expected the guest memory ArrayBuffer");
    return info.Env().Undefined();
  }
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  uint64_t off, len;
  int prot;
  if (!ArgSize(info, 1, &off) || !ArgSize(info, 2, &len) || !ArgInt(info, 3, &prot)) return info.Env().Undefined();
  if (off % 4096 || len % 4096 || off > ab.ByteLength() || len > ab.ByteLength() - off || prot > 7) {
    ThrowType(info.Env(), "protect range must be page aligned and inside guest memory");
    return info.Env().Undefined();
  }
  int p = (prot & 1 ? PROT_READ : 0) | (prot & 2 ? PROT_WRITE : 0) | (prot & 4 ? PROT_EXEC : 0);
  if (len && mprotect(static_cast<uint8_t*>(ab.Data()) + off, len, p) != 0) return Fail(info, "mprotect", errno);
  return Ok(info);
}

static bool RegArgs(const Napi::CallbackInfo& info, int* fd, int* vcpu, int* reg) {
  if (!ArgInt(info, 0, fd) || !ArgInt(info, 1, vcpu) || !ArgInt(info, 2, reg)) return false;
  if (*reg >= fbsd::kRegLast14) {
    ThrowType(info.Env(), "no such vmm register");
    return false;
  }
  return true;
}

// vmSetRegister(fd, vcpu, reg, value: bigint): VM_SET_REGISTER.
static Napi::Value SetRegister(const Napi::CallbackInfo& info) {
  int fd, vcpu, reg;
  uint64_t value;
  if (!RegArgs(info, &fd, &vcpu, &reg) || !ArgU64(info, 3, &value)) return info.Env().Undefined();
  fbsd::VmRegister r = {vcpu, reg, value};
  if (ioctl(fd, fbsd::kVmSetRegister, &r) != 0) return Fail(info, "VM_SET_REGISTER", errno);
  return Ok(info);
}

// vmGetRegister(fd, vcpu, reg): VM_GET_REGISTER, as a bigint.
static Napi::Value GetRegister(const Napi::CallbackInfo& info) {
  int fd, vcpu, reg;
  if (!RegArgs(info, &fd, &vcpu, &reg)) return info.Env().Undefined();
  fbsd::VmRegister r = {vcpu, reg, 0};
  if (ioctl(fd, fbsd::kVmGetRegister, &r) != 0) return Fail(info, "VM_GET_REGISTER", errno);
  return Napi::BigInt::New(info.Env(), r.regval);
}

// vmSetSegmentDescriptor(fd, vcpu, reg, base: bigint, limit, access): VM_SET_SEGMENT_DESCRIPTOR.
static Napi::Value SetSegmentDescriptor(const Napi::CallbackInfo& info) {
  int fd, vcpu, reg;
  uint64_t base, limit, access;
  if (!RegArgs(info, &fd, &vcpu, &reg) || !ArgU64(info, 3, &base) || !ArgSize(info, 4, &limit) ||
      !ArgSize(info, 5, &access)) {
    return info.Env().Undefined();
  }
  if (limit > 0xffffffffULL || access > 0xffffffffULL) {
    ThrowType(info.Env(), "limit and access are 32-bit values");
    return info.Env().Undefined();
  }
  fbsd::VmSegDesc d;
  memset(&d, 0, sizeof d);
  d.cpuid = vcpu;
  d.regnum = reg;
  d.desc.base = base;
  d.desc.limit = static_cast<uint32_t>(limit);
  d.desc.access = static_cast<uint32_t>(access);
  if (ioctl(fd, fbsd::kVmSetSegmentDescriptor, &d) != 0) return Fail(info, "VM_SET_SEGMENT_DESCRIPTOR", errno);
  return Ok(info);
}

// vmActivateCpu(fd, vcpu): VM_ACTIVATE_CPU.
static Napi::Value ActivateCpu(const Napi::CallbackInfo& info) {
  int fd, vcpu;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &vcpu)) return info.Env().Undefined();
  fbsd::VmActivateCpu a = {vcpu};
  if (ioctl(fd, fbsd::kVmActivateCpu, &a) != 0) return Fail(info, "VM_ACTIVATE_CPU", errno);
  return Ok(info);
}

// Reads a fixed-size sysctl by name into T.
template <typename T>
static bool ReadSysctl(const char* name, T* out) {
  size_t len = sizeof *out;
  return sysctlbyname(name, out, &len, nullptr, 0) == 0 && len == sizeof *out;
}

// tscFrequency(): sysctl machdep.tsc_freq (u64 Hz), as a bigint.
static Napi::Value TscFrequency(const Napi::CallbackInfo& info) {
  uint64_t hz = 0;
  if (!ReadSysctl("machdep.tsc_freq", &hz)) return Fail(info, "sysctl(machdep.tsc_freq)", errno ? errno : EINVAL);
  return Napi::BigInt::New(info.Env(), hz);
}

// tscInvariant(): sysctl kern.timecounter.invariant_tsc (int).
static Napi::Value TscInvariant(const Napi::CallbackInfo& info) {
  int v = 0;
  if (!ReadSysctl("kern.timecounter.invariant_tsc", &v)) {
    return Fail(info, "sysctl(kern.timecounter.invariant_tsc)", errno ? errno : EINVAL);
  }
  return Napi::Number::New(info.Env(), v);
}

// osReleaseDate(): sysctl kern.osreldate (e.g. 1402000 for 14.2): which VM_RUN the kernel takes.
static Napi::Value OsReleaseDate(const Napi::CallbackInfo& info) {
  int v = 0;
  if (!ReadSysctl("kern.osreldate", &v)) return Fail(info, "sysctl(kern.osreldate)", errno ? errno : EINVAL);
  return Napi::Number::New(info.Env(), v);
}

// nextVmSequence(): 0, 1, 2, … across every thread of the process, so each
// VM of a process gets its own name.
static std::atomic<uint32_t> g_vm_sequence{0};
static Napi::Value NextVmSequence(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), g_vm_sequence.fetch_add(1));
}

void RegisterVmm(Napi::Env env, Napi::Object exports) {
  exports.Set("vmmCreate", Napi::Function::New(env, CreateOrDestroy<true>));
  exports.Set("vmmDestroy", Napi::Function::New(env, CreateOrDestroy<false>));
  exports.Set("vmmOpen", Napi::Function::New(env, Open));
  exports.Set("vmSetCapability", Napi::Function::New(env, SetCapability));
  exports.Set("vmAllocMemseg", Napi::Function::New(env, AllocMemseg));
  exports.Set("vmMmapMemseg", Napi::Function::New(env, MmapMemseg));
  exports.Set("vmMapGuest", Napi::Function::New(env, MapGuest));
  exports.Set("vmProtect", Napi::Function::New(env, Protect));
  exports.Set("vmSetRegister", Napi::Function::New(env, SetRegister));
  exports.Set("vmGetRegister", Napi::Function::New(env, GetRegister));
  exports.Set("vmSetSegmentDescriptor", Napi::Function::New(env, SetSegmentDescriptor));
  exports.Set("vmActivateCpu", Napi::Function::New(env, ActivateCpu));
  exports.Set("tscFrequency", Napi::Function::New(env, TscFrequency));
  exports.Set("tscInvariant", Napi::Function::New(env, TscInvariant));
  exports.Set("osReleaseDate", Napi::Function::New(env, OsReleaseDate));
  exports.Set("nextVmSequence", Napi::Function::New(env, NextVmSequence));
  // The ioctl numbers the Capsicum limit names (§18 step 7), as compiled.
  Napi::Object ioctls = Napi::Object::New(env);
  ioctls.Set("VM_RUN_14", Napi::Number::New(env, static_cast<double>(fbsd::kVmRun14)));
  ioctls.Set("VM_RUN_13", Napi::Number::New(env, static_cast<double>(fbsd::kVmRun13)));
  ioctls.Set("VM_SET_CAPABILITY", Napi::Number::New(env, static_cast<double>(fbsd::kVmSetCapability)));
  ioctls.Set("VM_ALLOC_MEMSEG", Napi::Number::New(env, static_cast<double>(fbsd::kVmAllocMemseg)));
  ioctls.Set("VM_MMAP_MEMSEG", Napi::Number::New(env, static_cast<double>(fbsd::kVmMmapMemseg)));
  ioctls.Set("VM_SET_SEGMENT_DESCRIPTOR", Napi::Number::New(env, static_cast<double>(fbsd::kVmSetSegmentDescriptor)));
  ioctls.Set("VM_SET_REGISTER", Napi::Number::New(env, static_cast<double>(fbsd::kVmSetRegister)));
  ioctls.Set("VM_GET_REGISTER", Napi::Number::New(env, static_cast<double>(fbsd::kVmGetRegister)));
  ioctls.Set("VM_ACTIVATE_CPU", Napi::Number::New(env, static_cast<double>(fbsd::kVmActivateCpu)));
  exports.Set("vmmIoctls", ioctls);
}

}  // namespace ukvm
