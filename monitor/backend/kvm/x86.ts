// The x86_64 boot state of arch/x86_64.ts in KVM's formats: struct
// kvm_sregs and struct kvm_regs (offsets from docs/abi.md Appendix A).
import {
  initialGeneralRegisters,
  initialSpecialRegisters,
  type GeneralRegisters,
  type Segment,
  type SpecialRegisters,
} from '../../arch/x86_64.js';

export const SREGS_SIZE = 312;
const SEG = { cs: 0, ds: 24, es: 48, fs: 72, gs: 96, ss: 120, tr: 144, ldt: 168 } as const;
const SREG = { gdt: 192, idt: 208, cr0: 224, cr2: 232, cr3: 240, cr4: 248, cr8: 256, efer: 264, apicBase: 272 } as const;

export const REGS_SIZE = 144;
export const REG = { rax: 0, rsp: 48, rdi: 40, rip: 128, rflags: 136 } as const;

function writeSegment(v: DataView, off: number, s: Segment): void {
  v.setBigUint64(off, BigInt(s.base), true);
  v.setUint32(off + 8, s.limit, true);
  v.setUint16(off + 12, s.selector, true);
  const bytes = [s.type, s.present, s.dpl, s.db, s.s, s.l, s.g, s.avl, s.unusable, 0];
  bytes.forEach((b, k) => v.setUint8(off + 14 + k, b));
}

/** A kvm_sregs image; fields the state does not name are zero. */
export function kvmSregs(r: SpecialRegisters): Uint8Array {
  const out = new Uint8Array(SREGS_SIZE);
  const v = new DataView(out.buffer);
  for (const name of ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const) writeSegment(v, SEG[name], r[name]);
  v.setBigUint64(SREG.gdt, BigInt(r.gdt.base), true);
  v.setUint16(SREG.gdt + 8, r.gdt.limit, true);
  v.setBigUint64(SREG.idt, BigInt(r.idt.base), true);
  v.setUint16(SREG.idt + 8, r.idt.limit, true);
  v.setBigUint64(SREG.cr0, r.cr0, true);
  v.setBigUint64(SREG.cr3, r.cr3, true);
  v.setBigUint64(SREG.cr4, r.cr4, true);
  v.setBigUint64(SREG.efer, r.efer, true);
  return out;
}

/** A kvm_regs image; registers the state does not name are zero. */
export function kvmRegs(r: GeneralRegisters): Uint8Array {
  const out = new Uint8Array(REGS_SIZE);
  const v = new DataView(out.buffer);
  v.setBigUint64(REG.rip, BigInt(r.rip), true);
  v.setBigUint64(REG.rflags, BigInt(r.rflags), true);
  v.setBigUint64(REG.rsp, BigInt(r.rsp), true);
  v.setBigUint64(REG.rdi, BigInt(r.rdi), true);
  return out;
}

/** The kvm_sregs image of §7.3. */
export function initialSregs(): Uint8Array {
  return kvmSregs(initialSpecialRegisters());
}

/** The kvm_regs image of §7.4. */
export function initialRegs(entry: number, memSize: number): Uint8Array {
  return kvmRegs(initialGeneralRegisters(entry, memSize));
}

/** RIP from a kvm_regs image. */
export function ripOf(regs: Uint8Array): bigint {
  return new DataView(regs.buffer, regs.byteOffset).getBigUint64(REG.rip, true);
}
