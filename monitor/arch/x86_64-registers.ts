// The x86_64 register file as debuggers see it, described once and neutrally
// (values, not a hypervisor's struct layout): backends convert to and from
// their own formats (KVM: backend/kvm/debug.ts). Also the architecture's own
// encodings a debugger needs: RFLAGS and DR6 bits, the DR7 encoding of
// hardware breakpoints, and the full x87 tag word. Pure functions only; the
// names are gdb's.
import type { SpecialRegisters } from './x86_64.js';

/** General registers in gdb's amd64 order. */
export const GPR_NAMES = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
  'rip', 'rflags',
] as const;
export type GprName = (typeof GPR_NAMES)[number];
export type GeneralRegisterFile = Record<GprName, bigint>;

/** The segment registers in gdb's order (cs, ss, ds, es, fs, gs), then tr and ldt. */
export const SEGMENT_NAMES = ['cs', 'ss', 'ds', 'es', 'fs', 'gs', 'tr', 'ldt'] as const;
export type SegmentName = (typeof SEGMENT_NAMES)[number];

/**
 * Segment and control registers (selectors, bases, CRs, EFER). Segment and
 * descriptor-table bases are numbers (as in SpecialRegisters): exact up to
 * 2^53, which covers every address of a guest of at most 4 GiB.
 */
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

/** RFLAGS bits a debugger touches. */
export const RFLAGS_TF = 0x100n; // trap flag: #DB after the next instruction
export const RFLAGS_RF = 0x10000n; // resume flag: no instruction breakpoint for one instruction

/** DR6 (debug status) bits. */
export const DR6_B0_B3 = 0xfn; // which of DR0–DR3 matched
export const DR6_BS = 1n << 14n; // single step

/** A debug-register breakpoint, as the hardware knows them. */
export interface DebugRegisterBreakpoint {
  address: bigint;
  /** 'exec': instruction; 'write': data write; 'access': data read or write. */
  kind: 'exec' | 'write' | 'access';
  /** 1, 2, 4 or 8 bytes (1 for 'exec'); the address is aligned to it. */
  length: 1 | 2 | 4 | 8;
}

const RW_CODE: Readonly<Record<string, bigint | undefined>> = { exec: 0n, write: 1n, access: 3n };
const LEN_CODE: Readonly<Record<number, bigint | undefined>> = { 1: 0n, 2: 1n, 4: 3n, 8: 2n };
const DR7_GE = 1n << 9n; // exact data breakpoints (ignored by modern CPUs, set as gdb stubs do)
const DR7_RESERVED_ONE = 1n << 10n;

/**
 * DR0–DR3 and DR7 for up to four breakpoints, slot n for the nth: global
 * enable bit 2n+1, R/W code at bit 16+4n (0 exec, 1 write, 3 access) and the
 * length code at 18+4n (1 → 0, 2 → 1, 4 → 3, 8 → 2); DR7 also gets bits 9
 * and 10. No breakpoints: all zero. Throws RangeError for more than four, a
 * length other than 1/2/4/8, an 'exec' longer than 1, an unaligned address
 * or one outside 64 bits.
 */
export function encodeDebugRegisters(bps: readonly DebugRegisterBreakpoint[]): { dr: [bigint, bigint, bigint, bigint]; dr7: bigint } {
  if (bps.length > 4) throw new RangeError(`at most 4 hardware breakpoints, got ${bps.length}`);
  const dr: [bigint, bigint, bigint, bigint] = [0n, 0n, 0n, 0n];
  let dr7 = 0n;
  bps.forEach((bp, n) => {
    const len = LEN_CODE[bp.length];
    if (len === undefined) throw new RangeError(`hardware breakpoint length must be 1, 2, 4 or 8, got ${String(bp.length)}`);
    if (bp.kind === 'exec' && bp.length !== 1) throw new RangeError('an execution breakpoint has length 1');
    const rw = RW_CODE[bp.kind];
    if (rw === undefined) throw new RangeError(`unknown hardware breakpoint kind ${String(bp.kind)}`);
    if (bp.address < 0n || bp.address >= 1n << 64n) throw new RangeError(`breakpoint address 0x${bp.address.toString(16)} is not a 64-bit address`);
    if (bp.address % BigInt(bp.length) !== 0n) {
      throw new RangeError(`breakpoint address 0x${bp.address.toString(16)} is not aligned to its length ${bp.length}`);
    }
    const i = BigInt(n);
    dr[n] = bp.address;
    dr7 |= (1n << (2n * i + 1n)) | (rw << (16n + 4n * i)) | (len << (18n + 4n * i));
  });
  if (dr7 !== 0n) dr7 |= DR7_GE | DR7_RESERVED_ONE;
  return { dr, dr7 };
}

/** Tag of one x87 register from its 80-bit value: 0 valid, 1 zero, 2 special (NaN, ∞, denormal, unnormal). */
function x87Tag(v: Uint8Array): number {
  const exponent = ((v[9] ?? 0) & 0x7f) * 256 + (v[8] ?? 0);
  const integerBit = ((v[7] ?? 0) & 0x80) !== 0;
  const mantissaZero = v.subarray(0, 8).every((b) => b === 0);
  if (exponent === 0x7fff) return 2;
  if (exponent === 0) return mantissaZero ? 1 : 2;
  return integerBit ? 0 : 2;
}

/**
 * The full (FSAVE-style) 16-bit tag word, two bits per physical register,
 * rebuilt from the abridged FXSAVE tag (one bit: empty or not) and the
 * register values: what gdb shows as ftag. st[] is in stack order (ST0 first,
 * as FXSAVE stores it); physical register i is ST((i − TOP) mod 8), TOP
 * being FSW bits 11–13. Empty registers are tag 3.
 */
export function fullTagWord(fpu: Pick<FpuState, 'st' | 'fsw' | 'ftw'>): number {
  const top = (fpu.fsw >> 11) & 7;
  let tag = 0;
  for (let phys = 0; phys < 8; phys++) {
    const t = (fpu.ftw >> phys) & 1 ? x87Tag(fpu.st[(phys - top + 8) % 8] ?? new Uint8Array(10)) : 3;
    tag |= t << (2 * phys);
  }
  return tag;
}
