// Library entry point: import { … } from 'ukvm-ts'. startUnikernel is the
// API; the rest composes a VM by hand on the calling thread (createVm with
// modules made from the registry's descriptors and the platform's backend).
export {
  startUnikernel,
  createPool,
  WORKER_LIMITS,
  type Pool,
  type PoolOptions,
  type PoolCounts,
  type ConsoleOutput,
  type Unikernel,
  type UnikernelOptions,
  type UnikernelStats,
  type ExitInfo,
  type ExitReason,
  type ConsoleTarget,
} from './library/index.js';
export * from './errors.js';
export { createVm, type Vm, type VmConfig } from './vm/compose.js';
export type { RunOutcome } from './vm/core.js';
export { openKernel, kernelFromBytes, type Kernel } from './kernel/kernel.js';
export { platform } from './backend/index.js';
export type { Backend, Machine, Platform, Vcpu, VcpuExit, VcpuHandle, BootState, RunControl, WaitSet } from './backend/backend.js';
export type { DebugVcpu, DebugConfig, HardwareBreakpoint } from './backend/debug.js';
export type { HostIo } from './backend/host.js';
export type { Module, ModuleDescriptor, ModuleEnv, SetupContext, GuestOutput, LibraryOption } from './module.js';
export { REGISTRY } from './registry.js';
export { consoleModule } from '../modules/console/index.js';
export { blockModule } from '../modules/block/index.js';
export { netModule } from '../modules/net/index.js';
