// Console output to a file descriptor (the CLI's stdout). Guest bytes go out
// raw and unbuffered, retried until every byte is out (the reference gives up
// after a partial write; we never drop guest output) — unless the run is
// ending: a SIGTERM or stop() must end a run whose stdout is a pipe nobody
// reads.
import { fstatSync } from 'node:fs';
import type { HostIo } from '../../monitor/backend/host.js';
import { HostError, withErrno } from '../../monitor/errors.js';
import type { GuestOutput, RunControl } from '../../monitor/module.js';

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
export function writeAll(host: HostIo, fd: number, bytes: Uint8Array, run: RunControl, pollable: boolean): void {
  let off = 0;
  for (;;) {
    if (pollable && !run.waitWritable(fd, -1)) return;
    const end = pollable ? Math.min(bytes.length, off + PIPE_CHUNK) : bytes.length;
    const n = host.write(fd, off === 0 && end === bytes.length ? bytes : bytes.subarray(off, end));
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

export function fdOutput(host: HostIo, fd: number): GuestOutput {
  let pollable: boolean | undefined;
  return (bytes, run) => {
    pollable ??= mayBlock(fd);
    try {
      writeAll(host, fd, bytes, run, pollable);
    } catch (e) {
      throw new HostError(withErrno('console: write to guest console failed', e), { cause: e });
    }
  };
}
