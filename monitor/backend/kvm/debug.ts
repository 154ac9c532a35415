// The KVM side of DebugVcpu (backend/debug.ts): struct kvm_regs, kvm_sregs,
// kvm_fpu and kvm_guest_debug images converted to and from the neutral
// x86_64 register file (arch/x86_64-registers.ts), the decoder of
// KVM_EXIT_DEBUG, and interrupting a running vCPU from another thread. The
// ioctls are native/vcpu_debug_linux.cc (and getRegs/getSregs of
// vcpu_linux.cc); offsets are those of <linux/kvm.h>, pinned there with
// static_assert.
import {
  KVM_FPU_SIZE,
  KVM_GUEST_DEBUG_SIZE,
  KVM_REGS_SIZE,
  KVM_RUN_OFFSETS,
  KVM_SREGS_SIZE,
  type KvmBinding,
} from '../../../native/binding.js';
import type { Segment } from '../../arch/x86_64.js';
import {
  DR6_B0_B3,
  encodeDebugRegisters,
  GPR_NAMES,
  SEGMENT_NAMES,
  type FpuState,
  type GeneralRegisterFile,
  type GprName,
  type SpecialRegisterFile,
} from '../../arch/x86_64-registers.js';
import { HostError, withErrno } from '../../errors.js';
import type { VcpuExit } from '../backend.js';
import type { DebugConfig, DebugVcpu } from '../debug.js';
import { kvmSregs } from './x86.js';

/** struct kvm_regs: byte offset of each register (KVM's order differs from gdb's: rsp before rbp). */
const REG_OFFSET: Readonly<Record<GprName, number>> = {
  rax: 0, rbx: 8, rcx: 16, rdx: 24, rsi: 32, rdi: 40, rsp: 48, rbp: 56,
  r8: 64, r9: 72, r10: 80, r11: 88, r12: 96, r13: 104, r14: 112, r15: 120,
  rip: 128, rflags: 136,
};

/** struct kvm_sregs offsets (docs/abi.md Appendix A). */
const SEG_OFFSET: Readonly<Record<(typeof SEGMENT_NAMES)[number], number>> = {
  cs: 0, ds: 24, es: 48, fs: 72, gs: 96, ss: 120, tr: 144, ldt: 168,
};
const SREGS = { gdt: 192, idt: 208, cr0: 224, cr2: 232, cr3: 240, cr4: 248, cr8: 256, efer: 264, apicBase: 272, interruptBitmap: 280 } as const;

/** struct kvm_fpu offsets. */
const FPU = { fpr: 0, fprStride: 16, fcw: 128, fsw: 130, ftwx: 132, lastOpcode: 134, lastIp: 136, lastDp: 144, xmm: 152, mxcsr: 408 } as const;

/** kvm_guest_debug.control bits (Appendix A). */
export const GUESTDBG_ENABLE = 0x1;
export const GUESTDBG_SINGLESTEP = 0x2;
export const GUESTDBG_USE_SW_BP = 0x10000;
export const GUESTDBG_USE_HW_BP = 0x20000;

const EXIT_DEBUG = 4;
const DB_VECTOR = 1;
const BP_VECTOR = 3;

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** The neutral general registers from a kvm_regs image. */
export function regsFromKvm(image: Uint8Array): GeneralRegisterFile {
  const v = view(image);
  const out = {} as GeneralRegisterFile;
  for (const name of GPR_NAMES) out[name] = v.getBigUint64(REG_OFFSET[name], true);
  return out;
}

/** A kvm_regs image of the neutral general registers (each taken modulo 2^64). */
export function kvmFromRegs(regs: GeneralRegisterFile): Uint8Array {
  const image = new Uint8Array(KVM_REGS_SIZE);
  const v = view(image);
  for (const name of GPR_NAMES) v.setBigUint64(REG_OFFSET[name], BigInt.asUintN(64, regs[name]), true);
  return image;
}

function readSegment(v: DataView, off: number): Segment {
  const byte = (k: number) => v.getUint8(off + 14 + k);
  return {
    base: Number(v.getBigUint64(off, true)),
    limit: v.getUint32(off + 8, true),
    selector: v.getUint16(off + 12, true),
    type: byte(0), present: byte(1), dpl: byte(2), db: byte(3), s: byte(4), l: byte(5), g: byte(6), avl: byte(7), unusable: byte(8),
  };
}

/** The neutral special registers from a kvm_sregs image. */
export function sregsFromKvm(image: Uint8Array): SpecialRegisterFile {
  const v = view(image);
  const u64 = (off: number) => v.getBigUint64(off, true);
  const seg = (name: (typeof SEGMENT_NAMES)[number]) => readSegment(v, SEG_OFFSET[name]);
  return {
    cs: seg('cs'), ds: seg('ds'), es: seg('es'), fs: seg('fs'), gs: seg('gs'), ss: seg('ss'), tr: seg('tr'), ldt: seg('ldt'),
    gdt: { base: Number(u64(SREGS.gdt)), limit: v.getUint16(SREGS.gdt + 8, true) },
    idt: { base: Number(u64(SREGS.idt)), limit: v.getUint16(SREGS.idt + 8, true) },
    cr0: u64(SREGS.cr0), cr2: u64(SREGS.cr2), cr3: u64(SREGS.cr3), cr4: u64(SREGS.cr4), cr8: u64(SREGS.cr8),
    efer: u64(SREGS.efer), apicBase: u64(SREGS.apicBase),
  };
}

function checkBase(what: string, base: number): void {
  if (!Number.isSafeInteger(base) || base < 0) throw new RangeError(`${what} base ${base} is not an exact non-negative integer`);
}

/**
 * A kvm_sregs image of the neutral special registers. The interrupt bitmap,
 * which the neutral form does not hold, is copied from `current` (the image
 * KVM_GET_SREGS gave), so that setting registers never queues or drops an
 * interrupt.
 */
export function kvmFromSregs(sregs: SpecialRegisterFile, current: Uint8Array): Uint8Array {
  for (const name of SEGMENT_NAMES) checkBase(name, sregs[name].base);
  checkBase('gdt', sregs.gdt.base);
  checkBase('idt', sregs.idt.base);
  const image = kvmSregs(sregs);
  const v = view(image);
  v.setBigUint64(SREGS.cr2, BigInt.asUintN(64, sregs.cr2), true);
  v.setBigUint64(SREGS.cr8, BigInt.asUintN(64, sregs.cr8), true);
  v.setBigUint64(SREGS.apicBase, BigInt.asUintN(64, sregs.apicBase), true);
  image.set(current.subarray(SREGS.interruptBitmap, KVM_SREGS_SIZE), SREGS.interruptBitmap);
  return image;
}

/** The neutral x87/SSE state from a kvm_fpu image. */
export function fpuFromKvm(image: Uint8Array): FpuState {
  const v = view(image);
  const st: Uint8Array[] = [];
  for (let i = 0; i < 8; i++) st.push(image.slice(FPU.fpr + i * FPU.fprStride, FPU.fpr + i * FPU.fprStride + 10));
  const xmm: Uint8Array[] = [];
  for (let i = 0; i < 16; i++) xmm.push(image.slice(FPU.xmm + 16 * i, FPU.xmm + 16 * (i + 1)));
  return {
    st,
    fcw: v.getUint16(FPU.fcw, true),
    fsw: v.getUint16(FPU.fsw, true),
    ftw: v.getUint8(FPU.ftwx),
    fop: v.getUint16(FPU.lastOpcode, true),
    fip: v.getBigUint64(FPU.lastIp, true),
    fdp: v.getBigUint64(FPU.lastDp, true),
    xmm,
    mxcsr: v.getUint32(FPU.mxcsr, true),
  };
}

/**
 * The kvm_guest_debug image of a configuration: control ENABLE plus
 * SINGLESTEP / USE_SW_BP / USE_HW_BP as asked, debugreg[0..3] the addresses
 * and debugreg[7] the DR7 encoding (arch/x86_64-registers.ts). Nothing
 * asked: all zero (debugging off). Throws RangeError for a bad breakpoint.
 */
export function kvmGuestDebug(config: DebugConfig): Uint8Array {
  const { dr, dr7 } = encodeDebugRegisters(config.hardware);
  let control = 0;
  if (config.singleStep) control |= GUESTDBG_SINGLESTEP;
  if (config.softwareBreakpoints) control |= GUESTDBG_USE_SW_BP;
  if (config.hardware.length) control |= GUESTDBG_USE_HW_BP;
  if (control) control |= GUESTDBG_ENABLE;
  const image = new Uint8Array(KVM_GUEST_DEBUG_SIZE);
  const v = view(image);
  v.setUint32(0, control, true);
  dr.forEach((a, i) => v.setBigUint64(8 + 8 * i, a, true));
  v.setBigUint64(8 + 8 * 7, dr7, true);
  return image;
}

/**
 * Decodes a KVM_EXIT_DEBUG (exit reason 4) run area: kvm_run.debug.arch's
 * exception, pc and dr6. #BP (3) is 'breakpoint'; #DB (1) is 'hardware' when
 * DR6 names a debug register (B0–B3; also when DR6.BS says a step came with
 * it), else 'step' (DR6.BS). `rip` is the pc KVM reports (the linear RIP; CS
 * base is 0 in long mode); dr6 is as KVM gives it (active-low bits set, e.g.
 * 0xffff4ff0 for a step). x86 KVM reports no other vector; one would decode,
 * like any run area that is not a debug exit, as { kind: 'other' } with the
 * exit reason (so the core calls it an unhandled exit).
 */
export function decodeDebugExit(run: DataView): VcpuExit {
  const reason = run.getUint32(KVM_RUN_OFFSETS.exitReason, true);
  const exception = run.getUint32(KVM_RUN_OFFSETS.debugException, true);
  if (reason !== EXIT_DEBUG || (exception !== DB_VECTOR && exception !== BP_VECTOR)) return { kind: 'other', reason };
  const rip = run.getBigUint64(KVM_RUN_OFFSETS.debugPc, true);
  const dr6 = run.getBigUint64(KVM_RUN_OFFSETS.debugDr6, true);
  if (exception === BP_VECTOR) return { kind: 'debug', reason: 'breakpoint', rip, dr6 };
  return { kind: 'debug', reason: (dr6 & DR6_B0_B3) !== 0n ? 'hardware' : 'step', rip, dr6 };
}

/**
 * Makes the vCPU `token` names leave KVM_RUN (or its POLL wait) once, from
 * any thread, without ending its run: the run path then reports a
 * { kind: 'debug', reason: 'interrupt' } exit (see KvmBinding.takeInterrupt).
 * False if that vCPU no longer exists.
 */
export function interruptVcpu(binding: Pick<KvmBinding, 'interrupt'>, token: number): boolean {
  return binding.interrupt(token);
}

/** What KvmDebug needs of the binding. */
export type KvmDebugBinding = Pick<KvmBinding, 'getRegs' | 'setRegs' | 'getSregs' | 'setSregs' | 'getFpu' | 'setGuestDebug' | 'interrupt'>;

/**
 * DebugVcpu over one KVM vCPU: `new KvmDebug(binding, vcpuFd, token)` with
 * the descriptor and token createVcpu returned. Every method but interrupt()
 * must be called on the vCPU's thread between runs. A failing ioctl is a
 * HostError "KVM: ioctl (NAME) failed: strerror" with the native error as
 * cause.
 */
export class KvmDebug implements DebugVcpu {
  constructor(
    private readonly b: KvmDebugBinding,
    private readonly vcpuFd: number,
    readonly token: number,
  ) {}

  getRegisters(): GeneralRegisterFile {
    return regsFromKvm(this.image('GET_REGS', KVM_REGS_SIZE, (fd, i) => this.b.getRegs(fd, i)));
  }

  setRegisters(regs: GeneralRegisterFile): void {
    const image = kvmFromRegs(regs);
    this.ioctl('SET_REGS', () => this.b.setRegs(this.vcpuFd, image));
  }

  getSpecialRegisters(): SpecialRegisterFile {
    return sregsFromKvm(this.image('GET_SREGS', KVM_SREGS_SIZE, (fd, i) => this.b.getSregs(fd, i)));
  }

  setSpecialRegisters(sregs: SpecialRegisterFile): void {
    const current = this.image('GET_SREGS', KVM_SREGS_SIZE, (fd, i) => this.b.getSregs(fd, i));
    const image = kvmFromSregs(sregs, current);
    this.ioctl('SET_SREGS', () => this.b.setSregs(this.vcpuFd, image));
  }

  getFpu(): FpuState {
    return fpuFromKvm(this.image('GET_FPU', KVM_FPU_SIZE, (fd, i) => this.b.getFpu(fd, i)));
  }

  setDebug(config: DebugConfig): void {
    const image = kvmGuestDebug(config);
    this.ioctl('SET_GUEST_DEBUG', () => this.b.setGuestDebug(this.vcpuFd, image));
  }

  /** From any thread that holds this object: see interruptVcpu. */
  interrupt(): boolean {
    return interruptVcpu(this.b, this.token);
  }

  private image(name: string, size: number, get: (fd: number, image: Uint8Array) => void): Uint8Array {
    const image = new Uint8Array(size);
    this.ioctl(name, () => get(this.vcpuFd, image));
    return image;
  }

  private ioctl(name: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      throw new HostError(withErrno(`KVM: ioctl (${name}) failed`, e), { cause: e });
    }
  }
}
