// The net ring's kick on FreeBSD vmm (docs/abi.md §18): vmm has no
// ioeventfd, so every 32-bit OUT to port 0x600 is a real VM exit. The
// machine's PortEvents hands the ring a pipe: the ring's thread sleeps in a
// blocking read(2) of the read end, and the vCPU loop (backend.ts) writes
// one byte to the write end (non-blocking: a full pipe already holds a
// pending wake-up) whenever this port is bound. Unbound — no ring, or the
// ring stopped — the kick is ignored, as §18 says. The ends are listed in
// the VM's registry entry so the Capsicum sandbox can limit them (vms.ts,
// sandbox.ts), and closed exactly once, the write end only after the vCPU
// loop has let go of it (a write to a pipe without reader raises SIGPIPE,
// which the CLI leaves at its default action).
import type { FreebsdNativeBinding } from '../../../native/binding/vmm.js';
import { HostError } from '../../errors.js';
import type { KickDescriptors, PortEvents } from '../backend.js';
import { RING_KICK_PORT } from './exits.js';
import type { KickPipe, VmEntry } from './vms.js';

/**
 * How many queued kicks one read of the read end takes: it drains a burst
 * at once (only a guest kicking without needs_kick makes one), and a
 * leftover costs one extra wake-up, never a lost kick.
 */
export const KICK_READ_BYTES = 256;

/** The byte the vCPU loop writes per kick, and a wake-up (stop, confinement request). */
export const KICK_BYTE = new Uint8Array([1]);

type Calls = Pick<FreebsdNativeBinding, 'kickPipe' | 'closeFd'>;

export class VmmKickPort implements PortEvents {
  readonly available = true;
  readonly steps = { create: 'pipe()', attach: 'binding the ring kick port' };
  /** The write end the vCPU loop writes on a kick; −1 while no kick is bound (the OUT is then ignored). */
  fd = -1;
  /** The pipes made and not yet closed, by their descriptors. */
  private readonly open = new Map<KickDescriptors, KickPipe>();

  constructor(
    private readonly b: Calls,
    private readonly vm: VmEntry,
  ) {}

  createKick(): KickDescriptors {
    const [read, write] = this.b.kickPipe();
    const kick: KickDescriptors = { wait: read, signal: write, readSize: KICK_READ_BYTES, wakeBytes: KICK_BYTE };
    const pipe: KickPipe = { read, write, limited: false };
    this.open.set(kick, pipe);
    this.vm.kicks.push(pipe);
    return kick;
  }

  attach(port: number, kick: KickDescriptors): void {
    // The vCPU loop recognises one kick port only (exits.ts isRingKick).
    if (port !== RING_KICK_PORT) throw new HostError(`vmm: port 0x${port.toString(16)} cannot kick (only 0x600 can)`);
    if (!this.open.has(kick)) throw new HostError('vmm: this ring kick is closed');
    this.fd = kick.signal;
  }

  detach(_port: number, kick: KickDescriptors): void {
    if (this.fd === kick.signal && this.open.has(kick)) this.fd = -1;
  }

  closeKick(kick: KickDescriptors): void {
    const pipe = this.open.get(kick);
    if (!pipe) return;
    this.open.delete(kick);
    const i = this.vm.kicks.indexOf(pipe);
    if (i >= 0) this.vm.kicks.splice(i, 1);
    // Let go of the write end first: from here on a kick is ignored.
    if (this.fd === kick.signal) this.fd = -1;
    closeQuietly(this.b, pipe.write);
    closeQuietly(this.b, pipe.read);
  }

  /** The machine is closing: no kick is written any more (the ring closes its own pipe). */
  unbind(): void {
    this.fd = -1;
  }
}

function closeQuietly(b: Calls, fd: number): void {
  try {
    b.closeFd(fd);
  } catch {
    // close(2) releases the descriptor even when it reports an error.
  }
}
