// The gdb stub's protocol side without a VM (modules/gdb/stub.ts,
// registers.ts, breakpoints.ts, target.ts, options.ts, docs/abi.md §16.4–
// §16.6, §16.9): every request gdb 13 sends, over a fake vCPU and fake guest
// memory; the register layout and target description; the breakpoint table
// (debug registers first, int3 beyond, watchpoint pieces, moving a Z0 to an
// int3 to make room, memory that hides int3s); malformed and random
// requests; the options; and a backend without debug primitives.
import { describe, expect, it } from 'vitest';
import { initialSpecialRegisters } from '../../monitor/arch/x86_64.js';
import { type FpuState, type GeneralRegisterFile, GPR_NAMES, type SpecialRegisterFile } from '../../monitor/arch/x86_64-registers.js';
import type { DebugConfig, DebugVcpu } from '../../monitor/backend/debug.js';
import { HostError, OptionError, UsageError } from '../../monitor/errors.js';
import type { SetupContext } from '../../monitor/module.js';
import { checkRegistry, REGISTRY } from '../../monitor/registry.js';
import { alignedPieces, BreakpointTable, type GuestRam, INT3 } from '../../modules/gdb/breakpoints.js';
import { gdbModule, UNSUPPORTED_MESSAGE } from '../../modules/gdb/index.js';
import { configFromOptions, gdbLibraryOption, handleGdbArg, parsePort, validHost } from '../../modules/gdb/options.js';
import { frame, fromHex, latin1, toHex } from '../../modules/gdb/packet.js';
import { REGISTER_COUNT, REGISTERS, REGISTERS_SIZE, registerOffset, RIP, targetXml } from '../../modules/gdb/registers.js';
import { connectHint } from '../../modules/gdb/link.js';
import { GdbStub, MAX_READ, SIGNAL } from '../../modules/gdb/stub.js';
import { checkedRam, VcpuRegisters } from '../../modules/gdb/target.js';
import { GuestMemory } from '../../monitor/vm/memory.js';
import { caseSeed, envCount, fuzzSeed, Prng } from '../helpers/prng.js';
import { NO_PORT_EVENTS } from '../helpers/no-port-events.js';

/** A vCPU that only holds registers and records setDebug. */
class FakeVcpu implements DebugVcpu {
  regs: GeneralRegisterFile = Object.fromEntries(GPR_NAMES.map((n, i) => [n, BigInt(i + 1) * 0x0101010101010101n])) as GeneralRegisterFile;
  sregs: SpecialRegisterFile = { ...initialSpecialRegisters(), cr2: 0n, cr8: 0n, apicBase: 0n };
  fpu: FpuState = {
    st: Array.from({ length: 8 }, (_, i) => Uint8Array.from({ length: 10 }, (_, k) => i * 16 + k)),
    fcw: 0x37f, fsw: 0, ftw: 0, fop: 0x123, fip: 0x1122334455667788n, fdp: 0x99aabbccddeeff00n,
    xmm: Array.from({ length: 16 }, (_, i) => Uint8Array.from({ length: 16 }, (_, k) => i * 16 + k)),
    mxcsr: 0x1f80,
  };
  debug: DebugConfig[] = [];
  sets = 0;
  getRegisters() { return { ...this.regs }; }
  setRegisters(r: GeneralRegisterFile) { this.regs = { ...r }; this.sets++; }
  getSpecialRegisters() { return structuredClone(this.sregs); }
  setSpecialRegisters(s: SpecialRegisterFile) { this.sregs = structuredClone(s); }
  getFpu() { return this.fpu; }
  setDebug(c: DebugConfig) { this.debug.push(c); }
  interrupt() { return true; }
}

const MEM = 0x200000;
const TEXT = [0x100000, 0x101000] as const; // host read-only, like an ELF text segment

/** Guest memory as the monitor's CheckedMemory, with a read-only text page. */
function guestMemory(): { bytes: Uint8Array; ram: GuestRam } {
  const mem = new GuestMemory(new ArrayBuffer(MEM));
  mem.protect({ start: TEXT[0], end: TEXT[1], readable: true, writable: false });
  return { bytes: mem.bytes, ram: checkedRam(mem) };
}

/** Writable everywhere: what the int3 fallback gets where the monitor lets debuggers write text. */
function openRam(bytes: Uint8Array): GuestRam {
  return {
    read: (a, n) => (a < BigInt(bytes.length) ? bytes.slice(Number(a), Math.min(bytes.length, Number(a) + n)) : null),
    write: (a, b) => {
      if (a + BigInt(b.length) > BigInt(bytes.length)) return false;
      bytes.set(b, Number(a));
      return true;
    },
  };
}

function stub(ram?: GuestRam) {
  const vcpu = new FakeVcpu();
  const g = guestMemory();
  const registers = new VcpuRegisters(vcpu);
  const breakpoints = new BreakpointTable(ram ?? g.ram);
  const s = new GdbStub({ registers, breakpoints }, targetXml);
  const ask = (p: string) => s.handle(p);
  const reply = (p: string) => s.handle(p).reply;
  return { vcpu, bytes: g.bytes, registers, breakpoints, stub: s, ask, reply };
}

const le64 = (v: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return toHex(b);
};

describe('gdb stub: session requests', () => {
  it('answers qSupported with the packet size and the features it has', () => {
    const { reply } = stub();
    expect(reply('qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386')).toBe('PacketSize=4000;qXfer:features:read+;QStartNoAckMode+;swbreak+;hwbreak+');
  });

  it('answers the queries gdb makes when it connects', () => {
    const { ask, reply } = stub();
    expect(ask('QStartNoAckMode')).toEqual({ reply: 'OK', noAckAfter: true, next: 'serve' });
    expect(reply('vMustReplyEmpty')).toBe('');
    expect(reply('vCont?')).toBe('');
    expect(reply('Hg0')).toBe('OK');
    expect(reply('Hc-1')).toBe('OK');
    expect(reply('qTStatus')).toBe('');
    expect(reply('qAttached')).toBe('1');
    expect(reply('qC')).toBe('QC1');
    expect(reply('qfThreadInfo')).toBe('m1');
    expect(reply('qsThreadInfo')).toBe('l');
    expect(reply('T1')).toBe('OK');
    expect(reply('qOffsets')).toBe('');
    expect(reply('qSymbol::')).toBe('OK');
    expect(reply('?')).toBe('T05thread:1;');
  });

  it('serves target.xml in pieces (m … l), escaped; other annexes E00', () => {
    const { reply } = stub();
    let xml = '';
    for (let off = 0; ; off += 100) {
      const r = reply(`qXfer:features:read:target.xml:${off.toString(16)},64`) ?? '';
      expect(r[0]).toMatch(/[ml]/);
      xml += r.slice(1);
      if (r[0] === 'l') break;
      // gdb asks again from where the data ended
      off = xml.length - 100;
    }
    expect(xml).toBe(targetXml());
    expect(reply('qXfer:features:read:other.xml:0,100')).toBe('E00');
    expect(reply(`qXfer:features:read:target.xml:${(xml.length + 1).toString(16)},10`)).toBe('E01');
    expect(reply('qXfer:features:read:target.xml:zz')).toBe('E01');
  });

  it('k kills (no reply), D detaches (OK), c and s resume', () => {
    const { ask } = stub();
    expect(ask('k')).toEqual({ next: 'kill' });
    expect(ask('vKill;1')).toEqual({ reply: 'OK', next: 'kill' });
    expect(ask('D')).toEqual({ reply: 'OK', next: 'detach' });
    expect(ask('c')).toEqual({ next: 'continue' });
    expect(ask('s')).toEqual({ next: 'step' });
    expect(ask('C0b')).toEqual({ next: 'continue' });
    expect(ask('S05')).toEqual({ next: 'step' });
  });

  it('c ADDR / s ADDR / C sig;ADDR set rip first', () => {
    const { ask, vcpu } = stub();
    expect(ask('c100123')).toEqual({ next: 'continue' });
    expect(vcpu.regs.rip).toBe(0x100123n);
    expect(ask('S05;100200')).toEqual({ next: 'step' });
    expect(vcpu.regs.rip).toBe(0x100200n);
    expect(ask('cxyz').reply).toBe('E01');
    expect(ask('Cq;1').reply).toBe('E01');
  });

  it('stop replies name the signal, the thread and the reason', () => {
    const { stub: s, reply } = stub();
    expect(s.stopped({ signal: SIGNAL.INT })).toBe('T02thread:1;');
    expect(reply('?')).toBe('T02thread:1;');
    expect(s.stopped({ signal: SIGNAL.TRAP, reason: { kind: 'swbreak' } })).toBe('T05thread:1;swbreak:;');
    expect(s.stopped({ signal: SIGNAL.TRAP, reason: { kind: 'hwbreak' } })).toBe('T05thread:1;hwbreak:;');
    expect(s.stopped({ signal: SIGNAL.TRAP, reason: { kind: 'watch', address: 0x103000n } })).toBe('T05thread:1;watch:103000;');
    expect(s.stopped({ signal: SIGNAL.SEGV })).toBe('T0bthread:1;');
  });

  it('unknown requests get the empty reply', () => {
    const { reply } = stub();
    for (const p of ['', 'Y', 'qRcmd,6869', 'vFile:open:', 'QNonStop:1', '!', 'R00', 'Z9,0,1', 'bc', 'qXfer:memory-map:read::0,100']) {
      expect(reply(p), p).toBe('');
    }
  });
});

describe('gdb stub: registers', () => {
  it('describes rax … r15, rip, eflags, the selectors, x87, SSE, fs_base and gs_base, numbered in order', () => {
    const names = REGISTERS.map((r) => r.name);
    expect(names.slice(0, 24)).toEqual([
      'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
      'rip', 'eflags', 'cs', 'ss', 'ds', 'es', 'fs', 'gs',
    ]);
    expect(names.slice(-2)).toEqual(['fs_base', 'gs_base']);
    expect(REGISTERS[RIP]?.name).toBe('rip');
    expect(REGISTER_COUNT).toBe(59);
    expect(REGISTERS_SIZE).toBe(16 * 8 + 8 + 4 + 6 * 4 + 8 * 10 + 8 * 4 + 16 * 16 + 4 + 8 + 8);
    const xml = targetXml();
    expect(xml).toContain('<architecture>i386:x86-64</architecture>');
    expect(xml).toContain('<feature name="org.gnu.gdb.i386.core">');
    expect(xml).toContain('<feature name="org.gnu.gdb.i386.sse">');
    expect(xml).toContain('<feature name="org.gnu.gdb.i386.segments">');
    REGISTERS.forEach((r, n) => expect(xml).toContain(`<reg name="${r.name}" bitsize="${r.bits}" type="${r.type}" regnum="${n}"`));
    expect(xml).not.toMatch(/[$#*}]/); // nothing to escape
  });

  it('g: every general register little-endian in gdb order, r12–r15 included; eflags and selectors 4 bytes', () => {
    const { reply, vcpu } = stub();
    vcpu.sregs.fs.base = 0x12345000;
    const g = fromHex(reply('g') ?? '') as Uint8Array;
    expect(g).toHaveLength(REGISTERS_SIZE);
    const v = new DataView(g.buffer);
    const order = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip'] as const;
    order.forEach((name, i) => expect(v.getBigUint64(8 * i, true), name).toBe(vcpu.regs[name]));
    expect(v.getUint32(136, true)).toBe(Number(vcpu.regs.rflags & 0xffffffffn));
    expect([140, 144, 148, 152, 156, 160].map((o) => v.getUint32(o, true))).toEqual([0x08, 0x10, 0x10, 0x10, 0x10, 0x10]);
    expect(Array.from(g.subarray(164, 174))).toEqual(Array.from(vcpu.fpu.st[0] ?? []));
    expect(v.getUint32(244, true)).toBe(0x37f); // fctrl
    expect(v.getUint32(252, true)).toBe(0xffff); // ftag: all empty
    expect(v.getUint32(256, true)).toBe(0x11223344); // fiseg: upper half of fip
    expect(v.getUint32(260, true)).toBe(0x55667788); // fioff
    expect(v.getUint32(272, true)).toBe(0x123); // fop
    expect(Array.from(g.subarray(276 + 16, 276 + 32))).toEqual(Array.from(vcpu.fpu.xmm[1] ?? []));
    expect(v.getUint32(532, true)).toBe(0x1f80);
    expect(v.getBigUint64(536, true)).toBe(0x12345000n);
    expect(registerOffset(REGISTER_COUNT - 1)).toBe(544);
  });

  it('p reads one register; P writes r12–r15, rip, eflags (keeping the upper half), selectors and fs_base', () => {
    const { reply, vcpu, registers } = stub();
    expect(reply('pc')).toBe(le64(vcpu.regs.r12));
    expect(reply('Pc=' + le64(0xc0ffee0000000012n))).toBe('OK');
    expect(reply('Pf=' + le64(0xf1f2f3f4f5f6f7f8n))).toBe('OK');
    expect([vcpu.regs.r12, vcpu.regs.r15]).toEqual([0xc0ffee0000000012n, 0xf1f2f3f4f5f6f7f8n]);
    expect(reply('pc')).toBe(le64(0xc0ffee0000000012n));
    vcpu.regs.rflags = 0x1_0000_0202n;
    registers.invalidate(); // as at every stop
    expect(reply('P11=87080000')).toBe('OK');
    expect(vcpu.regs.rflags).toBe(0x1_0000_0887n);
    expect(reply('P12=1b000000')).toBe('OK');
    expect(vcpu.sregs.cs.selector).toBe(0x1b);
    expect(reply('P39=' + le64(0x7000n))).toBe('OK');
    expect(vcpu.sregs.fs.base).toBe(0x7000);
  });

  it('P refuses what it cannot write: x87/SSE, a wrong size, a base beyond 2^53, an unknown number', () => {
    const { reply } = stub();
    expect(reply('P18=' + '00'.repeat(10))).toBe('E01'); // st0
    expect(reply('P28=' + '00'.repeat(16))).toBe('E01'); // xmm0
    expect(reply('P0=00')).toBe('E01');
    expect(reply('P39=' + le64(1n << 60n))).toBe('E01');
    expect(reply('P12=00000100')).toBe('E01'); // selector > 0xffff
    expect(reply('P3b=' + le64(0n))).toBe('E01');
    expect(reply('p3b')).toBe('E01');
    expect(reply('pzz')).toBe('E01');
    expect(reply('P0')).toBe('E01');
  });

  it('G writes what changed and leaves the rest; changed x87/SSE bytes or a wrong length are E01', () => {
    const { reply, vcpu } = stub();
    const g = fromHex(reply('g') ?? '') as Uint8Array;
    new DataView(g.buffer).setBigUint64(8 * 13, 0x1313n, true);
    const before = vcpu.sets;
    expect(reply(`G${toHex(g)}`)).toBe('OK');
    expect(vcpu.regs.r13).toBe(0x1313n);
    expect(vcpu.sets).toBe(before + 1);
    expect(reply(`G${toHex(g)}`)).toBe('OK');
    expect(vcpu.sets).toBe(before + 1); // nothing changed, nothing written
    g[300] = (g[300] ?? 0) ^ 1; // inside xmm
    expect(reply(`G${toHex(g)}`)).toBe('E01');
    expect(reply(`G${toHex(g.subarray(1))}`)).toBe('E01');
    expect(reply('Gzz')).toBe('E01');
  });
});

describe('gdb stub: memory', () => {
  it('m reads guest memory, M and X write it; outside guest memory E01', () => {
    const { reply, bytes } = stub();
    bytes.set([1, 2, 3, 4], 0x2000);
    expect(reply('m2000,4')).toBe('01020304');
    expect(reply('M2000,2:aabb')).toBe('OK');
    expect(Array.from(bytes.subarray(0x2000, 0x2004))).toEqual([0xaa, 0xbb, 3, 4]);
    expect(reply(`X2002,2:}\x03}]`)).toBe('OK'); // escaped # and }
    expect(Array.from(bytes.subarray(0x2002, 0x2004))).toEqual([0x23, 0x7d]);
    expect(reply('X2000,0:')).toBe('OK');
    expect(reply(`m${MEM.toString(16)},1`)).toBe('E01');
    expect(reply('m100000000,1')).toBe('E01');
    expect(reply('mffffffffffffffff,10')).toBe('E01');
    expect(reply(`M${MEM.toString(16)},1:00`)).toBe('E01');
  });

  it('caps reads to what a reply can hold and answers a read running off the end with what exists', () => {
    const { reply } = stub();
    expect(reply('m0,ffffffffffffffff')).toHaveLength(2 * MAX_READ);
    expect(2 * MAX_READ + 8).toBeLessThanOrEqual(0x4000);
    // CheckedMemory's strict end (§9.3): the last byte stays out of reach.
    expect(reply(`m${(MEM - 4).toString(16)},10`)).toBe('000000');
    expect(reply('m10,0')).toBe('');
  });

  it('refuses writes to host-protected text (E01) but reads it', () => {
    const { reply } = stub();
    expect(reply(`M${TEXT[0].toString(16)},1:cc`)).toBe('E01');
    expect(reply(`m${TEXT[0].toString(16)},2`)).toBe('0000');
  });

  it('malformed memory requests are E01', () => {
    const { reply } = stub();
    for (const p of ['m', 'm10', 'm,1', 'mzz,1', 'm1,zz', 'M10,2', 'M10,2:aa', 'M10,1:zz', 'M10,1:aaa', 'X10,2:a', 'X10,1:}', 'X10']) {
      expect(reply(p), p).toBe('E01');
    }
  });
});

describe('gdb stub: breakpoints', () => {
  it('Z0 uses the four debug registers first, then int3 where memory can be written', () => {
    const mem = new Uint8Array(MEM);
    mem.fill(0x90, 0x100000, 0x100100);
    const { reply, breakpoints } = stub(openRam(mem));
    for (let i = 0; i < 4; i++) expect(reply(`Z0,${(0x100000 + i).toString(16)},1`)).toBe('OK');
    expect(breakpoints.hardware().map((h) => h.address)).toEqual([0x100000n, 0x100001n, 0x100002n, 0x100003n]);
    expect(breakpoints.hardware().every((h) => h.kind === 'exec' && h.length === 1)).toBe(true);
    expect(breakpoints.hasInt3()).toBe(false);
    expect(reply('Z0,100010,1')).toBe('OK');
    expect(mem[0x100010]).toBe(INT3);
    expect(breakpoints.hasInt3()).toBe(true);
    expect(breakpoints.isInt3(0x100010n)).toBe(true);
    expect(reply('m10000f,3')).toBe('909090'); // gdb sees the original byte
    expect(reply('M100010,1:c3')).toBe('OK'); // a write under the int3 keeps it
    expect(mem[0x100010]).toBe(INT3);
    expect(reply('z0,100010,1')).toBe('OK');
    expect(mem[0x100010]).toBe(0xc3);
    expect(reply('z0,100001,1')).toBe('OK');
    expect(breakpoints.hardware()).toHaveLength(3);
    expect(reply('Z0,100000,1')).toBe('OK'); // already there: unchanged
    expect(breakpoints.hardware()).toHaveLength(3);
    expect(reply('z0,123456,1')).toBe('OK'); // not there: nothing to do
  });

  it('int3 into host-protected text is refused (E01) when the monitor offers no way to write it', () => {
    const { reply } = stub();
    for (let i = 0; i < 4; i++) expect(reply(`Z0,${(0x100000 + i).toString(16)},1`)).toBe('OK');
    expect(reply('Z0,100010,1')).toBe('E01');
    expect(reply('Z0,2000,1')).toBe('OK'); // writable data: an int3 works there
  });

  it('Z1 needs a debug register; Z2–Z4 take one per aligned piece; a full table is E01', () => {
    const { reply, breakpoints } = stub();
    expect(reply('Z2,3000,8')).toBe('OK');
    expect(reply('Z3,3008,4')).toBe('OK');
    expect(reply('Z4,3010,2')).toBe('OK');
    expect(reply('Z1,100000,1')).toBe('OK');
    expect(breakpoints.hardware().map((h) => [h.kind, h.length])).toEqual([['write', 8], ['access', 4], ['access', 2], ['exec', 1]]);
    expect(reply('Z1,100004,1')).toBe('E01');
    expect(reply('Z2,4000,1')).toBe('E01');
    expect(reply('z4,3010,2')).toBe('OK');
    expect(reply('Z2,4001,3')).toBe('E01'); // needs two: 1 + 2
    expect(reply('Z2,4001,1')).toBe('OK');
    expect(reply('Z2,0,0')).toBe('E01');
    expect(reply('Z2,0,21')).toBe('E01'); // more than 32 bytes
    expect(alignedPieces(0x4001n, 3)).toEqual([{ address: 0x4001n, length: 1 }, { address: 0x4002n, length: 2 }]);
    expect(alignedPieces(0x4004n, 12)).toEqual([{ address: 0x4004n, length: 4 }, { address: 0x4008n, length: 8 }]);
  });

  it('a watchpoint that finds the registers taken by Z0s moves one to an int3', () => {
    const mem = new Uint8Array(MEM);
    const { reply, breakpoints } = stub(openRam(mem));
    for (let i = 0; i < 4; i++) expect(reply(`Z0,${(0x100000 + 16 * i).toString(16)},1`)).toBe('OK');
    expect(reply('Z2,3000,8')).toBe('OK');
    expect(breakpoints.hardware().map((h) => h.kind)).toEqual(['exec', 'exec', 'exec', 'write']);
    expect(mem[0x100000]).toBe(INT3);
    expect(breakpoints.isInt3(0x100000n)).toBe(true);
    // Without writable text there is nothing to move: E01.
    const locked = stub();
    for (let i = 0; i < 4; i++) locked.reply(`Z0,${(0x100000 + 16 * i).toString(16)},1`);
    expect(locked.reply('Z2,3000,8')).toBe('E01');
  });

  it('tells which breakpoint a debug status names', () => {
    const { reply, breakpoints } = stub();
    reply('Z0,100000,1');
    reply('Z2,3001,3'); // pieces in slots 1 and 2
    reply('Z1,100020,1');
    expect(breakpoints.hitBy(0xffff0ff1n)).toEqual({ kind: 'swbreak' });
    expect(breakpoints.hitBy(0xffff0ff4n)).toEqual({ kind: 'watch', address: 0x3001n });
    expect(breakpoints.hitBy(0xffff0ff8n)).toEqual({ kind: 'hwbreak' });
    expect(breakpoints.hitBy(0xffff0ff9n)).toEqual({ kind: 'swbreak' });
    expect(breakpoints.hitBy(0xffff0ffcn)).toEqual({ kind: 'watch', address: 0x3001n }); // data beats exec
    expect(breakpoints.hitBy(0xffff4ff0n)).toBeUndefined(); // a step
    expect(reply('Z3,3010,4')).toBe('E01'); // all four taken, and the Z0 cannot move into read-only text
    reply('z2,3001,3');
    expect(reply('Z3,3010,4')).toBe('OK'); // slot 2 now
    expect(breakpoints.hitBy(0x4n)).toEqual({ kind: 'rwatch', address: 0x3010n });
  });

  it('clear() takes every int3 out and frees the registers', () => {
    const mem = new Uint8Array(MEM).fill(0x55);
    const { reply, breakpoints } = stub(openRam(mem));
    for (let i = 0; i < 6; i++) reply(`Z0,${(0x100000 + i).toString(16)},1`);
    expect(mem[0x100004]).toBe(INT3);
    breakpoints.clear();
    expect(mem[0x100004]).toBe(0x55);
    expect(mem[0x100005]).toBe(0x55);
    expect(breakpoints.hardware()).toEqual([]);
    expect(breakpoints.hasInt3()).toBe(false);
  });

  it('malformed Z packets are E01; a type above 4 is not supported', () => {
    const { reply } = stub();
    for (const p of ['Z', 'Z0', 'Z0,1', 'Z0,,1', 'Zx,1,1', 'Z0,1,1,1', 'Z0,zz,1', 'Z0,1ffffffffffffffff,1', 'z0,1']) expect(reply(p), p).toBe('E01');
    expect(reply('Z5,100000,1')).toBe('');
    expect(reply('Z0,100000,1;X1,0f')).toBe('OK'); // a condition gdb evaluates itself
  });
});

describe('gdb stub fuzz (seeded; FUZZ_SEED, FUZZ_CASES)', () => {
  it('answers random and mutated requests with a frameable reply, never throwing', () => {
    const base = fuzzSeed(0x57ab);
    const cases = envCount('FUZZ_CASES', 300);
    const seeds = ['g', 'G00', 'p10', 'P10=00', 'm100000,40', 'M2000,1:00', 'X2000,1:a', 'c', 's', 'Z0,100000,1', 'z2,3000,8',
      'qSupported:x', 'qXfer:features:read:target.xml:0,fff', 'qAttached', 'vCont?', '?', 'H', 'D', 'k', 'QStartNoAckMode'];
    for (let c = 0; c < cases; c++) {
      const seed = caseSeed(base, c);
      const rng = new Prng(seed);
      const mem = new Uint8Array(MEM);
      const { ask, stub: s } = stub(openRam(mem));
      for (let k = 0; k < 40; k++) {
        let p = rng.pick(seeds);
        const edits = rng.range(0, 4);
        for (let e = 0; e < edits; e++) {
          const at = rng.int(p.length + 1);
          const what = rng.weighted([3, 2, 2, 1]);
          if (what === 0) p = p.slice(0, at) + String.fromCharCode(rng.int(256)) + p.slice(at);
          else if (what === 1) p = p.slice(0, at) + p.slice(at + 1);
          else if (what === 2) p = p.slice(0, at) + rng.pick(['ffffffffffffffff', ',', ':', ';', '=', '}', '0', '10000000000000000']) + p.slice(at);
          else p = p + latin1(rng.bytes(rng.range(0, 64)));
        }
        const out = ask(p);
        expect(['serve', 'continue', 'step', 'detach', 'kill'], `seed ${seed} ${JSON.stringify(p)}`).toContain(out.next);
        if (out.reply !== undefined) expect(() => frame(out.reply as string), `seed ${seed} ${JSON.stringify(p)}`).not.toThrow();
        expect(s.internalErrors, `seed ${seed} ${JSON.stringify(p)}`).toBe(0);
      }
    }
  });
});

describe('gdb module options', () => {
  it('--gdb, --gdb-port=N (0..65535), --gdb-host=ADDR; malformed values are usage errors', () => {
    const c = { enabled: false, port: 1234, host: '127.0.0.1' };
    expect(handleGdbArg('--gdb', c)).toBe(true);
    expect(handleGdbArg('--gdb-port=0', c)).toBe(true);
    expect(handleGdbArg('--gdb-host=::1', c)).toBe(true);
    expect(c).toEqual({ enabled: true, port: 0, host: '::1' });
    expect(handleGdbArg('--gdbx', c)).toBe(false);
    expect(handleGdbArg('--gdb-port', c)).toBe(false);
    for (const bad of ['--gdb-port=', '--gdb-port=65536', '--gdb-port=-1', '--gdb-port=0x10', '--gdb-port=12a', '--gdb-port=999999']) {
      expect(() => handleGdbArg(bad, c), bad).toThrow(new UsageError('Malformed argument to --gdb-port'));
    }
    for (const bad of ['--gdb-host=', '--gdb-host=a b', '--gdb-host=-x', '--gdb-host=a..b', '--gdb-host=1.2.3.4:5']) {
      expect(() => handleGdbArg(bad, c), bad).toThrow(new UsageError('Malformed argument to --gdb-host'));
    }
    expect(parsePort('65535')).toBe(65535);
    expect([validHost('0.0.0.0'), validHost('localhost'), validHost('fe80::1'), validHost('gdb-host.example')]).toEqual([true, true, true, true]);
  });

  it('the library option gdb: { port?, host? } is checked on the caller\'s thread', () => {
    expect(() => gdbLibraryOption.check(undefined)).not.toThrow();
    expect(() => gdbLibraryOption.check({})).not.toThrow();
    expect(() => gdbLibraryOption.check({ port: 0, host: '::' })).not.toThrow();
    for (const [bad, message] of [
      [true, 'gdb must be an object: { port?, host? }'], [null, 'gdb must be an object: { port?, host? }'], [[1], 'gdb must be an object: { port?, host? }'],
      [{ port: 70000 }, 'gdb.port must be an integer in 0..65535'], [{ port: '1234' }, 'gdb.port must be an integer in 0..65535'],
      [{ port: 1.5 }, 'gdb.port must be an integer in 0..65535'], [{ host: 7 }, 'gdb.host must be an IP address or a host name'],
      [{ host: 'a b' }, 'gdb.host must be an IP address or a host name'], [{ prot: 1 }, 'unknown option: gdb.prot'],
    ] as const) {
      expect(() => gdbLibraryOption.check(bad), JSON.stringify(bad)).toThrow(new OptionError(message));
    }
    expect(configFromOptions({})).toEqual({ enabled: false, port: 1234, host: '127.0.0.1' });
    expect(configFromOptions({ gdb: { port: 4000 } })).toEqual({ enabled: true, port: 4000, host: '127.0.0.1' });
  });

  it('is in the registry, after dumpcore, taking the library option gdb', () => {
    expect(REGISTRY.map((d) => d.name).slice(-2)).toEqual(['dumpcore', 'gdb']);
    expect(gdbModule.library.map((o) => o.name)).toEqual(['gdb']);
    expect(() => checkRegistry(REGISTRY)).not.toThrow();
    expect(gdbModule.cli.usage.join('\n')).toMatch(/--gdb \].*\n.*--gdb-port=1234.*\n.*--gdb-host=127\.0\.0\.1/);
  });

  it('names the host gdb should connect to', () => {
    expect(['127.0.0.1', '0.0.0.0', '::', 'localhost'].map(connectHint)).toEqual(['localhost', 'localhost', 'localhost', 'localhost']);
    expect(connectHint('10.1.2.3')).toBe('10.1.2.3');
    expect(connectHint('fe80::1')).toBe('[fe80::1]');
  });
});

describe('gdb module on a backend without debug primitives (§16.9)', () => {
  const ctx = (): SetupContext => {
    const hooks: unknown[] = [];
    return {
      memory: new GuestMemory(new ArrayBuffer(0x10000)),
      debugMemory: { read: () => null, write: () => false },
      mft: {} as SetupContext['mft'],
      hypercall: () => {},
      onHalt: (f) => hooks.push(f),
      onVmexit: (f) => hooks.push(f),
      pollFd: () => {},
      run: { ending: () => false, waitWritable: () => true },
      countBytes: () => {},
      vcpu: { backend: 'none', token: -1 },
      warn: () => {},
      memSize: 0x10000,
      portEvents: NO_PORT_EVENTS,
      bootInfo: { hostFeatures: 0, netRing: 0 },
      ringCounters: new Float64Array(130),
      get hooks() { return hooks; },
    } as SetupContext & { hooks: unknown[] };
  };
  const env = { host: {} as never, output: () => {} };

  it('refuses with one line, from the CLI option or the library option', () => {
    const m = gdbModule.create({}, env);
    expect(m.handleArg?.('--gdb', {} as never)).toBe(true);
    expect(() => m.setup(ctx())).toThrow(new HostError(UNSUPPORTED_MESSAGE));
    expect(() => gdbModule.create({ gdb: {} }, env).setup(ctx())).toThrow(new HostError(UNSUPPORTED_MESSAGE));
    expect(UNSUPPORTED_MESSAGE).toBe('GDB support not implemented on this backend/architecture');
  });

  it('without --gdb it does nothing at all, debug primitives or not', () => {
    const c = ctx() as SetupContext & { hooks: unknown[] };
    const m = gdbModule.create({}, env);
    m.setup(c);
    expect(c.hooks).toEqual([]);
    const sandbox = () => (m as { sandbox?: () => unknown }).sandbox?.();
    expect(sandbox()).toBeUndefined();
    m.handleArg?.('--gdb', {} as never);
    expect(sandbox()).toBe('debugger'); // confined, with the stub's additions to the filter
    m.close?.();
  });
});
