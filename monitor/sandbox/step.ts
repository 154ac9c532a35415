// The last step of set-up (docs/abi.md §1 step 14): what VmConfig.sandbox
// runs on the vCPU's thread right before the first KVM_RUN. It confines the
// monitor (Platform.sandbox), unless the run is one that must not be
// confined, and then says so as the reference's debug tender does (§17):
//
//   - the program was invoked as solo5-hvt-debug (the reference's debug
//     tender, which never drops privileges): its two WARNING lines;
//   - a module asked for it (Module.sandbox() === 'skip': a core file
//     created at HALT needs open(2)): the same two lines;
//   - --no-sandbox on the command line: one WARNING line.
//
// A debugger (Module.sandbox() === 'debugger', modules/gdb) does not skip
// it: its socket is accepted during set-up, and the filter then also allows
// what the stub does afterwards (policy.ts, `debugger: true`).
import type { Sandbox, SandboxScope } from '../backend/backend.js';
import type { Module } from '../module.js';

/** The debug tender's name: a link with it runs unconfined (§17). */
export const DEBUG_PROGRAM = 'solo5-hvt-debug';

/** The reference's two lines, printed (with the program prefix) instead of confining. */
export const UNCONFINED_WARNINGS = [
  'WARNING: Tender is configured with HVT_DROP_PRIVILEGES=0. Not dropping any privileges.',
  'WARNING: This is not recommended for production use.',
] as const;

/** --no-sandbox's one line. */
export const NO_SANDBOX_WARNING = 'WARNING: --no-sandbox given. Not dropping any privileges; this is not recommended for production use.';

/** Why a run is not confined, if the caller already knows: the program name, or --no-sandbox. */
export type SandboxSkip = 'debug-program' | 'no-sandbox';

export interface SandboxStepOptions {
  sandbox: Sandbox;
  scope: SandboxScope;
  /** Set when the program name or an option says not to confine. */
  skip?: SandboxSkip | undefined;
  /** The VM's modules; asked (after their setup) whether one needs the run unconfined. */
  modules: readonly Module[];
  /** Receives the warning lines (the printer adds the program prefix). */
  warn: (message: string) => void;
}

/** The function for VmConfig.sandbox. */
export function sandboxStep(o: SandboxStepOptions): () => void {
  return () => {
    const needs = o.modules.map((m) => m.sandbox?.());
    const skip = o.skip ?? (needs.includes('skip') ? 'module' : undefined);
    if (skip === 'no-sandbox') {
      o.warn(NO_SANDBOX_WARNING);
    } else if (skip !== undefined) {
      for (const w of UNCONFINED_WARNINGS) o.warn(w);
    } else {
      o.sandbox.enter(o.scope, { debugger: needs.includes('debugger') });
    }
    // Threads of modules (the net ring's consumer) follow the VM's thread.
    for (const m of o.modules) m.sandboxed?.(skip === undefined ? o.scope : null);
  };
}
