// Run by scheduler.test.ts as its own process (a forbidden system call kills
// the whole process, SIGSYS): on a worker thread confined by the library's
// thread filter, VMs are built, scheduled together (a spinner preempted
// beside idle tickers and a hello), stopped and closed. Prints one JSON line.
import { Worker } from 'node:worker_threads';

const root = process.argv[2];
const code = `
const { parentPort, workerData: root } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
(async () => {
  const D = root + '/dist/';
  const { platform } = await import(D + 'monitor/backend/index.js');
  const { kernelFromBytes } = await import(D + 'monitor/kernel/kernel.js');
  const { VmScheduler } = await import(D + 'monitor/library/scheduler.js');
  const { createVm } = await import(D + 'monitor/vm/compose.js');
  const { consoleModule } = await import(D + 'modules/console/index.js');
  const host = platform();
  const backend = host.openBackend();
  const bytes = (n) => readFileSync(root + '/test/guests/build/' + n + '.hvt');
  const k = { ticker: bytes('ticker'), spin: bytes('spin'), hello: bytes('hello') };
  const s = new VmScheduler(host); // hub and lane before confinement
  host.sandbox.enter('thread');
  let out = '';
  const build = (n, args) => createVm({ kernel: kernelFromBytes(new Uint8Array(k[n])), memoryBytes: 4n << 20n, args,
    modules: [consoleModule.create({}, { host: host.host, output: (b) => (out += Buffer.from(b).toString()) })],
    backend, host: host.host, warn: () => {} });
  const spin = build('spin', []);
  const spun = s.run(spin);
  const vms = [build('hello', []), ...Array.from({ length: 8 }, () => build('ticker', ['10', '10']))];
  const outcomes = await Promise.all(vms.map((v) => s.run(v)));
  host.stop(spin.handle);
  outcomes.push(await spun);
  for (const v of [spin, ...vms]) v.close();
  parentPort.postMessage({ outcomes, out });
})().catch((e) => parentPort.postMessage({ error: String(e && e.stack) }));`;
const w = new Worker(code, { eval: true, workerData: root });
w.on('message', (m) => console.log(JSON.stringify(m)));
