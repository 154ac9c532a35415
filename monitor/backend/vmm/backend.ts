// FreeBSD vmm(4) backend (docs/abi.md §18): the VM as a named kernel object
// (hw.vmm.create, /dev/vmm/NAME), guest RAM as memory segment 0 mapped at
// GPA 0 and into this process, the boot state written register by register
// (registers.ts), the VM_RUN loop for FreeBSD 13 and 14, and hw.vmm.destroy
// on every way out: close(), a failure while building, the process exiting
// (vms.ts), and — for SIGKILL or capability mode — the reaper process the
// addon starts right after the VM exists. Exits are decoded in exits.ts; the
// net ring's kick (a pipe written on each OUT to 0x600) is kick.ts.
import {
  type FreebsdNativeBinding,
  type RunAbi,
  VM_CAP_HALT_EXIT,
  VMM_EXIT,
  VMM_REG,
  VMM_RUN_INTERRUPTED,
} from '../../../native/binding/vmm.js';
import { isNativeError } from '../../../native/binding/host.js';
import { initialGeneralRegisters, initialSpecialRegisters } from '../../arch/x86_64.js';
import { GuestError, HostError, withErrno } from '../../errors.js';
import type { Backend, BootState, FatalExit, Machine, RunControl, Vcpu, VcpuExit, VcpuHandle, WaitSet } from '../backend.js';
import type { DebugVcpu } from '../debug.js';
import { VmmDebug } from './debug.js';
import { decodeVmExit, describeVmmFatal, ioExit, isRingKick, otherExit, vmxLines, type VmmExit } from './exits.js';
import { KICK_BYTE, VmmKickPort } from './kick.js';
import { generalRegisterOps, specialRegisterOps, type VmmStateOp } from './registers.js';
import type { VmEntry, VmRegistry } from './vms.js';
import { HostRunControl, HostWaitSet } from '../wait-set.js';

/** The first FreeBSD whose VM_RUN takes a pointer to a caller-owned exit (kern.osreldate of 14.0). */
export const FREEBSD_14_OSRELDATE = 1400000;

/** Guest RAM is memory segment 0, mapped read/write/execute at GPA 0 (§18 steps 4–5). */
const SEGMENT = 0;
const PROT_RWX = 7;
const VCPU = 0;

/** Runs one native call; a failure becomes "WHAT: strerror" (the reference's err(1, WHAT)). */
function call<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new HostError(withErrno(what, e), { cause: e });
  }
}

/** Which VM_RUN this kernel takes. */
export function runAbiOf(osreldate: number): RunAbi {
  return osreldate >= FREEBSD_14_OSRELDATE ? 14 : 13;
}

/** The VM name: solo5-PID (what Albatross looks for), then solo5-PID-N for further VMs of the same process. */
export function vmName(pid: number, sequence: number): string {
  return sequence === 0 ? `solo5-${pid}` : `solo5-${pid}-${sequence}`;
}

export class VmmBackend implements Backend {
  private readonly runAbi: RunAbi;

  constructor(
    private readonly b: FreebsdNativeBinding,
    private readonly vms: VmRegistry,
  ) {
    this.runAbi = runAbiOf(call('sysctl(kern.osreldate)', () => b.osReleaseDate()));
  }

  createMachine(allocSize: number): Machine {
    const b = this.b;
    const name = vmName(process.pid, b.nextVmSequence());
    try {
      b.vmmCreate(name);
    } catch (e) {
      const hint = isNativeError(e) && e.code === 'ENOENT' ? ' (is vmm(4) loaded? kldload vmm)' : '';
      throw new HostError(`${withErrno(`Cannot create VM '${name}'`, e)}${hint}`, { cause: e });
    }
    const vm = this.vms.add(name);
    try {
      // First, so that from here on even a SIGKILL leaves no VM behind.
      vm.reaperFd = call('Cannot start the VM reaper', () => b.vmmReaper(name));
      const fd = call(`open(/dev/vmm/${name})`, () => b.vmmOpen(name));
      vm.fd = fd;
      call('set VM_CAP_HALT_EXIT', () => b.vmSetCapability(fd, VCPU, VM_CAP_HALT_EXIT, 1));
      call('VM_ALLOC_MEMSEG', () => b.vmAllocMemseg(fd, SEGMENT, allocSize));
      call('VM_MMAP_MEMSEG', () => b.vmMmapMemseg(fd, 0, SEGMENT, 0, allocSize, PROT_RWX));
      const memory = call('Error allocating guest memory', () => b.vmMapGuest(fd, allocSize));
      return new VmmMachine(b, this.vms, vm, fd, this.runAbi, memory);
    } catch (e) {
      this.vms.destroy(name);
      throw e;
    }
  }

  /** vmm has no hypervisor handle besides each VM's own descriptor. */
  close(): void {}
}

class VmmMachine implements Machine {
  /** The net ring's kick: a pipe the vCPU loop writes on each OUT to 0x600 (kick.ts). */
  readonly portEvents: VmmKickPort;
  readonly name: string;

  constructor(
    private readonly b: FreebsdNativeBinding,
    private readonly vms: VmRegistry,
    vm: VmEntry,
    readonly vmFd: number,
    private readonly runAbi: RunAbi,
    readonly memory: ArrayBuffer,
  ) {
    this.name = vm.name;
    this.portEvents = new VmmKickPort(b, vm);
  }

  protect(start: number, end: number, prot: number): void {
    this.b.vmProtect(this.memory, start, end - start, prot);
  }

  /** For the net ring's thread: the same pages, reference counted (native/guest_mapping.cc). */
  share(): SharedArrayBuffer {
    return this.b.shareMemory(this.memory);
  }

  createVcpu(): Vcpu {
    const c = call('createVcpu', () => this.b.createVcpu(this.vmFd, VCPU, this.runAbi));
    return new VmmVcpu(this.b, this.vmFd, c.token, c.wakeFd, this.portEvents);
  }

  /** Closes the VM descriptor and destroys the VM (hw.vmm.destroy). */
  close(): void {
    this.portEvents.unbind();
    this.vms.destroy(this.name);
  }
}

class VmmVcpu implements Vcpu {
  readonly handle: VcpuHandle;
  readonly control: RunControl;
  readonly debug: DebugVcpu;
  private readonly exitBytes = new Uint8Array(VMM_EXIT.size);
  private readonly exitView = new DataView(this.exitBytes.buffer);
  private readonly ids: { token: number; wakeFd: number };
  /** The exit behind the last one handed to the core (for describeFatal's rip). */
  private last: VmmExit | undefined;
  private closed = false;

  constructor(
    private readonly b: FreebsdNativeBinding,
    private readonly vmFd: number,
    private readonly token: number,
    wakeFd: number,
    /** The machine's kick port: `fd` is the ring kick pipe's write end while a ring is bound (§18), else −1. */
    private readonly ringKick: { readonly fd: number },
  ) {
    this.handle = { backend: 'vmm', token };
    this.ids = { token, wakeFd };
    this.control = new HostRunControl(b, this.ids);
    this.debug = new VmmDebug(b, vmFd, VCPU, token);
  }

  /** §18 steps 9–15; returns the TSC rate in Hz (machdep.tsc_freq). */
  configure(state: BootState): number {
    const b = this.b;
    this.apply(specialRegisterOps(initialSpecialRegisters()));
    const hz = call('sysctl(machdep.tsc_freq)', () => b.tscFrequency());
    const invariant = call('sysctl(kern.timecounter.invariant_tsc)', () => b.tscInvariant());
    if (invariant !== 1) throw new HostError('Host TSC is not invariant, cannot continue');
    if (hz <= 0n || hz > BigInt(Number.MAX_SAFE_INTEGER)) throw new HostError(`machdep.tsc_freq is out of range: ${hz}`);
    this.apply(generalRegisterOps(initialGeneralRegisters(state.entry, state.memSize)));
    call('VM_ACTIVATE_CPU', () => b.vmActivateCpu(this.vmFd, VCPU));
    return Number(hz);
  }

  private apply(ops: readonly VmmStateOp[]): void {
    for (const o of ops) {
      const reg = VMM_REG[o.reg];
      if (o.op === 'register') call(`VM_SET_REGISTER (${reg})`, () => this.b.vmSetRegister(this.vmFd, VCPU, reg, o.value));
      else call(`VM_SET_SEGMENT_DESCRIPTOR (${reg})`, () => this.b.vmSetSegmentDescriptor(this.vmFd, VCPU, reg, o.base, o.limit, o.access));
    }
  }

  run(): VcpuExit {
    for (;;) {
      const r = call('VM_RUN', () => this.b.run(this.token, this.exitBytes));
      if (r === VMM_RUN_INTERRUPTED) {
        const why = this.interruption();
        if (why) return why;
        continue; // a stray EINTR: enter the guest again
      }
      const e = decodeVmExit(this.exitView);
      this.last = e;
      switch (e.code) {
        case 'inout':
          if (!isRingKick(e)) return ioExit(e);
          // §18: the kick goes to the pipe if there is a ring, and is ignored if not.
          if (this.ringKick.fd >= 0) this.kickRing(this.ringKick.fd);
          continue;
        case 'bogus': {
          // vmm left the guest for its own reasons (often: a signal is pending).
          const why = this.interruption();
          if (why) return why;
          continue;
        }
        case 'vmx': {
          const lines = vmxLines(e);
          throw new GuestError(lines[lines.length - 1] as string, { warnings: lines.slice(0, -1) });
        }
        case 'other':
          return otherExit(e);
      }
    }
  }

  /**
   * One byte to the kick pipe. The write end is non-blocking: −1 (EAGAIN, a
   * full pipe) means wake-ups are pending already, so the guest goes on; a
   * signal before the byte went in (−2) tries again. Any other failure is
   * the monitor's own bug (the ring closes the pipe only after unbinding it).
   */
  private kickRing(fd: number): void {
    while (call('write to the ring kick pipe', () => this.b.writeFd(fd, KICK_BYTE)) === -2) {
      // interrupted before the byte went in
    }
  }

  /** Why the run must stop now (signal, stop, debugger interrupt), or null to go on. */
  private interruption(): VcpuExit | null {
    const signal = this.b.pendingSignal();
    if (signal !== 0) return { kind: 'interrupted', signal };
    if (this.b.stopRequested(this.token)) return { kind: 'interrupted', signal: 0 };
    if (this.b.takeInterrupt(this.token)) return { kind: 'debug', reason: 'interrupt', rip: this.last?.rip ?? 0n, dr6: 0n };
    return null;
  }

  createWaitSet(spinNs: number): WaitSet {
    return call('kqueue', () => new HostWaitSet(this.b, this.ids, this.control, spinNs));
  }

  describeFatal(kind: FatalExit, exit: VcpuExit): string {
    return describeVmmFatal(kind, exit, this.last);
  }

  kick(): void {
    if (!this.closed) this.b.kick(this.token);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.b.destroyVcpu(this.token);
  }
}
