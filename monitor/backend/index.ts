// The only place that picks a backend: the platform this process runs on.
// A FreeBSD vmm backend is a backend/vmm/ folder and one case here.
import { HostError } from '../errors.js';
import type { Platform } from './backend.js';
import { kvmPlatform } from './kvm/platform.js';

let current: Platform | undefined;

/** The platform's backend and host services, loaded once per thread. */
export function platform(): Platform {
  if (current) return current;
  if (process.platform !== 'linux') throw new HostError(`no hypervisor backend for ${process.platform} yet (Linux KVM only)`);
  current = kvmPlatform();
  return current;
}

export type { Backend, Machine, Platform, Vcpu, VcpuExit, VcpuHandle } from './backend.js';
