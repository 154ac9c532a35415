// The worker thread of one VM: builds it with the same composition code as
// the CLI, tells the caller's thread how to reach its vCPU, runs it to the end
// and reports how it ended. Nothing here ever exits the process.
import { parentPort, workerData } from 'node:worker_threads';
import { block } from '../../modules/block/index.js';
import { console as consoleModule } from '../../modules/console/index.js';
import { net } from '../../modules/net/index.js';
import { parseMac } from '../../modules/net/options.js';
import { loadNative } from '../../native/binding.js';
import { KvmBackend } from '../backend/kvm/backend.js';
import { COUNTERS_LENGTH } from '../vm/core.js';
import { ConfigError, GuestError, TenderError } from '../errors.js';
import { kernelFromBytes, openKernel } from '../kernel/kernel.js';
import { DEVICE_BYTES_LENGTH, createVm } from '../vm/compose.js';
import { printable } from '../text.js';
import { postingSink } from './console-flow.js';
import { STATS, type WorkerInput, type WorkerMessage } from './shared.js';

const input = workerData as WorkerInput;
const port = parentPort;
if (!port) throw new Error('library/worker.js must run in a worker thread');
const post = (m: WorkerMessage) => port.postMessage(m);

function macs(): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const [name, text] of Object.entries(input.netMac)) {
    const mac = parseMac(text);
    if (!mac) throw new ConfigError(`netMac.${name}: not a MAC address: '${text}'`);
    out[name] = mac;
  }
  return out;
}

function run(): void {
  const stats = new Float64Array(input.stats);
  let vm;
  try {
    const binding = loadNative();
    const kernel = typeof input.kernel === 'string' ? openKernel(input.kernel) : kernelFromBytes(input.kernel);
    const modules = [
      consoleModule({ sink: postingSink(input.console, (bytes) => post({ type: 'console', bytes })) }),
      block({ paths: input.block, sectorSizes: input.blockSectorSize, binding }),
      net({ taps: input.net, macs: macs(), binding }),
    ];
    vm = createVm({
      kernel,
      memoryBytes: BigInt(input.memoryMiB) << 20n,
      args: input.args,
      modules,
      backend: () => new KvmBackend(binding),
      warn: (line) => post({ type: 'warn', line: printable(line) }),
      binding,
      counters: new Float64Array(input.stats, STATS.counters * 8, COUNTERS_LENGTH),
      deviceBytes: new Float64Array(input.stats, STATS.deviceBytes * 8, DEVICE_BYTES_LENGTH),
      ...(input.pollSpinNs !== undefined ? { pollSpinNs: input.pollSpinNs } : {}),
    });
    const mft = kernel.manifest;
    const manifest = Array.from({ length: mft.entries }, (_, i) => ({ name: mft.name(i), type: mft.type(i) }));
    stats[STATS.cpuStart] = Math.max(binding.threadCpuNs(vm.vcpuToken), 0);
    post({ type: 'ready', token: vm.vcpuToken, manifest });
  } catch (e) {
    vm?.close();
    const err = e instanceof Error ? e : new Error(String(e));
    const tender = e instanceof TenderError ? e : null;
    // Messages reach the caller as the CLI would print them: one line, visible (text.ts).
    const warnings = (tender?.warnings ?? []).map(printable);
    post({ type: 'failed', error: { name: err.name, code: tender?.code ?? 'EINTERNAL', message: printable(err.message), warnings } });
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
  stats[STATS.cpuEnd] = Math.max(loadNative().threadCpuNs(vm.vcpuToken), 0);
  vm.close();
  post(message);
}

run();
