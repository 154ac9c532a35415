// The contract between the core and a device module (DESIGN.md). A module is
// made by a factory (console(), block(), net()) and keeps its state in that
// closure, so one process can run several monitors side by side.
import type { HypercallNr } from './abi/constants.js';
import type { VcpuExit } from './backend/backend.js';
import type { Manifest } from './kernel/manifest.js';
import type { GuestMemory } from './vm/memory.js';

/** Handles one hypercall; gpa is the argument structure's address (32-bit). */
export type HypercallHandler = (gpa: number) => void;
/** Runs when the guest halts; cookie is the checked cookie GPA or 0. */
export type HaltHook = (status: number, cookie: number) => void;
/** May claim an exit before the core dispatches it (true = handled, resume). */
export type VmexitHook = (exit: VcpuExit) => boolean;

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

export interface SetupContext {
  readonly mem: GuestMemory;
  readonly mft: Manifest;
  /** Registers a hypercall handler; throws if the number is already taken. */
  hypercall(nr: HypercallNr, fn: HypercallHandler): void;
  onHalt(fn: HaltHook): void;
  onVmexit(fn: VmexitHook): void;
  /** Adds a host descriptor to POLL's wait set; readiness sets bit `handle`. */
  pollFd(fd: number, handle: number): void;
  /** For handlers that wait on the host (full console pipe, full tap, slow disk). */
  readonly run: RunControl;
  /** Prints a warning line (prefixed with the program name). */
  warn(message: string): void;
  /**
   * Bytes moved per device, for stats: [2 × handle] = into the guest (block
   * reads, frames received), [2 × handle + 1] = out of the guest.
   */
  readonly deviceBytes: Float64Array;
}

export interface Module {
  readonly name: string;
  /** Lines of --help text for this module's options. */
  usage?(): string[];
  /** Options written with their value as the next argument (e.g. "--disk"). */
  readonly separateValueOptions?: readonly string[];
  /**
   * Offered each leading option (pass 2, §2.3). Returns true if consumed.
   * Throws UsageError for an option it recognises but rejects.
   */
  handleArg?(arg: string, mft: Manifest): boolean;
  /**
   * Called once all options are applied, before anything is built: checks
   * the attached devices and records them in the manifest (§4.3). Throws
   * TenderError subclasses for bad devices.
   */
  prepare?(mft: Manifest, warn: (message: string) => void): void;
  /** Adds bytes to the allocation before guest memory is created (e.g. the net ring). */
  extraMemory?(mft: Manifest): number;
  /** Called once the VM exists, in module order, before boot info is written. */
  setup(ctx: SetupContext): void;
  /** Releases host resources (descriptors); called when the VM is closed or fails to build. */
  close?(): void;
}
