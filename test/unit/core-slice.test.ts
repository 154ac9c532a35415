// Core.runSlice and completePoll over a made-up vCPU (a script of exits) and
// a fake CoreHost: slices that yield at their deadline or at a preemption,
// POLL that blocks instead of waiting, completes at once when something is
// ready or the run is ending, and is completed later exactly as POLL writes
// its results (docs/abi.md §10.3). No KVM involved.
import { describe, expect, it } from 'vitest';
import type { Vcpu, VcpuExit } from '../../monitor/backend/backend.js';
import { describeFatal } from '../../monitor/backend/kvm/exits.js';
import { GuestError, HostError } from '../../monitor/errors.js';
import { Core, SLICE_SYNC_POLL_NS, type CoreHost } from '../../monitor/vm/core.js';
import { GuestMemory } from '../../monitor/vm/memory.js';

const MEM = 4 << 20;
const GPA = 0x4000;

const outl = (port: number, value: number): VcpuExit => ({ kind: 'io', out: true, size: 4, port, value });
const POLL = outl(0x503, GPA);
const WALLTIME = outl(0x501, 0x3000);
const HALT = outl(0x508, 0x5000);
const INTERRUPT: VcpuExit = { kind: 'debug', reason: 'interrupt', rip: 0x1234n, dr6: 0n };

function rig(exits: (VcpuExit | (() => VcpuExit))[]) {
  const mem = new GuestMemory(new ArrayBuffer(MEM));
  const view = new DataView(mem.bytes.buffer);
  const r = { waits: [] as number[], waitResult: [] as readonly number[] | null, ending: false, runs: 0 };
  const host: CoreHost = {
    realtimeInto: (bytes) => bytes.fill(0),
    watch: () => {},
    wait(ns) {
      r.waits.push(ns);
      return r.waitResult;
    },
    ending: () => r.ending,
  };
  const core = new Core(mem, host);
  const vcpu = {
    run(): VcpuExit {
      r.runs++;
      const e = exits.shift();
      if (!e) throw new Error('script ran out');
      return typeof e === 'function' ? e() : e;
    },
    describeFatal: (kind, exit) => describeFatal(kind, exit, () => 0x1234n),
  } as Pick<Vcpu, 'run' | 'describeFatal'> as Vcpu;
  /** A POLL structure with junk in its outputs. */
  const putPoll = (timeout: bigint) => {
    view.setBigUint64(GPA, timeout, true);
    view.setBigUint64(GPA + 8, 0xffffffffffffffffn, true);
    view.setUint32(GPA + 16, 0xffffffff, true);
  };
  const results = (): [bigint, number] => [view.getBigUint64(GPA + 8, true), view.getInt32(GPA + 16, true)];
  view.setInt32(0x5008, 3, true); // HALT status 3, no cookie
  return { r, core, vcpu, view, mem, putPoll, results };
}

describe('Core.runSlice', () => {
  it('runs until the guest halts, like run()', () => {
    const t = rig([WALLTIME, WALLTIME, HALT]);
    expect(t.core.runSlice(t.vcpu, Infinity)).toEqual({ kind: 'halt', status: 3 });
    expect(t.r.runs).toBe(3);
  });

  it('yields after the first exit at or past the deadline, and goes on where it stopped', () => {
    const t = rig([WALLTIME, WALLTIME, WALLTIME, HALT]);
    expect(t.core.runSlice(t.vcpu, 0)).toEqual({ kind: 'yield' });
    expect(t.r.runs).toBe(1);
    expect(t.core.runSlice(t.vcpu, Infinity)).toEqual({ kind: 'halt', status: 3 });
    expect(t.r.runs).toBe(4);
  });

  it('an interrupt no hook claims is a preemption in a slice (yield), an unhandled exit in run()', () => {
    const t = rig([INTERRUPT, HALT]);
    expect(t.core.runSlice(t.vcpu, Infinity)).toEqual({ kind: 'yield' });
    expect(t.core.runSlice(t.vcpu, Infinity)).toEqual({ kind: 'halt', status: 3 });
    const u = rig([INTERRUPT]);
    expect(() => u.core.run(u.vcpu)).toThrow(GuestError);
  });

  it('an interrupt a vmexit hook claims is not a preemption', () => {
    const t = rig([INTERRUPT, HALT]);
    t.core.onVmexit((e) => e.kind === 'debug');
    expect(t.core.runSlice(t.vcpu, Infinity)).toEqual({ kind: 'halt', status: 3 });
  });

  it('a fatal exit throws as in run()', () => {
    const t = rig([{ kind: 'other', reason: 5 }]);
    expect(() => t.core.runSlice(t.vcpu, Infinity)).toThrow('KVM: unhandled exit: exit_reason=0x5, rip=0x1234');
  });
});

describe('POLL in a slice', () => {
  it('a long timeout with nothing ready blocks: one zero-timeout check, no wait, deadline returned', () => {
    const t = rig([POLL]);
    t.putPoll(10_000_000_000n);
    const before = performance.now();
    const o = t.core.runSlice(t.vcpu, Infinity);
    expect(o.kind).toBe('blocked');
    const deadline = (o as { deadlineMs: number }).deadlineMs;
    expect(deadline).toBeGreaterThanOrEqual(before + 10_000);
    expect(deadline).toBeLessThanOrEqual(performance.now() + 10_000);
    expect(t.r.waits).toEqual([0]);
    expect(t.core.blocked).toBe(true);
    // Nothing written yet: the guest is not running.
    expect(t.results()).toEqual([0xffffffffffffffffn, -1]);
  });

  it('completePoll writes ready_set and ret as POLL does, then the next slice resumes the guest', () => {
    const t = rig([POLL, HALT]);
    t.putPoll(10_000_000_000n);
    expect(t.core.runSlice(t.vcpu, Infinity).kind).toBe('blocked');
    expect(() => t.core.runSlice(t.vcpu, Infinity)).toThrow(HostError);
    t.core.completePoll([-1, 0, 31, 32, 63, 64, 31]);
    expect(t.results()).toEqual([1n | (1n << 31n) | (1n << 32n) | (1n << 63n), 4]);
    expect(t.core.blocked).toBe(false);
    expect(t.core.runSlice(t.vcpu, Infinity)).toEqual({ kind: 'halt', status: 3 });
  });

  it('completePoll with nothing waiting is refused', () => {
    const t = rig([]);
    expect(() => t.core.completePoll([1])).toThrow(HostError);
  });

  it('completes at once when the zero-timeout check finds a device ready', () => {
    const t = rig([POLL, HALT]);
    t.putPoll(10_000_000_000n);
    t.r.waitResult = [2];
    expect(t.core.runSlice(t.vcpu, Infinity)).toEqual({ kind: 'halt', status: 3 });
    expect(t.r.waits).toEqual([0]);
    expect(t.results()).toEqual([4n, 1]);
  });

  it('completes at once, nothing ready, when the run is ending (the next run reports why)', () => {
    const t = rig([POLL, { kind: 'interrupted', signal: 0 }]);
    t.putPoll(10_000_000_000n);
    t.r.ending = true;
    expect(t.core.runSlice(t.vcpu, Infinity)).toEqual({ kind: 'stopped' });
    expect(t.r.waits).toEqual([]);
    expect(t.results()).toEqual([0n, 0]);
  });

  it.each([0n, 1n, BigInt(SLICE_SYNC_POLL_NS)])('a timeout of %s ns waits on the thread as in run()', (timeout) => {
    const t = rig([POLL, HALT]);
    t.core.pollFd(10, 1);
    t.putPoll(timeout);
    t.r.waitResult = [];
    expect(t.core.runSlice(t.vcpu, Infinity)).toEqual({ kind: 'halt', status: 3 });
    expect(t.r.waits).toEqual([Number(timeout)]);
    expect(t.results()).toEqual([0n, 0]);
  });

  it('the arguments are checked again at completion: a POLL structure made unwritable meanwhile is a guest error', () => {
    const t = rig([POLL]);
    t.putPoll(10_000_000_000n);
    expect(t.core.runSlice(t.vcpu, Infinity).kind).toBe('blocked');
    t.mem.protect({ start: 0x4000, end: 0x5000, readable: true, writable: false });
    expect(() => t.core.completePoll([])).toThrow(GuestError);
  });

  it('a POLL structure out of guest memory is a guest error before anything blocks', () => {
    const t = rig([outl(0x503, MEM - 8)]);
    expect(() => t.core.runSlice(t.vcpu, Infinity)).toThrow(GuestError);
    expect(t.core.blocked).toBe(false);
  });

  it('run() is unchanged: a long POLL waits on the thread', () => {
    const t = rig([POLL, HALT]);
    t.putPoll(10_000_000_000n);
    expect(t.core.run(t.vcpu)).toEqual({ kind: 'halt', status: 3 });
    expect(t.r.waits).toEqual([10_000_000_000]);
  });
});
