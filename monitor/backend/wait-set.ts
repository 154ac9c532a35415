// The vCPU's view of the run, for every backend whose host offers a wait set
// over descriptors (Linux: epoll, native/host_waitset_linux.cc; FreeBSD:
// kqueue, native/freebsd/host_waitset_freebsd.cc): POLL's wait set, which
// always holds the vCPU's wake descriptor (an eventfd on Linux, a pipe on
// FreeBSD, written by the SIGINT/SIGTERM handler and by stop requests), and
// the RunControl that lets handlers waiting on the host give up once the run
// is ending. With several VMs on one thread (library/scheduler.ts) the set is
// also watched from the event loop instead of waited on (watch(); Linux:
// native/host_waitwatch_linux.cc).
import type { HostBinding } from '../../native/binding/host.js';
import type { SchedBinding } from '../../native/binding/sched.js';
import type { RunControl, WaitSet } from './backend.js';

/** What the wait set and run control need of a backend's native binding (watching: Linux only). */
export type WaitBinding = Pick<HostBinding, 'pendingSignal' | 'waitWritable' | 'waitsetCreate' | 'waitsetAdd' | 'waitsetWait' | 'closeFd'> & {
  stopRequested(token: number): boolean;
} & Partial<Pick<SchedBinding, 'waitsetWatcher' | 'waitsetWatch' | 'waitsetCancel' | 'waitsetUnwatch'>>;

interface VcpuIds {
  readonly token: number;
  readonly wakeFd: number;
}

/** How often a wait that cannot watch the wake descriptor checks whether the run is ending. */
const WAKELESS_SLICE_MS = 50;

export class HostRunControl implements RunControl {
  constructor(
    private readonly b: WaitBinding,
    private readonly vcpu: VcpuIds,
  ) {}

  ending(): boolean {
    return this.b.pendingSignal() !== 0 || this.b.stopRequested(this.vcpu.token);
  }

  waitWritable(fd: number, timeoutMs: number): boolean {
    // The wake descriptor is written by the same code that records a signal
    // or stop, so one that lands at any moment ends this wait.
    let wake = this.vcpu.wakeFd;
    const deadline = timeoutMs < 0 ? Infinity : performance.now() + timeoutMs;
    for (;;) {
      if (this.ending()) return false;
      const left = deadline - performance.now();
      if (left <= 0) return true;
      // Without the wake descriptor, wait in slices so the run ending is still seen.
      const slice = wake < 0 ? Math.min(left, WAKELESS_SLICE_MS) : left === Infinity ? -1 : left;
      const r = this.b.waitWritable(fd, wake, slice);
      if (r === 1 || (r === 0 && wake >= 0)) return !this.ending();
      // A debugger's interrupt also wakes the descriptor, and stays pending
      // until the vCPU next runs: not ours to end this wait, but watching the
      // descriptor again would return at once, so go on without it.
      if (r === -1 && !this.ending()) wake = -1;
      // −2: a signal; ours ends the wait above, others restart it.
    }
  }
}

export class HostWaitSet implements WaitSet {
  /** The epoll or kqueue descriptor. */
  private readonly ws: number;
  private readonly keys = new Int32Array(64);
  private devices = 0;
  private closed = false;
  /** The event-loop watcher of ws (made on the first watch; −1: none), and the callback of the watch armed on it. */
  private watcher = -1;
  private onReady: (() => void) | undefined;
  readonly watch?: (onReady: () => void) => () => void;

  constructor(
    private readonly b: WaitBinding,
    vcpu: VcpuIds,
    private readonly control: RunControl,
    /** How long to check the devices without sleeping before blocking, ns. */
    private readonly spinNs: number,
  ) {
    this.ws = b.waitsetCreate();
    try {
      b.waitsetAdd(this.ws, vcpu.wakeFd, -1);
    } catch (e) {
      b.closeFd(this.ws);
      throw e;
    }
    if (b.waitsetWatcher && b.waitsetWatch && b.waitsetCancel && b.waitsetUnwatch) {
      this.watch = (onReady) => this.startWatch(onReady);
    }
  }

  /** The watcher of ws, made on the first watch (one epoll_ctl: fine on a confined thread, given the hub). */
  private watcherId(): number {
    if (this.closed) throw new Error('wait set is closed');
    if (this.watcher < 0) {
      this.watcher = this.b.waitsetWatcher!(this.ws, () => {
        const fn = this.onReady;
        this.onReady = undefined;
        fn?.();
      });
    }
    return this.watcher;
  }

  private startWatch(onReady: () => void): () => void {
    if (this.onReady) throw new Error('wait set is already watched');
    const id = this.watcherId();
    this.b.waitsetWatch!(id); // its callback comes from the event loop, never from here
    this.onReady = onReady;
    return () => {
      // Only this watch: a later one must not be cancelled by a stale cancel.
      if (this.onReady !== onReady) return;
      this.onReady = undefined;
      this.b.waitsetCancel!(id);
    };
  }

  add(fd: number, key: number): void {
    this.b.waitsetAdd(this.ws, fd, key);
    this.devices++;
  }

  wait(timeoutNs: number): readonly number[] | null {
    const b = this.b;
    // Spinning only helps when a device may become ready.
    const spin = this.devices ? this.spinNs : 0;
    const start = performance.now();
    let n = b.waitsetWait(this.ws, timeoutNs, this.keys, spin);
    // A signal that is not ours to act on (SIGWINCH, …) restarts the wait (§10.3).
    while (n < 0 && !this.control.ending()) {
      const left = timeoutNs - (performance.now() - start) * 1e6;
      n = left > 0 ? b.waitsetWait(this.ws, left, this.keys, 0) : 0;
    }
    if (n < 0) return null;
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const key = this.keys[i] as number;
      if (key >= 0) out.push(key); // −1 is the wake descriptor: the next run of the vCPU reports why
    }
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // The watcher first: the thread's hub lets go of ws before its number can be reused.
    this.onReady = undefined;
    if (this.watcher >= 0) this.b.waitsetUnwatch!(this.watcher);
    this.b.closeFd(this.ws);
  }
}
