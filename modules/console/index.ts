// Console module: the PUTS hypercall (spec §10.2). Guest bytes go out raw and
// unbuffered, each PUTS as one write, retried until every byte is out (the
// reference gives up after a partial write; we never drop guest output).
import { loadNative } from '../../native/binding.js';
import { ArgSize, Hypercall } from '../../monitor/abi.js';
import { HostError, withErrno } from '../../monitor/errors.js';
import type { Module } from '../../monitor/module.js';

/** Where console bytes go. The bytes are only valid during the call. */
export type ConsoleSink = (bytes: Uint8Array) => void;

export interface ConsoleOptions {
  /** Defaults to writing to file descriptor 1. */
  sink?: ConsoleSink;
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Writes all of `bytes` to fd, waiting out EAGAIN on a non-blocking
 * descriptor. Gives up only when SIGINT/SIGTERM is pending: the run is ending
 * then, and the next KVM_RUN reports the signal.
 */
export function writeAllSync(fd: number, bytes: Uint8Array): void {
  const native = loadNative();
  let off = 0;
  while (off < bytes.length) {
    const n = native.writeFd(fd, off === 0 ? bytes : bytes.subarray(off));
    if (n >= 0) {
      off += n;
      continue;
    }
    if (native.pendingSignal() !== 0) return;
    if (n === -1) Atomics.wait(pause, 0, 0, 1); // the reader is slow: retry in 1 ms
  }
}

export function fdSink(fd: number): ConsoleSink {
  return (bytes) => {
    try {
      writeAllSync(fd, bytes);
    } catch (e) {
      throw new HostError(withErrno('console: write to guest console failed', e));
    }
  };
}

export function console(options: ConsoleOptions = {}): Module {
  const sink = options.sink ?? fdSink(1);
  return {
    name: 'console',
    setup(ctx) {
      const mem = ctx.mem;
      ctx.hypercall(Hypercall.PUTS, (gpa) => {
        const off = mem.struct(gpa, ArgSize.PUTS, 'read');
        const { gpa: data, len } = mem.regionAt(off, off + 8, 'read');
        if (len !== 0) sink(mem.bytes.subarray(data, data + len));
      });
    },
  };
}
