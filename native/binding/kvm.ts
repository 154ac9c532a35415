// The KVM half of the native surface (native/kvm_linux.cc, vcpu_linux.cc,
// vcpu_debug_linux.cc): system, VM and vCPU ioctls, one export each, and the
// vCPU table's cross-thread controls, which name a vCPU by its token. Struct
// images cross as Uint8Arrays of exactly the kernel's size; their layouts
// are read and written in monitor/backend/kvm/.

export interface CreatedVm {
  vmFd: number;
  /** Guest RAM: an anonymous shared mapping registered as KVM memory slot 0. */
  memory: ArrayBuffer;
}

export interface CreatedVcpu {
  /**
   * Names this vCPU process-wide for its whole life (run, kick, destroy, …);
   * a token of a destroyed vCPU never names another one.
   */
  token: number;
  vcpuFd: number;
  /** eventfd woken by kick(), interrupt() and SIGINT/SIGTERM; belongs in the POLL wait set. */
  wakeFd: number;
  /** The mmap'd struct kvm_run. */
  run: ArrayBuffer;
}

/** Results of run(): an exit to decode, an interruption, or EFAULT. */
export const RUN_EXIT = 0;
export const RUN_INTERRUPTED = 1;
export const RUN_FAULT = 2;
export type RunResult = typeof RUN_EXIT | typeof RUN_INTERRUPTED | typeof RUN_FAULT;

/** Sizes of the struct images the vCPU exports take (x86_64). */
export const KVM_REGS_SIZE = 144;
export const KVM_SREGS_SIZE = 312;
export const KVM_FPU_SIZE = 416;
export const KVM_GUEST_DEBUG_SIZE = 72;

/**
 * Byte offsets in struct kvm_run of every field TypeScript reads (docs/abi.md
 * Appendix A). The addon pins each with static_assert and exports its own
 * values as kvmRunOffsets; load.ts refuses an addon that disagrees.
 */
export const KVM_RUN_OFFSETS = {
  immediateExit: 1,
  exitReason: 8,
  ioDirection: 32,
  ioSize: 33,
  ioPort: 34,
  ioCount: 36,
  ioDataOffset: 40,
  mmioPhysAddr: 32,
  mmioData: 40,
  mmioLen: 48,
  mmioIsWrite: 52,
  failEntryReason: 32,
  internalSuberror: 32,
  debugException: 32,
  debugPc: 40,
  debugDr6: 48,
  debugDr7: 56,
} as const;
export type KvmRunField = keyof typeof KVM_RUN_OFFSETS;

export interface KvmBinding {
  /** sizeof(struct kvm_run) the addon was compiled against. */
  readonly kvmRunSize: number;
  /** offsetof(struct kvm_run, …) for each field of KVM_RUN_OFFSETS, as compiled. */
  readonly kvmRunOffsets: Readonly<Record<KvmRunField, number>>;

  // System and VM (kvm_linux.cc).
  openKvm(): number;
  apiVersion(kvmFd: number): number;
  checkExtension(fd: number, cap: number): number;
  vcpuMmapSize(kvmFd: number): number;
  supportedCpuid(kvmFd: number, maxEntries: number): ArrayBuffer;
  createVm(kvmFd: number, memSize: number): CreatedVm;
  /** KVM_CREATE_VM alone (close-on-exec): a VM without memory yet, for vmAttachMemory. */
  vmCreate(kvmFd: number): number;
  /** Guest RAM for a VM made by vmCreate: a zeroed shared mapping, slot 0 at GPA 0. */
  vmAttachMemory(vmFd: number, memSize: number): ArrayBuffer;
  /** mprotect of a page-aligned range of guest memory; prot bits: 1 read, 2 write, 4 exec. */
  protect(memory: ArrayBuffer, offset: number, length: number, prot: number): void;
  /**
   * A SharedArrayBuffer over the same pages as a guest memory ArrayBuffer
   * made by createVm (no copy), for another thread (native/guest_mapping.cc).
   * The pages stay mapped while either buffer lives.
   */
  shareMemory(memory: ArrayBuffer): SharedArrayBuffer;
  /** eventfd(0, EFD_CLOEXEC): blocking, counter 0 (host_ring_linux.cc; the net ring's kick). */
  eventfdCreate(): number;
  /** KVM_IOEVENTFD: a `length`-byte OUT to `port` signals eventFd instead of exiting (assign false: undo it). */
  ioeventfd(vmFd: number, port: number, length: number, eventFd: number, assign: boolean): void;
  /**
   * Unmaps guest memory or a run area now (not when collected) and detaches
   * the buffer; a detached one is left alone. Guest memory another thread
   * still holds (shareMemory) is unmapped when that holder lets go.
   */
  unmapBuffer(area: ArrayBuffer): void;

  // vCPU (vcpu_linux.cc).
  createVcpu(vmFd: number, runSize: number): CreatedVcpu;
  destroyVcpu(token: number): void;
  setCpuid(vcpuFd: number, cpuid2: Uint8Array): void;
  /** KVM_GET_REGS into a KVM_REGS_SIZE image. */
  getRegs(vcpuFd: number, regs: Uint8Array): void;
  setRegs(vcpuFd: number, regs: Uint8Array): void;
  /** KVM_GET_SREGS into a KVM_SREGS_SIZE image. */
  getSregs(vcpuFd: number, sregs: Uint8Array): void;
  setSregs(vcpuFd: number, sregs: Uint8Array): void;
  tscKhz(vcpuFd: number): number;
  /** One KVM_RUN on the calling thread (which becomes the vCPU's thread). */
  run(token: number): RunResult;
  /** From any thread: ends the run (run() returns interrupted, stopRequested() is true). False if that vCPU no longer exists. */
  kick(token: number): boolean;
  stopRequested(token: number): boolean;
  /** CPU time (ns) of the thread running that vCPU, from any thread; −1 if unknown. */
  threadCpuNs(token: number): number;

  // vCPU debugging (vcpu_debug_linux.cc).
  /** KVM_GET_FPU into a KVM_FPU_SIZE image. */
  getFpu(vcpuFd: number, fpu: Uint8Array): void;
  /** KVM_SET_GUEST_DEBUG from a KVM_GUEST_DEBUG_SIZE image (control u32 @0, debugreg[8] @8). */
  setGuestDebug(vcpuFd: number, debug: Uint8Array): void;
  /**
   * From any thread: makes that vCPU leave KVM_RUN or its POLL wait once,
   * without ending the run (run() returns interrupted, then takeInterrupt()
   * is true once). False if that vCPU no longer exists.
   */
  interrupt(token: number): boolean;
  /**
   * On the vCPU's thread after run() returned RUN_INTERRUPTED: true once per
   * interrupt(), re-arming the vCPU to run normally (immediate_exit cleared,
   * wake eventfd drained); false if no interrupt was pending.
   */
  takeInterrupt(token: number): boolean;
}

type ExportKind = 'function' | 'number' | 'object';

/** What load.ts checks the loaded addon against: every member of KvmBinding. */
export const KVM_SHAPE = {
  kvmRunSize: 'number',
  kvmRunOffsets: 'object',
  openKvm: 'function',
  apiVersion: 'function',
  checkExtension: 'function',
  vcpuMmapSize: 'function',
  supportedCpuid: 'function',
  createVm: 'function',
  vmCreate: 'function',
  vmAttachMemory: 'function',
  protect: 'function',
  shareMemory: 'function',
  eventfdCreate: 'function',
  ioeventfd: 'function',
  unmapBuffer: 'function',
  createVcpu: 'function',
  destroyVcpu: 'function',
  setCpuid: 'function',
  getRegs: 'function',
  setRegs: 'function',
  getSregs: 'function',
  setSregs: 'function',
  tscKhz: 'function',
  run: 'function',
  kick: 'function',
  stopRequested: 'function',
  threadCpuNs: 'function',
  getFpu: 'function',
  setGuestDebug: 'function',
  interrupt: 'function',
  takeInterrupt: 'function',
} as const satisfies Record<keyof KvmBinding, ExportKind>;
