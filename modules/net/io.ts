// NET_WRITE / NET_READ (docs/abi.md §10.6, §10.7): one frame per call between
// the tap descriptor and the guest buffer. Frames are never dropped by the
// monitor: a full tap queue (EAGAIN) is waited out instead of being fatal.
import { Result } from '../../monitor/abi/constants.js';
import { NET_ARGS } from '../../monitor/abi/layouts.js';
import type { HostIo } from '../../monitor/backend/host.js';
import { describeSystemError, HostError } from '../../monitor/errors.js';
import type { SetupContext } from '../../monitor/module.js';
import type { GuestStruct } from '../../monitor/vm/memory.js';

export interface NetDevice {
  fd: number;
}

type Needs = Pick<SetupContext, 'memory' | 'run' | 'countBytes'>;

/**
 * Checks a NET_WRITE/NET_READ structure and finds its device. Returns null
 * (after writing EINVAL to the guest) when the handle names no net device.
 */
function netCall(ctx: Needs, gpa: number, devices: ReadonlyMap<number, NetDevice>): { args: GuestStruct<typeof NET_ARGS>; dev: NetDevice; handle: number } | null {
  const args = ctx.memory.struct(gpa, NET_ARGS, 'write');
  const [lo, hi] = args.u64Halves('handle');
  const dev = hi === 0 ? devices.get(lo) : undefined;
  if (!dev) {
    args.setI32('ret', Result.EINVAL);
    return null;
  }
  return { args, dev, handle: lo };
}

export function netWriteHandler(ctx: Needs, devices: ReadonlyMap<number, NetDevice>, host: HostIo) {
  const run = ctx.run;
  return (gpa: number): void => {
    const call = netCall(ctx, gpa, devices);
    if (!call) return;
    const { args, dev, handle } = call;
    const frame = args.buffer('data', 'len', 'read');
    for (;;) {
      let n: number;
      try {
        n = host.write(dev.fd, frame);
      } catch (e) {
        throw new HostError(`Fatal error when writing: ${describeSystemError(e)}`, { cause: e });
      }
      if (n >= 0) {
        if (n !== frame.length) throw new HostError(`Fatal error: wrote only ${n} out of ${frame.length} bytes`);
        break;
      }
      // Interrupted, or the tap queue is full (retry in 1 ms): either way a
      // signal or stop() that is ending the run ends the wait.
      if (run.ending() || (n === -1 && !run.waitWritable(-1, 1))) return;
    }
    ctx.countBytes(handle, 'out', frame.length);
    args.setI32('ret', Result.OK);
  };
}

export function netReadHandler(ctx: Needs, devices: ReadonlyMap<number, NetDevice>, host: HostIo) {
  return (gpa: number): void => {
    const call = netCall(ctx, gpa, devices);
    if (!call) return;
    const { args, dev, handle } = call;
    const buffer = args.buffer('data', 'len', 'write');
    let n: number;
    try {
      n = host.read(dev.fd, buffer);
    } catch (e) {
      throw new HostError(`Fatal error when reading: ${describeSystemError(e)}`, { cause: e });
    }
    if (n < 0) {
      args.setI32('ret', Result.AGAIN);
      return;
    }
    ctx.countBytes(handle, 'in', n);
    args.setU64Halves('len', n, 0);
    args.setI32('ret', Result.OK);
  };
}
