// The sandbox's policy (docs/abi.md §17): the system calls the monitor may
// still make once a VM is set up, as ONE table, with why each is there.
// filter.ts compiles it into the seccomp-BPF program; tests and
// scripts/syscalls.mjs run that program against every call.
//
// How the list was found: by measurement, not by guessing.
// `node scripts/syscalls.mjs` runs the KVM test suite, the library tests, a
// terminal session, the sandbox probes and the ping-flood + block soak under
// `strace -f` with the monitor's own seccomp(2) faked, and counts every call
// made after that point (per scope: the CLI's whole process, a library VM's
// thread). A call is in the table because a workload made it (`seen`), or —
// a few, marked `seen: []` — because a path in the code makes it that no
// workload happened to take; `why` names the path either way.
//
// Default action: KILL THE PROCESS (SECCOMP_RET_KILL_PROCESS, SIGSYS), as the
// reference does. A monitor that makes a call outside this table is either
// broken or subverted; either way it must not go on. Failing with EPERM
// instead would let a subverted monitor keep probing for what still works,
// and would let a broken path carry on in a state nobody tested; a kill
// cannot be caught or ignored, is the status orchestrators know from
// solo5-hvt (SIGSYS, 159 in a shell), and the kernel's audit log names the
// call (`type=SECCOMP … syscall=N`). KILL_PROCESS, not KILL_THREAD: one dead
// thread would leave a Node process hanging. In the library that means a
// forbidden call on a VM's thread ends the embedding program too: the
// address space is shared, so after such a call nothing in it can be trusted.
//
// Two exceptions fail with an errno instead (FAIL below), because libraries
// make them on legitimate paths and cope with the failure: glibc's malloc
// opens /proc/sys/vm/overcommit_memory the first time it shrinks a thread's
// heap, at any moment (measured: after set-up, on the main thread), and
// treats a failure as "do not shrink"; so open/openat/openat2 fail with
// EPERM — they are impossible either way. clone3 fails with ENOSYS: its
// flags are behind a pointer, which a filter cannot read, and glibc then
// falls back to clone, whose flags the filter checks.
//
// Arguments: a filter sees the six arguments as 64-bit values. Every
// argument checked here is one the kernel reads as 32 bits (an ioctl
// request, an fcntl command, clone's flags, a pid), so the filter compares
// the low 32 bits, which is exactly what the kernel acts on.
//
// Scopes: 'process' is the CLI (every thread of the process, TSYNC);
// 'thread' is a library worker's thread. A worker is confined before it
// builds its first sandboxed VM and then builds and runs any number of them
// (library/worker.ts), so 'thread' also allows a build's calls: the KVM
// ioctls of a new VM and vCPU on the /dev/kvm descriptor it holds, a new
// eventfd and epoll set. What a build opens (kernel, disks, taps) the
// caller's thread opens for it (library/broker.ts): no open here either. A VM's thread never needs to
// create a thread, so clone is not allowed there at all: a thread it created
// would inherit its filter, and libuv's pool, shared by the whole process,
// must never be born filtered.
//
// What the table does not stop: reading and writing the monitor's own
// memory; making pages executable (mmap/mprotect protections are not
// checked: no workload asked for PROT_EXEC after set-up, but V8 may for code
// it compiles later, and a kill there would end a healthy monitor); using
// the descriptors already open (the guest's disk and tap, /dev/kvm and the
// VM, stdio), within the calls above. It stops new files, programs,
// processes, sockets, namespaces, mounts, modules, BPF programs, ptrace,
// signals to other processes and access to their memory.

/** Where a rule applies: the CLI's whole process, or a library VM's own thread. */
export type Scope = 'process' | 'thread';

/** Where scripts/syscalls.mjs saw a call after set-up. */
export type Workload = 'kvm' | 'library' | 'tty' | 'probe' | 'soak' | 'gdb';

export const AUDIT_ARCH_X86_64 = 0xc000003e;
/** x32 system calls are x86_64 ones with this bit: refused outright. */
export const X32_SYSCALL_BIT = 0x40000000;
/** SECCOMP_RET_KILL_PROCESS: see above. */
export const DEFAULT_ACTION = 0x80000000;

/** A condition on one argument (its low 32 bits, see above); the call is killed when it fails. */
export type ArgRule =
  /** The argument is one of these values (a value may be limited to some scopes). */
  | { kind: 'oneOf'; arg: number; values: readonly { value: number; name: string; scopes?: readonly Scope[]; debugger?: true }[] }
  /** Every bit of `set` is set and every bit of `clear` is clear. */
  | { kind: 'flags'; arg: number; set: number; clear?: number }
  /** The argument is this process's id. */
  | { kind: 'ownPid'; arg: number };

export interface Rule {
  /** x86_64 number (asm/unistd_64.h; a unit test checks them against the header). */
  readonly nr: number;
  readonly scopes: readonly Scope[];
  /** Allowed only when this holds. */
  readonly args?: ArgRule;
  /** Compared first: made on every VM exit. */
  readonly hot?: boolean;
  /** Only while a debugger is attached (Module.sandbox() === 'debugger', modules/gdb). */
  readonly debugger?: true;
  /** The paths that make it after set-up. */
  readonly why: string;
  /** Workloads that made it after set-up (in either scope); [] = a path of `why` no workload took. */
  readonly seen: readonly Workload[];
}

const BOTH: readonly Scope[] = ['process', 'thread'];
const CLI: readonly Scope[] = ['process'];
/** A library worker's thread, which builds VMs once confined (library/worker.ts). */
const THREAD: readonly Scope[] = ['thread'];

/** _IOR / _IOW / _IOWR(type, nr, size) of linux/ioctl.h (direction 2 = read, 1 = write, 3 = both). */
const ior = (type: number, nr: number, size: number) => ((2 << 30) | (size << 16) | (type << 8) | nr) >>> 0;
const iow = (type: number, nr: number, size: number) => ((1 << 30) | (size << 16) | (type << 8) | nr) >>> 0;
const iowr = (type: number, nr: number, size: number) => ((3 << 30) | (size << 16) | (type << 8) | nr) >>> 0;

export const IOCTL = {
  KVM_RUN: 0xae80,
  KVM_CREATE_VM: 0xae01,
  KVM_CHECK_EXTENSION: 0xae03,
  KVM_CREATE_VCPU: 0xae41,
  KVM_SET_USER_MEMORY_REGION: iow(0xae, 0x46, 32),
  KVM_GET_SUPPORTED_CPUID: iowr(0xae, 0x05, 8),
  KVM_SET_CPUID2: iow(0xae, 0x90, 8),
  KVM_GET_TSC_KHZ: 0xaea3,
  KVM_GET_REGS: ior(0xae, 0x81, 144),
  KVM_SET_REGS: iow(0xae, 0x82, 144),
  KVM_GET_SREGS: ior(0xae, 0x83, 312),
  KVM_SET_SREGS: iow(0xae, 0x84, 312),
  KVM_GET_FPU: ior(0xae, 0x8c, 416),
  KVM_SET_GUEST_DEBUG: iow(0xae, 0x9b, 72),
  TCGETS: 0x5401,
  TCSETS: 0x5402,
} as const;

export const CLONE_THREAD = 0x00010000;
/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME (0x80). */
export const CLONE_NAMESPACES = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080;

export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;

/** The allow-list. Order does not matter (filter.ts puts `hot` first). */
export const POLICY = {
  ioctl: {
    nr: 16, scopes: BOTH, hot: true, seen: ['kvm', 'library', 'tty', 'probe', 'soak'],
    args: {
      kind: 'oneOf', arg: 1, values: [
        { value: IOCTL.KVM_RUN, name: 'KVM_RUN' },
        { value: IOCTL.KVM_GET_REGS, name: 'KVM_GET_REGS' },
        { value: IOCTL.KVM_SET_REGS, name: 'KVM_SET_REGS', debugger: true },
        { value: IOCTL.KVM_GET_SREGS, name: 'KVM_GET_SREGS', debugger: true },
        { value: IOCTL.KVM_SET_SREGS, name: 'KVM_SET_SREGS', debugger: true },
        { value: IOCTL.KVM_GET_FPU, name: 'KVM_GET_FPU', debugger: true },
        { value: IOCTL.KVM_SET_GUEST_DEBUG, name: 'KVM_SET_GUEST_DEBUG', debugger: true },
        // Building a VM on a confined library worker (the same ioctls, in
        // build order, as the CLI makes before it is confined).
        { value: IOCTL.KVM_CREATE_VM, name: 'KVM_CREATE_VM', scopes: THREAD },
        { value: IOCTL.KVM_CHECK_EXTENSION, name: 'KVM_CHECK_EXTENSION', scopes: THREAD },
        { value: IOCTL.KVM_SET_USER_MEMORY_REGION, name: 'KVM_SET_USER_MEMORY_REGION', scopes: THREAD },
        { value: IOCTL.KVM_CREATE_VCPU, name: 'KVM_CREATE_VCPU', scopes: THREAD },
        { value: IOCTL.KVM_GET_SUPPORTED_CPUID, name: 'KVM_GET_SUPPORTED_CPUID', scopes: THREAD },
        { value: IOCTL.KVM_SET_CPUID2, name: 'KVM_SET_CPUID2', scopes: THREAD },
        { value: IOCTL.KVM_SET_SREGS, name: 'KVM_SET_SREGS', scopes: THREAD },
        { value: IOCTL.KVM_SET_REGS, name: 'KVM_SET_REGS', scopes: THREAD },
        { value: IOCTL.KVM_GET_TSC_KHZ, name: 'KVM_GET_TSC_KHZ', scopes: THREAD },
        { value: IOCTL.TCGETS, name: 'TCGETS', scopes: CLI },
        { value: IOCTL.TCSETS, name: 'TCSETS', scopes: CLI },
      ],
    },
    why: 'KVM_RUN: every entry into the guest. KVM_GET_REGS: the rip in the message of a fatal exit. TCGETS/TCSETS (CLI): ' +
      "Node's exit puts back the modes of a terminal on stdin/stdout/stderr. With a debugger attached (gdb): the vCPU's registers, " +
      'special registers and x87/SSE state read and written, and KVM_SET_GUEST_DEBUG (single-step, breakpoints). ' +
      'A library worker (thread) builds its VMs once confined: KVM_CREATE_VM on the /dev/kvm it opened before, ' +
      'KVM_CHECK_EXTENSION, the memory slot, the vCPU, its CPUID, special and general registers and TSC rate. ' +
      'Nothing else: no TIOCSTI into a terminal, and on the CLI no new VM, no new vCPU, no memory slot.',
  },
  read: {
    nr: 0, scopes: BOTH, seen: ['kvm', 'library', 'tty', 'probe', 'soak'],
    why: "NET_READ from a tap; draining the vCPU's wake eventfd; libuv reading its own wake-up eventfd.",
  },
  write: {
    nr: 1, scopes: BOTH, seen: ['kvm', 'library', 'tty', 'probe', 'soak'],
    why: 'PUTS to stdout, NET_WRITE to a tap, diagnostics on stderr, the wake eventfd (SIGINT/SIGTERM handler, stop()), libuv wake-ups (a worker\'s postMessage).',
  },
  pread64: { nr: 17, scopes: BOTH, seen: ['kvm', 'library', 'tty', 'soak'], why: 'BLOCK_READ: a positioned read from the disk.' },
  pwrite64: { nr: 18, scopes: BOTH, seen: ['kvm', 'library', 'tty', 'soak'], why: 'BLOCK_WRITE: a positioned write to the disk.' },
  epoll_pwait2: { nr: 441, scopes: BOTH, seen: ['kvm', 'library'], why: 'POLL with a timeout (nanoseconds, no timer descriptor).' },
  epoll_wait: {
    nr: 232, scopes: BOTH, seen: ['kvm', 'soak'],
    why: 'POLL with a zero timeout, the spin before sleeping (UKVM_POLL_SPIN_NS, pollSpinNs), and POLL on kernels without epoll_pwait2.',
  },
  epoll_pwait: { nr: 281, scopes: BOTH, seen: ['kvm', 'library', 'tty', 'probe', 'soak'], why: "Node's event loop: at the CLI's exit, and in a VM's worker once the guest ended." },
  epoll_ctl: {
    nr: 233, scopes: BOTH, seen: ['kvm', 'library', 'tty', 'probe', 'soak'],
    why: "Node's event loop registering its last handles as the process exits; a library worker's build adding the wake eventfd and taps to POLL's wait set.",
  },
  epoll_create1: { nr: 291, scopes: THREAD, seen: ['library'], why: "A library worker's build: POLL's wait set of the new vCPU." },
  eventfd2: { nr: 290, scopes: THREAD, seen: ['library'], why: "A library worker's build: the new vCPU's wake eventfd (stop(), signals)." },
  lseek: { nr: 8, scopes: THREAD, seen: ['library'], why: "A library worker's build: a disk's capacity (seek to its end; the file is opened by the caller's thread)." },
  poll: {
    nr: 7, scopes: BOTH, seen: ['kvm', 'probe', 'soak'],
    why: 'Waiting for a console pipe or socket to take output, and the 1 ms sleeps of NET_WRITE on a full tap, together with the wake eventfd (RunControl.waitWritable).',
  },
  futex: {
    nr: 202, scopes: BOTH, seen: ['kvm', 'library', 'tty', 'probe', 'soak'],
    why: "Every lock and condition variable: V8's platform threads and GC, postMessage, Atomics.wait of the library's console back-pressure, joining threads at exit.",
  },
  mmap: { nr: 9, scopes: BOTH, seen: ['kvm', 'library', 'tty', 'probe', 'soak'], why: "V8's heap growing, glibc malloc's large blocks and thread arenas." },
  munmap: { nr: 11, scopes: BOTH, seen: ['kvm', 'library', 'tty', 'probe', 'soak'], why: 'The same memory given back; guest memory and run areas unmapped when a library VM closes.' },
  mprotect: { nr: 10, scopes: BOTH, seen: ['kvm', 'library', 'tty', 'probe', 'soak'], why: "V8's heap pages committed and guarded, glibc growing a thread arena." },
  madvise: { nr: 28, scopes: BOTH, seen: ['kvm', 'library', 'tty', 'probe', 'soak'], why: "GC giving pages back (MADV_DONTNEED), glibc freeing a thread's stack at its exit." },
  brk: { nr: 12, scopes: BOTH, seen: ['library', 'probe'], why: "glibc malloc growing or trimming the main arena (the main thread's small allocations)." },
  close: {
    nr: 3, scopes: BOTH, seen: ['kvm', 'library', 'tty', 'probe', 'soak'],
    why: "A library VM closing its descriptors when the guest ends; Node's exit closing its handles.",
  },
  fstat: { nr: 5, scopes: CLI, seen: ['kvm', 'tty', 'probe', 'soak'], why: "Node's exit checking stdin, stdout and stderr before it restores their flags." },
  fcntl: {
    nr: 72, scopes: BOTH, seen: ['kvm', 'library', 'tty', 'probe', 'soak'],
    args: {
      kind: 'oneOf', arg: 1, values: [
        { value: F_GETFL, name: 'F_GETFL', scopes: CLI },
        { value: F_SETFL, name: 'F_SETFL', scopes: CLI },
        { value: F_SETFD, name: 'F_SETFD', scopes: THREAD },
      ],
    },
    why: "Node's exit restoring the flags of stdin, stdout and stderr (F_GETFL, F_SETFL; CLI). A library worker's build marking the new VM and vCPU descriptors close-on-exec (F_SETFD; thread).",
  },
  statx: {
    nr: 332, scopes: CLI, seen: ['kvm', 'tty', 'probe', 'soak'],
    why: "The console's first PUTS asks whether stdout is a pipe or socket (Node's fstatSync of fd 1). Gone once modules/console asks at set-up.",
  },
  rt_sigprocmask: { nr: 14, scopes: BOTH, seen: ['kvm', 'library', 'tty', 'probe', 'soak'], why: "glibc blocking signals while a thread exits; Node's exit restoring a terminal." },
  rt_sigreturn: { nr: 15, scopes: BOTH, seen: ['kvm', 'library', 'tty', 'probe'], why: 'Returning from the SIGINT/SIGTERM handler and from the no-op kick handler.' },
  restart_syscall: {
    nr: 219, scopes: BOTH, seen: [],
    why: 'The kernel resuming a timed wait (futex, poll, nanosleep) after SIGSTOP/SIGCONT: a stopped and continued monitor (Ctrl-Z, an orchestrator pausing it).',
  },
  tgkill: {
    nr: 234, scopes: BOTH, seen: ['kvm'], args: { kind: 'ownPid', arg: 0 },
    why: "The kick signal to the vCPU's thread (SIGINT/SIGTERM handler, stop()); abort() raising SIGABRT. Only to this process's threads.",
  },
  getpid: { nr: 39, scopes: BOTH, seen: ['kvm', 'library', 'tty', 'probe', 'soak'], why: 'glibc finding its own pid for pthread_kill() and raise().' },
  sched_getaffinity: {
    nr: 204, scopes: BOTH, seen: [],
    why: 'glibc counting CPUs (sysconf, a new malloc arena) opens /sys/devices/system/cpu/online, then /proc/stat; both refused (FAIL), ' +
      'it falls back to this. The open was seen after set-up (probe); the fallback, with the opens refused, by hand.',
  },
  sched_yield: { nr: 24, scopes: BOTH, seen: ['kvm', 'library'], why: 'Destroying a vCPU waits for signal handlers still touching it; V8 spin locks.' },
  clock_gettime: {
    nr: 228, scopes: BOTH, seen: ['library'],
    why: "The vCPU thread's CPU time (library stats); and WALLTIME and every other clock read where the vDSO cannot answer (a clocksource without vDSO support).",
  },
  exit: { nr: 60, scopes: BOTH, seen: ['kvm', 'library', 'tty', 'probe', 'soak'], why: "A thread ending: V8's platform threads at the CLI's exit, a VM's worker once the guest ended." },
  exit_group: { nr: 231, scopes: CLI, seen: ['kvm', 'tty', 'probe', 'soak'], why: 'The CLI exiting with the guest\'s status.' },
  clone: {
    nr: 56, scopes: CLI, seen: [],
    args: { kind: 'flags', arg: 0, set: CLONE_THREAD, clear: CLONE_NAMESPACES },
    why: "A thread (CLONE_THREAD, no namespace flags) started after set-up. None was: V8's threads and libuv's pool (Node's module loader starts it) " +
      'exist before; allowed so that a later one (a Node whose pool starts on its first job) does not kill the monitor. Never a process.',
  },
  shutdown: {
    nr: 48, scopes: CLI, debugger: true, seen: ['gdb'],
    why: "The gdb stub's socket thread ending its one connection (detach, kill: socket.end()). The listening socket is closed before set-up ends.",
  },
  set_robust_list: { nr: 273, scopes: CLI, seen: [], why: 'glibc starting a thread (after clone).' },
  rseq: { nr: 334, scopes: CLI, seen: [], why: 'glibc registering a new thread for restartable sequences.' },
} as const satisfies Record<string, Rule>;

export type AllowedCall = keyof typeof POLICY;

/** Calls that fail with an errno instead of the default action (see above). */
export const FAIL = {
  open: { nr: 2, errno: 1 /* EPERM */, why: 'Impossible; fails because glibc opens files lazily and copes (malloc reads /proc/sys/vm/overcommit_memory).' },
  openat: { nr: 257, errno: 1, why: 'As open; what glibc calls (seen after set-up: the overcommit file 6× in the suites, once in a 1-minute soak; /sys/devices/system/cpu/online once).' },
  openat2: { nr: 437, errno: 1, why: 'As open.' },
  clone3: { nr: 435, errno: 38 /* ENOSYS */, why: 'Its flags are behind a pointer no filter can read; glibc falls back to clone, which the filter checks.' },
} as const satisfies Record<string, { nr: number; errno: number; why: string }>;

/**
 * The calls issue 12 names, which must be impossible after set-up in both
 * scopes, by number (tests try each; clone is impossible without CLONE_THREAD).
 */
export const FORBIDDEN = {
  execve: 59, execveat: 322,
  open: 2, openat: 257, openat2: 437, creat: 85,
  socket: 41, connect: 42, bind: 49, listen: 50, accept: 43, accept4: 288,
  ptrace: 101, process_vm_readv: 310, process_vm_writev: 311,
  fork: 57, vfork: 58, clone: 56,
  mount: 165, unshare: 272, setns: 308, bpf: 321,
  init_module: 175, finit_module: 313, kexec_load: 246, kexec_file_load: 320,
} as const;

/** The number of calls a scope allows (the list's size), arguments aside; `withDebugger`: with gdb attached. */
export function allowedCount(scope: Scope, withDebugger = false): number {
  return Object.values(POLICY).filter((r: Rule) => r.scopes.includes(scope) && (withDebugger || r.debugger !== true)).length;
}
