// startUnikernel: runs one unikernel in its own worker thread, so the
// caller's event loop never blocks and many VMs share one process. The
// handle reports how the VM ended, stops it, and reads its live statistics.
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { Hypercall, HYPERCALL_MAX } from '../abi/constants.js';
import { platform } from '../backend/index.js';
import type { VcpuHandle } from '../backend/backend.js';
import { HostError, reviveError } from '../errors.js';
import { DeviceType } from '../kernel/manifest.js';
import { DIST } from '../paths.js';
import { REGISTRY } from '../registry.js';
import { EXIT_KINDS, HYPERCALL_COUNTER_BASE } from '../vm/core.js';
import { consoleCounter, consoleTaker, wakeSink } from './console-flow.js';
import { checkOptions, type UnikernelOptions } from './options.js';
import { type ExitReason, STATS, type WorkerInput, type WorkerMessage } from './shared.js';

export type { UnikernelOptions, ConsoleTarget } from './options.js';
export type { ExitReason } from './shared.js';

export interface ExitInfo {
  /** The process exit status the CLI would have given (guest status & 0xFF, or 1). */
  status: number;
  reason: ExitReason;
  /** The diagnostic line for 'fault' and 'error' (what the CLI prints). */
  message?: string;
}

export interface UnikernelStats {
  exits: Record<string, number>;
  hypercalls: Record<string, number>;
  /** Per attached device: bytes into the guest (block reads, frames received) and out, by hypercall and ring alike. */
  devices: Record<string, { in: number; out: number }>;
  /** Net ring entries served (docs/abi.md §13): NET_READ entries committed, NET_WRITE entries sent. */
  ring: { reads: number; writes: number };
  wallMs: number;
  vcpuMs: number;
}

export interface Unikernel {
  /** Settles once the VM has ended; never rejects. */
  readonly exited: Promise<ExitInfo>;
  /** Asks the VM to stop; exited then resolves with reason 'stopped'. */
  stop(): void;
  /** Live counters, readable while the guest runs. */
  stats(): UnikernelStats;
}

const HYPERCALL_NAMES = Object.fromEntries(Object.entries(Hypercall).map(([k, v]) => [v, k])) as Record<number, string>;

/**
 * Starts a unikernel. Resolves once the VM is built and running; rejects with
 * a TenderError subclass (its `code` says which kind) for every condition the
 * CLI rejects: bad options, kernel, manifest, devices, memory, missing KVM.
 */
export function startUnikernel(options: UnikernelOptions): Promise<Unikernel> {
  let modules: WorkerInput['modules'];
  try {
    modules = checkOptions(options, REGISTRY);
  } catch (e) {
    return Promise.reject(e);
  }
  const stats = new SharedArrayBuffer(STATS.length * 8);
  const consoleRoom = consoleCounter();
  const input: WorkerInput = {
    kernel: options.kernel,
    memoryMiB: options.memoryMiB ?? 512,
    args: [...(options.args ?? [])],
    modules,
    stats,
    console: consoleRoom,
    ...(options.pollSpinNs !== undefined ? { pollSpinNs: options.pollSpinNs } : {}),
  };
  const warn = options.warn ?? ((line: string) => process.stderr.write(`ukvm-ts: ${line}\n`));
  // execArgv: [] — the worker runs only our code; the embedding program's
  // node flags (--input-type, -e …) are not for it and some make it fail.
  const worker = new Worker(join(DIST, 'monitor', 'library', 'worker.js'), { workerData: input, execArgv: [] });
  const started = Date.now();

  return new Promise<Unikernel>((resolve, reject) => {
    let vcpu: VcpuHandle | null = null;
    let ended: ExitInfo | null = null;
    let endedAt = 0;
    let names: { name: string; type: number }[] = [];
    let settle: (info: ExitInfo) => void = () => {};
    const exited = new Promise<ExitInfo>((r) => (settle = r));
    const stop = () => {
      if (ended) return;
      // A handle of an ended VM names nothing: stopping it then does nothing.
      if (vcpu) platform().stop(vcpu);
      wakeSink(consoleRoom);
    };
    /** Set when the console threw or errored: the VM is stopped and ends with this. */
    let consoleFailure: string | null = null;
    const output = consoleTaker(options.console, consoleRoom, (message) => {
      consoleFailure = message;
      stop();
    });
    const finish = (info: ExitInfo) => {
      if (ended) return;
      output.close();
      ended = consoleFailure === null ? info : { status: 1, reason: 'error', message: consoleFailure };
      endedAt = Date.now();
      settle(ended);
    };
    const handle: Unikernel = {
      exited,
      stop,
      stats: () => readStats(new Float64Array(stats), names, (ended ? endedAt : Date.now()) - started, vcpu, ended !== null),
    };

    worker.on('message', (m: WorkerMessage) => {
      switch (m.type) {
        case 'ready':
          vcpu = m.handle;
          names = m.manifest;
          resolve(handle);
          break;
        case 'console':
          output.take(m.bytes);
          break;
        case 'warn':
          warn(m.line);
          break;
        case 'failed':
          reject(reviveError(m.error));
          break;
        case 'exit':
          finish(m.message === undefined ? { status: m.status, reason: m.reason } : { status: m.status, reason: m.reason, message: m.message });
          break;
      }
    });
    worker.on('error', (e) => {
      const info: ExitInfo = { status: 1, reason: 'error', message: `worker failed: ${e.message}` };
      reject(new HostError(info.message as string, { cause: e }));
      finish(info);
    });
    worker.on('exit', () => {
      // A worker that ended without a word (it cannot, short of a crash) still settles.
      reject(new HostError('the VM worker ended before the VM started'));
      finish({ status: 1, reason: 'error', message: 'the VM worker ended unexpectedly' });
    });
  });
}

function readStats(s: Float64Array, names: { name: string; type: number }[], wallMs: number, vcpu: VcpuHandle | null, ended: boolean): UnikernelStats {
  const exits: Record<string, number> = {};
  EXIT_KINDS.forEach((k, i) => (exits[k] = s[STATS.counters + i] ?? 0));
  const hypercalls: Record<string, number> = {};
  for (let nr = 1; nr <= HYPERCALL_MAX; nr++) {
    hypercalls[HYPERCALL_NAMES[nr] ?? String(nr)] = s[STATS.counters + HYPERCALL_COUNTER_BASE + nr] ?? 0;
  }
  const devices: Record<string, { in: number; out: number }> = {};
  names.forEach((d, i) => {
    if (d.type === DeviceType.BLOCK_BASIC || d.type === DeviceType.NET_BASIC) {
      const at = (base: number, k: number) => s[base + 2 * i + k] ?? 0;
      devices[d.name] = { in: at(STATS.deviceBytes, 0) + at(STATS.ring + 2, 0), out: at(STATS.deviceBytes, 1) + at(STATS.ring + 2, 1) };
    }
  });
  const start = s[STATS.cpuStart] ?? 0;
  const end = ended ? (s[STATS.cpuEnd] ?? 0) : vcpu ? platform().cpuTimeNs(vcpu) : 0;
  const ring = { reads: s[STATS.ring] ?? 0, writes: s[STATS.ring + 1] ?? 0 };
  return { exits, hypercalls, devices, ring, wallMs, vcpuMs: Math.max(0, end - start) / 1e6 };
}
