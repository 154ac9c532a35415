// The gdb stub on the vCPU's thread. setup() starts the socket thread
// (socket-worker.ts), waits for gdb to connect (so a library startUnikernel
// resolves only once a debugger is attached) and asks for an interrupt of
// the vCPU before its first instruction: the first run() then returns at
// once and the guest stops at its entry point, with boot info written. From
// then on the vmexit hook claims every debug exit (steps, breakpoint and
// watchpoint hits, gdb's Ctrl-C) and the fatal ones, and serves gdb's
// commands until it resumes the guest, blocking this thread in bounded
// waits so that a SIGTERM or stop() still ends the run.
import type { VcpuExit } from '../../monitor/backend/backend.js';
import type { DebugVcpu } from '../../monitor/backend/debug.js';
import { HostError } from '../../monitor/errors.js';
import type { RunControl } from '../../monitor/module.js';
import type { BreakpointTable } from './breakpoints.js';
import { Slot } from './channel.js';
import { type Link, SLICE_MS } from './link.js';
import { hex2 } from './packet.js';
import { type GdbStub, type Next, SIGNAL, type Stop } from './stub.js';
import type { VcpuRegisters } from './target.js';

export const LOST_MESSAGE = 'GDB: Exiting as we could not receive the next command from the debugger.';
export const KILLED_MESSAGE = 'GDB: the debugger killed the guest';

export interface SessionParts {
  link: Link;
  stub: GdbStub;
  breakpoints: BreakpointTable;
  registers: VcpuRegisters;
  debug: DebugVcpu;
  run: RunControl;
  /** Interrupts this vCPU (Platform.interrupt of its handle). */
  interrupt(): void;
  warn(line: string): void;
  say(line: string): void;
}

type State = 'attached' | 'detached' | 'ended';

export class Session {
  private state: State = 'attached';
  private initial = true;
  private stepping = false;

  constructor(private readonly p: SessionParts) {
    // The guest's first run returns at once: the initial stop.
    p.interrupt();
  }

  /** The vmexit hook. */
  readonly hook = (exit: VcpuExit): boolean => {
    if (this.state !== 'attached') {
      // A Ctrl-C or step racing with detach: nothing to report, the guest goes on.
      return this.state === 'detached' && exit.kind === 'debug';
    }
    switch (exit.kind) {
      case 'io':
        return false;
      case 'interrupted':
        this.end(`X${hex2(exit.signal || SIGNAL.KILL)}`);
        return false;
      case 'debug':
        return this.onDebug(exit);
      case 'internalError':
        // On hosts whose emulator cannot deliver int3 (PVM), our int3 ends
        // KVM_RUN this way with rip at it; once gdb takes it out the guest
        // can go on.
        if (this.p.breakpoints.isInt3(this.p.registers.gpr().rip)) return this.stop({ signal: SIGNAL.TRAP, reason: { kind: 'swbreak' } }, false);
        return this.stop({ signal: SIGNAL.SEGV }, true);
      default:
        // fault, mmio, failEntry, other: gdb may look at the wreck first.
        return this.stop({ signal: SIGNAL.SEGV }, true);
    }
  };

  /** The halt hook: gdb hears the exit status. */
  readonly onHalt = (status: number): void => {
    if (this.state === 'attached') this.end(`W${hex2(status & 0xff)}`);
  };

  close(): void {
    this.state = this.state === 'attached' ? 'ended' : this.state;
    this.p.link.shutdown();
  }

  private onDebug(exit: Extract<VcpuExit, { kind: 'debug' }>): boolean {
    const { link, breakpoints, registers } = this.p;
    link.set(Slot.RUNNING, 0);
    switch (exit.reason) {
      case 'interrupt': {
        if (this.initial) {
          this.initial = false;
          return this.serveThenResume({ signal: SIGNAL.TRAP }, false, false);
        }
        if (link.take(Slot.BREAK) !== 0) return this.stop({ signal: SIGNAL.INT }, false);
        // Spurious: a Ctrl-C that arrived as the guest stopped for another reason, or the connection ended.
        this.drain();
        this.resume(this.stepping);
        return true;
      }
      case 'step':
        return this.stop({ signal: SIGNAL.TRAP }, false);
      case 'hardware': {
        const reason = breakpoints.hitBy(exit.dr6);
        return this.stop(reason ? { signal: SIGNAL.TRAP, reason } : { signal: SIGNAL.TRAP }, false);
      }
      case 'breakpoint':
        if (breakpoints.isInt3(exit.rip)) {
          if (registers.gpr().rip !== exit.rip) registers.setRip(exit.rip);
          return this.stop({ signal: SIGNAL.TRAP, reason: { kind: 'swbreak' } }, false);
        }
        return this.stop({ signal: SIGNAL.TRAP }, false);
    }
  }

  /** A stop gdb is waiting for (it resumed the guest): report it, serve, go on. */
  private stop(stop: Stop, fatal: boolean): boolean {
    return this.serveThenResume(stop, true, fatal);
  }

  /**
   * Serves gdb until it resumes, detaches, kills or the run ends. Returns
   * the hook's answer: true to run the guest again; false after a fatal
   * stop (the core then ends the run as it would have).
   */
  private serveThenResume(stop: Stop, solicited: boolean, fatal: boolean): boolean {
    const { link } = this.p;
    link.set(Slot.RUNNING, 0);
    link.set(Slot.BREAK, 0);
    this.p.registers.invalidate();
    const reply = this.p.stub.stopped(stop);
    if (solicited) link.post({ t: 'send', data: reply });
    const next = this.serve();
    switch (next) {
      case 'continue':
      case 'step':
        if (fatal) {
          this.end(`X${hex2(SIGNAL.SEGV)}`);
          return false;
        }
        this.resume(next === 'step');
        return true;
      case 'detach':
        this.detach();
        return !fatal;
      case 'kill':
        this.end(null);
        throw new HostError(KILLED_MESSAGE);
      case 'ending':
        // The next run reports the signal or stop (and the hook sends X).
        return true;
    }
  }

  private serve(): Exclude<Next, 'serve'> | 'ending' {
    const { link, stub, run } = this.p;
    for (;;) {
      if (run.ending()) return 'ending';
      const m = link.next(SLICE_MS);
      if (!m) continue;
      switch (m.t) {
        case 'packet': {
          link.bump(Slot.CONSUMED);
          const out = stub.handle(m.data);
          if (out.reply !== undefined) link.post({ t: 'send', data: out.reply, ...(out.noAckAfter ? { noAckAfter: true } : {}) });
          if (out.next !== 'serve') return out.next;
          break;
        }
        case 'warn':
          this.p.warn(m.line);
          break;
        case 'closed':
          this.lost();
          break;
        default:
          break;
      }
    }
  }

  /** Messages that came while the guest ran: warnings, and whether gdb went away. */
  private drain(): void {
    for (let m = this.p.link.next(0); m; m = this.p.link.next(0)) {
      if (m.t === 'warn') this.p.warn(m.line);
      else if (m.t === 'closed') this.lost();
      else if (m.t === 'packet') {
        // gdb sent a request without waiting for a stop: answer it now.
        this.p.link.bump(Slot.CONSUMED);
        const out = this.p.stub.handle(m.data);
        if (out.reply !== undefined) this.p.link.post({ t: 'send', data: out.reply });
      }
    }
  }

  private resume(step: boolean): void {
    const { link, breakpoints, debug, registers } = this.p;
    registers.invalidate();
    this.stepping = step;
    debug.setDebug({ singleStep: step, softwareBreakpoints: breakpoints.hasInt3(), hardware: breakpoints.hardware() });
    link.set(Slot.RUNNING, 1);
    // A Ctrl-C the socket thread saw while RUNNING was still 0: one that came
    // after the request resuming the guest stops it at once; one sent while
    // the guest was stopped is stale.
    const brk = link.slot(Slot.BREAK);
    if (brk !== 0 && brk - 1 >= link.slot(Slot.CONSUMED)) this.p.interrupt();
    else if (brk !== 0) link.clear(Slot.BREAK, brk);
  }

  private detach(): void {
    this.p.breakpoints.clear();
    this.stepping = false;
    this.p.registers.invalidate();
    this.p.debug.setDebug({ singleStep: false, softwareBreakpoints: false, hardware: [] });
    this.state = 'detached';
    this.p.link.final(null);
    this.p.say('Debugger detached');
  }

  /** Ends the session with a last packet (W, X) or none. */
  private end(data: string | null): void {
    if (this.state !== 'attached') return;
    this.state = 'ended';
    this.p.link.final(data);
  }

  private lost(): never {
    this.state = 'ended';
    this.p.link.shutdown();
    throw new HostError(LOST_MESSAGE);
  }
}
