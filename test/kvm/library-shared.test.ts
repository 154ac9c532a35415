// Several VMs per worker (createPool({ vmsPerWorker }), issue #13) on real
// KVM: VMs stack on one worker up to the limit and no further; a VM that
// computes does not keep the others of its worker from running or waking on
// time; each VM is stopped, ends and is counted alone; sandboxed and
// sandbox:false VMs never share a worker, nor does a VM that needs an
// unconfined build; nothing of one VM reaches the next, memory or
// descriptors; the per-VM CPU time is the VM's own.
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPool, OptionError, type Pool, type Unikernel, type UnikernelOptions } from 'ukvm-ts';
import { makeDisk } from '../helpers/disk.js';
import { describeKvm, guest } from '../helpers/tender.js';

let dir = '';
const pools: Pool[] = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ukvm-shared-'));
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function pool(size: number, vmsPerWorker: number): Pool {
  const p = createPool({ size, vmsPerWorker });
  pools.push(p);
  return p;
}

/** Starts a VM; its console text so far, and a promise of a line containing `word`. */
async function start(p: Pool, options: Omit<UnikernelOptions, 'console'>, word = '') {
  let text = '';
  let said: () => void = () => {};
  const seen = new Promise<void>((r) => (said = r));
  const vm = await p.start({
    memoryMiB: 4,
    ...options,
    console: (t) => {
      text += t;
      if (word && text.includes(word)) said();
    },
  });
  return { vm, text: () => text, seen };
}

const settle = async (p: Pool) => {
  // Each worker reports itself free just after its VM's exit.
  for (let i = 0; i < 100 && p.counts().running > 0; i++) await new Promise((r) => setTimeout(r, 20));
};

function kvmObjects(): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('anon_inode:kvm');
    } catch {
      return false;
    }
  }).length;
}

/** kvmObjects() once it has not changed for 100 ms (a worker makes its next VM ahead right after a VM ends). */
async function steadyKvmObjects(): Promise<number> {
  let last = kvmObjects();
  for (let same = 0, i = 0; same < 5 && i < 200; i++) {
    await new Promise((r) => setTimeout(r, 20));
    const now = kvmObjects();
    same = now === last ? same + 1 : 0;
    last = now;
  }
  return last;
}

describeKvm('pool: several VMs per worker', () => {
  it('a vmsPerWorker outside 1..64 is refused', () => {
    for (const v of [0, 65, 1.5, -1]) expect(() => createPool({ vmsPerWorker: v })).toThrow(OptionError);
  });

  it('stacks idle VMs on one worker up to vmsPerWorker, then boots another; each stops alone', async () => {
    const p = pool(1, 4);
    await p.warm();
    const vms: Unikernel[] = [];
    for (let i = 0; i < 6; i++) {
      const s = await start(p, { kernel: guest('idle'), args: [String(i)] }, 'idle');
      await s.seen;
      vms.push(s.vm);
    }
    // 4 on the first worker, 2 on a second.
    expect(p.counts()).toMatchObject({ running: 2, started: 2 });
    vms[1]?.stop();
    expect(await vms[1]?.exited).toEqual({ status: 1, reason: 'stopped' });
    // The others still sleep in POLL, untouched.
    await new Promise((r) => setTimeout(r, 100));
    for (const [i, vm] of vms.entries()) if (i !== 1) expect(vm.stats().wallMs).toBeGreaterThan(0);
    const racing = await Promise.race([...vms.filter((_, i) => i !== 1).map((v) => v.exited), new Promise((r) => setTimeout(() => r('none'), 200))]);
    expect(racing).toBe('none');
    // A freed place on the first worker is taken before a third worker boots.
    const again = await start(p, { kernel: guest('idle') }, 'idle');
    await again.seen;
    expect(p.counts().started).toBe(2);
    for (const vm of [...vms, again.vm]) vm.stop();
    const exits = await Promise.all([...vms, again.vm].map((v) => v.exited));
    expect(exits.every((e) => e.reason === 'stopped' && e.status === 1)).toBe(true);
    await settle(p);
    expect(p.counts()).toMatchObject({ running: 0 });
  }, 60_000);

  it('a guest that computes without exits does not keep its worker-mates from running and waking on time', async () => {
    const p = pool(1, 4);
    await p.warm();
    const spin = await start(p, { kernel: guest('spin') });
    // 20 POLLs of 20 ms beside the spinner, on the same worker.
    const ticker = await start(p, { kernel: guest('ticker'), args: ['20', '20'] });
    const hello = await start(p, { kernel: guest('hello') });
    expect(await hello.vm.exited).toEqual({ status: 0, reason: 'halt' });
    expect(hello.text()).toBe('Hello, world\ncmdline: \n');
    expect(await ticker.vm.exited).toEqual({ status: 0, reason: 'halt' });
    const m = /ticks=20 early=0 late_max_us=(\d+) late_avg_us=(\d+)/.exec(ticker.text());
    expect(m, ticker.text()).not.toBeNull();
    // Generous bounds for a loaded 2-CPU host: a 5 ms slice, the watchdog's own scheduling.
    expect(Number(m?.[2])).toBeLessThan(50_000);
    expect(p.counts().started).toBe(1);
    // The spinner's CPU time is its own: it ran most of the time.
    const spinMs = spin.vm.stats().vcpuMs;
    expect(spinMs).toBeGreaterThan(100);
    expect(hello.vm.stats().vcpuMs).toBeLessThan(spinMs);
    spin.vm.stop();
    expect(await spin.vm.exited).toEqual({ status: 1, reason: 'stopped' });
  }, 60_000);

  it('sandboxed and sandbox:false VMs never share a worker; an exclusive VM (dumpcore) runs alone', async () => {
    const p = pool(1, 8);
    await p.warm();
    const a = await start(p, { kernel: guest('idle') }, 'idle');
    await a.seen;
    const b = await start(p, { kernel: guest('idle'), sandbox: false }, 'idle');
    await b.seen;
    expect(p.counts().started).toBe(2);
    const c = await start(p, { kernel: guest('idle'), dumpcore: dir, sandbox: false }, 'idle');
    await c.seen;
    expect(p.counts().started).toBe(3);
    // Another of each class joins its own worker.
    const d = await start(p, { kernel: guest('idle') }, 'idle');
    const e = await start(p, { kernel: guest('idle'), sandbox: false }, 'idle');
    await Promise.all([d.seen, e.seen]);
    expect(p.counts().started).toBe(3);
    for (const s of [a, b, c, d, e]) s.vm.stop();
    for (const s of [a, b, c, d, e]) expect((await s.vm.exited).reason).toBe('stopped');
  }, 60_000);

  it('nothing of a VM reaches the next on the same shared worker: memory, descriptors, counters', async () => {
    const p = pool(1, 4);
    await p.warm();
    // One VM stays on the worker throughout, so the worker is shared all along.
    const keep = await start(p, { kernel: guest('idle') }, 'idle');
    await keep.seen;
    // Counted once the worker has made its next VM ahead, as it has after each VM (KvmBackend.prepare).
    const first = await start(p, { kernel: guest('hello') });
    await first.vm.exited;
    const disk = makeDisk(join(dir, 'shared.img'), 64 * 512);
    const before = await steadyKvmObjects();
    const w = await start(p, { kernel: guest('secret'), args: ['write', '9191'] });
    expect(await w.vm.exited).toEqual({ status: 0, reason: 'halt' });
    expect(w.text()).toMatch(/^written [1-9][0-9]* pages\n$/);
    const s = await start(p, { kernel: guest('secret'), args: ['scan', '9191'] });
    expect(await s.vm.exited).toEqual({ status: 0, reason: 'halt' });
    expect(s.text()).toBe('clean\n');
    const r1 = await start(p, { kernel: guest('block_rw'), args: ['rw', '3'], block: { storage: disk } });
    expect(await r1.vm.exited).toEqual({ status: 0, reason: 'halt' });
    const r2 = await start(p, { kernel: guest('block_rw'), args: ['rw', '3'], block: { storage: disk } });
    expect(await r2.vm.exited).toEqual({ status: 0, reason: 'halt' });
    expect(r2.vm.stats().hypercalls).toEqual(r1.vm.stats().hypercalls);
    expect(r2.vm.stats().devices).toEqual(r1.vm.stats().devices);
    expect(await steadyKvmObjects()).toBe(before);
    expect(p.counts().started).toBe(1);
    keep.vm.stop();
    expect(await keep.vm.exited).toEqual({ status: 1, reason: 'stopped' });
  }, 60_000);

  it('a VM that faults ends alone; its worker-mates go on', async () => {
    const p = pool(1, 4);
    await p.warm();
    const idle = await start(p, { kernel: guest('idle') }, 'idle');
    await idle.seen;
    // A POLL structure outside guest memory: the one hypercall a shared worker handles differently.
    const bad = await start(p, { kernel: guest('hostile'), args: ['poll-outside'] });
    const exit = await bad.vm.exited;
    expect(exit).toMatchObject({ status: 1, reason: 'fault' });
    expect(bad.text()).toContain('mode: poll-outside');
    const hello = await start(p, { kernel: guest('hello') });
    expect(await hello.vm.exited).toEqual({ status: 0, reason: 'halt' });
    idle.vm.stop();
    expect(await idle.vm.exited).toEqual({ status: 1, reason: 'stopped' });
    expect(p.counts().started).toBe(1);
  }, 60_000);
});
