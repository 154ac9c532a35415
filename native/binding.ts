// The whole native surface, typed, and its loader. Each function is one system
// call or ioctl (or a pair that must not be separated); errors are thrown as
// Error objects carrying errno, code and syscall. TypeScript validates
// arguments before calling across. Tests inject a fake NativeBinding instead.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { useStrerror } from '../monitor/errors.js';
import { PACKAGE_ROOT } from '../monitor/paths.js';

/** An Error thrown by the addon for a failed system call. */
export interface NativeError extends Error {
  errno: number;
  code: string;
  syscall: string;
}

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
  /** eventfd woken by kick() and by SIGINT/SIGTERM; belongs in the POLL wait set. */
  wakeFd: number;
  /** The mmap'd struct kvm_run. */
  run: ArrayBuffer;
}

/** Results of run(): an exit to decode, an interruption, or EFAULT. */
export const RUN_EXIT = 0;
export const RUN_INTERRUPTED = 1;
export const RUN_FAULT = 2;
export type RunResult = typeof RUN_EXIT | typeof RUN_INTERRUPTED | typeof RUN_FAULT;

export interface NativeBinding {
  readonly platform: 'linux-kvm' | 'unsupported';
  /** sizeof(struct kvm_run) the addon was compiled against. */
  readonly kvmRunSize: number;
  openKvm(): number;
  apiVersion(kvmFd: number): number;
  checkExtension(fd: number, cap: number): number;
  vcpuMmapSize(kvmFd: number): number;
  supportedCpuid(kvmFd: number, maxEntries: number): ArrayBuffer;
  createVm(kvmFd: number, memSize: number): CreatedVm;
  createVcpu(vmFd: number, runSize: number): CreatedVcpu;
  destroyVcpu(token: number): void;
  setCpuid(vcpuFd: number, cpuid2: Uint8Array): void;
  getRegs(vcpuFd: number, regs: Uint8Array): void;
  setRegs(vcpuFd: number, regs: Uint8Array): void;
  getSregs(vcpuFd: number, sregs: Uint8Array): void;
  setSregs(vcpuFd: number, sregs: Uint8Array): void;
  tscKhz(vcpuFd: number): number;
  run(token: number): RunResult;
  /** mprotect; prot bits: 1 read, 2 write, 4 exec. */
  protect(memory: ArrayBuffer, offset: number, length: number, prot: number): void;
  closeFd(fd: number): void;
  /** The C library's strerror text for a (positive) errno. */
  strerror(errno: number): string;
  /** One write(2); returns bytes written, −1 for EAGAIN, −2 for EINTR. */
  writeFd(fd: number, bytes: Uint8Array): number;
  /**
   * poll(2) for fd writable (fd < 0: none, a pure sleep) or wakeFd readable,
   * up to timeoutMs (−1: no limit). Returns 1 writable, 0 timeout, −1 woken, −2 EINTR.
   */
  waitWritable(fd: number, wakeFd: number, timeoutMs: number): number;
  /** Stores CLOCK_REALTIME ns as a little-endian u64 at bytes[offset]. */
  realtimeInto(bytes: Uint8Array, offset: number): void;
  /**
   * pread until bytes is full or EOF; returns bytes read, short also when a
   * signal interrupted it, −2 if a signal came before any byte. Throws on error.
   */
  preadAll(fd: number, bytes: Uint8Array, position: bigint): number;
  /** pwrite all of bytes, the same way as preadAll (short if the file takes no more). */
  pwriteAll(fd: number, bytes: Uint8Array, position: bigint): number;
  /** lseek(fd, 0, SEEK_END): the size of a file or block device. */
  seekEnd(fd: number): bigint;
  /** One read(2); returns bytes read, −1 for EAGAIN or 0 bytes, −2 for EINTR. */
  readFd(fd: number, bytes: Uint8Array): number;

  /** Opens the existing, up tap interface `name` (IFF_TAP | IFF_NO_PI, non-blocking). */
  tapAttach(name: string): number;
  /** Name of the tap interface a descriptor is bound to (TUNGETIFF). */
  tapName(fd: number): string;
  /** SIOCGIFMTU. */
  ifMtu(name: string): number;
  /** GRO and GSO off, best effort; true if both succeeded. */
  disableOffloads(name: string): boolean;
  /** O_NONBLOCK and FD_CLOEXEC on an inherited descriptor. */
  setNonBlocking(fd: number): void;

  installKickHandler(): void;
  installTerminationHandlers(signals: readonly number[]): void;
  /** SIG_DFL (and unblocked on this thread) for SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM. */
  restoreDefaultSignals(signals: readonly number[]): void;
  pendingSignal(): number;
  /** Returns false if that vCPU no longer exists. */
  kick(token: number): boolean;
  stopRequested(token: number): boolean;
  /** CPU time (ns) of the thread running that vCPU, from any thread; −1 if unknown. */
  threadCpuNs(token: number): number;

  waitsetCreate(): number;
  /** Throws (errno) unless epoll can watch fd. */
  checkPollable(fd: number): void;
  waitsetAdd(epfd: number, fd: number, key: number): void;
  /**
   * Waits for input or the timeout, first checking without sleeping for up to
   * spinNs. Returns the number of ready keys written, 0 on timeout, −1 on EINTR.
   */
  waitsetWait(epfd: number, timeoutNs: number, keysOut: Int32Array, spinNs?: number): number;

  /** Bench only: runs the vCPU to HALT serving hypercalls in C++. */
  benchRunToHalt(token: number, memory: ArrayBuffer, memSize: number, putsFd: number): number;
}

let cached: NativeBinding | undefined;

/** Loads <package>/build/Release/ukvm_native.node once per thread. */
export function loadNative(): NativeBinding {
  if (!cached) {
    const require = createRequire(import.meta.url);
    cached = require(join(PACKAGE_ROOT, 'build', 'Release', 'ukvm_native.node')) as NativeBinding;
    useStrerror(cached.strerror);
  }
  return cached;
}

export function isNativeError(e: unknown): e is NativeError {
  return e instanceof Error && typeof (e as Partial<NativeError>).errno === 'number';
}
