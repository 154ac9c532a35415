#!/usr/bin/env node
// A fleet: many unikernels in one Node process, from one warm pool, with a
// live table of their statistics; Ctrl-C (SIGINT) or SIGTERM stops them all
// and waits until each has ended.
//
//   node examples/fleet.mjs [--count N] [--kernel PATH] [--mem MIB] [--interval MS] [--per-worker N]
//
// Defaults: 100 of the test guest `idle` (asleep in POLL; built by
// `npm run guests`), 8 MiB each, a new table every second, up to 16
// unikernels sharing each worker thread (the pool's vmsPerWorker: idle
// unikernels then cost well under a MiB of host memory each; 1 gives each
// its own thread).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createPool } from 'ukvm-ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: '100' },
    kernel: { type: 'string', default: fileURLToPath(new URL('../test/guests/build/idle.hvt', import.meta.url)) },
    mem: { type: 'string', default: '8' },
    interval: { type: 'string', default: '1000' },
    'per-worker': { type: 'string', default: '16' },
  },
});
const perWorker = Number(values['per-worker']);
const count = Number(values.count);
const interval = Number(values.interval);
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(interval) || interval < 10 || !Number.isInteger(perWorker) || perWorker < 1 || perWorker > 64) {
  console.error('fleet: --count must be a positive integer, --interval at least 10 (ms), --per-worker from 1 to 64');
  process.exit(1);
}

const stopping = new AbortController();
const stop = () => stopping.abort();
process.once('SIGINT', stop);
process.once('SIGTERM', stop);

/** One row per unikernel: its handle once started, how it ended once it has. */
const fleet = Array.from({ length: count }, (_, id) => ({ id, vm: null, exit: null, lines: 0 }));
const pool = createPool({ size: 4, vmsPerWorker: perWorker });
const t0 = Date.now();

// Started a few at a time: each start builds a VM, and the CPUs are shared.
let next = 0;
async function starter() {
  while (next < count && !stopping.signal.aborted) {
    const row = fleet[next++];
    try {
      row.vm = await pool.start({
        kernel: values.kernel,
        memoryMiB: Number(values.mem),
        args: [`fleet-${row.id}`],
        signal: stopping.signal, // abort = stop, for every VM at once
        console: (text) => (row.lines += text.split('\n').length - 1),
      });
      row.vm.exited.then((e) => (row.exit = e));
    } catch (e) {
      row.exit = { status: 1, reason: 'error', message: e.message };
    }
  }
}
const starting = Promise.all(Array.from({ length: 4 }, starter));

function rssMiB() {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

function table() {
  const running = fleet.filter((r) => r.vm && !r.exit).length;
  const ended = fleet.filter((r) => r.exit).length;
  const lines = [
    `fleet: ${running} running, ${ended} ended, ${count - running - ended} to start; host RSS ${rssMiB().toFixed(0)} MiB; ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    '   id  state     exits   POLL   PUTS  lines  vCPU ms   wall s',
  ];
  // The first rows and the last: a terminal of 100 rows is not what anyone has.
  const shown = count <= 20 ? fleet : [...fleet.slice(0, 10), null, ...fleet.slice(-5)];
  for (const r of shown) {
    if (!r) {
      lines.push('  ...');
      continue;
    }
    const s = r.vm?.stats();
    const exits = s ? Object.values(s.exits).reduce((a, b) => a + b, 0) : 0;
    const state = r.exit ? r.exit.reason : r.vm ? 'running' : 'starting';
    lines.push(
      `${String(r.id).padStart(5)}  ${state.padEnd(8)} ${String(exits).padStart(6)} ${String(s?.hypercalls.POLL ?? 0).padStart(6)} ` +
        `${String(s?.hypercalls.PUTS ?? 0).padStart(6)} ${String(r.lines).padStart(6)} ${(s?.vcpuMs ?? 0).toFixed(1).padStart(8)} ${((s?.wallMs ?? 0) / 1000).toFixed(1).padStart(8)}`,
    );
  }
  // On a terminal the table is redrawn in place; into a pipe it is appended.
  process.stdout.write(`${process.stdout.isTTY ? '\x1b[H\x1b[2J' : ''}${lines.join('\n')}\n`);
}

const timer = setInterval(table, interval);
table();

// Until Ctrl-C, or until every unikernel has ended on its own.
await starting;
await new Promise((resolve) => {
  if (stopping.signal.aborted) return resolve();
  stopping.signal.addEventListener('abort', resolve, { once: true });
  const all = fleet.filter((r) => r.vm).map((r) => r.vm.exited);
  Promise.all(all).then(resolve);
});
const exits = await Promise.all(fleet.map((r) => (r.vm ? r.vm.exited : Promise.resolve(r.exit ?? { reason: 'never started' }))));
clearInterval(timer);
table();
await pool.close();
const by = {};
for (const e of exits) by[e.reason] = (by[e.reason] ?? 0) + 1;
console.log(`fleet: ${count} unikernels: ${Object.entries(by).map(([k, v]) => `${v} ${k}`).join(', ')}`);
