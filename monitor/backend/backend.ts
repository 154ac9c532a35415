// What the core needs from a hypervisor backend (Linux KVM now, FreeBSD vmm
// later), described neutrally. The exit is decoded once, in the backend, into
// VcpuExit; the core dispatches on it without knowing which backend made it.

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

/** Initial state and resources of one vCPU. */
export interface BootState {
  entry: number;
  /** Guest memory size (mem_size); RSP starts at mem_size − 8. */
  memSize: number;
}

export interface Vcpu {
  /** Name used in diagnostics, e.g. "KVM". */
  readonly backendName: string;
  /** Descriptor that becomes readable when the run must stop (signal or kick). */
  readonly wakeFd: number;
  /**
   * Opaque number naming this vCPU process-wide, so another thread can stop
   * it or read its CPU time through the native binding (KVM: the table slot).
   */
  readonly token: number;
  /** Sets CPUID, special and general registers; returns the TSC rate in Hz. */
  configure(state: BootState): number;
  run(): VcpuExit;
  rip(): bigint;
  /** Asks the vCPU, from any thread, to stop (its run() returns interrupted). */
  kick(): void;
  close(): void;
  /**
   * Bench only: runs to HALT answering WALLTIME, zero-timeout POLL and PUTS
   * natively, never returning to JavaScript (the physical floor of an exit).
   */
  runFloor?(memory: ArrayBuffer, memSize: number, putsFd: number): number;
}

export interface Machine {
  /** Guest RAM as registered with the hypervisor. */
  readonly memory: ArrayBuffer;
  /** Host protection of [start, end) (page aligned), bits 1 read, 2 write, 4 exec. */
  protect(start: number, end: number, prot: number): void;
  createVcpu(): Vcpu;
  close(): void;
}

export interface Backend {
  /** Creates a VM with allocSize bytes of zeroed guest RAM at GPA 0. */
  createMachine(allocSize: number): Machine;
  /** Releases the hypervisor handle; machines already created keep working. */
  close(): void;
}
