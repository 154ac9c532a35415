// The library worker's warm-up unikernel (monitor/library/warmup-kernel.ts)
// must stay a valid hvt kernel: if it did not, every worker's warm-up would
// fail quietly and the first VM of each worker would be slow again. Its
// run on real KVM is in test/kvm/library-pool.test.ts.
import { describe, expect, it } from 'vitest';
import { kernelFromBytes } from '../../monitor/kernel/kernel.js';
import { warmupKernel } from '../../monitor/library/warmup-kernel.js';
import { DeviceType } from '../../monitor/kernel/manifest.js';

describe('warmupKernel()', () => {
  it('passes the ELF, ABI note and manifest checks: entry at 0x100000, no devices', () => {
    const k = kernelFromBytes(warmupKernel());
    expect(k.elf.entry).toBe(0x100000n);
    expect(k.manifest.entries).toBe(1);
    expect(k.manifest.type(0)).toBe(DeviceType.RESERVED_FIRST);
    k.close();
  });

  it('is the same bytes every time (no state of a previous VM in it)', () => {
    expect(Buffer.from(warmupKernel()).equals(Buffer.from(warmupKernel()))).toBe(true);
  });
});
