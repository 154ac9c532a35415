// The dumpcore module's option (docs/abi.md §15.1): `--dumpcore=DIR` on the
// command line, `dumpcore: 'DIR'` for startUnikernel, and the check of DIR
// made before the VM is built.
import { accessSync, closeSync, constants, openSync } from 'node:fs';
import { HostError, OptionError, withErrno } from '../../monitor/errors.js';
import type { LibraryOption } from '../../monitor/module.js';

const PREFIX = '--dumpcore=';

export const USAGE = '[ --dumpcore=DIR ] (on abort, write the guest\'s core to DIR/core.solo5-hvt.PID)';

/** DIR of `--dumpcore=DIR` (everything after "=", possibly empty), or null for any other argument. */
export function parseDumpcoreOption(arg: string): string | null {
  return arg.startsWith(PREFIX) ? arg.slice(PREFIX.length) : null;
}

/** startUnikernel's `dumpcore`: a directory path. */
export const dumpcoreLibraryOption: LibraryOption = {
  name: 'dumpcore',
  check(value) {
    if (value === undefined) return;
    if (typeof value !== 'string' || value.length === 0) {
      throw new OptionError('dumpcore must be a directory path (a non-empty string)');
    }
  },
};

/**
 * §15.1: DIR must open as a directory and be writable (and searchable, to
 * create a file in it). Throws HostError with the reference's message
 * followed by DIR and the system's reason.
 */
export function checkDumpDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch (e) {
    throw new HostError(withErrno(`dumpcore: cannot open dir: ${dir}`, e), { cause: e });
  }
  closeSync(fd);
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw new HostError(withErrno(`dumpcore: dir not writable: ${dir}`, e), { cause: e });
  }
}
