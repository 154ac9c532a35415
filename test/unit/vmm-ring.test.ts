// The net ring on the FreeBSD vmm backend (docs/abi.md §13, §18) over the
// recording fake of the native surface: the kick is a pipe the vCPU loop
// writes one byte to per OUT to 0x600 (ignored while no ring is bound), a
// full pipe neither blocks nor fails the run, the pipe's ends are closed
// once each (write end first) on every way out, the Capsicum sandbox limits
// them, and the ring module offers the ring on vmm through the neutral
// PortEvents: with a real ring thread reading a real pipe, the guest's kick
// through the vCPU loop is what wakes it.
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Ring } from '../../monitor/abi/constants.js';
import type { Machine } from '../../monitor/backend/backend.js';
import { VmmBackend } from '../../monitor/backend/vmm/backend.js';
import { freebsdHostIo } from '../../monitor/backend/vmm/host-io.js';
import { KICK_READ_BYTES } from '../../monitor/backend/vmm/kick.js';
import { capsicumSandbox } from '../../monitor/backend/vmm/sandbox.js';
import { VmRegistry } from '../../monitor/backend/vmm/vms.js';
import { HostError } from '../../monitor/errors.js';
import { RING_COUNTERS_LENGTH } from '../../monitor/vm/compose.js';
import { GuestMemory } from '../../monitor/vm/memory.js';
import { startRing } from '../../modules/net/ring.js';
import { thrownBy } from '../helpers/thrown.js';
import { fake, type Fake, KICK_READ_FD, KICK_WRITE_FD, nativeError, VM_FD } from './vmm-fake.js';

const ALLOC = 4 << 20;
/** mem_size: the ring's 2 MiB sit above it (§13.2). */
const MEM_SIZE = 2 << 20;
const OUT_KICK = { exitcode: 0, port: 0x600, eax: 0 } as const;
/** A later exit that reaches the core, so run() returns. */
const OUT_PUTS = { exitcode: 0, port: 0x502, eax: 0x3000 } as const;

function machine(f: Fake) {
  const vms = new VmRegistry(f.binding, () => {});
  const m = new VmmBackend(f.binding, vms).createMachine(ALLOC);
  return { m, vms, cpu: m.createVcpu() };
}

const writes = (f: Fake) => f.calls.filter((c) => c.startsWith('writeFd'));
const closes = (f: Fake) => f.calls.filter((c) => c.startsWith('closeFd'));

describe('vmm kick port (PortEvents)', () => {
  it('is available; createKick makes a pipe: the read end to sleep on, the write end to signal, one byte to wake', () => {
    const f = fake();
    const { m } = machine(f);
    expect(m.portEvents.available).toBe(true);
    const k = m.portEvents.createKick();
    expect(f.calls.at(-1)).toBe('kickPipe()');
    expect({ ...k, wakeBytes: [...k.wakeBytes] }).toEqual({ wait: KICK_READ_FD, signal: KICK_WRITE_FD, readSize: KICK_READ_BYTES, wakeBytes: [1] });
  });

  it('bound: each 32-bit OUT to 0x600 writes one byte to the write end and the guest goes on; unbound: ignored', () => {
    const f = fake();
    const { m, cpu } = machine(f);
    const k = m.portEvents.createKick();
    f.steps.push(OUT_KICK, OUT_PUTS);
    expect(cpu.run()).toMatchObject({ kind: 'io', port: 0x502 });
    expect(writes(f)).toEqual([]); // created, not yet attached: §18's "no ring"
    m.portEvents.attach(0x600, k);
    f.steps.push(OUT_KICK, OUT_KICK, OUT_PUTS);
    expect(cpu.run()).toMatchObject({ kind: 'io', port: 0x502 });
    expect(writes(f)).toEqual([`writeFd(${KICK_WRITE_FD},1)`, `writeFd(${KICK_WRITE_FD},1)`]);
    m.portEvents.detach(0x600, k);
    f.steps.push(OUT_KICK, OUT_PUTS);
    cpu.run();
    expect(writes(f)).toHaveLength(2);
  });

  it('only 0x600 can kick: attach to another port throws, and leaves the kick unbound', () => {
    const f = fake();
    const { m, cpu } = machine(f);
    const k = m.portEvents.createKick();
    expect(thrownBy(() => m.portEvents.attach(0x601, k), HostError).message).toBe('vmm: port 0x601 cannot kick (only 0x600 can)');
    f.steps.push(OUT_KICK, OUT_PUTS);
    cpu.run();
    expect(writes(f)).toEqual([]);
  });

  it('an IN or a narrow OUT to 0x600 is no kick: it reaches the core, even with a ring bound', () => {
    const f = fake();
    const { m, cpu } = machine(f);
    m.portEvents.attach(0x600, m.portEvents.createKick());
    f.steps.push({ exitcode: 0, port: 0x600, bytes: 2 });
    expect(cpu.run()).toEqual({ kind: 'io', out: true, size: 2, port: 0x600, value: 0 });
    f.steps.push({ exitcode: 0, port: 0x600, in: true });
    expect(cpu.run()).toMatchObject({ kind: 'io', out: false, port: 0x600 });
    expect(writes(f)).toEqual([]);
  });

  it('a full pipe (EAGAIN) neither blocks nor fails the run: one attempt per kick, then the guest goes on', () => {
    const f = fake();
    const { m, cpu } = machine(f);
    m.portEvents.attach(0x600, m.portEvents.createKick());
    f.writeResult[KICK_WRITE_FD] = -1;
    f.steps.push(OUT_KICK, OUT_KICK, OUT_KICK, OUT_PUTS);
    expect(cpu.run()).toEqual({ kind: 'io', out: true, size: 4, port: 0x502, value: 0x3000 });
    expect(writes(f)).toHaveLength(3);
  });

  it('any other write failure is the monitor\'s own: "write to the ring kick pipe: …"', () => {
    const f = fake();
    const { m, cpu } = machine(f);
    m.portEvents.attach(0x600, m.portEvents.createKick());
    f.fail['writeFd'] = nativeError('write', 9, 'EBADF', 'Bad file descriptor');
    f.steps.push(OUT_KICK, OUT_PUTS);
    expect(thrownBy(() => cpu.run(), HostError).message).toBe('write to the ring kick pipe: Bad file descriptor');
  });

  it('closeKick: unbinds, closes the write end then the read end, once; later kicks are ignored', () => {
    const f = fake();
    const { m, cpu } = machine(f);
    const k = m.portEvents.createKick();
    m.portEvents.attach(0x600, k);
    m.portEvents.closeKick(k);
    m.portEvents.closeKick(k);
    m.portEvents.detach(0x600, k);
    expect(closes(f)).toEqual([`closeFd(${KICK_WRITE_FD})`, `closeFd(${KICK_READ_FD})`]);
    f.steps.push(OUT_KICK, OUT_PUTS);
    cpu.run();
    expect(writes(f)).toEqual([]);
    expect(() => m.portEvents.attach(0x600, k)).toThrowError('vmm: this ring kick is closed');
  });

  it('closing one kick leaves another bound kick alone', () => {
    const f = fake();
    const { m, cpu } = machine(f);
    const old = m.portEvents.createKick();
    f.kickPipe = [30, 31];
    const current = m.portEvents.createKick();
    m.portEvents.attach(0x600, current);
    m.portEvents.closeKick(old);
    f.steps.push(OUT_KICK, OUT_PUTS);
    cpu.run();
    expect(writes(f)).toEqual(['writeFd(31,1)']);
  });

  it('Machine.close() unbinds the kick (the ring, stopped first, closes its pipe itself)', () => {
    const f = fake();
    const { m } = machine(f);
    const k = m.portEvents.createKick();
    m.portEvents.attach(0x600, k);
    m.close();
    expect((m.portEvents as unknown as { fd: number }).fd).toBe(-1);
    expect(closes(f)).not.toContain(`closeFd(${KICK_WRITE_FD})`);
    m.portEvents.closeKick(k);
    expect(closes(f).slice(-2)).toEqual([`closeFd(${KICK_WRITE_FD})`, `closeFd(${KICK_READ_FD})`]);
  });

  it('share(): guest memory for the ring thread through the addon\'s shareMemory, no copy', () => {
    const f = fake();
    const { m } = machine(f);
    const s = m.share();
    new Uint8Array(m.memory)[100] = 7;
    expect(new Uint8Array(s)[100]).toBe(7);
    expect(f.calls).toContain(`shareMemory(${ALLOC})`);
  });
});

describe('Capsicum and the kick pipe', () => {
  function setup() {
    const f = fake();
    const vms = new VmRegistry(f.binding, () => {});
    const m = new VmmBackend(f.binding, vms).createMachine(ALLOC);
    const sandbox = capsicumSandbox(f.binding, vms, () => 14);
    f.calls.length = 0;
    return { f, m, sandbox };
  }

  it('the read end gets CAP_READ | CAP_EVENT, the write end CAP_WRITE, before the VM descriptor and cap_enter; once', () => {
    const { f, m, sandbox } = setup();
    m.portEvents.createKick();
    f.calls.length = 0;
    sandbox.enter('process');
    expect(f.calls.slice(0, 3)).toEqual([
      `capRightsLimitKick(${KICK_READ_FD},read)`,
      `capRightsLimitKick(${KICK_WRITE_FD},write)`,
      `capRightsLimitIoctl(${VM_FD})`,
    ]);
    expect(f.calls.at(-1)).toBe('capEnter()');
    sandbox.enter('process');
    expect(f.calls.filter((c) => c.startsWith('capRightsLimitKick'))).toHaveLength(2);
  });

  it('thread scope limits the pipe too; a pipe already closed is not limited', () => {
    const { f, m, sandbox } = setup();
    const k = m.portEvents.createKick();
    m.portEvents.closeKick(k);
    f.calls.length = 0;
    sandbox.enter('thread');
    expect(f.calls.some((c) => c.startsWith('capRightsLimitKick'))).toBe(false);
    f.kickPipe = [30, 31];
    m.portEvents.createKick();
    sandbox.enter('thread');
    expect(f.calls.filter((c) => c.startsWith('capRightsLimitKick'))).toEqual(['capRightsLimitKick(30,read)', 'capRightsLimitKick(31,write)']);
  });

  it('a failing limit: "Could not install the sandbox: cap_rights_limit: …"', () => {
    const { f, m, sandbox } = setup();
    m.portEvents.createKick();
    f.fail['capRightsLimitKick'] = nativeError('cap_rights_limit', 93, 'ENOTCAPABLE', 'Capabilities insufficient');
    expect(thrownBy(() => sandbox.enter('process'), HostError).message).toBe('Could not install the sandbox: cap_rights_limit: Capabilities insufficient');
    expect(f.calls).not.toContain('capEnter()');
  });
});

/** The SetupContext startRing reads, over a vmm machine. */
function ringContext(m: Machine, vcpu: { backend: string; token: number }, share?: () => SharedArrayBuffer) {
  const memory = new GuestMemory(m.memory, MEM_SIZE);
  memory.sharer = share ?? (() => m.share());
  const halts: (() => void)[] = [];
  const warnings: string[] = [];
  const ctx = {
    portEvents: m.portEvents,
    warn: (w: string) => warnings.push(w),
    memory,
    memSize: MEM_SIZE,
    ringCounters: new Float64Array(new SharedArrayBuffer(RING_COUNTERS_LENGTH * 8)),
    vcpu,
    onHalt: (fn: () => void) => halts.push(fn),
    onVmexit() {},
    bootInfo: { hostFeatures: 0, netRing: 0 },
  };
  return { ctx, halts, warnings };
}

describe('the ring module on vmm (§13.5 with §18\'s pipe)', () => {
  it('pipe() fails: one warning, nothing to close, the guest keeps the hypercalls', () => {
    const f = fake();
    const { m, cpu } = machine(f);
    f.fail['kickPipe'] = nativeError('pipe2', 24, 'EMFILE', 'Too many open files');
    const t = ringContext(m, cpu.handle);
    expect(startRing(t.ctx as never, new Map([[0, 30]]), freebsdHostIo(f.binding))).toBeNull();
    expect(t.warnings).toEqual(['pipe() failed, falling back to hypercalls: Too many open files']);
    expect(t.ctx.bootInfo).toEqual({ hostFeatures: 0, netRing: 0 });
    expect(closes(f)).toEqual([]);
  });

  it('the thread cannot start: one warning, the kick unbound, both ends closed once (write end first)', () => {
    const f = fake();
    const { m, cpu } = machine(f);
    const t = ringContext(m, cpu.handle, () => {
      throw new HostError('no sharing today');
    });
    expect(startRing(t.ctx as never, new Map([[0, 30]]), freebsdHostIo(f.binding))).toBeNull();
    expect(t.warnings).toEqual(['could not start the net ring thread (no sharing today), falling back to hypercalls']);
    expect(t.ctx.bootInfo).toEqual({ hostFeatures: 0, netRing: 0 });
    expect(closes(f)).toEqual([`closeFd(${KICK_WRITE_FD})`, `closeFd(${KICK_READ_FD})`]);
    f.steps.push(OUT_KICK, OUT_PUTS);
    cpu.run();
    expect(writes(f)).toEqual([]);
  });

  it('offered: host_features bit 0 and net_ring = mem_size; the guest\'s kick through the vCPU loop wakes the sleeping thread; stop closes the pipe once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ukvm-vmm-ring-'));
    const fds: number[] = [];
    try {
      // Real descriptors for the ring thread: FIFOs stand in for the kick
      // pipe (its read end blocking, its write end not, as kickPipe makes
      // them) and for the tap.
      execFileSync('mkfifo', [join(dir, 'kick'), join(dir, 'tap')]);
      const kickRead = openSync(join(dir, 'kick'), constants.O_RDWR);
      const kickWrite = openSync(join(dir, 'kick'), constants.O_WRONLY | constants.O_NONBLOCK);
      const tapOut = openSync(join(dir, 'tap'), constants.O_RDONLY | constants.O_NONBLOCK);
      const tapIn = openSync(join(dir, 'tap'), constants.O_WRONLY | constants.O_NONBLOCK);
      fds.push(kickRead, kickWrite, tapOut, tapIn);

      const f = fake();
      f.kickPipe = [kickRead, kickWrite];
      f.real.add(kickRead).add(kickWrite);
      const { m, cpu } = machine(f);
      const t = ringContext(m, cpu.handle);
      const ring = startRing(t.ctx as never, new Map([[0, tapIn]]), freebsdHostIo(f.binding));
      expect(ring).not.toBeNull();
      expect(t.warnings).toEqual([]);
      expect(t.ctx.bootInfo).toEqual({ hostFeatures: Ring.FEATURE_RING_IO, netRing: MEM_SIZE });

      const u32 = new Uint32Array(m.memory, MEM_SIZE, 32);
      const bytes = new Uint8Array(m.memory);
      const view = new DataView(m.memory);
      // The thread has spun out and sleeps in read(2) of the pipe: needs_kick = 1 (§13.4 host rule 2).
      expect(await until(() => Atomics.load(u32, 72 / 4) === 1)).toBe(true);

      // The guest publishes one NET_WRITE of a 60-byte frame at 0x10000 (§13.4 guest rules 2–3)…
      const frame = Uint8Array.from({ length: 60 }, (_, i) => (i * 7 + 3) & 0xff);
      bytes.set(frame, 0x10000);
      const e = MEM_SIZE + 128;
      view.setUint32(e, Ring.OP_NET_WRITE, true);
      view.setUint32(e + 4, 0, true);
      view.setBigUint64(e + 8, 0x10000n, true);
      view.setUint32(e + 16, frame.length, true);
      Atomics.store(u32, 0, 1);
      // …and without a kick the sleeping thread does not see it.
      await sleep(150);
      expect(readFrame(tapOut)).toBeNull();
      expect(Atomics.load(u32, 64 / 4)).toBe(0);

      // The kick: a VM exit the vCPU loop turns into one byte on the pipe.
      f.steps.push(OUT_KICK, OUT_PUTS);
      expect(cpu.run()).toMatchObject({ kind: 'io', port: 0x502 });
      expect(writes(f)).toEqual([`writeFd(${kickWrite},1)`]);
      let got: Uint8Array | null = null;
      expect(await until(() => (got = readFrame(tapOut)) !== null)).toBe(true);
      expect([...(got as unknown as Uint8Array)]).toEqual([...frame]);
      expect(await until(() => Atomics.load(u32, 64 / 4) === 1)).toBe(true);

      // HALT: the ring stops (a wake-up byte on the pipe), then both ends close, the write end first, once.
      for (const h of t.halts) h();
      ring?.stop();
      expect(writes(f).at(-1)).toBe(`writeFd(${kickWrite},1)`);
      expect(closes(f)).toEqual([`closeFd(${kickWrite})`, `closeFd(${kickRead})`]);
      fds.splice(0, 2); // closed by the fake's closeFd, for real
      // A guest kicking after that is ignored (§18), no write to a closed descriptor.
      const before = writes(f).length;
      f.steps.push(OUT_KICK, OUT_PUTS);
      cpu.run();
      expect(writes(f)).toHaveLength(before);
    } finally {
      for (const fd of fds) closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 40_000);
});

function readFrame(fd: number): Uint8Array | null {
  const b = new Uint8Array(2048);
  try {
    const n = readSync(fd, b);
    return n > 0 ? b.subarray(0, n) : null;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return null;
    throw e;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(ok: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) return false;
    await sleep(2);
  }
  return true;
}
