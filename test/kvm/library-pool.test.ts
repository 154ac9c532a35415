// The library's worker pool (issue #13) on real KVM: warm workers, what
// becomes of a worker after its VM (a sandboxed one is confined for good and
// runs the next sandboxed VMs, a sandbox:false one is reused for any), and
// that nothing of one VM reaches the next:
// guest memory (a guest leaves a secret, the next one in the same worker
// searches all of its memory for it), descriptors (/proc/self/fd), counters.
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPool, createVm, HostError, kernelFromBytes, OptionError, platform, REGISTRY, type Pool, type UnikernelOptions } from 'ukvm-ts';
import { warmupKernel } from '../../monitor/library/warmup-kernel.js';
import { UNCONFINED_WARNINGS } from '../../monitor/sandbox/step.js';
import { makeDisk } from '../helpers/disk.js';
import { describeKvm, guest } from '../helpers/tender.js';

let dir = '';
const pools: Pool[] = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ukvm-pool-'));
});
afterAll(async () => {
  // Also when a test failed: no worker or VM outlives the file.
  await Promise.all(pools.map((p) => p.close()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function pool(size: number): Pool {
  const p = createPool({ size });
  pools.push(p);
  return p;
}

/** Runs one VM on `p` to its end; its console text and exit. */
async function run(p: Pool, options: Omit<UnikernelOptions, 'console'>) {
  let text = '';
  const vm = await p.start({ memoryMiB: 4, ...options, console: (t) => (text += t) });
  const exit = await vm.exited;
  // The worker reports itself free right after the exit: wait until it is back (or replaced).
  await p.warm();
  return { text, exit, stats: vm.stats() };
}

/** This process's descriptors that are KVM objects or files of the test's directory. */
function openFds(): string[] {
  return readdirSync('/proc/self/fd')
    .map((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    })
    .filter((l) => l === '/dev/kvm' || l.startsWith('anon_inode:kvm') || l.startsWith(dir))
    .sort();
}

describeKvm('pool: warm workers and their reuse', () => {
  it("the workers' warm-up unikernel runs and halts with status 0 (else the warm-up would fail unseen)", () => {
    const p = platform();
    const modules = REGISTRY.map((d) => d.create({}, { host: p.host, output: () => {} }));
    const vm = createVm({ kernel: kernelFromBytes(warmupKernel()), memoryBytes: 2n << 20n, args: [], modules, backend: () => p.openBackend(), host: p.host, warn: () => {} });
    try {
      expect(vm.run()).toEqual({ kind: 'halt', status: 0 });
    } finally {
      vm.close();
    }
  });

  it('keeps size workers booted; warm() waits for them; counts() tells idle, booting, running, started', async () => {
    const p = pool(3);
    expect(p.size).toBe(3);
    await p.warm();
    expect(p.counts()).toEqual({ idle: 3, booting: 0, running: 0, started: 3 });
    const r = await run(p, { kernel: guest('hello') });
    expect(r.exit).toEqual({ status: 0, reason: 'halt' });
    expect(r.text).toBe('Hello, world\ncmdline: \n');
    // The sandboxed VM's worker, now confined, came back: nothing new was booted.
    expect(p.counts()).toEqual({ idle: 3, booting: 0, running: 0, started: 3 });
  }, 60_000);

  it('a sandboxed worker is confined once and runs the next sandboxed VMs; a sandbox:false VM then gets another worker', async () => {
    const p = pool(1);
    await p.warm();
    for (let i = 0; i < 4; i++) {
      const r = await run(p, { kernel: guest('hello'), args: [String(i)] });
      expect(r.exit).toEqual({ status: 0, reason: 'halt' });
      expect(r.text).toBe(`Hello, world\ncmdline: ${i}\n`);
    }
    expect(p.counts().started).toBe(1);
    // The one worker is confined: a VM that must run unconfined needs a new one.
    const r = await run(p, { kernel: guest('hello'), sandbox: false });
    expect(r.exit).toEqual({ status: 0, reason: 'halt' });
    expect(p.counts().started).toBe(2);
  }, 60_000);

  it('a sandboxed VM whose options need an unconfined build (dumpcore) runs on an unconfined worker', async () => {
    const p = pool(1);
    await p.warm();
    await run(p, { kernel: guest('hello') }); // the pool's one worker is now confined
    const warnings: string[] = [];
    let text = '';
    const vm = await p.start({ kernel: guest('hello'), memoryMiB: 4, dumpcore: dir, console: (t) => (text += t), warn: (l) => warnings.push(l) });
    expect(await vm.exited).toEqual({ status: 0, reason: 'halt' });
    expect(text).toBe('Hello, world\ncmdline: \n');
    // Built and run unconfined, as the CLI's --dumpcore (docs/abi.md §17), on a new worker.
    expect(warnings).toEqual(UNCONFINED_WARNINGS);
    expect(p.counts().started).toBe(2);
  }, 60_000);

  it('a sandbox:false worker returns to the pool and runs the next VM (no new worker)', async () => {
    const p = pool(1);
    await p.warm();
    for (let i = 0; i < 4; i++) {
      const r = await run(p, { kernel: guest('hello'), sandbox: false, args: [String(i)] });
      expect(r.text).toBe(`Hello, world\ncmdline: ${i}\n`);
    }
    expect(p.counts()).toEqual({ idle: 1, booting: 0, running: 0, started: 1 });
  }, 60_000);

  it('a start while the only worker runs a long sandbox:false VM does not wait for that VM', async () => {
    const p = pool(1);
    await p.warm();
    const long = await p.start({ kernel: guest('idle'), memoryMiB: 4, console: () => {}, sandbox: false });
    const r = await run(p, { kernel: guest('hello'), sandbox: false });
    expect(r.exit).toEqual({ status: 0, reason: 'halt' });
    long.stop();
    expect(await long.exited).toEqual({ status: 1, reason: 'stopped' });
  }, 60_000);

  it('close() releases the run area and guest memory at once, not when collected (a run-area mapping keeps the KVM VM alive)', async () => {
    // No worker of this file's pools may map a vCPU meanwhile (one made ahead, KvmBackend.prepare).
    await Promise.all(pools.splice(0).map((q) => q.close()));
    const p = platform();
    const vcpuMaps = () => readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('kvm-vcpu')).length;
    const before = vcpuMaps();
    const modules = REGISTRY.map((d) => d.create({}, { host: p.host, output: () => {} }));
    const vm = createVm({ kernel: kernelFromBytes(warmupKernel()), memoryBytes: 2n << 20n, args: [], modules, backend: () => p.openBackend(), host: p.host, warn: () => {} });
    expect(vm.run()).toEqual({ kind: 'halt', status: 0 });
    expect(vcpuMaps()).toBe(before + 1);
    vm.close();
    expect(vcpuMaps()).toBe(before);
  });

  it('a pool of size 0 keeps nothing warm and still starts VMs (each on a worker of its own)', async () => {
    const p = pool(0);
    await p.warm();
    expect(p.counts()).toEqual({ idle: 0, booting: 0, running: 0, started: 0 });
    const r = await run(p, { kernel: guest('hello'), sandbox: false });
    expect(r.exit).toEqual({ status: 0, reason: 'halt' });
    expect(p.counts()).toMatchObject({ idle: 0, started: 1 });
  }, 60_000);

  it('more VMs at once than the pool holds: all run, each with its own output', async () => {
    const p = pool(2);
    await p.warm();
    const texts = await Promise.all(Array.from({ length: 8 }, (_, i) => run(p, { kernel: guest('hello'), args: [`vm${i}`] })));
    texts.forEach((r, i) => expect(r.text).toBe(`Hello, world\ncmdline: vm${i}\n`));
  }, 60_000);
});

describeKvm('pool: nothing of a VM survives into the next on the same worker', () => {
  it('the scan finds a secret that is there (the search works)', async () => {
    const p = pool(1);
    const r = await run(p, { kernel: guest('secret'), args: ['plant', '31337'], sandbox: false });
    expect(r.text).toMatch(/^found 0x[0-9a-f]+\n$/);
  }, 60_000);

  it('a guest that filled its memory with a secret leaves nothing for the next guest of the same worker', async () => {
    const p = pool(1);
    await p.warm();
    const w = await run(p, { kernel: guest('secret'), args: ['write', '4242'], sandbox: false });
    expect(w.text).toMatch(/^written [1-9][0-9]* pages\n$/);
    const s = await run(p, { kernel: guest('secret'), args: ['scan', '4242'], sandbox: false });
    expect(s.text).toBe('clean\n');
    // Both ran on the one worker the pool started.
    expect(p.counts().started).toBe(1);
  }, 60_000);

  it('also when both are sandboxed (built and run on the one confined worker): the next guest finds nothing', async () => {
    const p = pool(1);
    await p.warm();
    const w = await run(p, { kernel: guest('secret'), args: ['write', '777'] });
    expect(w.text).toMatch(/^written [1-9][0-9]* pages\n$/);
    const s = await run(p, { kernel: guest('secret'), args: ['scan', '777'] });
    expect(s.text).toBe('clean\n');
    expect(p.counts().started).toBe(1);
  }, 60_000);

  it('descriptors: a confined worker holds nothing of a sandboxed VM that ended, failed or was stopped (its disk opened by this thread)', async () => {
    const p = pool(1);
    const disk = makeDisk(join(dir, 'reuse-confined.img'), 64 * 512);
    const odd = makeDisk(join(dir, 'odd-confined.img'), 1000);
    await run(p, { kernel: guest('hello') }); // the worker is confined and has loaded its code
    const before = openFds();
    for (let i = 0; i < 3; i++) {
      const rw = await run(p, { kernel: guest('block_rw'), args: ['rw', String(i + 1)], block: { storage: disk } });
      expect(rw.exit).toEqual({ status: 0, reason: 'halt' });
      const spin = await p.start({ kernel: guest('spin'), memoryMiB: 4, console: () => {} });
      spin.stop();
      expect(await spin.exited).toEqual({ status: 1, reason: 'stopped' });
      await p.warm();
      await expect(p.start({ kernel: guest('block_rw'), memoryMiB: 4, block: { storage: odd } })).rejects.toThrow(/block aligned/);
      await p.warm();
      // The errors of a confined build are those of an unconfined one, word for word.
      // (Each awaits the worker's return: a start that finds none idle would boot another.)
      await expect(p.start({ kernel: join(dir, 'missing.hvt'), memoryMiB: 4 })).rejects.toThrow(`${join(dir, 'missing.hvt')}: Could not open: No such file or directory`);
      await p.warm();
      await expect(p.start({ kernel: guest('block_rw'), memoryMiB: 4, block: { storage: join(dir, 'none.img') } }))
        .rejects.toThrow(`Could not open block device: ${join(dir, 'none.img')}: No such file or directory`);
      await p.warm();
      await expect(p.start({ kernel: dir, memoryMiB: 4 })).rejects.toThrow(`${dir}: Could not open: Is a directory`);
      await p.warm();
    }
    expect(openFds()).toEqual(before);
    expect(p.counts().started).toBe(1);
  }, 120_000);

  it('descriptors: a reused worker holds no KVM object and no disk of a VM that ended, failed or was stopped', async () => {
    const p = pool(1);
    const disk = makeDisk(join(dir, 'reuse.img'), 64 * 512);
    const odd = makeDisk(join(dir, 'odd.img'), 1000);
    await run(p, { kernel: guest('hello'), sandbox: false }); // the worker has loaded its code
    const before = openFds();
    for (let i = 0; i < 3; i++) {
      const rw = await run(p, { kernel: guest('block_rw'), args: ['rw', String(i + 1)], block: { storage: disk }, sandbox: false });
      expect(rw.exit).toEqual({ status: 0, reason: 'halt' });
      const spin = await p.start({ kernel: guest('spin'), memoryMiB: 4, console: () => {}, sandbox: false });
      spin.stop();
      expect(await spin.exited).toEqual({ status: 1, reason: 'stopped' });
      await p.warm();
      // Fails after the disk was opened (its size is not a multiple of the sector size).
      await expect(p.start({ kernel: guest('block_rw'), memoryMiB: 4, block: { storage: odd }, sandbox: false })).rejects.toThrow(/block aligned/);
      await p.warm();
    }
    expect(openFds()).toEqual(before);
    expect(p.counts().started).toBe(1);
  }, 120_000);

  it('counters and device figures start from zero on a reused worker', async () => {
    const p = pool(1);
    const disk = makeDisk(join(dir, 'counts.img'), 64 * 512);
    const a = await run(p, { kernel: guest('block_rw'), args: ['rw', '3'], block: { storage: disk }, sandbox: false });
    const b = await run(p, { kernel: guest('block_rw'), args: ['rw', '3'], block: { storage: disk }, sandbox: false });
    expect(b.stats.hypercalls).toEqual(a.stats.hypercalls);
    expect(b.stats.devices).toEqual(a.stats.devices);
    expect(b.stats.exits).toEqual(a.stats.exits);
    expect(p.counts().started).toBe(1);
  }, 60_000);
});

describeKvm('pool: close()', () => {
  it('stops the VMs still running, ends every worker, and refuses later starts', async () => {
    const p = pool(2);
    await p.warm();
    const spin = await p.start({ kernel: guest('spin'), memoryMiB: 4, console: () => {} });
    const idle = await p.start({ kernel: guest('idle'), memoryMiB: 4, console: () => {}, sandbox: false });
    await p.close();
    expect(await spin.exited).toEqual({ status: 1, reason: 'stopped' });
    expect(await idle.exited).toEqual({ status: 1, reason: 'stopped' });
    expect(p.counts()).toMatchObject({ idle: 0, booting: 0, running: 0 });
    await expect(p.start({ kernel: guest('hello') })).rejects.toBeInstanceOf(HostError);
    // Option errors are still reported as such.
    await expect(p.start({ kernel: 3 as unknown as string })).rejects.toBeInstanceOf(OptionError);
    await p.close(); // twice is harmless
  }, 60_000);

  it('a size that is not a non-negative integer is refused', () => {
    expect(() => createPool({ size: -1 })).toThrow(OptionError);
    expect(() => createPool({ size: 1.5 })).toThrow(OptionError);
  });
});
