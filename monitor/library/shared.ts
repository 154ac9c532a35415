// What the caller's thread and a VM's worker thread exchange: the worker's
// boot data, each job (one VM), the worker's messages, and the layout of the
// shared statistics buffer.
import type { MessagePort } from 'node:worker_threads';
import type { VcpuHandle } from '../backend/backend.js';
import type { ErrorRecord } from '../errors.js';
import { COUNTERS_LENGTH } from '../vm/core.js';
import { DEVICE_BYTES_LENGTH, RING_COUNTERS_LENGTH } from '../vm/compose.js';
import type { HostRequest } from './broker.js';

/** Layout of the SharedArrayBuffer of one VM's stats, in Float64 slots. */
export const STATS = {
  counters: 0,
  deviceBytes: COUNTERS_LENGTH,
  /** CPU time of the vCPU thread when run() started, ns. */
  cpuStart: COUNTERS_LENGTH + DEVICE_BYTES_LENGTH,
  /** ... and when it ended (0 while running). */
  cpuEnd: COUNTERS_LENGTH + DEVICE_BYTES_LENGTH + 1,
  /** The net ring's counters (vm/compose.ts RING_COUNTERS_LENGTH), written by its I/O thread. */
  ring: COUNTERS_LENGTH + DEVICE_BYTES_LENGTH + 2,
  /**
   * 1 when the VM shares its worker's thread with others: cpuEnd is then its
   * own CPU time so far, kept live by the worker (the thread's clock counts
   * every VM of the thread).
   */
  cpuShared: COUNTERS_LENGTH + DEVICE_BYTES_LENGTH + 2 + RING_COUNTERS_LENGTH,
  length: COUNTERS_LENGTH + DEVICE_BYTES_LENGTH + 3 + RING_COUNTERS_LENGTH,
} as const;

/**
 * What a worker knows of the registry before it loads any module's code:
 * enough to decide, from a kernel's manifest and the options given, which
 * module bundles a VM needs (registry order is setup order).
 */
export interface ModuleOutline {
  name: string;
  serves: number[];
  always: boolean;
}

/** A worker's workerData: the same for every VM it runs. */
export interface WorkerBoot {
  modules: ModuleOutline[];
  /** Where the caller's thread answers the worker's host calls once it is confined (broker.ts). */
  replies: MessagePort;
  /** One Int32 slot: set to 1 when an answer is posted to `replies`. */
  replied: SharedArrayBuffer;
  /** VMs the worker runs at once (PoolOptions.vmsPerWorker); above 1 they share its thread (scheduler.ts). */
  vmsPerWorker: number;
}

/** One VM, as it crosses to the worker (no functions or streams). */
export interface WorkerInput {
  kernel: string | Uint8Array;
  memoryMiB: number;
  args: string[];
  /** Each module's startUnikernel options, by module name (checked; only modules given options appear). */
  modules: Record<string, Record<string, unknown>>;
  pollSpinNs?: number;
  /** Confine the worker thread before the guest runs (default of startUnikernel: true). */
  sandbox: boolean;
  /**
   * Build the VM on a confined thread (sandbox is set and no module's options
   * need an unconfined build, ModuleDescriptor.grants): the worker confines
   * itself first if it is not yet, and asks the caller's thread for the host
   * resources the build opens (broker.ts). The worker stays usable for more
   * such VMs. Otherwise the VM is built unconfined and its own filter goes in
   * right before the guest runs, which ends the worker after that VM.
   */
  confinedBuild: boolean;
  /**
   * The VM runs alone on its worker (its options need an unconfined build:
   * gdb, dumpcore, the net ring): on the worker's thread with vm.run(), never
   * through the scheduler of a worker with vmsPerWorker > 1 (whose
   * preemption interrupts would reach a debugger as a Ctrl-C).
   */
  exclusive: boolean;
  stats: SharedArrayBuffer;
  /** Console bytes in flight to the caller (see console-flow.ts). */
  console: SharedArrayBuffer;
}

/** The caller's thread to a worker. */
export type WorkerJob =
  /** `id` names the job in every message about it (a worker may run several at once). */
  | { type: 'job'; id: number; input: WorkerInput }
  /** End when idle: close what the worker holds (/dev/kvm) and let the thread end. */
  | { type: 'end' };

export type WorkerMessage =
  /** The worker has loaded its code and waits for a job (sent once, at boot). */
  | { type: 'idle' }
  | JobMessage;

/** What a worker says about one job, tagged with the `id` of its WorkerJob. */
export type JobMessage = JobEvent & { id: number };

/** What a worker says about one job. */
export type JobEvent = (
  | { type: 'ready'; handle: VcpuHandle; manifest: { name: string; type: number }[] }
  | { type: 'console'; bytes: Uint8Array }
  | { type: 'warn'; line: string }
  /** A host call of a confined build, for the caller's thread to answer (broker.ts). */
  | { type: 'host'; request: HostRequest }
  | { type: 'failed'; error: ErrorRecord }
  | { type: 'exit'; status: number; reason: ExitReason; message?: string }
  /**
   * The job is over (after 'failed' or 'exit'). reusable: the worker has
   * closed everything of that VM and waits for the next job; false when its
   * thread entered a VM's own filter, which cannot be undone and allows no
   * further build: it then ends itself. confined: its thread is confined
   * (it takes only jobs with confinedBuild).
   */
  | { type: 'free'; reusable: boolean; confined: boolean }
);

/** Why a VM stopped: it halted, faulted, failed on the host side, was stopped (stop(), an AbortSignal) or ran out of its timeout. */
export type ExitReason = 'halt' | 'fault' | 'error' | 'stopped' | 'timeout';
