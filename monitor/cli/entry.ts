// The ukvm-ts command: run a Solo5 hvt unikernel with every module of the
// registry, `ukvm-ts configure KERNEL -o monitor.mjs`, or `ukvm-ts elftool
// …`. The build bundles this file and everything it imports into
// dist/ukvm-ts.mjs, which bin/ukvm-ts loads: one file starts ~15 ms faster
// than two dozen ES modules. The program is chosen by the name it was
// invoked by, and diagnostics speak as that name: a link named solo5-elftool
// is the elftool; one named solo5-hvt (or solo5-hvt.N, solo5-hvt-debug) is
// only the tender, as the reference has no sub-commands and a kernel file
// named "configure" or "elftool" must still run.
import { basename } from 'node:path';
import { ELFTOOL_PROGRAM, runElftool } from '../elftool/main.js';
import { REGISTRY } from '../registry.js';
import { runConfigure } from './configure.js';
import { packageVersion } from '../paths.js';
import { main } from './main.js';

const prog = basename(process.argv[1] ?? 'ukvm-ts');
const argv = process.argv.slice(2);
const tenderOnly = prog.startsWith('solo5-hvt');
const elftoolVersion = () => `${packageVersion()} (ukvm-ts)`;

function run(): number {
  if (prog === ELFTOOL_PROGRAM) return runElftool(argv, prog, elftoolVersion());
  if (!tenderOnly && argv[0] === 'configure') return runConfigure(argv.slice(1), prog);
  if (!tenderOnly && argv[0] === 'elftool') return runElftool(argv.slice(1), `${prog} elftool`, elftoolVersion());
  return main(argv, prog, REGISTRY);
}

process.exit(run());
