// The ukvm-ts command: run a Solo5 hvt unikernel with every module of the
// registry, or `ukvm-ts configure KERNEL -o monitor.mjs`. The build bundles
// this file and everything it imports into dist/ukvm-ts.mjs, which
// bin/ukvm-ts loads: one file starts ~15 ms faster than two dozen ES modules.
// Diagnostics speak as the name the program was invoked by, so a link named
// solo5-hvt answers as solo5-hvt.
import { basename } from 'node:path';
import { REGISTRY } from '../registry.js';
import { runConfigure } from './configure.js';
import { main } from './main.js';

const prog = basename(process.argv[1] ?? 'ukvm-ts');
const argv = process.argv.slice(2);
process.exit(argv[0] === 'configure' ? runConfigure(argv.slice(1), prog) : main(argv, prog, REGISTRY));
