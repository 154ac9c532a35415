// x86_64 boot state (docs/abi.md §6.2, §6.3, §7.2–§7.4) as pure functions: the GDT
// and page tables written into guest RAM, and the initial CPU state described
// neutrally; each backend converts it to its own format (KVM:
// backend/kvm-x86.ts). Unit tests check them byte for byte.
import { BOOT_INFO_GPA, GUEST_PAGE, MIN_LOAD_ADDR } from '../abi/constants.js';

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

export const CR0_INIT = 0x80010021n; // PE, NE, WP, PG
export const CR4_INIT = 0x620n; // PAE, OSFXSR, OSXMMEXCPT
export const EFER_INIT = 0x500n; // LME, LMA

/** A segment register as the CPU caches it (fields as KVM and vmm both name them). */
export interface Segment {
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

/** Special registers at entry (§7.3); everything not named here is zero. */
export interface SpecialRegisters {
  cs: Segment;
  ds: Segment;
  es: Segment;
  fs: Segment;
  gs: Segment;
  ss: Segment;
  tr: Segment;
  ldt: Segment;
  gdt: { base: number; limit: number };
  idt: { base: number; limit: number };
  cr0: bigint;
  cr3: bigint;
  cr4: bigint;
  efer: bigint;
}

export function initialSpecialRegisters(): SpecialRegisters {
  return {
    cs: CODE_SEG,
    ds: DATA_SEG,
    es: DATA_SEG,
    fs: DATA_SEG,
    gs: DATA_SEG,
    ss: DATA_SEG,
    tr: TR_SEG,
    ldt: LDT_SEG,
    gdt: { base: GDT_GPA, limit: GDT_LIMIT },
    idt: { base: 0, limit: 0 },
    cr0: CR0_INIT,
    cr3: BigInt(PML4_GPA),
    cr4: CR4_INIT,
    efer: EFER_INIT,
  };
}

/** General registers at entry (§7.4); all others are zero. */
export interface GeneralRegisters {
  rip: number;
  rflags: number;
  rsp: number;
  rdi: number;
}

export function initialGeneralRegisters(entry: number, memSize: number): GeneralRegisters {
  return { rip: entry, rflags: 0x2, rsp: memSize - 8, rdi: BOOT_INFO_GPA };
}
