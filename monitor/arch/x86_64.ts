// x86_64 boot state (spec §6.2, §6.3, §7.2–§7.4) as pure functions over byte
// arrays: the GDT and page tables written into guest RAM, and the register
// images handed to the backend. Unit tests check them byte for byte.
import { BOOT_INFO_GPA, GUEST_PAGE, MIN_LOAD_ADDR } from '../abi.js';

export const GDT_GPA = 0x1000;
export const GDT_LIMIT = 0x17;
export const PML4_GPA = 0x2000;
export const PDPT_GPA = 0x3000;
export const PD_GPA = 0x4000; // four page directories, 0x4000..0x7FFF
export const PT0_GPA = 0x8000; // 4 KiB pages of the first 2 MiB

export const GDT_CODE = 0x00af99000000ffffn;
export const GDT_DATA = 0x00cf93000000ffffn;

const P = 1n;
const RW = 2n;
const PS = 0x80n;

/** Writes the three-entry GDT at 0x1000. */
export function writeGdt(mem: Uint8Array): void {
  const v = new DataView(mem.buffer, mem.byteOffset + GDT_GPA, 24);
  v.setBigUint64(0, 0n, true);
  v.setBigUint64(8, GDT_CODE, true);
  v.setBigUint64(16, GDT_DATA, true);
}

/** Identity-maps [0, allocSize) (§6.3); allocSize is a multiple of 2 MiB ≤ 4 GiB. */
export function writePageTables(mem: Uint8Array, allocSize: number): void {
  mem.fill(0, PML4_GPA, PT0_GPA + 0x1000);
  const v = new DataView(mem.buffer, mem.byteOffset);
  v.setBigUint64(PML4_GPA, BigInt(PDPT_GPA) | P | RW, true);
  for (let i = 0; i < 4; i++) {
    v.setBigUint64(PDPT_GPA + 8 * i, BigInt(PD_GPA + i * 0x1000) | P | RW, true);
  }
  v.setBigUint64(PD_GPA, BigInt(PT0_GPA) | P | RW, true);
  for (let k = 1; k * GUEST_PAGE < allocSize; k++) {
    v.setBigUint64(PD_GPA + 8 * k, BigInt(k * GUEST_PAGE) | P | RW | PS, true);
  }
  // First 2 MiB in 4 KiB pages: nothing below boot info, the boot-info region
  // read-only, the kernel's first 1 MiB read/write.
  for (let gpa = BOOT_INFO_GPA; gpa < GUEST_PAGE; gpa += 0x1000) {
    const flags = gpa < MIN_LOAD_ADDR ? P : P | RW;
    v.setBigUint64(PT0_GPA + (gpa / 0x1000) * 8, BigInt(gpa) | flags, true);
  }
}

// struct kvm_sregs layout (Appendix A).
export const SREGS_SIZE = 312;
const SEG = { cs: 0, ds: 24, es: 48, fs: 72, gs: 96, ss: 120, tr: 144, ldt: 168 } as const;
const SREG = { gdt: 192, idt: 208, cr0: 224, cr2: 232, cr3: 240, cr4: 248, cr8: 256, efer: 264, apicBase: 272 } as const;

export const CR0_INIT = 0x80010021n; // PE, NE, WP, PG
export const CR4_INIT = 0x620n; // PAE, OSFXSR, OSXMMEXCPT
export const EFER_INIT = 0x500n; // LME, LMA

interface Segment {
  base: number;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

const CODE_SEG: Segment = { base: 0, limit: 0xffffffff, selector: 0x08, type: 9, present: 1, dpl: 0, db: 0, s: 1, l: 1, g: 1, avl: 0, unusable: 0 };
const DATA_SEG: Segment = { ...CODE_SEG, selector: 0x10, type: 3, db: 1, l: 0 };
const TR_SEG: Segment = { base: 0, limit: 0, selector: 0, type: 11, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0 };
const LDT_SEG: Segment = { ...TR_SEG, type: 0, present: 0, unusable: 1 };

function writeSegment(v: DataView, off: number, s: Segment): void {
  v.setBigUint64(off, BigInt(s.base), true);
  v.setUint32(off + 8, s.limit, true);
  v.setUint16(off + 12, s.selector, true);
  const bytes = [s.type, s.present, s.dpl, s.db, s.s, s.l, s.g, s.avl, s.unusable, 0];
  bytes.forEach((b, k) => v.setUint8(off + 14 + k, b));
}

/** The kvm_sregs image of §7.3; every field not named there is zero. */
export function initialSregs(): Uint8Array {
  const out = new Uint8Array(SREGS_SIZE);
  const v = new DataView(out.buffer);
  writeSegment(v, SEG.cs, CODE_SEG);
  for (const off of [SEG.ds, SEG.es, SEG.fs, SEG.gs, SEG.ss]) writeSegment(v, off, DATA_SEG);
  writeSegment(v, SEG.tr, TR_SEG);
  writeSegment(v, SEG.ldt, LDT_SEG);
  v.setBigUint64(SREG.gdt, BigInt(GDT_GPA), true);
  v.setUint16(SREG.gdt + 8, GDT_LIMIT, true);
  v.setBigUint64(SREG.idt, 0n, true);
  v.setUint16(SREG.idt + 8, 0, true);
  v.setBigUint64(SREG.cr0, CR0_INIT, true);
  v.setBigUint64(SREG.cr3, BigInt(PML4_GPA), true);
  v.setBigUint64(SREG.cr4, CR4_INIT, true);
  v.setBigUint64(SREG.efer, EFER_INIT, true);
  return out;
}

// struct kvm_regs layout (Appendix A).
export const REGS_SIZE = 144;
export const REG = { rax: 0, rsp: 48, rdi: 40, rip: 128, rflags: 136 } as const;

/** The kvm_regs image of §7.4. */
export function initialRegs(entry: number, memSize: number): Uint8Array {
  const out = new Uint8Array(REGS_SIZE);
  const v = new DataView(out.buffer);
  v.setBigUint64(REG.rip, BigInt(entry), true);
  v.setBigUint64(REG.rflags, 2n, true);
  v.setBigUint64(REG.rsp, BigInt(memSize - 8), true);
  v.setBigUint64(REG.rdi, BigInt(BOOT_INFO_GPA), true);
  return out;
}

/** RIP from a kvm_regs image. */
export function ripOf(regs: Uint8Array): bigint {
  return new DataView(regs.buffer, regs.byteOffset).getBigUint64(REG.rip, true);
}
