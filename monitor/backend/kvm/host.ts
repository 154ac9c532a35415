// The host side of the core's clock and POLL: CLOCK_REALTIME, and an epoll
// wait set holding the vCPU's wake descriptor (signals, stop requests) and
// every device descriptor modules registered, created at the first POLL.
import type { NativeBinding } from '../../../native/binding.js';
import type { CoreHost } from '../../vm/core.js';
import type { RunControl } from '../../module.js';

export class PollHost implements CoreHost, RunControl {
  private epfd = -1;
  private readonly keys = new Int32Array(64);

  constructor(
    private readonly binding: NativeBinding,
    private readonly vcpu: { wakeFd: number; token: number },
    /** The descriptors modules registered (read at the first POLL). */
    private readonly devices: () => readonly { fd: number; handle: number }[],
    private readonly spinNs: number,
  ) {}

  realtimeInto(bytes: Uint8Array, offset: number): void {
    this.binding.realtimeInto(bytes, offset);
  }

  wait(timeoutNs: number): readonly number[] | null {
    const b = this.binding;
    const devices = this.devices();
    if (this.epfd < 0) {
      this.epfd = b.waitsetCreate();
      b.waitsetAdd(this.epfd, this.vcpu.wakeFd, -1);
      for (const d of devices) b.waitsetAdd(this.epfd, d.fd, d.handle);
    }
    // Spinning only helps when a device may become ready.
    const spin = devices.length ? this.spinNs : 0;
    const start = performance.now();
    let n = b.waitsetWait(this.epfd, timeoutNs, this.keys, spin);
    // A signal that is not ours to act on (SIGWINCH, …) restarts the wait (§10.3).
    while (n < 0 && b.pendingSignal() === 0 && !b.stopRequested(this.vcpu.token)) {
      const left = timeoutNs - (performance.now() - start) * 1e6;
      n = left > 0 ? b.waitsetWait(this.epfd, left, this.keys, 0) : 0;
    }
    return n < 0 ? null : Array.from(this.keys.subarray(0, n));
  }

  ending(): boolean {
    return this.binding.pendingSignal() !== 0 || this.binding.stopRequested(this.vcpu.token);
  }

  waitWritable(fd: number, timeoutMs: number): boolean {
    // The wake descriptor is written by the same code that records a signal
    // or stop, so one that lands at any moment ends this wait.
    for (;;) {
      if (this.ending()) return false;
      const r = this.binding.waitWritable(fd, this.vcpu.wakeFd, timeoutMs);
      if (r >= 0) return !this.ending();
      // −1 woken, −2 a signal: ours ends the wait above; others restart it.
      if (r === -1 && !this.ending()) return true;
    }
  }

  close(): void {
    if (this.epfd >= 0) this.binding.closeFd(this.epfd);
    this.epfd = -1;
  }
}
