// A host program for npm run check:freebsd (scripts/check-freebsd.mjs): prints
// as JSON the numbers fbsd_sys.h pins (vm_exit offsets, register numbers,
// exit codes, ioctl numbers), so the check can compare them with the ones
// the TypeScript backend reads (native/binding/vmm.ts). Never part of the addon.
#include "fbsd_sys.h"

#include <cstdio>

using namespace ukvm::fbsd;

int main() {
  std::printf("{\"exit\":{\"exitcode\":%zu,\"instLength\":%zu,\"rip\":%zu,\"inoutBits\":%zu,\"inoutPort\":%zu,"
              "\"inoutEax\":%zu,\"vmxStatus\":%zu,\"vmxExitReason\":%zu,\"vmxQualification\":%zu,"
              "\"vmxInstType\":%zu,\"vmxInstError\":%zu,\"size\":%zu},",
              offsetof(VmExit, exitcode), offsetof(VmExit, inst_length), offsetof(VmExit, rip),
              offsetof(VmExit, u.inout.bits), offsetof(VmExit, u.inout.port), offsetof(VmExit, u.inout.eax),
              offsetof(VmExit, u.vmx.status), offsetof(VmExit, u.vmx.exit_reason),
              offsetof(VmExit, u.vmx.exit_qualification), offsetof(VmExit, u.vmx.inst_type),
              offsetof(VmExit, u.vmx.inst_error), sizeof(VmExit));
  std::printf("\"reg\":{\"rax\":%d,\"rbx\":%d,\"rcx\":%d,\"rdx\":%d,\"rsi\":%d,\"rdi\":%d,\"rbp\":%d,\"r8\":%d,"
              "\"r9\":%d,\"r10\":%d,\"r11\":%d,\"r12\":%d,\"r13\":%d,\"r14\":%d,\"r15\":%d,"
              "\"cr0\":%d,\"cr3\":%d,\"cr4\":%d,\"rsp\":%d,\"rip\":%d,\"rflags\":%d,\"es\":%d,\"cs\":%d,"
              "\"ss\":%d,\"ds\":%d,\"fs\":%d,\"gs\":%d,\"ldtr\":%d,\"tr\":%d,\"idtr\":%d,\"gdtr\":%d,\"efer\":%d,"
              "\"cr2\":%d,\"fsBase\":%d,\"gsBase\":%d},",
              kRegRax, kRegRbx, kRegRcx, kRegRdx, kRegRsi, kRegRdi, kRegRbp, kRegR8, kRegR9, kRegR10, kRegR11,
              kRegR12, kRegR13, kRegR14, kRegR15, kRegCr0, kRegCr3, kRegCr4, kRegRsp, kRegRip, kRegRflags,
              kRegEs, kRegCs, kRegSs, kRegDs, kRegFs, kRegGs, kRegLdtr, kRegTr, kRegIdtr, kRegGdtr, kRegEfer, kRegCr2, kRegFsBase, kRegGsBase);
  std::printf("\"exitcode\":{\"inout\":%u,\"vmx\":%u,\"bogus\":%u,\"hlt\":%u},", kExitInout, kExitVmx, kExitBogus,
              kExitHlt);
  std::printf("\"ioctls\":{\"VM_RUN_14\":%lu,\"VM_RUN_13\":%lu,\"VM_SET_CAPABILITY\":%lu,\"VM_ALLOC_MEMSEG\":%lu,"
              "\"VM_MMAP_MEMSEG\":%lu,\"VM_SET_SEGMENT_DESCRIPTOR\":%lu,\"VM_SET_REGISTER\":%lu,"
              "\"VM_GET_REGISTER\":%lu,\"VM_ACTIVATE_CPU\":%lu}}\n",
              kVmRun14, kVmRun13, kVmSetCapability, kVmAllocMemseg, kVmMmapMemseg, kVmSetSegmentDescriptor,
              kVmSetRegister, kVmGetRegister, kVmActivateCpu);
  return 0;
}
