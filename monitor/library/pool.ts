// A pool of warm VM worker threads. Starting a worker costs far more than
// building and running a small VM (Node's own worker start, then loading the
// core), so a pool keeps `size` of them booted and idle, and start() hands a
// VM to one of them at once. The pool is warmth, not a limit: a start that
// finds none idle gets the next one that boots, and any number of VMs run.
//
// What becomes of a worker after its VM: it has closed every descriptor and
// module of it (worker.ts) and goes back to the pool, unless the VM was one
// whose own filter went in right before its guest ran (sandboxed with gdb,
// dumpcore or the net ring: built unconfined): that filter cannot be removed
// and allows no further build, so the worker ends and the pool boots a
// replacement in the background. A worker confined for confined builds (the
// default VM: worker.ts) takes only such VMs from then on; one that never
// was takes any. Idle workers do not keep the process alive (unref); busy
// ones do, as a running VM should.
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { MessageChannel, type MessagePort, type ResourceLimits, Worker } from 'node:worker_threads';
import { platform } from '../backend/index.js';
import { HostError, OptionError } from '../errors.js';
import { DIST } from '../paths.js';
import { REGISTRY } from '../registry.js';
import { hostBroker, type HostRequest } from './broker.js';
import { vmGrants } from './grants.js';
import { launch, workerInput } from './launch.js';
import { checkOptions, type UnikernelOptions } from './options.js';
import type { WorkerBoot, WorkerJob, WorkerMessage } from './shared.js';
import type { Unikernel } from './types.js';
import { stoppedBeforeStart } from './unstarted.js';

export interface PoolOptions {
  /** Workers kept booted and idle (default: the number of CPUs, at most 4; 0 keeps none). */
  size?: number;
  /**
   * VMs one worker thread runs at once (default 1; at most 64). Above 1 a
   * worker schedules its VMs cooperatively (library/scheduler.ts): a POLL
   * waits in the worker's event loop instead of blocking the thread, and a
   * guest that computes is preempted after a 5 ms slice. A worker costs
   * ~8 MiB however many VMs it runs, so this is how idle VMs get cheap;
   * the price is that VMs of one worker share one thread (and one CPU).
   */
  vmsPerWorker?: number;
  /** V8 heap limits of each worker (default: WORKER_LIMITS). */
  resourceLimits?: ResourceLimits;
}

export interface PoolCounts {
  /** Booted, waiting for a VM. */
  idle: number;
  booting: number;
  /** Running a VM, or ending after one. */
  running: number;
  /** Workers this pool has started since it was created. */
  started: number;
}

export interface Pool {
  /** As startUnikernel, on one of this pool's workers. */
  start(options: UnikernelOptions): Promise<Unikernel>;
  /** Resolves once `size` workers are booted and idle (at once if they are, or the pool is closed). */
  warm(): Promise<void>;
  /** Stops every VM of the pool, ends its workers; resolves once all of them are gone. Later starts reject. */
  close(): Promise<void>;
  readonly size: number;
  counts(): PoolCounts;
}

/**
 * Heap limits of a VM worker. Its JavaScript is small (exit handlers,
 * console chunks on their way out; guest memory is outside the heap), and a
 * 32 MiB old-generation ceiling makes V8 keep an idle worker's heap ~0.85
 * MiB smaller (measured at 32 idle VMs: 9.66 → 8.78 MiB each; 16 or 24 MiB
 * gain no more; the young generation's and the stack's limits gain nothing).
 * A worker that outgrew it would end its VM with reason 'error', not the
 * process.
 */
export const WORKER_LIMITS: ResourceLimits = { maxOldGenerationSizeMb: 32 };

/** How long a retired worker may take to end by itself before it is terminated. */
const RETIRE_TIMEOUT_MS = 2000;

/** How long a start that finds no worker waits for a busy one to come back before one boots for it. */
const BOOT_GRACE_MS = 20;

/** How long a new VM runs before its worker's replacement starts booting (see start()). */
const REFILL_DELAY_MS = 50;

/** The worker's code: the bundle of monitor/library/worker.ts (scripts/bundle.mjs). */
const WORKER = join(DIST, 'bundles', 'library-worker.mjs');

/**
 * What a VM needs of its worker: 'confined' (sandboxed, built on a confined
 * thread), 'open' (sandbox: false), 'exclusive' (its options need an
 * unconfined build: gdb, dumpcore, the net ring; it runs alone, and a
 * sandboxed one ends its worker).
 */
type VmClass = 'confined' | 'open' | 'exclusive';

/** One worker of the pool, with its end of the channel for host calls (broker.ts). */
interface Slot {
  readonly worker: Worker;
  readonly replies: MessagePort;
  readonly replied: Int32Array;
  /** Its thread is confined (worker.ts): it builds only VMs with confinedBuild. */
  confined: boolean;
  /** VMs it runs now. */
  load: number;
  /** The class of the VMs it runs (null while it runs none): a worker never mixes them. */
  kind: VmClass | null;
}

/** A worker's preemption lane is one of 64 per process (native/vcpu_lanes_linux.cc). */
const MAX_VMS_PER_WORKER = 64;

export function createPool(options: PoolOptions = {}): Pool {
  const size = options.size ?? Math.min(4, availableParallelism());
  if (!Number.isInteger(size) || size < 0) throw new OptionError('pool size must be a non-negative integer');
  const capacity = options.vmsPerWorker ?? 1;
  if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_VMS_PER_WORKER) {
    throw new OptionError(`vmsPerWorker must be an integer from 1 to ${MAX_VMS_PER_WORKER}`);
  }
  const modules = REGISTRY.map((d) => ({ name: d.name, serves: [...d.serves], always: d.always === true }));
  const limits = options.resourceLimits ?? WORKER_LIMITS;

  const all = new Set<Worker>();
  /** Workers told to end (retire), not yet gone. */
  const ending = new Set<Worker>();
  const idle: Slot[] = [];
  /** Workers running VMs that can take one more (vmsPerWorker > 1). */
  const partial = new Set<Slot>();
  /** Workers running VMs that will come back (not an exclusive sandboxed VM's, which ends its worker). */
  const returning = new Set<Slot>();
  /** Starts waiting for a worker that suits their class. */
  const waiters: { cls: VmClass; comesBack: boolean; since: number; take: (s: Slot) => void; fail: (e: Error) => void }[] = [];
  const stoppers = new Set<() => void>();
  let booting = 0;
  let startedWorkers = 0;
  let closed = false;
  /** After a worker failed to boot, boot only for starts that wait (no loop of failures in the background). */
  let bootFailed = false;
  let warmWaiters: (() => void)[] = [];
  /** Boots for the starts whose grace is over (acquire). */
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  let goneWaiters: (() => void)[] = [];

  const checkWarm = () => {
    if (closed || idle.length >= size) for (const w of warmWaiters.splice(0)) w();
  };
  const checkGone = () => {
    if (all.size === 0) for (const w of goneWaiters.splice(0)) w();
  };

  /**
   * Ends a worker that is not running a VM: it closes what it holds for its
   * whole life (/dev/kvm) and lets its thread end. terminate() would leave
   * that descriptor open; it is only the fallback for a worker that does not
   * end by itself.
   */
  const retire = (slot: Slot) => {
    const w = slot.worker;
    if (ending.has(w)) return;
    ending.add(w);
    // Until it is gone the process waits for it, as it would for terminate():
    // close() resolves only then.
    w.ref();
    try {
      w.postMessage({ type: 'end' } satisfies WorkerJob);
    } catch {
      // Its port is gone: terminate below.
    }
    const t = setTimeout(() => void w.terminate(), RETIRE_TIMEOUT_MS);
    t.unref();
    w.once('exit', () => clearTimeout(t));
  };

  /** Whether `slot` can run one more VM of class `cls` now. */
  const suits = (slot: Slot, cls: VmClass): boolean => {
    if (slot.load >= capacity || slot.kind === 'exclusive') return false;
    switch (cls) {
      case 'exclusive':
        return slot.load === 0 && !slot.confined;
      case 'confined':
        return slot.load === 0 || slot.kind === 'confined';
      case 'open':
        return !slot.confined && (slot.load === 0 || slot.kind === 'open');
    }
  };

  /** Counts a VM of class `cls` on `slot` (taken from idle or partial by the caller). */
  const take = (slot: Slot, cls: VmClass, comesBack: boolean) => {
    slot.load++;
    slot.kind = cls;
    // The worker confines itself as it takes this job (worker.ts); from now
    // on it is counted as confined, also if the build fails first.
    if (cls === 'confined') slot.confined = true;
    if (comesBack) returning.add(slot);
    if (slot.load < capacity && cls !== 'exclusive') partial.add(slot);
    else partial.delete(slot);
  };

  /**
   * Gives a booted worker, or one that just finished a VM, to the waiting
   * starts it suits; then keeps it idle (or running the VMs it has), or ends
   * it if the pool has enough idle ones.
   */
  const offer = (slot: Slot) => {
    const w = slot.worker;
    if (slot.load === 0) {
      slot.kind = null;
      partial.delete(slot);
      returning.delete(slot);
    }
    if (closed) {
      if (slot.load === 0) retire(slot);
      return;
    }
    for (let i = 0; i < waiters.length; ) {
      const x = waiters[i] as (typeof waiters)[number];
      if (!suits(slot, x.cls)) {
        i++;
        continue;
      }
      waiters.splice(i, 1);
      take(slot, x.cls, x.comesBack);
      x.take(slot);
    }
    if (slot.load > 0) {
      // Still running VMs: it takes more of their class up to vmsPerWorker.
      if (slot.load < capacity && slot.kind !== 'exclusive') partial.add(slot);
      return;
    }
    if (idle.length < size) {
      w.unref();
      idle.push(slot);
      checkWarm();
    } else {
      retire(slot);
    }
  };

  const spawn = () => {
    booting++;
    startedWorkers++;
    const { port1, port2 } = new MessageChannel();
    const replied = new SharedArrayBuffer(4);
    const boot: WorkerBoot = { modules, replies: port2, replied, vmsPerWorker: capacity };
    const w = new Worker(WORKER, {
      workerData: boot,
      transferList: [port2],
      // The worker runs only our code: the embedding program's node flags
      // (--input-type, -e …) are not for it and some make it fail.
      execArgv: [],
      resourceLimits: limits,
    });
    const slot: Slot = { worker: w, replies: port1, replied: new Int32Array(replied), confined: false, load: 0, kind: null };
    // Each VM it runs listens to it (launch.ts: message, error, exit), and the pool's own three.
    w.setMaxListeners(3 * capacity + 10);
    w.unref();
    all.add(w);
    let booted = false;
    const onBootMessage = (m: WorkerMessage) => {
      if (m.type !== 'idle' || booted) return;
      booted = true;
      booting--;
      bootFailed = false;
      w.off('message', onBootMessage);
      offer(slot);
    };
    w.on('message', onBootMessage);
    const onBootFailure = (e: Error) => {
      if (booted) return;
      booted = true;
      booting--;
      bootFailed = true;
      waiters.shift()?.fail(new HostError(`the VM worker failed to start: ${e.message}`, { cause: e }));
    };
    w.on('error', onBootFailure);
    w.on('exit', (code) => {
      onBootFailure(new Error(`it exited with code ${code}`));
      all.delete(w);
      ending.delete(w);
      slot.replies.close();
      const i = idle.indexOf(slot);
      if (i >= 0) idle.splice(i, 1);
      partial.delete(slot);
      returning.delete(slot);
      checkGone();
      refill();
    });
  };

  /**
   * Boots workers until the starts waiting have enough booting for them
   * (they take the first to boot), and those idle, booting or coming back
   * cover `size`.
   */
  const refill = () => {
    if (closed) return;
    const warmth = bootFailed ? 0 : size;
    // Workers the waiting starts need: one per exclusive VM, and for the
    // others one per vmsPerWorker of a class (a worker never mixes them).
    // While busy workers may come back, a start waits BOOT_GRACE_MS for one
    // before a worker boots for it (acquire).
    const now = performance.now();
    const due = (x: (typeof waiters)[number]) => returning.size === 0 || now - x.since >= BOOT_GRACE_MS;
    const of = (cls: VmClass) => waiters.filter((x) => x.cls === cls && due(x)).length;
    const needed = of('exclusive') + Math.ceil(of('confined') / capacity) + Math.ceil(of('open') / capacity);
    while (booting < needed || idle.length + booting + returning.size < warmth) spawn();
  };

  /** A worker for one VM of class `cls`, counted on it (take) as it is chosen. */
  const acquire = (cls: VmClass, comesBack: boolean): Promise<Slot> => {
    // The replacement of an idle worker taken here boots once this start is
    // over (start() refills): booting it now would compete for the CPU with
    // the very VM being built. A confined build takes a confined worker
    // first, leaving the others for VMs that need them. With several VMs
    // per worker, idle workers are used first (VMs spread over the CPUs),
    // then the least loaded that suits (they stack up to vmsPerWorker).
    const last = (ok: (s: Slot) => boolean) => {
      for (let j = idle.length - 1; j >= 0; j--) if (ok(idle[j] as Slot)) return j;
      return -1;
    };
    let i = cls === 'confined' ? last((s) => s.confined) : -1;
    if (i < 0) i = last((s) => suits(s, cls));
    let chosen: Slot | null = i >= 0 ? (idle.splice(i, 1)[0] as Slot) : null;
    if (!chosen) for (const s of partial) if (suits(s, cls) && (!chosen || s.load < chosen.load)) chosen = s;
    if (chosen) {
      take(chosen, cls, comesBack);
      return Promise.resolve(chosen);
    }
    return new Promise<Slot>((resolve, fail) => {
      waiters.push({ cls, comesBack, since: performance.now(), take: resolve, fail });
      // A worker that runs a VM may come back within a few milliseconds (a
      // short VM), and a boot costs ~60 ms of CPU that the running VMs
      // would share: while some will come back, boot for this start only if
      // none has within BOOT_GRACE_MS. With none to come back, boot now.
      refill();
      if (returning.size > 0) {
        clearTimeout(graceTimer);
        graceTimer = setTimeout(refill, BOOT_GRACE_MS);
        graceTimer.unref();
      }
    });
  };

  const pool: Pool = {
    size,
    async start(opts) {
      const given = checkOptions(opts, REGISTRY);
      if (closed) throw new HostError('the pool is closed');
      if (opts.signal?.aborted) return stoppedBeforeStart(opts.console === 'iterable');
      const grants = vmGrants(opts.kernel, given, REGISTRY);
      const input = workerInput(opts, given, grants === 'unconfined');
      const cls: VmClass = grants === 'unconfined' ? 'exclusive' : input.confinedBuild ? 'confined' : 'open';
      // An exclusive sandboxed VM confines its worker with its own filter: that worker ends after it.
      const comesBack = !input.sandbox || cls !== 'exclusive';
      const slot = await acquire(cls, comesBack);
      const worker = slot.worker;
      if (opts.signal?.aborted) {
        // Aborted while waiting for a worker: it runs nothing of this VM, give its place back.
        slot.load--;
        offer(slot);
        return stoppedBeforeStart(opts.console === 'iterable');
      }
      worker.ref();
      // A VM built unconfined asks nothing; if it did, empty grants refuse it all.
      const serve = hostBroker(platform().host, grants === 'unconfined' ? {} : grants);
      const answer = (request: HostRequest) => {
        slot.replies.postMessage(serve(request));
        Atomics.store(slot.replied, 0, 1);
        Atomics.notify(slot.replied, 0);
      };
      let vm: Unikernel | null = null;
      const stopper = () => vm?.stop();
      stoppers.add(stopper);
      // The replacement boots once this VM has ended, or has run for
      // REFILL_DELAY_MS: a short VM (a function call, a test) then never
      // shares the CPU with a booting worker; a long one gets its
      // replacement in the pool soon after it started.
      let refilled = false;
      const refillOnce = () => {
        if (refilled) return;
        refilled = true;
        clearTimeout(delay);
        refill();
      };
      const delay = setTimeout(refillOnce, REFILL_DELAY_MS);
      delay.unref();
      try {
        vm = await launch(worker, input, opts, answer, (reusable) => {
          stoppers.delete(stopper);
          slot.load--;
          if (reusable === true) offer(slot);
          else returning.delete(slot);
          // false: its thread is confined and it ends itself; null: it is gone. Its exit refills too.
          refillOnce();
        });
      } catch (e) {
        refillOnce();
        throw e;
      }
      // close() came while the VM was being built.
      if (closed) vm.stop();
      return vm;
    },
    warm() {
      return new Promise<void>((r) => {
        warmWaiters.push(r);
        checkWarm();
      });
    },
    close() {
      if (!closed) {
        closed = true;
        for (const w of waiters.splice(0)) w.fail(new HostError('the pool is closed'));
        for (const s of idle.splice(0)) retire(s);
        for (const s of stoppers) s();
        checkWarm();
        warmWaiters = [];
      }
      return new Promise<void>((r) => {
        goneWaiters.push(r);
        checkGone();
      });
    },
    counts: () => ({ idle: idle.length, booting, running: all.size - idle.length - booting - ending.size, started: startedWorkers }),
  };
  // Booting starts now: the first start should find a worker ready.
  refill();
  return pool;
}

let defaultPool: Pool | null = null;

/** The pool startUnikernel uses, created on first use. */
export function sharedPool(): Pool {
  defaultPool ??= createPool();
  return defaultPool;
}
