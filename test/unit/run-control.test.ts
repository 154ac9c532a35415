// HostRunControl.waitWritable over a fake binding (no KVM): it ends as soon as
// the run is ending, and a pending debugger interrupt (the wake descriptor
// stays readable) neither ends it nor makes it spin.
import { describe, expect, it } from 'vitest';
import { HostRunControl } from '../../monitor/backend/wait-set.js';
import type { NativeBinding } from '../../native/binding.js';

const WAKE = 7;

function fake(script: (fd: number, wake: number, ms: number) => number, state = { pending: 0, stop: false }) {
  const calls: [number, number, number][] = [];
  const b = {
    pendingSignal: () => state.pending,
    stopRequested: () => state.stop,
    waitWritable: (fd: number, wake: number, ms: number) => (calls.push([fd, wake, ms]), script(fd, wake, ms)),
  } as unknown as NativeBinding;
  return { control: new HostRunControl(b, { token: 1, wakeFd: WAKE }), calls, state };
}

describe('HostRunControl.waitWritable', () => {
  it('writable: true after one poll with the wake descriptor', () => {
    const f = fake(() => 1);
    expect(f.control.waitWritable(3, -1)).toBe(true);
    expect(f.calls).toEqual([[3, WAKE, -1]]);
  });

  it('a signal or stop request ends it: false, and at once when already pending', () => {
    const f = fake(() => (f.state.stop = true, -1));
    expect(f.control.waitWritable(3, -1)).toBe(false);
    expect(f.calls).toHaveLength(1);
    const g = fake(() => 1, { pending: 15, stop: false });
    expect(g.control.waitWritable(3, -1)).toBe(false);
    expect(g.calls).toHaveLength(0);
  });

  it('woken by an interrupt (not ending): waits on without the wake descriptor, in slices', () => {
    let n = 0;
    const f = fake((_fd, wake) => (wake >= 0 ? -1 : ++n < 3 ? 0 : 1));
    expect(f.control.waitWritable(3, -1)).toBe(true);
    expect(f.calls[0]).toEqual([3, WAKE, -1]);
    expect(f.calls.slice(1).map((c) => [c[0], c[1]])).toEqual([[3, -1], [3, -1], [3, -1]]);
    for (const c of f.calls.slice(1)) expect(c[2]).toBeLessThanOrEqual(50);
  });

  it('a foreign signal (EINTR) restarts the wait', () => {
    let n = 0;
    const f = fake(() => (++n === 1 ? -2 : 1));
    expect(f.control.waitWritable(3, -1)).toBe(true);
    expect(f.calls).toHaveLength(2);
  });

  it('a timeout is honoured: true once it passed', () => {
    const f = fake(() => 0);
    expect(f.control.waitWritable(-1, 1)).toBe(true);
  });
});
