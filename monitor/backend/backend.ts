// What the core, the modules and the library need from a hypervisor backend
// (Linux KVM now, FreeBSD vmm later), described neutrally. The exit is
// decoded once, in the backend, into VcpuExit, and the backend words the
// fatal ones; the core dispatches on it without knowing which backend made
// it. backend/index.ts picks the backend of the platform.
import type { DebugVcpu } from './debug.js';
import type { HostIo } from './host.js';

/** One reason the vCPU stopped running guest code. */
export type VcpuExit =
  /** Port I/O; `value` is the first 32 bits of data for an OUT. */
  | { kind: 'io'; out: boolean; size: number; port: number; value: number }
  /** An access to a guest-physical address without RAM or with host protection. */
  | { kind: 'mmio'; address: bigint; write: boolean }
  /** The host could not back a guest access (Linux: KVM_RUN failed with EFAULT). */
  | { kind: 'fault' }
  /** A termination signal (signal > 0) or stop request (signal 0) arrived. */
  | { kind: 'interrupted'; signal: number }
  | { kind: 'failEntry'; reason: bigint }
  | { kind: 'internalError'; suberror: number }
  /**
   * A debug event: a single step, an int3 (software breakpoint), a debug
   * register hit (hardware breakpoint or watchpoint), or an interrupt()
   * asked for from another thread (a debugger's Ctrl-C). `rip` is where the
   * guest stopped; `dr6` is the debug status (0 for 'interrupt').
   */
  | { kind: 'debug'; reason: 'step' | 'breakpoint' | 'hardware' | 'interrupt'; rip: bigint; dr6: bigint }
  /** Anything else (HLT, SHUTDOWN after a triple fault, …): raw reason number. */
  | { kind: 'other'; reason: number };

/** How the core classifies an exit that ends the run; the backend words it. */
export type FatalExit = 'translation-fault' | 'unhandled' | 'entry-failure' | 'internal-error';

/** Initial state and resources of one vCPU. */
export interface BootState {
  entry: number;
  /** Guest memory size (mem_size); RSP starts at mem_size − 8. */
  memSize: number;
}

/**
 * Names a vCPU to other threads: structured-clonable, so it can be posted to
 * the thread that wants to stop it or read its CPU time. A handle of a vCPU
 * that is gone names nothing (stopping it does nothing).
 */
export interface VcpuHandle {
  readonly backend: string;
  readonly token: number;
}

/**
 * What a handler that may wait on the host needs to know about the run, so a
 * SIGTERM or a stop() ends it even while the guest's output is blocked.
 */
export interface RunControl {
  /** True once a termination signal or a stop request is ending the run. */
  ending(): boolean;
  /**
   * Waits until fd takes a write or timeoutMs passes (−1: no limit; fd < 0:
   * just sleeps). Returns false, at once, if the run is ending.
   */
  waitWritable(fd: number, timeoutMs: number): boolean;
}

/** POLL's set of descriptors, with the vCPU's own wake-up (signals, stop requests) in it. */
export interface WaitSet {
  /** Adds a descriptor; its readiness is reported as `key` (0..63). */
  add(fd: number, key: number): void;
  /** Waits up to timeoutNs for input; the keys ready, or null if the run is ending. */
  wait(timeoutNs: number): readonly number[] | null;
  /**
   * Several VMs per thread (library/scheduler.ts): calls onReady once, on
   * this thread from its event loop, when any descriptor of the set is
   * ready, the wake descriptor included (a stop, SIGINT/SIGTERM or an
   * interrupt()); returns a cancel that makes sure it is not called. One
   * watch at a time. Needs Platform.prepareWatches() on this thread first.
   * Absent where the backend cannot watch (FreeBSD for now).
   */
  watch?(onReady: () => void): () => void;
  close(): void;
}

export interface Vcpu {
  readonly handle: VcpuHandle;
  readonly control: RunControl;
  /** Debug primitives, if this backend offers them. */
  readonly debug?: DebugVcpu;
  /** Sets CPUID, special and general registers; returns the TSC rate in Hz. */
  configure(state: BootState): number;
  run(): VcpuExit;
  /** A new POLL wait set; spinNs: how long to check without sleeping first. */
  createWaitSet(spinNs: number): WaitSet;
  /** The one line that reports a fatal exit, in this backend's words (KVM: "KVM: unhandled exit: …"). */
  describeFatal(kind: FatalExit, exit: VcpuExit): string;
  /** Asks the vCPU, from this thread, to stop (its run() returns interrupted). */
  kick(): void;
  /**
   * On the vCPU's thread, between runs: consumes a pending interrupt() (a
   * preemption the scheduler posted), so the next run enters the guest and
   * the next POLL waits; false if none was pending.
   */
  takeInterrupt?(): boolean;
  close(): void;
}

/**
 * Preemption of a vCPU that computes without exits, so that several VMs can
 * share one thread (library/scheduler.ts). One lane per thread; arm before a
 * slice, disarm after.
 */
export interface PreemptLane {
  /** From now, the vCPU `handle` names gets one interrupt() (Platform.interrupt) once sliceNs has passed. */
  arm(handle: VcpuHandle, sliceNs: number): void;
  /** Disarms; true if the interrupt was posted for this arming (take it: Vcpu.takeInterrupt). */
  disarm(): boolean;
  free(): void;
}

/**
 * The descriptors of the net ring's kick (docs/abi.md §13.5, §18): the
 * ring's thread sleeps in a blocking read(2) of `wait`; a guest kick, or a
 * write of `wakeBytes` to `signal`, ends that read. KVM: one eventfd is
 * both, signalled inside KVM (KVM_IOEVENTFD). vmm: a pipe, whose write end
 * the vCPU loop writes on each OUT to the kick port (every kick is an exit).
 */
export interface KickDescriptors {
  readonly wait: number;
  readonly signal: number;
  /** Bytes one read of `wait` takes: an eventfd's 8-byte counter; for a pipe, up to this many queued kicks at once. */
  readonly readSize: number;
  /** What a wake-up (stop, confinement request) writes to `signal`: the eventfd's u64 1, a pipe's one byte. */
  readonly wakeBytes: Uint8Array;
}

/**
 * The net ring's kick port: guest OUTs to it wake a host thread (Linux:
 * KVM_IOEVENTFD, no exit to the monitor; FreeBSD vmm: the vCPU loop writes
 * a pipe). The ring module uses only this, never knowing the backend.
 */
export interface PortEvents {
  /** Whether the hypervisor offers it at all (KVM_CAP_IOEVENTFD; vmm: always). */
  readonly available: boolean;
  /** How the fallback warnings name the two steps (KVM: "eventfd()", "KVM_IOEVENTFD"; vmm: "pipe()", …). */
  readonly steps: { readonly create: string; readonly attach: string };
  /** Makes the kick's descriptors; throws the host's error. */
  createKick(): KickDescriptors;
  /** From now on every 32-bit OUT to `port` wakes `kick.wait`; throws the host's error. */
  attach(port: number, kick: KickDescriptors): void;
  /** Undoes attach() (best effort). */
  detach(port: number, kick: KickDescriptors): void;
  /**
   * Closes the kick's descriptors, each once (later calls do nothing), once
   * no thread reads `wait` any more. The backend knows the safe order (vmm:
   * the vCPU loop lets go of the write end first).
   */
  closeKick(kick: KickDescriptors): void;
}

export interface Machine {
  /** Guest RAM as registered with the hypervisor. */
  readonly memory: ArrayBuffer;
  /** The same RAM as a SharedArrayBuffer for another thread (no copy); it stays mapped while any holder lives. */
  share(): SharedArrayBuffer;
  readonly portEvents: PortEvents;
  /** Host protection of [start, end) (page aligned), bits 1 read, 2 write, 4 exec. */
  protect(start: number, end: number, prot: number): void;
  createVcpu(): Vcpu;
  close(): void;
}

export interface Backend {
  /** Creates a VM with allocSize bytes of zeroed guest RAM at GPA 0. */
  createMachine(allocSize: number): Machine;
  /**
   * Makes ahead what the next createMachine would make first and needs no
   * size (KVM: the VM object and its vCPU), on the thread that will run it,
   * best effort; close() gives it back if never used.
   */
  prepare?(): void;
  /** Releases the hypervisor handle; machines already created keep working. */
  close(): void;
}

/** The termination signals the CLI catches and the process-wide signal set-up it needs. */
export interface ProcessSignals {
  /** Catch SIGINT and SIGTERM: they end every run of this process ("Exiting on signal N"). */
  catchTermination(): void;
  /** Default action for SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM (see cli/process-guard.ts). */
  restoreDefaults(): void;
}

/** Where a sandbox applies: every thread of the process (the CLI), or only the calling thread (a library VM's worker). */
export type SandboxScope = 'process' | 'thread';

/**
 * The monitor confining itself once a VM is set up (docs/abi.md §17; Linux:
 * monitor/sandbox/, seccomp-BPF). After enter() the calling thread (scope
 * 'thread') or every thread of the process ('process') can no longer open
 * files, run programs, use the network or create processes.
 */
export interface Sandbox {
  /**
   * Refuses a READ_IMPLIES_EXEC personality, sets no-new-privileges and
   * installs the filter of the scope; throws HostError if any of that fails.
   * Once confined, a later call with the same scope does nothing.
   * `debugger`: a debugger is attached, whose stub needs a few more calls
   * (monitor/sandbox/policy.ts marks them).
   */
  enter(scope: SandboxScope, needs?: { readonly debugger?: boolean }): void;
}

/** Everything of one platform: the hypervisor, the host, and what works from any thread. */
export interface Platform {
  readonly name: string;
  /** Opens the hypervisor (KVM: /dev/kvm) and checks what it offers. */
  openBackend(): Backend;
  readonly host: HostIo;
  readonly signals: ProcessSignals;
  /** Confinement after set-up: VmConfig.sandbox calls it right before the first KVM_RUN. */
  readonly sandbox: Sandbox;
  /** Stops a vCPU from any thread; false if it no longer exists. */
  stop(handle: VcpuHandle): boolean;
  /**
   * From any thread: makes a running vCPU leave the guest once (a debugger's
   * Ctrl-C); its run() returns a 'debug' exit with reason 'interrupt' and the
   * guest goes on when run again. False if the vCPU no longer exists.
   */
  interrupt(handle: VcpuHandle): boolean;
  /** CPU time in ns of the thread running a vCPU (guest time included), from any thread; −1 if unknown. */
  cpuTimeNs(handle: VcpuHandle): number;
  /**
   * A preemption lane for the calling thread (Linux); the first one in the
   * process starts a watchdog thread, so call it before the thread is
   * confined. Absent where the backend has none.
   */
  createLane?(): PreemptLane;
  /**
   * Readies the calling thread for WaitSet.watch (Linux: its watch hub, an
   * epoll descriptor on the thread's event loop, whose set-up makes an ioctl
   * a confined thread may not): call it before the thread is confined.
   */
  prepareWatches?(): void;
}
