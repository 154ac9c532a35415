// The handle of a VM whose AbortSignal was aborted before it was asked for:
// abort means stop, so it is "stopped" without ever being built (no worker,
// no KVM, no file opened).
import { NOT_ITERABLE } from './console-iterable.js';
import { STATS } from './shared.js';
import { readStats } from './stats.js';
import type { ExitInfo, Unikernel } from './types.js';

/** iterable: the VM was asked for with console: 'iterable' (its console then ends at once). */
export function stoppedBeforeStart(iterable: boolean): Unikernel {
  const exit: ExitInfo = { status: 1, reason: 'stopped' };
  const zero = new Float64Array(STATS.length);
  return {
    exited: Promise.resolve(exit),
    stop() {},
    stats: () => readStats(zero, [], 0, null, true),
    console: iterable ? { [Symbol.asyncIterator]: async function* () {}, lines: async function* () {} } : NOT_ITERABLE,
  };
}
