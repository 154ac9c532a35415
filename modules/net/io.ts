// NET_WRITE / NET_READ (spec §10.6, §10.7): one frame per call between the
// tap descriptor and the guest-memory view. Frames are never dropped by the
// monitor: a full tap queue (EAGAIN) is waited out instead of being fatal.
import { ArgSize, Result } from '../../monitor/abi/constants.js';
import { describeSystemError, HostError } from '../../monitor/errors.js';
import type { GuestMemory } from '../../monitor/vm/memory.js';
import type { RunControl } from '../../monitor/module.js';
import type { NativeBinding } from '../../native/binding.js';

export interface NetDevice {
  fd: number;
}

/**
 * Checks a NET_WRITE/NET_READ structure and finds its device. Returns null
 * (after writing EINVAL to the guest) when the handle names no net device.
 */
function netCall(mem: GuestMemory, gpa: number, devices: ReadonlyMap<number, NetDevice>) {
  const off = mem.struct(gpa, ArgSize.NET, 'write');
  const [lo, hi] = mem.u64Halves(off);
  const dev = hi === 0 ? devices.get(lo) : undefined;
  if (!dev) {
    mem.view.setInt32(off + 24, Result.EINVAL, true);
    return null;
  }
  return { off, dev, handle: lo };
}

export function netWriteHandler(mem: GuestMemory, devices: ReadonlyMap<number, NetDevice>, native: NativeBinding, bytes: Float64Array, run: RunControl) {
  return (gpa: number): void => {
    const call = netCall(mem, gpa, devices);
    if (!call) return;
    const { off, dev, handle } = call;
    const { gpa: data, len } = mem.regionAt(off + 8, off + 16, 'read');
    const frame = mem.bytes.subarray(data, data + len);
    for (;;) {
      let n: number;
      try {
        n = native.writeFd(dev.fd, frame);
      } catch (e) {
        throw new HostError(`Fatal error when writing: ${describeSystemError(e)}`);
      }
      if (n >= 0) {
        if (n !== len) throw new HostError(`Fatal error: wrote only ${n} out of ${len} bytes`);
        break;
      }
      // Interrupted, or the tap queue is full (retry in 1 ms): either way a
      // signal or stop() that is ending the run ends the wait.
      if (run.ending() || (n === -1 && !run.waitWritable(-1, 1))) return;
    }
    bytes[2 * handle + 1] = (bytes[2 * handle + 1] ?? 0) + len;
    mem.view.setInt32(off + 24, Result.OK, true);
  };
}

export function netReadHandler(mem: GuestMemory, devices: ReadonlyMap<number, NetDevice>, native: NativeBinding, bytes: Float64Array) {
  return (gpa: number): void => {
    const call = netCall(mem, gpa, devices);
    if (!call) return;
    const { off, dev, handle } = call;
    const { gpa: data, len } = mem.regionAt(off + 8, off + 16, 'write');
    let n: number;
    try {
      n = native.readFd(dev.fd, mem.bytes.subarray(data, data + len));
    } catch (e) {
      throw new HostError(`Fatal error when reading: ${describeSystemError(e)}`);
    }
    if (n < 0) {
      mem.view.setInt32(off + 24, Result.AGAIN, true);
      return;
    }
    bytes[2 * handle] = (bytes[2 * handle] ?? 0) + n;
    mem.view.setUint32(off + 16, n, true);
    mem.view.setUint32(off + 20, 0, true);
    mem.view.setInt32(off + 24, Result.OK, true);
  };
}
