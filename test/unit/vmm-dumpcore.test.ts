// The core file a FreeBSD monitor writes (docs/abi.md §18: dumpcore "fills
// FreeBSD's prstatus (version 1, sizes filled in)"): the NT_PRSTATUS note is
// named "FreeBSD" and holds prstatus_t with struct reg (amd64) at 48; the
// offsets below are sys/sys/procfs.h's and x86/include/reg.h's, written out.
// Guest memory stays at the same file offset as in Linux cores.
import { describe, expect, it } from 'vitest';
import { coreHead, MEMORY_OFFSET, NOTE_OFFSET, PRSTATUS_REGISTERS, zeroRegisters } from '../../modules/dumpcore/elf-core.js';

const MEM = 32 << 20;

describe('FreeBSD core head', () => {
  const regs = zeroRegisters();
  PRSTATUS_REGISTERS.forEach((r, i) => (regs[r] = BigInt(0x1000 + 0x11 * i)));
  const head = coreHead(MEM, regs, 'freebsd');
  const v = new DataView(head.buffer);
  const u16 = (o: number) => v.getUint16(o, true);
  const u32 = (o: number) => v.getUint32(o, true);
  const u64 = (o: number) => v.getBigUint64(o, true);
  const PR = NOTE_OFFSET + 12 + 8; // after the note header and "FreeBSD\0"
  const REG = PR + 48;

  it('a 224-byte NT_PRSTATUS note named "FreeBSD", memory still at MEMORY_OFFSET', () => {
    expect(head.length).toBe(MEMORY_OFFSET);
    expect([u32(NOTE_OFFSET), u32(NOTE_OFFSET + 4), u32(NOTE_OFFSET + 8)]).toEqual([8, 224, 1]);
    expect(Buffer.from(head.subarray(NOTE_OFFSET + 12, NOTE_OFFSET + 20)).toString('latin1')).toBe('FreeBSD\0');
    expect(u64(64 + 32)).toBe(244n); // PT_NOTE p_filesz: 12 + 8 + 224
    expect(u64(64 + 56 + 8)).toBe(BigInt(MEMORY_OFFSET)); // PT_LOAD p_offset
    expect(u64(64 + 56 + 32)).toBe(BigInt(MEM));
    expect(head.subarray(PR + 224).every((b) => b === 0)).toBe(true);
  });

  it('prstatus_t version 1 with its three sizes: 224, gregset 176, fpregset 512', () => {
    expect(v.getInt32(PR, true)).toBe(1);
    expect([u64(PR + 8), u64(PR + 16), u64(PR + 24)]).toEqual([224n, 176n, 512n]);
  });

  it('struct reg: r15…r8, rdi, rsi, rbp, rbx, rdx, rcx, rax, then fs/gs/es/ds as u16, rip, cs, rflags, rsp, ss', () => {
    const at = (name: (typeof PRSTATUS_REGISTERS)[number]) => BigInt(0x1000 + 0x11 * PRSTATUS_REGISTERS.indexOf(name));
    const order = ['r15', 'r14', 'r13', 'r12', 'r11', 'r10', 'r9', 'r8', 'rdi', 'rsi', 'rbp', 'rbx', 'rdx', 'rcx', 'rax'] as const;
    order.forEach((name, i) => expect(u64(REG + 8 * i), name).toBe(at(name)));
    expect(u32(REG + 120)).toBe(0); // r_trapno
    expect([u16(REG + 124), u16(REG + 126)]).toEqual([Number(at('fs')), Number(at('gs'))]);
    expect(u32(REG + 128)).toBe(0); // r_err
    expect([u16(REG + 132), u16(REG + 134)]).toEqual([Number(at('es')), Number(at('ds'))]);
    expect([u64(REG + 136), u64(REG + 144), u64(REG + 152), u64(REG + 160), u64(REG + 168)]).toEqual(
      [at('rip'), at('cs'), at('eflags'), at('rsp'), at('ss')],
    );
  });

  it('the Linux layout is unchanged by default', () => {
    expect(Buffer.from(coreHead(MEM, regs)).equals(Buffer.from(coreHead(MEM, regs, 'linux')))).toBe(true);
    expect(u32(NOTE_OFFSET + 4)).not.toBe(new DataView(coreHead(MEM, regs).buffer).getUint32(NOTE_OFFSET + 4, true));
  });
});
