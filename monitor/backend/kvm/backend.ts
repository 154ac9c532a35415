// Linux KVM backend (docs/abi.md §7.1, §7.5–§7.7, §9.2): capability checks,
// VM and vCPU creation, initial CPU state and the vCPU run loop. Exits are
// decoded in exits.ts; fatal host conditions are thrown as HostError with the
// reference's wording; the ioctls themselves are in native/kvm_linux.cc.
import { type CreatedVcpu, type NativeBinding, isNativeError, RUN_EXIT, RUN_FAULT } from '../../../native/binding.js';
import { initialRegs, initialSregs, REGS_SIZE, ripOf } from './x86.js';
import { HostError, withErrno } from '../../errors.js';
import type { Backend, BootState, FatalExit, KickDescriptors, Machine, PortEvents, RunControl, Vcpu, VcpuExit, VcpuHandle, WaitSet } from '../backend.js';
import type { DebugVcpu } from '../debug.js';
import { KvmDebug } from './debug.js';
import { decodeExit, describeFatal } from './exits.js';
import { HostRunControl, HostWaitSet } from '../wait-set.js';

const KVM_API_VERSION = 12;
const CAP_USER_MEMORY = 3;
const CAP_GET_TSC_KHZ = 61;
const CAP_IOEVENTFD = 36;
const CPUID_MAX_ENTRIES = 100;

/** "KVM: ioctl (NAME) failed: strerror" */
function ioctlFailed(name: string, e: unknown): HostError {
  return new HostError(withErrno(`KVM: ioctl (${name}) failed`, e), { cause: e });
}

/** Runs one ioctl, turning its failure into the reference's fatal message. */
function hostIoctl<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw ioctlFailed(name, e);
  }
}

/**
 * What one /dev/kvm says of the host, the same for every VM made from it:
 * asked once per backend (a library worker builds many VMs from one).
 */
interface HostFacts {
  cpuid?: ArrayBuffer;
  tscKhz?: boolean;
}

/** A VM made ahead (prepare): KVM_CREATE_VM and its vCPU, no memory yet. */
interface Spare {
  readonly vmFd: number;
  readonly vcpu: CreatedVcpu;
}

export class KvmBackend implements Backend {
  private readonly facts: HostFacts = {};
  private spare: Spare | null = null;
  private readonly kvmFd: number;
  private readonly runSize: number;

  constructor(private readonly b: NativeBinding) {
    try {
      this.kvmFd = b.openKvm();
    } catch (e) {
      throw new HostError(withErrno('Could not open: /dev/kvm', e), { cause: e });
    }
    const kvm = this.kvmFd;
    const version = hostIoctl('KVM_GET_API_VERSION', () => b.apiVersion(kvm));
    if (version !== KVM_API_VERSION) {
      throw new HostError(`KVM: API version is ${version}, ukvm-ts requires version ${KVM_API_VERSION}`);
    }
    if (hostIoctl('KVM_CHECK_EXTENSION', () => b.checkExtension(kvm, CAP_USER_MEMORY)) !== 1) {
      throw new HostError('KVM: host does not support KVM_CAP_USER_MEMORY');
    }
    this.runSize = hostIoctl('KVM_GET_VCPU_MMAP_SIZE', () => b.vcpuMmapSize(kvm));
    if (this.runSize < b.kvmRunSize) throw new HostError(`KVM: invalid VCPU_MMAP_SIZE: ${this.runSize}`);
    // Without this handler a kick would kill the process (default action).
    b.installKickHandler();
  }

  /**
   * Makes the next VM's KVM object and vCPU now (a library worker calls it
   * while idle: ~0.6 ms of a start on PVM). Best effort: a failure leaves
   * createMachine to make them itself.
   */
  prepare(): void {
    if (this.spare) return;
    let vmFd = -1;
    try {
      vmFd = this.b.vmCreate(this.kvmFd);
      this.spare = { vmFd, vcpu: this.b.createVcpu(vmFd, this.runSize) };
    } catch {
      if (vmFd >= 0) this.b.closeFd(vmFd);
    }
  }

  createMachine(allocSize: number): Machine {
    const spare = this.spare;
    if (spare) {
      this.spare = null;
      let memory;
      try {
        memory = this.b.vmAttachMemory(spare.vmFd, allocSize);
      } catch (e) {
        destroySpare(this.b, spare);
        throw machineFailed(e);
      }
      return new KvmMachine(this.b, this.kvmFd, this.runSize, spare.vmFd, memory, this.facts, spare.vcpu);
    }
    let vm;
    try {
      vm = this.b.createVm(this.kvmFd, allocSize);
    } catch (e) {
      throw machineFailed(e);
    }
    return new KvmMachine(this.b, this.kvmFd, this.runSize, vm.vmFd, vm.memory, this.facts);
  }

  close(): void {
    if (this.spare) destroySpare(this.b, this.spare);
    this.spare = null;
    this.b.closeFd(this.kvmFd);
  }
}

/** A failure of createVm / vmAttachMemory in the reference's words. */
function machineFailed(e: unknown): HostError {
  if (isNativeError(e) && e.syscall === 'mmap') return new HostError(withErrno('Error allocating guest memory', e), { cause: e });
  return ioctlFailed(isNativeError(e) ? e.syscall.replace(/^KVM_/, '') : 'CREATE_VM', e);
}

/** Gives back a vCPU made ahead and never handed out: its slot, descriptors and run area. */
function destroyUnusedVcpu(b: NativeBinding, c: CreatedVcpu): void {
  b.destroyVcpu(c.token);
  b.unmapBuffer(c.run);
}

/** Gives back a VM made ahead and never used: its vCPU and VM descriptor. */
function destroySpare(b: NativeBinding, s: Spare): void {
  destroyUnusedVcpu(b, s.vcpu);
  b.closeFd(s.vmFd);
}

class KvmMachine implements Machine {
  readonly portEvents: PortEvents;

  constructor(
    private readonly b: NativeBinding,
    private readonly kvmFd: number,
    private readonly runSize: number,
    readonly vmFd: number,
    readonly memory: ArrayBuffer,
    private readonly facts: HostFacts,
    /** The vCPU made ahead with this VM (prepare), handed out by the first createVcpu. */
    private spareVcpu: CreatedVcpu | null = null,
  ) {
    // §13.5: without the capability the ring is silently not offered.
    // Asked only when a module wants it (the net ring), once.
    let available: boolean | undefined;
    const closedKicks = new WeakSet<KickDescriptors>();
    this.portEvents = {
      get available() {
        if (available === undefined) {
          try {
            available = b.checkExtension(kvmFd, CAP_IOEVENTFD) > 0;
          } catch {
            available = false;
          }
        }
        return available;
      },
      steps: { create: 'eventfd()', attach: 'KVM_IOEVENTFD' },
      // One eventfd is both ends: KVM signals it, the ring's thread reads its 8-byte counter.
      createKick: () => {
        const fd = b.eventfdCreate();
        return { wait: fd, signal: fd, readSize: 8, wakeBytes: EVENTFD_ONE };
      },
      attach: (port, kick) => b.ioeventfd(vmFd, port, 4, kick.signal, true),
      detach: (port, kick) => {
        try {
          b.ioeventfd(vmFd, port, 4, kick.signal, false);
        } catch {
          // Nothing is left to undo, or the VM is going away anyway.
        }
      },
      // Just close(2), as at HALT before the kick interface existed: no
      // KVM_IOEVENTFD deassign after the sandbox; KVM's binding goes with the VM.
      closeKick: (kick) => {
        if (closedKicks.has(kick)) return;
        closedKicks.add(kick);
        b.closeFd(kick.wait);
      },
    };
  }

  share(): SharedArrayBuffer {
    return this.b.shareMemory(this.memory);
  }

  protect(start: number, end: number, prot: number): void {
    this.b.protect(this.memory, start, end - start, prot);
  }

  createVcpu(): Vcpu {
    try {
      const c = this.spareVcpu ?? this.b.createVcpu(this.vmFd, this.runSize);
      this.spareVcpu = null;
      return new KvmVcpu(this.b, this.kvmFd, c.token, c.vcpuFd, c.wakeFd, c.run, this.facts);
    } catch (e) {
      throw ioctlFailed('CREATE_VCPU', e);
    }
  }

  close(): void {
    // A vCPU made ahead that was never handed out (the build failed first).
    if (this.spareVcpu) destroyUnusedVcpu(this.b, this.spareVcpu);
    this.spareVcpu = null;
    this.b.closeFd(this.vmFd);
    // Guest memory goes now, not when the collector gets to its buffer.
    this.b.unmapBuffer(this.memory);
  }
}

class KvmVcpu implements Vcpu {
  readonly handle: VcpuHandle;
  readonly control: RunControl;
  readonly debug: DebugVcpu;
  private readonly runView: DataView;
  private readonly regs = new Uint8Array(REGS_SIZE);
  private readonly ids: { token: number; wakeFd: number };
  private closed = false;

  constructor(
    private readonly b: NativeBinding,
    private readonly kvmFd: number,
    private readonly token: number,
    private readonly fd: number,
    wakeFd: number,
    private readonly runArea: ArrayBuffer,
    private readonly facts: HostFacts,
  ) {
    this.runView = new DataView(runArea);
    this.handle = { backend: 'kvm', token };
    this.ids = { token, wakeFd };
    this.control = new HostRunControl(b, this.ids);
    this.debug = new KvmDebug(b, fd, token);
  }

  configure(state: BootState): number {
    const b = this.b;
    let cpuid = this.facts.cpuid;
    if (!cpuid) {
      try {
        cpuid = this.facts.cpuid = b.supportedCpuid(this.kvmFd, CPUID_MAX_ENTRIES);
      } catch (e) {
        throw ioctlFailed('GET_SUPPORTED_CPUID', e);
      }
    }
    const image = new Uint8Array(cpuid);
    hostIoctl('SET_CPUID2', () => b.setCpuid(this.fd, image));
    hostIoctl('SET_SREGS', () => b.setSregs(this.fd, initialSregs()));
    this.facts.tscKhz ??= hostIoctl('KVM_CHECK_EXTENSION', () => b.checkExtension(this.kvmFd, CAP_GET_TSC_KHZ)) > 0;
    if (!this.facts.tscKhz) {
      throw new HostError('KVM: host does not support KVM_CAP_GET_TSC_KHZ');
    }
    let khz;
    try {
      khz = b.tscKhz(this.fd);
    } catch (e) {
      if (isNativeError(e) && e.code === 'EIO') throw new HostError('KVM: host TSC is unstable, cannot continue', { cause: e });
      throw ioctlFailed('KVM_GET_TSC_KHZ', e);
    }
    hostIoctl('SET_REGS', () => b.setRegs(this.fd, initialRegs(state.entry, state.memSize)));
    return khz * 1000;
  }

  run(): VcpuExit {
    for (;;) {
      const r = this.b.run(this.token);
      if (r === RUN_EXIT) return decodeExit(this.runView);
      if (r === RUN_FAULT) return { kind: 'fault' };
      const signal = this.b.pendingSignal();
      if (signal !== 0) return { kind: 'interrupted', signal };
      if (this.b.stopRequested(this.token)) return { kind: 'interrupted', signal: 0 };
      // interrupt() from another thread (a debugger's Ctrl-C): once, and the run goes on.
      if (this.b.takeInterrupt(this.token)) return { kind: 'debug', reason: 'interrupt', rip: this.rip(), dr6: 0n };
      // A stray EINTR: enter the guest again.
    }
  }

  createWaitSet(spinNs: number): WaitSet {
    return new HostWaitSet(this.b, this.ids, this.control, spinNs);
  }

  describeFatal(kind: FatalExit, exit: VcpuExit): string {
    return describeFatal(kind, exit, () => this.rip());
  }

  private rip(): bigint {
    hostIoctl('GET_REGS', () => this.b.getRegs(this.fd, this.regs));
    return ripOf(this.regs);
  }

  kick(): void {
    if (!this.closed) this.b.kick(this.token);
  }

  takeInterrupt(): boolean {
    return !this.closed && this.b.takeInterrupt(this.token);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.b.destroyVcpu(this.token);
    // The run area's mapping holds the vCPU, and with it the KVM VM, alive in
    // the kernel: unmapped now, a closed VM is gone when close() returns.
    this.b.unmapBuffer(this.runArea);
  }
}

/** The u64 1 a wake-up adds to the kick eventfd. */
const EVENTFD_ONE = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);
