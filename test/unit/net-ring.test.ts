// The net ring's host side (modules/net/ring-consumer.ts) without KVM: a
// guest memory of 4 MiB with the ring at 2 MiB, taps and the eventfd made
// up, entries written here the way a guest writes them (docs/abi.md §13.3,
// §13.4). Also the --net-ring option and the library's netRing check.
import { describe, expect, it } from 'vitest';
import { Result, Ring } from '../../monitor/abi/constants.js';
import { GuestError, HostError, OptionError } from '../../monitor/errors.js';
import { GuestMemory } from '../../monitor/vm/memory.js';
import { RingConsumer, type RingIo } from '../../modules/net/ring-consumer.js';
import { parseNetOption } from '../../modules/net/options.js';
import { netModule } from '../../modules/net/index.js';
import { RING_COUNTERS_LENGTH } from '../../monitor/vm/compose.js';

const MiB = 1 << 20;
const RING = 2 * MiB; // = mem_size
const TAP = 5; // the tap descriptor of device handle 1

interface Fake {
  mem: GuestMemory;
  ring: DataView;
  io: RingIo & { writes: Uint8Array[]; reads: number; sleeps: number; kickSeen: number[] };
  counters: Float64Array;
  consumer: RingConsumer;
  stop: { now: boolean };
  /** What read() hands back, in order: bytes, or a result code (−1 EAGAIN, −2 EINTR, 'throw'). */
  inbox: (Uint8Array | number | 'throw')[];
  writeResult: (n: number) => number | 'throw';
}

function fake(): Fake {
  const mem = new GuestMemory(new ArrayBuffer(RING + 2 * MiB), RING);
  mem.protect({ start: 0x100000, end: 0x101000, readable: true, writable: false }); // "text"
  const ring = new DataView(mem.bytes.buffer, RING, Ring.SIZE);
  const stop = { now: false };
  const counters = new Float64Array(RING_COUNTERS_LENGTH);
  const f = { mem, ring, counters, stop, inbox: [], writeResult: (n: number) => n } as unknown as Fake;
  f.io = {
    writes: [],
    reads: 0,
    sleeps: 0,
    kickSeen: [],
    write(fd, bytes) {
      expect(fd).toBe(TAP);
      const r = f.writeResult(bytes.length);
      if (r === 'throw') throw Object.assign(new Error('write: Input/output error'), { errno: 5, code: 'EIO', syscall: 'write' });
      if (r >= 0) f.io.writes.push(Uint8Array.from(bytes.subarray(0, r)));
      return r;
    },
    read(fd, bytes) {
      expect(fd).toBe(TAP);
      f.io.reads++;
      const next = f.inbox.shift() ?? -1;
      if (next === 'throw') throw Object.assign(new Error('read: Bad address'), { errno: 14, code: 'EFAULT', syscall: 'read' });
      if (typeof next === 'number') return next;
      bytes.set(next.subarray(0, bytes.length));
      return Math.min(next.length, bytes.length);
    },
    sleep() {
      f.io.sleeps++;
      f.io.kickSeen.push(ring.getUint32(72, true));
      stop.now = true; // nothing will ever come: end the run
      return true;
    },
    pause() {},
    now: () => 0,
  };
  f.consumer = new RingConsumer(mem, { gpa: RING, taps: new Map([[1, TAP]]), counters, spinIterations: 16, spinMs: 0 }, f.io, {
    stopping: () => stop.now,
    serve() {},
  });
  return f;
}

/** Writes entry `slot` as a guest would (fields only; publishing is separate). */
function entry(f: Fake, slot: number, op: number, handle: number, data: number, len: number, id = slot, dataHi = 0): void {
  const at = Ring.ENTRIES_OFFSET + (slot & Ring.MASK) * 32;
  f.ring.setUint32(at, op, true);
  f.ring.setUint32(at + 4, handle, true);
  f.ring.setUint32(at + 8, data, true);
  f.ring.setUint32(at + 12, dataHi, true);
  f.ring.setUint32(at + 16, len, true);
  f.ring.setUint32(at + 20, id, true);
}
const publish = (f: Fake, tail: number) => f.ring.setUint32(0, tail >>> 0, true);
const entHead = (f: Fake) => f.ring.getUint32(64, true);
const comTail = (f: Fake) => f.ring.getUint32(68, true);
function commit(f: Fake, slot: number): { id: number; ret: number; len: number } {
  const at = Ring.COMMITS_OFFSET + (slot & Ring.MASK) * 16;
  return { id: f.ring.getUint32(at, true), ret: f.ring.getInt32(at + 4, true), len: f.ring.getUint32(at + 8, true) };
}

describe('net ring consumer (§13.4)', () => {
  it('writes go to the tap in order, batched: no commit, ent_head advanced once for the batch', () => {
    const f = fake();
    f.mem.bytes.set([1, 2, 3, 4], 0x180000);
    f.mem.bytes.set([9, 9], 0x180100);
    entry(f, 0, Ring.OP_NET_WRITE, 1, 0x180000, 4);
    entry(f, 1, 7, 1, 0, 0); // unknown operation: skipped
    entry(f, 2, Ring.OP_NET_WRITE, 9, 0x180000, 4); // bad handle: skipped silently
    entry(f, 3, Ring.OP_NET_WRITE, 1, 0x180100, 2);
    publish(f, 4);
    expect(f.consumer.step()).toBe(true);
    expect(f.io.writes.map((w) => [...w])).toEqual([[1, 2, 3, 4], [9, 9]]);
    expect({ head: entHead(f), comTail: comTail(f) }).toEqual({ head: 4, comTail: 0 });
    expect([f.counters[0], f.counters[1], f.counters[3 + 2]]).toEqual([0, 2, 6]);
    expect(f.consumer.step()).toBe(false);
  });

  it('each read makes exactly one commit: OK with the length, AGAIN with 0, EINVAL for a bad handle or a read error', () => {
    const f = fake();
    f.inbox.push(Uint8Array.from([7, 7, 7]), -1, 'throw', -2, Uint8Array.from([5]));
    entry(f, 0, Ring.OP_NET_READ, 1, 0x180000, 100, 0xa0);
    entry(f, 1, Ring.OP_NET_READ, 1, 0x180000, 100, 0xa1);
    entry(f, 2, Ring.OP_NET_READ, 2, 0xffffffff, 100, 0xa2); // bad handle: EINVAL, buffer never looked at
    entry(f, 3, Ring.OP_NET_READ, 1, 0x180000, 100, 0xa3);
    entry(f, 4, Ring.OP_NET_READ, 1, 0x180200, 1, 0xa4); // EINTR is retried
    publish(f, 5);
    f.consumer.step();
    expect([0, 1, 2, 3, 4].map((s) => commit(f, s))).toEqual([
      { id: 0xa0, ret: Result.OK, len: 3 },
      { id: 0xa1, ret: Result.AGAIN, len: 0 },
      { id: 0xa2, ret: Result.EINVAL, len: 0 },
      { id: 0xa3, ret: Result.EINVAL, len: 0 },
      { id: 0xa4, ret: Result.OK, len: 1 },
    ]);
    expect([...f.mem.bytes.subarray(0x180000, 0x180003)]).toEqual([7, 7, 7]);
    expect({ head: entHead(f), comTail: comTail(f), reads: f.counters[0], bytesIn: f.counters[2 + 2] }).toEqual({ head: 5, comTail: 5, reads: 5, bytesIn: 4 });
  });

  it('a read publishes the writes before it first (ent_head), and the host never checks the commit array for room', () => {
    const f = fake();
    for (let i = 0; i < 3000; i++) {
      entry(f, i, Ring.OP_NET_READ, 1, 0x180000, 64, i);
      publish(f, i + 1);
      f.consumer.step();
    }
    expect({ head: entHead(f), comTail: comTail(f) }).toEqual({ head: 3000, comTail: 3000 });
    expect(commit(f, 2999)).toEqual({ id: 2999, ret: Result.AGAIN, len: 0 });
  });

  it('indices are free-running u32: the ring works across 2^32', () => {
    const f = fake();
    // Bring the host to 2^32 − 2 the legal way: 4 entries at a time.
    const start = 0xfffffffe;
    (f.consumer as unknown as { head: number }).head = start;
    for (let i = 0; i < 4; i++) entry(f, start + i, Ring.OP_NET_WRITE, 1, 0x180000, 1);
    publish(f, start + 4);
    f.consumer.step();
    expect(entHead(f)).toBe(2);
    expect(f.io.writes).toHaveLength(4);
  });

  it('a buffer outside guest memory (inside the ring, or straddling mem_size) or in read-only text is fatal', () => {
    const cases: Array<[number, number, number, string]> = [
      [Ring.OP_NET_READ, RING + 0x1000, 1514, `Invalid guest access: gpa=0x${(RING + 0x1000).toString(16)}, sz=1514`],
      [Ring.OP_NET_WRITE, RING - 16, 64, `Invalid guest access: gpa=0x${(RING - 16).toString(16)}, sz=64`],
      [Ring.OP_NET_WRITE, RING - 64, 64, `Invalid guest access: gpa=0x${(RING - 64).toString(16)}, sz=64`], // ends at mem_size (§9.3)
      [Ring.OP_NET_READ, 0x100800, 16, 'Invalid guest access: gpa=0x100800, sz=16'],
    ];
    for (const [op, data, len, message] of cases) {
      const f = fake();
      f.inbox.push(Uint8Array.from([1]));
      entry(f, 0, op, 1, data, len);
      publish(f, 1);
      expect(() => f.consumer.step()).toThrowError(new GuestError(message));
    }
    const f = fake();
    entry(f, 0, Ring.OP_NET_WRITE, 1, 0x1000, 16, 0, 1); // data ≥ 2^32
    publish(f, 1);
    expect(() => f.consumer.step()).toThrowError(new GuestError('Invalid guest access: gpa=0x100001000, sz=16'));
  });

  it('ent_tail more than 1024 ahead of the host is fatal at once (no walk over 2^31 stale slots)', () => {
    const f = fake();
    publish(f, 0x80000000);
    expect(() => f.consumer.step()).toThrowError(new GuestError('Invalid net ring state: ent_tail=2147483648 is 2147483648 entries ahead of ent_head=0 (the ring has 1024 slots)'));
    const g = fake();
    for (let i = 0; i < 1024; i++) entry(g, i, 0, 0, 0, 0); // 1024 outstanding: all distinct slots, accepted
    publish(g, 1024);
    expect(g.consumer.step()).toBe(true);
    expect(entHead(g)).toBe(1024);
  });

  it('the guest overwriting ent_head / com_tail changes nothing: the host publishes its own counts', () => {
    const f = fake();
    entry(f, 0, Ring.OP_NET_READ, 1, 0x180000, 64, 1);
    publish(f, 1);
    f.ring.setUint32(64, 0xdeadbeef, true);
    f.ring.setUint32(68, 0x12345678, true);
    f.consumer.step();
    expect({ head: entHead(f), comTail: comTail(f), c: commit(f, 0).id }).toEqual({ head: 1, comTail: 1, c: 1 });
  });

  it('a failed tap write is fatal with the reference\'s wording; a short one too; EAGAIN is waited out', () => {
    const f = fake();
    f.writeResult = () => 'throw';
    entry(f, 0, Ring.OP_NET_WRITE, 1, 0x180000, 60);
    publish(f, 1);
    expect(() => f.consumer.step()).toThrowError(new HostError('Fatal write error on net device: Input/output error'));
    const g = fake();
    g.writeResult = (n) => n - 1;
    entry(g, 0, Ring.OP_NET_WRITE, 1, 0x180000, 60);
    publish(g, 1);
    expect(() => g.consumer.step()).toThrowError(new HostError('Fatal write error: wrote only 59 out of 60 bytes'));
    const h = fake();
    let tries = 0;
    h.writeResult = (n) => (++tries < 3 ? -1 : n);
    entry(h, 0, Ring.OP_NET_WRITE, 1, 0x180000, 60);
    publish(h, 1);
    h.consumer.step();
    expect({ tries, writes: h.io.writes.length }).toEqual({ tries: 3, writes: 1 });
  });

  it('sleeps only after needs_kick = 1 and a re-check finds nothing; clears it on waking', () => {
    const f = fake();
    f.consumer.run(); // nothing published: spins, declares, sleeps (the fake then stops it)
    expect({ sleeps: f.io.sleeps, kickWhileAsleep: f.io.kickSeen, kickAfter: f.ring.getUint32(72, true) }).toEqual({ sleeps: 1, kickWhileAsleep: [1], kickAfter: 0 });
    // Work published before it would sleep: no sleep at all.
    const g = fake();
    entry(g, 0, Ring.OP_NET_WRITE, 1, 0x180000, 4);
    publish(g, 1);
    g.stop.now = false;
    let steps = 0;
    (g.io as { sleep: () => boolean }).sleep = () => {
      g.stop.now = true;
      return true;
    };
    const s = g.consumer.step.bind(g.consumer);
    g.consumer.step = () => (steps++, s());
    g.consumer.run();
    expect(g.io.writes).toHaveLength(1);
    expect(steps).toBeGreaterThanOrEqual(2);
  });

  it('a stop request ends a batch between entries', () => {
    const f = fake();
    for (let i = 0; i < 10; i++) entry(f, i, Ring.OP_NET_WRITE, 1, 0x180000, 4);
    publish(f, 10);
    let n = 0;
    f.writeResult = (len) => {
      if (++n === 3) f.stop.now = true;
      return len;
    };
    f.consumer.step();
    expect(f.io.writes).toHaveLength(3);
  });
});

describe('--net-ring and netRing', () => {
  it('parses on and off, nothing else', () => {
    expect(parseNetOption('--net-ring=on')).toEqual({ kind: 'ring', mode: 'on' });
    expect(parseNetOption('--net-ring=off')).toEqual({ kind: 'ring', mode: 'off' });
    for (const bad of ['--net-ring', '--net-ring=', '--net-ring=yes', '--net-ring=ON']) expect(parseNetOption(bad)).toBeNull();
  });

  it('the library option takes only "on" or "off"', () => {
    const opt = netModule.library.find((o) => o.name === 'netRing');
    expect(opt).toBeDefined();
    for (const good of [undefined, 'on', 'off']) expect(() => opt?.check(good)).not.toThrow();
    for (const bad of [true, 1, 'yes', null]) expect(() => opt?.check(bad)).toThrowError(new OptionError("netRing must be 'on' or 'off'"));
  });
});

describe('offering the ring (§13.5): each failing step warns once and leaves the hypercalls', () => {
  // PortEvents as the KVM backend's: one eventfd (42) is both ends of the kick.
  function ctx(o: { available?: boolean; attach?: () => void; share?: () => never }) {
    const warnings: string[] = [];
    const closed: number[] = [];
    const detached: number[] = [];
    const kick = { wait: 42, signal: 42, readSize: 8, wakeBytes: new Uint8Array(8) };
    const portEvents = {
      available: o.available ?? true,
      steps: { create: 'eventfd()', attach: 'KVM_IOEVENTFD' },
      createKick: (): typeof kick => kick,
      attach: o.attach ?? (() => {}),
      detach: (_p: number, k: typeof kick) => detached.push(k.signal),
      closeKick: (k: typeof kick) => closed.push(k.wait),
    };
    const c = {
      portEvents,
      warn: (m: string) => warnings.push(m),
      memory: { share: o.share ?? (() => { throw new HostError('guest memory cannot be shared with another thread here'); }) },
      bootInfo: { hostFeatures: 0, netRing: 0 },
      memSize: 64 << 20,
      ringCounters: new Float64Array(new SharedArrayBuffer(RING_COUNTERS_LENGTH * 8)),
      vcpu: { backend: 'fake', token: 1 },
      onHalt() {},
      onVmexit() {},
    };
    const host = {
      close: (fd: number) => closed.push(fd),
      write: () => 8,
    };
    return { c, host, warnings, closed, detached };
  }
  const errno = (code: string, text: string) => Object.assign(new Error(`x: ${text}`), { errno: 1, code, syscall: 'x' });

  it('no ioeventfd on the host: nothing offered, nothing printed', async () => {
    const { startRing } = await import('../../modules/net/ring.js');
    const t = ctx({ available: false });
    expect(startRing(t.c as never, new Map([[1, 5]]), t.host as never)).toBeNull();
    expect({ w: t.warnings, b: t.c.bootInfo }).toEqual({ w: [], b: { hostFeatures: 0, netRing: 0 } });
  });

  it('eventfd fails: the reference\'s warning', async () => {
    const { startRing } = await import('../../modules/net/ring.js');
    const t = ctx({});
    t.c.portEvents.createKick = () => {
      throw errno('EMFILE', 'Too many open files');
    };
    expect(startRing(t.c as never, new Map([[1, 5]]), t.host as never)).toBeNull();
    expect(t.warnings).toEqual(['eventfd() failed, falling back to hypercalls: Too many open files']);
    expect(t.c.bootInfo).toEqual({ hostFeatures: 0, netRing: 0 });
  });

  it('KVM_IOEVENTFD fails: the reference\'s warning, the eventfd closed', async () => {
    const { startRing } = await import('../../modules/net/ring.js');
    const t = ctx({
      attach: () => {
        throw errno('EEXIST', 'File exists');
      },
    });
    expect(startRing(t.c as never, new Map([[1, 5]]), t.host as never)).toBeNull();
    expect({ w: t.warnings, closed: t.closed }).toEqual({ w: ['KVM_IOEVENTFD failed, falling back to hypercalls: File exists'], closed: [42] });
    expect(t.c.bootInfo).toEqual({ hostFeatures: 0, netRing: 0 });
  });

  it('the thread cannot start: one warning, the port unbound again, the eventfd closed', async () => {
    const { startRing } = await import('../../modules/net/ring.js');
    const t = ctx({});
    expect(startRing(t.c as never, new Map([[1, 5]]), t.host as never)).toBeNull();
    expect({ w: t.warnings, closed: t.closed, detached: t.detached }).toEqual({
      w: ['could not start the net ring thread (guest memory cannot be shared with another thread here), falling back to hypercalls'],
      closed: [42],
      detached: [42],
    });
    expect(t.c.bootInfo).toEqual({ hostFeatures: 0, netRing: 0 });
  });
});
