// A library VM's console as a hostile guest or a careless caller uses it
// (issue #9): a console callback that throws or a stream that errors ends
// that VM alone (reason 'error', a message naming the console); a console
// that does not keep up holds the guest at PUTS instead of buffering without
// bound; stop() still ends a VM whose console is full; nothing is lost.
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { startUnikernel, type ExitInfo } from 'ukvm-ts';
import { CONSOLE_WINDOW } from '../../dist/monitor/library/console-flow.js';
import { describeKvm, guest } from '../helpers/tender.js';

const MEM = 32;

/** A Writable that takes `delayMs` per chunk, recording the most it ever held buffered. */
function slowStream(delayMs: number, highWaterMark = 16 * 1024) {
  let consumed = 0;
  let maxBuffered = 0;
  const chunks: Buffer[] = [];
  const stream = new Writable({
    highWaterMark,
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      consumed += chunk.length;
      setTimeout(done, delayMs);
    },
  });
  const write = stream.write.bind(stream);
  stream.write = ((chunk: Buffer, ...rest: never[]) => {
    const ok = write(chunk, ...rest);
    maxBuffered = Math.max(maxBuffered, stream.writableLength);
    return ok;
  }) as typeof stream.write;
  return { stream, consumed: () => consumed, maxBuffered: () => maxBuffered, bytes: () => Buffer.concat(chunks) };
}

/** Resolves with the exit, or null if the VM is still running after ms. */
async function exitWithin(exited: Promise<ExitInfo>, ms: number): Promise<ExitInfo | null> {
  return Promise.race([exited, sleep(ms).then(() => null)]);
}

describeKvm('library console: failures stay in their VM', () => {
  it('a console callback that throws ends only its VM: reason error, the message names the console', async () => {
    const bystander = await startUnikernel({ kernel: guest('spin'), memoryMiB: MEM, console: () => {} });
    const vm = await startUnikernel({
      kernel: guest('chatty'),
      memoryMiB: MEM,
      console: () => {
        throw new Error('consumer exploded');
      },
    });
    const exit = await exitWithin(vm.exited, 10_000);
    expect(exit).toEqual({ status: 1, reason: 'error', message: 'console: the console callback threw: consumer exploded' });
    // The other VM was not touched: still running, and stoppable.
    expect(await exitWithin(bystander.exited, 200)).toBeNull();
    bystander.stop();
    expect((await bystander.exited).reason).toBe('stopped');
  }, 30_000);

  it('a stream that errors ends only its VM', async () => {
    const bystander = await startUnikernel({ kernel: guest('spin'), memoryMiB: MEM, console: () => {} });
    const broken = new Writable({
      write(_chunk, _enc, done) {
        done(new Error('disk on fire'));
      },
    });
    const vm = await startUnikernel({ kernel: guest('chatty'), memoryMiB: MEM, console: broken });
    const exit = await exitWithin(vm.exited, 10_000);
    expect(exit).toEqual({ status: 1, reason: 'error', message: 'console: the console stream failed: disk on fire' });
    expect(await exitWithin(bystander.exited, 200)).toBeNull();
    bystander.stop();
    expect((await bystander.exited).reason).toBe('stopped');
  }, 30_000);

  it('a stream object whose write() throws ends only its VM', async () => {
    const vm = await startUnikernel({
      kernel: guest('hello'),
      memoryMiB: MEM,
      console: {
        write() {
          throw new TypeError('not today');
        },
      },
    });
    expect(await exitWithin(vm.exited, 10_000)).toEqual({ status: 1, reason: 'error', message: 'console: the console stream failed: not today' });
  }, 30_000);

  it('leaves no listener behind on a shared stream once its VMs end', async () => {
    const s = slowStream(0);
    const before = [s.stream.listenerCount('error'), s.stream.listenerCount('drain')];
    const vms = await Promise.all(Array.from({ length: 12 }, () => startUnikernel({ kernel: guest('hello'), memoryMiB: MEM, console: s.stream })));
    for (const vm of vms) expect((await vm.exited).reason).toBe('halt');
    expect([s.stream.listenerCount('error'), s.stream.listenerCount('drain')]).toEqual(before);
  }, 60_000);
});

describeKvm('library console: back-pressure', () => {
  it('a slow stream holds the guest: bounded buffering, bounded memory, stop() still works', async () => {
    const s = slowStream(5);
    const rssBefore = process.memoryUsage().rss;
    const vm = await startUnikernel({ kernel: guest('chatty'), memoryMiB: MEM, console: s.stream });
    await sleep(3000);
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    expect(s.consumed()).toBeGreaterThan(0);
    // What the stream held never exceeded the window plus one posted piece
    // and its own high-water mark; without back-pressure it grows unbounded.
    expect(s.maxBuffered()).toBeLessThanOrEqual(CONSOLE_WINDOW + 64 * 1024 + 16 * 1024);
    expect(rssGrowth).toBeLessThan(64 * 1024 * 1024);
    vm.stop();
    expect(await exitWithin(vm.exited, 5000)).toEqual({ status: 1, reason: 'stopped' });
  }, 30_000);

  it('a slow stream loses nothing: every block of a counted run arrives once, in order', async () => {
    const BLOCKS = 12; // 3 MiB of 256 KiB PUTS, three times the window
    const BLOCK = 256 * 1024;
    const s = slowStream(2);
    const vm = await startUnikernel({ kernel: guest('chatty'), memoryMiB: MEM, args: ['big', String(BLOCKS)], console: s.stream });
    expect(await vm.exited).toEqual({ status: 0, reason: 'halt' });
    await new Promise<void>((resolve) => s.stream.end(resolve));
    const all = s.bytes();
    expect(all.length).toBe('chatty\n'.length + BLOCKS * BLOCK + 'done\n'.length);
    expect(all.subarray(0, 7).toString()).toBe('chatty\n');
    expect(all.subarray(all.length - 5).toString()).toBe('done\n');
    for (let n = 0; n < BLOCKS; n++) expect(all.readBigUInt64LE(7 + n * BLOCK)).toBe(BigInt(n));
  }, 60_000);

  it('a callback console that blocks its caller for a while still gets everything in order', async () => {
    let text = '';
    let calls = 0;
    const vm = await startUnikernel({
      kernel: guest('chatty'),
      memoryMiB: MEM,
      args: ['2000'],
      console: (t) => {
        text += t;
        // Busy for 2 ms every 50 calls: the worker must wait, not pile up.
        if (++calls % 50 === 0) {
          const until = Date.now() + 2;
          while (Date.now() < until);
        }
      },
    });
    expect(await vm.exited).toEqual({ status: 0, reason: 'halt' });
    expect(text.split('\n').length).toBe(2003);
  }, 60_000);
});
