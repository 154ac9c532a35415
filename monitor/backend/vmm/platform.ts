// FreeBSD: vmm(4) for the hypervisor, the addon's FreeBSD host calls for
// everything else, Capsicum for the sandbox. The only file that hands the
// FreeBSD native binding to the rest of the backend.
import { constants } from 'node:os';
import { type FreebsdNativeBinding, loadVmmNative, type RunAbi } from '../../../native/binding/vmm.js';
import { useStrerror } from '../../errors.js';
import type { Platform, VcpuHandle } from '../backend.js';
import { runAbiOf, VmmBackend } from './backend.js';
import { freebsdHostIo } from './host-io.js';
import { capsicumSandbox } from './sandbox.js';
import { VmRegistry } from './vms.js';

// FreeBSD's own numbers (SIGUSR1 is 30 there, not 10): Node knows them.
const S = constants.signals;

const token = (h: VcpuHandle) => (h.backend === 'vmm' ? h.token : -1);

export function vmmPlatform(binding: FreebsdNativeBinding = loadVmmNative(), vms = new VmRegistry(binding)): Platform {
  useStrerror(binding.strerror);
  let abi: RunAbi | undefined;
  const runAbi = () => (abi ??= runAbiOf(binding.osReleaseDate()));
  let kickHandler = false;
  return {
    name: 'vmm',
    openBackend() {
      // Without this handler a kick would kill the process (default action).
      if (!kickHandler) binding.installKickHandler();
      kickHandler = true;
      return new VmmBackend(binding, vms);
    },
    host: freebsdHostIo(binding),
    signals: {
      catchTermination: () => binding.installTerminationHandlers([S.SIGINT, S.SIGTERM]),
      restoreDefaults: () => binding.restoreDefaultSignals([S.SIGHUP, S.SIGQUIT, S.SIGUSR1, S.SIGUSR2, S.SIGPIPE, S.SIGALRM]),
    },
    sandbox: capsicumSandbox(binding, vms, runAbi),
    stop: (h) => binding.kick(token(h)),
    interrupt: (h) => binding.interrupt(token(h)),
    cpuTimeNs: (h) => binding.threadCpuNs(token(h)),
  };
}
