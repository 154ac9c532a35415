// Child process of bench/library.mjs: starts N idle unikernels (test guest
// `idle`, 8 MiB each) from one pool in this fresh process, waits until all
// sleep in POLL, and prints one JSON line: host memory per VM, split as
// /proc/self/status splits it (RssAnon + RssFile: the monitor's own;
// RssShmem: guest pages the guests touched), the time to start and to stop
// them all, and how many ended 'stopped'. Run alone, it is also a way to
// look at one figure: node bench/library-rss.mjs 64 '{"maxYoungGenerationSizeMb":1}'
// With 'empty' as the second argument it measures bare Node workers instead
// (the floor of a worker thread, no ukvm-ts code in it). A third argument is
// the pool's vmsPerWorker (default 1): node bench/library-rss.mjs 256 '' 16
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { createPool } from '../dist/monitor/index.js';
import { guest } from './lib.mjs';

const N = Number(process.argv[2] ?? 16);
const mode = process.argv[3] ?? '';
const vmsPerWorker = Number(process.argv[4] ?? 1);

function status() {
  const s = readFileSync('/proc/self/status', 'utf8');
  const kib = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
  return { anon: kib('RssAnon'), file: kib('RssFile'), shmem: kib('RssShmem'), threads: kib('Threads') };
}
const settle = () => new Promise((r) => setTimeout(r, 1000));
const perVm = (a, b, k) => (b[k] - a[k]) / N / 1024;

if (mode === 'empty') {
  const code = "const { parentPort } = require('node:worker_threads'); parentPort.on('message', () => {}); parentPort.postMessage(0);";
  await settle();
  const before = status();
  const workers = [];
  for (let i = 0; i < N; i++) {
    const w = new Worker(code, { eval: true, execArgv: [] });
    await new Promise((r) => w.once('message', r));
    workers.push(w);
  }
  await settle();
  const after = status();
  process.stdout.write(`${JSON.stringify({ n: N, hostMiB: perVm(before, after, 'anon') + perVm(before, after, 'file') })}\n`);
  await Promise.all(workers.map((w) => w.terminate()));
} else {
  const pool = createPool({ size: 0, vmsPerWorker, ...(mode ? { resourceLimits: JSON.parse(mode) } : {}) });
  // One VM first, so the main thread's own code and the addon are loaded before counting.
  const first = await pool.start({ kernel: guest('idle'), memoryMiB: 8, console: () => {} });
  first.stop();
  await first.exited;
  await settle();
  const before = status();
  const t0 = performance.now();
  const vms = [];
  const asleep = [];
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < N) {
      const i = next++;
      let said = () => {};
      asleep[i] = new Promise((r) => (said = r));
      vms[i] = await pool.start({ kernel: guest('idle'), memoryMiB: 8, console: (t) => t.includes('idle') && said() });
    }
  }));
  await Promise.all(asleep);
  const startMs = performance.now() - t0;
  await settle();
  const after = status();
  const t1 = performance.now();
  for (const vm of vms) vm.stop();
  const exits = await Promise.all(vms.map((v) => v.exited));
  const stopMs = performance.now() - t1;
  await pool.close();
  process.stdout.write(`${JSON.stringify({
    n: N,
    vmsPerWorker,
    hostMiB: perVm(before, after, 'anon') + perVm(before, after, 'file'),
    guestMiB: perVm(before, after, 'shmem'),
    threadsPerVm: (after.threads - before.threads) / N,
    startMs,
    stopMs,
    stopped: exits.filter((e) => e.reason === 'stopped').length,
  })}\n`);
}
