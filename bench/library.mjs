// Library at scale (issue #13), side by side in one run:
//   - where the time of one start goes: a bare Node worker's start, a library
//     worker's boot (core loaded, warm-up VM run), and on the calling thread
//     createVm / run / close of hello, with the guest's own share measured by
//     the floor loop (bench/lib.mjs bootFloorVm: hypercalls answered in C++);
//   - hello start → exited: warm pool (sandbox on, the default, on workers
//     confined once and reused; and sandbox: false, on a pool of its own),
//     cold (no pool), spawning
//     bin/ukvm-ts, and spawning the C tender when SOLO5_HVT names one;
//   - hello starts per second, several in flight;
//   - host memory per idle VM at 1, 16, 64 and 256 VMs, each count in a fresh
//     process (bench/library-rss.mjs), with a bare Node worker for scale.
// All VMs have 8 MiB of guest memory.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { createPool, REGISTRY } from '../dist/monitor/index.js';
import { BIN, bootFloorVm, bootVm, guest, ROOT, stats } from './lib.mjs';

const MEM = 8;
/** vmsPerWorker of the shared-worker rows. */
const SHARED = 16;
/** Starts in flight in the starts-per-second rows. */
const LANES = 4;
/** Quiet time before each timed warm start. */
const QUIET_MS = 20;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const HELLO = guest('hello');
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const now = () => process.hrtime.bigint();

/** Milliseconds from new Worker() to its first message. */
async function workerStart(file, options) {
  const t = now();
  const w = new Worker(file, { execArgv: [], ...options });
  await new Promise((r) => w.once('message', r));
  const dt = ms(t);
  await w.terminate();
  return dt;
}

function inThread() {
  let t = now();
  const vm = bootVm('hello', [], MEM);
  const create = ms(t);
  t = now();
  const outcome = vm.run();
  const run = ms(t);
  t = now();
  vm.close();
  const close = ms(t);
  if (outcome.kind !== 'halt' || outcome.status !== 0) throw new Error('hello did not exit 0');
  const floor = bootFloorVm('hello', [], MEM);
  t = now();
  const status = floor.run();
  const guestMs = ms(t);
  floor.close();
  if (status !== 0) throw new Error('hello (floor) did not exit 0');
  return { create, run, close, guestMs };
}

async function startToExit(pool, options = {}) {
  const t = now();
  const vm = await pool.start({ kernel: HELLO, memoryMiB: MEM, console: () => {}, ...options });
  const exit = await vm.exited;
  if (exit.status !== 0) throw new Error(`hello exited ${exit.status}`);
  return ms(t);
}

function spawned(program, args) {
  const t = now();
  const r = spawnSync(program, [...args, `--mem=${MEM}`, HELLO], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`${program} hello exited ${r.status}`);
  return ms(t);
}

/** Hellos per second with `lanes` starts in flight, `n` in all. */
async function rate(n, lanes, startOne) {
  let next = 0;
  const t = now();
  await Promise.all(Array.from({ length: lanes }, async () => {
    while (next < n) {
      next++;
      await startOne();
    }
  }));
  return n / (ms(t) / 1000);
}

const spawnAsync = (program, args) =>
  new Promise((resolve, reject) => {
    const c = spawn(program, [...args, `--mem=${MEM}`, HELLO], { stdio: 'ignore' });
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${program} exited ${code}`))));
  });

function rss(n, mode = '', vmsPerWorker = 1) {
  const r = spawnSync(process.execPath, [join(ROOT, 'bench', 'library-rss.mjs'), String(n), mode, String(vmsPerWorker)], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`library-rss ${n} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Host memory of one C tender process per idle guest (RssAnon + RssFile, MiB; RssShmem apart), n at once. */
async function cIdle(c, n) {
  const kids = await Promise.all(Array.from({ length: n }, () => new Promise((resolve, reject) => {
    const k = spawn(c, [`--mem=${MEM}`, guest('idle')], { stdio: ['ignore', 'pipe', 'ignore'] });
    k.on('error', reject);
    k.stdout.on('data', (d) => String(d).includes('idle') && resolve(k));
  })));
  await new Promise((r) => setTimeout(r, 1000));
  const mib = kids.map((k) => {
    const st = readFileSync(`/proc/${k.pid}/status`, 'utf8');
    const kib = (f) => Number(new RegExp(`${f}:\\s+(\\d+)`).exec(st)?.[1] ?? 0);
    return { host: (kib('RssAnon') + kib('RssFile')) / 1024, guest: kib('RssShmem') / 1024 };
  });
  await Promise.all(kids.map((k) => new Promise((r) => (k.on('exit', r), k.kill('SIGTERM')))));
  return { n, hostMiB: stats(mib.map((m) => m.host)), guestMiB: stats(mib.map((m) => m.guest)) };
}

export async function benchLibrary({ runs = 15, burst = 64 } = {}) {
  const c = process.env.SOLO5_HVT || null;
  const outline = { modules: REGISTRY.map((d) => ({ name: d.name, serves: [...d.serves], always: d.always === true })) };
  const emptyCode = "require('node:worker_threads').parentPort.postMessage(0)";

  // Where the time goes.
  const phases = { emptyWorker: [], libraryWorker: [], create: [], run: [], close: [], guest: [] };
  inThread(); // compiles the path once, as a warm worker has
  for (let i = 0; i < runs; i++) {
    phases.emptyWorker.push(await workerStart(emptyCode, { eval: true }));
    phases.libraryWorker.push(await workerStart(join(ROOT, 'dist', 'bundles', 'library-worker.mjs'), { workerData: outline }));
    const t = inThread();
    phases.create.push(t.create);
    phases.run.push(t.run);
    phases.close.push(t.close);
    phases.guest.push(t.guestMs);
  }

  // hello start → exited, interleaved so drift in the machine affects all alike.
  // Two warm pools: a worker that ran a sandboxed VM stays confined and
  // takes only sandboxed VMs, so one pool serving both would boot workers
  // for the sandbox: false starts.
  const warm = createPool({ size: 2 });
  const open = createPool({ size: 2 });
  const dense = createPool({ size: 2, vmsPerWorker: SHARED });
  const cold = createPool({ size: 0 });
  const latency = { sandboxed: [], reused: [], shared: [], cold: [], spawn: [], c: [] };
  await startToExit(warm);
  await startToExit(dense);
  await startToExit(open, { sandbox: false });
  // Each warm start on an idle pool and a quiet machine: QUIET_MS after the
  // previous step, so what that step left running (a process's exit, a
  // worker retiring, GC) is not counted in it.
  for (let i = 0; i < runs; i++) {
    await warm.warm();
    await sleep(QUIET_MS);
    latency.sandboxed.push(await startToExit(warm));
    await open.warm();
    await sleep(QUIET_MS);
    latency.reused.push(await startToExit(open, { sandbox: false }));
    await dense.warm();
    await sleep(QUIET_MS);
    latency.shared.push(await startToExit(dense));
    latency.cold.push(await startToExit(cold));
    latency.spawn.push(spawned(BIN, []));
    if (c) latency.c.push(spawned(c, []));
  }

  // Starts per second, LANES in flight, on pools that keep LANES workers
  // warm (one worker a VM) or 2 (vmsPerWorker: the VMs stack on them).
  const throughput = { sandboxed: [], reused: [], shared: [], spawn: [], c: [] };
  const burstWarm = createPool({ size: LANES });
  const burstOpen = createPool({ size: LANES });
  for (let i = 0; i < 3; i++) {
    await burstWarm.warm();
    throughput.sandboxed.push(await rate(burst, LANES, () => startToExit(burstWarm)));
    await burstOpen.warm();
    throughput.reused.push(await rate(burst, LANES, () => startToExit(burstOpen, { sandbox: false })));
    await dense.warm();
    throughput.shared.push(await rate(burst, LANES, () => startToExit(dense)));
    throughput.spawn.push(await rate(16, 2, () => spawnAsync(BIN, [])));
    if (c) throughput.c.push(await rate(burst, 2, () => spawnAsync(c, [])));
  }
  await warm.close();
  await burstWarm.close();
  await burstOpen.close();
  await open.close();
  await dense.close();
  await cold.close();

  // Memory per idle VM, each count in a fresh process.
  const idle = [1, 16, 64, 256].map((n) => rss(n));
  const shared = [1, 16, 64, 256].map((n) => rss(n, '', SHARED));
  const lean = rss(64, JSON.stringify({ maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16, stackSizeMb: 1 }));
  const emptyWorkers = rss(64, 'empty');
  const cProcesses = c ? await cIdle(c, 16) : null;

  const s = (o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v.length).map(([k, v]) => [k, stats(v)]));
  return { memMiB: MEM, runs, burst, c, shared: SHARED, phases: s(phases), latency: s(latency), throughput: s(throughput), idle, sharedIdle: shared, lean, emptyWorkers, cProcesses };
}

/** The markdown rows of the library figures; `range` formats a stats() value. */
export function libraryTable(r, range) {
  const f = (x, d = 1) => x.toFixed(d);
  const cRow = (label, v, unit = '') => (r.c ? [`| ${label} | ${range(v)}${unit} |`] : []);
  const p = r.phases;
  return [
    `| Library: where one start goes (hello, ${r.memMiB} MiB) | ms |`,
    '|---|---|',
    `| a bare Node worker thread, new Worker() to its first message | ${range(p.emptyWorker)} |`,
    `| a library worker's boot (core loaded, warm-up VM run; off the start path in a pool) | ${range(p.libraryWorker)} |`,
    `| createVm (open kernel, KVM VM and vCPU, load, page tables, modules) | ${range(p.create, 2)} |`,
    `| run: guest boot to HALT, hypercalls in TypeScript | ${range(p.run, 2)} |`,
    `| run on the floor loop (hypercalls in C++): the guest's own share | ${range(p.guest, 2)} |`,
    `| close | ${range(p.close, 2)} |`,
    '',
    `| Library: hello start → exited (${r.memMiB} MiB; warm: an idle pool, ${QUIET_MS} ms after the previous step) | ms |`,
    '|---|---|',
    `| startUnikernel, warm pool, sandbox on (default; built and run on a confined worker, which is reused) | ${range(r.latency.sandboxed, 2)} |`,
    `| startUnikernel, warm pool, sandbox: false (an unconfined worker, reused) | ${range(r.latency.reused, 2)} |`,
    `| startUnikernel, warm pool, vmsPerWorker ${r.shared}, sandbox on | ${range(r.latency.shared, 2)} |`,
    `| startUnikernel, no warm worker (pool of size 0) | ${range(r.latency.cold)} |`,
    `| spawning bin/ukvm-ts | ${range(r.latency.spawn)} |`,
    ...cRow(`spawning the C tender (${r.c})`, r.latency.c),
    ...(r.c ? [] : ['| spawning the C tender | not measured (set SOLO5_HVT) |']),
    '',
    '| Library: hello starts per second (2 cores) | starts/s |',
    '|---|---|',
    `| warm pool of 4, sandbox on, ${r.burst} starts, 4 in flight | ${range(r.throughput.sandboxed)} |`,
    `| warm pool of 4, sandbox: false, ${r.burst} starts, 4 in flight | ${range(r.throughput.reused)} |`,
    `| warm pool of 2, vmsPerWorker ${r.shared}, sandbox on, ${r.burst} starts, 4 in flight | ${range(r.throughput.shared)} |`,
    `| spawning bin/ukvm-ts, 2 at a time | ${range(r.throughput.spawn)} |`,
    ...cRow('spawning the C tender, 2 at a time', r.throughput.c),
    '',
    `| Library: idle VMs in one process (guest \`idle\`, ${r.memMiB} MiB) | host MiB per VM | guest-touched MiB per VM | all started in s | all stopped in ms | ended 'stopped' |`,
    '|---|---|---|---|---|---|',
    ...r.idle.map((x) => `| ${x.n} VMs, a worker each | ${f(x.hostMiB, 2)} | ${f(x.guestMiB, 2)} | ${f(x.startMs / 1000, 1)} | ${f(x.stopMs, 0)} | ${x.stopped} of ${x.n} |`),
    ...r.sharedIdle.map((x) => `| ${x.n} VMs, vmsPerWorker ${x.vmsPerWorker} | ${f(x.hostMiB, 2)} | ${f(x.guestMiB, 2)} | ${f(x.startMs / 1000, 1)} | ${f(x.stopMs, 0)} | ${x.stopped} of ${x.n} |`),
    `| ${r.lean.n} VMs, resourceLimits young 1 / old 16 / stack 1 MiB | ${f(r.lean.hostMiB, 2)} | ${f(r.lean.guestMiB, 2)} | ${f(r.lean.startMs / 1000, 1)} | ${f(r.lean.stopMs, 0)} | ${r.lean.stopped} of ${r.lean.n} |`,
    `| ${r.emptyWorkers.n} bare Node workers (no VM, no ukvm-ts code) | ${f(r.emptyWorkers.hostMiB, 2)} | – | – | – | – |`,
    ...(r.cProcesses ? [`| ${r.cProcesses.n} C tender processes, one per VM (median of them) | ${f(r.cProcesses.hostMiB.median, 2)} | ${f(r.cProcesses.guestMiB.median, 2)} | – | – | – |`] : []),
  ];
}
