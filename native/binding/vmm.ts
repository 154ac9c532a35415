// The FreeBSD half of the native surface (native/vmm_freebsd.cc and
// native/freebsd/*.cc): the vmm(4) sysctls and ioctls of docs/abi.md §18,
// one export each, the vCPU table's controls (same contracts as the Linux
// exports of the same names), Capsicum, and the FreeBSD host services. The
// numbers TypeScript reads (struct vm_exit offsets, enum vm_reg_name, exit
// codes, ioctl numbers) are written here once; native/freebsd/fbsd_sys.h
// pins the same values against FreeBSD's headers, and npm run check:freebsd
// compares the two.
import { HOST_SHAPE, type HostBinding } from './host.js';
import { loadAddon } from './load.js';

/** Byte offsets in struct vm_exit (136 bytes on FreeBSD 13 and 14). */
export const VMM_EXIT = {
  exitcode: 0,
  instLength: 4,
  rip: 8,
  /** u.inout: a u16 of bit fields (bytes 0–2, in 3, string 4, rep 5), port u16, eax u32. */
  inoutBits: 16,
  inoutPort: 18,
  inoutEax: 20,
  vmxStatus: 16,
  vmxExitReason: 20,
  vmxQualification: 24,
  vmxInstType: 32,
  vmxInstError: 36,
  size: 136,
} as const;

/** enum vm_reg_name (machine/vmm.h), the registers the backend names. */
export const VMM_REG = {
  rax: 0, rbx: 1, rcx: 2, rdx: 3, rsi: 4, rdi: 5, rbp: 6,
  r8: 7, r9: 8, r10: 9, r11: 10, r12: 11, r13: 12, r14: 13, r15: 14,
  cr0: 15, cr3: 16, cr4: 17, rsp: 19, rip: 20, rflags: 21,
  es: 22, cs: 23, ss: 24, ds: 25, fs: 26, gs: 27, ldtr: 28, tr: 29, idtr: 30, gdtr: 31,
  efer: 32, cr2: 33, fsBase: 45, gsBase: 46,
} as const;
export type VmmRegName = keyof typeof VMM_REG;

/** enum vm_exitcode values the backend decodes. */
export const VMM_EXITCODE = { inout: 0, vmx: 1, bogus: 2, hlt: 5 } as const;

/** enum vm_cap_type: VM_CAP_HALT_EXIT. */
export const VM_CAP_HALT_EXIT = 0;

/** The ioctl numbers of §18 step 7's Capsicum limit, as FreeBSD encodes them. */
export const VMM_IOCTLS = {
  VM_RUN_14: 0xc0207601,
  VM_RUN_13: 0xc0907601,
  VM_SET_CAPABILITY: 0x80107602,
  VM_ALLOC_MEMSEG: 0x8020760e,
  VM_MMAP_MEMSEG: 0x80287610,
  VM_SET_SEGMENT_DESCRIPTOR: 0x80187616,
  VM_SET_REGISTER: 0x80107614,
  VM_GET_REGISTER: 0xc0107615,
  VM_ACTIVATE_CPU: 0x8004765a,
} as const;
export type VmmIoctlName = keyof typeof VMM_IOCTLS;

/** Which VM_RUN the kernel takes: 13 (exit inside struct vm_run) or 14 (caller-owned exit). */
export type RunAbi = 13 | 14;

export interface CreatedVmmVcpu {
  /** Names this vCPU process-wide for its whole life; never reused for another. */
  token: number;
  /** Read end of the pipe woken by kick(), interrupt() and SIGINT/SIGTERM; belongs in the POLL wait set. */
  wakeFd: number;
}

/** Results of run(): an exit to decode, or an interruption. */
export const VMM_RUN_EXIT = 0;
export const VMM_RUN_INTERRUPTED = 1;

export interface VmmBinding {
  /** The ioctl numbers as the addon was compiled (checked against VMM_IOCTLS at load). */
  readonly vmmIoctls: Readonly<Record<VmmIoctlName, number>>;
  /** sizeof(struct vm_exit) as compiled (VMM_EXIT.size). */
  readonly vmExitSize: number;

  // VM level (vmm_freebsd.cc), §18 steps 1–6, 9–15.
  /** sysctl hw.vmm.create. */
  vmmCreate(name: string): void;
  /** sysctl hw.vmm.destroy. */
  vmmDestroy(name: string): void;
  /** open /dev/vmm/NAME read/write, close-on-exec. */
  vmmOpen(name: string): number;
  vmSetCapability(vmFd: number, vcpu: number, cap: number, value: number): void;
  vmAllocMemseg(vmFd: number, segid: number, length: number): void;
  /** VM_MMAP_MEMSEG; prot bits 1 read, 2 write, 4 exec. */
  vmMmapMemseg(vmFd: number, gpa: number, segid: number, segoff: number, length: number, prot: number): void;
  /** mmap of the VM descriptor at offset 0, shared, read/write: guest RAM. */
  vmMapGuest(vmFd: number, length: number): ArrayBuffer;
  /**
   * The same guest RAM as a SharedArrayBuffer for another thread (the net
   * ring's consumer), no copy; the mapping stays while any holder lives
   * (native/guest_mapping.cc, shared with Linux).
   */
  shareMemory(memory: ArrayBuffer): SharedArrayBuffer;
  /** mprotect of a page-aligned range of guest RAM's host mapping. */
  vmProtect(memory: ArrayBuffer, offset: number, length: number, prot: number): void;
  vmSetRegister(vmFd: number, vcpu: number, reg: number, value: bigint): void;
  vmGetRegister(vmFd: number, vcpu: number, reg: number): bigint;
  vmSetSegmentDescriptor(vmFd: number, vcpu: number, reg: number, base: bigint, limit: number, access: number): void;
  vmActivateCpu(vmFd: number, vcpu: number): void;
  /** sysctl machdep.tsc_freq (Hz). */
  tscFrequency(): bigint;
  /** sysctl kern.timecounter.invariant_tsc. */
  tscInvariant(): number;
  /** sysctl kern.osreldate. */
  osReleaseDate(): number;
  /** 0, 1, 2, … across every thread of the process. */
  nextVmSequence(): number;
  /**
   * Starts the helper process that destroys VM `name` once the returned
   * descriptor is closed or this process is gone; returns that descriptor.
   */
  vmmReaper(name: string): number;

  // Capsicum (vmm_freebsd.cc).
  /** cap_rights_limit(fd, CAP_IOCTL). */
  capRightsLimitIoctl(fd: number): void;
  capIoctlsLimit(fd: number, commands: readonly number[]): void;
  /** cap_rights_limit of a ring kick pipe end: the read end to CAP_READ | CAP_EVENT, the write end to CAP_WRITE. */
  capRightsLimitKick(fd: number, writeEnd: boolean): void;
  capEnter(): void;

  // vCPU (freebsd/vcpu_freebsd.cc).
  createVcpu(vmFd: number, vcpu: number, runAbi: RunAbi): CreatedVmmVcpu;
  destroyVcpu(token: number): void;
  /** One VM_RUN on the calling thread; on VMM_RUN_EXIT the struct vm_exit is in `exit` (VMM_EXIT.size bytes). */
  run(token: number, exit: Uint8Array): typeof VMM_RUN_EXIT | typeof VMM_RUN_INTERRUPTED;
  kick(token: number): boolean;
  interrupt(token: number): boolean;
  takeInterrupt(token: number): boolean;
  stopRequested(token: number): boolean;
  threadCpuNs(token: number): number;

  // Host (freebsd/host_tap_freebsd.cc, host_disk_freebsd.cc).
  /**
   * The ring kick on FreeBSD (§18): a close-on-exec pipe, [readFd, writeFd];
   * the read end blocking (the consumer sleeps on it), the write end
   * non-blocking (a kick never blocks the vCPU).
   */
  kickPipe(): [number, number];
  /** Size of a file (its end) or a disk device (DIOCGMEDIASIZE: lseek says 0 for FreeBSD disks). */
  diskSize(fd: number): bigint;
}

/** The FreeBSD host surface: HostBinding without Linux's seccomp, personality and ethtool calls. */
export type FreebsdHostBinding = Omit<HostBinding, 'personality' | 'setNoNewPrivs' | 'seccompFilter' | 'disableOffloads'>;

/** Everything the FreeBSD addon exports. */
export type FreebsdNativeBinding = VmmBinding & FreebsdHostBinding;

type ExportKind = 'function' | 'number' | 'object';

export const VMM_SHAPE = {
  vmmIoctls: 'object',
  vmExitSize: 'number',
  vmmCreate: 'function',
  vmmDestroy: 'function',
  vmmOpen: 'function',
  vmSetCapability: 'function',
  vmAllocMemseg: 'function',
  vmMmapMemseg: 'function',
  vmMapGuest: 'function',
  shareMemory: 'function',
  vmProtect: 'function',
  vmSetRegister: 'function',
  vmGetRegister: 'function',
  vmSetSegmentDescriptor: 'function',
  vmActivateCpu: 'function',
  tscFrequency: 'function',
  tscInvariant: 'function',
  osReleaseDate: 'function',
  nextVmSequence: 'function',
  vmmReaper: 'function',
  capRightsLimitIoctl: 'function',
  capIoctlsLimit: 'function',
  capRightsLimitKick: 'function',
  capEnter: 'function',
  createVcpu: 'function',
  destroyVcpu: 'function',
  run: 'function',
  kick: 'function',
  interrupt: 'function',
  takeInterrupt: 'function',
  stopRequested: 'function',
  threadCpuNs: 'function',
  kickPipe: 'function',
  diskSize: 'function',
} as const satisfies Record<keyof VmmBinding, ExportKind>;

const LINUX_ONLY: readonly string[] = ['personality', 'setNoNewPrivs', 'seccompFilter', 'disableOffloads'];

/** What load checks of the FreeBSD host exports: HOST_SHAPE without the Linux-only calls. */
export const FREEBSD_HOST_SHAPE = Object.fromEntries(Object.entries(HOST_SHAPE).filter(([k]) => !LINUX_ONLY.includes(k))) as Readonly<
  Record<keyof FreebsdHostBinding, 'function'>
>;

/** Problems of a loaded FreeBSD addon whose compiled numbers differ from the ones TypeScript reads. */
export function vmmAbiProblems(b: Pick<VmmBinding, 'vmmIoctls' | 'vmExitSize'>): string[] {
  const problems: string[] = [];
  if (b.vmExitSize !== VMM_EXIT.size) problems.push(`struct vm_exit is ${b.vmExitSize} bytes, TypeScript reads ${VMM_EXIT.size}`);
  for (const [name, value] of Object.entries(VMM_IOCTLS)) {
    const got = b.vmmIoctls[name as VmmIoctlName];
    if (got !== value) problems.push(`${name} is 0x${Number(got).toString(16)}, TypeScript uses 0x${value.toString(16)}`);
  }
  return problems;
}

let cached: FreebsdNativeBinding | undefined;

/** Loads <package>/build/Release/ukvm_native.node (the FreeBSD build) once per thread, checked. */
export function loadVmmNative(): FreebsdNativeBinding {
  if (cached) return cached;
  const b = loadAddon<FreebsdNativeBinding>('ukvm_native', { ...VMM_SHAPE, ...FREEBSD_HOST_SHAPE });
  const problems = vmmAbiProblems(b);
  if (problems.length) throw new Error(`ukvm_native does not match its typed surface (rebuild it: npm run build): ${problems.join('; ')}`);
  cached = b;
  return b;
}
