// The worker thread of one VM: builds it with the same composition code as
// the CLI and the modules of the registry, tells the caller's thread how to
// reach its vCPU, runs it to the end and reports how it ended. Nothing here
// ever exits the process.
import { parentPort, workerData } from 'node:worker_threads';
import { platform } from '../backend/index.js';
import { errorRecord, GuestError } from '../errors.js';
import { kernelFromBytes, openKernel } from '../kernel/kernel.js';
import { REGISTRY } from '../registry.js';
import { sandboxStep } from '../sandbox/step.js';
import { printable } from '../text.js';
import { createVm, DEVICE_BYTES_LENGTH, RING_COUNTERS_LENGTH, type Vm } from '../vm/compose.js';
import { COUNTERS_LENGTH } from '../vm/core.js';
import { postingSink } from './console-flow.js';
import { STATS, type WorkerInput, type WorkerMessage } from './shared.js';

const input = workerData as WorkerInput;
const port = parentPort;
if (!port) throw new Error('library/worker.js must run in a worker thread');
const post = (m: WorkerMessage) => port.postMessage(m);

function run(): void {
  const stats = new Float64Array(input.stats);
  let vm: Vm | undefined;
  try {
    const host = platform();
    const kernel = typeof input.kernel === 'string' ? openKernel(input.kernel) : kernelFromBytes(input.kernel);
    const env = { host: host.host, output: postingSink(input.console, (bytes) => post({ type: 'console', bytes })) };
    const modules = REGISTRY.map((d) => d.create(input.modules[d.name] ?? {}, env));
    const warn = (line: string) => post({ type: 'warn', line: printable(line) });
    vm = createVm({
      kernel,
      memoryBytes: BigInt(input.memoryMiB) << 20n,
      args: input.args,
      modules,
      backend: () => host.openBackend(),
      host: host.host,
      warn,
      counters: new Float64Array(input.stats, STATS.counters * 8, COUNTERS_LENGTH),
      deviceBytes: new Float64Array(input.stats, STATS.deviceBytes * 8, DEVICE_BYTES_LENGTH),
      ringCounters: new Float64Array(input.stats, STATS.ring * 8, RING_COUNTERS_LENGTH),
      ...(input.pollSpinNs !== undefined ? { pollSpinNs: input.pollSpinNs } : {}),
      // This worker thread alone is confined before the guest first runs; the
      // embedding program's threads are left alone (monitor/sandbox/).
      sandbox: sandboxStep({ sandbox: host.sandbox, scope: 'thread', modules, warn }),
    });
    const mft = kernel.manifest;
    const manifest = Array.from({ length: mft.entries }, (_, i) => ({ name: mft.name(i), type: mft.type(i) }));
    stats[STATS.cpuStart] = Math.max(host.cpuTimeNs(vm.handle), 0);
    post({ type: 'ready', handle: vm.handle, manifest });
  } catch (e) {
    vm?.close();
    // Messages reach the caller as the CLI would print them: one line, visible (text.ts).
    const r = errorRecord(e);
    post({ type: 'failed', error: { ...r, message: printable(r.message), warnings: r.warnings.map(printable) } });
    return;
  }
  let message: WorkerMessage;
  try {
    const outcome = vm.run();
    message = outcome.kind === 'halt'
      ? { type: 'exit', status: outcome.status & 0xff, reason: 'halt' }
      : { type: 'exit', status: 1, reason: 'stopped' };
  } catch (e) {
    const reason = e instanceof GuestError ? 'fault' : 'error';
    message = { type: 'exit', status: 1, reason, message: printable(e instanceof Error ? e.message : String(e)) };
  }
  // Final figures first: the caller may read stats as soon as it hears of the exit.
  stats[STATS.cpuEnd] = Math.max(platform().cpuTimeNs(vm.handle), 0);
  vm.close();
  post(message);
}

run();
