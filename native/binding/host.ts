// The host half of the native surface (native/host_*.cc): descriptors,
// positional I/O on guest-memory views, tap interfaces, POLL's epoll wait set,
// signal dispositions and the sandbox's calls — the system calls Node cannot
// make itself, or not cheaply enough on the hypercall path.

/** An Error thrown by the addon for a failed system call. */
export interface NativeError extends Error {
  errno: number;
  code: string;
  syscall: string;
}

export function isNativeError(e: unknown): e is NativeError {
  return e instanceof Error && typeof (e as Partial<NativeError>).errno === 'number';
}

export interface HostBinding {
  // Descriptors and I/O (host_io_posix.cc).
  closeFd(fd: number): void;
  /** open(2) of an existing file, O_RDONLY or O_RDWR, close-on-exec; EISDIR for a directory. */
  openFile(path: string, writable: boolean): number;
  /** The C library's strerror text for a (positive) errno. */
  strerror(errno: number): string;
  /** One write(2); returns bytes written, −1 for EAGAIN, −2 for EINTR. */
  writeFd(fd: number, bytes: Uint8Array): number;
  /** One read(2); returns bytes read, −1 for EAGAIN or 0 bytes, −2 for EINTR. */
  readFd(fd: number, bytes: Uint8Array): number;
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

  // Tap interfaces (host_tap_linux.cc).
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

  // POLL's wait set (host_waitset_linux.cc).
  waitsetCreate(): number;
  /** Throws (errno) unless epoll can watch fd. */
  checkPollable(fd: number): void;
  waitsetAdd(epfd: number, fd: number, key: number): void;
  /**
   * Waits for input or the timeout, first checking without sleeping for up to
   * spinNs. Returns the number of ready keys written, 0 on timeout, −1 on EINTR.
   */
  waitsetWait(epfd: number, timeoutNs: number, keysOut: Int32Array, spinNs?: number): number;

  // Signals (host_signals_linux.cc).
  /** The no-op handler of the signal kick() and interrupt() use; every process running a vCPU needs it. */
  installKickHandler(): void;
  installTerminationHandlers(signals: readonly number[]): void;
  /** SIG_DFL (and unblocked on this thread) for SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM. */
  restoreDefaultSignals(signals: readonly number[]): void;
  /** The first termination signal caught, 0 if none. */
  pendingSignal(): number;

  // The sandbox (host_seccomp_linux.cc; the policy is monitor/sandbox/).
  /** The calling thread's personality(2) persona (read only). */
  personality(): number;
  /** prctl(PR_SET_NO_NEW_PRIVS, 1) on the calling thread. */
  setNoNewPrivs(): void;
  /**
   * seccomp(SECCOMP_SET_MODE_FILTER) with a classic-BPF program (8 bytes per
   * instruction); allThreads: SECCOMP_FILTER_FLAG_TSYNC (every thread of the
   * process), else the calling thread (and threads it creates later).
   */
  seccompFilter(program: Uint8Array, allThreads: boolean): void;
}

/** What load.ts checks the loaded addon against: every member of HostBinding. */
export const HOST_SHAPE = {
  closeFd: 'function',
  openFile: 'function',
  strerror: 'function',
  writeFd: 'function',
  readFd: 'function',
  waitWritable: 'function',
  realtimeInto: 'function',
  preadAll: 'function',
  pwriteAll: 'function',
  seekEnd: 'function',
  tapAttach: 'function',
  tapName: 'function',
  ifMtu: 'function',
  disableOffloads: 'function',
  setNonBlocking: 'function',
  waitsetCreate: 'function',
  checkPollable: 'function',
  waitsetAdd: 'function',
  waitsetWait: 'function',
  installKickHandler: 'function',
  installTerminationHandlers: 'function',
  restoreDefaultSignals: 'function',
  pendingSignal: 'function',
  personality: 'function',
  setNoNewPrivs: 'function',
  seccompFilter: 'function',
} as const satisfies Record<keyof HostBinding, 'function'>;
