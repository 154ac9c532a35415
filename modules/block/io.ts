// BLOCK_WRITE / BLOCK_READ (docs/abi.md §10.4, §10.5). Bounds are computed in
// 64-bit BigInt, so offsets above 2^53 are exact; data moves with
// pread/pwrite straight between the file and the guest buffer, no copy.
import { I64_MAX, Result } from '../../monitor/abi/constants.js';
import { BLOCK_ARGS } from '../../monitor/abi/layouts.js';
import type { HostIo } from '../../monitor/backend/host.js';
import { describeSystemError, HostError } from '../../monitor/errors.js';
import type { SetupContext } from '../../monitor/module.js';

export interface BlockDevice {
  fd: number;
  capacity: bigint;
}

type Needs = Pick<SetupContext, 'memory' | 'run' | 'countBytes'>;

/** Makes the handler of BLOCK_WRITE (write = true) or BLOCK_READ. */
export function blockIoHandler(ctx: Needs, devices: ReadonlyMap<number, BlockDevice>, host: HostIo, write: boolean): (gpa: number) => void {
  const { memory, run } = ctx;
  return (gpa) => {
    const args = memory.struct(gpa, BLOCK_ARGS, 'write');
    const [hLo, hHi] = args.u64Halves('handle');
    const dev = hHi === 0 ? devices.get(hLo) : undefined;
    const offset = args.u64('offset');
    const len = args.u64('len');
    if (!dev || len > I64_MAX || offset >= dev.capacity || offset + len > dev.capacity) {
      args.setI32('ret', Result.EINVAL);
      return;
    }
    // Reading from the disk writes guest memory, and the other way round.
    const view = args.buffer('data', 'len', write ? 'read' : 'write');
    const n = view.length;
    let done = 0;
    for (;;) {
      let k: number;
      const rest = done === 0 ? view : view.subarray(done);
      try {
        const at = done === 0 ? offset : offset + BigInt(done);
        k = write ? host.pwriteAll(dev.fd, rest, at) : host.preadAll(dev.fd, rest, at);
      } catch (e) {
        throw new HostError(`Fatal error when ${write ? 'writing' : 'reading'}: ${describeSystemError(e)}`, { cause: e });
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
    ctx.countBytes(hLo, write ? 'out' : 'in', n);
    args.setI32('ret', Result.OK);
  };
}
