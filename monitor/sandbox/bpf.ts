// Classic BPF for seccomp: the few instructions a filter needs, their
// encoding (struct sock_filter, 8 bytes: u16 code, u8 jt, u8 jf, u32 k, little
// endian on x86_64), and an evaluator with the kernel's rules (forward jumps
// only, every path ends in a return), used by the tests and by
// scripts/syscalls.mjs to run the monitor's real program against calls seen
// by strace. The policy is in policy.ts; filter.ts turns it into a program.

/** struct seccomp_data: what a filter reads (offsets in bytes). */
export const SECCOMP_DATA = {
  nr: 0,
  arch: 4,
  /** The low 32 bits of argument i are at argLow(i), the high ones 4 bytes on. */
  args: 16,
  size: 64,
} as const;

export const argLow = (i: number) => SECCOMP_DATA.args + 8 * i;

/** Return values (linux/seccomp.h); the low 16 bits of ERRNO carry the errno. */
export const RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0x00000000,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;

/** Instruction codes (linux/bpf_common.h), the only ones this filter uses. */
export const OP = {
  /** A = 32-bit word at offset k of seccomp_data */
  LD_ABS: 0x20,
  /** A &= k */
  AND: 0x54,
  /** pc += k */
  JA: 0x05,
  /** pc += (A == k) ? jt : jf */
  JEQ: 0x15,
  /** pc += (A >= k) ? jt : jf */
  JGE: 0x35,
  /** pc += (A & k) ? jt : jf */
  JSET: 0x45,
  /** return k */
  RET: 0x06,
} as const;

export interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export const BPF_MAXINSNS = 4096;

export function encode(program: readonly Insn[]): Uint8Array {
  const out = new Uint8Array(program.length * 8);
  const dv = new DataView(out.buffer);
  program.forEach((p, i) => {
    dv.setUint16(8 * i, p.code, true);
    dv.setUint8(8 * i + 2, p.jt);
    dv.setUint8(8 * i + 3, p.jf);
    dv.setUint32(8 * i + 4, p.k >>> 0, true);
  });
  return out;
}

export function decode(bytes: Uint8Array): Insn[] {
  if (bytes.length % 8 !== 0) throw new RangeError('a BPF program is a whole number of 8-byte instructions');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from({ length: bytes.length / 8 }, (_, i) => ({
    code: dv.getUint16(8 * i, true),
    jt: dv.getUint8(8 * i + 2),
    jf: dv.getUint8(8 * i + 3),
    k: dv.getUint32(8 * i + 4, true),
  }));
}

/**
 * A label-resolving assembler: jumps name a label placed later (BPF jumps
 * only forward), and an offset that does not fit a byte is an error here,
 * not a wrong program.
 */
export class Assembler {
  private readonly insns: { code: number; k: number; jt: string | number; jf: string | number }[] = [];
  private readonly labels = new Map<string, number>();

  get length(): number {
    return this.insns.length;
  }

  ld(offset: number): this {
    return this.emit(OP.LD_ABS, offset);
  }

  and(mask: number): this {
    return this.emit(OP.AND, mask);
  }

  ret(value: number): this {
    return this.emit(OP.RET, value);
  }

  /** if (A op k) goto jt else goto jf; a target is a label or a count of instructions to skip (0 = next). */
  jump(op: 'jeq' | 'jge' | 'jset', k: number, jt: string | number, jf: string | number): this {
    const code = op === 'jeq' ? OP.JEQ : op === 'jge' ? OP.JGE : OP.JSET;
    this.insns.push({ code, k: k >>> 0, jt, jf });
    return this;
  }

  /** An instruction whose jump offsets are already resolved (a block assembled on its own). */
  raw(p: Insn): this {
    this.insns.push({ code: p.code, k: p.k, jt: p.jt, jf: p.jf });
    return this;
  }

  label(name: string): this {
    if (this.labels.has(name)) throw new Error(`BPF label ${name} placed twice`);
    this.labels.set(name, this.insns.length);
    return this;
  }

  assemble(): Insn[] {
    return this.insns.map((p, pc) => ({ code: p.code, k: p.k, jt: this.offset(p.jt, pc), jf: this.offset(p.jf, pc) }));
  }

  private emit(code: number, k: number): this {
    this.insns.push({ code, k: k >>> 0, jt: 0, jf: 0 });
    return this;
  }

  private offset(target: string | number, pc: number): number {
    const off = typeof target === 'number' ? target : (this.labels.get(target) ?? Number.NaN) - pc - 1;
    if (!Number.isInteger(off)) throw new Error(`BPF label ${String(target)} is not placed`);
    if (off < 0 || off > 255) throw new Error(`BPF jump from ${pc} to ${String(target)} is ${off} instructions (0..255 only)`);
    return off;
  }
}

/** What a filter sees of one system call: number, audit arch, six 64-bit arguments. */
export interface SyscallData {
  nr: number;
  arch: number;
  args?: readonly bigint[];
}

/**
 * Runs a program on one call as the kernel would; returns the filter's
 * 32-bit result. Throws for anything the kernel's checker would refuse (a
 * jump out of the program, an unknown instruction, no return at the end).
 */
export function evaluate(program: readonly Insn[], call: SyscallData): number {
  if (program.length === 0 || program.length > BPF_MAXINSNS) throw new Error('program length out of range');
  const data = new DataView(new ArrayBuffer(SECCOMP_DATA.size));
  data.setInt32(SECCOMP_DATA.nr, call.nr, true);
  data.setUint32(SECCOMP_DATA.arch, call.arch, true);
  (call.args ?? []).forEach((a, i) => data.setBigUint64(SECCOMP_DATA.args + 8 * i, BigInt.asUintN(64, a), true));
  let acc = 0;
  for (let pc = 0; pc < program.length; pc++) {
    const p = program[pc] as Insn;
    switch (p.code) {
      case OP.LD_ABS:
        if (p.k % 4 !== 0 || p.k + 4 > SECCOMP_DATA.size) throw new Error(`load outside seccomp_data at ${pc}`);
        acc = data.getUint32(p.k, true);
        break;
      case OP.AND:
        acc = (acc & p.k) >>> 0;
        break;
      case OP.JA:
        pc += p.k;
        break;
      case OP.JEQ:
        pc += acc === p.k ? p.jt : p.jf;
        break;
      case OP.JGE:
        pc += acc >= p.k ? p.jt : p.jf;
        break;
      case OP.JSET:
        pc += (acc & p.k) !== 0 ? p.jt : p.jf;
        break;
      case OP.RET:
        return p.k >>> 0;
      default:
        throw new Error(`instruction 0x${p.code.toString(16)} at ${pc} is not one a seccomp filter here uses`);
    }
    if (pc + 1 > program.length) throw new Error(`jump past the end at ${pc}`);
  }
  throw new Error('the program ends without a return');
}
