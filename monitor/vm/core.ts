// The core: tables of hypercall handlers, halt hooks, vmexit hooks and POLL
// descriptors (collisions refused), the core hypercalls WALLTIME, POLL and
// HALT, and the vCPU loop that dispatches decoded exits (docs/abi.md §9.2,
// §10). dispatch() takes a made-up exit in unit tests; nothing here knows
// which hypervisor made the exit, and the backend words the fatal ones.
import { HALT_COOKIE_SIZE, Hypercall, HYPERCALL_MAX, HYPERCALL_PORT_BASE, type HypercallNr } from '../abi/constants.js';
import { HALT_ARGS, POLL_ARGS, WALLTIME_ARGS } from '../abi/layouts.js';
import type { Vcpu, VcpuExit } from '../backend/backend.js';
import { GuestError, HostError, ModuleError } from '../errors.js';
import type { CheckedMemory } from './memory.js';
import type { HaltHook, HypercallHandler, VmexitHook } from '../module.js';

/** How a run ended. */
export type RunOutcome =
  | { kind: 'halt'; status: number }
  | { kind: 'signal'; signal: number }
  | { kind: 'stopped' };

/** What the core needs from the host besides the vCPU (compose.ts builds it from the backend). */
export interface CoreHost {
  /** Stores CLOCK_REALTIME in ns as a little-endian u64 in bytes[0..8). */
  realtimeInto(bytes: Uint8Array): void;
  /** Adds a device descriptor to POLL's wait set. */
  watch(fd: number, handle: number): void;
  /** Waits on the POLL set; returns handles ready, or null if the run is ending. */
  wait(timeoutNs: number): readonly number[] | null;
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
    let readyLo = 0;
    let readyHi = 0;
    let count = 0;
    // A zero timeout with nothing to watch returns at once: no syscall at all.
    if (timeoutNs !== 0 || this.pollFds.length !== 0) {
      for (const handle of this.host.wait(timeoutNs) ?? []) {
        if (!(handle >= 0 && handle <= 63)) continue; // only device handles count
        if (handle < 32) readyLo |= 1 << handle;
        else readyHi |= 1 << (handle - 32);
        count++;
      }
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
