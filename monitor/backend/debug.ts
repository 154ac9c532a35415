// What a debugger module (gdb stub, dumpcore) may do with a vCPU, described
// neutrally: registers as plain x86_64 values, never a hypervisor's struct
// layout. Each backend implements it (KVM: backend/kvm/debug.ts). Reached by
// modules through SetupContext.debug; only the thread running the vCPU may
// call these, between exits, except interrupt(), which works from anywhere.
import type { FpuState, GeneralRegisterFile, SpecialRegisterFile } from '../arch/x86_64-registers.js';

/** A hardware breakpoint or watchpoint (x86 debug registers DR0–DR3). */
export interface HardwareBreakpoint {
  /** Guest (virtual = physical) address. */
  address: bigint;
  /** 'exec': instruction breakpoint (length 1); 'write' / 'access': data watchpoint. */
  kind: 'exec' | 'write' | 'access';
  /** Bytes watched: 1, 2, 4 or 8, and the address aligned to it. */
  length: 1 | 2 | 4 | 8;
}

/** Guest debugging as the hypervisor should set it up for the next runs. */
export interface DebugConfig {
  /** Exit after every guest instruction. */
  singleStep: boolean;
  /** An int3 in the guest exits to the monitor instead of reaching the guest's IDT. */
  softwareBreakpoints: boolean;
  /** At most four. */
  hardware: readonly HardwareBreakpoint[];
}

export interface DebugVcpu {
  /**
   * Set when only getRegisters/getSpecialRegisters work (FreeBSD vmm: what
   * dumpcore needs); a debugger (gdb) then reports itself unsupported.
   */
  readonly registersOnly?: boolean;
  getRegisters(): GeneralRegisterFile;
  setRegisters(regs: GeneralRegisterFile): void;
  getSpecialRegisters(): SpecialRegisterFile;
  setSpecialRegisters(sregs: SpecialRegisterFile): void;
  /** The x87/SSE state (read only: what gdb shows). */
  getFpu(): FpuState;
  /** Applies a debug configuration; { singleStep: false, softwareBreakpoints: false, hardware: [] } turns debugging off. */
  setDebug(config: DebugConfig): void;
  /**
   * From any thread: makes the running vCPU leave the guest once (a
   * debugger's Ctrl-C); its run() then returns { kind: 'debug', reason:
   * 'interrupt' } and the guest goes on when run again. False if the vCPU is gone.
   */
  interrupt(): boolean;
}
