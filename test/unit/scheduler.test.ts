// VmScheduler over made-up VMs (scripted slice outcomes, a fake wait set and
// lane): round-robin order, the lane armed per slice with the right length
// and its interrupt consumed, a blocked VM woken by its watch or its timer
// (the first cancels the other) with the keys ready then, the run ending
// while blocked, errors ending only their VM. No KVM involved.
import { describe, expect, it } from 'vitest';
import type { PreemptLane, VcpuHandle } from '../../monitor/backend/backend.js';
import { VmScheduler, type SchedulableVm } from '../../monitor/library/scheduler.js';
import type { SliceOutcome } from '../../monitor/vm/core.js';

type Step = SliceOutcome | Error;

interface Fake {
  vm: SchedulableVm;
  slices: number;
  completed: (readonly number[])[];
  /** Fires the armed watch, if any. */
  fire(): void;
  watching: boolean;
  cancels: number;
  ready: number[];
  ending: boolean;
  taken: number;
}

const log: string[] = [];

function fake(name: string, steps: Step[]): Fake {
  let onReady: (() => void) | undefined;
  const f: Fake = {
    slices: 0, completed: [], watching: false, cancels: 0, ready: [], ending: false, taken: 0,
    fire: () => {
      const fn = onReady;
      onReady = undefined;
      f.watching = false;
      fn?.();
    },
    vm: {
      handle: { backend: 'fake', token: name.charCodeAt(0) },
      runSlice(): SliceOutcome {
        f.slices++;
        log.push(name);
        const s = steps.shift();
        if (!s) throw new Error(`${name}: script ran out`);
        if (s instanceof Error) throw s;
        return s;
      },
      completePoll: (keys) => void f.completed.push(keys),
      waitSet: {
        add() {},
        wait: (ns) => {
          expect(ns).toBe(0);
          return f.ready;
        },
        watch(fn) {
          expect(f.watching).toBe(false);
          onReady = fn;
          f.watching = true;
          return () => {
            if (onReady === fn) {
              onReady = undefined;
              f.watching = false;
              f.cancels++;
            }
          };
        },
        close() {},
      },
      control: { ending: () => f.ending, waitWritable: () => true },
      takeInterrupt: () => (f.taken++, true),
    },
  };
  return f;
}

function lane() {
  const l = { arms: [] as [number, number][], fireNext: false, disarms: 0, freed: false };
  const impl: PreemptLane = {
    arm: (h: VcpuHandle, ns: number) => void l.arms.push([h.token, ns]),
    disarm: () => {
      l.disarms++;
      const f = l.fireNext;
      l.fireNext = false;
      return f;
    },
    free: () => void (l.freed = true),
  };
  return { l, platform: { createLane: () => impl, cpuTimeNs: () => 0 } };
}

const YIELD: SliceOutcome = { kind: 'yield' };
const HALT: SliceOutcome = { kind: 'halt', status: 0 };
const blocked = (inMs: number): SliceOutcome => ({ kind: 'blocked', deadlineMs: performance.now() + inMs });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('VmScheduler', () => {
  it('round-robin in slices; the lane is armed for each, short with company, long alone', async () => {
    log.length = 0;
    const { l, platform } = lane();
    const s = new VmScheduler(platform, { sliceMs: 5, aloneSliceMs: 50 });
    const a = fake('a', [YIELD, YIELD, HALT]);
    const b = fake('b', [YIELD, HALT]);
    const results = await Promise.all([s.run(a.vm), s.run(b.vm)]);
    expect(results).toEqual([HALT, HALT]);
    expect(log.join('')).toBe('ababa');
    expect(l.arms.map(([t, ns]) => `${String.fromCharCode(t)}${ns / 1e6}`)).toEqual(['a5', 'b5', 'a5', 'b5', 'a50']);
    expect(l.disarms).toBe(5);
    s.close();
    expect(l.freed).toBe(true);
  });

  it('an interrupt the lane posted is consumed after the slice, before the VM waits', async () => {
    const { l, platform } = lane();
    const s = new VmScheduler(platform);
    const a = fake('a', [blocked(1), HALT]);
    l.fireNext = true;
    const done = s.run(a.vm);
    await sleep(20);
    expect(a.taken).toBe(1);
    expect(await done).toEqual(HALT);
  });

  it('a blocked VM woken by its watch: the timer is cancelled, the keys ready now complete its POLL', async () => {
    const { platform } = lane();
    const s = new VmScheduler(platform);
    const a = fake('a', [blocked(60_000), HALT]);
    const done = s.run(a.vm);
    await sleep(10);
    expect(s.counts()).toEqual({ runnable: 0, running: 0, blocked: 1 });
    expect(a.watching).toBe(true);
    a.ready = [3, 7];
    a.fire();
    expect(await done).toEqual(HALT); // no 60 s timer left holding the loop: the test ends
    expect(a.completed).toEqual([[3, 7]]);
  });

  it('a blocked VM woken by its timer: the watch is cancelled, nothing ready', async () => {
    const { platform } = lane();
    const s = new VmScheduler(platform);
    const a = fake('a', [blocked(30), HALT]);
    const t = performance.now();
    expect(await s.run(a.vm)).toEqual(HALT);
    expect(performance.now() - t).toBeGreaterThanOrEqual(29);
    expect(a.cancels).toBe(1);
    expect(a.watching).toBe(false);
    expect(a.completed).toEqual([[]]);
  });

  it('the run ending while blocked: the POLL completes with nothing ready and the next slice reports the end', async () => {
    const { platform } = lane();
    const s = new VmScheduler(platform);
    const a = fake('a', [blocked(60_000), { kind: 'stopped' }]);
    const done = s.run(a.vm);
    await sleep(10);
    a.ending = true;
    a.ready = [1];
    a.fire();
    expect(await done).toEqual({ kind: 'stopped' });
    expect(a.completed).toEqual([[]]);
  });

  it('a VM whose slice throws, or whose POLL cannot complete, rejects alone', async () => {
    const { platform } = lane();
    const s = new VmScheduler(platform);
    const a = fake('a', [new Error('boom')]);
    const b = fake('b', [blocked(5)]);
    b.vm.completePoll = () => {
      throw new Error('bad POLL');
    };
    const c = fake('c', [YIELD, YIELD, HALT]);
    const [ra, rb, rc] = await Promise.allSettled([s.run(a.vm), s.run(b.vm), s.run(c.vm)]);
    expect(ra).toMatchObject({ status: 'rejected', reason: { message: 'boom' } });
    expect(rb).toMatchObject({ status: 'rejected', reason: { message: 'bad POLL' } });
    expect(rc).toEqual({ status: 'fulfilled', value: HALT });
  });

  it('works without a lane (a backend without preemption)', async () => {
    const s = new VmScheduler({ cpuTimeNs: () => -1 });
    expect(await s.run(fake('a', [YIELD, HALT]).vm)).toEqual(HALT);
  });

  it('refuses a VM whose wait set cannot be watched', async () => {
    const { platform } = lane();
    const s = new VmScheduler(platform);
    const a = fake('a', [HALT]);
    const { watch: _, ...ws } = a.vm.waitSet;
    await expect(s.run({ ...a.vm, waitSet: ws })).rejects.toThrow(/cannot watch/);
  });
});
