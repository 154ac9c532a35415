// The one place a struct kvm_run exit is decoded into a VcpuExit, and the
// reference tender's wording of the exits that end a run (offsets and exit
// numbers: docs/abi.md Appendix A; the addon pins them with static_assert
// and native/binding/load.ts checks them against KVM_RUN_OFFSETS at load).
import { KVM_RUN_OFFSETS as RUN } from '../../../native/binding.js';
import type { FatalExit, VcpuExit } from '../backend.js';
import { decodeDebugExit } from './debug.js';

const EXIT_IO = 2;
const EXIT_DEBUG = 4;
const EXIT_MMIO = 6;
const EXIT_FAIL_ENTRY = 9;
const EXIT_INTERNAL_ERROR = 17;

/** Decodes the exit the run area describes (after KVM_RUN returned 0). */
export function decodeExit(v: DataView): VcpuExit {
  const reason = v.getUint32(RUN.exitReason, true);
  switch (reason) {
    case EXIT_IO: {
      const dataOff = v.getUint32(RUN.ioDataOffset, true);
      const inRange = v.getUint32(RUN.ioDataOffset + 4, true) === 0 && dataOff + 4 <= v.byteLength;
      return {
        kind: 'io',
        out: v.getUint8(RUN.ioDirection) === 1,
        size: v.getUint8(RUN.ioSize),
        port: v.getUint16(RUN.ioPort, true),
        value: inRange ? v.getUint32(dataOff, true) : 0,
      };
    }
    case EXIT_DEBUG:
      return decodeDebugExit(v);
    case EXIT_MMIO:
      return { kind: 'mmio', address: v.getBigUint64(RUN.mmioPhysAddr, true), write: v.getUint8(RUN.mmioIsWrite) !== 0 };
    case EXIT_FAIL_ENTRY:
      return { kind: 'failEntry', reason: v.getBigUint64(RUN.failEntryReason, true) };
    case EXIT_INTERNAL_ERROR:
      return { kind: 'internalError', suberror: v.getUint32(RUN.internalSuberror, true) };
    default:
      return { kind: 'other', reason };
  }
}

/** The KVM exit number an exit came from, for "unhandled exit: exit_reason=0x…". */
function exitReason(exit: VcpuExit): number {
  switch (exit.kind) {
    case 'mmio':
      return EXIT_MMIO;
    case 'other':
      return exit.reason;
    case 'debug':
      return EXIT_DEBUG;
    default:
      return 0;
  }
}

const hex = (n: number | bigint) => `0x${n.toString(16)}`;

/** The reference's messages (docs/abi.md §9.2), e.g. "KVM: unhandled exit: exit_reason=0x6, rip=0x…". */
export function describeFatal(kind: FatalExit, exit: VcpuExit, rip: () => bigint): string {
  switch (kind) {
    case 'translation-fault':
      return `KVM: host/guest translation fault: rip=${hex(rip())}`;
    case 'unhandled':
      return `KVM: unhandled exit: exit_reason=${hex(exitReason(exit))}, rip=${hex(rip())}`;
    case 'entry-failure':
      return `KVM: entry failure: hw_entry_failure_reason=${hex(exit.kind === 'failEntry' ? exit.reason : 0n)}`;
    case 'internal-error':
      return `KVM: internal error exit: suberror=${hex(exit.kind === 'internalError' ? exit.suberror : 0)}`;
  }
}
