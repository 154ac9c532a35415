// KvmBackend over an injected fake NativeBinding (docs/abi.md §7.1, §7.5–§7.7,
// §9.2): host capability errors, vCPU configuration order and values, and the
// struct kvm_run decoder. No /dev/kvm involved.
import { describe, expect, it } from 'vitest';
import { thrownBy } from '../helpers/thrown.js';
import { initialRegs, initialSregs } from '../../monitor/backend/kvm/x86.js';
import { KvmBackend } from '../../monitor/backend/kvm/backend.js';
import { HostError } from '../../monitor/errors.js';
import { type NativeBinding, RUN_EXIT, RUN_FAULT, RUN_INTERRUPTED } from '../../native/binding.js';

const KVM_FD = 3;
const VM_FD = 4;
const VCPU_FD = 5;
const WAKE_FD = 6;
const TOKEN = 9;
const RUN_SIZE = 2352;

/** An Error shaped like the addon's: message "SYSCALL: strerror", errno, code, syscall. */
function nativeError(syscall: string, errno: number, code: string, text: string): Error {
  return Object.assign(new Error(`${syscall}: ${text}`), { errno, code, syscall });
}

interface Fake {
  binding: NativeBinding;
  calls: string[];
  /** The vCPU's struct kvm_run area. */
  run: DataView;
  /** Results the next run() calls return. */
  runResults: number[];
  signal: number;
  stop: boolean;
  /** interrupt() calls not yet taken. */
  interrupts: number;
}

/** Everything KvmBackend needs, recording calls; `over` replaces members. */
function fake(over: Record<string, unknown> = {}): Fake {
  const runArea = new ArrayBuffer(3 * 4096);
  const f = { calls: [] as string[], run: new DataView(runArea), runResults: [] as number[], signal: 0, stop: false, interrupts: 0 } as Fake;
  const rec = (name: string, ...args: unknown[]) => f.calls.push(`${name}(${args.map((a) => (a instanceof Uint8Array ? `[${a.length}]` : String(a))).join(',')})`);
  const base = {
    platform: 'linux-kvm',
    kvmRunSize: RUN_SIZE,
    openKvm: () => (rec('openKvm'), KVM_FD),
    apiVersion: (fd: number) => (rec('apiVersion', fd), 12),
    checkExtension: (fd: number, cap: number) => (rec('checkExtension', fd, cap), 1),
    vcpuMmapSize: (fd: number) => (rec('vcpuMmapSize', fd), 12288),
    installKickHandler: () => rec('installKickHandler'),
    createVm: (fd: number, size: number) => (rec('createVm', fd, size), { vmFd: VM_FD, memory: new ArrayBuffer(size) }),
    createVcpu: (vmFd: number, runSize: number) => (
      rec('createVcpu', vmFd, runSize), { token: TOKEN, slot: TOKEN, vcpuFd: VCPU_FD, wakeFd: WAKE_FD, run: runArea }
    ),
    destroyVcpu: (t: number) => rec('destroyVcpu', t),
    supportedCpuid: (fd: number, max: number) => {
      rec('supportedCpuid', fd, max);
      const c = new Uint8Array(8 + 2 * 40);
      c[0] = 2;
      c[8] = 0x11;
      return c.buffer;
    },
    setCpuid: (fd: number, c: Uint8Array) => (rec('setCpuid', fd, c), undefined),
    setSregs: (fd: number, s: Uint8Array) => (rec('setSregs', fd, s), (f as Fake & { sregs?: Uint8Array }).sregs = s.slice(), undefined),
    setRegs: (fd: number, r: Uint8Array) => (rec('setRegs', fd, r), (f as Fake & { regs?: Uint8Array }).regs = r.slice(), undefined),
    getRegs: (fd: number, r: Uint8Array) => {
      rec('getRegs', fd, r);
      new DataView(r.buffer, r.byteOffset).setBigUint64(128, 0xabcdefn, true);
    },
    tscKhz: (fd: number) => (rec('tscKhz', fd), 2_904_000),
    run: (t: number) => (rec('run', t), f.runResults.shift() ?? RUN_EXIT),
    pendingSignal: () => f.signal,
    stopRequested: () => f.stop,
    takeInterrupt: () => (f.interrupts > 0 ? (f.interrupts--, true) : false),
    kick: (t: number) => (rec('kick', t), true),
    protect: (_m: ArrayBuffer, off: number, len: number, prot: number) => rec('protect', off, len, prot),
    closeFd: (fd: number) => rec('closeFd', fd),
    unmapBuffer: (b: ArrayBuffer) => rec('unmapBuffer', b.byteLength),
  };
  f.binding = { ...base, ...over } as unknown as NativeBinding;
  return f;
}

const hostError = (fn: () => unknown): string => thrownBy(fn, HostError).message;

const throwing = (e: Error) => () => {
  throw e;
};

describe('opening /dev/kvm (§7.1)', () => {
  it('ENOENT → "Could not open: /dev/kvm: No such file or directory"', () => {
    const f = fake({ openKvm: throwing(nativeError('open', 2, 'ENOENT', 'No such file or directory')) });
    expect(hostError(() => new KvmBackend(f.binding))).toBe('Could not open: /dev/kvm: No such file or directory');
  });

  it('EACCES → "Could not open: /dev/kvm: Permission denied"', () => {
    const f = fake({ openKvm: throwing(nativeError('open', 13, 'EACCES', 'Permission denied')) });
    expect(hostError(() => new KvmBackend(f.binding))).toBe('Could not open: /dev/kvm: Permission denied');
  });

  it('the errno text is found even without the "syscall: " message prefix', () => {
    const e = Object.assign(new Error('EACCES'), { errno: 13, code: 'EACCES', syscall: 'open' });
    expect(hostError(() => new KvmBackend(fake({ openKvm: throwing(e) }).binding))).toBe('Could not open: /dev/kvm: Permission denied');
  });

  it('API version 11 is refused', () => {
    const f = fake({ apiVersion: () => 11 });
    expect(hostError(() => new KvmBackend(f.binding))).toMatch(/^KVM: API version is 11, \S+ requires version 12$/);
  });

  it('no KVM_CAP_USER_MEMORY', () => {
    const f = fake({ checkExtension: (_fd: number, cap: number) => (cap === 3 ? 0 : 1) });
    expect(hostError(() => new KvmBackend(f.binding))).toBe('KVM: host does not support KVM_CAP_USER_MEMORY');
  });

  it('a vCPU mmap size smaller than struct kvm_run', () => {
    const f = fake({ vcpuMmapSize: () => RUN_SIZE - 1 });
    expect(hostError(() => new KvmBackend(f.binding))).toBe(`KVM: invalid VCPU_MMAP_SIZE: ${RUN_SIZE - 1}`);
  });

  it('checks in order on the /dev/kvm descriptor, then installs the kick handler', () => {
    const f = fake();
    new KvmBackend(f.binding);
    expect(f.calls).toEqual(['openKvm()', `apiVersion(${KVM_FD})`, `checkExtension(${KVM_FD},3)`, `vcpuMmapSize(${KVM_FD})`, 'installKickHandler()']);
  });

  // Regression: a failing KVM_GET_API_VERSION (e.g. /dev/kvm is another
  // device, as when a container bind-mounts /dev/null there: ENOTTY) once
  // escaped as "internal error: …" instead of this HostError. The same holds
  // for KVM_CHECK_EXTENSION and KVM_GET_VCPU_MMAP_SIZE there.
  it('an ioctl failure while checking the host is a HostError naming the ioctl', () => {
    const f = fake({ apiVersion: throwing(nativeError('KVM_GET_API_VERSION', 25, 'ENOTTY', 'Inappropriate ioctl for device')) });
    expect(hostError(() => new KvmBackend(f.binding))).toMatch(/^KVM: ioctl \(\w+\) failed: Inappropriate ioctl for device$/);
  });
});

describe('creating the machine', () => {
  it('allocates through createVm on the /dev/kvm descriptor and protects through the binding', () => {
    const f = fake();
    const m = new KvmBackend(f.binding).createMachine(2 << 20);
    expect(m.memory.byteLength).toBe(2 << 20);
    m.protect(0x100000, 0x102000, 1);
    expect(f.calls.slice(-2)).toEqual([`createVm(${KVM_FD},${2 << 20})`, `protect(${0x100000},${0x2000},1)`]);
  });

  it('mmap failure → "Error allocating guest memory: <strerror>"', () => {
    const f = fake({ createVm: throwing(nativeError('mmap', 12, 'ENOMEM', 'Cannot allocate memory')) });
    expect(hostError(() => new KvmBackend(f.binding).createMachine(2 << 20))).toBe('Error allocating guest memory: Cannot allocate memory');
  });

  it('ioctl failures name the ioctl', () => {
    let f = fake({ createVm: throwing(nativeError('KVM_CREATE_VM', 24, 'EMFILE', 'Too many open files')) });
    expect(hostError(() => new KvmBackend(f.binding).createMachine(2 << 20))).toBe('KVM: ioctl (CREATE_VM) failed: Too many open files');
    f = fake({ createVm: throwing(nativeError('KVM_SET_USER_MEMORY_REGION', 22, 'EINVAL', 'Invalid argument')) });
    expect(hostError(() => new KvmBackend(f.binding).createMachine(2 << 20))).toBe('KVM: ioctl (SET_USER_MEMORY_REGION) failed: Invalid argument');
    f = fake({ createVcpu: throwing(nativeError('KVM_CREATE_VCPU', 22, 'EINVAL', 'Invalid argument')) });
    expect(hostError(() => new KvmBackend(f.binding).createMachine(2 << 20).createVcpu())).toBe('KVM: ioctl (CREATE_VCPU) failed: Invalid argument');
  });

  it('the vCPU run area is mapped with the size KVM reported', () => {
    const f = fake();
    new KvmBackend(f.binding).createMachine(2 << 20).createVcpu();
    expect(f.calls).toContain(`createVcpu(${VM_FD},12288)`);
  });
});

describe('configuring the vCPU (§7.5–§7.7)', () => {
  const vcpuOf = (f: Fake) => new KvmBackend(f.binding).createMachine(64 << 20).createVcpu();

  it('CPUID → SREGS → TSC → REGS, on the right descriptors, returning the TSC rate in Hz', () => {
    const f = fake();
    const v = vcpuOf(f);
    f.calls.length = 0;
    expect(v.configure({ entry: 0x100000, memSize: 64 << 20 })).toBe(2_904_000_000);
    expect(f.calls).toEqual([
      `supportedCpuid(${KVM_FD},100)`,
      `setCpuid(${VCPU_FD},[88])`,
      `setSregs(${VCPU_FD},[312])`,
      `checkExtension(${KVM_FD},61)`,
      `tscKhz(${VCPU_FD})`,
      `setRegs(${VCPU_FD},[144])`,
    ]);
    const ff = f as Fake & { sregs: Uint8Array; regs: Uint8Array };
    expect(ff.sregs).toEqual(initialSregs());
    expect(ff.regs).toEqual(initialRegs(0x100000, 64 << 20));
  });

  it('hands the host CPUID to SET_CPUID2 unchanged', () => {
    let given: Uint8Array | undefined;
    const f = fake({ setCpuid: (_fd: number, c: Uint8Array) => void (given = c.slice()) });
    vcpuOf(f).configure({ entry: 0x100000, memSize: 64 << 20 });
    expect(given?.length).toBe(88);
    expect(given?.[0]).toBe(2);
    expect(given?.[8]).toBe(0x11);
  });

  it('TSC EIO → "KVM: host TSC is unstable, cannot continue"', () => {
    const f = fake({ tscKhz: throwing(nativeError('KVM_GET_TSC_KHZ', 5, 'EIO', 'Input/output error')) });
    expect(hostError(() => vcpuOf(f).configure({ entry: 0x100000, memSize: 64 << 20 }))).toBe('KVM: host TSC is unstable, cannot continue');
  });

  it('other TSC failures name the ioctl', () => {
    const f = fake({ tscKhz: throwing(nativeError('KVM_GET_TSC_KHZ', 25, 'ENOTTY', 'Inappropriate ioctl for device')) });
    expect(hostError(() => vcpuOf(f).configure({ entry: 0x100000, memSize: 64 << 20 }))).toBe(
      'KVM: ioctl (KVM_GET_TSC_KHZ) failed: Inappropriate ioctl for device',
    );
  });

  it('no KVM_CAP_GET_TSC_KHZ', () => {
    const f = fake({ checkExtension: (_fd: number, cap: number) => (cap === 61 ? 0 : 1) });
    expect(hostError(() => vcpuOf(f).configure({ entry: 0x100000, memSize: 64 << 20 }))).toBe('KVM: host does not support KVM_CAP_GET_TSC_KHZ');
  });

  it('GET_SUPPORTED_CPUID and SET_* failures name the ioctl', () => {
    const cfg = { entry: 0x100000, memSize: 64 << 20 };
    let f = fake({ supportedCpuid: throwing(nativeError('KVM_GET_SUPPORTED_CPUID', 7, 'E2BIG', 'Argument list too long')) });
    expect(hostError(() => vcpuOf(f).configure(cfg))).toBe('KVM: ioctl (GET_SUPPORTED_CPUID) failed: Argument list too long');
    f = fake({ setCpuid: throwing(nativeError('KVM_SET_CPUID2', 22, 'EINVAL', 'Invalid argument')) });
    expect(hostError(() => vcpuOf(f).configure(cfg))).toBe('KVM: ioctl (SET_CPUID2) failed: Invalid argument');
    f = fake({ setSregs: throwing(nativeError('KVM_SET_SREGS', 22, 'EINVAL', 'Invalid argument')) });
    expect(hostError(() => vcpuOf(f).configure(cfg))).toBe('KVM: ioctl (SET_SREGS) failed: Invalid argument');
    f = fake({ setRegs: throwing(nativeError('KVM_SET_REGS', 14, 'EFAULT', 'Bad address')) });
    expect(hostError(() => vcpuOf(f).configure(cfg))).toBe('KVM: ioctl (SET_REGS) failed: Bad address');
  });
});

describe('running and decoding struct kvm_run (Appendix A)', () => {
  function vcpu(f = fake()) {
    return { f, v: new KvmBackend(f.binding).createMachine(2 << 20).createVcpu() };
  }

  it('IO exit: direction, size, port and the 32-bit value at data_offset', () => {
    const { f, v } = vcpu();
    const r = f.run;
    r.setUint32(8, 2, true);
    r.setUint8(32, 1);
    r.setUint8(33, 4);
    r.setUint16(34, 0x502, true);
    r.setUint32(36, 1, true);
    r.setBigUint64(40, 0x1000n, true);
    r.setUint32(0x1000, 0x00123456, true);
    expect(v.run()).toEqual({ kind: 'io', out: true, size: 4, port: 0x502, value: 0x123456 });
    r.setUint8(32, 0);
    r.setUint8(33, 1);
    expect(v.run()).toEqual({ kind: 'io', out: false, size: 1, port: 0x502, value: 0x123456 });
  });

  it('IO exit with a data_offset outside the run area reads value 0 instead of faulting', () => {
    const { f, v } = vcpu();
    f.run.setUint32(8, 2, true);
    f.run.setUint8(32, 1);
    f.run.setUint8(33, 4);
    f.run.setUint16(34, 0x508, true);
    f.run.setBigUint64(40, 0x3000n - 2n, true);
    expect(v.run()).toMatchObject({ kind: 'io', value: 0 });
    f.run.setBigUint64(40, 1n << 32n, true);
    expect(v.run()).toMatchObject({ kind: 'io', value: 0 });
  });

  it('MMIO exit: address at 32, is_write at 52', () => {
    const { f, v } = vcpu();
    f.run.setUint32(8, 6, true);
    f.run.setBigUint64(32, 0xfee00000n, true);
    f.run.setUint8(52, 1);
    expect(v.run()).toEqual({ kind: 'mmio', address: 0xfee00000n, write: true });
    f.run.setUint8(52, 0);
    expect(v.run()).toEqual({ kind: 'mmio', address: 0xfee00000n, write: false });
  });

  it('FAIL_ENTRY, INTERNAL_ERROR and other reasons', () => {
    const { f, v } = vcpu();
    f.run.setUint32(8, 9, true);
    f.run.setBigUint64(32, 0x80000021n, true);
    expect(v.run()).toEqual({ kind: 'failEntry', reason: 0x80000021n });
    f.run.setUint32(8, 17, true);
    f.run.setUint32(32, 3, true);
    expect(v.run()).toEqual({ kind: 'internalError', suberror: 3 });
    for (const reason of [5, 8, 0]) {
      f.run.setUint32(8, reason, true);
      expect(v.run()).toEqual({ kind: 'other', reason });
    }
  });

  it('EFAULT from KVM_RUN is a fault exit', () => {
    const { f, v } = vcpu();
    f.runResults.push(RUN_FAULT);
    expect(v.run()).toEqual({ kind: 'fault' });
  });

  it('an interrupted run reports a pending signal, then a stop request; a stray EINTR re-enters', () => {
    const { f, v } = vcpu();
    f.run.setUint32(8, 5, true);
    f.runResults.push(RUN_INTERRUPTED, RUN_INTERRUPTED, RUN_EXIT);
    expect(v.run()).toEqual({ kind: 'other', reason: 5 });
    expect(f.calls.filter((c) => c.startsWith('run(')).length).toBe(3);
    f.signal = 15;
    f.runResults.push(RUN_INTERRUPTED);
    expect(v.run()).toEqual({ kind: 'interrupted', signal: 15 });
    f.signal = 0;
    f.stop = true;
    f.runResults.push(RUN_INTERRUPTED);
    expect(v.run()).toEqual({ kind: 'interrupted', signal: 0 });
  });

  it('an interrupt() is a debug exit at the current rip, once; a stop or signal with it wins', () => {
    const { f, v } = vcpu();
    f.run.setUint32(8, 5, true);
    f.interrupts = 1;
    f.runResults.push(RUN_INTERRUPTED, RUN_INTERRUPTED, RUN_EXIT);
    expect(v.run()).toEqual({ kind: 'debug', reason: 'interrupt', rip: 0xabcdefn, dr6: 0n });
    expect(v.run()).toEqual({ kind: 'other', reason: 5 }); // the second EINTR is a stray one
    f.interrupts = 1;
    f.stop = true;
    f.runResults.push(RUN_INTERRUPTED);
    expect(v.run()).toEqual({ kind: 'interrupted', signal: 0 });
  });

  it('decodes a KVM_EXIT_DEBUG and offers the debug primitives', () => {
    const { f, v } = vcpu();
    f.run.setUint32(8, 4, true);
    f.run.setUint32(32, 1, true);
    f.run.setBigUint64(40, 0x100ba0n, true);
    f.run.setBigUint64(48, 0xffff4ff0n, true);
    f.runResults.push(RUN_EXIT);
    expect(v.run()).toEqual({ kind: 'debug', reason: 'step', rip: 0x100ba0n, dr6: 0xffff4ff0n });
    expect(v.debug?.getRegisters().rip).toBe(0xabcdefn);
  });

  it('fatal exits are worded with the rip read from the registers', () => {
    const { v } = vcpu();
    expect(v.describeFatal('unhandled', { kind: 'other', reason: 8 })).toBe('KVM: unhandled exit: exit_reason=0x8, rip=0xabcdef');
    expect(v.describeFatal('unhandled', { kind: 'mmio', address: 1n << 40n, write: false })).toBe('KVM: unhandled exit: exit_reason=0x6, rip=0xabcdef');
    expect(v.describeFatal('translation-fault', { kind: 'fault' })).toBe('KVM: host/guest translation fault: rip=0xabcdef');
  });

  it('close() destroys the vCPU once; kick() after close does nothing', () => {
    const { f, v } = vcpu();
    v.kick();
    v.close();
    v.close();
    v.kick();
    expect(f.calls.filter((c) => c.startsWith('destroyVcpu(') || c.startsWith('kick('))).toEqual([`kick(${TOKEN})`, `destroyVcpu(${TOKEN})`]);
  });
});
