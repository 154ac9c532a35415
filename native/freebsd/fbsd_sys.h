// The FreeBSD interfaces the vmm backend and the FreeBSD host services use,
// declared once, in this project's own words, with every size, offset and
// number they rely on pinned by static_assert.
//
// Two ways to compile:
//   - on FreeBSD (the real build): the system headers provide the C library
//     functions and types; the pins below then check that those headers
//     agree with the values this code was written against, so a FreeBSD
//     whose ABI moved fails to build instead of misbehaving;
//   - with UKVM_FREEBSD_DECLS (npm run check:freebsd, on Linux): no FreeBSD
//     header exists, so the FreeBSD-only functions and structures are
//     declared here; the same pins check these declarations.
//
// vmm(4)'s own structures (vm_run, vm_exit, vm_register, …) are always ours
// (namespace ukvm::fbsd): the ioctl numbers encode their sizes, so they must
// match the kernel's byte for byte, which the pins state. Sources of the
// values, read for this project (facts only):
//   sys/amd64/include/vmm.h, vmm_dev.h       FreeBSD 13.x and 14.x (stable/14,
//                                            2023–2025; vm_run changed in 14:
//                                            a pointer to a caller-owned
//                                            vm_exit, Solo5 issue #564)
//   sys/amd64/vmm/vmm_dev_machdep.c          14.x: VM_RUN_13 = 144-byte struct
//   sys/sys/ioccom.h, sys/sys/capsicum.h (CAP_READ, CAP_WRITE, CAP_EVENT,
//   CAP_IOCTL = CAPRIGHT(idx, bit)), sys/sys/caprights.h,
//   sys/sys/event.h (FreeBSD ≥ 12 kevent), sys/net/if.h, sys/net/if_tap.h
//   (TAPGIFNAME = _IOR('t', 93, struct ifreq)), sys/sys/sockio.h
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(UKVM_FREEBSD_DECLS)
#include <ctime>
#include <sys/types.h>

extern "C" {
// <sys/sysctl.h>
int sysctlbyname(const char* name, void* oldp, size_t* oldlenp, const void* newp, size_t newlen);

// <sys/event.h> (FreeBSD 12 and later)
struct kevent {
  uintptr_t ident;
  short filter;
  unsigned short flags;
  unsigned int fflags;
  int64_t data;
  void* udata;
  uint64_t ext[4];
};
int kqueue(void);
int kevent(int kq, const struct kevent* changelist, int nchanges, struct kevent* eventlist, int nevents,
           const struct timespec* timeout);

// <sys/caprights.h>, <sys/capsicum.h>
struct cap_rights {
  uint64_t cr_rights[2];  // CAP_RIGHTS_VERSION 0: two words
};
typedef struct cap_rights cap_rights_t;
typedef unsigned long cap_ioctl_t;
cap_rights_t* __cap_rights_init(int version, cap_rights_t* rights, ...);
int cap_rights_limit(int fd, const cap_rights_t* rights);
int cap_ioctls_limit(int fd, const cap_ioctl_t* cmds, size_t ncmds);
int cap_enter(void);

// <net/if.h>: FreeBSD's struct ifreq (32 bytes on amd64).
struct ifreq {
  char ifr_name[16];
  union {
    unsigned char ifru_addr[16];  // struct sockaddr
    short ifru_flags[2];
    int ifru_mtu;
    void* ifru_data;
    struct {
      size_t length;
      void* buffer;
    } ifru_buffer;
  } ifr_ifru;
};
}  // extern "C"
#define UKVM_CAP_RIGHTS_VERSION 0
#else
#include <sys/param.h>
#include <sys/types.h>
#include <sys/capsicum.h>
#include <sys/cpuset.h>
#include <sys/disk.h>
#include <sys/event.h>
#include <sys/ioccom.h>
#include <sys/socket.h>
#include <sys/sockio.h>
#include <sys/sysctl.h>
#include <net/if.h>
#include <net/if_tap.h>
#include <machine/vmm.h>
#include <machine/vmm_dev.h>
#define UKVM_CAP_RIGHTS_VERSION CAP_RIGHTS_VERSION
#endif

namespace ukvm {
namespace fbsd {

// sys/ioccom.h: the encoding of an ioctl number (parameter length in bits 16..28).
constexpr unsigned long kIocOut = 0x40000000UL;   // IOC_OUT: copy out
constexpr unsigned long kIocIn = 0x80000000UL;    // IOC_IN: copy in
constexpr unsigned long kIocParmMask = 0x1fffUL;  // IOCPARM_MASK
constexpr unsigned long Ioc(unsigned long inout, char group, unsigned num, size_t len) {
  return inout | ((static_cast<unsigned long>(len) & kIocParmMask) << 16) |
         (static_cast<unsigned long>(static_cast<unsigned char>(group)) << 8) | num;
}
constexpr unsigned long IocW(char g, unsigned n, size_t len) { return Ioc(kIocIn, g, n, len); }
constexpr unsigned long IocR(char g, unsigned n, size_t len) { return Ioc(kIocOut, g, n, len); }
constexpr unsigned long IocWR(char g, unsigned n, size_t len) { return Ioc(kIocIn | kIocOut, g, n, len); }

// ---- vmm(4): machine/vmm.h --------------------------------------------------

// enum vm_reg_name (values unchanged from FreeBSD 12 to 15).
enum Reg : int {
  kRegRax = 0, kRegRbx = 1, kRegRcx = 2, kRegRdx = 3, kRegRsi = 4, kRegRdi = 5, kRegRbp = 6,
  kRegR8 = 7, kRegR9 = 8, kRegR10 = 9, kRegR11 = 10, kRegR12 = 11, kRegR13 = 12, kRegR14 = 13, kRegR15 = 14, kRegCr0 = 15, kRegCr3 = 16, kRegCr4 = 17, kRegDr7 = 18,
  kRegRsp = 19, kRegRip = 20, kRegRflags = 21,
  kRegEs = 22, kRegCs = 23, kRegSs = 24, kRegDs = 25, kRegFs = 26, kRegGs = 27,
  kRegLdtr = 28, kRegTr = 29, kRegIdtr = 30, kRegGdtr = 31, kRegEfer = 32, kRegCr2 = 33,
  kRegFsBase = 45, kRegGsBase = 46,  // FreeBSD ≥ 13 (VM_REG_GUEST_FS_BASE / GS_BASE)
  kRegLast14 = 49,                   // VM_REG_LAST on 14: the exclusive upper bound TS may ask for
};

constexpr int kCapHaltExit = 0;  // enum vm_cap_type: VM_CAP_HALT_EXIT

// enum vm_exitcode (the ones the backend names).
constexpr uint32_t kExitInout = 0;  // VM_EXITCODE_INOUT
constexpr uint32_t kExitVmx = 1;    // VM_EXITCODE_VMX
constexpr uint32_t kExitBogus = 2;  // VM_EXITCODE_BOGUS
constexpr uint32_t kExitHlt = 5;    // VM_EXITCODE_HLT

// struct vm_exit: the head, then a 120-byte union of which the backend reads
// two members: inout (a u16 of bit fields: bytes 0..2, in 3, string 4, rep 5;
// then port and eax) and vmx (status, exit_reason, qualification, inst_type,
// inst_error). 136 bytes on FreeBSD 13 and 14.
struct VmExit {
  uint32_t exitcode;
  int32_t inst_length;
  uint64_t rip;
  union {
    struct {
      uint16_t bits;
      uint16_t port;
      uint32_t eax;
    } inout;
    struct {
      int32_t status;
      uint32_t exit_reason;
      uint64_t exit_qualification;
      int32_t inst_type;
      int32_t inst_error;
    } vmx;
    uint64_t raw[15];
  } u;
};
static_assert(sizeof(VmExit) == 136, "vm_exit: 136 bytes (vmm.h, 13 and 14)");
static_assert(offsetof(VmExit, exitcode) == 0 && offsetof(VmExit, inst_length) == 4 && offsetof(VmExit, rip) == 8,
              "vm_exit head");
static_assert(offsetof(VmExit, u.inout.bits) == 16 && offsetof(VmExit, u.inout.port) == 18 &&
                  offsetof(VmExit, u.inout.eax) == 20,
              "vm_exit.u.inout");
static_assert(offsetof(VmExit, u.vmx.status) == 16 && offsetof(VmExit, u.vmx.exit_reason) == 20 &&
                  offsetof(VmExit, u.vmx.exit_qualification) == 24 && offsetof(VmExit, u.vmx.inst_type) == 32 &&
                  offsetof(VmExit, u.vmx.inst_error) == 36,
              "vm_exit.u.vmx");

// struct seg_desc: the 'access' word is VMX's access-rights format (Intel SDM
// vol. 3, table 24-2) plus bit 16, "unusable".
struct SegDesc {
  uint64_t base;
  uint32_t limit;
  uint32_t access;
};
static_assert(sizeof(SegDesc) == 16, "seg_desc");

// ---- vmm(4): machine/vmm_dev.h ----------------------------------------------

struct VmCapability {  // struct vm_capability
  int32_t cpuid;
  int32_t captype;
  int32_t capval;
  int32_t allcpus;
};
static_assert(sizeof(VmCapability) == 16, "vm_capability");

struct VmMemseg {  // struct vm_memseg (13, 14): name[VM_MAX_SUFFIXLEN + 1], VM_MAX_SUFFIXLEN 15
  int32_t segid;
  size_t len;
  char name[16];
};
static_assert(sizeof(VmMemseg) == 32 && offsetof(VmMemseg, len) == 8 && offsetof(VmMemseg, name) == 16, "vm_memseg");

struct VmMemmap {  // struct vm_memmap
  uint64_t gpa;
  int32_t segid;
  int64_t segoff;  // vm_ooffset_t
  size_t len;
  int32_t prot;
  int32_t flags;
};
static_assert(sizeof(VmMemmap) == 40 && offsetof(VmMemmap, segoff) == 16 && offsetof(VmMemmap, len) == 24 &&
                  offsetof(VmMemmap, prot) == 32 && offsetof(VmMemmap, flags) == 36,
              "vm_memmap");

struct VmRegister {  // struct vm_register
  int32_t cpuid;
  int32_t regnum;
  uint64_t regval;
};
static_assert(sizeof(VmRegister) == 16 && offsetof(VmRegister, regval) == 8, "vm_register");

struct VmSegDesc {  // struct vm_seg_desc
  int32_t cpuid;
  int32_t regnum;
  SegDesc desc;
};
static_assert(sizeof(VmSegDesc) == 24 && offsetof(VmSegDesc, desc) == 8, "vm_seg_desc");

struct VmActivateCpu {  // struct vm_activate_cpu
  int32_t vcpuid;
};
static_assert(sizeof(VmActivateCpu) == 4, "vm_activate_cpu");

// FreeBSD 14 and later: the caller owns the exit structure (and a cpuset the
// kernel fills only for IPI exits, which one vCPU never takes).
struct VmRun14 {
  int32_t cpuid;
  void* cpuset;
  size_t cpusetsize;
  VmExit* vm_exit;
};
static_assert(sizeof(VmRun14) == 32 && offsetof(VmRun14, cpuset) == 8 && offsetof(VmRun14, cpusetsize) == 16 &&
                  offsetof(VmRun14, vm_exit) == 24,
              "vm_run (14)");

// FreeBSD 13 (and 14's COMPAT_FREEBSD13 VM_RUN_13): the exit is inside.
struct VmRun13 {
  int32_t cpuid;
  VmExit vm_exit;
};
static_assert(sizeof(VmRun13) == 144 && offsetof(VmRun13, vm_exit) == 8, "vm_run (13)");

// The ioctl numbers: 'v', IOCNUM_* of vmm_dev.h, sized by the structures above.
constexpr unsigned long kVmRun14 = IocWR('v', 1, sizeof(VmRun14));
constexpr unsigned long kVmRun13 = IocWR('v', 1, sizeof(VmRun13));
constexpr unsigned long kVmSetCapability = IocW('v', 2, sizeof(VmCapability));
constexpr unsigned long kVmAllocMemseg = IocW('v', 14, sizeof(VmMemseg));
constexpr unsigned long kVmMmapMemseg = IocW('v', 16, sizeof(VmMemmap));
constexpr unsigned long kVmSetRegister = IocW('v', 20, sizeof(VmRegister));
constexpr unsigned long kVmGetRegister = IocWR('v', 21, sizeof(VmRegister));
constexpr unsigned long kVmSetSegmentDescriptor = IocW('v', 22, sizeof(VmSegDesc));
constexpr unsigned long kVmActivateCpu = IocW('v', 90, sizeof(VmActivateCpu));
// Written out once more as numbers, so a change of the encoding above shows.
static_assert(kVmRun14 == 0xC0207601UL && kVmRun13 == 0xC0907601UL, "VM_RUN");
static_assert(kVmSetCapability == 0x80107602UL && kVmAllocMemseg == 0x8020760EUL && kVmMmapMemseg == 0x80287610UL,
              "VM_SET_CAPABILITY, VM_ALLOC_MEMSEG, VM_MMAP_MEMSEG");
static_assert(kVmSetRegister == 0x80107614UL && kVmGetRegister == 0xC0107615UL &&
                  kVmSetSegmentDescriptor == 0x80187616UL && kVmActivateCpu == 0x8004765AUL,
              "register and activation ioctls");

// ---- sockets and taps: net/if.h, sys/sockio.h, net/if_tap.h ----------------

constexpr size_t kIfNameSize = 16;  // IFNAMSIZ
static_assert(sizeof(struct ifreq) == 32, "struct ifreq (amd64)");
static_assert(offsetof(struct ifreq, ifr_ifru) == 16, "ifreq union");
constexpr unsigned long kSiocGifFlags = IocWR('i', 17, sizeof(struct ifreq));
constexpr unsigned long kSiocGifMtu = IocWR('i', 51, sizeof(struct ifreq));
constexpr unsigned long kTapGifName = IocR('t', 93, sizeof(struct ifreq));
static_assert(kSiocGifFlags == 0xC0206911UL && kSiocGifMtu == 0xC0206933UL && kTapGifName == 0x4020745DUL,
              "SIOCGIFFLAGS, SIOCGIFMTU, TAPGIFNAME");
constexpr int kIffUp = 0x1;        // IFF_UP
constexpr int kIffRunning = 0x40;  // IFF_DRV_RUNNING

// ---- disks: sys/disk.h -------------------------------------------------------

// A disk device's size: lseek(SEEK_END) says 0 for FreeBSD's character disks.
constexpr unsigned long kDiocGMediaSize = IocR('d', 129, sizeof(int64_t));  // DIOCGMEDIASIZE, off_t
static_assert(kDiocGMediaSize == 0x40086481UL, "DIOCGMEDIASIZE");

// ---- kqueue: sys/event.h ----------------------------------------------------

static_assert(sizeof(struct kevent) == 64, "struct kevent (FreeBSD >= 12)");
static_assert(offsetof(struct kevent, filter) == 8 && offsetof(struct kevent, flags) == 10 &&
                  offsetof(struct kevent, fflags) == 12 && offsetof(struct kevent, data) == 16 &&
                  offsetof(struct kevent, udata) == 24 && offsetof(struct kevent, ext) == 32,
              "struct kevent fields");
constexpr short kEvfiltRead = -1;         // EVFILT_READ
constexpr unsigned short kEvAdd = 0x1;    // EV_ADD
constexpr unsigned short kEvError = 0x4000;  // EV_ERROR (data holds the errno)
constexpr unsigned short kEvReceipt = 0x40;  // EV_RECEIPT (report each change)

// ---- Capsicum: sys/capsicum.h -----------------------------------------------

constexpr uint64_t CapRight(int idx, uint64_t bit) { return (1ULL << (57 + idx)) | bit; }
constexpr uint64_t kCapIoctl = CapRight(1, 0x80);  // CAP_IOCTL
static_assert(kCapIoctl == 0x0400000000000080ULL, "CAP_IOCTL");
// The net ring's kick pipe (§18): its read end is read (and may be polled),
// its write end only written.
constexpr uint64_t kCapRead = CapRight(0, 0x1);    // CAP_READ
constexpr uint64_t kCapWrite = CapRight(0, 0x2);   // CAP_WRITE
constexpr uint64_t kCapEvent = CapRight(1, 0x20);  // CAP_EVENT: select(2), poll(2)
static_assert(kCapRead == 0x0200000000000001ULL && kCapWrite == 0x0200000000000002ULL &&
                  kCapEvent == 0x0400000000000020ULL,
              "CAP_READ, CAP_WRITE, CAP_EVENT");
static_assert(sizeof(cap_rights_t) == 16, "cap_rights_t, version 0");

#if !defined(UKVM_FREEBSD_DECLS)
// On FreeBSD: the system's headers must agree with every value above.
static_assert(sizeof(struct vm_capability) == sizeof(VmCapability) && sizeof(struct vm_memmap) == sizeof(VmMemmap) &&
                  sizeof(struct vm_register) == sizeof(VmRegister) && sizeof(struct vm_seg_desc) == sizeof(VmSegDesc) &&
                  sizeof(struct vm_activate_cpu) == sizeof(VmActivateCpu) && sizeof(struct vm_exit) == sizeof(VmExit),
              "vmm_dev.h structures differ from native/freebsd/fbsd_sys.h");
static_assert(VM_SET_CAPABILITY == kVmSetCapability && VM_ALLOC_MEMSEG == kVmAllocMemseg &&
                  VM_MMAP_MEMSEG == kVmMmapMemseg && VM_SET_REGISTER == kVmSetRegister &&
                  VM_GET_REGISTER == kVmGetRegister && VM_SET_SEGMENT_DESCRIPTOR == kVmSetSegmentDescriptor &&
                  VM_ACTIVATE_CPU == kVmActivateCpu,
              "vmm_dev.h ioctl numbers differ");
#if __FreeBSD_version >= 1400000
static_assert(VM_RUN == kVmRun14 && sizeof(struct vm_run) == sizeof(VmRun14), "FreeBSD 14 VM_RUN");
#else
static_assert(VM_RUN == kVmRun13 && sizeof(struct vm_run) == sizeof(VmRun13), "FreeBSD 13 VM_RUN");
#endif
static_assert(offsetof(struct vm_exit, u.inout) == 16 && offsetof(struct vm_exit, u.vmx.exit_qualification) == 24 &&
                  offsetof(struct vm_exit, u.vmx.inst_error) == 36,
              "vm_exit union members");
static_assert(VM_REG_GUEST_CR0 == kRegCr0 && VM_REG_GUEST_RIP == kRegRip && VM_REG_GUEST_CS == kRegCs &&
                  VM_REG_GUEST_GDTR == kRegGdtr && VM_REG_GUEST_EFER == kRegEfer && VM_REG_GUEST_TR == kRegTr &&
                  VM_REG_GUEST_LDTR == kRegLdtr && VM_REG_GUEST_FS_BASE == kRegFsBase,
              "enum vm_reg_name");
static_assert(VM_CAP_HALT_EXIT == kCapHaltExit && VM_EXITCODE_INOUT == kExitInout && VM_EXITCODE_VMX == kExitVmx &&
                  VM_EXITCODE_BOGUS == kExitBogus && VM_EXITCODE_HLT == kExitHlt,
              "vmm.h enums");
static_assert(sizeof(((struct vm_memseg*)nullptr)->name) == sizeof(VmMemseg::name), "vm_memseg.name");
static_assert(SIOCGIFMTU == kSiocGifMtu && SIOCGIFFLAGS == kSiocGifFlags && TAPGIFNAME == kTapGifName &&
                  IFNAMSIZ == kIfNameSize && IFF_UP == kIffUp && IFF_DRV_RUNNING == kIffRunning,
              "socket and tap ioctls");
static_assert(EVFILT_READ == kEvfiltRead && EV_ADD == kEvAdd && EV_ERROR == kEvError && EV_RECEIPT == kEvReceipt,
              "sys/event.h");
static_assert(CAP_IOCTL == kCapIoctl && CAP_READ == kCapRead && CAP_WRITE == kCapWrite && CAP_EVENT == kCapEvent,
              "sys/capsicum.h");
static_assert(DIOCGMEDIASIZE == kDiocGMediaSize, "sys/disk.h");
#endif

// The descriptor rights of a limited VM descriptor: ioctl only (guest RAM is
// already mapped when the sandbox is entered).
inline void IoctlOnlyRights(cap_rights_t* r) { __cap_rights_init(UKVM_CAP_RIGHTS_VERSION, r, kCapIoctl, 0ULL); }

// The rights of the ring kick pipe's ends: the consumer thread's read end
// may be read and polled, the vCPU loop's write end only written.
inline void KickReadRights(cap_rights_t* r) {
  __cap_rights_init(UKVM_CAP_RIGHTS_VERSION, r, kCapRead, kCapEvent, 0ULL);
}
inline void KickWriteRights(cap_rights_t* r) { __cap_rights_init(UKVM_CAP_RIGHTS_VERSION, r, kCapWrite, 0ULL); }

}  // namespace fbsd
}  // namespace ukvm
