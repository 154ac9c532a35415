// The contract between the monitor and a device module (DESIGN.md "Modules
// plug in"). A module's folder exports one ModuleDescriptor; registry.ts lists
// them, and every consumer (the CLI's options and usage, startUnikernel's
// option checking, the library worker, configure and the generated monitors)
// is driven from that list. A descriptor's create() makes a fresh Module per
// VM whose state lives in the closure, so one process runs many VMs.
import type { HypercallNr } from './abi/constants.js';
import type { PortEvents, RunControl, SandboxScope, VcpuExit, VcpuHandle } from './backend/backend.js';
import type { DebugVcpu } from './backend/debug.js';
import type { FileMode, HostIo } from './backend/host.js';
import type { DeviceType, Manifest } from './kernel/manifest.js';
import type { CheckedMemory } from './vm/memory.js';
import type { DebugMemory } from './vm/debug-memory.js';

export type { RunControl } from './backend/backend.js';

/** Handles one hypercall; gpa is the argument structure's address (32-bit). */
export type HypercallHandler = (gpa: number) => void;
/** Runs when the guest halts; cookie is the checked cookie's bytes (512) or null. */
export type HaltHook = (status: number, cookie: Uint8Array | null) => void;
/** May claim an exit before the core dispatches it (true = handled, resume). */
export type VmexitHook = (exit: VcpuExit) => boolean;

/**
 * Where guest console bytes go; the bytes are only valid during the call. A
 * sink that waits (a full pipe, a slow consumer) gives up when run.ending().
 */
export type GuestOutput = (bytes: Uint8Array, run: RunControl) => void;

/** What a module's factory gets from the program composing the monitor. */
export interface ModuleEnv {
  /** The platform's host calls (descriptors, taps, positional I/O). */
  readonly host: HostIo;
  /** Where guest text goes (default: file descriptor 1). */
  readonly output?: GuestOutput;
}

/** The direction of a device's bytes, as seen from the guest. */
export type Direction = 'in' | 'out';

export interface SetupContext {
  /** Guest memory, through checks only. */
  readonly memory: CheckedMemory;
  readonly mft: Manifest;
  /** Registers a hypercall handler; throws ModuleError if the number is taken. */
  hypercall(nr: HypercallNr, fn: HypercallHandler): void;
  onHalt(fn: HaltHook): void;
  onVmexit(fn: VmexitHook): void;
  /** Adds a host descriptor to POLL's wait set; readiness sets bit `handle`. */
  pollFd(fd: number, handle: number): void;
  /** For handlers that wait on the host (full console pipe, full tap, slow disk). */
  readonly run: RunControl;
  /** Counts bytes a device moved: 'in' = into the guest (block reads, frames received). */
  countBytes(handle: number, direction: Direction, n: number): void;
  /** The vCPU's debug primitives, where the backend has them (call them on the vCPU's thread). */
  readonly debug?: DebugVcpu;
  /**
   * Guest RAM for a debugger only (modules/gdb): [0, mem_size) end included,
   * host-protected text too, protections lifted around each copy
   * (vm/debug-memory.ts). Never for hypercall buffers: those go through `memory`.
   */
  readonly debugMemory: DebugMemory;
  /** Names the vCPU to other threads: platform().interrupt(handle) / stop(handle) work from anywhere. */
  readonly vcpu: VcpuHandle;
  /** Prints a warning line (prefixed with the program name). */
  warn(message: string): void;
  /** mem_size: bytes the guest owns; a reservation (extraMemory, the net ring) starts here (§6.1, §13.2). */
  readonly memSize: number;
  /**
   * The net ring's kick (§13.5, §18): port writes that wake the ring's thread
   * through the backend's kick descriptors (KVM: an eventfd signalled by
   * KVM_IOEVENTFD, no exit; vmm: a pipe the vCPU loop writes on each exit).
   */
  readonly portEvents: PortEvents;
  /** What boot info will advertise (§8.2); a module offering ring I/O sets both (§13.5). */
  readonly bootInfo: { hostFeatures: number; netRing: number };
  /**
   * Counters written by the net ring's I/O thread, backed by a
   * SharedArrayBuffer (RING_COUNTERS_LENGTH slots, see vm/compose.ts).
   */
  readonly ringCounters: Float64Array;
}

/** One module's part in one VM. */
export interface Module {
  readonly name: string;
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
  /**
   * Asked once after setup(), right before the guest first runs, what this
   * run needs of the sandbox (monitor/sandbox/): 'skip' if it must not be
   * sandboxed (a core file created at HALT: the monitor then runs unconfined
   * and prints the reference's two warnings, docs/abi.md §17); 'debugger' if
   * a debugger is attached (the filter then also allows the register and
   * guest-debug ioctls and the calls of the stub's socket thread);
   * undefined for nothing.
   */
  sandbox?(): SandboxNeed;
  /**
   * Told, on the VM's thread right after the sandbox step, how the VM's
   * thread was confined ('process': every thread, 'thread': the VM's thread
   * only; null: not at all). A module with a thread of its own confines it
   * the same way when the scope does not reach it ('thread').
   */
  sandboxed?(scope: SandboxScope | null): void;
  /** Releases host resources (descriptors); called when the VM is closed or fails to build. Idempotent. */
  close?(): void;
}

/** What a module needs of the sandbox (Module.sandbox). */
export type SandboxNeed = 'skip' | 'debugger' | undefined;

/** Host resources a library VM's modules open (ModuleDescriptor.grants). */
export interface HostGrants {
  /** Files opened with HostIo.openFile, and how. */
  readonly files?: readonly { path: string; mode: FileMode }[];
  /** Tap interfaces opened by name (HostIo.openTap; their MTU and offloads too). */
  readonly taps?: readonly string[];
  /** Inherited descriptors adopted (HostIo.adopt; their interface's name, MTU and offloads too). */
  readonly fds?: readonly number[];
}

/** An option of startUnikernel that a module serves. */
export interface LibraryOption {
  /** Its name in the options object, e.g. "block". */
  readonly name: string;
  /** Throws OptionError naming `name` if the value has the wrong type or shape (caller's thread). */
  check(value: unknown): void;
}

export interface ModuleDescriptor {
  readonly name: string;
  /** Manifest device types it attaches; a generated monitor includes it if the manifest declares one. */
  readonly serves: readonly DeviceType[];
  /** In every monitor whatever the manifest says (the console). */
  readonly always?: boolean;
  readonly cli: {
    /** Lines of --help text. */
    readonly usage: readonly string[];
    /** Options written with their value as the next argument (e.g. "--disk"). */
    readonly separateValue?: readonly string[];
  };
  readonly library: readonly LibraryOption[];
  /**
   * What a VM's module may have the embedding program's thread open for it,
   * from its startUnikernel options (already checked): a library worker that
   * is confined builds VMs too, and asks that thread for these through
   * library/broker.ts. 'unconfined': these options need a worker thread that
   * is not confined while the VM is built (a listening socket, a thread of
   * the module's own, a file created later). Absent: the module opens nothing.
   */
  grants?(options: Readonly<Record<string, unknown>>): HostGrants | 'unconfined';
  /**
   * A fresh module for one VM. `options` holds this module's startUnikernel
   * options (already checked), empty on the command line.
   */
  create(options: Readonly<Record<string, unknown>>, env: ModuleEnv): Module;
}
