// startUnikernel: runs one unikernel in a worker thread of this process, so
// the caller's event loop never blocks and many VMs share one process. The
// worker comes from a pool (pool.ts) created on first use; the handle reports
// how the VM ended, stops it, reads its live statistics and its console.
import { sharedPool } from './pool.js';
import type { UnikernelOptions } from './options.js';
import type { Unikernel } from './types.js';

export type { UnikernelOptions, ConsoleTarget } from './options.js';
export type { ExitReason } from './shared.js';
export type { ExitInfo, UnikernelStats, Unikernel, ConsoleOutput } from './types.js';
export { createPool, WORKER_LIMITS, type Pool, type PoolOptions, type PoolCounts } from './pool.js';

/**
 * Starts a unikernel. Resolves once the VM is built and running; rejects with
 * a TenderError subclass (its `code` says which kind) for every condition the
 * CLI rejects: bad options, kernel, manifest, devices, memory, missing KVM.
 */
export function startUnikernel(options: UnikernelOptions): Promise<Unikernel> {
  return sharedPool().start(options);
}
