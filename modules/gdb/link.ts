// The vCPU thread's end of the channel to the socket thread (channel.ts):
// waiting for a message in bounded slices, the shared flags, the last packet
// of a session, and the wait for gdb to attach with the messages of
// docs/abi.md §16.2.
import { type MessagePort, receiveMessageOnPort, type Worker } from 'node:worker_threads';
import { describeSystemError, HostError } from '../../monitor/errors.js';
import type { RunControl } from '../../monitor/module.js';
import { Slot, type ToSocket, type ToVcpu } from './channel.js';

/** How long one wait for gdb lasts before the run's end is checked again. */
export const SLICE_MS = 50;
/** How long the socket thread may take to listen. */
const LISTEN_TIMEOUT_MS = 15_000;
/** How long a last packet (W, X) may take to go out. */
const FLUSH_TIMEOUT_MS = 1_000;

/** The vCPU thread's end of the channel to the socket thread. */
export class Link {
  private readonly shared: Int32Array;
  private closed = false;

  constructor(
    readonly worker: Pick<Worker, 'terminate'>,
    private readonly port: MessagePort,
    shared: SharedArrayBuffer,
  ) {
    this.shared = new Int32Array(shared);
    // Read only with receiveMessageOnPort: it must not keep a thread alive.
    port.unref();
  }

  /** The next message, waiting at most ms for one; null if none came. */
  next(ms: number): ToVcpu | null {
    const seen = Atomics.load(this.shared, Slot.DOORBELL);
    const now = receiveMessageOnPort(this.port);
    if (now) return now.message as ToVcpu;
    Atomics.wait(this.shared, Slot.DOORBELL, seen, ms);
    return (receiveMessageOnPort(this.port)?.message as ToVcpu | undefined) ?? null;
  }

  post(m: ToSocket): void {
    this.port.postMessage(m);
  }

  slot(s: number): number {
    return Atomics.load(this.shared, s);
  }
  set(s: number, v: number): void {
    Atomics.store(this.shared, s, v);
  }
  take(s: number): number {
    return Atomics.exchange(this.shared, s, 0);
  }
  /** Clears slot s if it still holds v. */
  clear(s: number, v: number): void {
    Atomics.compareExchange(this.shared, s, v, 0);
  }
  bump(s: number): void {
    Atomics.add(this.shared, s, 1);
  }

  /** Sends a last packet (or none), closes the connection, and waits (bounded) until it is out. */
  final(data: string | null): void {
    this.post({ t: 'final', data });
    const deadline = Date.now() + FLUSH_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const m = this.next(Math.max(1, deadline - Date.now()));
      if (m?.t === 'flushed') return;
    }
  }

  /** Ends the socket thread and this end of the channel (idempotent). */
  shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    this.post({ t: 'shutdown' });
    void this.worker.terminate();
    this.port.close();
  }
}

/**
 * Waits until gdb is connected; returns its address, or null if the run
 * ended first. Throws HostError if the socket thread cannot listen.
 */
export function awaitDebugger(link: Link, run: RunControl, host: string, port: number, say: (line: string) => void, warn: (line: string) => void): string | null {
  const started = Date.now();
  for (;;) {
    if (run.ending()) return null;
    const m = link.next(SLICE_MS);
    if (m?.t === 'warn') warn(m.line);
    if (m?.t === 'listen-failed') {
      const cause = Object.assign(new Error(m.message), { errno: m.errno });
      throw new HostError(`GDB: Could not listen on ${host.includes(':') ? `[${host}]` : host}:${port}: ${describeSystemError(cause)}`, { cause });
    }
    if (m?.t === 'listening') {
      say('Waiting for a debugger. Connect to it like this:');
      say(`\tgdb --ex="target remote ${connectHint(host)}:${m.port}" KERNEL`);
      break;
    }
    if (m?.t === 'closed') throw new HostError('GDB: the socket thread stopped before listening');
    if (Date.now() - started > LISTEN_TIMEOUT_MS) throw new HostError('GDB: the socket thread did not start listening');
  }
  for (;;) {
    if (run.ending()) return null;
    const m = link.next(SLICE_MS);
    if (m?.t === 'warn') warn(m.line);
    if (m?.t === 'connected') return m.peer;
    if (m?.t === 'closed') throw new HostError('GDB: the socket thread stopped while waiting for a debugger');
  }
}

/** How gdb should name the host in `target remote`. */
export function connectHint(host: string): string {
  if (['127.0.0.1', '0.0.0.0', '::', '::1', 'localhost'].includes(host)) return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}
