// The VMs this thread's FreeBSD platform has created and not yet destroyed:
// their names, descriptors and reaper descriptors. A vmm VM is a named
// kernel object that outlives its descriptors, so something must destroy
// it on every way out (§18 step 1): Machine.close(), a failure while
// building (backend.ts), the process exiting without close() (the CLI
// returns its status and exits: the 'exit' hook below), and, when this
// process can no longer call sysctl (Capsicum's capability mode) or is
// killed, the reaper process, which destroys the VM once its descriptor
// closes. The Capsicum sandbox (sandbox.ts) limits the descriptors listed
// here: the VM's own, and its net ring kick pipes (kick.ts), which the ring
// closes itself.
import type { FreebsdNativeBinding } from '../../../native/binding/vmm.js';

/** The two ends of a ring kick pipe (kick.ts), while open. */
export interface KickPipe {
  readonly read: number;
  readonly write: number;
  /** cap_rights_limit applied to both ends. */
  limited: boolean;
}

export interface VmEntry {
  readonly name: string;
  /** /dev/vmm/NAME, once open (−1 before). */
  fd: number;
  /** The reaper's pipe (−1 before it is started). */
  reaperFd: number;
  /** cap_rights_limit / cap_ioctls_limit applied. */
  limited: boolean;
  /** Ring kick pipes made for this VM and not yet closed. */
  readonly kicks: KickPipe[];
}

type Calls = Pick<FreebsdNativeBinding, 'vmmDestroy' | 'closeFd'>;

export class VmRegistry {
  private readonly live = new Map<string, VmEntry>();
  private hooked = false;

  constructor(
    private readonly b: Calls,
    /** Where to hang the process-exit hook (tests pass a fake). */
    private readonly onExit: (fn: () => void) => void = (fn) => process.once('exit', fn),
  ) {}

  add(name: string): VmEntry {
    const entry: VmEntry = { name, fd: -1, reaperFd: -1, limited: false, kicks: [] };
    this.live.set(name, entry);
    if (!this.hooked) {
      this.hooked = true;
      this.onExit(() => this.destroyAll());
    }
    return entry;
  }

  /** Live VM descriptors (for the sandbox). */
  entries(): readonly VmEntry[] {
    return [...this.live.values()];
  }

  /**
   * Closes the VM descriptor, destroys the VM (a failure — e.g. ECAPMODE in
   * capability mode — leaves it to the reaper) and closes the reaper's pipe,
   * which makes the reaper try once more and end. Does nothing for a VM
   * already destroyed.
   */
  destroy(name: string): void {
    const vm = this.live.get(name);
    if (!vm) return;
    this.live.delete(name);
    if (vm.fd >= 0) ignore(() => this.b.closeFd(vm.fd));
    ignore(() => this.b.vmmDestroy(name));
    if (vm.reaperFd >= 0) ignore(() => this.b.closeFd(vm.reaperFd));
  }

  destroyAll(): void {
    for (const name of [...this.live.keys()]) this.destroy(name);
  }
}

function ignore(fn: () => void): void {
  try {
    fn();
  } catch {
    // Best effort: the reaper covers what fails here.
  }
}
