// The net ring's I/O thread (docs/abi.md §13.1, §13.4): a worker thread of
// its own that serves the ring with RingConsumer over guest memory shared
// with the vCPU's thread (a SharedArrayBuffer over the same pages). ring.ts
// starts it during set-up and waits until it says RUNNING; from then on it
// loops until told to stop. Its only blocking wait is read(2) on the kick
// descriptor (Linux: the eventfd KVM_IOEVENTFD signals on the guest's OUT to
// port 0x600; FreeBSD vmm: a pipe's read end, written by the vCPU loop); a
// stop request writes it too, so the thread ends wherever it waits.
// A fatal error is stored in the control area and the vCPU is stopped, so
// the vCPU's thread reports it and the run ends with status 1.
import { performance } from 'node:perf_hooks';
import { workerData } from 'node:worker_threads';
import type { VcpuHandle } from '../../monitor/backend/backend.js';
import { platform } from '../../monitor/backend/index.js';
import { errorRecord } from '../../monitor/errors.js';
import { GuestMemory, type SharedGuestMemory } from '../../monitor/vm/memory.js';
import { Confine, controlOf, Ctl, putError, State } from './ring-control.js';
import { RingConsumer } from './ring-consumer.js';

export interface RingWorkerInput {
  memory: SharedGuestMemory;
  gpa: number;
  /** [manifest index, tap descriptor] pairs. */
  taps: [number, number][];
  /** Where the thread sleeps (PortEvents' KickDescriptors.wait)… */
  kickFd: number;
  /** …reading this many bytes at once (an eventfd's counter; a pipe's queued kicks, drained together). */
  kickReadSize: number;
  control: SharedArrayBuffer;
  counters: SharedArrayBuffer;
  countersOffset: number;
  countersLength: number;
  vcpu: VcpuHandle;
  spinIterations: number;
  spinMs: number;
}

const input = workerData as RingWorkerInput;
const control = controlOf(input.control);
const w = control.words;

function main(): void {
  const plat = platform();
  const host = plat.host;
  const mem = GuestMemory.fromShared(input.memory);
  const kick = new Uint8Array(input.kickReadSize);
  const stopping = () => Atomics.load(w, Ctl.STOP) !== 0;
  const consumer = new RingConsumer(
    mem,
    {
      gpa: input.gpa,
      taps: new Map(input.taps),
      counters: new Float64Array(input.counters, input.countersOffset, input.countersLength),
      spinIterations: input.spinIterations,
      spinMs: input.spinMs,
    },
    {
      write: (fd, bytes) => host.write(fd, bytes),
      read: (fd, bytes) => host.read(fd, bytes),
      // −2 (a signal) just comes back round the loop; an error or EOF ends the thread (§13.4 host rule 2).
      sleep: () => host.read(input.kickFd, kick) !== -1,
      pause: (ms) => void Atomics.wait(w, Ctl.WAKE, Atomics.load(w, Ctl.WAKE), ms),
      now: () => performance.now(),
    },
    {
      stopping,
      serve() {
        // A library VM's thread confines only itself: this thread follows (monitor/sandbox/).
        if (Atomics.load(w, Ctl.CONFINE) !== Confine.REQUESTED) return;
        try {
          plat.sandbox.enter('thread');
          Atomics.store(w, Ctl.CONFINE, Confine.DONE);
        } catch (e) {
          putError(control, errorRecord(e));
          Atomics.store(w, Ctl.CONFINE, Confine.REFUSED);
        }
        Atomics.notify(w, Ctl.CONFINE);
      },
    },
  );
  Atomics.store(w, Ctl.STATE, State.RUNNING);
  Atomics.notify(w, Ctl.STATE);
  try {
    consumer.run();
  } catch (e) {
    // §13.4 rule 5: the run ends with status 1 and this message.
    putError(control, errorRecord(e));
    plat.stop(input.vcpu);
  }
}

try {
  main();
} catch (e) {
  if (Atomics.load(w, Ctl.STATE) === State.STARTING) {
    putError(control, errorRecord(e));
    Atomics.store(w, Ctl.STATE, State.FAILED);
    Atomics.notify(w, Ctl.STATE);
  }
} finally {
  if (Atomics.load(w, Ctl.STATE) === State.RUNNING) {
    Atomics.store(w, Ctl.STATE, State.STOPPED);
    Atomics.notify(w, Ctl.STATE);
  }
}
