// The one list of modules, in setup order (docs/abi.md §1 step 12). The CLI's
// options and usage, startUnikernel's options, the library worker, configure
// and the build of the generated monitors' bundles all read it. A new module
// is its own folder under modules/ plus one line here.
import { blockModule } from '../modules/block/index.js';
import { consoleModule } from '../modules/console/index.js';
import { dumpcoreModule } from '../modules/dumpcore/index.js';
import { gdbModule } from '../modules/gdb/index.js';
import { netModule } from '../modules/net/index.js';
import { ModuleError } from './errors.js';
import type { ModuleDescriptor } from './module.js';

/** startUnikernel's own options: no module may take these names. */
export const CORE_LIBRARY_OPTIONS = ['kernel', 'memoryMiB', 'args', 'console', 'warn', 'pollSpinNs', 'signal', 'timeout', 'sandbox'] as const;

/** Refuses two modules claiming one name, library option or separate-value option. */
export function checkRegistry(list: readonly ModuleDescriptor[]): readonly ModuleDescriptor[] {
  const taken = new Map<string, string>(CORE_LIBRARY_OPTIONS.map((o) => [`option ${o}`, 'the core']));
  const claim = (what: string, by: string) => {
    const owner = taken.get(what);
    if (owner !== undefined) throw new ModuleError(`module ${by}: ${what} is already taken by ${owner}`);
    taken.set(what, `module ${by}`);
  };
  for (const d of list) {
    claim(`name ${d.name}`, d.name);
    for (const o of d.library) claim(`option ${o.name}`, d.name);
    for (const o of d.cli.separateValue ?? []) claim(`command-line option ${o}`, d.name);
  }
  return list;
}

export const REGISTRY: readonly ModuleDescriptor[] = checkRegistry([
  consoleModule,
  blockModule,
  netModule,
  dumpcoreModule,
  gdbModule,
]);
