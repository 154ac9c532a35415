// Several VMs on one thread: a cooperative round-robin over Vm.runSlice.
// Each runnable VM runs for a slice; between slices the thread goes back to
// its event loop (setImmediate), so messages (a stop, a new job) are handled.
// A VM whose guest waits in POLL leaves the run queue: the wait set is
// watched from the event loop and a timer covers the POLL's timeout,
// whichever comes first cancels the other and completes the POLL. A guest
// that computes without exits is preempted by the platform's lane (a
// watchdog thread interrupts its vCPU at the end of its slice). A VM alone on
// the scheduler gets longer slices (the loop still turns, for new jobs). A stop (platform().stop(handle))
// reaches one vCPU and ends only that VM, whatever its state: running (the
// vCPU leaves the guest), runnable (its next slice ends at once) or blocked
// (the wake descriptor fires its watch).
import type { PreemptLane, VcpuHandle } from '../backend/backend.js';
import type { RunOutcome } from '../vm/core.js';
import type { Vm } from '../vm/compose.js';

/** What the scheduler needs of the platform (backend/index.ts platform()). */
export interface SchedulerPlatform {
  createLane?(): PreemptLane;
  prepareWatches?(): void;
  cpuTimeNs(handle: VcpuHandle): number;
}

export interface SchedulerOptions {
  /** How long a VM runs while others wait for the thread, ms (default 5). */
  sliceMs?: number;
  /** How long a VM alone on the thread runs before the event loop turns, ms (default 50). */
  aloneSliceMs?: number;
  /** Told a VM's CPU time so far (cpuTimeNs) after each of its slices: a live figure for another thread. */
  onCpu?: (vm: SchedulableVm, ns: number) => void;
}

/** What the scheduler needs of a VM: compose.ts's Vm. */
export type SchedulableVm = Pick<Vm, 'handle' | 'runSlice' | 'completePoll' | 'waitSet' | 'control' | 'takeInterrupt'>;

type State = 'runnable' | 'running' | 'blocked' | 'done';

interface Entry {
  readonly vm: SchedulableVm;
  state: State;
  resolve(o: RunOutcome): void;
  reject(e: unknown): void;
  cancelWatch?: (() => void) | undefined;
  timer?: NodeJS.Timeout | undefined;
  /** While blocked: when its POLL times out (performance.now() time). */
  deadlineMs: number;
}

/** The shortest slice, ms: about the preemption watchdog's resolution. */
const MIN_SLICE_MS = 1;

/** setTimeout's longest delay; longer POLL timeouts re-arm the timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class VmScheduler {
  private readonly queue: Entry[] = [];
  private readonly entries = new Map<SchedulableVm, Entry>();
  /** CPU time of this thread spent in each VM's slices, ns (kept after the VM ends). */
  private readonly cpu = new WeakMap<SchedulableVm, number>();
  private readonly lane: PreemptLane | undefined;
  private readonly sliceMs: number;
  private readonly aloneSliceMs: number;
  private readonly onCpu: SchedulerOptions['onCpu'];
  private scheduled = false;
  private closed = false;

  /**
   * Call on the thread that runs the VMs, before it is confined: the lane
   * may start the watchdog thread, and the thread's watch hub is made here.
   */
  constructor(
    private readonly platform: SchedulerPlatform,
    options: SchedulerOptions = {},
  ) {
    this.sliceMs = options.sliceMs ?? 5;
    this.onCpu = options.onCpu;
    this.aloneSliceMs = options.aloneSliceMs ?? 50;
    platform.prepareWatches?.();
    this.lane = platform.createLane?.();
  }

  /**
   * Runs a built VM to its end among the others; resolves with how it ended,
   * or rejects with what vm.run() would have thrown. The VM stays the
   * caller's to close once the promise settles (stop it first to end it
   * early: platform().stop(vm.handle)).
   */
  run(vm: SchedulableVm): Promise<RunOutcome> {
    if (this.closed) return Promise.reject(new Error('VmScheduler is closed'));
    if (this.entries.has(vm)) return Promise.reject(new Error('this VM is already scheduled'));
    if (!vm.waitSet.watch) return Promise.reject(new Error('this backend cannot watch a wait set: run the VM with vm.run()'));
    return new Promise<RunOutcome>((resolve, reject) => {
      const e: Entry = { vm, state: 'runnable', resolve, reject, deadlineMs: Infinity };
      this.cpu.set(vm, 0);
      this.entries.set(vm, e);
      this.queue.push(e);
      this.schedule();
    });
  }

  /**
   * CPU time (ns) this thread spent running the VM (its slices, guest time
   * included), also once it ended; −1 if it was never scheduled here. With
   * several VMs per thread this replaces the thread's own CPU clock.
   */
  cpuTimeNs(vm: SchedulableVm): number {
    return this.cpu.get(vm) ?? -1;
  }

  /** How many VMs are scheduled, and in which state (for stats and tests). */
  counts(): Record<Exclude<State, 'done'>, number> {
    const c = { runnable: 0, running: 0, blocked: 0 };
    for (const e of this.entries.values()) if (e.state !== 'done') c[e.state]++;
    return c;
  }

  /** Gives the lane back once every VM has ended; later run() calls are refused. */
  close(): void {
    this.closed = true;
    if (this.entries.size === 0) this.lane?.free();
  }

  private schedule(): void {
    if (this.scheduled || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const e = this.queue.shift();
      if (e) this.slice(e);
      this.schedule();
    });
  }

  private slice(e: Entry): void {
    const vm = e.vm;
    // Alone means no other VM at all: a blocked one still needs the event
    // loop soon (its timer, its devices), so it shortens the slice too.
    const alone = this.entries.size === 1;
    const now = performance.now();
    // A slice ends by the time a blocked VM's POLL times out (not shorter
    // than MIN_SLICE_MS, about the watchdog's resolution), so it wakes on time.
    const sliceMs = alone ? this.aloneSliceMs : Math.max(MIN_SLICE_MS, Math.min(this.sliceMs, this.nextTimeout() - now));
    e.state = 'running';
    const cpu0 = this.platform.cpuTimeNs(vm.handle);
    const deadline = now + sliceMs;
    this.lane?.arm(vm.handle, sliceMs * 1e6);
    let outcome;
    try {
      outcome = vm.runSlice(deadline);
    } catch (err) {
      this.account(e, cpu0);
      this.lane?.disarm();
      return this.end(e, () => e.reject(err));
    }
    // Race-free (native/vcpu_lanes_linux.cc): an interrupt posted for this
    // slice is consumed here, before the VM waits, so it never cuts a POLL short.
    if (this.lane?.disarm()) vm.takeInterrupt();
    this.account(e, cpu0);
    switch (outcome.kind) {
      case 'yield':
        e.state = 'runnable';
        this.queue.push(e);
        return;
      case 'blocked':
        return this.block(e, outcome.deadlineMs);
      default:
        return this.end(e, () => e.resolve(outcome));
    }
  }

  /** The earliest POLL timeout among blocked VMs. */
  private nextTimeout(): number {
    let t = Infinity;
    for (const e of this.entries.values()) if (e.state === 'blocked' && e.deadlineMs < t) t = e.deadlineMs;
    return t;
  }

  private account(e: Entry, cpu0: number): void {
    const cpu1 = this.platform.cpuTimeNs(e.vm.handle);
    if (cpu0 >= 0 && cpu1 >= cpu0) this.cpu.set(e.vm, (this.cpu.get(e.vm) ?? 0) + cpu1 - cpu0);
    this.onCpu?.(e.vm, this.cpu.get(e.vm) ?? 0);
  }

  private block(e: Entry, deadlineMs: number): void {
    e.state = 'blocked';
    e.deadlineMs = deadlineMs;
    const vm = e.vm;
    const wake = () => {
      e.cancelWatch?.();
      e.cancelWatch = undefined;
      if (e.timer) clearTimeout(e.timer);
      e.timer = undefined;
      // A stop or signal ends the POLL with nothing ready; the next slice
      // then ends the run as run() would. Else the keys ready now: none if
      // the wake descriptor alone woke us (someone's interrupt(), as a
      // debugger's; vm.run() ends that POLL early too, and the interrupt
      // stays pending for the next slice to report).
      try {
        vm.completePoll(vm.control.ending() ? [] : (vm.waitSet.wait(0) ?? []));
      } catch (err) {
        // A hostile guest (its POLL structure checked again) or a VM closed
        // under the scheduler: this VM ends, nothing else does.
        return this.end(e, () => e.reject(err));
      }
      e.state = 'runnable';
      this.queue.push(e);
      this.schedule();
    };
    const arm = () => {
      const left = deadlineMs - performance.now();
      if (left <= 0) return wake();
      // Timers may fire a little early; a long timeout is waited in pieces.
      e.timer = setTimeout(arm, Math.min(Math.ceil(left), MAX_TIMER_MS));
    };
    try {
      e.cancelWatch = vm.waitSet.watch!(wake);
    } catch (err) {
      return this.end(e, () => e.reject(err));
    }
    arm();
  }

  private end(e: Entry, settle: () => void): void {
    e.state = 'done';
    this.entries.delete(e.vm);
    settle();
    if (this.closed && this.entries.size === 0) this.lane?.free();
  }
}
