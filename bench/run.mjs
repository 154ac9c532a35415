// npm run bench: measures ukvm-ts, prints a markdown table and writes
// bench/results/latest.json. Figures are medians (min–max) over several runs;
// nothing here is a test assertion. The net rows need root, ip and ping.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchBlock } from './block.mjs';
import { benchBoot } from './boot.mjs';
import { benchExits } from './exits.mjs';
import { benchLibrary, libraryTable } from './library.mjs';
import { benchNet } from './net.mjs';
import { benchRing } from './ring.mjs';
import { benchSandbox } from './sandbox.mjs';
import { buildGuests, machine, ROOT, version } from './lib.mjs';

const f = (x, d = 1) => x.toFixed(d);
const range = (s, d = 1) => `${f(s.median, d)} (${f(s.min, d)}–${f(s.max, d)})`;
const step = (name) => process.stderr.write(`bench: ${name}…\n`);

function canRunNet() {
  try {
    execFileSync('ping', ['-V'], { stdio: 'ignore' });
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
}

buildGuests();
const info = machine();
process.stderr.write(`bench: ${info.cpu}, ${info.kernel}, ${info.hypervisor}, node ${info.node}\n`);
step('boot');
const boot = benchBoot();
step('exit cost');
const exits = benchExits();
step('exit cost with the sandbox');
const sandbox = benchSandbox();
step('block');
const block = benchBlock();
step('net');
const net = canRunNet() ? await benchNet() : null;
step('net ring consumer');
const ring = benchRing();
step('library');
const library = await benchLibrary();

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
  "| Hypercall, sandbox | without filter µs/call | with the CLI's seccomp filter µs/call | with ÷ without | control (2nd ÷ 1st, no filter) | net (goal ≤ 1.03) |",
  '|---|---|---|---|---|---|',
  ...sandbox.map((r) => `| ${r.kind} | ${range(r.without, 2)} | ${range(r.with, 2)} | ${f(r.ratio.median, 3)} | ${f(r.control.median, 3)} | ${f(r.net, 3)} |`),
  '',
  '| Block (one-block call, file in page cache) | µs/call |',
  '|---|---|',
  ...block.map((r) => `| ${r.kind}, ${r.sector}-byte sectors | ${range(r.us)} |`),
  '',
  ...(net
    ? [
        '| Net (bench_ping over a tap) | ping RTT median ms | flood packets/s | tender CPU % during flood |',
        '|---|---|---|---|',
        ...net.map((r) => `| ${r.label} | ${range(r.rttMs, 3)} | ${range(r.pps, 0)} | ${range(r.cpuPercent, 0)} |`),
      ]
    : ['Net rows skipped: they need root, ip and ping.']),
  '',
  '| Net ring consumer alone (TypeScript, 1023 entries at once) | ns/entry |',
  '|---|---|',
  ...ring.map((r) => `| ${r.label} | ${range(r.ns, 0)} |`),
  '',
  ...libraryTable(library, range),
  '',
  'Medians of 5+ runs, (min–max) in brackets.',
];
process.stdout.write(`${lines.join('\n')}\n`);
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'latest.json'), `${JSON.stringify({ machine: info, boot, exits, sandbox, block, net, ring, library }, null, 2)}\n`);
