// What an embedding program expects of startUnikernel (issue #13) on real
// KVM: an AbortSignal (abort = stop, before, during or after the start), a
// timeout, the console as an async iterable of chunks or lines (with
// back-pressure), and the checks of these options.
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { OptionError, startUnikernel, type ExitInfo } from 'ukvm-ts';
import { describeKvm, guest } from '../helpers/tender.js';

const MEM = 4;

/** Resolves with exited, or rejects if it takes longer than ms (a hang is a failure, not a timeout of the runner). */
function within(p: Promise<ExitInfo>, ms: number): Promise<ExitInfo> {
  return Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`not ended within ${ms} ms`)))]);
}

describeKvm('startUnikernel: AbortSignal', () => {
  it('aborting a running VM stops it: exited says stopped', async () => {
    const ac = new AbortController();
    const vm = await startUnikernel({ kernel: guest('spin'), memoryMiB: MEM, console: () => {}, signal: ac.signal });
    await sleep(100);
    ac.abort();
    expect(await within(vm.exited, 10_000)).toEqual({ status: 1, reason: 'stopped' });
  }, 30_000);

  it('aborting while the VM is being built stops it as soon as it exists', async () => {
    const ac = new AbortController();
    const starting = startUnikernel({ kernel: guest('idle'), memoryMiB: MEM, console: () => {}, signal: ac.signal });
    ac.abort();
    const vm = await starting;
    expect(await within(vm.exited, 10_000)).toEqual({ status: 1, reason: 'stopped' });
  }, 30_000);

  it('a signal already aborted: the VM is never built, exited says stopped, nothing was printed', async () => {
    let text = '';
    const vm = await startUnikernel({ kernel: guest('hello'), memoryMiB: MEM, console: (t) => (text += t), signal: AbortSignal.abort() });
    expect(await vm.exited).toEqual({ status: 1, reason: 'stopped' });
    expect(text).toBe('');
    expect(vm.stats().hypercalls.PUTS).toBe(0);
    expect(() => vm.console[Symbol.asyncIterator]()).toThrow(OptionError);
    const piped = await startUnikernel({ kernel: guest('hello'), memoryMiB: MEM, console: 'iterable', signal: AbortSignal.abort() });
    const chunks: Uint8Array[] = [];
    for await (const c of piped.console) chunks.push(c);
    expect(chunks).toEqual([]);
    expect(await piped.exited).toEqual({ status: 1, reason: 'stopped' });
  });

  it('aborting after the VM ended changes nothing; one signal can serve many VMs', async () => {
    const ac = new AbortController();
    const hello = await startUnikernel({ kernel: guest('hello'), memoryMiB: MEM, console: () => {}, signal: ac.signal });
    expect(await hello.exited).toEqual({ status: 0, reason: 'halt' });
    const a = await startUnikernel({ kernel: guest('idle'), memoryMiB: MEM, console: () => {}, signal: ac.signal });
    const b = await startUnikernel({ kernel: guest('spin'), memoryMiB: MEM, console: () => {}, signal: ac.signal });
    ac.abort();
    expect(await within(a.exited, 10_000)).toEqual({ status: 1, reason: 'stopped' });
    expect(await within(b.exited, 10_000)).toEqual({ status: 1, reason: 'stopped' });
    expect(await hello.exited).toEqual({ status: 0, reason: 'halt' });
  }, 30_000);
});

describeKvm('startUnikernel: timeout', () => {
  it('stops a VM that runs longer: reason timeout, status 1, a message naming the limit', async () => {
    const vm = await startUnikernel({ kernel: guest('spin'), memoryMiB: MEM, console: () => {}, timeout: 300 });
    expect(await within(vm.exited, 10_000)).toEqual({ status: 1, reason: 'timeout', message: 'timeout: stopped after 300 ms' });
  }, 30_000);

  it('also a VM asleep in POLL', async () => {
    const vm = await startUnikernel({ kernel: guest('idle'), memoryMiB: MEM, console: () => {}, timeout: 200 });
    expect((await within(vm.exited, 10_000)).reason).toBe('timeout');
  }, 30_000);

  it('a VM that ends in time ends as it did; stop() before the timeout says stopped', async () => {
    const hello = await startUnikernel({ kernel: guest('hello'), memoryMiB: MEM, console: () => {}, timeout: 60_000 });
    expect(await hello.exited).toEqual({ status: 0, reason: 'halt' });
    const spin = await startUnikernel({ kernel: guest('spin'), memoryMiB: MEM, console: () => {}, timeout: 60_000 });
    spin.stop();
    expect(await within(spin.exited, 10_000)).toEqual({ status: 1, reason: 'stopped' });
  }, 30_000);
});

describeKvm("startUnikernel: console 'iterable'", () => {
  it('yields the guest bytes in chunks, and ends once the VM has ended', async () => {
    const vm = await startUnikernel({ kernel: guest('hello'), memoryMiB: MEM, args: ['a', 'b'], console: 'iterable' });
    const chunks: Uint8Array[] = [];
    for await (const c of vm.console) chunks.push(c);
    expect(chunks.length).toBeGreaterThan(0);
    expect(chunks.every((c) => c instanceof Uint8Array)).toBe(true);
    expect(Buffer.concat(chunks).toString()).toBe('Hello, world\ncmdline: a b\n');
    expect(await vm.exited).toEqual({ status: 0, reason: 'halt' });
  }, 30_000);

  it('yields lines without their newline; read after the VM ended, nothing is lost', async () => {
    const vm = await startUnikernel({ kernel: guest('chatty'), memoryMiB: MEM, args: ['300'], console: 'iterable' });
    expect(await vm.exited).toEqual({ status: 0, reason: 'halt' });
    const lines: string[] = [];
    for await (const l of vm.console.lines()) lines.push(l);
    expect(lines.length).toBe(302);
    expect(lines[0]).toBe('chatty');
    expect(lines.at(-1)).toBe('done');
    expect(new Set(lines).size).toBe(302);
  }, 60_000);

  it('holds a guest nobody reads at the console window, and lets it go on when read', async () => {
    const BLOCKS = 12; // 3 MiB, three times the window
    const vm = await startUnikernel({ kernel: guest('chatty'), memoryMiB: MEM, args: ['big', String(BLOCKS)], console: 'iterable' });
    await sleep(1500);
    const held = vm.stats().hypercalls.PUTS ?? 0;
    await sleep(500);
    // Nobody read: the guest waits at PUTS (1 MiB in flight is at most 5 of its 256 KiB blocks).
    expect(vm.stats().hypercalls.PUTS).toBe(held);
    expect(held).toBeLessThan(BLOCKS);
    let bytes = 0;
    for await (const c of vm.console) bytes += c.length;
    expect(bytes).toBe('chatty\n'.length + BLOCKS * 256 * 1024 + 'done\n'.length);
    expect(await vm.exited).toEqual({ status: 0, reason: 'halt' });
  }, 60_000);

  it('leaving the loop early drops the rest and lets the guest run to its end', async () => {
    const vm = await startUnikernel({ kernel: guest('chatty'), memoryMiB: MEM, args: ['big', '12'], console: 'iterable' });
    for await (const c of vm.console) {
      expect(c.length).toBeGreaterThan(0);
      break;
    }
    expect(await within(vm.exited, 30_000)).toEqual({ status: 0, reason: 'halt' });
  }, 60_000);

  it('iterating the console of a VM whose output goes elsewhere is an OptionError', async () => {
    const vm = await startUnikernel({ kernel: guest('hello'), memoryMiB: MEM, console: () => {} });
    expect(() => vm.console[Symbol.asyncIterator]()).toThrow(OptionError);
    expect(() => vm.console.lines()).toThrow(OptionError);
    await vm.exited;
  });
});

describeKvm('startUnikernel: checks of the new options', () => {
  const bad: [string, Record<string, unknown>][] = [
    ['signal', { signal: { aborted: false } }],
    ['timeout 0', { timeout: 0 }],
    ['timeout -1', { timeout: -1 }],
    ['timeout NaN', { timeout: Number.NaN }],
    ['timeout beyond setTimeout', { timeout: 2 ** 31 }],
    ['sandbox', { sandbox: 'no' }],
    ['console', { console: 'lines' }],
    ['console null', { console: null }],
  ];
  for (const [what, extra] of bad) {
    it(`refuses a bad ${what} with OptionError`, async () => {
      await expect(startUnikernel({ kernel: guest('hello'), memoryMiB: MEM, ...extra } as never)).rejects.toBeInstanceOf(OptionError);
    });
  }
});
