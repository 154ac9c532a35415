// The one place a FreeBSD struct vm_exit is decoded (offsets: VMM_EXIT in
// native/binding/vmm.ts, pinned in native/freebsd/fbsd_sys.h), and the
// reference tender's wording of the exits that end a run (docs/abi.md §18):
// "unhandled exit: exitcode=%d, rip=0x%lx", and for VM_EXITCODE_VMX the line
// "unhandled VMX exit:" with seven detail lines.
import { VMM_EXIT as X, VMM_EXITCODE } from '../../../native/binding/vmm.js';
import type { FatalExit, VcpuExit } from '../backend.js';

/** A decoded vm_exit. */
export type VmmExit =
  | { code: 'inout'; rip: bigint; in: boolean; bytes: number; string: boolean; rep: boolean; port: number; eax: number }
  | { code: 'bogus'; rip: bigint; instLength: number }
  | {
      code: 'vmx';
      rip: bigint;
      instLength: number;
      status: number;
      exitReason: number;
      qualification: bigint;
      instType: number;
      instError: number;
    }
  | { code: 'other'; rip: bigint; exitcode: number };

/** Decodes the struct vm_exit VM_RUN filled in (VMM_EXIT.size bytes). */
export function decodeVmExit(v: DataView): VmmExit {
  const exitcode = v.getUint32(X.exitcode, true);
  const rip = v.getBigUint64(X.rip, true);
  const instLength = v.getInt32(X.instLength, true);
  switch (exitcode) {
    case VMM_EXITCODE.inout: {
      const bits = v.getUint16(X.inoutBits, true);
      return {
        code: 'inout',
        rip,
        bytes: bits & 7,
        in: (bits & 8) !== 0,
        string: (bits & 16) !== 0,
        rep: (bits & 32) !== 0,
        port: v.getUint16(X.inoutPort, true),
        eax: v.getUint32(X.inoutEax, true),
      };
    }
    case VMM_EXITCODE.bogus:
      return { code: 'bogus', rip, instLength };
    case VMM_EXITCODE.vmx:
      return {
        code: 'vmx',
        rip,
        instLength,
        status: v.getInt32(X.vmxStatus, true),
        exitReason: v.getUint32(X.vmxExitReason, true),
        qualification: v.getBigUint64(X.vmxQualification, true),
        instType: v.getInt32(X.vmxInstType, true),
        instError: v.getInt32(X.vmxInstError, true),
      };
    default:
      return { code: 'other', rip, exitcode };
  }
}

/** The port of the ring kick (§13): an OUT there is absorbed by the backend, never a hypercall. */
export const RING_KICK_PORT = 0x600;

/** A port access as the core sees it; the core checks direction, size and range (§9.2). */
export function ioExit(e: Extract<VmmExit, { code: 'inout' }>): VcpuExit {
  return { kind: 'io', out: !e.in, size: e.bytes, port: e.port, value: e.eax };
}

/** A 32-bit OUT to the ring kick port: resumed, with a byte to the kick pipe if there is one (§18). */
export function isRingKick(e: VmmExit): boolean {
  return e.code === 'inout' && !e.in && e.bytes === 4 && e.port === RING_KICK_PORT;
}

const hex16 = (n: bigint) => `0x${n.toString(16).padStart(16, '0')}`;

/**
 * The reference's eight lines for VM_EXITCODE_VMX. Its tabs are spaces here:
 * the printer escapes control characters in diagnostics.
 */
export function vmxLines(e: Extract<VmmExit, { code: 'vmx' }>): string[] {
  return [
    'unhandled VMX exit:',
    `    rip           ${hex16(e.rip)}`,
    `    inst_length   ${e.instLength}`,
    `    status        ${e.status}`,
    `    exit_reason   ${e.exitReason >>> 0}`,
    `    qualification ${hex16(e.qualification)}`,
    `    inst_type     ${e.instType}`,
    `    inst_error    ${e.instError}`,
  ];
}

/** What the core is handed for an exit it must treat as unhandled: the vmm exit code as the reason. */
export function otherExit(e: Extract<VmmExit, { code: 'other' }>): VcpuExit {
  return { kind: 'other', reason: e.exitcode };
}

const hex = (n: number | bigint) => `0x${n.toString(16)}`;

/**
 * The one line of a fatal exit, in the FreeBSD reference's words. `last` is
 * the vm_exit the exit came from (its rip is the reference's rip); vmm has
 * no translation-fault, entry-failure or internal-error exits of its own, so
 * those kinds (never produced by this backend) fall back to the unhandled line.
 */
export function describeVmmFatal(kind: FatalExit, exit: VcpuExit, last: VmmExit | undefined): string {
  const rip = last?.rip ?? 0n;
  const code = exit.kind === 'other' ? exit.reason : last?.code === 'other' ? last.exitcode : (last ? exitcodeOf(last) : 0);
  if (kind === 'translation-fault') return `host/guest translation fault: rip=${hex(rip)}`;
  return `unhandled exit: exitcode=${code}, rip=${hex(rip)}`;
}

function exitcodeOf(e: VmmExit): number {
  switch (e.code) {
    case 'inout':
      return VMM_EXITCODE.inout;
    case 'bogus':
      return VMM_EXITCODE.bogus;
    case 'vmx':
      return VMM_EXITCODE.vmx;
    case 'other':
      return e.exitcode;
  }
}
