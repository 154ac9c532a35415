// The net ring's host side alone (modules/net/ring-consumer.ts), in this
// process, without a guest: how long the TypeScript consumer takes per
// entry, to tell whether it keeps up or a native consumer would be needed.
// A 4 MiB guest memory (a SharedArrayBuffer, as on the ring's thread) gets
// 1023 NET_WRITE entries of 98-byte frames (a ping reply) or 1023 NET_READ
// entries, published at once; the consumer processes them with the real
// write(2)/read(2) of the platform on /dev/null (every write taken, every
// read 0 bytes: AGAIN), and with no system call at all (the TypeScript
// alone).
import { openSync } from 'node:fs';
import { platform } from '../dist/monitor/backend/index.js';
import { GuestMemory } from '../dist/monitor/vm/memory.js';
import { RING_COUNTERS_LENGTH } from '../dist/monitor/vm/compose.js';
import { RingConsumer } from '../dist/modules/net/ring-consumer.js';
import { stats } from './lib.mjs';

const MiB = 1 << 20;
const RING = 2 * MiB;
const SLOTS = 1023;

function consumer(io) {
  const mem = new GuestMemory(new SharedArrayBuffer(4 * MiB), RING);
  const c = new RingConsumer(mem, { gpa: RING, taps: new Map([[1, io.fd]]), counters: new Float64Array(RING_COUNTERS_LENGTH), spinIterations: 0, spinMs: 0 },
    { ...io, sleep: () => true, pause() {}, now: () => 0 }, { stopping: () => false, serve() {} });
  const ring = new DataView(mem.bytes.buffer, RING);
  let tail = 0;
  return (op) => {
    for (let i = 0; i < SLOTS; i++) {
      const at = 128 + ((tail + i) & 1023) * 32;
      ring.setUint32(at, op, true);
      ring.setUint32(at + 4, 1, true);
      ring.setUint32(at + 8, 0x100000, true);
      ring.setUint32(at + 16, op === 1 ? 98 : 1514, true);
    }
    tail = (tail + SLOTS) >>> 0;
    const t0 = process.hrtime.bigint();
    ring.setUint32(0, tail, true);
    c.step();
    return Number(process.hrtime.bigint() - t0) / SLOTS;
  };
}

export function benchRing({ runs = 15 } = {}) {
  const host = platform().host;
  const fd = openSync('/dev/null', 'r+');
  const real = consumer({ fd, write: (f, b) => host.write(f, b), read: (f, b) => host.read(f, b) });
  const none = consumer({ fd, write: (_f, b) => b.length, read: () => -1 });
  const rows = [];
  for (const [label, op, run] of [
    ['NET_WRITE entry, write(2) to /dev/null', 1, real],
    ['NET_READ entry, read(2) from /dev/null (AGAIN)', 2, real],
    ['NET_WRITE entry, no system call', 1, none],
    ['NET_READ entry, no system call', 2, none],
  ]) {
    for (let i = 0; i < 3; i++) run(op); // warm-up: compiled code
    rows.push({ label, ns: stats(Array.from({ length: runs }, () => run(op))) });
  }
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const r of benchRing()) console.log(`${r.label}: ${r.ns.median.toFixed(0)} ns (${r.ns.min.toFixed(0)}–${r.ns.max.toFixed(0)})`);
}
