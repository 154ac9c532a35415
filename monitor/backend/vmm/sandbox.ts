// The FreeBSD sandbox (Platform.sandbox of the vmm platform; docs/abi.md §18
// step 7 and §17): every VM descriptor of this thread is limited to
// CAP_IOCTL and to the eight ioctls the run still needs (VM_RUN,
// VM_SET_CAPABILITY, VM_ALLOC_MEMSEG, VM_MMAP_MEMSEG,
// VM_SET_SEGMENT_DESCRIPTOR, VM_SET_REGISTER, VM_GET_REGISTER,
// VM_ACTIVATE_CPU), then, for the CLI ('process'), cap_enter: capability
// mode, no new files, sockets, processes or sysctls for any thread. Capsicum
// confines whole processes, never one thread, so a library VM ('thread')
// gets the descriptor limits only: the embedding program keeps its rights.
// The net ring's kick pipes are limited too: the read end, which the ring's
// thread reads, to CAP_READ | CAP_EVENT; the write end, which the vCPU loop
// and the ring's stop write, to CAP_WRITE.
// hw.vmm.destroy, no longer allowed in capability mode, is left to the
// reaper process started before (vms.ts).
import { type FreebsdNativeBinding, type RunAbi, VMM_IOCTLS, type VmmIoctlName } from '../../../native/binding/vmm.js';
import { HostError } from '../../errors.js';
import type { Sandbox, SandboxScope } from '../backend.js';
import type { VmRegistry } from './vms.js';

type Calls = Pick<FreebsdNativeBinding, 'capRightsLimitIoctl' | 'capIoctlsLimit' | 'capRightsLimitKick' | 'capEnter'>;

/** §18 step 7's ioctls, with the VM_RUN this kernel takes. */
export function allowedIoctls(abi: RunAbi): number[] {
  const names: VmmIoctlName[] = [
    abi === 14 ? 'VM_RUN_14' : 'VM_RUN_13',
    'VM_SET_CAPABILITY',
    'VM_ALLOC_MEMSEG',
    'VM_MMAP_MEMSEG',
    'VM_SET_SEGMENT_DESCRIPTOR',
    'VM_SET_REGISTER',
    'VM_GET_REGISTER',
    'VM_ACTIVATE_CPU',
  ];
  return names.map((n) => VMM_IOCTLS[n]);
}

export function capsicumSandbox(b: Calls, vms: VmRegistry, abi: () => RunAbi): Sandbox {
  let entered: SandboxScope | null = null;
  const wrap = (fn: () => void) => {
    try {
      fn();
    } catch (e) {
      throw new HostError(`Could not install the sandbox: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  };
  return {
    enter(scope) {
      if (entered === 'process') return;
      if (entered === 'thread' && scope === 'process') {
        throw new HostError("sandbox: this thread is already confined to scope 'thread', cannot widen it to 'process'");
      }
      const ioctls = allowedIoctls(abi());
      for (const vm of vms.entries()) {
        for (const k of vm.kicks) {
          if (k.limited) continue;
          wrap(() => {
            b.capRightsLimitKick(k.read, false);
            b.capRightsLimitKick(k.write, true);
          });
          k.limited = true;
        }
        if (vm.limited || vm.fd < 0) continue;
        wrap(() => {
          b.capRightsLimitIoctl(vm.fd);
          b.capIoctlsLimit(vm.fd, ioctls);
        });
        vm.limited = true;
      }
      if (scope === 'process') wrap(() => b.capEnter());
      entered = scope;
    },
  };
}
