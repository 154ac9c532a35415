// Console output of a library VM, with back-pressure. The worker posts guest
// bytes to the caller's thread; a shared counter holds how many are posted
// but not yet taken by the caller's console (a callback has returned, or a
// stream has accepted them without asking to wait for 'drain'). While that
// exceeds CONSOLE_WINDOW the guest is held at PUTS, as the CLI holds it on a
// full pipe, so a consumer that falls behind bounds memory instead of
// growing it. A console that throws or errors ends its own VM only.
import { StringDecoder } from 'node:string_decoder';
import type { GuestOutput } from '../module.js';
import type { ConsoleTarget } from './options.js';

/** Bytes in flight between a VM's worker and its console, at most (plus one chunk). */
export const CONSOLE_WINDOW = 1 << 20;
/** Guest output crosses in pieces of at most this size, so one huge PUTS is bounded too. */
const CHUNK = 64 * 1024;
/** Index of the in-flight byte count in the shared Int32Array. */
const IN_FLIGHT = 0;

export function consoleCounter(): SharedArrayBuffer {
  return new SharedArrayBuffer(4);
}

/** The worker's side: where the console module sends guest text. */
export function postingSink(counter: SharedArrayBuffer, post: (bytes: Uint8Array) => void): GuestOutput {
  const inFlight = new Int32Array(counter);
  return (bytes, run) => {
    for (let off = 0; off < bytes.length; off += CHUNK) {
      const chunk = bytes.subarray(off, Math.min(bytes.length, off + CHUNK));
      for (;;) {
        const now = Atomics.load(inFlight, IN_FLIGHT);
        if (now === 0 || now + chunk.length <= CONSOLE_WINDOW) break;
        if (run.ending()) return;
        // Woken when the caller takes bytes or stop() is called; the timeout
        // is only a safety net.
        Atomics.wait(inFlight, IN_FLIGHT, now, 100);
      }
      Atomics.add(inFlight, IN_FLIGHT, chunk.length);
      // The guest's bytes are only valid during the call: post a copy.
      post(chunk.slice());
    }
  };
}

/** Gives n bytes of room back (the caller's console took them) and wakes a worker waiting for it. */
export function releaseRoom(counter: SharedArrayBuffer, n: number): void {
  if (n === 0) return;
  const inFlight = new Int32Array(counter);
  Atomics.sub(inFlight, IN_FLIGHT, n);
  Atomics.notify(inFlight, IN_FLIGHT);
}

/** Wakes a worker waiting for room (used by stop()). */
export function wakeSink(counter: SharedArrayBuffer): void {
  Atomics.notify(new Int32Array(counter), IN_FLIGHT);
}

type StreamLike = {
  write(chunk: Uint8Array): unknown;
  on?(event: string, fn: (e?: unknown) => void): unknown;
  removeListener?(event: string, fn: (e?: unknown) => void): unknown;
};

/**
 * One 'error' and one 'drain' listener per stream, however many VMs share it
 * (process.stdout by default): a listener per VM would trip Node's
 * MaxListenersExceededWarning at eleven VMs.
 */
interface Hub {
  readonly errors: Set<(e: unknown) => void>;
  readonly drains: Set<() => void>;
  /** Removes both listeners once no VM uses the stream: its errors are its owner's again. */
  leave(onError: (e: unknown) => void): void;
}
const hubs = new WeakMap<object, Hub>();

function join(stream: StreamLike, onError: (e: unknown) => void): Hub | null {
  const { on, removeListener } = stream;
  if (typeof on !== 'function' || typeof removeListener !== 'function') return null;
  let hub = hubs.get(stream);
  if (!hub) {
    const errors = new Set<(e: unknown) => void>();
    const drains = new Set<() => void>();
    const error = (e: unknown) => {
      for (const fn of [...errors]) fn(e);
    };
    const drain = () => {
      const waiting = [...drains];
      drains.clear();
      for (const fn of waiting) fn();
    };
    on.call(stream, 'error', error);
    on.call(stream, 'drain', drain);
    const h: Hub = {
      errors,
      drains,
      leave(fn) {
        errors.delete(fn);
        if (errors.size !== 0) return;
        removeListener.call(stream, 'error', error);
        removeListener.call(stream, 'drain', drain);
        hubs.delete(stream);
      },
    };
    hubs.set(stream, h);
    hub = h;
  }
  hub.errors.add(onError);
  return hub;
}

export interface ConsoleTaker {
  /** Delivers bytes the worker posted. */
  take(bytes: Uint8Array): void;
  /** Detaches from the stream (the VM has ended) and returns any room still held. */
  close(): void;
}

/**
 * The caller's side. `fail` is called once, with a one-line reason, when the
 * console throws or errors; later output is dropped (and its room returned).
 */
export function consoleTaker(target: ConsoleTarget | undefined, counter: SharedArrayBuffer, fail: (message: string) => void): ConsoleTaker {
  const release = (n: number) => releaseRoom(counter, n);
  let failed = false;
  const failWith = (what: string, e: unknown) => {
    if (failed) return;
    failed = true;
    fail(`console: ${what}: ${e instanceof Error ? e.message : String(e)}`);
  };

  if (typeof target === 'function') {
    const decoder = new StringDecoder('utf8');
    return {
      take(bytes) {
        try {
          if (!failed) {
            const text = decoder.write(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
            if (text) target(text);
          }
        } catch (e) {
          failWith('the console callback threw', e);
        } finally {
          release(bytes.length);
        }
      },
      close() {},
    };
  }

  const stream: StreamLike = target ?? process.stdout;
  /** Bytes the stream holds for us until its next 'drain'. */
  let waiting = 0;
  const drained = () => {
    release(waiting);
    waiting = 0;
  };
  const onError = (e: unknown) => {
    failWith('the console stream failed', e);
    drained();
  };
  const hub = join(stream, onError);
  return {
    take(bytes) {
      if (failed) {
        release(bytes.length);
        return;
      }
      let accepted: unknown;
      try {
        accepted = stream.write(bytes);
      } catch (e) {
        release(bytes.length);
        onError(e);
        return;
      }
      if (accepted !== false || !hub) {
        release(bytes.length);
        return;
      }
      // The stream asked us to wait: the bytes count as in flight until 'drain'.
      waiting += bytes.length;
      hub.drains.add(drained);
    },
    close() {
      hub?.drains.delete(drained);
      hub?.leave(onError);
      drained();
    },
  };
}
