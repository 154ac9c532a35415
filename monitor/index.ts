// Library entry point: import { … } from 'ukvm-ts'.
export { createVm, type Vm, type VmConfig } from './vm/compose.js';
export { openKernel, kernelFromBytes, type Kernel } from './kernel/kernel.js';
export { KvmBackend } from './backend/kvm/backend.js';
export type { Backend, Machine, Vcpu, VcpuExit, BootState } from './backend/backend.js';
export type { Module, SetupContext } from './module.js';
export type { RunOutcome } from './vm/core.js';
export { defaultModules } from './registry.js';
export { console } from '../modules/console/index.js';
export * from './errors.js';
export { loadNative, type NativeBinding } from '../native/binding.js';
export {
  startUnikernel,
  OptionError,
  type Unikernel,
  type UnikernelOptions,
  type UnikernelStats,
  type ExitInfo,
  type ExitReason,
  type ConsoleTarget,
} from './library/index.js';
export { block, type BlockConfig } from '../modules/block/index.js';
export { net, type NetConfig } from '../modules/net/index.js';
