// Console module: the PUTS hypercall (spec §10.2). Guest bytes go out raw and
// unbuffered, retried until every byte is out (the reference gives up after a
// partial write; we never drop guest output) — unless the run is ending: a
// SIGTERM or stop() must end a run whose stdout is a pipe nobody reads.
import { fstatSync } from 'node:fs';
import { loadNative } from '../../native/binding.js';
import { ArgSize, Hypercall } from '../../monitor/abi/constants.js';
import { HostError, withErrno } from '../../monitor/errors.js';
import type { Module, RunControl } from '../../monitor/module.js';

/**
 * Where console bytes go. The bytes are only valid during the call. A sink
 * that waits (a full pipe, a slow consumer) gives up when `run.ending()`.
 */
export type ConsoleSink = (bytes: Uint8Array, run: RunControl) => void;

export interface ConsoleOptions {
  /** Defaults to writing to file descriptor 1. */
  sink?: ConsoleSink;
}

/**
 * At most this much per write to a pipe or socket once poll(2) said it takes
 * a write: a pipe with room for one page takes 4096 bytes without blocking,
 * so the monitor waits in poll, where a signal or stop always reaches it,
 * never inside a write.
 */
const PIPE_CHUNK = 4096;

/**
 * Writes all of `bytes` to fd; stops early only when the run is ending (the
 * next KVM_RUN then reports why). The check follows every write, short or
 * failed: a signal that cut a blocked write short must not be lost.
 */
export function writeAllSync(fd: number, bytes: Uint8Array, run: RunControl, pollable: boolean): void {
  const native = loadNative();
  let off = 0;
  for (;;) {
    if (pollable && !run.waitWritable(fd, -1)) return;
    const end = pollable ? Math.min(bytes.length, off + PIPE_CHUNK) : bytes.length;
    const n = native.writeFd(fd, off === 0 && end === bytes.length ? bytes : bytes.subarray(off, end));
    if (n > 0) off += n;
    if (off >= bytes.length || run.ending()) return;
    // EAGAIN on a descriptor someone made non-blocking: wait for room.
    if (n === -1 && !pollable && !run.waitWritable(fd, -1)) return;
  }
}

/** Pipes, FIFOs and sockets can fill up and block; files and ttys are written directly. */
function mayBlock(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    return st.isFIFO() || st.isSocket();
  } catch {
    return false; // a closed stdout: the first write reports it
  }
}

export function fdSink(fd: number): ConsoleSink {
  let pollable: boolean | undefined;
  return (bytes, run) => {
    pollable ??= mayBlock(fd);
    try {
      writeAllSync(fd, bytes, run, pollable);
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
      const run = ctx.run;
      ctx.hypercall(Hypercall.PUTS, (gpa) => {
        const off = mem.struct(gpa, ArgSize.PUTS, 'read');
        const { gpa: data, len } = mem.regionAt(off, off + 8, 'read');
        if (len !== 0) sink(mem.bytes.subarray(data, data + len), run);
      });
    },
  };
}
