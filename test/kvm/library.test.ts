// The library API (issue #6) on real KVM: startUnikernel runs each VM in a
// worker thread of this process. Console routing (callback and stream), args,
// kernels given as bytes, exit statuses and reasons, many VMs at once, stop(),
// live statistics, typed errors, and an event loop that keeps turning while a
// guest spins. Everything is imported the way a user would: from 'ukvm-ts'
// (the package references itself through package.json "exports").
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ConfigError,
  HostError,
  KernelError,
  OptionError,
  TenderError,
  createVm,
  openKernel,
  platform,
  REGISTRY,
  startUnikernel,
  type ExitInfo,
  type Unikernel,
  type UnikernelOptions,
} from 'ukvm-ts';
import { makeDisk, patternMismatch, readAt } from '../helpers/disk.js';
import { describeKvm, guest } from '../helpers/tender.js';

const MEM = 32;

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ukvm-library-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A VM whose console text is collected, with a way to wait for a given text. */
interface Started {
  vm: Unikernel;
  text: () => string;
  /** Resolves once the console output contains `s`. */
  waitFor: (s: string) => Promise<void>;
  /** Whether `exited` has settled (checked synchronously). */
  settled: () => boolean;
}

async function start(options: Omit<UnikernelOptions, 'console'>): Promise<Started> {
  let out = '';
  const waiters: { s: string; resolve: () => void }[] = [];
  const vm = await startUnikernel({
    memoryMiB: MEM,
    ...options,
    console: (t) => {
      out += t;
      for (const w of waiters.splice(0)) {
        if (out.includes(w.s)) w.resolve();
        else waiters.push(w);
      }
    },
  });
  let done = false;
  void vm.exited.then(() => (done = true));
  return {
    vm,
    text: () => out,
    waitFor: (s) => (out.includes(s) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ s, resolve }))),
    settled: () => done,
  };
}

/** Runs a VM to its end; returns its console text and how it ended. */
async function run(options: Omit<UnikernelOptions, 'console'>): Promise<{ text: string; exit: ExitInfo; vm: Unikernel }> {
  const s = await start(options);
  const exit = await s.vm.exited;
  return { text: s.text(), exit, vm: s.vm };
}

/** Lets the event loop turn for a while (a few macrotasks plus a short sleep). */
async function breathe(ms = 50): Promise<void> {
  await sleep(ms);
}

/** Waits until vcpuMs of a running VM has grown past `than` (bounded number of polls). */
async function vcpuGrows(vm: Unikernel, than: number): Promise<number> {
  for (let i = 0; i < 400; i++) {
    const now = vm.stats().vcpuMs;
    if (now > than) return now;
    await breathe(25);
  }
  return vm.stats().vcpuMs;
}

const HELLO_TEXT = (args: string) => `Hello, world\ncmdline: ${args}\n`;

describeKvm('startUnikernel: console, args, kernel bytes', () => {
  it('delivers exactly the guest text to a console callback, with args on the command line', async () => {
    const r = await run({ kernel: guest('hello'), args: ['a', 'b c', '--solo5:none'] });
    expect(r.text).toBe(HELLO_TEXT('a b c --solo5:none'));
    expect(r.exit).toEqual({ status: 0, reason: 'halt' });
  }, 60_000);

  it('writes the guest text to a Writable stream', async () => {
    const chunks: Buffer[] = [];
    const stream = new PassThrough();
    stream.on('data', (c: Buffer) => chunks.push(c));
    const vm = await startUnikernel({ kernel: guest('hello'), memoryMiB: MEM, args: ['to', 'a', 'stream'], console: stream });
    const exit = await vm.exited;
    await breathe(10); // PassThrough delivers 'data' asynchronously
    expect(exit).toEqual({ status: 0, reason: 'halt' });
    expect(Buffer.concat(chunks).toString('utf8')).toBe(HELLO_TEXT('to a stream'));
  }, 60_000);

  it('runs a kernel given as bytes (Buffer and plain Uint8Array)', async () => {
    const buf = readFileSync(guest('hello'));
    const a = await run({ kernel: buf, args: ['from', 'a', 'Buffer'] });
    expect(a.text).toBe(HELLO_TEXT('from a Buffer'));
    expect(a.exit).toEqual({ status: 0, reason: 'halt' });
    const b = await run({ kernel: new Uint8Array(buf), args: ['from', 'bytes'] });
    expect(b.text).toBe(HELLO_TEXT('from bytes'));
    expect(b.exit).toEqual({ status: 0, reason: 'halt' });
  }, 60_000);

  it('decodes UTF-8 for a console callback (multi-byte characters arrive whole)', async () => {
    const r = await run({ kernel: guest('hello'), args: ['héllo', '☃', '𝄞'] });
    expect(r.text).toBe(HELLO_TEXT('héllo ☃ 𝄞'));
  }, 60_000);

  it('runs a kernel given as a view into a larger buffer (non-zero byteOffset)', async () => {
    const buf = readFileSync(guest('hello'));
    const big = new Uint8Array(buf.length + 123);
    big.fill(0xcc);
    big.set(buf, 13);
    const r = await run({ kernel: big.subarray(13, 13 + buf.length), args: ['view'] });
    expect(r.text).toBe(HELLO_TEXT('view'));
    expect(r.exit).toEqual({ status: 0, reason: 'halt' });
  }, 60_000);

  it('sends warnings to the warn callback', async () => {
    const warnings: string[] = [];
    const vm = await startUnikernel({ kernel: guest('hello'), memoryMiB: 33, console: () => {}, warn: (w) => warnings.push(w) });
    expect(await vm.exited).toEqual({ status: 0, reason: 'halt' });
    expect(warnings).toEqual(['adjusting memory to 33554432 bytes']);
  }, 60_000);

  it('passes an empty command line when args is omitted', async () => {
    const r = await run({ kernel: guest('hello') });
    expect(r.text).toBe(HELLO_TEXT(''));
  }, 60_000);
});

describeKvm('startUnikernel: how VMs end', () => {
  it('exited resolves { status & 0xFF, reason: halt }', async () => {
    const r = await run({ kernel: guest('exit'), args: ['300'] });
    expect(r.exit).toEqual({ status: 44, reason: 'halt' });
    expect(r.text).toBe('exit: status 300\n');
    const z = await run({ kernel: guest('exit'), args: ['0'] });
    expect(z.exit).toEqual({ status: 0, reason: 'halt' });
    const neg = await run({ kernel: guest('exit'), args: ['-1'] });
    expect(neg.exit).toEqual({ status: 255, reason: 'halt' });
  }, 60_000);

  it('a guest abort (CPU exception handled by the guest) is status 255, reason halt', async () => {
    const r = await run({ kernel: guest('abort_trap') });
    expect(r.exit).toEqual({ status: 255, reason: 'halt' });
    expect(r.text).toMatch(/^trap: vector=6 /m);
  }, 60_000);

  it('a guest fault ends the VM with reason fault, status 1 and the diagnostic, and the process survives', async () => {
    const r = await run({ kernel: guest('wtext') });
    expect(r.exit.reason).toBe('fault');
    expect(r.exit.status).toBe(1);
    expect(r.exit.message).toMatch(/host\/guest translation fault/);
    expect(r.text).toMatch(/^wtext: writing to /);
    expect(r.text).not.toMatch(/FAIL/);
    // This process is alive and can run more VMs.
    const again = await run({ kernel: guest('hello'), args: ['after', 'fault'] });
    expect(again.text).toBe(HELLO_TEXT('after fault'));
    expect(again.exit).toEqual({ status: 0, reason: 'halt' });
  }, 60_000);

  it('runs 32 unikernels at once without mixing their console output', async () => {
    const N = 32;
    const wants = Array.from({ length: N }, (_, i) => 1000 + 37 * i);
    const started = await Promise.all(wants.map((n) => start({ kernel: guest('exit'), args: [String(n)] })));
    const exits = await Promise.all(started.map((s) => s.vm.exited));
    exits.forEach((e, i) => {
      const n = wants[i] as number;
      expect(e, `VM ${i}`).toEqual({ status: n & 0xff, reason: 'halt' });
      expect(started[i]?.text(), `VM ${i}`).toBe(`exit: status ${n}\n`);
    });
    // The statuses are not all the same (the test would be weak otherwise).
    expect(new Set(exits.map((e) => e.status)).size).toBeGreaterThan(16);
  }, 180_000);
});

describeKvm('stop()', () => {
  it('stops one spinning VM while another keeps running, then the other', async () => {
    const a = await start({ kernel: guest('spin') });
    const b = await start({ kernel: guest('spin') });
    const others = await Promise.all([
      start({ kernel: guest('hello'), args: ['other', '1'] }),
      start({ kernel: guest('exit'), args: ['7'] }),
      start({ kernel: guest('hello'), args: ['other', '2'] }),
    ]);
    await Promise.all([a.waitFor('spinning\n'), b.waitFor('spinning\n')]);

    a.vm.stop();
    const ea = await a.vm.exited;
    expect(ea).toEqual({ status: 1, reason: 'stopped' });
    expect(a.text()).toBe('spinning\n');

    // b is still running: its exited has not settled and its vCPU keeps using CPU.
    expect(b.settled()).toBe(false);
    const before = b.vm.stats().vcpuMs;
    const after = await vcpuGrows(b.vm, before);
    expect(after).toBeGreaterThan(before);
    expect(b.settled()).toBe(false);

    b.vm.stop();
    expect(await b.vm.exited).toEqual({ status: 1, reason: 'stopped' });
    expect(b.text()).toBe('spinning\n');

    const ends = await Promise.all(others.map((o) => o.vm.exited));
    expect(ends).toEqual([
      { status: 0, reason: 'halt' },
      { status: 7, reason: 'halt' },
      { status: 0, reason: 'halt' },
    ]);
    expect(others[0]?.text()).toBe(HELLO_TEXT('other 1'));
    expect(others[1]?.text()).toBe('exit: status 7\n');
    expect(others[2]?.text()).toBe(HELLO_TEXT('other 2'));
  }, 120_000);

  it('stops a guest that waits in POLL (not in KVM_RUN)', async () => {
    const p = await start({ kernel: guest('spin'), args: ['poll'] });
    await p.waitFor('polling\n');
    // Let it enter its 10-second POLL (the POLL counter says when it has).
    for (let i = 0; i < 400 && p.vm.stats().hypercalls.POLL === 0; i++) await breathe(25);
    expect(p.vm.stats().hypercalls.POLL).toBe(1);
    p.vm.stop();
    expect(await p.vm.exited).toEqual({ status: 1, reason: 'stopped' });
  }, 60_000);

  it('stop() at once after startUnikernel resolves (the guest may not have run yet) stops it', async () => {
    // The handle exists only once the VM is ready, so this is the earliest a caller can stop it.
    const vm = await startUnikernel({ kernel: guest('spin'), memoryMiB: MEM, console: () => {} });
    vm.stop();
    expect(await vm.exited).toEqual({ status: 1, reason: 'stopped' });
  }, 60_000);

  it('stop() from inside the console callback stops the VM', async () => {
    let handle: Unikernel | undefined;
    const p = startUnikernel({
      kernel: guest('spin'),
      memoryMiB: MEM,
      console: (t) => {
        if (t.includes('spinning')) handle?.stop();
      },
    });
    handle = await p;
    const e = await handle.exited;
    expect(e).toEqual({ status: 1, reason: 'stopped' });
  }, 60_000);

  it('stop() after exit is harmless, also repeatedly, and never affects a VM started later', async () => {
    const ended = await run({ kernel: guest('hello'), args: ['ended'] });
    expect(ended.exit).toEqual({ status: 0, reason: 'halt' });
    ended.vm.stop();
    ended.vm.stop();
    expect(await ended.vm.exited).toEqual({ status: 0, reason: 'halt' });
    expect(ended.vm.stats().hypercalls.HALT).toBe(1);

    // Also one that was stopped: stopping it again is a no-op.
    const stopped = await start({ kernel: guest('spin') });
    await stopped.waitFor('spinning\n');
    stopped.vm.stop();
    expect(await stopped.vm.exited).toEqual({ status: 1, reason: 'stopped' });

    const later = await start({ kernel: guest('spin') });
    ended.vm.stop();
    stopped.vm.stop();
    await later.waitFor('spinning\n');
    for (let i = 0; i < 10; i++) {
      ended.vm.stop();
      stopped.vm.stop();
      await breathe(5);
    }
    expect(later.settled()).toBe(false);
    const before = later.vm.stats().vcpuMs;
    expect(await vcpuGrows(later.vm, before)).toBeGreaterThan(before);
    expect(later.settled()).toBe(false);
    later.vm.stop();
    expect(await later.vm.exited).toEqual({ status: 1, reason: 'stopped' });
  }, 120_000);

  it('a stale vCPU token (of a destroyed VM) never reaches a VM started afterwards', async () => {
    // Build a VM on this thread without running it, keep its token, destroy it.
    const p = platform();
    const vm = createVm({
      kernel: openKernel(guest('hello')),
      memoryBytes: BigInt(MEM) << 20n,
      args: [],
      modules: REGISTRY.map((d) => d.create({}, { host: p.host })),
      backend: () => p.openBackend(),
      host: p.host,
      warn: () => {},
    });
    const stale = vm.handle;
    vm.close();
    expect(p.stop(stale)).toBe(false);

    // New VMs may reuse the freed vCPU slot; the stale token must not name them.
    const later = await Promise.all([start({ kernel: guest('spin') }), start({ kernel: guest('spin') })]);
    await Promise.all(later.map((l) => l.waitFor('spinning\n')));
    for (let i = 0; i < 10; i++) {
      expect(p.stop(stale)).toBe(false);
      await breathe(5);
    }
    for (const l of later) {
      expect(l.settled()).toBe(false);
      const before = l.vm.stats().vcpuMs;
      expect(await vcpuGrows(l.vm, before)).toBeGreaterThan(before);
    }
    for (const l of later) l.vm.stop();
    for (const l of later) expect(await l.vm.exited).toEqual({ status: 1, reason: 'stopped' });
  }, 120_000);
});

describeKvm('stats()', () => {
  it('counts exits and hypercalls of hello', async () => {
    const r = await run({ kernel: guest('hello'), args: ['x'] });
    const s = r.vm.stats();
    expect(s.hypercalls.PUTS).toBeGreaterThanOrEqual(2);
    expect(s.hypercalls.HALT).toBe(1);
    expect(s.hypercalls.BLOCK_READ).toBe(0);
    expect(s.hypercalls.NET_WRITE).toBe(0);
    const hypercalls = Object.values(s.hypercalls).reduce((x, y) => x + y, 0);
    expect(s.exits.io).toBeGreaterThanOrEqual(3);
    expect(s.exits.io).toBeGreaterThanOrEqual(hypercalls);
    expect(s.exits.mmio).toBe(0);
    expect(s.devices).toEqual({});
    expect(s.wallMs).toBeGreaterThan(0);
    expect(s.vcpuMs).toBeGreaterThanOrEqual(0);
    // Figures of an ended VM are final.
    expect(r.vm.stats().exits).toEqual(s.exits);
    expect(r.vm.stats().wallMs).toBe(s.wallMs);
  }, 60_000);

  it('counts the bytes block_rw moves through "storage", exactly', async () => {
    const bs = 512;
    const nblocks = 128;
    const seed = 4242;
    const disk = makeDisk(join(dir, 'stats.img'), nblocks * bs);
    const r = await run({ kernel: guest('block_rw'), args: ['rw', String(seed)], block: { storage: disk } });
    expect(r.text.trim().split('\n').at(-1)).toBe('block_rw: ok');
    expect(r.exit).toEqual({ status: 0, reason: 'halt' });
    expect(patternMismatch(readAt(disk, 0, nblocks * bs), seed, bs)).toBeNull();

    const s = r.vm.stats();
    expect(Object.keys(s.devices)).toEqual(['storage']);
    const dev = s.devices.storage as { in: number; out: number };
    expect(dev.in).toBeGreaterThan(0);
    expect(dev.out).toBeGreaterThan(0);
    // What block_rw.c does in rw mode (EINVAL cases move nothing):
    //   reads: verify_all twice, the last block, 1 + 0 + 37 + 6 bytes, block 1, 4 bytes
    //   writes: every block, the last block, 0 + 3 bytes, block 1, 2 bytes, the last block
    expect(dev.in).toBe(2 * nblocks * bs + bs + 1 + 0 + 37 + 6 + bs + 4);
    expect(dev.out).toBe(nblocks * bs + bs + 0 + 3 + bs + 2 + bs);
    expect(s.hypercalls.BLOCK_WRITE).toBeGreaterThanOrEqual(nblocks);
    expect(s.hypercalls.BLOCK_READ).toBeGreaterThanOrEqual(2 * nblocks);
  }, 60_000);

  it('is readable while a spinner runs; vcpuMs and wallMs grow', async () => {
    const sp = await start({ kernel: guest('spin') });
    await sp.waitFor('spinning\n');
    const s1 = sp.vm.stats();
    expect(s1.hypercalls.PUTS).toBe(1);
    expect(s1.hypercalls.HALT).toBe(0);
    expect(s1.vcpuMs).toBeGreaterThanOrEqual(0);
    await breathe(30); // so that wallMs (whole milliseconds) has moved on
    const v2 = await vcpuGrows(sp.vm, s1.vcpuMs);
    expect(v2).toBeGreaterThan(s1.vcpuMs);
    const s2 = sp.vm.stats();
    expect(s2.wallMs).toBeGreaterThan(s1.wallMs);
    expect(s2.hypercalls.PUTS).toBe(1);
    sp.vm.stop();
    expect(await sp.vm.exited).toEqual({ status: 1, reason: 'stopped' });
    const s3 = sp.vm.stats();
    expect(s3.vcpuMs).toBeGreaterThanOrEqual(v2);
    expect(s3.hypercalls.HALT).toBe(0);
  }, 60_000);
});

describeKvm('typed errors', () => {
  type Case = { what: string; options: unknown; code: string; cls: new (...a: never[]) => TenderError; message?: RegExp };

  let notElf = '';
  let rwDisk = '';
  beforeAll(() => {
    notElf = join(dir, 'not-elf.hvt');
    writeFileSync(notElf, 'this is not an ELF file\n'.repeat(10));
    rwDisk = makeDisk(join(dir, 'errors.img'), 64 * 512);
  });

  async function rejection(options: unknown): Promise<unknown> {
    try {
      const vm = await startUnikernel(options as UnikernelOptions);
      vm.stop();
      await vm.exited;
    } catch (e) {
      return e;
    }
    throw new Error('startUnikernel resolved');
  }

  const cases = (): Case[] => {
    const hello = guest('hello');
    const rw = guest('block_rw');
    return [
      // EOPTION: types and shapes, rejected on the caller's thread
      { what: 'kernel: 5', options: { kernel: 5 }, code: 'EOPTION', cls: OptionError },
      { what: 'no kernel', options: {}, code: 'EOPTION', cls: OptionError },
      { what: 'options null', options: null, code: 'EOPTION', cls: OptionError },
      { what: 'memoryMiB: -1', options: { kernel: hello, memoryMiB: -1 }, code: 'EOPTION', cls: OptionError },
      { what: 'memoryMiB: 1.5', options: { kernel: hello, memoryMiB: 1.5 }, code: 'EOPTION', cls: OptionError },
      { what: 'memoryMiB: "32"', options: { kernel: hello, memoryMiB: '32' }, code: 'EOPTION', cls: OptionError },
      { what: 'args: [1]', options: { kernel: hello, args: [1] }, code: 'EOPTION', cls: OptionError },
      { what: 'args: "a b"', options: { kernel: hello, args: 'a b' }, code: 'EOPTION', cls: OptionError },
      { what: "block: 'x'", options: { kernel: rw, block: 'x' }, code: 'EOPTION', cls: OptionError },
      { what: 'block: { storage: 5 }', options: { kernel: rw, block: { storage: 5 } }, code: 'EOPTION', cls: OptionError },
      { what: 'console: 42', options: { kernel: hello, console: 42 }, code: 'EOPTION', cls: OptionError },
      { what: 'console: {}', options: { kernel: hello, console: {} }, code: 'EOPTION', cls: OptionError },
      // EKERNEL
      { what: 'missing kernel file', options: { kernel: join(dir, 'no-such.hvt') }, code: 'EKERNEL', cls: KernelError },
      { what: 'non-ELF kernel file', options: { kernel: notElf }, code: 'EKERNEL', cls: KernelError },
      { what: 'kernel is a directory', options: { kernel: dir }, code: 'EKERNEL', cls: KernelError },
      { what: 'non-ELF kernel bytes', options: { kernel: new Uint8Array(100) }, code: 'EKERNEL', cls: KernelError },
      // ECONFIG
      {
        what: 'memoryMiB: 5000',
        options: { kernel: hello, memoryMiB: 5000 },
        code: 'ECONFIG',
        cls: ConfigError,
        message: /exceeds/,
      },
      {
        what: 'undeclared block device',
        options: { kernel: hello, block: { storage: '/dev/null' } },
        code: 'ECONFIG',
        cls: ConfigError,
        message: /not declared in manifest: 'storage'/,
      },
      {
        what: 'undeclared block device (other name)',
        options: { kernel: rw, block: { storage: rwDisk, other: join(dir, 'other.img') } },
        code: 'ECONFIG',
        cls: ConfigError,
      },
      {
        what: 'bad sector size',
        options: { kernel: rw, block: { storage: rwDisk }, blockSectorSize: { storage: 1000 } },
        code: 'ECONFIG',
        cls: ConfigError,
        message: /Block size/,
      },
      {
        what: 'sector size too large',
        options: { kernel: rw, block: { storage: rwDisk }, blockSectorSize: { storage: 65536 } },
        code: 'ECONFIG',
        cls: ConfigError,
      },
      {
        what: 'command line too long',
        options: { kernel: hello, args: ['x'.repeat(8192)] },
        code: 'ECONFIG',
        cls: ConfigError,
        message: /too long/,
      },
      // EHOST
      {
        what: 'block path that cannot be opened',
        options: { kernel: rw, block: { storage: join(dir, 'no-dir', 'disk.img') } },
        code: 'EHOST',
        cls: HostError,
        message: /Could not open block device/,
      },
    ];
  };

  it('rejects with the error class and code of each condition', async () => {
    for (const c of cases()) {
      const err = await rejection(c.options === null ? null : { memoryMiB: MEM, ...(c.options as object) });
      expect(err, c.what).toBeInstanceOf(TenderError);
      expect(err, c.what).toBeInstanceOf(c.cls);
      expect(err, c.what).toBeInstanceOf(Error);
      expect((err as TenderError).code, c.what).toBe(c.code);
      expect((err as Error).message, c.what).not.toMatch(/\n/);
      if (c.message) expect((err as Error).message, c.what).toMatch(c.message);
    }
  }, 120_000);

  it('a declared block device left unattached is ECONFIG with the warning of the device', async () => {
    const err = (await rejection({ kernel: guest('block_rw'), memoryMiB: MEM })) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toBeInstanceOf(TenderError);
    expect(err.code).toBe('ECONFIG');
    expect(err.message).toMatch(/All declared devices must be attached/);
    expect(err.warnings.join('\n')).toMatch(/Device 'storage' of type \S+ declared but not attached/);
  }, 60_000);

  it('memory over 4 GiB is ECONFIG', async () => {
    const err = (await rejection({ kernel: guest('hello'), memoryMiB: 5000 })) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.code).toBe('ECONFIG');
  }, 60_000);

  it('args with holes (sparse array) are EOPTION, not silently empty words', async () => {
    const sparse = new Array<string>(3);
    sparse[1] = 'x';
    const err = await rejection({ kernel: guest('hello'), memoryMiB: MEM, args: sparse });
    expect(err).toBeInstanceOf(OptionError);
    expect((err as OptionError).code).toBe('EOPTION');
  }, 60_000);

  it('the process still runs VMs after all these errors', async () => {
    const r = await run({ kernel: guest('hello'), args: ['still', 'here'] });
    expect(r.text).toBe(HELLO_TEXT('still here'));
    expect(r.exit).toEqual({ status: 0, reason: 'halt' });
  }, 60_000);
});

describeKvm("the caller's event loop", () => {
  it('keeps turning while a guest spins', async () => {
    const sp = await start({ kernel: guest('spin') });
    await sp.waitFor('spinning\n');
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    try {
      await sleep(200);
    } finally {
      clearInterval(timer);
    }
    expect(ticks).toBeGreaterThan(0);
    expect(sp.settled()).toBe(false);
    // Synchronous work on this thread is not held up either: stats() returns.
    expect(sp.vm.stats().hypercalls.PUTS).toBe(1);
    sp.vm.stop();
    expect(await sp.vm.exited).toEqual({ status: 1, reason: 'stopped' });
  }, 60_000);
});

describeKvm('resources', () => {
  /** Descriptors of this process that are KVM objects, or files in the temp dir. */
  function openFds(): { kvm: string[]; disks: string[] } {
    const links = readdirSync('/proc/self/fd').map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    });
    return {
      kvm: links.filter((l) => l === '/dev/kvm' || l.startsWith('anon_inode:kvm')),
      disks: links.filter((l) => l.startsWith(dir)),
    };
  }

  it('VMs that end, are stopped or fail to start leave no KVM or disk descriptor open', async () => {
    const disk = makeDisk(join(dir, 'fds.img'), 64 * 512);
    const odd = makeDisk(join(dir, 'odd.img'), 1000);
    await run({ kernel: guest('hello') }); // warm-up: the addon is loaded
    const before = openFds();
    for (let i = 0; i < 5; i++) {
      await run({ kernel: guest('hello') });
      await run({ kernel: guest('block_rw'), args: ['rw', String(i + 1)], block: { storage: disk } });
      await run({ kernel: guest('wtext') });
      const sp = await start({ kernel: guest('spin') });
      sp.vm.stop();
      await sp.vm.exited;
      // Rejected after the disk was opened (size not a multiple of the sector size).
      await expect(startUnikernel({ kernel: guest('block_rw'), memoryMiB: MEM, block: { storage: odd } })).rejects.toBeInstanceOf(ConfigError);
      await expect(startUnikernel({ kernel: guest('hello'), memoryMiB: 5000 })).rejects.toBeInstanceOf(ConfigError);
    }
    // The default pool boots replacement workers in the background, and each
    // runs one warm-up VM of its own (monitor/library/worker.ts): wait until
    // it has (a VM left open would keep the count of VM and vCPU descriptors
    // up). What stays is, per worker alive, /dev/kvm (a worker holds it from
    // boot to end: a confined one cannot open it) and at most one VM and
    // vCPU made ahead for its next start (KvmBackend.prepare).
    const vmObjects = (l: string[]) => l.filter((x) => x !== '/dev/kvm');
    const devKvm = (l: string[]) => l.length - vmObjects(l).length;
    // A vCPU's link is anon_inode:kvm-vcpu:N.
    const ahead = (l: string[], kind: string) => l.filter((x) => x === `anon_inode:kvm-${kind}` || x.startsWith(`anon_inode:kvm-${kind}:`)).length;
    // The default pool keeps min(4, CPUs) workers; more may be alive only while they end.
    const workers = Math.max(devKvm(before.kvm), Math.min(4, availableParallelism()));
    const settled = (l: string[]) => devKvm(l) <= workers && vmObjects(l).length === ahead(l, 'vm') + ahead(l, 'vcpu') && ahead(l, 'vm') <= devKvm(l) && ahead(l, 'vcpu') <= devKvm(l);
    let after = openFds();
    for (let i = 0; i < 100 && !settled(after.kvm); i++) {
      await breathe(100);
      after = openFds();
    }
    expect(after.disks).toEqual([]);
    const summary = (l: string[]) => JSON.stringify(Object.fromEntries([...new Set(l)].map((k) => [k, l.filter((x) => x === k).length])));
    expect(settled(after.kvm), `KVM descriptors before ${summary(before.kvm)}, after ${summary(after.kvm)}`).toBe(true);
  }, 120_000);
});
