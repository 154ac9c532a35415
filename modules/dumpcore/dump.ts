// The dump itself, run by the HALT hook on the vCPU's thread when the guest
// aborts (docs/abi.md §15.2–§15.7): registers from the debug primitives,
// the core file created exclusively in DIR, the reference's messages. It
// never throws: whatever goes wrong is a warning, and the guest's status
// (255) stands.
import type { DebugVcpu } from '../../monitor/backend/debug.js';
import { describeSystemError } from '../../monitor/errors.js';
import { closeCore, corePath, createExclusive, writeCore } from './core-file.js';
import { coreHead } from './elf-core.js';
import type { GuestImage } from './guest-image.js';
import { coreRegisters } from './registers.js';

/** The only HALT status that makes a core (§15.2): what an abort passes. */
export const ABORT_STATUS = 255;

export const MSG_NO_DEBUG = 'dumpcore: not implemented on this backend/architecture, no core written';
export const MSG_ERRORS = 'dumpcore: error(s) dumping core, file may be incomplete';

export interface DumpRequest {
  /** The directory given with --dumpcore (checked when the VM was built). */
  dir: string;
  /** Names the file: the monitor's process id. */
  pid: number;
  image: GuestImage;
  /** The vCPU's debug primitives; without them there is no core. */
  debug: DebugVcpu | undefined;
  /** The HALT cookie (checked, 512 bytes) or null. */
  cookie: Uint8Array | null;
  warn(message: string): void;
}

const reason = (e: unknown) => describeSystemError(e);

/** Writes the core of an aborted guest; every outcome is told through warn(). */
export function dumpCore(r: DumpRequest): void {
  if (r.debug === undefined) {
    r.warn(MSG_NO_DEBUG);
    return;
  }
  const path = corePath(r.dir, r.pid);
  let head: Uint8Array;
  try {
    // The host's own core layout, so its gdb reads the registers (§15.5, §18).
    const flavour = process.platform === 'freebsd' ? 'freebsd' : 'linux';
    head = coreHead(r.image.size, coreRegisters(r.debug.getRegisters(), r.debug.getSpecialRegisters(), r.cookie), flavour);
  } catch (e) {
    r.warn(`dumpcore: cannot read the vCPU's registers: ${reason(e)}`);
    r.warn(MSG_ERRORS);
    return;
  }
  let fd: number;
  try {
    fd = createExclusive(path);
  } catch (e) {
    r.warn(`dumpcore: open(${path}): ${reason(e)}`);
    r.warn(MSG_ERRORS);
    return;
  }
  r.warn(`dumpcore: dumping guest core to: ${path}`);
  let failed = false;
  try {
    const written = writeCore(fd, head, r.image);
    r.warn(`dumpcore: dumped ${written.pages} pages of total ${written.total} pages`);
    if (written.unreadable !== 0) {
      r.warn(`dumpcore: ${written.unreadable} pages of no-access segments were left out (read as zero)`);
    }
  } catch (e) {
    r.warn(`dumpcore: write(${path}): ${reason(e)}`);
    failed = true;
  }
  try {
    closeCore(fd);
  } catch (e) {
    r.warn(`dumpcore: close(${path}): ${reason(e)}`);
    failed = true;
  }
  if (failed) r.warn(MSG_ERRORS);
}
