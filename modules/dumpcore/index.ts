// Dumpcore module (docs/abi.md §15): with `--dumpcore=DIR` (library:
// `dumpcore: 'DIR'`), a guest that aborts (HALT status 255) leaves an ELF
// core file DIR/core.solo5-hvt.PID that gdb reads together with the
// unikernel: `gdb KERNEL CORE`. DIR is checked before the VM is built; the
// core is written on the vCPU's thread inside the HALT hook, from the
// vCPU's registers (the trap frame's where the guest passed one) and guest
// memory as a sparse file. Serves no device, so the generated per-unikernel
// monitors do not include it.
import type { Module, ModuleDescriptor } from '../../monitor/module.js';
import { ABORT_STATUS, dumpCore } from './dump.js';
import { guestImage } from './guest-image.js';
import { checkDumpDir, dumpcoreLibraryOption, parseDumpcoreOption, USAGE } from './options.js';

export const dumpcoreModule: ModuleDescriptor = {
  name: 'dumpcore',
  serves: [],
  cli: { usage: [USAGE] },
  library: [dumpcoreLibraryOption],
  // The core file is created when the guest aborts, long after set-up.
  grants: (options) => (typeof options['dumpcore'] === 'string' ? 'unconfined' : {}),
  create: (options) => dumpcore(typeof options['dumpcore'] === 'string' ? options['dumpcore'] : null),
};

function dumpcore(given: string | null): Module {
  let dir = given;
  return {
    name: 'dumpcore',

    handleArg(arg) {
      const d = parseDumpcoreOption(arg);
      if (d === null) return false;
      dir = d;
      return true;
    },

    prepare() {
      if (dir !== null) checkDumpDir(dir);
    },

    setup(ctx) {
      if (dir === null) return;
      const target = dir;
      const image = guestImage(ctx.memory);
      const { debug } = ctx;
      const warn = (message: string) => ctx.warn(message);
      ctx.onHalt((status, cookie) => {
        if (status !== ABORT_STATUS) return;
        dumpCore({ dir: target, pid: process.pid, image, debug, cookie, warn });
      });
    },

    // The core file is created at HALT, which a confined monitor could not
    // do: with --dumpcore the run is unconfined, as with the reference's
    // debug tender (docs/abi.md §17).
    sandbox: () => (dir !== null ? 'skip' : undefined),
  };
}

export default dumpcoreModule;
