// The native surface, typed, split by concern:
//   binding/kvm.ts   — KVM system, VM and vCPU ioctls, the vCPU table's controls, kvm_run offsets
//   binding/host.ts  — descriptors, positional I/O, taps, epoll, signals
//   binding/sched.ts — several VMs per thread: wait-set watchers, preemption lanes (Linux)
//   binding/bench.ts — the bench-only addon (loadBench); the product never loads it
//   binding/load.ts  — finding the addon, loading it once per thread, checking its shape
// Each function is one system call or ioctl (or a pair that must not be
// separated); errors are thrown as Error objects carrying errno, code and
// syscall. TypeScript validates arguments before calling across. Tests
// inject a fake NativeBinding instead. This file re-exports the pieces so
// that `native/binding.js` keeps working as the one import path.
export * from './binding/kvm.js';
export * from './binding/host.js';
export * from './binding/sched.js';
export { addonPath, checkShape, findPackageRoot, loadNative, NATIVE_SHAPE, packageRoot, strerror } from './binding/load.js';
export type { AddonName, ExportKind, NativeBinding, Shape } from './binding/load.js';
