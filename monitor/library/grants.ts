// What a VM's build may have the caller's thread open for it (broker.ts):
// the kernel's path, and each module's ModuleDescriptor.grants for the
// options it was given; or 'unconfined' if one of them needs its VM built
// on a thread that is not yet confined.
import type { HostGrants, ModuleDescriptor } from '../module.js';
import type { WorkerInput } from './shared.js';

export function vmGrants(kernel: WorkerInput['kernel'], modules: WorkerInput['modules'], registry: readonly ModuleDescriptor[]): HostGrants | 'unconfined' {
  const files: { path: string; mode: 'r' | 'r+' }[] = typeof kernel === 'string' ? [{ path: kernel, mode: 'r' }] : [];
  const taps: string[] = [];
  const fds: number[] = [];
  for (const d of registry) {
    const options = modules[d.name];
    if (!options || !d.grants) continue;
    const g = d.grants(options);
    if (g === 'unconfined') return 'unconfined';
    files.push(...(g.files ?? []));
    taps.push(...(g.taps ?? []));
    fds.push(...(g.fds ?? []));
  }
  return { files, taps, fds };
}
