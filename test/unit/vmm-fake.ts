// A recording fake of the FreeBSD native surface (native/binding/vmm.ts) for
// the vmm unit tests: every call is logged in order with its arguments, the
// next VM_RUN results are queued as made-up struct vm_exit images, and any
// call can be made to fail with an errno-carrying error shaped like the addon's.
import { closeSync, writeSync } from 'node:fs';
import { type FreebsdNativeBinding, VMM_EXIT, VMM_IOCTLS, VMM_RUN_EXIT, VMM_RUN_INTERRUPTED } from '../../native/binding/vmm.js';

export const VM_FD = 7;
export const REAPER_FD = 8;
export const WAKE_FD = 9;
export const KQ_FD = 10;
/** The ring kick pipe's ends kickPipe() returns unless told otherwise (Fake.kickPipe). */
export const KICK_READ_FD = 20;
export const KICK_WRITE_FD = 21;
export const TOKEN = 513;
export const TSC_HZ = 2_893_000_000n;

/** An Error shaped like the addon's: message "SYSCALL: strerror", errno, code, syscall. */
export function nativeError(syscall: string, errno: number, code: string, text: string): Error {
  return Object.assign(new Error(`${syscall}: ${text}`), { errno, code, syscall });
}

/** A made-up exit: the struct vm_exit fields the backend reads. */
export type FakeExit =
  | { exitcode: 0; rip?: bigint; in?: boolean; bytes?: number; string?: boolean; port: number; eax?: number }
  | { exitcode: 1; rip?: bigint; instLength?: number; status?: number; exitReason?: number; qualification?: bigint; instType?: number; instError?: number }
  | { exitcode: number; rip?: bigint; instLength?: number };

/** What run() does next: an exit, an interruption (EINTR / a pending request), or a failure. */
export type RunStep = FakeExit | 'interrupted' | Error;

export function encodeExit(e: FakeExit, out: Uint8Array): void {
  out.fill(0);
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  v.setUint32(VMM_EXIT.exitcode, e.exitcode, true);
  v.setBigUint64(VMM_EXIT.rip, e.rip ?? 0n, true);
  if ('instLength' in e) v.setInt32(VMM_EXIT.instLength, e.instLength ?? 0, true);
  if (e.exitcode === 0 && 'port' in e) {
    const bits = (e.bytes ?? 4) | (e.in ? 8 : 0) | (e.string ? 16 : 0);
    v.setUint16(VMM_EXIT.inoutBits, bits, true);
    v.setUint16(VMM_EXIT.inoutPort, e.port, true);
    v.setUint32(VMM_EXIT.inoutEax, e.eax ?? 0, true);
  }
  if (e.exitcode === 1 && 'status' in e) {
    v.setInt32(VMM_EXIT.vmxStatus, e.status ?? 0, true);
    v.setUint32(VMM_EXIT.vmxExitReason, e.exitReason ?? 0, true);
    v.setBigUint64(VMM_EXIT.vmxQualification, e.qualification ?? 0n, true);
    v.setInt32(VMM_EXIT.vmxInstType, e.instType ?? 0, true);
    v.setInt32(VMM_EXIT.vmxInstError, e.instError ?? 0, true);
  }
}

/** One write(2) to a real descriptor, with the addon's results: −1 for EAGAIN. */
function writeReal(fd: number, bytes: Uint8Array): number {
  try {
    return writeSync(fd, bytes);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return -1;
    throw e;
  }
}

export interface Fake {
  binding: FreebsdNativeBinding;
  /** Every call, e.g. "vmSetRegister(7,0,15,2147549217)". */
  calls: string[];
  steps: RunStep[];
  signal: number;
  stop: boolean;
  interrupts: number;
  osreldate: number;
  invariant: number;
  /** Calls that throw: name → error. */
  fail: Record<string, Error>;
  /** What kickPipe() returns next (real descriptors for a test whose ring thread reads them). */
  kickPipe: [number, number];
  /** What writeFd returns for a descriptor (−1: EAGAIN, a full pipe); by default every byte is taken. */
  writeResult: Record<number, number>;
  /** Real descriptors writeFd and closeFd pass on to the host (a ring thread reads them); still recorded. */
  real: Set<number>;
}

const show = (a: unknown): string => {
  if (a instanceof Uint8Array) return `[${a.length}]`;
  if (a instanceof ArrayBuffer) return `buffer(${a.byteLength})`;
  if (Array.isArray(a)) return `[${a.map(show).join(' ')}]`;
  return typeof a === 'string' ? a : String(a);
};

export function fake(over: Partial<Pick<Fake, 'osreldate' | 'invariant' | 'fail'>> = {}): Fake {
  const f: Fake = {
    calls: [], steps: [], signal: 0, stop: false, interrupts: 0,
    osreldate: 1402000, invariant: 1, fail: {}, kickPipe: [KICK_READ_FD, KICK_WRITE_FD], writeResult: {}, real: new Set(), ...over,
  } as unknown as Fake;
  const mapped = new Set<ArrayBufferLike>();
  let sequence = 0;
  const rec = <T>(name: string, args: unknown[], result: () => T): T => {
    f.calls.push(`${name}(${args.map(show).join(',')})`);
    const err = f.fail[name];
    if (err) throw err;
    return result();
  };
  const none = () => undefined;
  const b: FreebsdNativeBinding = {
    vmmIoctls: { ...VMM_IOCTLS },
    vmExitSize: VMM_EXIT.size,
    vmmCreate: (name) => rec('vmmCreate', [name], none),
    vmmDestroy: (name) => rec('vmmDestroy', [name], none),
    vmmOpen: (name) => rec('vmmOpen', [name], () => VM_FD),
    vmSetCapability: (...a) => rec('vmSetCapability', a, none),
    vmAllocMemseg: (...a) => rec('vmAllocMemseg', a, none),
    vmMmapMemseg: (...a) => rec('vmMmapMemseg', a, none),
    // Shared, as the addon's guest mapping is: shareMemory hands the same pages to another thread.
    vmMapGuest: (fd, len) =>
      rec('vmMapGuest', [fd, len], () => {
        const m = new SharedArrayBuffer(len);
        mapped.add(m);
        return m as unknown as ArrayBuffer;
      }),
    shareMemory: (m) =>
      rec('shareMemory', [m.byteLength], () => {
        if (!mapped.has(m)) throw new TypeError('not a guest memory buffer');
        return m as unknown as SharedArrayBuffer;
      }),
    vmProtect: (_m, off, len, prot) => rec('vmProtect', [off, len, prot], none),
    vmSetRegister: (...a) => rec('vmSetRegister', a, none),
    vmGetRegister: (fd, vcpu, reg) => rec('vmGetRegister', [fd, vcpu, reg], () => 0x1000n + BigInt(reg)),
    vmSetSegmentDescriptor: (...a) => rec('vmSetSegmentDescriptor', a, none),
    vmActivateCpu: (...a) => rec('vmActivateCpu', a, none),
    tscFrequency: () => rec('tscFrequency', [], () => TSC_HZ),
    tscInvariant: () => rec('tscInvariant', [], () => f.invariant),
    osReleaseDate: () => rec('osReleaseDate', [], () => f.osreldate),
    nextVmSequence: () => sequence++,
    vmmReaper: (name) => rec('vmmReaper', [name], () => REAPER_FD),
    capRightsLimitIoctl: (fd) => rec('capRightsLimitIoctl', [fd], none),
    capIoctlsLimit: (fd, cmds) => rec('capIoctlsLimit', [fd, [...cmds].map((c) => `0x${c.toString(16)}`)], none),
    capRightsLimitKick: (fd, writeEnd) => rec('capRightsLimitKick', [fd, writeEnd ? 'write' : 'read'], none),
    capEnter: () => rec('capEnter', [], none),
    createVcpu: (...a) => rec('createVcpu', a, () => ({ token: TOKEN, wakeFd: WAKE_FD })),
    destroyVcpu: (t) => rec('destroyVcpu', [t], none),
    run: (t, exit) =>
      rec('run', [t], () => {
        const step = f.steps.shift() ?? 'interrupted';
        if (step instanceof Error) throw step;
        if (step === 'interrupted') return VMM_RUN_INTERRUPTED;
        encodeExit(step, exit);
        return VMM_RUN_EXIT;
      }),
    kick: (t) => rec('kick', [t], () => true),
    interrupt: (t) => rec('interrupt', [t], () => true),
    takeInterrupt: () => (f.interrupts > 0 ? (f.interrupts--, true) : false),
    stopRequested: () => f.stop,
    threadCpuNs: () => 1,
    kickPipe: () => rec('kickPipe', [], () => [...f.kickPipe] as [number, number]),
    diskSize: (fd) => rec('diskSize', [fd], () => 1n << 20n),
    // Host.
    closeFd: (fd) => rec('closeFd', [fd], () => (f.real.has(fd) ? (f.real.delete(fd), closeSync(fd)) : undefined)),
    openFile: (path, writable) => rec('openFile', [path, writable], () => 9),
    strerror: (e) => `error ${e}`,
    writeFd: (fd, bytes) => rec('writeFd', [fd, [...bytes].join(' ')], () => f.writeResult[fd] ?? (f.real.has(fd) ? writeReal(fd, bytes) : bytes.length)),
    readFd: () => -1,
    waitWritable: () => 1,
    realtimeInto: (bytes) => void bytes.fill(0),
    preadAll: (_fd, bytes) => bytes.length,
    pwriteAll: (_fd, bytes) => bytes.length,
    seekEnd: () => 0n,
    tapAttach: (name) => rec('tapAttach', [name], () => 30),
    tapName: () => 'tap0',
    ifMtu: () => 1500,
    setNonBlocking: (fd) => rec('setNonBlocking', [fd], none),
    waitsetCreate: () => rec('waitsetCreate', [], () => KQ_FD),
    checkPollable: (fd) => rec('checkPollable', [fd], none),
    waitsetAdd: (...a) => rec('waitsetAdd', a, none),
    waitsetWait: () => 0,
    installKickHandler: () => rec('installKickHandler', [], none),
    installTerminationHandlers: (s) => rec('installTerminationHandlers', [s], none),
    restoreDefaultSignals: (s) => rec('restoreDefaultSignals', [s], none),
    pendingSignal: () => f.signal,
  };
  f.binding = b;
  return f;
}
