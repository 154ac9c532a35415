// The KVM vCPU (docs/abi.md §7.1, §7.5–§7.7, §9.2): its initial CPU state
// (CPUID, special and general registers, TSC rate), the run loop with its
// cross-thread controls, POLL's wait set, and the fatal-exit wording. Exits
// are decoded in exits.ts.
import { type NativeBinding, isNativeError, RUN_EXIT, RUN_FAULT } from '../../../native/binding.js';
import { HostError } from '../../errors.js';
import type { BootState, FatalExit, RunControl, Vcpu, VcpuExit, VcpuHandle, WaitSet } from '../backend.js';
import type { DebugVcpu } from '../debug.js';
import { HostRunControl, HostWaitSet } from '../wait-set.js';
import { KvmDebug } from './debug.js';
import { decodeExit, describeFatal } from './exits.js';
import { hostIoctl, ioctlFailed } from './ioctl.js';
import { initialRegs, initialSregs, REGS_SIZE, ripOf } from './x86.js';

const CAP_GET_TSC_KHZ = 61;
const CPUID_MAX_ENTRIES = 100;

/**
 * What one /dev/kvm says of the host, the same for every VM made from it:
 * asked once per backend (a library worker builds many VMs from one).
 */
export interface HostFacts {
  cpuid?: ArrayBuffer;
  tscKhz?: boolean;
}

export class KvmVcpu implements Vcpu {
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
