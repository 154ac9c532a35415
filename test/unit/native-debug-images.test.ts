// The debug ioctls' struct images (monitor/backend/kvm/debug.ts): kvm_regs,
// kvm_sregs, kvm_fpu and kvm_guest_debug to and from the neutral x86_64
// register file, the DR7 encoding, the x87 full tag word, and the decoder of
// KVM_EXIT_DEBUG run areas. Offsets from <linux/kvm.h> (the addon pins them
// with static_assert). No KVM involved.
import { describe, expect, it } from 'vitest';
import { initialSpecialRegisters } from '../../monitor/arch/x86_64.js';
import { encodeDebugRegisters, fullTagWord, GPR_NAMES, type GeneralRegisterFile } from '../../monitor/arch/x86_64-registers.js';
import {
  decodeDebugExit,
  fpuFromKvm,
  interruptVcpu,
  KvmDebug,
  type KvmDebugBinding,
  kvmFromRegs,
  kvmFromSregs,
  kvmGuestDebug,
  regsFromKvm,
  sregsFromKvm,
} from '../../monitor/backend/kvm/debug.js';
import { kvmSregs } from '../../monitor/backend/kvm/x86.js';
import { HostError } from '../../monitor/errors.js';
import { KVM_FPU_SIZE, KVM_GUEST_DEBUG_SIZE, KVM_REGS_SIZE, KVM_SREGS_SIZE } from '../../native/binding.js';
import { thrownBy } from '../helpers/thrown.js';

const OFF = { singleStep: false, softwareBreakpoints: false, hardware: [] };

/** Register i (gdb order) = 0x0101…01 × (i + 1). */
function distinct(): GeneralRegisterFile {
  return Object.fromEntries(GPR_NAMES.map((n, i) => [n, 0x0101010101010101n * BigInt(i + 1)])) as GeneralRegisterFile;
}

describe('kvm_regs image', () => {
  it('places each register at its kvm_regs offset (rsp @48 before rbp @56) and reads it back', () => {
    const regs = distinct();
    const image = kvmFromRegs(regs);
    expect(image.length).toBe(KVM_REGS_SIZE);
    const v = new DataView(image.buffer);
    const at = { rax: 0, rbx: 8, rcx: 16, rdx: 24, rsi: 32, rdi: 40, rsp: 48, rbp: 56, r8: 64, r12: 96, r15: 120, rip: 128, rflags: 136 };
    for (const [name, off] of Object.entries(at)) expect(v.getBigUint64(off, true), name).toBe(regs[name as keyof GeneralRegisterFile]);
    expect(regsFromKvm(image)).toEqual(regs);
  });

  it('takes values modulo 2^64', () => {
    const image = kvmFromRegs({ ...distinct(), rax: -1n, rbx: 1n << 64n });
    expect([regsFromKvm(image).rax, regsFromKvm(image).rbx]).toEqual([0xffffffffffffffffn, 0n]);
  });
});

describe('kvm_sregs image', () => {
  it('reads back the §7.3 boot state, with cr2, cr8 and the APIC base', () => {
    const image = kvmSregs(initialSpecialRegisters());
    const v = new DataView(image.buffer);
    v.setBigUint64(232, 0xdeadn, true); // cr2
    v.setBigUint64(256, 7n, true); // cr8
    v.setBigUint64(272, 0xfee00900n, true); // apic_base
    v.setBigUint64(72, 0x12345000n, true); // fs.base
    const s = sregsFromKvm(image);
    const boot = initialSpecialRegisters();
    expect(s).toEqual({ ...boot, fs: { ...boot.fs, base: 0x12345000 }, cr2: 0xdeadn, cr8: 7n, apicBase: 0xfee00900n });
  });

  it('writes every named field and keeps the interrupt bitmap of the current state', () => {
    const current = new Uint8Array(KVM_SREGS_SIZE);
    current.fill(0xa5, 280);
    const s = { ...initialSpecialRegisters(), cr2: 1n, cr8: 2n, apicBase: 3n };
    const image = kvmFromSregs(s, current);
    expect(sregsFromKvm(image)).toEqual(s);
    expect(Array.from(image.subarray(280))).toEqual(new Array(32).fill(0xa5));
  });

  it('refuses a base that is not an exact integer', () => {
    const s = { ...initialSpecialRegisters(), cr2: 0n, cr8: 0n, apicBase: 0n };
    expect(() => kvmFromSregs({ ...s, gs: { ...s.gs, base: 2 ** 60 + 0.5 } }, new Uint8Array(KVM_SREGS_SIZE))).toThrow(RangeError);
    expect(() => kvmFromSregs({ ...s, gdt: { base: -1, limit: 0 } }, new Uint8Array(KVM_SREGS_SIZE))).toThrow('gdt base -1');
  });
});

describe('kvm_fpu image', () => {
  it('reads ST0–ST7 (10 of 16 bytes each), the x87 words and pointers, XMM0–XMM15 and MXCSR', () => {
    const image = new Uint8Array(KVM_FPU_SIZE);
    const v = new DataView(image.buffer);
    for (let i = 0; i < 8; i++) image.fill(0x10 + i, 16 * i, 16 * i + 16);
    v.setUint16(128, 0x37f, true);
    v.setUint16(130, 0x3800, true);
    image[132] = 0x81;
    v.setUint16(134, 0x1dd, true);
    v.setBigUint64(136, 0x100123n, true);
    v.setBigUint64(144, 0x200456n, true);
    for (let i = 0; i < 16; i++) image.fill(i, 152 + 16 * i, 168 + 16 * i);
    v.setUint32(408, 0x1f80, true);
    const f = fpuFromKvm(image);
    expect(f.st.map((r) => Array.from(r))).toEqual(Array.from({ length: 8 }, (_, i) => new Array(10).fill(0x10 + i)));
    expect(f.xmm.map((r) => Array.from(r))).toEqual(Array.from({ length: 16 }, (_, i) => new Array(16).fill(i)));
    expect([f.fcw, f.fsw, f.ftw, f.fop, f.fip, f.fdp, f.mxcsr]).toEqual([0x37f, 0x3800, 0x81, 0x1dd, 0x100123n, 0x200456n, 0x1f80]);
  });

  it('rebuilds the full tag word from the abridged one, relative to TOP', () => {
    const one = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f]); // 1.0
    const zero = new Uint8Array(10);
    const nan = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0x7f]);
    const denormal = Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const st = [one, zero, nan, denormal, zero, zero, zero, zero];
    expect(fullTagWord({ st, fsw: 0, ftw: 0 })).toBe(0xffff); // all empty
    expect(fullTagWord({ st, fsw: 0, ftw: 0x0f })).toBe(0xffa4); // valid, zero, special, special
    // TOP = 1: physical register 1 is ST0, physical 2 is ST1.
    expect(fullTagWord({ st, fsw: 1 << 11, ftw: 0x06 })).toBe(0xffd3);
  });
});

describe('kvm_guest_debug image and DR7', () => {
  it('is all zero when nothing is asked (debugging off)', () => {
    const image = kvmGuestDebug(OFF);
    expect(image.length).toBe(KVM_GUEST_DEBUG_SIZE);
    expect(image.every((b) => b === 0)).toBe(true);
  });

  it('sets ENABLE with SINGLESTEP, USE_SW_BP and USE_HW_BP as asked', () => {
    const control = (c: Parameters<typeof kvmGuestDebug>[0]) => new DataView(kvmGuestDebug(c).buffer).getUint32(0, true);
    expect(control({ ...OFF, singleStep: true })).toBe(0x3);
    expect(control({ ...OFF, softwareBreakpoints: true })).toBe(0x10001);
    expect(control({ ...OFF, hardware: [{ address: 0x1000n, kind: 'exec', length: 1 }] })).toBe(0x20001);
    expect(control({ singleStep: true, softwareBreakpoints: true, hardware: [{ address: 8n, kind: 'write', length: 8 }] })).toBe(0x30003);
  });

  it('puts addresses in debugreg[0..3] and DR7 in debugreg[7] as docs/abi.md §16.6 gives them', () => {
    const image = kvmGuestDebug({
      ...OFF,
      hardware: [
        { address: 0x100abcn, kind: 'exec', length: 1 },
        { address: 0x2000n, kind: 'write', length: 8 },
        { address: 0x3002n, kind: 'access', length: 2 },
        { address: 0x4004n, kind: 'write', length: 4 },
      ],
    });
    const v = new DataView(image.buffer);
    expect([0, 1, 2, 3].map((i) => v.getBigUint64(8 + 8 * i, true))).toEqual([0x100abcn, 0x2000n, 0x3002n, 0x4004n]);
    // G0..G3 = bits 1,3,5,7; RW/LEN: slot0 00/00, slot1 01/10, slot2 11/01, slot3 01/11; bits 9 and 10.
    const dr7 = 0xaan | 0x600n | (0b1001n << 20n) | (0b0111n << 24n) | (0b1101n << 28n);
    expect(v.getBigUint64(8 + 8 * 7, true)).toBe(dr7);
    expect(v.getBigUint64(8 + 8 * 6, true)).toBe(0n);
    expect(encodeDebugRegisters([{ address: 0x2000n, kind: 'write', length: 8 }]).dr7).toBe(0x90602n);
  });

  it('refuses more than four, bad lengths, unaligned addresses and long exec breakpoints', () => {
    const bp = { address: 0x1000n, kind: 'write', length: 4 } as const;
    expect(() => kvmGuestDebug({ ...OFF, hardware: [bp, bp, bp, bp, bp] })).toThrow('at most 4 hardware breakpoints, got 5');
    expect(() => encodeDebugRegisters([{ ...bp, length: 3 as 4 }])).toThrow('length must be 1, 2, 4 or 8, got 3');
    expect(() => encodeDebugRegisters([{ ...bp, address: 0x1002n }])).toThrow('0x1002 is not aligned to its length 4');
    expect(() => encodeDebugRegisters([{ address: 0x1000n, kind: 'exec', length: 2 }])).toThrow('an execution breakpoint has length 1');
    expect(() => encodeDebugRegisters([{ ...bp, address: 1n << 64n }])).toThrow(RangeError);
  });
});

/** A KVM_EXIT_DEBUG run area (debug.arch at 32: exception, pad, pc, dr6, dr7). */
function debugRun(exception: number, pc: bigint, dr6: bigint, reason = 4): DataView {
  const v = new DataView(new ArrayBuffer(2352));
  v.setUint32(8, reason, true);
  v.setUint32(32, exception, true);
  v.setBigUint64(40, pc, true);
  v.setBigUint64(48, dr6, true);
  v.setBigUint64(56, 0x400n, true);
  return v;
}

describe('decodeDebugExit', () => {
  it('maps #DB with DR6.BS to a step, #DB with B0–B3 to a hardware hit, #BP to a breakpoint', () => {
    expect(decodeDebugExit(debugRun(1, 0x100ba0n, 0xffff4ff0n))).toEqual({ kind: 'debug', reason: 'step', rip: 0x100ba0n, dr6: 0xffff4ff0n });
    expect(decodeDebugExit(debugRun(1, 0x100bc0n, 0xffff0ff2n))).toEqual({ kind: 'debug', reason: 'hardware', rip: 0x100bc0n, dr6: 0xffff0ff2n });
    // A step that also hit a watchpoint reports the watchpoint.
    expect(decodeDebugExit(debugRun(1, 0x5n, 0xffff4ff1n))).toMatchObject({ kind: 'debug', reason: 'hardware' });
    expect(decodeDebugExit(debugRun(3, 0x100be7n, 0n))).toEqual({ kind: 'debug', reason: 'breakpoint', rip: 0x100be7n, dr6: 0n });
  });

  it('leaves any other exit, and a vector x86 KVM never reports, as other', () => {
    expect(decodeDebugExit(debugRun(1, 0n, 0n, 2))).toEqual({ kind: 'other', reason: 2 });
    expect(decodeDebugExit(debugRun(0, 0x100000n, 0n))).toEqual({ kind: 'other', reason: 4 });
    expect(decodeDebugExit(debugRun(6, 0x100000n, 0n))).toEqual({ kind: 'other', reason: 4 });
  });
});

describe('KvmDebug over a fake binding', () => {
  it('passes the vCPU descriptor and images of the right sizes, and interrupt() the token', () => {
    const calls: string[] = [];
    const fake: KvmDebugBinding = {
      getRegs: (fd, r) => (calls.push(`getRegs(${fd},${r.length})`), r.fill(0)),
      setRegs: (fd, r) => void calls.push(`setRegs(${fd},${r.length})`),
      getSregs: (fd, s) => void calls.push(`getSregs(${fd},${s.length})`),
      setSregs: (fd, s) => void calls.push(`setSregs(${fd},${s.length})`),
      getFpu: (fd, f) => void calls.push(`getFpu(${fd},${f.length})`),
      setGuestDebug: (fd, d) => void calls.push(`setGuestDebug(${fd},${d.length})`),
      interrupt: (t) => (calls.push(`interrupt(${t})`), true),
    };
    const d = new KvmDebug(fake, 5, 517);
    d.setRegisters(d.getRegisters());
    d.setSpecialRegisters(d.getSpecialRegisters());
    d.getFpu();
    d.setDebug(OFF);
    expect(d.interrupt()).toBe(true);
    expect(interruptVcpu(fake, 9)).toBe(true);
    expect(calls).toEqual([
      'getRegs(5,144)', 'setRegs(5,144)', 'getSregs(5,312)', 'getSregs(5,312)', 'setSregs(5,312)',
      'getFpu(5,416)', 'setGuestDebug(5,72)', 'interrupt(517)', 'interrupt(9)',
    ]);
  });

  it('reports a failing ioctl in the reference\'s words, with the native error as cause', () => {
    const cause = Object.assign(new Error('KVM_SET_GUEST_DEBUG: Invalid argument'), { errno: 22, code: 'EINVAL', syscall: 'KVM_SET_GUEST_DEBUG' });
    const fake = { setGuestDebug: () => { throw cause; } } as unknown as KvmDebugBinding;
    const e = thrownBy(() => new KvmDebug(fake, 5, 1).setDebug(OFF), HostError);
    expect(e.message).toBe('KVM: ioctl (SET_GUEST_DEBUG) failed: Invalid argument');
    expect(e.cause).toBe(cause);
  });
});
