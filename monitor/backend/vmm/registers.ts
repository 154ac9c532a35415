// The neutral x86_64 boot state (arch/x86_64.ts, docs/abi.md §7.3–§7.4) as
// FreeBSD vmm(4) takes it (§18 steps 9–12 and 14): one VM_SET_REGISTER per
// register and, per segment, one VM_SET_SEGMENT_DESCRIPTOR (base, limit in
// bytes, VMX access-rights word) followed by the selector. Pure functions;
// the unit tests check every value against §18's table and convert back to
// the neutral state to compare with the KVM backend's.
import type { GeneralRegisters, Segment, SpecialRegisters } from '../../arch/x86_64.js';
import type { VmmRegName } from '../../../native/binding/vmm.js';

/** One operation on the vCPU, in order. */
export type VmmStateOp =
  | { op: 'register'; reg: VmmRegName; value: bigint }
  | { op: 'descriptor'; reg: VmmRegName; base: bigint; limit: number; access: number };

/** Bit 16 of the access word: "segment unusable" (VMX; vmm.h keeps it). */
export const ACCESS_UNUSABLE = 1 << 16;

/**
 * The VMX access-rights word of a segment (Intel SDM vol. 3 table 24-2):
 * type bits 0–3, S 4, DPL 5–6, P 7, AVL 12, L 13, D/B 14, G 15, unusable 16.
 * §18's formula, plus AVL (always 0 here): CS 0xA099, data 0xC093, TR 0x8B,
 * LDTR 0x10000.
 */
export function accessWord(s: Segment): number {
  return (
    (s.type & 0xf) |
    ((s.s & 1) << 4) |
    ((s.dpl & 3) << 5) |
    ((s.present & 1) << 7) |
    ((s.avl & 1) << 12) |
    ((s.l & 1) << 13) |
    ((s.db & 1) << 14) |
    ((s.g & 1) << 15) |
    ((s.unusable & 1) << 16)
  );
}

/** The segment a descriptor and selector describe (the inverse of accessWord). */
export function segmentOf(selector: number, base: bigint, limit: number, access: number): Segment {
  const bit = (n: number) => (access >>> n) & 1;
  return {
    base: Number(base),
    limit,
    selector,
    type: access & 0xf,
    s: bit(4),
    dpl: (access >>> 5) & 3,
    present: bit(7),
    avl: bit(12),
    l: bit(13),
    db: bit(14),
    g: bit(15),
    unusable: bit(16),
  };
}

const descriptor = (reg: VmmRegName, s: Segment): VmmStateOp[] => [
  { op: 'descriptor', reg, base: BigInt(s.base), limit: s.limit, access: accessWord(s) },
  { op: 'register', reg, value: BigInt(s.selector) },
];

/**
 * §18 steps 9–12: CR0, CR3, CR4, EFER; CS, SS, DS, ES, FS, GS (descriptor,
 * then selector); GDTR (descriptor, access 0); TR and LDTR (descriptor, then
 * selector). IDTR, CR2, CR8 and the APIC base are not set: vmm keeps its
 * own reset values, as the reference does.
 */
export function specialRegisterOps(r: SpecialRegisters): VmmStateOp[] {
  return [
    { op: 'register', reg: 'cr0', value: r.cr0 },
    { op: 'register', reg: 'cr3', value: r.cr3 },
    { op: 'register', reg: 'cr4', value: r.cr4 },
    { op: 'register', reg: 'efer', value: r.efer },
    ...descriptor('cs', r.cs),
    ...descriptor('ss', r.ss),
    ...descriptor('ds', r.ds),
    ...descriptor('es', r.es),
    ...descriptor('fs', r.fs),
    ...descriptor('gs', r.gs),
    { op: 'descriptor', reg: 'gdtr', base: BigInt(r.gdt.base), limit: r.gdt.limit, access: 0 },
    ...descriptor('tr', r.tr),
    ...descriptor('ldtr', r.ldt),
  ];
}

/** §18 step 14: RIP, RFLAGS, RSP, RDI (§7.4); every other register stays 0. */
export function generalRegisterOps(r: GeneralRegisters): VmmStateOp[] {
  return [
    { op: 'register', reg: 'rip', value: BigInt(r.rip) },
    { op: 'register', reg: 'rflags', value: BigInt(r.rflags) },
    { op: 'register', reg: 'rsp', value: BigInt(r.rsp) },
    { op: 'register', reg: 'rdi', value: BigInt(r.rdi) },
  ];
}

/** What a sequence of operations leaves in the vCPU, as the neutral state (for tests and reviews). */
export interface VmmStateView {
  special: Omit<SpecialRegisters, 'idt'>;
  general: GeneralRegisters;
}

/**
 * Replays operations into the neutral state. Throws if a segment or register
 * the neutral state needs was never set, so a dropped operation shows.
 */
export function replayOps(ops: readonly VmmStateOp[]): VmmStateView {
  const regs = new Map<VmmRegName, bigint>();
  const descs = new Map<VmmRegName, { base: bigint; limit: number; access: number }>();
  for (const o of ops) {
    if (o.op === 'register') regs.set(o.reg, o.value);
    else descs.set(o.reg, { base: o.base, limit: o.limit, access: o.access });
  }
  const reg = (name: VmmRegName) => {
    const v = regs.get(name);
    if (v === undefined) throw new Error(`register ${name} was never set`);
    return v;
  };
  const seg = (name: VmmRegName): Segment => {
    const d = descs.get(name);
    if (!d) throw new Error(`segment ${name} has no descriptor`);
    return segmentOf(Number(reg(name)), d.base, d.limit, d.access);
  };
  const gdt = descs.get('gdtr');
  if (!gdt) throw new Error('GDTR was never set');
  return {
    special: {
      cs: seg('cs'), ds: seg('ds'), es: seg('es'), fs: seg('fs'), gs: seg('gs'), ss: seg('ss'), tr: seg('tr'), ldt: seg('ldtr'),
      gdt: { base: Number(gdt.base), limit: gdt.limit },
      cr0: reg('cr0'), cr3: reg('cr3'), cr4: reg('cr4'), efer: reg('efer'),
    },
    general: { rip: Number(reg('rip')), rflags: Number(reg('rflags')), rsp: Number(reg('rsp')), rdi: Number(reg('rdi')) },
  };
}
