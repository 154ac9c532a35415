// What a guest sees while it runs: the entry state (docs/abi.md §7, §19.2), TLS
// through FS base, the clocks and POLL (§10.1, §10.3), SSE/AVX, and the
// guest-side --solo5: options (§19.5).
import { expect, it } from 'vitest';
import { describeKvm, guest, runTender, type RunResult } from '../helpers/tender.js';

function clean(r: RunResult): string {
  expect(r.stderr).toBe('');
  expect(r.signal).toBeNull();
  expect(r.status).toBe(0);
  return r.stdout;
}

function field(stdout: string, key: string): string {
  const m = new RegExp(`(?:^|\\s)${key}=(\\S+)`, 'm').exec(stdout);
  if (!m?.[1]) throw new Error(`no ${key}= in guest output:\n${stdout}`);
  return m[1];
}

describeKvm('entry state (docs/abi.md §7.2-7.4, §19.2)', () => {
  it.each([
    [[], 0x20000000],
    [['--mem=64'], 0x4000000],
  ])('registers, control registers and tables at entry (%j)', (opts, memSize) => {
    const out = clean(runTender([...opts, guest('state')]));
    const zero = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];
    for (const r of zero) expect(field(out, r), r).toBe('0x0');
    expect(field(out, 'rdi')).toBe('0x10000');
    expect(field(out, 'rsp')).toBe(`0x${(memSize - 8).toString(16)}`);
    expect(field(out, 'rflags')).toBe('0x2');
    expect(field(out, 'cr0')).toBe('0x80010021');
    expect(field(out, 'cr3')).toBe('0x2000');
    expect(field(out, 'cr4')).toBe('0x620');
    expect(field(out, 'efer')).toBe('0x500');
    expect(field(out, 'gdtr')).toBe('0x1000/0x17');
    expect(field(out, 'idtr')).toBe('0x0/0x0');
    expect(out).toContain('cs=0x8 ss=0x10 ds=0x10 es=0x10 fs=0x10 gs=0x10\n');
    expect(field(out, 'mem_size')).toBe(`0x${memSize.toString(16)}`);
    expect(field(out, 'ret_slot')).toBe('0x0');
  });
});

describeKvm('TLS (FS base via WRMSR)', () => {
  it('reads and writes through %fs', () => {
    const out = clean(runTender([guest('tls')]));
    expect(out).toBe(
      'tls: fs_base ok\n' +
        'tls: read 0x1111222233334444\n' +
        'tls: value=0xcafef00dd00dfeed block=0xcafef00dd00dfeed\n' +
        'tls: ok\n',
    );
  });
});

describeKvm('clocks and POLL', () => {
  it('WALLTIME is the host clock, POLL waits for its timeout, the TSC clock advances', () => {
    const before = Date.now();
    const out = clean(runTender([guest('clock')]));
    const after = Date.now();
    const walls = [...out.matchAll(/^walltime_ns=(\d+)$/gm)].map((m) => BigInt(m[1] ?? '0'));
    expect(walls).toHaveLength(2);
    const [w0 = 0n, w1 = 0n] = walls;
    expect(Number(w0 / 1_000_000n)).toBeGreaterThanOrEqual(before - 5000);
    expect(Number(w1 / 1_000_000n)).toBeLessThanOrEqual(after + 5000);
    expect(w1).toBeGreaterThanOrEqual(w0);
    expect(Number(field(out, 'cpu_cycle_freq'))).toBeGreaterThan(0);
    // Correctness bound, not a timing assertion: a 20 ms POLL cannot return early.
    expect(Number(field(out, 'poll_elapsed_ns'))).toBeGreaterThanOrEqual(20_000_000);
    expect(out).toContain('poll_ret=0 ready_set=0x0\n');
    expect(field(out, 'zero_polls')).toBe('1000');
    expect(out).toMatch(/monotonic: ok\n$/);
  });
});

describeKvm('SSE and AVX', () => {
  // The vector code runs at CPL 3: on PVM hosts CPL-0 guest code is emulated
  // and the emulator lacks most SSE instructions (see test/guests/sse.c).
  it('computes with SSE2 and, where the CPU has it, 256-bit AVX', () => {
    const out = clean(runTender([guest('sse')]));
    const numbers = 'sum*4 = 22 17 -10 12, prod*4 = 24 18 -6 -280';
    expect(out).toContain(`SSE: ${numbers}\n`);
    if (out.includes('cpuid: xsave=1 avx=1\n')) expect(out).toContain(`AVX: ${numbers}\n`);
    else expect(out).toContain('AVX: not supported\n');
  });

  it('reports AVX as not supported when the guest does not enable it', () => {
    const out = clean(runTender([guest('sse'), 'noavx']));
    expect(out).toContain('SSE: sum*4 = 22 17 -10 12, prod*4 = 24 18 -6 -280\n');
    expect(out).toContain('AVX: not supported\n');
  });
});

describeKvm('--solo5: options are the guest\'s business (docs/abi.md §19.5)', () => {
  const QUIET = guest('quiet');

  it('--solo5:quiet after KERNEL silences the Solo5: lines', () => {
    const out = clean(runTender(['--', QUIET, '--solo5:quiet', 'foo', 'bar']));
    expect(out).toBe('args: foo bar\n');
    expect(out).not.toContain('Solo5:');
  });

  it('without it the Solo5: banner appears (INFO is the default)', () => {
    const out = clean(runTender([QUIET, 'foo', 'bar']));
    expect(out).toBe(
      'Solo5: Bindings version ukvm-ts-test\n' +
        'Solo5: Memory map: 512 MB addressable:\n' +
        'args: foo bar\n' +
        'Solo5: solo5_exit(0) called\n',
    );
  });

  it('--solo5:debug adds debug lines; the last option wins', () => {
    expect(clean(runTender([QUIET, '--solo5:debug', 'x']))).toContain('Solo5: debug: cmdline at 0x100a8\n');
    const out = clean(runTender([QUIET, '--solo5:debug', '--solo5:warn', 'x']));
    expect(out).toBe('args: x\n');
  });

  it('only whole leading tokens count', () => {
    expect(clean(runTender([QUIET, '--solo5:quietly', 'x']))).toContain('args: --solo5:quietly x\n');
    expect(clean(runTender([QUIET, 'x', '--solo5:quiet']))).toContain('Solo5: Bindings');
  });

  it('the tender passes --solo5:quiet after KERNEL through untouched', () => {
    const out = clean(runTender(['--', guest('hello'), '--solo5:quiet']));
    expect(out).toBe('Hello, world\ncmdline: --solo5:quiet\n');
  });

  it('before KERNEL the tender rejects it as an invalid option', () => {
    const r = runTender(['--solo5:quiet', QUIET]);
    expect(r.stderr).toMatch(/^ukvm-ts: Invalid option: `--solo5:quiet'\nusage: /);
    expect(r.stdout).toBe('');
    expect(r.status).toBe(1);
  });
});
