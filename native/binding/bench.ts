// The bench addon (build/Release/ukvm_bench.node, gyp target ukvm_bench):
// the whole product surface compiled again, plus the floor loop. The product
// never loads it; bench scripts do, and build their VMs with it (its vCPU
// table is its own: tokens from ukvm_native mean nothing here).
import { loadAddon, NATIVE_SHAPE, type NativeBinding, type Shape } from './load.js';

export interface BenchBinding extends NativeBinding {
  /**
   * Runs the vCPU to HALT answering WALLTIME, zero-timeout POLL and PUTS in
   * C++ without returning to JavaScript (the physical floor of an exit).
   * Returns the HALT status; throws on any other exit or hypercall.
   */
  benchRunToHalt(token: number, memory: ArrayBuffer, memSize: number, putsFd: number): number;
}

export const BENCH_SHAPE: Shape = { ...NATIVE_SHAPE, benchRunToHalt: 'function' };

let cached: BenchBinding | undefined;

/** Loads <package>/build/Release/ukvm_bench.node once per thread, checked. */
export function loadBench(): BenchBinding {
  cached ??= loadAddon<BenchBinding>('ukvm_bench', BENCH_SHAPE);
  return cached;
}
