// x86_64 boot state byte for byte: page tables (docs/abi.md §6.3), GDT (§7.2),
// special and general registers in KVM's layouts (§7.3, §7.4, Appendix A),
// and the boot info / manifest copy / command line placement (§8).
import { describe, expect, it } from 'vitest';
import { GDT_CODE, GDT_DATA, writeGdt, writePageTables } from '../../monitor/arch/x86_64.js';
import { initialRegs, initialSregs, REGS_SIZE, ripOf, SREGS_SIZE } from '../../monitor/backend/kvm/x86.js';
import { buildCmdline, cmdlineGpa, writeBootInfo } from '../../monitor/vm/bootinfo.js';
import { Manifest } from '../../monitor/kernel/manifest.js';
import { manifestBytes, MFT_BLOCK_BASIC } from '../helpers/elf-builder.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;
const P = 1n;
const RW = 2n;
const PS = 0x80n;

const u64 = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset).getBigUint64(off, true);
const u32 = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset).getUint32(off, true);
const u16 = (b: Uint8Array, off: number) => new DataView(b.buffer, b.byteOffset).getUint16(off, true);

/** The expected 0x2000..0x9000 table area for an allocation size, built independently from §6.3. */
function expectedTables(allocSize: number): Uint8Array {
  const t = new Uint8Array(0x9000);
  const v = new DataView(t.buffer);
  v.setBigUint64(0x2000, 0x3000n | P | RW, true);
  for (let i = 0; i < 4; i++) v.setBigUint64(0x3000 + 8 * i, BigInt(0x4000 + i * 0x1000) | P | RW, true);
  v.setBigUint64(0x4000, 0x8000n | P | RW, true);
  for (let k = 1; k * 2 * MiB < allocSize; k++) v.setBigUint64(0x4000 + 8 * k, BigInt(k * 2 * MiB) | P | RW | PS, true);
  for (let j = 0; j < 512; j++) {
    const gpa = j * 0x1000;
    const e = gpa < 0x10000 ? 0n : gpa < 0x100000 ? BigInt(gpa) | P : BigInt(gpa) | P | RW;
    v.setBigUint64(0x8000 + 8 * j, e, true);
  }
  return t;
}

/** Writes the page tables for allocSize into a small buffer full of 0xCC and returns it. */
function tablesFor(allocSize: number, bufSize = 0x10000): Uint8Array {
  const mem = new Uint8Array(bufSize).fill(0xcc);
  writePageTables(mem, allocSize);
  return mem;
}

describe('page tables (§6.3)', () => {
  it.each([
    ['2 MiB', 2 * MiB],
    ['64 MiB', 64 * MiB],
    ['66 MiB', 66 * MiB],
    ['1 GiB', GiB],
    ['1 GiB + 2 MiB', GiB + 2 * MiB],
    ['4094 MiB', 4094 * MiB],
    ['4 GiB', 4 * GiB],
  ])('%s: 0x2000..0x9000 byte for byte', (_name, allocSize) => {
    const mem = tablesFor(allocSize);
    expect(mem.subarray(0x2000, 0x9000)).toEqual(expectedTables(allocSize).subarray(0x2000, 0x9000));
  });

  it('writes nothing outside 0x2000..0x9000', () => {
    const mem = tablesFor(4 * GiB);
    expect(mem.subarray(0, 0x2000).every((b) => b === 0xcc)).toBe(true);
    expect(mem.subarray(0x9000).every((b) => b === 0xcc)).toBe(true);
  });

  it('works on the real guest RAM of a 64 MiB VM', () => {
    const mem = new Uint8Array(64 * MiB);
    writePageTables(mem, mem.length);
    expect(mem.subarray(0, 0x9000)).toEqual(expectedTables(64 * MiB));
    expect(mem.subarray(0x9000).every((b) => b === 0)).toBe(true);
  });

  it('2 MiB: only PD entry 0 (the 4 KiB table) is present', () => {
    const mem = tablesFor(2 * MiB);
    expect(u64(mem, 0x4000)).toBe(0x8003n);
    for (let k = 1; k < 2048; k++) expect(u64(mem, 0x4000 + 8 * k)).toBe(0n);
  });

  it('64 MiB: PD entries 1..31 are 2 MiB pages, 32 and up are zero', () => {
    const mem = tablesFor(64 * MiB);
    expect(u64(mem, 0x4000 + 8)).toBe(0x200083n);
    expect(u64(mem, 0x4000 + 8 * 31)).toBe(BigInt(31 * 2 * MiB) | 0x83n);
    expect(u64(mem, 0x4000 + 8 * 32)).toBe(0n);
  });

  it('4 GiB: all 2048 PD entries are used; the last maps 0xFFE00000', () => {
    const mem = tablesFor(4 * GiB);
    expect(u64(mem, 0x7ff8)).toBe(0xffe00083n);
    // PD entry index = GPA >> 21 across the four contiguous directories.
    for (const gpa of [0x40000000, 0x80000000, 0xc0000000]) {
      expect(u64(mem, 0x4000 + 8 * (gpa / (2 * MiB)))).toBe(BigInt(gpa) | 0x83n);
    }
  });

  it('PML4 and PDPT entries are fixed whatever the size', () => {
    for (const size of [2 * MiB, 4 * GiB]) {
      const mem = tablesFor(size);
      expect(u64(mem, 0x2000)).toBe(0x3003n);
      expect(u64(mem, 0x2008)).toBe(0n);
      expect([0, 1, 2, 3, 4].map((i) => u64(mem, 0x3000 + 8 * i))).toEqual([0x4003n, 0x5003n, 0x6003n, 0x7003n, 0n]);
    }
  });

  it('first 2 MiB: nothing below 0x10000, read-only to 0x100000, read/write above', () => {
    const mem = tablesFor(64 * MiB);
    const pt = (gpa: number) => u64(mem, 0x8000 + (gpa / 0x1000) * 8);
    expect(pt(0)).toBe(0n);
    expect(pt(0x1000)).toBe(0n); // GDT page not mapped
    expect(pt(0xf000)).toBe(0n);
    expect(pt(0x10000)).toBe(0x10001n);
    expect(pt(0xff000)).toBe(0xff001n);
    expect(pt(0x100000)).toBe(0x100003n);
    expect(pt(0x1ff000)).toBe(0x1ff003n);
  });

  it('no U/S, PWT, PCD, A, D, G or NX bits anywhere', () => {
    const mem = tablesFor(4 * GiB);
    for (let off = 0x2000; off < 0x9000; off += 8) {
      const e = u64(mem, off);
      expect(e & ~(0xfffff000n | P | RW | PS)).toBe(0n);
    }
  });

  it('clears stale data in the table area first', () => {
    const mem = new Uint8Array(0x10000).fill(0xff);
    writePageTables(mem, 2 * MiB);
    expect(mem.subarray(0x2000, 0x9000)).toEqual(expectedTables(2 * MiB).subarray(0x2000, 0x9000));
  });
});

describe('GDT (§7.2)', () => {
  it('three descriptors at 0x1000, nothing else touched', () => {
    const mem = new Uint8Array(0x2000).fill(0xcc);
    writeGdt(mem);
    expect(Array.from(mem.subarray(0x1000, 0x1018))).toEqual([
      0, 0, 0, 0, 0, 0, 0, 0,
      0xff, 0xff, 0, 0, 0, 0x99, 0xaf, 0,
      0xff, 0xff, 0, 0, 0, 0x93, 0xcf, 0,
    ]);
    expect(mem[0xfff]).toBe(0xcc);
    expect(mem[0x1018]).toBe(0xcc);
    expect(GDT_CODE).toBe(0x00af99000000ffffn);
    expect(GDT_DATA).toBe(0x00cf93000000ffffn);
  });
});

interface Seg {
  base: bigint;
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
  padding: number;
}

function seg(b: Uint8Array, off: number): Seg {
  return {
    base: u64(b, off),
    limit: u32(b, off + 8),
    selector: u16(b, off + 12),
    type: b[off + 14] as number,
    present: b[off + 15] as number,
    dpl: b[off + 16] as number,
    db: b[off + 17] as number,
    s: b[off + 18] as number,
    l: b[off + 19] as number,
    g: b[off + 20] as number,
    avl: b[off + 21] as number,
    unusable: b[off + 22] as number,
    padding: b[off + 23] as number,
  };
}

describe('special registers (§7.3, struct kvm_sregs)', () => {
  const s = initialSregs();
  const code: Seg = { base: 0n, limit: 0xffffffff, selector: 0x08, type: 9, present: 1, dpl: 0, db: 0, s: 1, l: 1, g: 1, avl: 0, unusable: 0, padding: 0 };
  const data: Seg = { ...code, selector: 0x10, type: 3, db: 1, l: 0 };

  it('is 312 bytes', () => {
    expect(s.length).toBe(312);
    expect(SREGS_SIZE).toBe(312);
  });

  it('CS is the 64-bit code segment', () => {
    expect(seg(s, 0)).toEqual(code);
  });

  it.each([
    ['DS', 24],
    ['ES', 48],
    ['FS', 72],
    ['GS', 96],
    ['SS', 120],
  ])('%s is the data segment', (_name, off) => {
    expect(seg(s, off)).toEqual(data);
  });

  it('TR: type 11 (busy 64-bit TSS), present, everything else 0', () => {
    expect(seg(s, 144)).toEqual({ base: 0n, limit: 0, selector: 0, type: 11, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0, padding: 0 });
  });

  it('LDT: unusable, not present, everything else 0', () => {
    expect(seg(s, 168)).toEqual({ base: 0n, limit: 0, selector: 0, type: 0, present: 0, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 1, padding: 0 });
  });

  it('GDTR base 0x1000 limit 0x17; IDTR base 0 limit 0', () => {
    expect(u64(s, 192)).toBe(0x1000n);
    expect(u16(s, 200)).toBe(0x17);
    expect(Array.from(s.subarray(202, 208))).toEqual([0, 0, 0, 0, 0, 0]);
    expect(u64(s, 208)).toBe(0n);
    expect(u16(s, 216)).toBe(0);
  });

  it('CR0 0x80010021, CR2 0, CR3 0x2000, CR4 0x620, CR8 0, EFER 0x500, APIC base 0', () => {
    expect(u64(s, 224)).toBe(0x80010021n);
    expect(u64(s, 232)).toBe(0n);
    expect(u64(s, 240)).toBe(0x2000n);
    expect(u64(s, 248)).toBe(0x620n);
    expect(u64(s, 256)).toBe(0n);
    expect(u64(s, 264)).toBe(0x500n);
    expect(u64(s, 272)).toBe(0n);
  });

  it('interrupt bitmap all zero', () => {
    expect(s.subarray(280, 312).every((b) => b === 0)).toBe(true);
  });

  it('the whole image, byte for byte', () => {
    const e = new Uint8Array(312);
    const v = new DataView(e.buffer);
    const put = (off: number, x: Seg) => {
      v.setBigUint64(off, x.base, true);
      v.setUint32(off + 8, x.limit, true);
      v.setUint16(off + 12, x.selector, true);
      e.set([x.type, x.present, x.dpl, x.db, x.s, x.l, x.g, x.avl, x.unusable, 0], off + 14);
    };
    put(0, code);
    for (const off of [24, 48, 72, 96, 120]) put(off, data);
    put(144, { ...code, limit: 0, selector: 0, type: 11, s: 0, l: 0, g: 0 });
    put(168, { ...code, limit: 0, selector: 0, type: 0, present: 0, s: 0, l: 0, g: 0, unusable: 1 });
    v.setBigUint64(192, 0x1000n, true);
    v.setUint16(200, 0x17, true);
    v.setBigUint64(224, 0x80010021n, true);
    v.setBigUint64(240, 0x2000n, true);
    v.setBigUint64(248, 0x620n, true);
    v.setBigUint64(264, 0x500n, true);
    expect(s).toEqual(e);
  });
});

describe('general registers (§7.4, struct kvm_regs)', () => {
  it('RIP = entry, RFLAGS = 2, RSP = mem_size - 8, RDI = 0x10000, everything else 0', () => {
    const r = initialRegs(0x100123, 64 * MiB);
    expect(r.length).toBe(144);
    expect(REGS_SIZE).toBe(144);
    const e = new Uint8Array(144);
    const v = new DataView(e.buffer);
    v.setBigUint64(128, 0x100123n, true); // rip
    v.setBigUint64(136, 2n, true); // rflags
    v.setBigUint64(48, BigInt(64 * MiB - 8), true); // rsp
    v.setBigUint64(40, 0x10000n, true); // rdi
    expect(r).toEqual(e);
    expect(ripOf(r)).toBe(0x100123n);
  });

  it('RSP for the largest guests (4 GiB, and 4094 MiB with a net ring)', () => {
    expect(u64(initialRegs(0x100000, 4 * GiB), 48)).toBe(BigInt(4 * GiB - 8));
    expect(u64(initialRegs(0x100000, 4094 * MiB), 48)).toBe(BigInt(4094 * MiB - 8));
    expect((u64(initialRegs(0x100000, 4094 * MiB), 48) + 8n) % 16n).toBe(0n);
  });
});

describe('boot info, manifest copy and command line (§8)', () => {
  const mft = (entries: number) =>
    Manifest.parse(manifestBytes({ devices: Array.from({ length: entries - 1 }, (_, i) => ({ name: `d${i}`, type: MFT_BLOCK_BASIC })) }), 'k');

  it.each([
    [1, 0x100a8],
    [2, 0x10110],
    [64, 0x11a40],
  ])('%i manifest entries → command line at GPA %i', (entries, gpa) => {
    expect(cmdlineGpa(mft(entries).size)).toBe(gpa);
  });

  it('writes the 56-byte boot info at 0x10000 (§8.2 offsets)', () => {
    const mem = new Uint8Array(0x20000).fill(0xcc);
    const m = mft(2);
    writeBootInfo(mem, { memSize: 4094 * MiB, kernelEnd: 0x103000, cpuCycleFreq: 2_999_999_000, hostFeatures: 1, netRing: 4094 * MiB }, m, buildCmdline(['a', 'b']));
    expect(u64(mem, 0x10000)).toBe(BigInt(4094 * MiB)); // mem_size
    expect(u64(mem, 0x10008)).toBe(0x103000n); // kernel_end
    expect(u64(mem, 0x10010)).toBe(2_999_999_000n); // cpu_cycle_freq
    expect(u64(mem, 0x10018)).toBe(0x10110n); // cmdline
    expect(u64(mem, 0x10020)).toBe(0x10038n); // mft
    expect(u32(mem, 0x10028)).toBe(1); // host_features
    expect(u32(mem, 0x1002c)).toBe(0); // guest_features
    expect(u64(mem, 0x10030)).toBe(BigInt(4094 * MiB)); // net_ring
    expect(mem[0xffff]).toBe(0xcc);
  });

  it('copies the manifest to 0x10038 and the NUL-terminated command line after it, in an 8192-byte zeroed buffer', () => {
    const mem = new Uint8Array(0x20000).fill(0xcc);
    const m = mft(2);
    writeBootInfo(mem, { memSize: 64 * MiB, kernelEnd: 0, cpuCycleFreq: 0, hostFeatures: 0, netRing: 0 }, m, buildCmdline(['hello', 'world']));
    expect(mem.subarray(0x10038, 0x10038 + m.size)).toEqual(m.bytes);
    const cmd = 0x10110;
    expect(new TextDecoder().decode(mem.subarray(cmd, cmd + 11))).toBe('hello world');
    expect(mem.subarray(cmd + 11, cmd + 8192).every((b) => b === 0)).toBe(true);
    expect(mem[cmd + 8192]).toBe(0xcc);
    expect(u32(mem, 0x10028)).toBe(0);
    expect(u64(mem, 0x10030)).toBe(0n);
  });

  it('64 entries: the command line buffer ends at 0x13A40', () => {
    const mem = new Uint8Array(0x20000).fill(0xcc);
    const m = mft(64);
    writeBootInfo(mem, { memSize: 64 * MiB, kernelEnd: 0, cpuCycleFreq: 0, hostFeatures: 0, netRing: 0 }, m, buildCmdline(['x'.repeat(8191)]));
    expect(u64(mem, 0x10018)).toBe(0x11a40n);
    expect(mem.subarray(0x11a40, 0x11a40 + 8191).every((b) => b === 0x78)).toBe(true);
    expect(mem[0x11a40 + 8191]).toBe(0); // the NUL
    expect(mem[0x13a40]).toBe(0xcc);
    expect(mem.subarray(0x10038, 0x11a40)).toEqual(m.bytes);
  });

  it('an empty command line is a single NUL', () => {
    const mem = new Uint8Array(0x20000).fill(0xcc);
    writeBootInfo(mem, { memSize: 2 * MiB, kernelEnd: 0, cpuCycleFreq: 0, hostFeatures: 0, netRing: 0 }, mft(1), buildCmdline([]));
    expect(mem[0x100a8]).toBe(0);
  });

  it('the manifest copy carries attached devices (working copy)', () => {
    const mem = new Uint8Array(0x20000);
    const m = mft(2);
    m.attach(1, 9);
    writeBootInfo(mem, { memSize: 2 * MiB, kernelEnd: 0, cpuCycleFreq: 0, hostFeatures: 0, netRing: 0 }, m, buildCmdline([]));
    expect(mem[0x10038 + 8 + 104 + 96]).toBe(1);
  });
});
