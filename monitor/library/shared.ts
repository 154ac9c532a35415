// What the caller's thread and a VM's worker thread exchange: the worker's
// input, its messages, and the layout of the shared statistics buffer.
import type { VcpuHandle } from '../backend/backend.js';
import type { ErrorRecord } from '../errors.js';
import { COUNTERS_LENGTH } from '../vm/core.js';
import { DEVICE_BYTES_LENGTH, RING_COUNTERS_LENGTH } from '../vm/compose.js';

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
  length: COUNTERS_LENGTH + DEVICE_BYTES_LENGTH + 2 + RING_COUNTERS_LENGTH,
} as const;

/** Options as they cross to the worker (no functions or streams). */
export interface WorkerInput {
  kernel: string | Uint8Array;
  memoryMiB: number;
  args: string[];
  /** Each module's startUnikernel options, by module name (checked). */
  modules: Record<string, Record<string, unknown>>;
  pollSpinNs?: number;
  stats: SharedArrayBuffer;
  /** Console bytes in flight to the caller (see console-flow.ts). */
  console: SharedArrayBuffer;
}

export type WorkerMessage =
  | { type: 'ready'; handle: VcpuHandle; manifest: { name: string; type: number }[] }
  | { type: 'console'; bytes: Uint8Array }
  | { type: 'warn'; line: string }
  | { type: 'failed'; error: ErrorRecord }
  | { type: 'exit'; status: number; reason: ExitReason; message?: string };

/** Why a VM stopped: it halted, faulted, failed on the host side, or was stopped. */
export type ExitReason = 'halt' | 'fault' | 'error' | 'stopped';
