// BLOCK_WRITE / BLOCK_READ (spec §10.4, §10.5). Bounds are computed in 64-bit
// BigInt, so offsets above 2^53 are exact; data moves with pread/pwrite
// straight between the file and the guest-memory view, no copy in between.
import { ArgSize, Result } from '../../monitor/abi/constants.js';
import { HostError } from '../../monitor/errors.js';
import type { GuestMemory } from '../../monitor/vm/memory.js';
import type { RunControl } from '../../monitor/module.js';
import { describeSystemError } from '../../monitor/errors.js';
import type { NativeBinding } from '../../native/binding.js';

export interface BlockDevice {
  fd: number;
  capacity: bigint;
}

const I64_MAX = (1n << 63n) - 1n;

/** Makes the handler of BLOCK_WRITE (write = true) or BLOCK_READ. */
export function blockIoHandler(
  mem: GuestMemory,
  devices: ReadonlyMap<number, BlockDevice>,
  native: NativeBinding,
  write: boolean,
  deviceBytes: Float64Array,
  run: RunControl,
): (gpa: number) => void {
  return (gpa) => {
    const off = mem.struct(gpa, ArgSize.BLOCK, 'write');
    const v = mem.view;
    const retOff = off + 32;
    const [hLo, hHi] = mem.u64Halves(off);
    const dev = hHi === 0 ? devices.get(hLo) : undefined;
    const offset = v.getBigUint64(off + 8, true);
    const len = v.getBigUint64(off + 24, true);
    if (!dev || len > I64_MAX || offset >= dev.capacity || offset + len > dev.capacity) {
      v.setInt32(retOff, Result.EINVAL, true);
      return;
    }
    // Reading from the disk writes guest memory, and the other way round.
    const { gpa: data, len: n } = mem.regionAt(off + 16, off + 24, write ? 'read' : 'write');
    const view = mem.bytes.subarray(data, data + n);
    let done = 0;
    for (;;) {
      let k: number;
      const rest = done === 0 ? view : view.subarray(done);
      try {
        const at = done === 0 ? offset : offset + BigInt(done);
        k = write ? native.pwriteAll(dev.fd, rest, at) : native.preadAll(dev.fd, rest, at);
      } catch (e) {
        throw new HostError(`Fatal error when ${write ? 'writing' : 'reading'}: ${describeSystemError(e)}`);
      }
      if (k > 0) done += k;
      // A signal cut the transfer short: end the run if it is ending (the
      // guest gets no answer; what reached the file stays), else go on.
      if (done === n || k === 0 || run.ending()) break;
    }
    if (done !== n && run.ending()) return;
    if (done !== n) {
      throw new HostError(`Fatal error: ${write ? 'wrote' : 'read'} only ${done} out of ${n} bytes`);
    }
    const counter = 2 * hLo + (write ? 1 : 0);
    deviceBytes[counter] = (deviceBytes[counter] ?? 0) + n;
    v.setInt32(retOff, Result.OK, true);
  };
}
