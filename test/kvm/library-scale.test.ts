// Many idle unikernels in one process (issue #13): every one starts, says
// it is idle, is stoppable, and ends with its own exit; none is lost, and
// once they have ended no KVM descriptor and no worker beyond the pool's is left. 64 here
// (UKVM_SCALE_VMS=256 for the figure; bench/library.mjs measures
// 256 and the memory each takes).
import { readdirSync, readlinkSync } from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import { createPool, type Unikernel } from 'ukvm-ts';
import { describeKvm, guest } from '../helpers/tender.js';

const COUNT = Number(process.env.UKVM_SCALE_VMS ?? 64);
const pool = createPool({ size: 4 });
afterAll(() => pool.close());

function kvmFds(): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      const l = readlinkSync(`/proc/self/fd/${fd}`);
      return l === '/dev/kvm' || l.startsWith('anon_inode:kvm');
    } catch {
      return false;
    }
  }).length;
}

describeKvm(`${COUNT} idle unikernels in one process`, () => {
  it('all start and sleep in POLL, all stop, none is lost; nothing is left after', async () => {
    // Each worker holds /dev/kvm from boot to end: count with the pool's own workers booted.
    await pool.warm();
    const before = kvmFds();
    const vms: Unikernel[] = [];
    const idle: Promise<void>[] = [];
    // Eight starts in flight at a time, as a program starting a fleet would.
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < COUNT) {
        const i = next++;
        let said: () => void = () => {};
        idle[i] = new Promise<void>((r) => (said = r));
        vms[i] = await pool.start({ kernel: guest('idle'), memoryMiB: 8, args: [String(i)], console: (t) => t.includes('idle') && said() });
      }
    }));
    await Promise.all(idle);
    expect(vms.length).toBe(COUNT);
    // All asleep in POLL at once: each counted exactly one POLL so far.
    for (const vm of vms) expect(vm.stats().hypercalls.POLL).toBeGreaterThanOrEqual(1);
    expect(kvmFds()).toBeGreaterThanOrEqual(before + 2 * COUNT); // a VM and a vCPU each
    for (const vm of vms) vm.stop();
    const exits = await Promise.all(vms.map((v) => v.exited));
    expect(exits.filter((e) => e.reason === 'stopped' && e.status === 1).length).toBe(COUNT);
    await pool.warm();
    // A worker reports itself free just after its VM's exit: let the last ones come back.
    for (let i = 0; i < 100 && pool.counts().running > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(pool.counts()).toMatchObject({ running: 0, idle: 4 });
    // Workers beyond the pool's four end by themselves (and close their /dev/kvm) soon after.
    for (let i = 0; i < 100 && kvmFds() > before; i++) await new Promise((r) => setTimeout(r, 50));
    expect(kvmFds()).toBe(before);
  }, 300_000);
});
