// The addon's primitives for several VMs per thread, directly: the wait-set
// watchers of a thread's hub (native/host_waitwatch_linux.cc: one-shot,
// never called after cancel or close, in worker threads too, no leak per
// watch or per watcher, a thread that ends with one armed exits cleanly, an
// idle hub does not keep a thread alive) and the preemption lanes
// (native/vcpu_lanes_linux.cc: arm/disarm tell whether an interrupt was
// posted, once per arming; ids are checked). The lanes against a running
// vCPU are in scheduler.test.ts.
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { loadNative } from '../../native/binding.js';

const b = loadNative();
b.waitsetHub();
b.waitsetHub(); // once per thread: again does nothing
const ONE = new Uint8Array(new BigUint64Array([1n]).buffer);
const turn = () => new Promise((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An epoll wait set holding one eventfd (key 5). */
function waitSet() {
  const ep = b.waitsetCreate();
  const efd = b.eventfdCreate();
  b.waitsetAdd(ep, efd, 5);
  const drain = () => b.readFd(efd, new Uint8Array(8));
  return { ep, efd, signal: () => b.writeFd(efd, ONE), drain, close: () => (b.closeFd(efd), b.closeFd(ep)) };
}

function rssKiB(): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
}

describe('waitsetWatcher', () => {
  it('calls back once when the set becomes readable, not before, not again until re-armed', async () => {
    const s = waitSet();
    const calls: number[] = [];
    const w = b.waitsetWatcher(s.ep, (ev) => calls.push(ev));
    expect(b.waitsetWatch(w)).toBe(true);
    await sleep(30);
    expect(calls).toEqual([]);
    s.signal();
    await sleep(30);
    expect(calls.length).toBe(1);
    expect(calls[0]).toBeGreaterThan(0);
    await sleep(30); // still readable, but one-shot
    expect(calls.length).toBe(1);
    b.waitsetWatch(w);
    await sleep(30);
    expect(calls.length).toBe(2); // level: readable again at once
    b.waitsetUnwatch(w);
    s.close();
  });

  it('never calls back after cancel or close, also when the set is already readable', async () => {
    const s = waitSet();
    let calls = 0;
    const w = b.waitsetWatcher(s.ep, () => calls++);
    b.waitsetWatch(w);
    expect(b.waitsetCancel(w)).toBe(true);
    expect(b.waitsetCancel(w)).toBe(false);
    s.signal();
    await sleep(30);
    expect(calls).toBe(0);
    b.waitsetWatch(w);
    b.waitsetUnwatch(w);
    await sleep(30);
    expect(calls).toBe(0);
    // A closed id is dead: watch says so, cancel and close do nothing.
    expect(b.waitsetWatch(w)).toBe(false);
    expect(b.waitsetCancel(w)).toBe(false);
    b.waitsetUnwatch(w);
    s.close();
  });

  it('the callback may close its own watcher; a throwing callback is an uncaught exception, not a crash', async () => {
    const s = waitSet();
    const w = b.waitsetWatcher(s.ep, () => b.waitsetUnwatch(w));
    b.waitsetWatch(w);
    s.signal();
    await sleep(30);
    expect(b.waitsetWatch(w)).toBe(false);
    const seen: unknown[] = [];
    const onUncaught = (e: unknown) => seen.push(e);
    const listeners = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    process.on('uncaughtException', onUncaught);
    try {
      const w2 = b.waitsetWatcher(s.ep, () => {
        throw new Error('from the callback');
      });
      b.waitsetWatch(w2);
      await sleep(30);
      b.waitsetUnwatch(w2);
    } finally {
      process.removeListener('uncaughtException', onUncaught);
      for (const l of listeners) process.on('uncaughtException', l);
    }
    expect(String(seen[0])).toContain('from the callback');
    s.close();
  });

  it('refuses bad arguments, and a wait set watched twice', () => {
    const s = waitSet();
    const w = b.waitsetWatcher(s.ep, () => {});
    expect(() => b.waitsetWatcher(s.ep, () => {})).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    b.waitsetUnwatch(w);
    s.close();
    expect(() => b.waitsetWatcher(-1, () => {})).toThrow(TypeError);
    expect(() => b.waitsetWatcher(0, undefined as never)).toThrow(TypeError);
    expect(b.waitsetWatch(1e9)).toBe(false);
  });

  it('100,000 watch/cancel cycles and 20,000 watchers made and closed do not grow RSS', async () => {
    const s = waitSet();
    const w = b.waitsetWatcher(s.ep, () => {});
    const cycle = (n: number) => {
      for (let i = 0; i < n; i++) {
        b.waitsetWatch(w);
        b.waitsetCancel(w);
      }
    };
    cycle(20_000); // warm up
    await turn();
    const before = rssKiB();
    for (let k = 0; k < 10; k++) {
      cycle(10_000);
      await turn(); // the loop applies the starts and stops
    }
    const afterWatches = rssKiB();
    b.waitsetUnwatch(w);
    const make = async (n: number) => {
      for (let k = 0; k < n / 1000; k++) {
        for (let i = 0; i < 1000; i++) {
          const x = b.waitsetWatcher(s.ep, () => {});
          b.waitsetWatch(x);
          b.waitsetUnwatch(x);
        }
        await turn(); // close callbacks free them
      }
    };
    await make(20_000); // warm up: the heap grows once
    const beforeMake = rssKiB();
    await make(20_000);
    const afterMake = rssKiB();
    console.log(`watcher RSS: watch/cancel ${before} -> ${afterWatches} KiB; watchers ${beforeMake} -> ${afterMake} KiB`);
    expect(afterWatches - before).toBeLessThan(2048);
    expect(afterMake - beforeMake).toBeLessThan(2048);
    s.close();
  }, 60_000);

  it('works on a worker thread, and a worker that ends with a watcher armed exits cleanly', async () => {
    const addon = (await import('../../native/binding/load.js')).addonPath('ukvm_native');
    const code = `
      const { parentPort } = require('node:worker_threads');
      const b = require(${JSON.stringify(addon)});
      let refused = '';
      try { b.waitsetWatcher(b.waitsetCreate(), () => {}); } catch (e) { refused = e.message; }
      b.waitsetHub();
      const ep = b.waitsetCreate(), efd = b.eventfdCreate();
      b.waitsetAdd(ep, efd, 1);
      const w = b.waitsetWatcher(ep, () => {
        parentPort.postMessage(['fired', refused]);
        const w2 = b.waitsetWatcher(b.waitsetCreate(), () => {});
        b.waitsetWatch(w2); // left armed: the environment's cleanup closes the hub
        setTimeout(() => process.exit(0), 10);
      });
      b.waitsetWatch(w);
      setTimeout(() => b.writeFd(efd, new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0])), 20);`;
    const worker = new Worker(code, { eval: true });
    const messages: unknown[] = [];
    worker.on('message', (m) => messages.push(m));
    const exit = await new Promise((resolve, reject) => {
      worker.on('exit', resolve);
      worker.on('error', reject);
    });
    expect(messages).toEqual([['fired', expect.stringMatching(/no watch hub/)]]);
    expect(exit).toBe(0);
  });

  it('an idle hub, or watchers not armed, do not keep a thread alive; an armed watch does', async () => {
    const addon = (await import('../../native/binding/load.js')).addonPath('ukvm_native');
    const run = async (arm: boolean) => {
      const code = `
        const b = require(${JSON.stringify(addon)});
        b.waitsetHub();
        const w = b.waitsetWatcher(b.waitsetCreate(), () => {});
        if (${arm}) b.waitsetWatch(w);`;
      const worker = new Worker(code, { eval: true });
      const ended = new Promise((r) => worker.once('exit', () => r('ended')));
      const r = await Promise.race([ended, sleep(500).then(() => 'alive')]);
      await worker.terminate();
      return r;
    };
    expect(await run(false)).toBe('ended');
    expect(await run(true)).toBe('alive');
  });
});

describe('preemption lanes', () => {
  it('disarm before the deadline: no interrupt; after it: posted, once per arming', async () => {
    const lane = b.laneCreate();
    try {
      b.laneArm(lane, 123_456_789, 1e9);
      expect(b.laneDisarm(lane)).toBe(false);
      expect(b.laneDisarm(lane)).toBe(false); // disarming twice is harmless
      // A token that names no vCPU: the watchdog posts to nothing, safely.
      b.laneArm(lane, 123_456_789, 0);
      await sleep(20);
      expect(b.laneDisarm(lane)).toBe(true);
      b.laneArm(lane, 123_456_789, 2e6);
      await sleep(30);
      expect(b.laneDisarm(lane)).toBe(true);
      expect(b.laneDisarm(lane)).toBe(false);
    } finally {
      b.laneFree(lane);
    }
  });

  it('refuses to arm twice, bad slices and stale ids', () => {
    const lane = b.laneCreate();
    b.laneArm(lane, 1, 1e9);
    expect(() => b.laneArm(lane, 1, 1e9)).toThrow(/already armed/);
    b.laneDisarm(lane);
    expect(() => b.laneArm(lane, 1, -1)).toThrow(TypeError);
    expect(() => b.laneArm(lane, 1, NaN)).toThrow(TypeError);
    b.laneFree(lane);
    b.laneFree(lane); // an unknown id does nothing
    expect(() => b.laneArm(lane, 1, 1e9)).toThrow(/no such lane/);
    expect(() => b.laneDisarm(lane)).toThrow(/no such lane/);
    const again = b.laneCreate(); // may reuse the index: the old id still names nothing
    expect(again).not.toBe(lane);
    expect(() => b.laneDisarm(lane)).toThrow(/no such lane/);
    b.laneFree(again);
  });

  it('a thread that ends without freeing its lanes gives them back', async () => {
    const free = () => {
      const lanes: number[] = [];
      try {
        for (;;) lanes.push(b.laneCreate());
      } catch {
        // all taken
      }
      for (const l of lanes) b.laneFree(l);
      return lanes.length;
    };
    const before = free();
    const addon = (await import('../../native/binding/load.js')).addonPath('ukvm_native');
    const worker = new Worker(
      `const b = require(${JSON.stringify(addon)});
       for (let i = 0; i < 3; i++) b.laneArm(b.laneCreate(), 1, 1e12);
       require('node:worker_threads').parentPort.postMessage('made');`,
      { eval: true },
    );
    await new Promise((r) => worker.once('message', r));
    expect(free()).toBe(before - 3);
    await new Promise((r) => worker.once('exit', r));
    expect(free()).toBe(before);
  });

  it('there are 64 lanes; the 65th is refused until one is freed', () => {
    const lanes: number[] = [];
    try {
      for (;;) lanes.push(b.laneCreate());
    } catch (e) {
      expect(String(e)).toMatch(/EMFILE|Too many/);
    }
    expect(lanes.length).toBeLessThanOrEqual(64);
    expect(lanes.length).toBeGreaterThan(32);
    b.laneFree(lanes.pop()!);
    lanes.push(b.laneCreate());
    for (const l of lanes) b.laneFree(l);
  });
});
