// Core.dispatch over made-up exits (docs/abi.md §9.2, §9.3, §10.1, §10.3, §10.8),
// with a fake vCPU and a fake CoreHost: no KVM involved.
import { describe, expect, it } from 'vitest';
import { thrownBy } from '../helpers/thrown.js';
import type { Vcpu, VcpuExit } from '../../monitor/backend/backend.js';
import { describeFatal } from '../../monitor/backend/kvm/exits.js';
import { Core, type CoreHost } from '../../monitor/vm/core.js';
import { GuestError, HostError } from '../../monitor/errors.js';
import { GuestMemory } from '../../monitor/vm/memory.js';

const MEM = 4 << 20;
const NOW = 1_700_000_000_123_456_789n;
// The KVM backend's wording, with a fixed rip.
const vcpu: Pick<Vcpu, 'describeFatal'> = { describeFatal: (kind, exit) => describeFatal(kind, exit, () => 0x1234n) };

interface Rig {
  mem: GuestMemory;
  /** The guest memory, unchecked, for setting up and inspecting structures. */
  view: DataView;
  core: Core;
  waits: number[];
  /** Descriptors the core added to the wait set. */
  watched: { fd: number; handle: number }[];
  /** What the next wait() calls return. */
  waitResult: readonly number[] | null;
}

function rig(): Rig {
  const mem = new GuestMemory(new ArrayBuffer(MEM));
  const r = { mem, view: new DataView(mem.bytes.buffer), waits: [] as number[], watched: [] as Rig["watched"], waitResult: [] as readonly number[] | null } as Rig;
  const host: CoreHost = {
    realtimeInto(bytes) {
      expect(bytes.length).toBe(8);
      new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(0, NOW, true);
    },
    watch(fd, handle) {
      r.watched.push({ fd, handle });
    },
    wait(timeoutNs) {
      r.waits.push(timeoutNs);
      return r.waitResult;
    },
  };
  r.core = new Core(mem, host);
  return r;
}

const outl = (port: number, value: number): VcpuExit => ({ kind: 'io', out: true, size: 4, port, value });

const thrown = <T extends Error>(fn: () => unknown, C: new (...a: never[]) => T): string => thrownBy(fn, C).message;

const guestError = (r: Rig, exit: VcpuExit) => thrown(() => r.core.dispatch(exit, vcpu), GuestError);

/** Writes a HALT structure at gpa. */
function putHalt(r: Rig, gpa: number, status: number, cookie = 0n): void {
  r.view.setBigUint64(gpa, cookie, true);
  r.view.setInt32(gpa + 8, status, true);
}

describe('port I/O exits (§9.2)', () => {
  it.each([
    ['IN (4 bytes) to a hypercall port', { kind: 'io', out: false, size: 4, port: 0x502, value: 0 }, 0x502],
    ['1-byte OUT', { kind: 'io', out: true, size: 1, port: 0x502, value: 0 }, 0x502],
    ['2-byte OUT', { kind: 'io', out: true, size: 2, port: 0x508, value: 0 }, 0x508],
    ['OUT to 0x509', outl(0x509, 0), 0x509],
    ['OUT to 0x600 (ring kick without a ring)', outl(0x600, 0), 0x600],
    ['OUT to 0x4ff', outl(0x4ff, 0), 0x4ff],
    ['OUT to port 0', outl(0, 0), 0],
    ['OUT to 0xffff', outl(0xffff, 0), 0xffff],
  ] as [string, VcpuExit, number][])('%s → Invalid guest port access', (_name, exit, port) => {
    expect(guestError(rig(), exit)).toBe(`Invalid guest port access: port=0x${port.toString(16)}`);
  });

  it('port 0x500 (hypercall 0) is an invalid hypercall', () => {
    expect(guestError(rig(), outl(0x500, 0x1000))).toBe('Invalid guest hypercall: num=0');
  });

  it.each([2, 4, 5, 6, 7])('unregistered hypercall %i → Invalid guest hypercall', (nr) => {
    expect(guestError(rig(), outl(0x500 + nr, 0x1000))).toBe(`Invalid guest hypercall: num=${nr}`);
  });

  it('a registered handler gets the 32-bit GPA and the run continues', () => {
    const r = rig();
    const calls: number[] = [];
    r.core.hypercall(4, (gpa) => calls.push(gpa));
    expect(r.core.dispatch(outl(0x504, 0xfffff000), vcpu)).toBeNull();
    expect(calls).toEqual([0xfffff000]);
  });

  it('errors thrown by a handler propagate', () => {
    const r = rig();
    r.core.hypercall(2, () => {
      throw new GuestError('boom');
    });
    expect(guestError(r, outl(0x502, 0))).toBe('boom');
  });
});

describe('HALT (§10.8)', () => {
  it('returns the status; hooks run in registration order with the cookie', () => {
    const r = rig();
    const seen: string[] = [];
    r.core.onHalt((s, c) => seen.push(`a:${s}:${c?.byteOffset ?? 0}`));
    r.core.onHalt((s, c) => seen.push(`b:${s}:${c?.byteOffset ?? 0}`));
    putHalt(r, 0x2000, 7);
    expect(r.core.dispatch(outl(0x508, 0x2000), vcpu)).toEqual({ kind: 'halt', status: 7 });
    expect(seen).toEqual(['a:7:0', 'b:7:0']);
  });

  it.each([
    [0, 0],
    [255, 255],
    [300, 300],
    [0xffffffff, -1],
    [0x80000000, -2147483648],
  ])('exit_status u32 %i is read as signed %i', (raw, status) => {
    const r = rig();
    r.view.setUint32(0x2008, raw, true);
    expect(r.core.dispatch(outl(0x508, 0x2000), vcpu)).toEqual({ kind: 'halt', status });
  });

  it('checks the structure itself (16 bytes, strictly inside guest memory)', () => {
    const r = rig();
    expect(r.core.dispatch(outl(0x508, MEM - 17), vcpu)).toEqual({ kind: 'halt', status: 0 });
    expect(guestError(rig(), outl(0x508, MEM - 16))).toBe(`Invalid guest access: gpa=0x${(MEM - 16).toString(16)}, sz=16`);
    expect(guestError(rig(), outl(0x508, 0xffffffff))).toBe('Invalid guest access: gpa=0xffffffff, sz=16');
  });

  it('cookie 0 is not checked', () => {
    const r = rig();
    putHalt(r, 0x2000, 1, 0n);
    expect(r.core.dispatch(outl(0x508, 0x2000), vcpu)).toEqual({ kind: 'halt', status: 1 });
  });

  it('a non-zero cookie must name 512 bytes strictly inside guest memory', () => {
    const r = rig();
    const cookies: number[] = [];
    r.core.onHalt((_s, c) => cookies.push(c?.byteOffset ?? 0));
    putHalt(r, 0x2000, 255, BigInt(MEM - 513));
    expect(r.core.dispatch(outl(0x508, 0x2000), vcpu)).toEqual({ kind: 'halt', status: 255 });
    expect(cookies).toEqual([MEM - 513]);

    putHalt(r, 0x2000, 255, BigInt(MEM - 512)); // ends exactly at mem_size
    expect(guestError(r, outl(0x508, 0x2000))).toBe(`Invalid guest access: gpa=0x${(MEM - 512).toString(16)}, sz=512`);
    putHalt(r, 0x2000, 255, (1n << 64n) - 1n);
    expect(guestError(r, outl(0x508, 0x2000))).toBe('Invalid guest access: gpa=0xffffffffffffffff, sz=512');
    putHalt(r, 0x2000, 255, 1n << 32n);
    expect(guestError(r, outl(0x508, 0x2000))).toBe('Invalid guest access: gpa=0x100000000, sz=512');
    expect(cookies).toEqual([MEM - 513]); // hooks did not run for the bad cookies
  });
});

describe('WALLTIME (§10.1)', () => {
  it("writes the host's CLOCK_REALTIME ns into the structure", () => {
    const r = rig();
    r.view.setBigUint64(0x3000, 0xdeadn, true);
    expect(r.core.dispatch(outl(0x501, 0x3000), vcpu)).toBeNull();
    expect(r.view.getBigUint64(0x3000, true)).toBe(NOW);
    expect(r.view.getBigUint64(0x3008, true)).toBe(0n); // nothing past the 8 bytes
  });

  it('checks the 8-byte structure', () => {
    expect(guestError(rig(), outl(0x501, MEM - 8))).toBe(`Invalid guest access: gpa=0x${(MEM - 8).toString(16)}, sz=8`);
  });

  it('refuses a structure in a host read-only segment', () => {
    const r = rig();
    r.mem.protect({ start: 0x100000, end: 0x101000, readable: true, writable: false });
    expect(guestError(r, outl(0x501, 0x100100))).toBe('Invalid guest access: gpa=0x100100, sz=8');
  });
});

describe('POLL (§10.3)', () => {
  /** Writes a POLL structure with junk in the outputs; returns [ready_set, ret] after dispatch. */
  function poll(r: Rig, timeout: bigint, gpa = 0x4000): [bigint, number] {
    r.view.setBigUint64(gpa, timeout, true);
    r.view.setBigUint64(gpa + 8, 0xffffffffffffffffn, true);
    r.view.setUint32(gpa + 16, 0xffffffff, true);
    expect(r.core.dispatch(outl(0x503, gpa), vcpu)).toBeNull();
    return [r.view.getBigUint64(gpa + 8, true), r.view.getUint32(gpa + 16, true)];
  }

  it('zero timeout and no descriptors: never waits, clears the outputs', () => {
    const r = rig();
    expect(poll(r, 0n)).toEqual([0n, 0]);
    expect(r.waits).toEqual([]);
  });

  it('zero timeout with descriptors: waits with timeout 0', () => {
    const r = rig();
    r.core.pollFd(10, 1);
    expect(poll(r, 0n)).toEqual([0n, 0]);
    expect(r.waits).toEqual([0]);
  });

  it.each([1n, 999_999_999n, 1_000_000_000n, 86_400_000_000_000n, (1n << 32n) + 5n, (1n << 53n) - 1n])(
    'passes the exact timeout %s ns to wait',
    (t) => {
      const r = rig();
      poll(r, t);
      expect(r.waits).toEqual([Number(t)]);
    },
  );

  it('ready_set and ret from the keys: handles 1 and 40 set bits in both halves', () => {
    const r = rig();
    r.waitResult = [1, 40];
    expect(poll(r, 1000n)).toEqual([(1n << 1n) | (1n << 40n), 2]);
  });

  it('the wake descriptor (key -1) is ignored', () => {
    const r = rig();
    r.waitResult = [-1];
    expect(poll(r, 1000n)).toEqual([0n, 0]);
    r.waitResult = [-1, 3];
    expect(poll(r, 1000n)).toEqual([8n, 1]);
  });

  it('handles 0, 31, 32 and 63 (the edges of both 32-bit halves)', () => {
    const r = rig();
    r.waitResult = [0, 31, 32, 63];
    expect(poll(r, 1000n)).toEqual([1n | (1n << 31n) | (1n << 32n) | (1n << 63n), 4]);
  });

  it('a timeout with nothing ready: ready_set 0, ret 0', () => {
    const r = rig();
    r.waitResult = [];
    expect(poll(r, 5n)).toEqual([0n, 0]);
  });

  it('checks the 24-byte structure, which must be writable', () => {
    expect(guestError(rig(), outl(0x503, MEM - 24))).toBe(`Invalid guest access: gpa=0x${(MEM - 24).toString(16)}, sz=24`);
    const r = rig();
    r.mem.protect({ start: 0x100000, end: 0x101000, readable: true, writable: false });
    expect(guestError(r, outl(0x503, 0x100ff0))).toBe('Invalid guest access: gpa=0x100ff0, sz=24');
    expect(r.waits).toEqual([]);
  });
});

describe('other exits', () => {
  it('MMIO inside guest RAM is a host/guest translation fault', () => {
    expect(guestError(rig(), { kind: 'mmio', address: 0x100000n, write: true })).toBe('KVM: host/guest translation fault: rip=0x1234');
    expect(guestError(rig(), { kind: 'mmio', address: BigInt(MEM - 1), write: false })).toBe('KVM: host/guest translation fault: rip=0x1234');
  });

  it('MMIO outside guest RAM is an unhandled exit 0x6', () => {
    expect(guestError(rig(), { kind: 'mmio', address: BigInt(MEM), write: true })).toBe('KVM: unhandled exit: exit_reason=0x6, rip=0x1234');
    expect(guestError(rig(), { kind: 'mmio', address: 0xfee00000n, write: false })).toBe('KVM: unhandled exit: exit_reason=0x6, rip=0x1234');
    expect(guestError(rig(), { kind: 'mmio', address: (1n << 64n) - 1n, write: false })).toBe('KVM: unhandled exit: exit_reason=0x6, rip=0x1234');
  });

  it('EFAULT from the run is a host/guest translation fault', () => {
    expect(guestError(rig(), { kind: 'fault' })).toBe('KVM: host/guest translation fault: rip=0x1234');
  });

  it.each([
    [8, '0x8'], // SHUTDOWN (triple fault)
    [5, '0x5'], // HLT
    [4, '0x4'], // DEBUG without a debugger
    [0, '0x0'],
    [0x1c, '0x1c'],
  ])("'other' reason %i → unhandled exit", (reason, hex) => {
    expect(guestError(rig(), { kind: 'other', reason })).toBe(`KVM: unhandled exit: exit_reason=${hex}, rip=0x1234`);
  });

  it('the rip is printed in lowercase hex without padding', () => {
    const v: Pick<Vcpu, 'describeFatal'> = { describeFatal: (kind, exit) => describeFatal(kind, exit, () => 0xffffffff8000abcdn) };
    expect(thrown(() => rig().core.dispatch({ kind: 'other', reason: 8 }, v), GuestError)).toBe(
      'KVM: unhandled exit: exit_reason=0x8, rip=0xffffffff8000abcd',
    );
  });

  it('the words are the backend\'s: the core only says which kind of fatal exit it is', () => {
    const kinds: string[] = [];
    const v: Pick<Vcpu, 'describeFatal'> = { describeFatal: (kind) => (kinds.push(kind), `vmm: ${kind}`) };
    expect(thrown(() => rig().core.dispatch({ kind: 'fault' }, v), GuestError)).toBe('vmm: translation-fault');
    expect(thrown(() => rig().core.dispatch({ kind: 'mmio', address: 0x1000n, write: true }, v), GuestError)).toBe('vmm: translation-fault');
    expect(thrown(() => rig().core.dispatch({ kind: 'mmio', address: BigInt(MEM), write: true }, v), GuestError)).toBe('vmm: unhandled');
    expect(thrown(() => rig().core.dispatch({ kind: 'debug', reason: 'step', rip: 0n, dr6: 0n }, v), GuestError)).toBe('vmm: unhandled');
    expect(thrown(() => rig().core.dispatch({ kind: 'failEntry', reason: 1n }, v), HostError)).toBe('vmm: entry-failure');
    expect(thrown(() => rig().core.dispatch({ kind: 'internalError', suberror: 1 }, v), HostError)).toBe('vmm: internal-error');
    expect(kinds).toHaveLength(6);
  });

  it('entry failure and internal error are host errors', () => {
    expect(thrown(() => rig().core.dispatch({ kind: 'failEntry', reason: 0x80000021n }, vcpu), HostError)).toBe(
      'KVM: entry failure: hw_entry_failure_reason=0x80000021',
    );
    expect(thrown(() => rig().core.dispatch({ kind: 'failEntry', reason: (1n << 64n) - 1n }, vcpu), HostError)).toBe(
      'KVM: entry failure: hw_entry_failure_reason=0xffffffffffffffff',
    );
    expect(thrown(() => rig().core.dispatch({ kind: 'internalError', suberror: 1 }, vcpu), HostError)).toBe('KVM: internal error exit: suberror=0x1');
    expect(thrown(() => rig().core.dispatch({ kind: 'internalError', suberror: 0xab }, vcpu), HostError)).toBe('KVM: internal error exit: suberror=0xab');
  });

  it('interrupted: a signal ends the run with that signal, signal 0 is a stop', () => {
    expect(rig().core.dispatch({ kind: 'interrupted', signal: 15 }, vcpu)).toEqual({ kind: 'signal', signal: 15 });
    expect(rig().core.dispatch({ kind: 'interrupted', signal: 2 }, vcpu)).toEqual({ kind: 'signal', signal: 2 });
    expect(rig().core.dispatch({ kind: 'interrupted', signal: 0 }, vcpu)).toEqual({ kind: 'stopped' });
  });
});

describe('registration tables', () => {
  it('WALLTIME and POLL are taken by the core; HALT can never be registered', () => {
    const r = rig();
    expect(() => r.core.hypercall(1, () => {})).toThrow();
    expect(() => r.core.hypercall(3, () => {})).toThrow();
    expect(() => r.core.hypercall(8, () => {})).toThrow();
  });

  it('a second handler for the same number is refused', () => {
    const r = rig();
    r.core.hypercall(2, () => {});
    expect(() => r.core.hypercall(2, () => {})).toThrow();
    r.core.hypercall(6, () => {});
    expect(() => r.core.hypercall(6, () => {})).toThrow();
  });

  it('poll descriptors: same fd or same handle refused, handles limited to 0..63', () => {
    const r = rig();
    r.core.pollFd(10, 1);
    expect(() => r.core.pollFd(10, 2)).toThrow();
    expect(() => r.core.pollFd(11, 1)).toThrow();
    expect(() => r.core.pollFd(12, 64)).toThrow();
    expect(() => r.core.pollFd(13, -1)).toThrow();
    r.core.pollFd(14, 63);
    expect(r.watched).toEqual([
      { fd: 10, handle: 1 },
      { fd: 14, handle: 63 },
    ]);
  });
});

describe('vmexit hooks', () => {
  it('a hook that returns true claims the exit, even a fatal one', () => {
    const r = rig();
    const seen: VcpuExit[] = [];
    r.core.onVmexit((e) => (seen.push(e), true));
    expect(r.core.dispatch({ kind: 'other', reason: 8 }, vcpu)).toBeNull();
    expect(r.core.dispatch(outl(0x508, 0x2000), vcpu)).toBeNull(); // even HALT
    expect(seen).toEqual([{ kind: 'other', reason: 8 }, outl(0x508, 0x2000)]);
  });

  it('hooks run in order; the first claim stops the others; unclaimed exits are dispatched', () => {
    const r = rig();
    const order: string[] = [];
    r.core.onVmexit((e) => (order.push('a'), e.kind === 'mmio'));
    r.core.onVmexit((e) => (order.push('b'), e.kind === 'other'));
    r.core.onVmexit(() => (order.push('c'), false));
    expect(r.core.dispatch({ kind: 'mmio', address: 0n, write: false }, vcpu)).toBeNull();
    expect(order).toEqual(['a']);
    expect(r.core.dispatch({ kind: 'other', reason: 5 }, vcpu)).toBeNull();
    expect(order).toEqual(['a', 'a', 'b']);
    putHalt(r, 0x2000, 3);
    expect(r.core.dispatch(outl(0x508, 0x2000), vcpu)).toEqual({ kind: 'halt', status: 3 });
    expect(order).toEqual(['a', 'a', 'b', 'a', 'b', 'c']);
  });
});

describe('run()', () => {
  it('dispatches exits until the guest halts', () => {
    const r = rig();
    putHalt(r, 0x2000, 42);
    const exits: VcpuExit[] = [outl(0x501, 0x3000), outl(0x503, 0x4000), outl(0x508, 0x2000), outl(0x500, 0)];
    const fake = { ...vcpu, run: () => exits.shift() as VcpuExit } as unknown as Vcpu;
    expect(r.core.run(fake)).toEqual({ kind: 'halt', status: 42 });
    expect(exits).toHaveLength(1);
    expect(r.view.getBigUint64(0x3000, true)).toBe(NOW);
  });

  it('stops on an interruption', () => {
    const r = rig();
    const exits: VcpuExit[] = [outl(0x501, 0x3000), { kind: 'interrupted', signal: 2 }];
    const fake = { ...vcpu, run: () => exits.shift() as VcpuExit } as unknown as Vcpu;
    expect(r.core.run(fake)).toEqual({ kind: 'signal', signal: 2 });
  });
});
