// The core: tables of hypercall handlers, halt hooks, vmexit hooks and POLL
// descriptors (collisions refused), the core hypercalls WALLTIME, POLL and
// HALT, and the vCPU loop that dispatches decoded exits (docs/abi.md §9.2,
// §10). dispatch() takes a made-up exit in unit tests; nothing here knows
// which hypervisor made the exit, and the backend words the fatal ones.
import { HALT_COOKIE_SIZE, Hypercall, HYPERCALL_MAX, HYPERCALL_PORT_BASE, type HypercallNr } from '../abi/constants.js';
import { HALT_ARGS, POLL_ARGS, WALLTIME_ARGS } from '../abi/layouts.js';
import type { Vcpu, VcpuExit } from '../backend/backend.js';
import { GuestError, HostError, ModuleError } from '../errors.js';
import type { CheckedMemory, GuestStruct } from './memory.js';
import type { HaltHook, HypercallHandler, VmexitHook } from '../module.js';

/** How a run ended. */
export type RunOutcome =
  | { kind: 'halt'; status: number }
  | { kind: 'signal'; signal: number }
  | { kind: 'stopped' };

/**
 * How a slice of a run ended (Core.runSlice): as a run does, or 'blocked' (the
 * guest waits in POLL until deadlineMs, a performance.now() time, or until a
 * device is ready: call completePoll), or 'yield' (the slice's time is up, or
 * a preemption interrupt came: run another slice when it is this VM's turn).
 */
export type SliceOutcome = RunOutcome | { kind: 'blocked'; deadlineMs: number } | { kind: 'yield' };

/**
 * A POLL in a slice with nothing ready waits on the thread (as in run()) when
 * its timeout is at most this, in ns: blocking that long is cheaper than a
 * trip through the event loop.
 */
export const SLICE_SYNC_POLL_NS = 1_000_000;

const YIELD: SliceOutcome = Object.freeze({ kind: 'yield' });

/** What the core needs from the host besides the vCPU (compose.ts builds it from the backend). */
export interface CoreHost {
  /** Stores CLOCK_REALTIME in ns as a little-endian u64 in bytes[0..8). */
  realtimeInto(bytes: Uint8Array): void;
  /** Adds a device descriptor to POLL's wait set. */
  watch(fd: number, handle: number): void;
  /** Waits on the POLL set; returns handles ready, or null if the run is ending. */
  wait(timeoutNs: number): readonly number[] | null;
  /** True once a stop or termination signal is ending the run (a slice's POLL then completes at once). */
  ending?(): boolean;
}

/** Exit kinds in the order of their counters. */
export const EXIT_KINDS = ['io', 'mmio', 'fault', 'interrupted', 'failEntry', 'internalError', 'debug', 'other'] as const;
const EXIT_INDEX: Record<VcpuExit['kind'], number> = Object.fromEntries(EXIT_KINDS.map((k, i) => [k, i])) as never;

/**
 * Counters of one run: exits per kind (EXIT_KINDS order), then hypercalls per
 * number 0..8. A plain array by default; the library passes one backed by a
 * SharedArrayBuffer so another thread can read it while the vCPU runs.
 */
export const COUNTERS_LENGTH = EXIT_KINDS.length + HYPERCALL_MAX + 1;
export const HYPERCALL_COUNTER_BASE = EXIT_KINDS.length;

export class Core {
  private readonly handlers: (HypercallHandler | undefined)[] = new Array(HYPERCALL_MAX + 1);
  private readonly haltHooks: HaltHook[] = [];
  private readonly vmexitHooks: VmexitHook[] = [];
  private readonly pollFds: { fd: number; handle: number }[] = [];
  /** True while runSlice runs: POLL may block without waiting, an unclaimed interrupt yields. */
  private slicing = false;
  /** Why the current slice must end after this exit (set by POLL or a preemption). */
  private pause: SliceOutcome | null = null;
  /** The POLL that blocked a slice, until completePoll. */
  private pendingPoll: { gpa: number; deadlineMs: number } | null = null;
  constructor(
    private readonly mem: CheckedMemory & { readonly allocSize: number },
    private readonly host: CoreHost,
    readonly counters: Float64Array = new Float64Array(COUNTERS_LENGTH),
  ) {
    this.hypercall(Hypercall.WALLTIME, (gpa) => this.walltime(gpa));
    this.hypercall(Hypercall.POLL, (gpa) => this.poll(gpa));
  }

  hypercall(nr: HypercallNr, fn: HypercallHandler): void {
    if (nr === Hypercall.HALT || this.handlers[nr]) throw new ModuleError(`hypercall ${nr} is already registered`);
    this.handlers[nr] = fn;
  }

  onHalt(fn: HaltHook): void {
    this.haltHooks.push(fn);
  }

  onVmexit(fn: VmexitHook): void {
    this.vmexitHooks.push(fn);
  }

  pollFd(fd: number, handle: number): void {
    if (!(Number.isInteger(handle) && handle >= 0 && handle <= 63) || this.pollFds.some((p) => p.fd === fd || p.handle === handle)) {
      throw new ModuleError(`poll descriptor ${fd} (handle ${handle}) is already registered or out of range`);
    }
    this.host.watch(fd, handle);
    this.pollFds.push({ fd, handle });
  }

  /** Runs the vCPU until the guest halts, a signal arrives or a stop is asked for. */
  run(vcpu: Vcpu): RunOutcome {
    for (;;) {
      const outcome = this.dispatch(vcpu.run(), vcpu);
      if (outcome) return outcome;
    }
  }

  /**
   * Runs the vCPU cooperatively, for several VMs on one thread: like run(),
   * but returns 'yield' after the first exit at or past deadlineMs (a
   * performance.now() time) or at a preemption interrupt no vmexit hook
   * claimed, and 'blocked' where a POLL would wait longer than
   * SLICE_SYNC_POLL_NS with nothing ready: then nothing runs this VM until
   * completePoll(). Throws what run() would.
   */
  runSlice(vcpu: Vcpu, deadlineMs: number): SliceOutcome {
    if (this.pendingPoll) throw new HostError('runSlice: the guest is blocked in POLL (completePoll first)');
    this.slicing = true;
    try {
      for (;;) {
        const outcome = this.dispatch(vcpu.run(), vcpu);
        if (outcome) return outcome;
        const pause = this.pause;
        if (pause) {
          this.pause = null;
          return pause;
        }
        if (performance.now() >= deadlineMs) return YIELD;
      }
    } finally {
      this.slicing = false;
      this.pause = null;
    }
  }

  /** Whether a slice ended 'blocked' and waits for completePoll. */
  get blocked(): boolean {
    return this.pendingPoll !== null;
  }

  /**
   * Ends the POLL a slice blocked in, as POLL does (§10.3): readySet holds
   * the device handles among `keys` (others ignored), ret their count. The
   * arguments are checked again (CheckedMemory), so a guest gains nothing by
   * what it did before it blocked. Throws HostError if no POLL is waiting.
   */
  completePoll(keys: readonly number[]): void {
    const p = this.pendingPoll;
    if (!p) throw new HostError('completePoll: no POLL is waiting');
    this.pendingPoll = null;
    this.pollDone(this.mem.struct(p.gpa, POLL_ARGS, 'write'), keys);
  }

  /** Handles one exit; returns how the run ended, or null to keep running. */
  dispatch(exit: VcpuExit, vcpu: Pick<Vcpu, 'describeFatal'>): RunOutcome | null {
    this.bump(EXIT_INDEX[exit.kind]);
    for (const hook of this.vmexitHooks) if (hook(exit)) return null;
    switch (exit.kind) {
      case 'io':
        return this.portIo(exit.out, exit.size, exit.port, exit.value);
      case 'interrupted':
        return exit.signal !== 0 ? { kind: 'signal', signal: exit.signal } : { kind: 'stopped' };
      case 'fault':
        throw new GuestError(vcpu.describeFatal('translation-fault', exit));
      case 'mmio':
        // Inside guest RAM this can only be an access the host protection
        // refused (a write to text, a fetch from a no-access page): report it
        // as the translation fault it is, whatever flavour the host gave.
        throw new GuestError(vcpu.describeFatal(exit.address < BigInt(this.mem.allocSize) ? 'translation-fault' : 'unhandled', exit));
      case 'failEntry':
        throw new HostError(vcpu.describeFatal('entry-failure', exit));
      case 'internalError':
        throw new HostError(vcpu.describeFatal('internal-error', exit));
      case 'debug': // no debugger claimed it (a module's vmexit hook would have)
        // In a slice, an interrupt nobody claimed is the scheduler's preemption.
        if (this.slicing && exit.reason === 'interrupt') {
          this.pause = YIELD;
          return null;
        }
        throw new GuestError(vcpu.describeFatal('unhandled', exit));
      case 'other':
        throw new GuestError(vcpu.describeFatal('unhandled', exit));
    }
  }

  private portIo(out: boolean, size: number, port: number, gpa: number): RunOutcome | null {
    const nr = port - HYPERCALL_PORT_BASE;
    if (!out || size !== 4 || nr < 0 || nr > HYPERCALL_MAX) {
      throw new GuestError(`Invalid guest port access: port=0x${port.toString(16)}`);
    }
    this.bump(HYPERCALL_COUNTER_BASE + nr);
    if (nr === Hypercall.HALT) return this.halt(gpa);
    const fn = this.handlers[nr];
    if (!fn) throw new GuestError(`Invalid guest hypercall: num=${nr}`);
    fn(gpa);
    return null;
  }

  private bump(i: number): void {
    this.counters[i] = (this.counters[i] ?? 0) + 1;
  }

  private walltime(gpa: number): void {
    this.host.realtimeInto(this.mem.struct(gpa, WALLTIME_ARGS, 'write').u64Bytes('nsecs'));
  }

  /** POLL (§10.3): waits on every registered descriptor and the timeout. */
  private poll(gpa: number): void {
    const args = this.mem.struct(gpa, POLL_ARGS, 'write');
    const [lo, hi] = args.u64Halves('timeoutNanos');
    const timeoutNs = hi * 2 ** 32 + lo;
    if (this.slicing && timeoutNs > SLICE_SYNC_POLL_NS) {
      // In a slice: complete now if anything is ready or the run is ending,
      // else leave the wait to the scheduler (completePoll).
      const ending = this.host.ending?.() ?? false;
      const ready = ending ? [] : this.host.wait(0);
      if (ending || ready === null || ready.length !== 0) return this.pollDone(args, ready ?? []);
      const deadlineMs = performance.now() + timeoutNs / 1e6;
      this.pendingPoll = { gpa, deadlineMs };
      this.pause = { kind: 'blocked', deadlineMs };
      return;
    }
    // A zero timeout with nothing to watch returns at once: no syscall at all.
    this.pollDone(args, timeoutNs !== 0 || this.pollFds.length !== 0 ? this.host.wait(timeoutNs) ?? [] : []);
  }

  private pollDone(args: GuestStruct<typeof POLL_ARGS>, keys: readonly number[]): void {
    let readyLo = 0;
    let readyHi = 0;
    let count = 0;
    for (const handle of keys) {
      if (!(handle >= 0 && handle <= 63)) continue; // only device handles count
      const bit = handle < 32 ? 1 << handle : 1 << (handle - 32);
      if (handle < 32 ? readyLo & bit : readyHi & bit) continue; // each once
      if (handle < 32) readyLo |= bit;
      else readyHi |= bit;
      count++;
    }
    args.setU64Halves('readySet', readyLo, readyHi);
    args.setI32('ret', count);
  }

  /** HALT (§10.8): checks the structure and cookie, runs the halt hooks. */
  private halt(gpa: number): RunOutcome {
    const args = this.mem.struct(gpa, HALT_ARGS, 'read');
    const [cLo, cHi] = args.u64Halves('cookie');
    const cookie = cLo === 0 && cHi === 0 ? null : this.mem.region(cLo, cHi, HALT_COOKIE_SIZE, 'read');
    const status = args.i32('exitStatus');
    for (const hook of this.haltHooks) hook(status, cookie);
    return { kind: 'halt', status };
  }
}
