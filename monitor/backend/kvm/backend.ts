// Linux KVM backend (spec §7.1, §7.5–§7.7, §9.2): capability checks, VM and
// vCPU creation, initial CPU state, and the one place a struct kvm_run exit is
// decoded into a VcpuExit. Fatal conditions are thrown as HostError with the
// reference's wording; the ioctls themselves are in native/kvm_linux.cc.
import { type NativeBinding, isNativeError, RUN_EXIT, RUN_FAULT } from '../../../native/binding.js';
import { initialRegs, initialSregs, REGS_SIZE, ripOf } from './x86.js';
import { HostError, withErrno } from '../../errors.js';
import type { Backend, BootState, Machine, Vcpu, VcpuExit } from '../backend.js';

const KVM_API_VERSION = 12;
const CAP_USER_MEMORY = 3;
const CAP_GET_TSC_KHZ = 61;
const CPUID_MAX_ENTRIES = 100;

const EXIT_IO = 2;
const EXIT_MMIO = 6;
const EXIT_FAIL_ENTRY = 9;
const EXIT_INTERNAL_ERROR = 17;

/** "KVM: ioctl (NAME) failed: strerror" */
function ioctlFailed(name: string, e: unknown): HostError {
  return new HostError(withErrno(`KVM: ioctl (${name}) failed`, e));
}

/** Runs one ioctl, turning its failure into the reference's fatal message. */
function hostIoctl<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw ioctlFailed(name, e);
  }
}

export class KvmBackend implements Backend {
  private readonly kvmFd: number;
  private readonly runSize: number;

  constructor(private readonly b: NativeBinding) {
    try {
      this.kvmFd = b.openKvm();
    } catch (e) {
      throw new HostError(withErrno('Could not open: /dev/kvm', e));
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

  createMachine(allocSize: number): Machine {
    let vm;
    try {
      vm = this.b.createVm(this.kvmFd, allocSize);
    } catch (e) {
      if (isNativeError(e) && e.syscall === 'mmap') throw new HostError(withErrno('Error allocating guest memory', e));
      throw ioctlFailed(isNativeError(e) ? e.syscall.replace(/^KVM_/, '') : 'CREATE_VM', e);
    }
    return new KvmMachine(this.b, this.kvmFd, this.runSize, vm.vmFd, vm.memory);
  }

  close(): void {
    this.b.closeFd(this.kvmFd);
  }
}

class KvmMachine implements Machine {
  constructor(
    private readonly b: NativeBinding,
    private readonly kvmFd: number,
    private readonly runSize: number,
    readonly vmFd: number,
    readonly memory: ArrayBuffer,
  ) {}

  protect(start: number, end: number, prot: number): void {
    this.b.protect(this.memory, start, end - start, prot);
  }

  createVcpu(): Vcpu {
    try {
      const c = this.b.createVcpu(this.vmFd, this.runSize);
      return new KvmVcpu(this.b, this.kvmFd, c.token, c.vcpuFd, c.wakeFd, c.run);
    } catch (e) {
      throw ioctlFailed('CREATE_VCPU', e);
    }
  }

  close(): void {
    this.b.closeFd(this.vmFd);
  }
}

class KvmVcpu implements Vcpu {
  readonly backendName = 'KVM';
  private readonly runView: DataView;
  private readonly regs = new Uint8Array(REGS_SIZE);
  private closed = false;

  constructor(
    private readonly b: NativeBinding,
    private readonly kvmFd: number,
    readonly token: number,
    private readonly fd: number,
    readonly wakeFd: number,
    run: ArrayBuffer,
  ) {
    this.runView = new DataView(run);
  }


  configure(state: BootState): number {
    const b = this.b;
    let cpuid;
    try {
      cpuid = b.supportedCpuid(this.kvmFd, CPUID_MAX_ENTRIES);
    } catch (e) {
      throw ioctlFailed('GET_SUPPORTED_CPUID', e);
    }
    hostIoctl('SET_CPUID2', () => b.setCpuid(this.fd, new Uint8Array(cpuid)));
    hostIoctl('SET_SREGS', () => b.setSregs(this.fd, initialSregs()));
    if (hostIoctl('KVM_CHECK_EXTENSION', () => b.checkExtension(this.kvmFd, CAP_GET_TSC_KHZ)) <= 0) {
      throw new HostError('KVM: host does not support KVM_CAP_GET_TSC_KHZ');
    }
    let khz;
    try {
      khz = b.tscKhz(this.fd);
    } catch (e) {
      if (isNativeError(e) && e.code === 'EIO') throw new HostError('KVM: host TSC is unstable, cannot continue');
      throw ioctlFailed('KVM_GET_TSC_KHZ', e);
    }
    hostIoctl('SET_REGS', () => b.setRegs(this.fd, initialRegs(state.entry, state.memSize)));
    return khz * 1000;
  }

  run(): VcpuExit {
    for (;;) {
      const r = this.b.run(this.token);
      if (r === RUN_EXIT) return this.decode();
      if (r === RUN_FAULT) return { kind: 'fault' };
      const signal = this.b.pendingSignal();
      if (signal !== 0) return { kind: 'interrupted', signal };
      if (this.b.stopRequested(this.token)) return { kind: 'interrupted', signal: 0 };
      // A stray EINTR: enter the guest again.
    }
  }

  rip(): bigint {
    hostIoctl('GET_REGS', () => this.b.getRegs(this.fd, this.regs));
    return ripOf(this.regs);
  }

  runFloor(memory: ArrayBuffer, memSize: number, putsFd: number): number {
    return this.b.benchRunToHalt(this.token, memory, memSize, putsFd);
  }

  kick(): void {
    if (!this.closed) this.b.kick(this.token);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.b.destroyVcpu(this.token);
  }

  /** The single decoder of struct kvm_run (offsets from Appendix A). */
  private decode(): VcpuExit {
    const v = this.runView;
    const reason = v.getUint32(8, true);
    switch (reason) {
      case EXIT_IO: {
        const size = v.getUint8(33);
        const dataOff = v.getUint32(40, true);
        const inRange = v.getUint32(44, true) === 0 && dataOff + 4 <= v.byteLength;
        return {
          kind: 'io',
          out: v.getUint8(32) === 1,
          size,
          port: v.getUint16(34, true),
          value: inRange ? v.getUint32(dataOff, true) : 0,
        };
      }
      case EXIT_MMIO:
        return { kind: 'mmio', address: v.getBigUint64(32, true), write: v.getUint8(52) !== 0 };
      case EXIT_FAIL_ENTRY:
        return { kind: 'failEntry', reason: v.getBigUint64(32, true) };
      case EXIT_INTERNAL_ERROR:
        return { kind: 'internalError', suberror: v.getUint32(32, true) };
      default:
        return { kind: 'other', reason };
    }
  }
}
