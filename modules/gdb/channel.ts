// What the vCPU's thread and the socket thread (socket-worker.ts) say to
// each other. The vCPU's thread cannot turn an event loop while it serves
// gdb or runs the guest, so messages to it go through a MessagePort it
// drains synchronously (receiveMessageOnPort), and a counter in a
// SharedArrayBuffer rings it awake (Atomics.wait/notify). Messages to the
// socket thread are plain postMessage: that thread's event loop is free.
import type { MessagePort } from 'node:worker_threads';
import type { VcpuHandle } from '../../monitor/backend/backend.js';

/** Int32 slots of the shared buffer. */
export const Slot = {
  /** Bumped by the socket thread after each message it posts (the vCPU thread waits on it). */
  DOORBELL: 0,
  /** 1 while the guest runs (set by the vCPU thread). */
  RUNNING: 1,
  /**
   * A Ctrl-C not yet acted on (set by the socket thread): 0 for none, else 1 +
   * the number of packets posted before it, so that the vCPU thread can tell
   * a Ctrl-C that came after the request resuming the guest (stop it) from a
   * stray one sent while it was stopped (ignored).
   */
  BREAK: 2,
  /** Packets the vCPU thread has taken off the channel (the socket thread stops reading when too many wait). */
  CONSUMED: 3,
} as const;
export const SLOTS = 4;
/** Packets the socket thread lets wait for the vCPU thread before it stops reading the connection. */
export const MAX_WAITING_PACKETS = 64;

/** What the socket thread is started with. */
export interface SocketWorkerData {
  host: string;
  port: number;
  shared: SharedArrayBuffer;
  vcpu: VcpuHandle;
  /** Its end of the channel (transferred). */
  channel: MessagePort;
}

/** Socket thread → vCPU thread. */
export type ToVcpu =
  | { t: 'listening'; address: string; port: number }
  | { t: 'listen-failed'; message: string; errno: number }
  | { t: 'connected'; peer: string }
  /** A request payload that passed its checksum (latin1). */
  | { t: 'packet'; data: string }
  | { t: 'warn'; line: string }
  /** The connection ended (or could not be read): no more commands will come. */
  | { t: 'closed' }
  /** A 'final' packet is written out (or could not be). */
  | { t: 'flushed' };

/** vCPU thread → socket thread. */
export type ToSocket =
  /** A reply payload to frame and send; after it, acknowledgements are off if noAckAfter. */
  | { t: 'send'; data: string; noAckAfter?: boolean }
  /** A last packet (W, X; or none): sent without waiting for its acknowledgement, then the connection is closed and 'flushed' posted. */
  | { t: 'final'; data: string | null }
  /** Close everything and end the thread. */
  | { t: 'shutdown' };
