// One VM on one worker thread, seen from the caller's thread: sends the job,
// turns the worker's messages into the Unikernel handle (exited, stop, stats,
// console), and stops the VM on the caller's AbortSignal or timeout. When
// the job is over it hands the worker back (pool.ts decides what becomes of
// it) with every listener of this VM removed, so nothing of it reaches the
// next VM the worker runs.
import type { Worker } from 'node:worker_threads';
import type { VcpuHandle } from '../backend/backend.js';
import { platform } from '../backend/index.js';
import { HostError, reviveError } from '../errors.js';
import { consoleCounter, consoleTaker, releaseRoom, wakeSink } from './console-flow.js';
import { onAbort } from './abort-hub.js';
import { iterableConsole, NOT_ITERABLE } from './console-iterable.js';
import type { HostRequest } from './broker.js';
import type { UnikernelOptions } from './options.js';
import { STATS, type WorkerInput, type WorkerJob, type WorkerMessage } from './shared.js';
import { readStats } from './stats.js';
import type { ExitInfo, Unikernel } from './types.js';

/** What the caller's options become for the worker (checked by checkOptions). */
export function workerInput(options: UnikernelOptions, modules: WorkerInput['modules'], needsUnconfinedBuild: boolean): WorkerInput {
  const sandbox = options.sandbox ?? true;
  return {
    kernel: options.kernel,
    memoryMiB: options.memoryMiB ?? 512,
    args: [...(options.args ?? [])],
    modules,
    sandbox,
    confinedBuild: sandbox && !needsUnconfinedBuild,
    exclusive: needsUnconfinedBuild,
    stats: new SharedArrayBuffer(STATS.length * 8),
    console: consoleCounter(),
    ...(options.pollSpinNs !== undefined ? { pollSpinNs: options.pollSpinNs } : {}),
  };
}

/** Names each job in its worker's messages (unique in this thread). */
let nextJob = 1;

/**
 * Called once when the job is over: reusable is the worker's own word (true:
 * it waits for another job; false: it ends itself), null if the worker died.
 */
export type Release = (reusable: boolean | null) => void;

/**
 * Runs the VM of `input` on `worker` (idle, booted). Resolves like
 * startUnikernel. `answer` serves the worker's host calls of a confined
 * build (pool.ts, broker.ts).
 */
export function launch(worker: Worker, input: WorkerInput, options: UnikernelOptions, answer: (r: HostRequest) => void, release: Release): Promise<Unikernel> {
  const started = Date.now();
  const warn = options.warn ?? ((line: string) => process.stderr.write(`ukvm-ts: ${line}\n`));
  const id = nextJob++;
  return new Promise<Unikernel>((resolve, reject) => {
    let vcpu: VcpuHandle | null = null;
    let ended: ExitInfo | null = null;
    let endedAt = 0;
    let names: { name: string; type: number }[] = [];
    let settle: (info: ExitInfo) => void = () => {};
    const exited = new Promise<ExitInfo>((r) => (settle = r));
    /** Why the VM was asked to stop first: decides between 'stopped' and 'timeout'. */
    let stopCause: 'stop' | 'timeout' | null = null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const stop = (cause: 'stop' | 'timeout' = 'stop') => {
      if (ended) return;
      stopCause ??= cause;
      // Before 'ready' there is no vCPU yet: the request is kept and acted on then.
      // A handle of an ended VM names nothing: stopping it then does nothing.
      if (vcpu) platform().stop(vcpu);
      wakeSink(input.console);
    };
    let unsubscribe = () => {};
    /** Set when the console threw or errored: the VM is stopped and ends with this. */
    let consoleFailure: string | null = null;
    const iterable = options.console === 'iterable' ? iterableConsole((n) => releaseRoom(input.console, n)) : null;
    const output = iterable?.taker ?? consoleTaker(options.console === 'iterable' ? undefined : options.console, input.console, (message) => {
      consoleFailure = message;
      stop();
    });
    const finish = (info: ExitInfo) => {
      if (ended) return;
      output.close();
      clearTimeout(timer);
      unsubscribe();
      if (consoleFailure !== null) ended = { status: 1, reason: 'error', message: consoleFailure };
      else if (info.reason === 'stopped' && stopCause === 'timeout') ended = { status: 1, reason: 'timeout', message: `timeout: stopped after ${options.timeout} ms` };
      else ended = info;
      endedAt = Date.now();
      settle(ended);
    };
    const handle: Unikernel = {
      exited,
      stop: () => stop(),
      stats: () => readStats(new Float64Array(input.stats), names, (ended ? endedAt : Date.now()) - started, vcpu, ended !== null),
      console: iterable?.output ?? NOT_ITERABLE,
    };
    if (options.signal) unsubscribe = onAbort(options.signal, () => stop());
    if (options.signal?.aborted) stop();

    let done = false;
    const detach = (reusable: boolean | null) => {
      if (done) return;
      done = true;
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      release(reusable);
    };
    const onMessage = (m: WorkerMessage) => {
      // A worker may run several VMs: only this job's messages are this VM's.
      if (m.type === 'idle' || m.id !== id) return;
      switch (m.type) {
        case 'ready':
          vcpu = m.handle;
          names = m.manifest;
          if (options.timeout !== undefined) {
            timer = setTimeout(() => stop('timeout'), options.timeout);
            // The VM's worker keeps the process alive while it runs, not this timer.
            timer.unref();
          }
          if (stopCause !== null) platform().stop(vcpu);
          resolve(handle);
          break;
        case 'console':
          output.take(m.bytes);
          break;
        case 'warn':
          warn(m.line);
          break;
        case 'host':
          answer(m.request);
          break;
        case 'failed':
          finish({ status: 1, reason: 'error', message: m.error.message });
          reject(reviveError(m.error));
          break;
        case 'exit':
          finish(m.message === undefined ? { status: m.status, reason: m.reason } : { status: m.status, reason: m.reason, message: m.message });
          break;
        case 'free':
          detach(m.reusable);
          break;
      }
    };
    const onError = (e: Error) => {
      const info: ExitInfo = { status: 1, reason: 'error', message: `worker failed: ${e.message}` };
      reject(new HostError(info.message as string, { cause: e }));
      finish(info);
      detach(null);
    };
    const onExit = () => {
      // A worker that ended without a word (it cannot, short of a crash) still settles.
      reject(new HostError('the VM worker ended before the VM started'));
      finish({ status: 1, reason: 'error', message: 'the VM worker ended unexpectedly' });
      detach(null);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    try {
      worker.postMessage({ type: 'job', id, input } satisfies WorkerJob);
    } catch (e) {
      // Nothing reached the worker (an option that cannot be cloned): it stays as good as it was.
      const info: ExitInfo = { status: 1, reason: 'error', message: `the VM's options cannot be sent to its worker: ${e instanceof Error ? e.message : String(e)}` };
      finish(info);
      detach(true);
      reject(new HostError(info.message as string, { cause: e }));
    }
  });
}
