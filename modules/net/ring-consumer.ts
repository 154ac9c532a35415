// The host side of the net ring (docs/abi.md §13.4), as a plain class: it
// runs on the ring's own thread (ring-worker.ts) over guest memory shared
// with the vCPU's thread, and in unit tests over an ordinary buffer with
// made-up taps. Nothing the guest writes is trusted: the host keeps its own
// copies of ent_head and com_tail (the guest could overwrite the shared
// ones), reads each entry's fields once before checking them, refuses an
// ent_tail more than a ring's worth ahead, and checks every buffer against
// mem_size and the host protections exactly as a hypercall's (§9.3).
import { Result, Ring } from '../../monitor/abi/constants.js';
import { RING_COMMIT, RING_ENTRY, RING_HEADER } from '../../monitor/abi/layouts.js';
import { describeSystemError, GuestError, HostError } from '../../monitor/errors.js';
import type { GuestMemory } from '../../monitor/vm/memory.js';

/** The host calls the consumer makes (HostIo's read/write, plus its two ways of waiting). */
export interface RingIo {
  /** One write(2): bytes written, −1 for EAGAIN, −2 for EINTR; throws on other errors. */
  write(fd: number, bytes: Uint8Array): number;
  /** One non-blocking read(2): bytes read, −1 for EAGAIN or nothing, −2 for EINTR; throws on other errors. */
  read(fd: number, bytes: Uint8Array): number;
  /** Sleeps until the guest kicks or a stop is asked for (the blocking read of the kick descriptor); false: the descriptor failed. */
  sleep(): boolean;
  /** Waits up to ms for a stop request (a full tap queue is waited out in these steps). */
  pause(ms: number): void;
  /** Monotonic time in ms (performance.now()), for the spin's time limit. */
  now(): number;
}

/** What the owner of the thread tells the consumer between its steps. */
export interface RingSignals {
  /** True once the run is ending: the consumer returns. */
  stopping(): boolean;
  /** Called each time round the loop (serves the owner's requests, e.g. confinement). */
  serve(): void;
}

export interface RingOptions {
  /** GPA of the ring (= mem_size, §13.2). */
  gpa: number;
  /** Tap descriptors by manifest index (the NET_BASIC devices attached). */
  taps: ReadonlyMap<number, number>;
  /** RING_COUNTERS_LENGTH slots (vm/compose.ts): reads, writes, bytes per device. */
  counters: Float64Array;
  /** Spin at least this many times before sleeping (§13.3: 4096)… */
  spinIterations: number;
  /** …and on until this much time has passed since the last entry (ms). */
  spinMs: number;
}

// Header fields as indices of a Uint32Array over the ring.
const ENT_TAIL = RING_HEADER.fields.entTail[0] / 4;
const ENT_HEAD = RING_HEADER.fields.entHead[0] / 4;
const COM_TAIL = RING_HEADER.fields.comTail[0] / 4;
const NEEDS_KICK = RING_HEADER.fields.needsKick[0] / 4;
const E = RING_ENTRY.fields;
const C = RING_COMMIT.fields;

export class RingConsumer {
  private readonly index: Uint32Array;
  private readonly view: DataView;
  private readonly entries: number;
  private readonly commits: number;
  /** The host's own ent_head and com_tail: what it last published, never read back from the guest's memory. */
  private head = 0;
  private comTail = 0;
  /** When an entry was last seen (the spin's clock). */
  private lastWork = 0;

  constructor(
    private readonly mem: GuestMemory,
    private readonly o: RingOptions,
    private readonly io: RingIo,
    private readonly signals: RingSignals,
  ) {
    const buffer = mem.bytes.buffer;
    this.index = new Uint32Array(buffer, mem.bytes.byteOffset + o.gpa, RING_HEADER.size / 4);
    this.view = new DataView(buffer, mem.bytes.byteOffset + o.gpa, Ring.SIZE);
    this.entries = Ring.ENTRIES_OFFSET;
    this.commits = Ring.COMMITS_OFFSET;
    // The ring starts zeroed (§13.2), whatever the guest's image put there.
    mem.bytes.fill(0, o.gpa, o.gpa + Ring.SIZE);
  }

  /** Serves the ring until stopping() or the kick descriptor fails; throws a TenderError for a fatal condition (§13.4 rule 5). */
  run(): void {
    this.lastWork = this.io.now();
    while (!this.signals.stopping()) {
      this.signals.serve();
      if (this.step()) continue;
      if (!this.idle()) return;
    }
  }

  /** Processes what the guest has published, if anything; true if there was work. */
  step(): boolean {
    const tail = Atomics.load(this.index, ENT_TAIL);
    if (tail === this.head) return false;
    this.process(tail);
    this.lastWork = this.io.now();
    return true;
  }

  /** Nothing to do: spin, then declare needs_kick and sleep (§13.4 host rules 1–2). False if the kick descriptor failed. */
  private idle(): boolean {
    const { spinIterations, spinMs } = this.o;
    for (let i = 0; ; i++) {
      if (Atomics.load(this.index, ENT_TAIL) !== this.head || this.signals.stopping()) return true;
      if (i >= spinIterations && (i & 255) === 0 && this.io.now() - this.lastWork >= spinMs) break;
    }
    // A sequentially consistent store is a full barrier (x86: xchg), so the
    // re-check below cannot be ordered before it: either the guest sees
    // needs_kick = 1 after its ent_tail store and kicks, or this load sees
    // its new ent_tail. No wake-up is lost.
    Atomics.store(this.index, NEEDS_KICK, 1);
    let ok = true;
    if (Atomics.load(this.index, ENT_TAIL) === this.head && !this.signals.stopping()) ok = this.io.sleep();
    Atomics.store(this.index, NEEDS_KICK, 0);
    this.lastWork = this.io.now();
    return ok;
  }

  /** Entries from the host's head up to the snapshot `tail`, in order (§13.4 host rule 3). */
  private process(tail: number): void {
    const pending = (tail - this.head) >>> 0;
    // More outstanding entries than slots can only come from a guest that
    // moved ent_tail where no producer could: stop instead of walking 2^32
    // stale slots.
    if (pending > Ring.SLOTS) {
      throw new GuestError(`Invalid net ring state: ent_tail=${tail} is ${pending} entries ahead of ent_head=${this.head} (the ring has ${Ring.SLOTS} slots)`);
    }
    const v = this.view;
    for (let n = 0; n < pending; n++) {
      if (this.signals.stopping()) return;
      const at = this.entries + ((this.head + n) & Ring.MASK) * RING_ENTRY.size;
      // Each field is read once: the checks and the I/O use these copies.
      const op = v.getUint32(at + E.operation[0], true);
      if (op !== Ring.OP_NET_WRITE && op !== Ring.OP_NET_READ) continue; // skipped, part of the batch
      const handle = v.getUint32(at + E.handle[0], true);
      const dataLo = v.getUint32(at + E.data[0], true);
      const dataHi = v.getUint32(at + E.data[0] + 4, true);
      const len = v.getUint32(at + E.len[0], true);
      if (op === Ring.OP_NET_WRITE) {
        this.write(handle, dataLo, dataHi, len);
        continue;
      }
      const id = v.getUint32(at + E.id[0], true);
      // A read publishes the batch before it (writes need no commit), then its commit, then itself.
      this.publishHead(this.head + n);
      this.read(handle, dataLo, dataHi, len, id);
      this.publishHead(this.head + n + 1);
    }
    this.head = tail;
    Atomics.store(this.index, ENT_HEAD, tail);
  }

  private publishHead(head: number): void {
    Atomics.store(this.index, ENT_HEAD, head >>> 0);
  }

  /** NET_WRITE: the frame to the device's tap; a bad handle is skipped, a bad buffer or a failed write is fatal. */
  private write(handle: number, dataLo: number, dataHi: number, len: number): void {
    const fd = this.o.taps.get(handle);
    if (fd === undefined) return;
    const at = this.mem.check(dataLo, dataHi, len, 0, 'read');
    const frame = this.mem.bytes.subarray(at, at + len);
    for (;;) {
      let n: number;
      try {
        n = this.io.write(fd, frame);
      } catch (e) {
        throw new HostError(`Fatal write error on net device: ${describeSystemError(e)}`, { cause: e });
      }
      if (n >= 0) {
        if (n !== len) throw new HostError(`Fatal write error: wrote only ${n} out of ${len} bytes`);
        break;
      }
      // A full tap queue (EAGAIN) is waited out, as for the hypercall: frames
      // are not dropped by the monitor. A stop ends the wait.
      if (this.signals.stopping()) return;
      if (n === -1) this.io.pause(1);
    }
    this.o.counters[1] = (this.o.counters[1] ?? 0) + 1;
    this.count(handle, 1, len);
  }

  /** NET_READ: one non-blocking read into the guest's buffer and exactly one commit. */
  private read(handle: number, dataLo: number, dataHi: number, len: number, id: number): void {
    let ret: number = Result.EINVAL;
    let got = 0;
    const fd = this.o.taps.get(handle);
    if (fd !== undefined) {
      const at = this.mem.check(dataLo, dataHi, len, 0, 'write');
      const buffer = this.mem.bytes.subarray(at, at + len);
      for (;;) {
        let n: number;
        try {
          n = this.io.read(fd, buffer);
        } catch {
          n = -3; // any other error: EINVAL to the guest, not fatal (§13.4)
        }
        if (n === -2 && !this.signals.stopping()) continue;
        if (n > 0) {
          ret = Result.OK;
          got = n;
        } else {
          ret = n === -1 ? Result.AGAIN : Result.EINVAL;
        }
        break;
      }
    }
    const at = this.commits + (this.comTail & Ring.MASK) * RING_COMMIT.size;
    const v = this.view;
    v.setUint32(at + C.id[0], id, true);
    v.setInt32(at + C.ret[0], ret, true);
    v.setUint32(at + C.len[0], got, true);
    // The commit's bytes are stored before the index that publishes it (a seq-cst store orders them).
    this.comTail = (this.comTail + 1) >>> 0;
    Atomics.store(this.index, COM_TAIL, this.comTail);
    this.o.counters[0] = (this.o.counters[0] ?? 0) + 1;
    if (got > 0) this.count(handle, 0, got);
  }

  /** Bytes per device: slot 2 + 2h into the guest, 3 + 2h out of it. */
  private count(handle: number, out: 0 | 1, n: number): void {
    const i = 2 + 2 * handle + out;
    if (i < this.o.counters.length) this.o.counters[i] = (this.o.counters[i] ?? 0) + n;
  }
}
