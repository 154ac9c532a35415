// Block device module on real KVM (docs/abi.md §4.3–4.5, §9.3, §10.4–10.5, §11):
// options and their errors, data written by guests checked from the host,
// persistence, 63 devices, host block devices, hostile guests, and no data
// loss when the tender is SIGKILLed right after a write returned.
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attachLoop,
  detachLoop,
  makeDisk,
  patternBlock,
  patternDisk,
  patternMismatch,
  readAt,
} from '../helpers/disk.js';
import { describeKvm, guest, runTender, startTender, type RunResult } from '../helpers/tender.js';

const P = 'ukvm-ts: ';
const RW = guest('block_rw');
const HOSTILE = guest('block_hostile');

let dir = '';
let n = 0;
/** A fresh disk image path in the test's temporary directory. */
function disk(size: number, fill = 0): string {
  return makeDisk(join(dir, `disk${n++}.img`), size, fill);
}

function lines(s: string): string[] {
  return s.split('\n').filter((l) => l !== '');
}

/** Asserts a clean guest run: status 0, nothing from the tender, last line `ok`. */
function expectOk(r: RunResult, okLine: string): void {
  expect(r.stderr).toBe('');
  expect(lines(r.stdout).at(-1)).toBe(okLine);
  expect(r.status).toBe(0);
}

/** Asserts a one-line fatal tender error: exit 1, no guest output. */
function expectFatal(r: RunResult, message: string): void {
  expect(r.stderr).toBe(`${P}${message}\n`);
  expect(r.stdout).toBe('');
  expect(r.status).toBe(1);
}

/** Asserts a rejected option: the warnings, then Invalid option, then the usage text; exit 1. */
function expectInvalidOption(r: RunResult, arg: string, warnings: string[]): void {
  const l = r.stderr.split('\n');
  expect(l.slice(0, warnings.length + 1)).toEqual([...warnings.map((w) => `${P}${w}`), `${P}Invalid option: \`${arg}'`]);
  expect(l[warnings.length + 1]).toMatch(/^usage: /);
  expect(r.stdout).toBe('');
  expect(r.status).toBe(1);
}

/** Expects the file at path to hold exactly the pattern of seed. */
function expectPattern(path: string, seed: number, bs: number): void {
  expect(patternMismatch(readFileSync(path), seed, bs)).toBeNull();
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ukvm-ts-block-'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describeKvm('block: reads and writes (block_rw)', () => {
  it('default block size 512: manifest copy, every block written and read back, edge cases, disk checked from the host', () => {
    const d = disk(256 * 1024);
    const r = runTender([`--block:storage=${d}`, RW, 'rw', '11']);
    expectOk(r, 'block_rw: ok');
    expect(lines(r.stdout)).toEqual([
      'block_rw: handle=1 capacity=262144 block_size=512 attached=1',
      'block_rw: wrote and verified 512 blocks',
      'block_rw: ok',
    ]);
    expect(statSync(d).size).toBe(256 * 1024);
    expectPattern(d, 11, 512);
  });

  it('a one-block disk (capacity == block size)', () => {
    const d = disk(512);
    const r = runTender([`--block:storage=${d}`, RW, 'rw', '3']);
    expectOk(r, 'block_rw: ok');
    expect(r.stdout).toContain('capacity=512 block_size=512');
    expectPattern(d, 3, 512);
  });

  it.each([512, 1024, 2048, 4096, 8192, 16384, 32768])('--block-sector-size %i', (bs) => {
    const d = disk(8 * bs);
    const r = runTender([`--block:storage=${d}`, `--block-sector-size:storage=${bs}`, RW, 'rw', String(bs + 1)]);
    expectOk(r, 'block_rw: ok');
    expect(lines(r.stdout)[0]).toBe(`block_rw: handle=1 capacity=${8 * bs} block_size=${bs} attached=1`);
    expectPattern(d, bs + 1, bs);
  });

  it('--block-sector-size before --block (either order works)', () => {
    const d = disk(64 * 1024);
    const r = runTender([`--block-sector-size:storage=4096`, `--block:storage=${d}`, RW, 'rw', '44']);
    expectOk(r, 'block_rw: ok');
    expect(lines(r.stdout)[0]).toBe('block_rw: handle=1 capacity=65536 block_size=4096 attached=1');
    expectPattern(d, 44, 4096);
  });

  it('a one-block disk of 32768 bytes with block size 32768', () => {
    const d = disk(32768);
    const r = runTender([`--block-sector-size:storage=32768`, `--block:storage=${d}`, RW, 'rw', '9']);
    expectOk(r, 'block_rw: ok');
    expectPattern(d, 9, 32768);
  });

  it('data persists across runs; verify detects a different pattern', () => {
    const d = disk(64 * 1024);
    expectOk(runTender([`--block:storage=${d}`, RW, 'rw', '7']), 'block_rw: ok');
    const again = runTender([`--block:storage=${d}`, RW, 'verify', '7']);
    expectOk(again, 'block_rw: ok');
    expect(again.stdout).toContain('block_rw: verified 128 blocks\n');
    const wrong = runTender([`--block:storage=${d}`, RW, 'verify', '8']);
    expect(wrong.stderr).toBe('');
    expect(wrong.stdout).toContain('block_rw: FAIL block content differs');
    expect(wrong.status).toBe(1);
    expectPattern(d, 7, 512);
  });

  it('the guest reads what the host wrote', () => {
    const d = join(dir, 'host-written.img');
    const data = patternDisk(99, 16, 4096);
    writeFileSync(d, data);
    expectOk(runTender([`--block:storage=${d}`, '--block-sector-size:storage=4096', RW, 'verify', '99']), 'block_rw: ok');
    expect(readFileSync(d).equals(data)).toBe(true);
  });

  it('--disk PATH and --disk=PATH attach the only block device', () => {
    const a = disk(16 * 512);
    const b = disk(16 * 512);
    expectOk(runTender(['--disk', a, RW, 'rw', '21']), 'block_rw: ok');
    expectOk(runTender([`--disk=${b}`, RW, 'rw', '22']), 'block_rw: ok');
    expectPattern(a, 21, 512);
    expectPattern(b, 22, 512);
  });

  it('attaching the same name twice: the later option wins', () => {
    const a = disk(8 * 512);
    const b = disk(8 * 512);
    expectOk(runTender([`--block:storage=${a}`, `--block:storage=${b}`, RW, 'rw', '5']), 'block_rw: ok');
    expect(readFileSync(a).equals(Buffer.alloc(8 * 512))).toBe(true);
    expectPattern(b, 5, 512);
  });

  it('a host block device (loop device over a temporary image)', (ctx) => {
    const img = disk(128 * 1024);
    const loop = attachLoop(img);
    if (!loop.ok) {
      console.warn(`block test: host block device case skipped: ${loop.reason}`);
      ctx.skip();
      return;
    }
    try {
      const r = runTender([`--block:storage=${loop.device}`, RW, 'rw', '31']);
      expectOk(r, 'block_rw: ok');
      expect(lines(r.stdout)[0]).toBe('block_rw: handle=1 capacity=131072 block_size=512 attached=1');
      expectOk(runTender([`--block:storage=${loop.device}`, RW, 'verify', '31']), 'block_rw: ok');
      expect(patternMismatch(readAt(loop.device, 0, 128 * 1024), 31, 512)).toBeNull();
    } finally {
      detachLoop(loop.device);
    }
    expectPattern(img, 31, 512);
  });
});


describeKvm('block: several devices', () => {
  it('63 block devices at once, each with its own file and size', () => {
    const args: string[] = [];
    const files: { path: string; size: number; bs: number }[] = [];
    for (let i = 1; i <= 63; i++) {
      // d63 uses 4096-byte blocks; the others 512 with 1..3 blocks.
      const bs = i === 63 ? 4096 : 512;
      const size = bs * (1 + (i % 3));
      const path = disk(size);
      files.push({ path, size, bs });
      args.push(`--block:d${i}=${path}`);
    }
    args.push('--block-sector-size:d63=4096');
    const r = runTender([...args, guest('block_63'), '500']);
    expectOk(r, 'block_63: ok');
    expect(lines(r.stdout)).toEqual([
      ...files.map((f, k) => `d${k + 1} handle=${k + 1} capacity=${f.size} block_size=${f.bs}`),
      'block_63: ok',
    ]);
    files.forEach((f, k) => {
      const i = k + 1;
      const data = readFileSync(f.path);
      const blocks = f.size / f.bs;
      expect(data.subarray(0, f.bs).equals(patternBlock(500 + i, 0, f.bs)), `d${i} block 0`).toBe(true);
      if (blocks > 1) {
        const last = data.subarray(f.size - f.bs);
        expect(last.equals(patternBlock(500 + i + 1000, blocks - 1, f.bs)), `d${i} last block`).toBe(true);
      }
      if (blocks > 2) expect(data.subarray(f.bs, 2 * f.bs).equals(Buffer.alloc(f.bs)), `d${i} block 1`).toBe(true);
    });
  });

  it('63 devices with one left out: that one is reported as not attached', () => {
    const args: string[] = [];
    for (let i = 1; i <= 63; i++) if (i !== 17) args.push(`--block:d${i}=${disk(512)}`);
    const r = runTender([...args, guest('block_63')]);
    expect(r.stderr).toBe(
      `${P}Device 'd17' of type BLOCK_BASIC declared but not attached.\n` +
        `${P}All declared devices must be attached. See --help for syntax.\n`,
    );
    expect(r.stdout).toBe('');
    expect(r.status).toBe(1);
  });

  it('two devices by name, each on its own file', () => {
    const a = disk(4 * 512);
    const b = disk(2 * 4096);
    const r = runTender([`--block:first=${a}`, `--block:second=${b}`, '--block-sector-size:second=4096', guest('block_two'), '40']);
    expectOk(r, 'block_two: ok');
    expect(lines(r.stdout)).toEqual([
      'first handle=1 capacity=2048 block_size=512',
      'second handle=2 capacity=8192 block_size=4096',
      'block_two: ok',
    ]);
    expect(readAt(a, 0, 512).equals(patternBlock(40, 0, 512))).toBe(true);
    expect(readAt(b, 0, 4096).equals(patternBlock(41, 0, 4096))).toBe(true);
  });

  it('a manifest entry of a reserved type needs no attachment and is not a block handle', () => {
    const d = disk(4 * 512);
    const r = runTender([`--block:storage=${d}`, guest('block_reserved')]);
    expectOk(r, 'block_reserved: ok');
    expect(readAt(d, 0, 11).toString()).toBe('reserved ok');
  });
});

describeKvm('block: option errors', () => {
  it('a path that does not exist is not created', () => {
    const p = join(dir, 'missing.img');
    expectFatal(runTender([`--block:storage=${p}`, RW]), `Could not open block device: ${p}: No such file or directory`);
    expect(existsSync(p)).toBe(false);
  });

  it('a directory', () => {
    expectFatal(runTender([`--block:storage=${dir}`, RW]), `Could not open block device: ${dir}: Is a directory`);
  });

  it('--disk with a path that cannot be opened', () => {
    const p = join(dir, 'missing-disk.img');
    expectFatal(runTender(['--disk', p, RW]), `Could not open block device: ${p}: No such file or directory`);
  });

  it.each([
    [1000, 512, 'storage: Backing storage size must be block aligned (512 bytes)'],
    [256, 512, 'storage: Backing storage size must be block aligned (512 bytes)'],
    [0, 512, 'storage: Backing storage must be at least 1 block (512 bytes) in size'],
    [6144, 4096, 'storage: Backing storage size must be block aligned (4096 bytes)'],
    [512, 4096, 'storage: Backing storage size must be block aligned (4096 bytes)'],
    [0, 4096, 'storage: Backing storage must be at least 1 block (4096 bytes) in size'],
    [16384, 32768, 'storage: Backing storage size must be block aligned (32768 bytes)'],
  ])('a %i-byte file with block size %i', (size, bs, message) => {
    const d = disk(size);
    const opts = bs === 512 ? [] : [`--block-sector-size:storage=${bs}`];
    expectFatal(runTender([`--block:storage=${d}`, ...opts, RW]), message);
    expect(statSync(d).size).toBe(size);
  });

  it.each(['0', '1', '2', '256', '511', '513', '1000', '1536', '3000', '4095', '32769', '49152', '65536', '66048', '98304', '131072', '4294967808'])(
    '--block-sector-size:storage=%s is refused',
    (n) => {
      const d = disk(64 * 1024);
      const arg = `--block-sector-size:storage=${n}`;
      const r = runTender([`--block:storage=${d}`, arg, RW]);
      expect(r.stderr.split('\n')[0]).toMatch(/^ukvm-ts: Block size must be a multiple of 2 greater than or equal 512/);
      expectInvalidOption(r, arg, [r.stderr.split('\n')[0]?.slice(P.length) ?? '']);
    },
  );

  it.each(['', 'abc', '-512'])('--block-sector-size:storage=%s (malformed) is refused', (n) => {
    const d = disk(64 * 1024);
    const arg = `--block-sector-size:storage=${n}`;
    const r = runTender([`--block:storage=${d}`, arg, RW]);
    expect(r.stderr).toContain(`${P}Invalid option: \`${arg}'\n`);
    expect(r.stdout).toBe('');
    expect(r.status).toBe(1);
  });

  it('--block:storage= with an empty path is an invalid option', () => {
    expectInvalidOption(runTender(['--block:storage=', RW]), '--block:storage=', []);
  });

  it('a name the manifest does not declare', () => {
    const d = disk(512);
    expectInvalidOption(runTender([`--block:storage=${d}`, `--block:nosuch=${d}`, RW]), `--block:nosuch=${d}`, [
      "Resource not declared in manifest: 'nosuch'",
    ]);
    expectInvalidOption(runTender([`--block:storage=${d}`, '--block-sector-size:nosuch=4096', RW]), '--block-sector-size:nosuch=4096', [
      "Resource not declared in manifest: 'nosuch'",
    ]);
  });

  it('a declared name of another type is not a block device', () => {
    const d = disk(512);
    expectInvalidOption(runTender([`--block:storage=${d}`, `--block:rsvd=${d}`, guest('block_reserved')]), `--block:rsvd=${d}`, [
      "Resource not declared in manifest: 'rsvd'",
    ]);
  });

  it('a declared block device left unattached, also when only its sector size is given', () => {
    const msg =
      `${P}Device 'storage' of type BLOCK_BASIC declared but not attached.\n` +
      `${P}All declared devices must be attached. See --help for syntax.\n`;
    for (const args of [[RW], ['--block-sector-size:storage=4096', RW]]) {
      const r = runTender(args);
      expect(r.stderr).toBe(msg);
      expect(r.stdout).toBe('');
      expect(r.status).toBe(1);
    }
    const r = runTender([`--block:first=${disk(512)}`, guest('block_two')]);
    expect(r.stderr).toBe(
      `${P}Device 'second' of type BLOCK_BASIC declared but not attached.\n` +
        `${P}All declared devices must be attached. See --help for syntax.\n`,
    );
    expect(r.status).toBe(1);
  });

  it('--disk with several block devices, or none, is refused', () => {
    const d = disk(512);
    for (const args of [['--disk', d, guest('block_two')], [`--disk=${d}`, guest('block_two')], ['--disk', d, guest('hello')], [`--disk=${d}`, guest('hello')]]) {
      const r = runTender(args);
      const first = r.stderr.split('\n')[0] ?? '';
      expect(first.startsWith(P), r.stderr).toBe(true);
      expect(first, r.stderr).toContain('--disk');
      expect(r.stdout).toBe('');
      expect(r.status).toBe(1);
    }
    expect(readFileSync(d).equals(Buffer.alloc(512))).toBe(true);
  });
});

describeKvm('block: hostile guests', () => {
  /** Runs a block_hostile mode that the tender must stop; returns the run. */
  function stopped(mode: string, d: string, extra: string[] = []): RunResult {
    const r = runTender([...extra, `--block:storage=${d}`, HOSTILE, mode]);
    const m = /^expect: gpa=(0x[0-9a-f]+) sz=(\d+)$/m.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(r.stderr).toContain(`Invalid guest access: gpa=${m?.[1]}, sz=${m?.[2]}\n`);
    expect(lines(r.stderr), r.stderr).toHaveLength(1);
    expect(r.stderr.startsWith(P)).toBe(true);
    expect(r.stdout).not.toContain('survived');
    expect(r.status).toBe(1);
    return r;
  }

  it.each(['data-outside', 'data-high', 'data-end-at-memsize', 'struct-outside', 'write-struct-outside', 'data-in-text'])(
    '%s: Invalid guest access, exit 1',
    (mode) => {
      stopped(mode, disk(4096));
    },
  );

  it('write-data-outside: Invalid guest access and the disk is untouched', () => {
    const d = disk(4096, 0x11);
    stopped('write-data-outside', d);
    expect(readFileSync(d).equals(Buffer.alloc(4096, 0x11))).toBe(true);
  });

  it('data-outside with --mem=2: the check follows the memory size', () => {
    const r = stopped('data-outside', disk(4096), ['--mem=2']);
    expect(r.stdout).toContain(`expect: gpa=0x${(2 * 1024 * 1024 - 100).toString(16)} sz=512\n`);
  });

  it('data-end-ok: a buffer ending one byte below mem_size is fine', () => {
    const d = join(dir, 'end-ok.img');
    writeFileSync(d, patternBlock(1, 0, 512));
    const r = runTender([`--block:storage=${d}`, HOSTILE, 'data-end-ok']);
    expectOk(r, 'block_hostile: ok');
    const bytes = [...patternBlock(1, 0, 512).subarray(0, 15)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    expect(r.stdout).toContain(`ret=0 bytes: ${bytes}\n`);
  });

  it('write-from-rodata: the tender may read read-only guest memory', () => {
    const d = disk(4096, 0x22);
    expectOk(runTender([`--block:storage=${d}`, HOSTILE, 'write-from-rodata']), 'block_hostile: ok');
    const want = Buffer.alloc(512);
    want.write('block_hostile rodata block\n');
    expect(readAt(d, 0, 512).equals(want)).toBe(true);
    expect(readAt(d, 512, 4096 - 512).equals(Buffer.alloc(4096 - 512, 0x22))).toBe(true);
  });

  it('einval-before-data: bad handle or range gives EINVAL before the data address is checked', () => {
    const d = disk(4096, 0x33);
    expectOk(runTender([`--block:storage=${d}`, HOSTILE, 'einval-before-data']), 'block_hostile: ok');
    expect(readFileSync(d).equals(Buffer.alloc(4096, 0x33))).toBe(true);
  });

  it('no data loss: SIGKILL right after BLOCK_WRITE returned', async () => {
    const d = disk(4 * 512, 0xcc);
    const child = startTender([`--block:storage=${d}`, HOSTILE, 'write-then-spin', '77']);
    let out = '';
    let err = '';
    child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const exited = once(child, 'exit');
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "written" within 30 s; stdout: ${out} stderr: ${err}`)), 30_000);
        child.stdout?.on('data', (c: Buffer) => {
          out += c.toString();
          if (out.includes('written\n')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.on('exit', () => {
          clearTimeout(timer);
          reject(new Error(`tender exited early; stdout: ${out} stderr: ${err}`));
        });
      });
      expect(child.kill('SIGKILL')).toBe(true);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    const [code, signal] = await exited;
    expect(signal).toBe('SIGKILL');
    expect(code).toBeNull();
    expect(readAt(d, 0, 512).equals(patternBlock(77, 0, 512))).toBe(true);
    expect(readAt(d, 512, 3 * 512).equals(Buffer.alloc(3 * 512, 0xcc))).toBe(true);
  });
});

describeKvm('block: bench guest', () => {
  it('bench_block write/read N: silent, exit 0, wraps at capacity', () => {
    const d = disk(16 * 512);
    const w = runTender([`--block:storage=${d}`, guest('bench_block'), 'write', '100']);
    expect(w).toMatchObject({ status: 0, stdout: '', stderr: '' });
    expect(readFileSync(d).equals(Buffer.alloc(16 * 512, 0x5a))).toBe(true);
    const r = runTender([`--disk=${d}`, '--block-sector-size:storage=4096', guest('bench_block'), 'read', '100']);
    expect(r).toMatchObject({ status: 0, stdout: '', stderr: '' });
  });
});

describe('block: pattern helper', () => {
  it('is deterministic and differs between blocks and seeds', () => {
    expect(patternBlock(1, 0, 512).equals(patternBlock(1, 0, 512))).toBe(true);
    expect(patternBlock(1, 0, 512).equals(patternBlock(1, 1, 512))).toBe(false);
    expect(patternBlock(1, 0, 512).equals(patternBlock(2, 0, 512))).toBe(false);
    expect(patternMismatch(patternDisk(5, 3, 512), 5, 512)).toBeNull();
    expect(patternMismatch(patternDisk(5, 3, 512), 5, 1024)).not.toBeNull();
  });
});
