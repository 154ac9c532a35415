// The registers a core file records (docs/abi.md §15.5): the vCPU's as the
// backend's debug primitives report them, segment registers as selectors,
// FS and GS bases from the segment caches. When the guest halted with a
// cookie (§10.8: it aborts because of a CPU exception and passes its trap
// frame), rip, cs, rflags, rsp and ss are those of the trap frame, so that
// a debugger shows the instruction that faulted, not the abort path.
import type { GeneralRegisterFile, SpecialRegisterFile } from '../../monitor/arch/x86_64-registers.js';
import type { PrstatusRegisters } from './elf-core.js';

/** The trap frame at the start of a HALT cookie (§10.8), 8-byte fields. */
export const TRAP_FRAME = { cr2: 0, errorCode: 8, rip: 16, cs: 24, rflags: 32, rsp: 40, ss: 48 } as const;
const TRAP_FRAME_SIZE = 56;

/** The register block for a core: from the vCPU, with the trap frame's five where a cookie came. */
export function coreRegisters(gpr: GeneralRegisterFile, sregs: SpecialRegisterFile, cookie: Uint8Array | null): PrstatusRegisters {
  const regs: PrstatusRegisters = {
    r15: gpr.r15, r14: gpr.r14, r13: gpr.r13, r12: gpr.r12, rbp: gpr.rbp, rbx: gpr.rbx,
    r11: gpr.r11, r10: gpr.r10, r9: gpr.r9, r8: gpr.r8, rax: gpr.rax, rcx: gpr.rcx,
    rdx: gpr.rdx, rsi: gpr.rsi, rdi: gpr.rdi,
    orig_rax: 0n,
    rip: gpr.rip,
    cs: BigInt(sregs.cs.selector),
    eflags: gpr.rflags,
    rsp: gpr.rsp,
    ss: BigInt(sregs.ss.selector),
    fs_base: BigInt(sregs.fs.base),
    gs_base: BigInt(sregs.gs.base),
    ds: BigInt(sregs.ds.selector),
    es: BigInt(sregs.es.selector),
    fs: BigInt(sregs.fs.selector),
    gs: BigInt(sregs.gs.selector),
  };
  if (cookie !== null && cookie.length >= TRAP_FRAME_SIZE) {
    const v = new DataView(cookie.buffer, cookie.byteOffset, TRAP_FRAME_SIZE);
    const at = (off: number) => v.getBigUint64(off, true);
    regs.rip = at(TRAP_FRAME.rip);
    regs.cs = at(TRAP_FRAME.cs);
    regs.eflags = at(TRAP_FRAME.rflags);
    regs.rsp = at(TRAP_FRAME.rsp);
    regs.ss = at(TRAP_FRAME.ss);
  }
  return regs;
}
