// npm run bench: measures ukvm-ts, prints a markdown table and writes
// bench/results/latest.json. Figures are medians (min–max) over several runs;
// nothing here is a test assertion.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchBoot } from './boot.mjs';
import { benchExits } from './exits.mjs';
import { machine, ROOT, version } from './lib.mjs';

const f = (x, d = 1) => x.toFixed(d);
const range = (s, d = 1) => `${f(s.median, d)} (${f(s.min, d)}–${f(s.max, d)})`;

const info = machine();
process.stderr.write(`bench: ${info.cpu}, ${info.kernel}, ${info.hypervisor}, node ${info.node}\n`);
const boot = benchBoot();
const exits = benchExits();

const lines = [
  `Machine: ${info.cpu} (${info.cores} cores), Linux ${info.kernel}, ${info.hypervisor}, Node ${info.node}; ukvm-ts ${version()}, ${info.date.slice(0, 10)}.`,
  '',
  '| Boot (spawn to exit) | wall ms | peak RSS MiB |',
  '|---|---|---|',
  ...boot.map((r) => `| ${r.label} | ${range(r.wallMs)} | ${r.peakRssMiB ? range(r.peakRssMiB) : 'n/a'} |`),
  '',
  '| Hypercall | ukvm-ts µs/call | floor µs/call (C++ loop) | ukvm-ts ÷ floor |',
  '|---|---|---|---|',
  ...exits.map((r) => `| ${r.kind}${r.kind === 'poll' ? ' (timeout 0)' : r.kind === 'puts' ? ' (1 byte, /dev/null)' : ''} | ${range(r.ukvmTs, 2)} | ${range(r.floor, 2)} | ${f(r.ratio, 3)} |`),
  '',
  'Medians of 5+ runs, (min–max) in brackets.',
];
process.stdout.write(`${lines.join('\n')}\n`);
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'latest.json'), `${JSON.stringify({ machine: info, boot, exits }, null, 2)}\n`);
