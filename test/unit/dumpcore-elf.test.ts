// The dumpcore module's core-file head (modules/dumpcore/elf-core.ts) and
// register block (registers.ts), byte for byte against docs/abi.md §15.4,
// §15.5 and the trap frame of §10.8. No KVM, no files.
import { describe, expect, it } from 'vitest';
import type { GeneralRegisterFile, SpecialRegisterFile } from '../../monitor/arch/x86_64-registers.js';
import { GPR_NAMES } from '../../monitor/arch/x86_64-registers.js';
import { initialSpecialRegisters } from '../../monitor/arch/x86_64.js';
import {
  coreHead,
  MEMORY_OFFSET,
  NOTE_OFFSET,
  NOTE_SIZE,
  PR_REG_OFFSET,
  PRSTATUS_REGISTERS,
  PRSTATUS_SIZE,
  REGISTERS_OFFSET,
  zeroRegisters,
} from '../../modules/dumpcore/elf-core.js';
import { coreRegisters, TRAP_FRAME } from '../../modules/dumpcore/registers.js';

const MEM = 64 << 20;

/** Every register a distinct value: 0x1000 + 0x11 × its position, in the top byte too. */
function distinctRegisters() {
  const regs = zeroRegisters();
  PRSTATUS_REGISTERS.forEach((r, i) => (regs[r] = (BigInt(i + 1) << 56n) | BigInt(0x1000 + 0x11 * i)));
  return regs;
}

describe('core head (§15.4)', () => {
  const head = coreHead(MEM, distinctRegisters());
  const v = new DataView(head.buffer);
  const u16 = (o: number) => v.getUint16(o, true);
  const u32 = (o: number) => v.getUint32(o, true);
  const u64 = (o: number) => v.getBigUint64(o, true);

  it('has the offsets §15.4 gives: notes at 176 (356 bytes), registers at 308, memory at 532', () => {
    expect([NOTE_OFFSET, NOTE_SIZE, REGISTERS_OFFSET, MEMORY_OFFSET, PRSTATUS_SIZE, PR_REG_OFFSET]).toEqual([176, 356, 308, 532, 336, 112]);
    expect(head.length).toBe(532);
  });

  it('ELF header: ELF64 LSB, version 1, OSABI 255, ET_CORE, EM_X86_64, two 56-byte program headers at 64', () => {
    expect([...head.subarray(0, 16)]).toEqual([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 255, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(u16(16)).toBe(4); // e_type
    expect(u16(18)).toBe(62); // e_machine
    expect(u32(20)).toBe(1); // e_version
    expect(u64(24)).toBe(0n); // e_entry
    expect(u64(32)).toBe(64n); // e_phoff
    expect(u64(40)).toBe(0n); // e_shoff
    expect(u32(48)).toBe(0); // e_flags
    expect([u16(52), u16(54), u16(56), u16(58), u16(60), u16(62)]).toEqual([64, 56, 2, 0, 0, 0]);
  });

  it('program header 0: PT_NOTE at 176, filesz = memsz = 356, all else 0', () => {
    const p = 64;
    expect([u32(p), u32(p + 4)]).toEqual([4, 0]);
    expect([u64(p + 8), u64(p + 16), u64(p + 24), u64(p + 32), u64(p + 40), u64(p + 48)]).toEqual([176n, 0n, 0n, 356n, 356n, 0n]);
  });

  it('program header 1: PT_LOAD at 532 of mem_size bytes, vaddr = paddr = 0, flags and align 0', () => {
    const p = 120;
    expect([u32(p), u32(p + 4)]).toEqual([1, 0]);
    expect([u64(p + 8), u64(p + 16), u64(p + 24), u64(p + 32), u64(p + 40), u64(p + 48)]).toEqual([532n, 0n, 0n, BigInt(MEM), BigInt(MEM), 0n]);
  });

  it('one note: namesz 8, descsz 336, NT_PRSTATUS, name "CORE" and four NULs', () => {
    expect([u32(176), u32(180), u32(184)]).toEqual([8, 336, 1]);
    expect([...head.subarray(188, 196)]).toEqual([0x43, 0x4f, 0x52, 0x45, 0, 0, 0, 0]);
  });

  it('prstatus is zero but for the register block, which follows user_regs_struct (§15.5)', () => {
    expect(head.subarray(196, 308).every((b) => b === 0)).toBe(true);
    expect(head.subarray(308 + 27 * 8, 532).every((b) => b === 0)).toBe(true); // pr_fpvalid and padding
    const at: Record<string, number> = {
      r15: 0, r14: 8, r13: 16, r12: 24, rbp: 32, rbx: 40, r11: 48, r10: 56, r9: 64, r8: 72, rax: 80, rcx: 88,
      rdx: 96, rsi: 104, rdi: 112, orig_rax: 120, rip: 128, cs: 136, eflags: 144, rsp: 152, ss: 160,
      fs_base: 168, gs_base: 176, ds: 184, es: 192, fs: 200, gs: 208,
    };
    expect(Object.keys(at)).toEqual([...PRSTATUS_REGISTERS]);
    PRSTATUS_REGISTERS.forEach((r, i) => {
      expect(u64(308 + (at[r] as number)), r).toBe((BigInt(i + 1) << 56n) | BigInt(0x1000 + 0x11 * i));
    });
  });

  it('takes register values modulo 2^64 and refuses a size that is not a byte count', () => {
    const regs = zeroRegisters();
    regs.rip = -1n;
    expect(new DataView(coreHead(MEM, regs).buffer).getBigUint64(308 + 128, true)).toBe(0xffffffffffffffffn);
    expect(() => coreHead(-1, regs)).toThrow(RangeError);
    expect(() => coreHead(1.5, regs)).toThrow(RangeError);
  });

  it('a 4 GiB guest fits: p_filesz = p_memsz = 2^32', () => {
    const h = new DataView(coreHead(2 ** 32, zeroRegisters()).buffer);
    expect([h.getBigUint64(120 + 32, true), h.getBigUint64(120 + 40, true)]).toEqual([1n << 32n, 1n << 32n]);
  });
});

describe('register block from the vCPU (§15.5) and the trap frame (§10.8)', () => {
  const gpr = Object.fromEntries(GPR_NAMES.map((n, i) => [n, 0x100n + BigInt(i)])) as GeneralRegisterFile;
  const base = initialSpecialRegisters();
  const sregs: SpecialRegisterFile = {
    ...base,
    cs: { ...base.cs, selector: 0x08 },
    ss: { ...base.ss, selector: 0x10 },
    ds: { ...base.ds, selector: 0x18 },
    es: { ...base.es, selector: 0x20 },
    fs: { ...base.fs, selector: 0x28, base: 0x12345000 },
    gs: { ...base.gs, selector: 0x30, base: 0x6789a000 },
    cr2: 0n, cr8: 0n, apicBase: 0n,
  };

  it('without a cookie: every general register from the vCPU, selectors, FS/GS bases, orig_rax 0', () => {
    const r = coreRegisters(gpr, sregs, null);
    for (const n of ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip'] as const) {
      expect(r[n], n).toBe(gpr[n]);
    }
    expect(r.eflags).toBe(gpr.rflags);
    expect([r.cs, r.ss, r.ds, r.es, r.fs, r.gs]).toEqual([0x08n, 0x10n, 0x18n, 0x20n, 0x28n, 0x30n]);
    expect([r.fs_base, r.gs_base, r.orig_rax]).toEqual([0x12345000n, 0x6789a000n, 0n]);
  });

  it('with a cookie: rip, cs, eflags, rsp and ss from the trap frame, the rest from the vCPU', () => {
    const cookie = new Uint8Array(512);
    const c = new DataView(cookie.buffer);
    expect(TRAP_FRAME).toEqual({ cr2: 0, errorCode: 8, rip: 16, cs: 24, rflags: 32, rsp: 40, ss: 48 });
    c.setBigUint64(0, 0xdead0000n, true); // cr2: not a register of the block
    c.setBigUint64(8, 0x3n, true); // error code: neither
    c.setBigUint64(16, 0x100f2fn, true);
    c.setBigUint64(24, 0x8n, true);
    c.setBigUint64(32, 0x10046n, true);
    c.setBigUint64(40, 0x1ffff48n, true);
    c.setBigUint64(48, 0x10n, true);
    const r = coreRegisters(gpr, sregs, cookie);
    expect([r.rip, r.cs, r.eflags, r.rsp, r.ss]).toEqual([0x100f2fn, 0x8n, 0x10046n, 0x1ffff48n, 0x10n]);
    expect([r.rbp, r.rax, r.r15, r.ds, r.fs_base]).toEqual([gpr.rbp, gpr.rax, gpr.r15, 0x18n, 0x12345000n]);
  });

  it('reads the trap frame where the cookie view starts (a view into guest memory)', () => {
    const mem = new Uint8Array(4096);
    const cookie = mem.subarray(1024, 1536);
    new DataView(mem.buffer).setBigUint64(1024 + 16, 0xabcdefn, true);
    expect(coreRegisters(gpr, sregs, cookie).rip).toBe(0xabcdefn);
  });
});
