// A library worker thread: it loads the core once, then runs VMs one after
// another, each built with the same composition code as the CLI. Per VM it
// loads only the module code that VM needs (the manifest's device types, the
// options given; bundles of dist/bundles/, once per worker), tells the
// caller's thread how to reach its vCPU, runs it to the end, closes all of
// it and reports how it ended. Nothing here ever exits the process.
//
// Confinement, two ways. A VM built with `confinedBuild` (the default:
// sandboxed, and no module needs an unconfined build) is built on a thread
// that is already confined: the first such job confines the worker for
// good, and every host resource its builds open (kernel, disks, taps) is
// opened by the caller's thread through broker.ts; /dev/kvm stays open for
// the worker's life. Such a worker runs any number of them. Any other
// sandboxed VM (gdb, dumpcore, the net ring) is built unconfined and
// confined by its own filter right before the guest runs; that worker
// cannot build another VM (no open(), its own filter is final): it says so
// and ends.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';
import type { Backend, Sandbox } from '../backend/backend.js';
import { platform } from '../backend/index.js';
import { errorRecord, GuestError, HostError } from '../errors.js';
import { kernelFromBytes, openKernel, type Kernel } from '../kernel/kernel.js';
import type { ModuleDescriptor } from '../module.js';
import { DIST } from '../paths.js';
import { buildFilter } from '../sandbox/filter.js';
import { sandboxStep } from '../sandbox/step.js';
import { printable } from '../text.js';
import { createVm, DEVICE_BYTES_LENGTH, RING_COUNTERS_LENGTH, type Vm } from '../vm/compose.js';
import { COUNTERS_LENGTH } from '../vm/core.js';
import { brokeredHost } from './brokered-host.js';
import { postingSink } from './console-flow.js';
import { warmupKernel } from './warmup-kernel.js';
import { VmScheduler } from './scheduler.js';
import { type JobEvent, STATS, type WorkerBoot, type WorkerInput, type WorkerJob, type WorkerMessage } from './shared.js';

const boot = workerData as WorkerBoot;
const maybePort = parentPort;
if (!maybePort) throw new Error('library/worker.js must run in a worker thread');
const port = maybePort;
const toCaller = (m: WorkerMessage) => port.postMessage(m);
// The addon and the platform's host services, loaded before the first job.
const host = platform();
const channel = { replies: boot.replies, flag: new Int32Array(boot.replied) };
/** The hypervisor, opened once (a confined thread cannot open it); null until it opened. */
let backend: Backend | null = null;
/** Set once this thread is confined for confined builds (it stays so). */
let confined = false;
/**
 * With several VMs per worker, they share this thread through the scheduler,
 * made now, before the thread can be confined (it may start the preemption
 * watchdog thread and makes the thread's watch hub).
 */
const scheduler = boot.vmsPerWorker > 1 ? new VmScheduler(host, { onCpu: (vm, ns) => cpuOf.get(vm)?.(ns) }) : null;
/** Where each running VM's CPU time goes (its stats buffer), for the scheduler's onCpu. */
const cpuOf = new Map<object, (ns: number) => void>();

/** Module descriptors this worker has loaded, by name. */
const loaded = new Map<string, Promise<ModuleDescriptor>>();
function descriptor(name: string): Promise<ModuleDescriptor> {
  let d = loaded.get(name);
  if (!d) {
    // The build makes one bundle per module, default-exporting its descriptor.
    d = import(pathToFileURL(join(DIST, 'bundles', `${name}.mjs`)).href).then((m: { default: ModuleDescriptor }) => m.default);
    loaded.set(name, d);
  }
  return d;
}

/** The registry's modules this VM needs, in setup order. */
function needed(kernel: Kernel, input: WorkerInput): Promise<ModuleDescriptor[]> {
  const mft = kernel.manifest;
  const types = new Set(Array.from({ length: mft.entries }, (_, i) => mft.type(i)));
  const given = (name: string) => Object.keys(input.modules[name] ?? {}).length > 0;
  const names = boot.modules.filter((o) => o.always || o.serves.some((t) => types.has(t)) || given(o.name)).map((o) => o.name);
  return Promise.all(names.map(descriptor));
}

/** Runs one VM, telling `post` about it; true if this worker can run another. */
async function runJob(input: WorkerInput, post: (m: JobEvent) => void): Promise<boolean> {
  const stats = new Float64Array(input.stats);
  /** Set when this VM's own filter went in (a build that was not confined): no further build. */
  let ownFilter = false;
  // Counted before the filter goes in: a filter half-installed is still a filter.
  // Every argument is passed on (the scope, and what the VM's modules need of the filter).
  // On a thread confined for confined builds, entering again does nothing (backend.ts Sandbox).
  const sandbox: Sandbox = {
    enter(...args: Parameters<Sandbox['enter']>) {
      if (!confined) ownFilter = true;
      host.sandbox.enter(...args);
    },
  };
  const fail = (e: unknown) => {
    // Messages reach the caller as the CLI would print them: one line, visible (text.ts).
    const r = errorRecord(e);
    post({ type: 'failed', error: { ...r, message: printable(r.message), warnings: r.warnings.map(printable) } });
    // A build that failed after it took the VM made ahead: make the next one (below).
    if (!ownFilter) backend?.prepare?.();
    return !ownFilter;
  };
  if (confined && !input.confinedBuild) {
    // pool.ts never sends one: a confined thread cannot build unconfined.
    return fail(new HostError('internal error: a VM that needs an unconfined build reached a confined worker'));
  }
  /** Where this VM runs: among the others of the thread, or alone on it. */
  const shared = input.exclusive ? null : scheduler;
  let vm: Vm | undefined;
  let kernel: Kernel | undefined;
  try {
    backend ??= host.openBackend();
    if (input.confinedBuild && !confined) {
      // A confined thread cannot import: first the code of every module a
      // confined build can need (the console and each device module; a
      // debugger or dumpcore makes a build unconfined).
      await Promise.all(boot.modules.filter((o) => o.always || o.serves.length > 0).map((o) => descriptor(o.name)));
      host.sandbox.enter('thread');
      confined = true;
    }
    const hostIo = confined ? brokeredHost(host.host, channel, (request) => post({ type: 'host', request })) : host.host;
    kernel = typeof input.kernel === 'string' ? openKernel(input.kernel, hostIo) : kernelFromBytes(input.kernel);
    const descriptors = await needed(kernel, input);
    const env = { host: hostIo, output: postingSink(input.console, (bytes) => post({ type: 'console', bytes })) };
    const modules = descriptors.map((d) => d.create(input.modules[d.name] ?? {}, env));
    const warn = (line: string) => post({ type: 'warn', line: printable(line) });
    vm = createVm({
      kernel,
      memoryBytes: BigInt(input.memoryMiB) << 20n,
      args: input.args,
      modules,
      backend,
      host: host.host,
      warn,
      counters: new Float64Array(input.stats, STATS.counters * 8, COUNTERS_LENGTH),
      deviceBytes: new Float64Array(input.stats, STATS.deviceBytes * 8, DEVICE_BYTES_LENGTH),
      ringCounters: new Float64Array(input.stats, STATS.ring * 8, RING_COUNTERS_LENGTH),
      ...(input.pollSpinNs !== undefined ? { pollSpinNs: input.pollSpinNs } : {}),
      // This worker thread alone is confined before the guest first runs; the
      // embedding program's threads are left alone (monitor/sandbox/).
      ...(input.sandbox ? { sandbox: sandboxStep({ sandbox, scope: 'thread', modules, warn }) } : {}),
    });
    const mft = kernel.manifest;
    const manifest = Array.from({ length: mft.entries }, (_, i) => ({ name: mft.name(i), type: mft.type(i) }));
    if (shared) {
      // The thread's clock counts every VM of the thread: the scheduler counts this one's slices.
      stats[STATS.cpuShared] = 1;
      cpuOf.set(vm, (ns) => (stats[STATS.cpuEnd] = ns));
    } else {
      stats[STATS.cpuStart] = Math.max(host.cpuTimeNs(vm.handle), 0);
    }
    post({ type: 'ready', handle: vm.handle, manifest });
  } catch (e) {
    // createVm closes what it took; a kernel that never reached it is closed here (closing twice is harmless).
    kernel?.close();
    vm?.close();
    return fail(e);
  }
  let message: JobEvent;
  try {
    const outcome = shared ? await shared.run(vm) : vm.run();
    message = outcome.kind === 'halt'
      ? { type: 'exit', status: outcome.status & 0xff, reason: 'halt' }
      : { type: 'exit', status: 1, reason: 'stopped' };
  } catch (e) {
    const reason = e instanceof GuestError ? 'fault' : 'error';
    message = { type: 'exit', status: 1, reason, message: printable(e instanceof Error ? e.message : String(e)) };
  }
  // Final figures first: the caller may read stats as soon as it hears of the exit.
  if (shared) {
    stats[STATS.cpuEnd] = shared.cpuTimeNs(vm);
    cpuOf.delete(vm);
  } else {
    stats[STATS.cpuEnd] = Math.max(host.cpuTimeNs(vm.handle), 0);
  }
  // The VM's disks and taps are released before its exit is told (a caller
  // may reuse them as soon as it hears); the KVM VM and guest memory, which
  // nobody else can use, are torn down right after (~0.6 ms on PVM), before
  // the worker says it is free.
  vm.closeDevices();
  post(message);
  vm.close();
  // The next VM's KVM object and vCPU, made now while nobody waits (~0.6 ms
  // of a start on PVM); before the worker says it is free, so a count of
  // its descriptors is stable once it is.
  if (!ownFilter) backend?.prepare?.();
  return !ownFilter;
}

// Before the worker says it is idle: the modules every VM needs (the console)
// are loaded, so a VM's start loads only device code it needs; and one VM of
// warmupKernel() is built, run and closed, unconfined, so V8 has compiled
// that whole path (warmup-kernel.ts). Its messages go nowhere. A failure
// here (no KVM) is left for the first real VM to report.
await Promise.all(boot.modules.filter((o) => o.always).map((o) => descriptor(o.name)));
await runJob({
  kernel: warmupKernel(),
  memoryMiB: 2,
  args: [],
  modules: {},
  sandbox: false,
  confinedBuild: false,
  exclusive: false,
  stats: new SharedArrayBuffer(STATS.length * 8),
  console: new SharedArrayBuffer(4),
}, () => {});
// The filter's compiler too (a pure function; the filter itself is built again when entered).
buildFilter('thread', { pid: process.pid });

/** Closes what the worker holds for its life (/dev/kvm, the VM made ahead) and lets its thread end. */
function endWorker(): void {
  backend?.close();
  backend = null;
  port.close();
}

port.on('message', (m: WorkerJob) => {
  if (m.type === 'end') return endWorker();
  const id = m.id;
  void runJob(m.input, (e) => toCaller({ ...e, id })).then((reusable) => {
    toCaller({ type: 'free', reusable, confined, id });
    // Nothing else holds the event loop: the thread ends as it did before pools.
    if (!reusable) endWorker();
  });
});
toCaller({ type: 'idle' });
