// The only place that picks a backend: the platform this process runs on
// (Linux: KVM, backend/kvm/; FreeBSD: vmm(4), backend/vmm/).
import { HostError } from '../errors.js';
import type { Platform } from './backend.js';
import { kvmPlatform } from './kvm/platform.js';
import { vmmPlatform } from './vmm/platform.js';

let current: Platform | undefined;

/** The platform's backend and host services, loaded once per thread. */
export function platform(): Platform {
  if (current) return current;
  switch (process.platform) {
    case 'linux':
      current = kvmPlatform();
      break;
    case 'freebsd':
      current = vmmPlatform();
      break;
    default:
      throw new HostError(`no hypervisor backend for ${process.platform} (Linux KVM and FreeBSD vmm only)`);
  }
  return current;
}

export type { Backend, Machine, Platform, Vcpu, VcpuExit, VcpuHandle } from './backend.js';
