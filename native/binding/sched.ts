// The native surface for several VMs sharing one thread (Linux only:
// native/host_waitwatch_linux.cc, native/vcpu_lanes_linux.cc), used by
// monitor/backend/wait-set.ts (watching a wait set from the event loop) and
// the KVM platform's preemption lanes (monitor/library/scheduler.ts).

export interface SchedBinding {
  /**
   * Makes the calling thread's watch hub if it has none: an epoll descriptor
   * watched by a uv_poll_t on this thread's libuv loop. uv_poll_init makes
   * an ioctl (FIONBIO) a confined thread may not: call it before the thread
   * is confined. Afterwards watching needs only epoll_ctl and epoll_wait.
   */
  waitsetHub(): void;
  /**
   * A watcher of a wait set's epoll descriptor in this thread's hub, not
   * armed; returns its id. Throws without a hub, or if epfd is watched
   * already. `onReady(events)` runs on this thread, in a callback scope,
   * once per waitsetWatch() after which the descriptor became readable,
   * never after waitsetCancel/Unwatch.
   */
  waitsetWatcher(epfd: number, onReady: (events: number) => void): number;
  /** Arms the watcher once (one-shot); false if it is closed. */
  waitsetWatch(watcher: number): boolean;
  /** Disarms; true if a watch was pending (its callback will not run). */
  waitsetCancel(watcher: number): boolean;
  /** Removes the watcher (before its epoll descriptor is closed); twice, or an unknown id, does nothing. */
  waitsetUnwatch(watcher: number): void;

  /** A preemption lane for this thread; the first one starts the process's watchdog thread (call before confinement). */
  laneCreate(): number;
  /** From now, the vCPU `token` names gets one interrupt() once sliceNs has passed, unless disarmed first. */
  laneArm(lane: number, token: number, sliceNs: number): void;
  /** Disarms; true if the interrupt was posted for this arming (consume it with takeInterrupt). */
  laneDisarm(lane: number): boolean;
  /** Disarms and gives the lane back; an unknown id does nothing. */
  laneFree(lane: number): void;
}

/** What load.ts checks the Linux addon against: every member of SchedBinding. */
export const SCHED_SHAPE = {
  waitsetHub: 'function',
  waitsetWatcher: 'function',
  waitsetWatch: 'function',
  waitsetCancel: 'function',
  waitsetUnwatch: 'function',
  laneCreate: 'function',
  laneArm: 'function',
  laneDisarm: 'function',
  laneFree: 'function',
} as const satisfies Record<keyof SchedBinding, 'function'>;
