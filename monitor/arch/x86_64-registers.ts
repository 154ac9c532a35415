// The x86_64 register file as debuggers see it, described once and neutrally
// (values, not a hypervisor's struct layout): backends convert to and from
// their own formats (KVM: backend/kvm/debug.ts). To be completed by the
// debug-primitives work; the names are gdb's.
import type { SpecialRegisters } from './x86_64.js';

/** General registers in gdb's amd64 order. */
export const GPR_NAMES = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
  'rip', 'rflags',
] as const;
export type GprName = (typeof GPR_NAMES)[number];
export type GeneralRegisterFile = Record<GprName, bigint>;

/** Segment and control registers (selectors, bases, CRs, EFER). */
export interface SpecialRegisterFile extends SpecialRegisters {
  cr2: bigint;
  cr8: bigint;
  apicBase: bigint;
}

/** x87 and SSE state. */
export interface FpuState {
  /** ST0–ST7, 10 bytes each (80-bit extended precision, little endian). */
  st: Uint8Array[];
  fcw: number;
  fsw: number;
  /** Abridged tag word as the hardware stores it (one bit per register). */
  ftw: number;
  fop: number;
  fip: bigint;
  fdp: bigint;
  /** XMM0–XMM15, 16 bytes each. */
  xmm: Uint8Array[];
  mxcsr: number;
}
