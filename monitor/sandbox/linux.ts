// The Linux sandbox (Platform.sandbox of the KVM platform): docs/abi.md §17
// in order — refuse READ_IMPLIES_EXEC, set no-new-privileges, install the
// seccomp-BPF filter built from policy.ts — with the native calls of
// native/host_seccomp_linux.cc handed in by backend/kvm/platform.ts.
import type { Sandbox, SandboxScope } from '../backend/backend.js';
import { HostError } from '../errors.js';
import { buildFilter } from './filter.js';

/** The three native calls the sandbox makes (a subset of the host binding). */
export interface SeccompCalls {
  personality(): number;
  setNoNewPrivs(): void;
  seccompFilter(program: Uint8Array, allThreads: boolean): void;
}

/** linux/personality.h: mappings readable are executable too (an old-binary compatibility flag). */
export const READ_IMPLIES_EXEC = 0x0400000;

/** The reference's message, word for word (§17.1). */
export const READ_IMPLIES_EXEC_MESSAGE =
  'Cowardly refusing to run with a sys_personality of READ_IMPLIES_EXEC. Please report a bug, with details of your Linux distribution and GCC version';

/**
 * One per thread's platform (backend/index.ts makes it once per thread), so
 * "already confined" is this thread's own state: each library worker enters
 * its own thread sandbox; the CLI's main thread enters the process one once.
 * (A second enter() with the same scope does nothing, whatever its needs:
 * the first filter stays, and one VM's thread enters once.)
 */
export function seccompSandbox(calls: SeccompCalls): Sandbox {
  let entered: SandboxScope | null = null;
  return {
    enter(scope, needs = {}) {
      if (entered === scope || entered === 'process') return;
      if (entered !== null) throw new HostError(`sandbox: this thread is already confined to scope '${entered}', cannot widen it to '${scope}'`);
      if ((calls.personality() & READ_IMPLIES_EXEC) !== 0) throw new HostError(READ_IMPLIES_EXEC_MESSAGE);
      // Built before anything is restricted; the program is the table of policy.ts.
      const program = buildFilter(scope, { pid: process.pid, debugger: needs.debugger === true });
      try {
        calls.setNoNewPrivs();
        calls.seccompFilter(program, scope === 'process');
      } catch (e) {
        // The addon's message names the call: "seccomp: Invalid argument".
        throw new HostError(`Could not install the sandbox: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
      }
      entered = scope;
    },
  };
}
