// Offering the net ring (docs/abi.md §13.5, §13.6, §18), on the vCPU's
// thread: the kick's descriptors and their binding to port 0x600 (Linux: an
// eventfd and KVM_IOEVENTFD; FreeBSD vmm: a pipe the vCPU loop writes —
// PortEvents hides which), then the I/O thread (ring-worker.ts), started and
// seen RUNNING during set-up, before the sandbox and the first KVM_RUN. Each
// step that fails prints its warning and falls back to the hypercalls (which
// stay registered either way); only when all succeed does boot info
// advertise the ring. The thread is stopped and
// joined at HALT, when the VM is closed, and as the process exits (a SIGTERM
// ends the CLI with process.exit, which would otherwise wait for a thread
// asleep in read(2) forever).
import type { Worker } from 'node:worker_threads';
import { RING_KICK_PORT, Ring } from '../../monitor/abi/constants.js';
import type { KickDescriptors, SandboxScope } from '../../monitor/backend/backend.js';
import type { HostIo } from '../../monitor/backend/host.js';
import { describeSystemError, HostError, reviveError, type TenderError } from '../../monitor/errors.js';
import type { SetupContext } from '../../monitor/module.js';
import { startWorker } from '../../monitor/workers.js';
import { Confine, Ctl, newControl, State, takeError } from './ring-control.js';
import type { RingWorkerInput } from './ring-worker.js';

/** `--net-ring=` / netRing: offer the ring, or leave the guest the hypercalls only. */
export type RingMode = 'on' | 'off';
/**
 * Off, from the measurement (README, Numbers): on this PVM host guest code
 * is emulated, and the guest's side of the ring (copying each frame into
 * its slot buffer, spinning for each read's commit) costs more than the VM
 * exits it saves; the hypercalls are faster. The reference offers the ring
 * by default; where guest code runs natively, --net-ring=on is worth trying.
 */
export const DEFAULT_RING_MODE: RingMode = 'off';

/** How long the I/O thread spins after its last entry before it sleeps (see README, Numbers). */
export const RING_SPIN_MS = 0.2;
/** §13.3: the reference's spin count; the thread spins at least this often. */
export const RING_SPIN_ITERATIONS = 4096;
/** A worker thread starts in tens of ms; a loaded machine may take far longer. */
const START_TIMEOUT_MS = 30_000;
/** Joining a thread that is told to stop: it answers within one entry (a full tap is waited out in 1 ms steps). */
const JOIN_TIMEOUT_MS = 10_000;

export interface RingHandle {
  /** §13.6: stop the thread, wake it, wait for it, close the kick's descriptors. Idempotent. */
  stop(): void;
  /** Module.sandboxed: a thread-scoped VM confines the ring's thread too. */
  sandboxed(scope: SandboxScope | null): void;
}

/** The UKVM_RING_SPIN_US environment variable (bench: spin lengths side by side), else RING_SPIN_MS. */
function spinMs(): number {
  const v = process.env['UKVM_RING_SPIN_US'];
  return v !== undefined && /^[0-9]{1,7}$/.test(v) ? Number(v) / 1000 : RING_SPIN_MS;
}

/**
 * Sets up ring I/O for the attached devices; null (after at most one
 * warning) when the ring cannot be offered and the guest keeps hypercalls.
 */
export function startRing(ctx: SetupContext, taps: ReadonlyMap<number, number>, host: HostIo): RingHandle | null {
  const ports = ctx.portEvents;
  // §13.5: without ioeventfd there is no ring and no message.
  if (!ports.available) return null;
  let kick: KickDescriptors;
  try {
    kick = ports.createKick();
  } catch (e) {
    ctx.warn(`${ports.steps.create} failed, falling back to hypercalls: ${describeSystemError(e)}`);
    return null;
  }
  try {
    ports.attach(RING_KICK_PORT, kick);
  } catch (e) {
    ports.closeKick(kick);
    ctx.warn(`${ports.steps.attach} failed, falling back to hypercalls: ${describeSystemError(e)}`);
    return null;
  }
  const control = newControl();
  const w = control.words;
  let worker: Worker | undefined;
  const giveUp = (why: string): null => {
    void worker?.terminate();
    ports.detach(RING_KICK_PORT, kick);
    ports.closeKick(kick);
    ctx.warn(`could not start the net ring thread (${why}), falling back to hypercalls`);
    return null;
  };
  try {
    const counters = ctx.ringCounters;
    const input: RingWorkerInput = {
      memory: ctx.memory.share(),
      gpa: ctx.memSize,
      taps: [...taps],
      kickFd: kick.wait,
      kickReadSize: kick.readSize,
      control: control.buffer,
      counters: counters.buffer as SharedArrayBuffer,
      countersOffset: counters.byteOffset,
      countersLength: counters.length,
      vcpu: ctx.vcpu,
      spinIterations: RING_SPIN_ITERATIONS,
      spinMs: spinMs(),
    };
    // execArgv: [] — the thread runs only our code, whatever flags started this process.
    // From dist/, or from the source the self-contained executable carries (monitor/workers.ts).
    worker = startWorker('modules/net/ring-worker.js', { workerData: input, execArgv: [], stdout: false, stderr: false });
    worker.unref();
  } catch (e) {
    return giveUp(describeSystemError(e));
  }
  // The worker starts on its own thread; this one need not turn its event loop meanwhile.
  Atomics.wait(w, Ctl.STATE, State.STARTING, START_TIMEOUT_MS);
  const state = Atomics.load(w, Ctl.STATE);
  if (state !== State.RUNNING) return giveUp(state === State.FAILED ? (takeError(control)?.message ?? 'it failed') : 'it did not start in time');

  let stopped = false;
  const wake = () => {
    // The kick wakes the thread in read(2) (a full pipe: it is awake already); WAKE wakes it in a pause (full tap).
    host.write(kick.signal, kick.wakeBytes);
    Atomics.add(w, Ctl.WAKE, 1);
    Atomics.notify(w, Ctl.WAKE);
  };
  /** The error that ended the ring thread, if one did. */
  const failure = (): TenderError | null => {
    const r = takeError(control);
    return r ? reviveError(r) : null;
  };
  const onExit = () => stop();
  const stop = () => {
    if (stopped) return;
    stopped = true;
    process.off('exit', onExit);
    Atomics.store(w, Ctl.STOP, 1);
    wake();
    Atomics.wait(w, Ctl.STATE, State.RUNNING, JOIN_TIMEOUT_MS);
    // A thread that still runs (it cannot, short of a bug) keeps the descriptor it may be reading.
    if (Atomics.load(w, Ctl.STATE) !== State.RUNNING) ports.closeKick(kick);
  };
  process.on('exit', onExit);

  // §13.6, and rule 5 of §13.4: an error of the ring thread ends the run.
  ctx.onHalt(() => {
    stop();
    const e = failure();
    if (e) throw e;
  });
  // The ring thread stops the vCPU after a fatal error; the run then ends with that error.
  ctx.onVmexit((exit) => {
    // The error is stored before the vCPU is stopped, so it is there to see.
    if (exit.kind !== 'interrupted' || exit.signal !== 0) return false;
    const e = failure();
    if (e) {
      stop();
      throw e;
    }
    return false;
  });
  ctx.bootInfo.hostFeatures |= Ring.FEATURE_RING_IO;
  ctx.bootInfo.netRing = ctx.memSize;
  return {
    stop,
    sandboxed(scope) {
      if (scope !== 'thread' || stopped) return;
      Atomics.store(w, Ctl.CONFINE, Confine.REQUESTED);
      wake();
      Atomics.wait(w, Ctl.CONFINE, Confine.REQUESTED, START_TIMEOUT_MS);
      const c = Atomics.load(w, Ctl.CONFINE);
      if (c === Confine.DONE) return;
      const e = failure() ?? new HostError('could not confine the net ring thread: it did not answer');
      stop();
      throw e;
    },
  };
}
