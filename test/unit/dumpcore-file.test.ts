// The dumpcore module without KVM (modules/dumpcore): guest memory read
// through CheckedMemory (mem_size found from the checks, the last byte, host
// no-access segments), the sparse core file and its exclusive creation, the
// messages of docs/abi.md §15, the option and the DIR checks, and the HALT
// hook with a made-up vCPU — also one without debug primitives. Files go to
// a private temporary directory.
import { closeSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GPR_NAMES, type GeneralRegisterFile, type SpecialRegisterFile } from '../../monitor/arch/x86_64-registers.js';
import { initialSpecialRegisters } from '../../monitor/arch/x86_64.js';
import type { DebugVcpu } from '../../monitor/backend/debug.js';
import { HostError, OptionError } from '../../monitor/errors.js';
import type { HaltHook, SetupContext } from '../../monitor/module.js';
import { REGISTRY } from '../../monitor/registry.js';
import { GuestMemory } from '../../monitor/vm/memory.js';
import { coreFileName, corePath, createExclusive, writeCore } from '../../modules/dumpcore/core-file.js';
import { MSG_ERRORS, MSG_NO_DEBUG } from '../../modules/dumpcore/dump.js';
import { coreHead, MEMORY_OFFSET, zeroRegisters } from '../../modules/dumpcore/elf-core.js';
import { guestImage, HOST_PAGE, probeSize } from '../../modules/dumpcore/guest-image.js';
import dumpcoreDefault, { dumpcoreModule } from '../../modules/dumpcore/index.js';
import { checkDumpDir, parseDumpcoreOption } from '../../modules/dumpcore/options.js';

const TMP = mkdtempSync(join(tmpdir(), 'ukvm-dumpcore-'));
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => {
  const d = join(TMP, `d${dirs++}`);
  mkdirSync(d);
  return d;
};

const MIB = 1 << 20;

/** Guest memory of `size` bytes (alloc = size + extra, like a net ring above mem_size). */
function memory(size: number, extra = 0): GuestMemory {
  return new GuestMemory(new ArrayBuffer(size + extra), size);
}

describe('guest memory through CheckedMemory', () => {
  it('finds mem_size from the checks, not the allocation (a ring above it is left out)', () => {
    expect(probeSize(memory(2 * MIB))).toBe(2 * MIB);
    expect(probeSize(memory(4 * MIB, 2 * MIB))).toBe(4 * MIB);
    expect(probeSize(memory(12345))).toBe(12345);
    expect(guestImage(memory(6 * MIB, 2 * MIB)).size).toBe(6 * MIB);
  });

  it('reaches the last byte of guest memory, which §9.3 alone would refuse', () => {
    const mem = memory(2 * MIB);
    mem.bytes[2 * MIB - 1] = 0xa5;
    expect(() => mem.region(0, 0, 2 * MIB, 'read')).toThrow(/Invalid guest access/);
    const image = guestImage(mem);
    const top = image.view(2 * MIB - HOST_PAGE, HOST_PAGE);
    expect(top?.length).toBe(HOST_PAGE);
    expect(top?.[HOST_PAGE - 1]).toBe(0xa5);
    expect(image.view(0, 2 * MIB)?.[2 * MIB - 1]).toBe(0xa5);
  });

  it('gives null for a range the monitor may not read (a host no-access segment)', () => {
    const mem = memory(2 * MIB);
    mem.protect({ start: 0x200000 - 0x3000, end: 0x200000, readable: false, writable: false });
    mem.protect({ start: 0x100000, end: 0x101000, readable: true, writable: false }); // read-only: readable
    const image = guestImage(mem);
    expect(image.view(0x100000, HOST_PAGE)).not.toBeNull();
    expect(image.view(0x200000 - 0x4000, HOST_PAGE)).not.toBeNull();
    expect(image.view(0x200000 - 0x3000, HOST_PAGE)).toBeNull();
    expect(image.view(0x200000 - HOST_PAGE, HOST_PAGE)).toBeNull(); // the top page, widened only when readable
  });

  it('refuses ranges outside guest memory and unaligned ranges reaching the top', () => {
    const image = guestImage(memory(2 * MIB));
    expect(() => image.view(2 * MIB - HOST_PAGE, 2 * HOST_PAGE)).toThrow(RangeError);
    expect(() => image.view(-1, 1)).toThrow(RangeError);
    expect(() => image.view(0, 0)).toThrow(RangeError);
    expect(() => image.view(2 * MIB - 10, 10)).toThrow(RangeError);
  });
});

describe('exclusive creation (§15.3)', () => {
  it('names the file core.solo5-hvt.PID, DIR/NAME as printed', () => {
    expect(coreFileName(4242)).toBe('core.solo5-hvt.4242');
    expect(corePath('cores', 7)).toBe('cores/core.solo5-hvt.7');
    expect(corePath('/var/cores/', 7)).toBe('/var/cores/core.solo5-hvt.7');
  });

  it('creates the file with mode 0600', () => {
    const path = join(freshDir(), coreFileName(1));
    const old = process.umask(0);
    try {
      closeSync(createExclusive(path));
    } finally {
      process.umask(old);
    }
    expect(statSync(path).mode & 0o7777).toBe(0o600);
  });

  it('never clobbers an existing file: EEXIST, its bytes untouched', () => {
    const path = join(freshDir(), coreFileName(2));
    writeFileSync(path, 'precious');
    expect(() => createExclusive(path)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(readFileSync(path, 'utf8')).toBe('precious');
  });

  it('does not follow a symbolic link of that name, even a dangling one', () => {
    const dir = freshDir();
    const target = join(dir, 'elsewhere');
    symlinkSync(target, join(dir, coreFileName(3)));
    expect(() => createExclusive(join(dir, coreFileName(3)))).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(existsSync(target)).toBe(false);
  });
});

describe('the sparse core file (§15.6)', () => {
  /** Writes a core of mem and returns its path, the counts and the file bytes. */
  function dumpOf(mem: GuestMemory) {
    const path = join(freshDir(), 'core');
    const fd = createExclusive(path);
    const image = guestImage(mem);
    let written;
    try {
      written = writeCore(fd, coreHead(image.size, zeroRegisters()), image);
    } finally {
      closeSync(fd);
    }
    return { path, written, bytes: readFileSync(path) };
  }

  it('writes only the pages that are not all zero, at 532 + their address; the rest reads back as zero', () => {
    const size = 4 * MIB;
    const mem = memory(size, 2 * MIB);
    const touched = [0, 1, 2, 100, 511, 512, 513, 1000];
    for (const p of touched) mem.bytes.fill(p % 251 + 1, p * HOST_PAGE + 17, p * HOST_PAGE + 18);
    mem.bytes[size - 1] = 0x5a; // last byte of the last page
    mem.bytes[size + 100] = 0x77; // in the ring: never part of the core
    const { path, written, bytes } = dumpOf(mem);
    expect(written).toEqual({ pages: touched.length + 1, total: size / HOST_PAGE, unreadable: 0 });
    expect(bytes.length).toBe(MEMORY_OFFSET + size);
    expect(Buffer.compare(bytes.subarray(MEMORY_OFFSET), mem.bytes.subarray(0, size))).toBe(0);
    // Allocated blocks: about two 4 KiB blocks per page written (532 is not block-aligned), not 4 MiB.
    expect(statSync(path).blocks * 512).toBeLessThan(64 * 1024 * 2);
  });

  it('a guest that wrote nothing still gets a core of full length (all holes), 0 pages', () => {
    const { written, bytes } = dumpOf(memory(2 * MIB));
    expect(written.pages).toBe(0);
    expect(bytes.length).toBe(MEMORY_OFFSET + 2 * MIB);
  });

  it('leaves no-access pages as holes and counts them', () => {
    const mem = memory(2 * MIB);
    mem.bytes.fill(0xee, 0x100000, 0x103000);
    mem.protect({ start: 0x101000, end: 0x102000, readable: false, writable: false });
    const { written, bytes } = dumpOf(mem);
    expect(written).toEqual({ pages: 2, total: 512, unreadable: 1 });
    expect(bytes[MEMORY_OFFSET + 0x100000]).toBe(0xee);
    expect(bytes[MEMORY_OFFSET + 0x101000]).toBe(0);
    expect(bytes[MEMORY_OFFSET + 0x102000]).toBe(0xee);
  });
});

// ---- the module ----

const gpr = Object.fromEntries(GPR_NAMES.map((n, i) => [n, BigInt(0x100 + i)])) as GeneralRegisterFile;
const sregs: SpecialRegisterFile = { ...initialSpecialRegisters(), cr2: 0n, cr8: 0n, apicBase: 0n };

function fakeDebug(fail = false): DebugVcpu {
  const no = () => {
    throw new Error('not in this test');
  };
  return {
    getRegisters: () => {
      if (fail) throw new HostError('KVM_GET_REGS: Bad file descriptor');
      return gpr;
    },
    getSpecialRegisters: () => sregs,
    setRegisters: no, setSpecialRegisters: no, getFpu: no, setDebug: no, interrupt: () => false,
  };
}

/** Builds the module for DIR the way the library does, sets it up on mem, returns its HALT hook and the warnings. */
function setUp(dir: string, mem: GuestMemory, debug: DebugVcpu | undefined) {
  const module = dumpcoreModule.create({ dumpcore: dir }, { host: {} as never });
  const hooks: HaltHook[] = [];
  const lines: string[] = [];
  const ctx = {
    memory: mem,
    onHalt: (fn: HaltHook) => hooks.push(fn),
    warn: (m: string) => lines.push(m),
    ...(debug ? { debug } : {}),
  } as unknown as SetupContext;
  module.prepare?.({} as never, () => {});
  module.setup(ctx);
  return { hooks, lines };
}

describe('the module', () => {
  it('is the default export too, serves no device, is in the registry after net', () => {
    expect(dumpcoreDefault).toBe(dumpcoreModule);
    expect(dumpcoreModule.name).toBe('dumpcore');
    expect(dumpcoreModule.serves).toEqual([]);
    expect(dumpcoreModule.always).toBeUndefined();
    expect(dumpcoreModule.cli.usage).toEqual(["[ --dumpcore=DIR ] (on abort, write the guest's core to DIR/core.solo5-hvt.PID)"]);
    const names = REGISTRY.map((d) => d.name);
    expect(names.indexOf('dumpcore')).toBe(names.indexOf('net') + 1);
  });

  it('takes --dumpcore=DIR (DIR is everything after "="), nothing else', () => {
    expect(parseDumpcoreOption('--dumpcore=/tmp/x y')).toBe('/tmp/x y');
    expect(parseDumpcoreOption('--dumpcore=')).toBe('');
    expect(parseDumpcoreOption('--dumpcore')).toBeNull();
    expect(parseDumpcoreOption('--dumpcores=x')).toBeNull();
    const m = dumpcoreModule.create({}, { host: {} as never });
    expect(m.handleArg?.('--dumpcore=d', {} as never)).toBe(true);
    expect(m.handleArg?.('--mem=2', {} as never)).toBe(false);
  });

  it('library option dumpcore: a non-empty string, else OptionError', () => {
    const [opt] = dumpcoreModule.library;
    expect(opt?.name).toBe('dumpcore');
    expect(() => opt?.check(undefined)).not.toThrow();
    expect(() => opt?.check('cores')).not.toThrow();
    for (const bad of ['', 7, null, {}, ['d']]) {
      expect(() => opt?.check(bad)).toThrow(OptionError);
      expect(() => opt?.check(bad)).toThrow('dumpcore must be a directory path (a non-empty string)');
    }
  });

  it('checks DIR before the VM is built: missing, or not a directory, is a HostError of one line', () => {
    const missing = join(TMP, 'no-such-dir');
    expect(() => checkDumpDir(missing)).toThrow(HostError);
    expect(() => checkDumpDir(missing)).toThrow(`dumpcore: cannot open dir: ${missing}: No such file or directory`);
    const file = join(TMP, 'a-file');
    writeFileSync(file, '');
    expect(() => checkDumpDir(file)).toThrow(`dumpcore: cannot open dir: ${file}: Not a directory`);
    expect(() => dumpcoreModule.create({ dumpcore: file }, { host: {} as never }).prepare?.({} as never, () => {})).toThrow(HostError);
    expect(() => checkDumpDir(freshDir())).not.toThrow();
  });

  it('asks to run unconfined (Module.sandbox) only with --dumpcore: the core file is created at HALT', () => {
    type Asks = { sandbox?(): 'skip' | undefined };
    const off = dumpcoreModule.create({}, { host: {} as never }) as Asks;
    const on = dumpcoreModule.create({ dumpcore: 'd' }, { host: {} as never }) as Asks;
    const cli = dumpcoreModule.create({}, { host: {} as never });
    cli.handleArg?.('--dumpcore=d', {} as never);
    expect([off.sandbox?.(), on.sandbox?.(), (cli as Asks).sandbox?.()]).toEqual([undefined, 'skip', 'skip']);
  });

  it('without --dumpcore it registers nothing', () => {
    const m = dumpcoreModule.create({}, { host: {} as never });
    const hooks: HaltHook[] = [];
    m.prepare?.({} as never, () => {});
    m.setup({ onHalt: (fn: HaltHook) => hooks.push(fn) } as unknown as SetupContext);
    expect(hooks).toEqual([]);
  });

  it('on HALT 255 writes DIR/core.solo5-hvt.PID with the reference messages', () => {
    const dir = freshDir();
    const mem = memory(2 * MIB);
    mem.bytes.fill(1, 0x100000, 0x100000 + 3 * HOST_PAGE);
    const { hooks, lines } = setUp(dir, mem, fakeDebug());
    expect(hooks.length).toBe(1);
    hooks[0]?.(255, null);
    const path = `${dir}/core.solo5-hvt.${process.pid}`;
    expect(lines).toEqual([`dumpcore: dumping guest core to: ${path}`, 'dumpcore: dumped 3 pages of total 512 pages']);
    const core = readFileSync(path);
    expect(core.length).toBe(MEMORY_OFFSET + 2 * MIB);
    expect(new DataView(core.buffer, core.byteOffset).getBigUint64(308 + 128, true)).toBe(gpr.rip);
  });

  it('HALT with any other status, -1 included (also exit status 255), writes nothing', () => {
    const dir = freshDir();
    const { hooks, lines } = setUp(dir, memory(2 * MIB), fakeDebug());
    for (const s of [0, 1, 254, 256, -1, 511]) hooks[0]?.(s, null);
    expect(lines).toEqual([]);
    expect(() => statSync(`${dir}/core.solo5-hvt.${process.pid}`)).toThrow();
  });

  it('a second abort with the same name does not overwrite: open(…) warning, then the error line', () => {
    const dir = freshDir();
    const path = `${dir}/core.solo5-hvt.${process.pid}`;
    writeFileSync(path, 'first core');
    const { hooks, lines } = setUp(dir, memory(2 * MIB), fakeDebug());
    hooks[0]?.(255, null);
    // The C library's "File exists" once the backend is loaded (the CLI); libuv's wording here.
    expect(lines.length).toBe(2);
    expect(lines[0]?.startsWith(`dumpcore: open(${path}): `)).toBe(true);
    expect(lines[0]).toMatch(/: File (already )?exists$/);
    expect(lines[1]).toBe(MSG_ERRORS);
    expect(readFileSync(path, 'utf8')).toBe('first core');
  });

  it('without debug primitives it says so in one line and writes no core', () => {
    const dir = freshDir();
    const { hooks, lines } = setUp(dir, memory(2 * MIB), undefined);
    hooks[0]?.(255, null);
    expect(lines).toEqual([MSG_NO_DEBUG]);
    expect(MSG_NO_DEBUG).toBe('dumpcore: not implemented on this backend/architecture, no core written');
    expect(() => statSync(`${dir}/core.solo5-hvt.${process.pid}`)).toThrow();
  });

  it('registers that cannot be read: a warning and the error line, no file, no exception', () => {
    const dir = freshDir();
    const { hooks, lines } = setUp(dir, memory(2 * MIB), fakeDebug(true));
    expect(() => hooks[0]?.(255, null)).not.toThrow();
    expect(lines).toEqual(["dumpcore: cannot read the vCPU's registers: KVM_GET_REGS: Bad file descriptor", MSG_ERRORS]);
  });

  it('DIR removed after the check: the open warning and the error line, the hook does not throw', () => {
    const dir = freshDir();
    const { hooks, lines } = setUp(dir, memory(2 * MIB), fakeDebug());
    rmSync(dir, { recursive: true });
    expect(() => hooks[0]?.(255, null)).not.toThrow();
    expect(lines).toEqual([`dumpcore: open(${dir}/core.solo5-hvt.${process.pid}): No such file or directory`, MSG_ERRORS]);
  });
});
