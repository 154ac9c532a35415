// The first code of a worker thread the self-contained executable starts
// from a carried script (setup.ts, monitor/workers.ts): the script's source
// is preceded by `const UKVM_ADDON_PATH = "…"`, the name under which the
// main thread loaded the addon, and loading that name again hands this
// thread the same object, so a vCPU token from the main thread means the
// same vCPU here (a second copy of the addon would have a table of its own).
import { provideAddon } from '../../native/binding/load.js';
import { HostError } from '../errors.js';

declare const UKVM_ADDON_PATH: string;

provideAddon((name) => {
  if (name !== 'ukvm_native') throw new HostError(`the executable carries no ${name} addon`);
  const module = { exports: {} as unknown };
  process.dlopen(module, UKVM_ADDON_PATH);
  return module.exports;
});
