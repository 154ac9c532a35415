// What the vCPU's thread and the ring's thread share besides guest memory:
// one small SharedArrayBuffer of Int32 words (state, requests) and room for
// the error that ended the ring thread, as a structured record (JSON).
// Waits on either side are Atomics.wait on these words (futex).
import type { ErrorRecord } from '../../monitor/errors.js';

export const Ctl = {
  /** The ring thread's state: STARTING → RUNNING → STOPPED, or FAILED before running. */
  STATE: 0,
  /** Set to 1 (then notified) to ask the thread to return. */
  STOP: 1,
  /** Confinement: REQUESTED by the vCPU's thread, then DONE or REFUSED by the ring thread. */
  CONFINE: 2,
  /** Bytes of the error record in the error area, 0 if none. */
  ERROR_LEN: 3,
  /** Bumped to wake a pause() (a full tap queue being waited out). */
  WAKE: 4,
  WORDS: 16,
} as const;

export const State = { STARTING: 0, RUNNING: 1, STOPPED: 2, FAILED: 3 } as const;
export const Confine = { NONE: 0, REQUESTED: 1, DONE: 2, REFUSED: 3 } as const;

const ERROR_AREA = 4096;

export interface RingControl {
  readonly words: Int32Array;
  readonly buffer: SharedArrayBuffer;
}

export function newControl(): RingControl {
  const buffer = new SharedArrayBuffer(Ctl.WORDS * 4 + ERROR_AREA);
  return { buffer, words: new Int32Array(buffer, 0, Ctl.WORDS) };
}

export function controlOf(buffer: SharedArrayBuffer): RingControl {
  return { buffer, words: new Int32Array(buffer, 0, Ctl.WORDS) };
}

/** Stores the error that ends the ring thread (cut to fit the area). */
export function putError(c: RingControl, r: ErrorRecord): void {
  let bytes = new TextEncoder().encode(JSON.stringify(r));
  if (bytes.length > ERROR_AREA) bytes = new TextEncoder().encode(JSON.stringify({ ...r, message: r.message.slice(0, 1000), warnings: [] }));
  new Uint8Array(c.buffer, Ctl.WORDS * 4, ERROR_AREA).set(bytes.subarray(0, ERROR_AREA));
  Atomics.store(c.words, Ctl.ERROR_LEN, Math.min(bytes.length, ERROR_AREA));
}

/** The error the ring thread stored, if any. */
export function takeError(c: RingControl): ErrorRecord | null {
  const n = Atomics.load(c.words, Ctl.ERROR_LEN);
  if (n === 0) return null;
  // TextDecoder refuses views of shared memory: copy out first.
  const bytes = new Uint8Array(n);
  bytes.set(new Uint8Array(c.buffer, Ctl.WORDS * 4, n));
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as ErrorRecord;
  } catch {
    return { name: 'HostError', code: 'EHOST', message: 'the net ring thread failed', warnings: [] };
  }
}
