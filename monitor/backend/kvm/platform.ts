// Linux: KVM for the hypervisor, the addon's host calls for everything else.
// The only file that hands the native binding to the rest of the backend.
import { loadNative, type NativeBinding } from '../../../native/binding.js';
import { useStrerror } from '../../errors.js';
import { seccompSandbox } from '../../sandbox/linux.js';
import type { Platform, PreemptLane, VcpuHandle } from '../backend.js';
import { KvmBackend } from './backend.js';
import { interruptVcpu } from './debug.js';
import { linuxHostIo } from './host-io.js';

const SIGINT = 2;
const SIGTERM = 15;
const SIGHUP = 1;
const SIGQUIT = 3;
const SIGUSR1 = 10;
const SIGUSR2 = 12;
const SIGPIPE = 13;
const SIGALRM = 14;

const token = (h: VcpuHandle) => (h.backend === 'kvm' ? h.token : -1);

export function kvmPlatform(binding: NativeBinding = loadNative()): Platform {
  // Every message then uses the C library's error texts, like the reference.
  useStrerror(binding.strerror);
  return {
    name: 'kvm',
    openBackend: () => new KvmBackend(binding),
    host: linuxHostIo(binding),
    signals: {
      catchTermination: () => binding.installTerminationHandlers([SIGINT, SIGTERM]),
      restoreDefaults: () => binding.restoreDefaultSignals([SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM]),
    },
    sandbox: seccompSandbox(binding),
    stop: (h) => binding.kick(token(h)),
    interrupt: (h) => interruptVcpu(binding, token(h)),
    cpuTimeNs: (h) => binding.threadCpuNs(token(h)),
    createLane: () => kvmLane(binding),
    prepareWatches: () => binding.waitsetHub(),
  };
}

/** A preemption lane over the addon's (native/vcpu_lanes_linux.cc). */
function kvmLane(binding: NativeBinding): PreemptLane {
  const lane = binding.laneCreate();
  let freed = false;
  return {
    arm: (h, sliceNs) => binding.laneArm(lane, token(h), sliceNs),
    disarm: () => !freed && binding.laneDisarm(lane),
    free() {
      if (freed) return;
      freed = true;
      binding.laneFree(lane);
    },
  };
}
