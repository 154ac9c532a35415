// The core tender on real KVM: running a guest, exit statuses, the command
// line handed to the guest, memory sizing, and the CLI behaviours that
// orchestrators depend on (docs/abi.md §1, §2, §6.1, §8.3, §14, "Behaviour worth
// matching" 1-3, 6, 7).
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernelEnd } from '../helpers/guest-elf.js';
import { BIN, describeKvm, guest, runTender, type RunResult } from '../helpers/tender.js';

const P = 'ukvm-ts: ';
const HELLO = guest('hello');
const EXIT = guest('exit');
const MEMSIZE = guest('memsize');

function expectClean(r: RunResult, stdout: string): void {
  expect(r.stderr).toBe('');
  expect(r.stdout).toBe(stdout);
  expect(r.signal).toBeNull();
  expect(r.status).toBe(0);
}

/** key=value pairs printed by the memsize guest. */
function values(stdout: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const [, k, v] of stdout.matchAll(/([a-z_]+)=(\S+)/g)) m.set(k ?? '', v ?? '');
  return m;
}

describeKvm('hello', () => {
  it('prints its greeting and the command line, exits 0, tender silent', () => {
    expectClean(runTender([HELLO, 'hello', 'from', 'ukvm-ts']), 'Hello, world\ncmdline: hello from ukvm-ts\n');
  });

  it('gets an empty command line when there are no arguments', () => {
    expectClean(runTender([HELLO]), 'Hello, world\ncmdline: \n');
  });

  it('gets arguments joined by single spaces, quoting lost', () => {
    expectClean(runTender([HELLO, 'a  b', 'c', '', 'd']), 'Hello, world\ncmdline: a  b c  d\n');
  });

  it('runs a kernel named after `--`', () => {
    expectClean(runTender(['--', HELLO, 'x']), 'Hello, world\ncmdline: x\n');
  });
});

describeKvm('exit status', () => {
  it.each([
    ['0', 0],
    ['7', 7],
    ['255', 255],
    ['256', 0],
    ['300', 44],
    ['-1', 255],
    ['-255', 1],
  ])('HALT status %s → process status %i', (arg, status) => {
    const r = runTender([EXIT, arg]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`exit: status ${arg}\n`);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(status);
  });
});

describeKvm('guest command line length (docs/abi.md §8.3)', () => {
  it('accepts exactly 8191 characters in one argument', () => {
    const arg = 'a'.repeat(8191);
    expectClean(runTender([HELLO, arg]), `Hello, world\ncmdline: ${arg}\n`);
  });

  it('accepts 8191 characters made of two arguments and the space between them', () => {
    const a = 'x'.repeat(4095);
    const b = 'y'.repeat(4095);
    expectClean(runTender([HELLO, a, b]), `Hello, world\ncmdline: ${a} ${b}\n`);
  });

  it('rejects 8192 characters', () => {
    const r = runTender([HELLO, 'a'.repeat(8192)]);
    expect(r.stderr).toBe(`${P}Guest command line too long (max=8191 characters)\n`);
    expect(r.stdout).toBe('');
    expect(r.status).toBe(1);
  });

  it('rejects 8192 characters counting the joining space', () => {
    const r = runTender([HELLO, 'a'.repeat(4096), 'b'.repeat(4095)]);
    expect(r.stderr).toBe(`${P}Guest command line too long (max=8191 characters)\n`);
    expect(r.status).toBe(1);
  });
});

describeKvm('guest memory size (docs/abi.md §6.1, §8.2)', () => {
  const end = kernelEnd(MEMSIZE);

  it('defaults to 512 MiB and fills in the boot info', () => {
    const r = runTender([MEMSIZE]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const v = values(r.stdout);
    expect(v.get('mem_size')).toBe(String(512 * 2 ** 20));
    expect(v.get('kernel_end')).toBe(String(end));
    expect(Number(v.get('cpu_cycle_freq'))).toBeGreaterThan(0);
    expect(v.get('cmdline')).toBe('0x100a8'); // 1 manifest entry: 0x10040 + 104
    expect(v.get('mft')).toBe('0x10038');
    expect(v.get('host_features')).toBe('0');
    expect(v.get('net_ring')).toBe('0x0');
    expect(r.stdout).toContain('mft version=1 entries=1 type0=0x40000000\n');
    expect(v.get('data_marker')).toBe('0x5eed5eed5eed5eed');
    expect(r.stdout).toMatch(/memory: ok\n$/);
  });

  it.each([
    ['4096', 4 * 2 ** 30],
    ['64', 64 * 2 ** 20],
    ['2', 2 * 2 ** 20],
  ])('--mem=%s gives the guest %i bytes, all of it usable', (mem, bytes) => {
    const r = runTender([`--mem=${mem}`, MEMSIZE]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(values(r.stdout).get('mem_size')).toBe(String(bytes));
    expect(r.stdout).toMatch(/memory: ok\n$/);
  });

  it('--mem=63 is rounded down to 2 MiB granularity with a warning', () => {
    const r = runTender(['--mem=63', MEMSIZE]);
    expect(r.stderr).toBe(`${P}adjusting memory to 65011712 bytes\n`);
    expect(r.status).toBe(0);
    expect(values(r.stdout).get('mem_size')).toBe('65011712');
  });

  it('--mem=63 with hello: warning, then a normal run', () => {
    const r = runTender(['--mem=63', HELLO]);
    expect(r.stderr).toBe(`${P}adjusting memory to 65011712 bytes\n`);
    expect(r.stdout).toBe('Hello, world\ncmdline: \n');
    expect(r.status).toBe(0);
  });

  it('--mem=4097 is adjusted to exactly 4 GiB', () => {
    const r = runTender(['--mem=4097', MEMSIZE]);
    expect(r.stderr).toBe(`${P}adjusting memory to 4294967296 bytes\n`);
    expect(r.status).toBe(0);
    expect(values(r.stdout).get('mem_size')).toBe('4294967296');
  });

  it('--mem=4098 exceeds the 4 GiB limit', () => {
    const r = runTender(['--mem=4098', HELLO]);
    expect(r.stderr).toBe(`${P}guest memory size 4297064448 bytes exceeds the max size 4294967296 bytes\n`);
    expect(r.stdout).toBe('');
    expect(r.status).toBe(1);
  });

  it('--mem=-1 wraps to 2^64 - 1 MiB: adjusted to 2 MiB granularity, then too big', () => {
    const r = runTender(['--mem=-1', HELLO]);
    expect(r.stderr).toBe(
      `${P}adjusting memory to 18446744073707454464 bytes\n` +
        `${P}guest memory size 18446744073707454464 bytes exceeds the max size 4294967296 bytes\n`,
    );
    expect(r.stdout).toBe('');
    expect(r.status).toBe(1);
  });

});

describeKvm('program name in diagnostics', () => {
  let dir = '';
  let link = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ukvm-ts-name-'));
    link = join(dir, 'solo5-hvt');
    symlinkSync(BIN, link);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('and runs guests like the original', () => {
    expectClean(runTender([HELLO, 'via', 'link'], { bin: link }), 'Hello, world\ncmdline: via link\n');
  });

  it('and names itself in guest-fault messages too', () => {
    const r = runTender([guest('hostile'), 'hypercall-0'], { bin: link });
    expect(r.stderr).toBe('solo5-hvt: Invalid guest hypercall: num=0\n');
    expect(r.status).toBe(1);
  });
});

describe('guest build', () => {
  it('kernel_end of the test guests excludes their BSS-only segment', () => {
    // Sanity check of the helper the memory tests rely on: memsize has
    // text, rodata and data PT_LOADs from 0x100000, each at least a page.
    expect(kernelEnd(MEMSIZE)).toBeGreaterThanOrEqual(0x103000n);
    expect(kernelEnd(MEMSIZE) % 0x1000n).toBe(0n);
  });
});
