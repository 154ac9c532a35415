// Handlers that wait on the host give up as soon as the run is ending (issue
// #9 item 2): NET_WRITE on a full tap and block I/O that a signal cut short,
// over a fake binding and a fake RunControl — no KVM, no descriptors.
import { describe, expect, it } from 'vitest';
import { Result } from '../../monitor/abi/constants.js';
import { GuestMemory } from '../../monitor/vm/memory.js';
import type { RunControl } from '../../monitor/module.js';
import type { HostIo } from '../../monitor/backend/host.js';
import { blockIoHandler } from '../../modules/block/io.js';
import { netWriteHandler } from '../../modules/net/io.js';

const MEM = 1 << 20;
const ARGS = 0x1000; // argument structure
const DATA = 0x2000; // guest buffer
const UNTOUCHED = 0x7777;

/** A RunControl that starts ending after `calls` calls of ending(). */
function runEndingAfter(calls: number): RunControl & { waits: number } {
  let n = 0;
  const r = {
    waits: 0,
    ending: () => ++n > calls,
    waitWritable: () => {
      r.waits++;
      return !r.ending();
    },
  };
  return r;
}

function memWith(fields: [offset: number, value: bigint][]): GuestMemory {
  const mem = new GuestMemory(new ArrayBuffer(MEM));
  for (const [off, v] of fields) view(mem).setBigUint64(ARGS + off, v, true);
  return mem;
}
const view = (mem: GuestMemory) => new DataView(mem.bytes.buffer);
/** A SetupContext's parts the handlers use. */
const ctxOf = (memory: GuestMemory, run: RunControl) => ({ memory, run, countBytes: () => {} });

describe('NET_WRITE on a tap that never takes the frame', () => {
  const args = (): GuestMemory => {
    const mem = memWith([[0, 1n], [8, BigInt(DATA)], [16, 60n]]);
    view(mem).setInt32(ARGS + 24, UNTOUCHED, true);
    return mem;
  };
  const fullTap = { write: () => -1 } as unknown as HostIo;

  it('waits while the run goes on, and returns without an answer once it is ending', () => {
    const mem = args();
    const run = runEndingAfter(5);
    netWriteHandler(ctxOf(mem, run), new Map([[1, { fd: 9 }]]), fullTap)(ARGS);
    expect(run.waits).toBeGreaterThan(0);
    expect(view(mem).getInt32(ARGS + 24, true)).toBe(UNTOUCHED);
  });

  it('a write interrupted by a signal (EINTR) is retried only while the run goes on', () => {
    let calls = 0;
    const interrupted = { write: () => (++calls < 3 ? -2 : 60) } as unknown as HostIo;
    const mem = args();
    netWriteHandler(ctxOf(mem, runEndingAfter(100)), new Map([[1, { fd: 9 }]]), interrupted)(ARGS);
    expect(view(mem).getInt32(ARGS + 24, true)).toBe(Result.OK);
    const ended = args();
    calls = 0;
    netWriteHandler(ctxOf(ended, runEndingAfter(0)), new Map([[1, { fd: 9 }]]), interrupted)(ARGS);
    expect(view(ended).getInt32(ARGS + 24, true)).toBe(UNTOUCHED);
    expect(calls).toBe(1);
  });
});

describe('block I/O cut short by a signal', () => {
  const args = (): GuestMemory => {
    const mem = memWith([[0, 0n], [8, 0n], [16, BigInt(DATA)], [24, 4096n]]);
    view(mem).setInt32(ARGS + 32, UNTOUCHED, true);
    return mem;
  };
  /** pwriteAll moving `steps` in turn (−2 = EINTR before any byte), recording positions. */
  const disk = (steps: number[]) => {
    const positions: bigint[] = [];
    const native = {
      pwriteAll: (_fd: number, bytes: Uint8Array, pos: bigint) => {
        positions.push(pos);
        const k = steps.shift() ?? bytes.length;
        return k < 0 ? k : Math.min(k, bytes.length);
      },
    } as unknown as HostIo;
    return { native, positions };
  };
  const devices = new Map([[0, { fd: 9, capacity: 1n << 20n }]]);

  it('goes on after a partial transfer and an EINTR while the run goes on, at the right positions', () => {
    const d = disk([1000, -2, 96]);
    const mem = args();
    blockIoHandler(ctxOf(mem, runEndingAfter(100)), devices, d.native, true)(ARGS);
    expect(view(mem).getInt32(ARGS + 32, true)).toBe(Result.OK);
    expect(d.positions).toEqual([0n, 1000n, 1000n, 1096n]);
  });

  it('ends without an answer (and without a "Fatal error") once the run is ending', () => {
    const d = disk([1000, -2]);
    const mem = args();
    blockIoHandler(ctxOf(mem, runEndingAfter(0)), devices, d.native, true)(ARGS);
    expect(view(mem).getInt32(ARGS + 32, true)).toBe(UNTOUCHED);
    expect(d.positions).toEqual([0n]);
  });
});
