// Linux KVM backend (docs/abi.md §7.1, §7.5–§7.7, §9.2): capability checks
// and VM creation (with the VM and vCPU a library worker makes ahead); the
// vCPU, its initial CPU state and run loop are in vcpu.ts. Fatal host
// conditions are thrown as HostError with the reference's wording; the
// ioctls themselves are in native/kvm_linux.cc.
import { type CreatedVcpu, type NativeBinding, isNativeError } from '../../../native/binding.js';
import { HostError, withErrno } from '../../errors.js';
import type { Backend, KickDescriptors, Machine, PortEvents, Vcpu } from '../backend.js';
import { hostIoctl, ioctlFailed } from './ioctl.js';
import { type HostFacts, KvmVcpu } from './vcpu.js';

const KVM_API_VERSION = 12;
const CAP_USER_MEMORY = 3;
const CAP_IOEVENTFD = 36;

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


/** The u64 1 a wake-up adds to the kick eventfd. */
const EVENTFD_ONE = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);
