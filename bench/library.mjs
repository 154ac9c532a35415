// Library: start-to-exit of hello through startUnikernel inside this already
// running process (one worker thread per VM) versus spawning the CLI, and how
// many hello unikernels one process starts and finishes per second.
import { spawnSync } from 'node:child_process';
import { startUnikernel } from '../dist/monitor/index.js';
import { BIN, guest, stats } from './lib.mjs';

async function inProcess() {
  const t = process.hrtime.bigint();
  const vm = await startUnikernel({ kernel: guest('hello'), memoryMiB: 32, console: () => {} });
  const exit = await vm.exited;
  if (exit.status !== 0) throw new Error(`hello exited ${exit.status}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

function spawned() {
  const t = process.hrtime.bigint();
  const r = spawnSync(BIN, ['--mem=32', guest('hello')], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`hello exited ${r.status}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/** Starts `batch` hellos at once and waits for all; returns VMs per second. */
async function throughput(batch) {
  const t = process.hrtime.bigint();
  const vms = await Promise.all(Array.from({ length: batch }, () => startUnikernel({ kernel: guest('hello'), memoryMiB: 32, console: () => {} })));
  const exits = await Promise.all(vms.map((v) => v.exited));
  if (exits.some((e) => e.status !== 0)) throw new Error('a hello failed');
  return batch / (Number(process.hrtime.bigint() - t) / 1e9);
}

export async function benchLibrary({ runs = 7, batch = 32 } = {}) {
  await inProcess(); // warm up module loading in this process
  const lib = [];
  const cli = [];
  for (let i = 0; i < runs; i++) {
    lib.push(await inProcess());
    cli.push(spawned());
  }
  const rate = [];
  for (let i = 0; i < 5; i++) rate.push(await throughput(batch));
  return { inProcessMs: stats(lib), spawnMs: stats(cli), perSecond: stats(rate), batch };
}
