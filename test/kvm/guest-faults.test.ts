// Guests that go wrong: CPU exceptions handled by the guest (abort, status
// 255 with a trap-frame cookie), writes to read-only segments, and hostile
// hypercalls and port accesses. The tender must end each run itself with
// one diagnostic line and status 1, never die of a signal (docs/abi.md §3.3, §9.2,
// §9.3, §10.8, §14, §19.2).
import { expect, it } from 'vitest';
import { textRange } from '../helpers/guest-elf.js';
import { describeKvm, guest, runTender, type RunResult } from '../helpers/tender.js';

const P = 'ukvm-ts: ';
const HOSTILE = guest('hostile');
const MiB = 2 ** 20;

const hex = (n: number | bigint): string => `0x${n.toString(16)}`;

function expectFatal(r: RunResult, line: string): void {
  expect(r.signal).toBeNull();
  expect(r.stderr).toBe(`${P}${line}\n`);
  expect(r.status).toBe(1);
}

/** The value the guest printed as `expect: ... key=VALUE`. */
function expected(stdout: string, key: string): string {
  const m = new RegExp(`^expect:.*\\b${key}=(\\S+)`, 'm').exec(stdout);
  if (!m?.[1]) throw new Error(`guest did not print expect: ${key}=\n${stdout}`);
  return m[1];
}

describeKvm('CPU exceptions caught by the guest (abort, status 255)', () => {
  it.each([
    ['ud2', 6],
    ['div0', 0],
    ['pf-ro', 14],
    ['pf-low', 14],
    ['pf-above', 14],
  ])('%s: vector %i, frame as predicted, HALT 255 with the frame as cookie', (mode, vector) => {
    const r = runTender([guest('abort_trap'), mode]);
    expect(r.stderr).toBe('');
    expect(r.signal).toBeNull();
    expect(r.status).toBe(255);
    const trap = /^trap: vector=(\d+) ec=(\S+) rip=(\S+) cr2=(\S+) cs=(\S+) ss=(\S+) /m.exec(r.stdout);
    expect(trap, r.stdout).not.toBeNull();
    const [, vec, ec, rip, cr2, cs, ss] = trap ?? [];
    expect(Number(vec)).toBe(vector);
    expect(rip).toBe(expected(r.stdout, 'rip'));
    expect(cs).toBe('0x8');
    expect(ss).toBe('0x10');
    if (vector === 14) {
      expect(ec).toBe(expected(r.stdout, 'ec'));
      expect(cr2).toBe(expected(r.stdout, 'cr2'));
    }
    expect(r.stdout).toMatch(/^trap: cookie=0x[0-9a-f]+$/m);
  });

  it('pf-above faults at mem_size: nothing above guest memory is mapped', () => {
    const r = runTender(['--mem=32', guest('abort_trap'), 'pf-above']);
    expect(r.status).toBe(255);
    expect(r.stdout).toMatch(/^trap: vector=14 ec=0x0 .*cr2=0x2000000 /m);
  });
});

describeKvm('writes to the read-only text segment (docs/abi.md §3.3)', () => {
  it('end the run with a host/guest translation fault at the store', () => {
    const r = runTender([guest('wtext')]);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(1);
    const m = /^ukvm-ts: KVM: host\/guest translation fault: rip=(0x[0-9a-f]+)\n$/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    // The store is a 6-byte movl; KVM reports either the store itself (EFAULT)
    // or the instruction after it (MMIO exit, as on this machine's PVM).
    const store = Number(/store at (0x[0-9a-f]+)/.exec(r.stdout)?.[1]);
    const rip = Number(m?.[1]);
    expect([store, store + 6]).toContain(rip);
    expect(r.stdout).not.toContain('FAIL');
  });
});

describeKvm('hostile guests (docs/abi.md §9.2, §9.3)', () => {
  // mem_size is 512 MiB by default; each mode's gpa/sz follow from it.
  const cases: [string, (top: number) => string][] = [
    ['puts-struct-outside', (t) => `Invalid guest access: gpa=${hex(t)}, sz=16`],
    ['puts-data-outside', (t) => `Invalid guest access: gpa=${hex(t + 0x1000)}, sz=5`],
    ['puts-data-straddle', (t) => `Invalid guest access: gpa=${hex(t - 4)}, sz=8`],
    ['puts-wrap', () => 'Invalid guest access: gpa=0x200000, sz=18446744073709551360'],
    // §9.3: a range that ends exactly at mem_size is rejected.
    ['puts-end-at-memsize', (t) => `Invalid guest access: gpa=${hex(t - 16)}, sz=16`],
    ['walltime-outside', (t) => `Invalid guest access: gpa=${hex(t - 4)}, sz=8`],
    ['poll-outside', (t) => `Invalid guest access: gpa=${hex(t - 8)}, sz=24`],
    ['halt-outside', (t) => `Invalid guest access: gpa=${hex(t + 0x1000)}, sz=16`],
    ['halt-cookie-outside', (t) => `Invalid guest access: gpa=${hex(t - 256)}, sz=512`],
    ['hypercall-0', () => 'Invalid guest hypercall: num=0'],
    ['hypercall-unregistered', () => 'Invalid guest hypercall: num=4'],
    ['port-509', () => 'Invalid guest port access: port=0x509'],
    ['port-600', () => 'Invalid guest port access: port=0x600'],
    ['in', () => 'Invalid guest port access: port=0x502'],
    ['out8', () => 'Invalid guest port access: port=0x502'],
    ['out16', () => 'Invalid guest port access: port=0x502'],
  ];

  it.each(cases)('%s → one line, status 1', (mode, message) => {
    const r = runTender([HOSTILE, mode], { timeoutMs: 20_000 });
    expect(r.stdout).toMatch(new RegExp(`^mode: ${mode}\\n`));
    expect(r.stdout).not.toContain('survived');
    expectFatal(r, message(512 * MiB));
  });

  it.each(cases.filter(([m]) => m.includes('outside') || m.includes('straddle') || m.includes('end-at')))(
    '%s with --mem=64 moves with mem_size',
    (mode, message) => {
      expectFatal(runTender(['--mem=64', HOSTILE, mode]), message(64 * MiB));
    },
  );

  it('a range ending one byte below mem_size is fine (control for puts-end-at-memsize)', () => {
    const r = runTender([HOSTILE, 'puts-end-ok']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('mode: puts-end-ok\ntop-of-memory!\nsurvived\n');
    expect(r.status).toBe(0);
  });

  it('WALLTIME into the read-only text segment is refused, not a crash', () => {
    const r = runTender([HOSTILE, 'walltime-into-text']);
    const gpa = expected(r.stdout, 'gpa');
    const [start, end] = textRange(HOSTILE);
    expect(BigInt(gpa) >= start && BigInt(gpa) < end).toBe(true);
    expectFatal(r, `Invalid guest access: gpa=${gpa}, sz=8`);
  });

  it('an exception without an IDT triple-faults: unhandled exit 8 at the faulting rip', () => {
    const r = runTender([HOSTILE, 'triple-fault']);
    expectFatal(r, `KVM: unhandled exit: exit_reason=0x8, rip=${expected(r.stdout, 'rip')}`);
  });
});
