// The first code the self-contained executable runs (entry.ts imports this
// before the CLI; scripts/build-exe.mjs builds the file). Two jobs:
//
// 1. Refuse NODE_OPTIONS. bin/ukvm-ts starts node without it (its #! line),
//    but an executable is started by whoever runs it, and Node 20 reads
//    NODE_OPTIONS for a single-executable application before any of our
//    code: it refuses the inspector options there itself (exit 9) and
//    ignores --import and loaders, but applies the rest (a --require module
//    has already run by now). Nothing here can undo that, so the monitor
//    will not start a guest under options it did not choose.
// 2. Hand the CLI the addon this file carries (a Node SEA asset) instead of
//    a package's build/Release, loaded through an anonymous file
//    (native/binding/load-bytes.ts).
// 3. Hand out the worker scripts it carries (the gdb stub's socket thread)
//    in place of files of dist/: each is started from its bundled source,
//    preceded by the name the addon is loaded under, so that its thread
//    loads the same object (worker-setup.ts).
import { basename } from 'node:path';
import { getAsset } from 'node:sea';
import { loadAddonBytes, type LoadedAddon } from '../../native/binding/load-bytes.js';
import { provideAddon } from '../../native/binding/load.js';
import { HostError } from '../errors.js';
import { printer } from '../cli/printer.js';
import { provideWorkerSources } from '../workers.js';

/** The SEA asset key of the main addon (scripts/build-exe.mjs uses the same). */
export const ADDON_ASSET = 'ukvm_native.node';
/** The asset key of the bundled source of dist/PATH (scripts/build-exe.mjs). */
export const workerAsset = (distPath: string): string => `worker:${distPath}`;

const nodeOptions = process.env['NODE_OPTIONS'];
if (nodeOptions !== undefined && nodeOptions.trim() !== '') {
  printer(basename(process.argv[1] ?? 'ukvm-ts')).line(
    'refusing to run with NODE_OPTIONS set: Node has already applied it to this executable; unset it',
  );
  process.exit(1);
}

let addon: LoadedAddon | undefined;

function mainAddon(): LoadedAddon {
  if (addon === undefined) {
    try {
      addon = loadAddonBytes(new Uint8Array(getAsset(ADDON_ASSET)), 'native addon');
    } catch (e) {
      throw new HostError(e instanceof Error ? e.message : String(e));
    }
  }
  return addon;
}

provideAddon((name) => {
  if (name !== 'ukvm_native') throw new HostError(`the executable carries no ${name} addon`);
  return mainAddon().exports;
});

provideWorkerSources((distPath) => {
  let source: string;
  try {
    source = getAsset(workerAsset(distPath), 'utf8');
  } catch {
    return undefined; // not carried: startWorker falls back to the (missing) file and says so
  }
  return `const UKVM_ADDON_PATH = ${JSON.stringify(mainAddon().path)};\n${source}`;
});
