// Exit cost with and without the sandbox's seccomp filter (issue 12): µs per
// WALLTIME, zero-timeout POLL and 1-byte PUTS, side by side in one process.
//
// A filter can never be removed, so each run is one child process that
// measures both sides in order: it builds bench_exits VMs (console to
// /dev/null) — a warm-up, then N and 0 calls for each side — runs the
// warm-up (so V8 has compiled the hypercall path for both sides alike), times
// the unfiltered pair, installs the CLI's filter (Platform.sandbox, scope
// 'process', as the CLI does right before the first KVM_RUN) and times the
// filtered pair. A control child does the same without installing the filter:
// what coming second alone changes. The figure is net = median(filtered ÷
// unfiltered) ÷ median(control's second ÷ first); goal ≤ 1.03.
//
//   node bench/sandbox.mjs [--runs R] [--calls N]     (this table alone)
//   node bench/sandbox.mjs --child KIND N MODE        (one run; internal)
import { spawnSync } from 'node:child_process';
import { writeSync } from 'node:fs';
import { join } from 'node:path';
import { bootVm, stats } from './lib.mjs';

const KINDS = ['walltime', 'poll', 'puts'];

async function child(kind, n, mode) {
  const { platform } = await import(join(import.meta.dirname, '..', 'dist', 'monitor', 'backend', 'index.js'));
  const [warm, ...vms] = [n, n, '0', n, '0'].map((c) => bootVm('bench_exits', [kind, c]));
  const time = (vm) => {
    const t = process.hrtime.bigint();
    const out = vm.run();
    const dt = Number(process.hrtime.bigint() - t) / 1e3;
    if (out.kind !== 'halt' || out.status !== 0) throw new Error(`bench_exits ${kind} did not exit 0`);
    return dt;
  };
  time(warm);
  const plain = [time(vms[0]), time(vms[1])];
  if (mode === 'filter') platform().sandbox.enter('process');
  const second = [time(vms[2]), time(vms[3])];
  // fs.writeSync, not process.stdout: no new stream after the filter.
  writeSync(1, `${JSON.stringify([...plain, ...second])}\n`);
  process.exit(0);
}

/** One child run: per-call µs of the first (unfiltered) and second (filtered, or control) side. */
function run(kind, calls, mode) {
  const c = spawnSync(process.execPath, [import.meta.filename, '--child', kind, String(calls), mode], { encoding: 'utf8' });
  if (c.status !== 0) throw new Error(`bench/sandbox child (${kind}, ${mode}) failed: ${c.signal ?? c.status} ${c.stderr}`);
  const [pn, p0, sn, s0] = JSON.parse(c.stdout);
  return { first: (pn - p0) / calls, second: (sn - s0) / calls };
}

/** Rows: per hypercall, without/with filter (µs), their ratio, the control ratio and the net ratio. */
export function benchSandbox({ runs = 7, calls = 20000 } = {}) {
  const rows = [];
  for (const kind of KINDS) {
    const plain = [];
    const filtered = [];
    const ratios = [];
    const controls = [];
    for (let r = 0; r < runs; r++) {
      // Alternate filter and control runs so drift in the machine hits both alike.
      const f = run(kind, calls, 'filter');
      const c = run(kind, calls, 'control');
      plain.push(f.first);
      filtered.push(f.second);
      ratios.push(f.second / f.first);
      controls.push(c.second / c.first);
    }
    const ratio = stats(ratios);
    const control = stats(controls);
    rows.push({ kind, calls, without: stats(plain), with: stats(filtered), ratio, control, net: ratio.median / control.median });
  }
  return rows;
}

if (process.argv[1] === import.meta.filename) {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    await child(argv[1], argv[2], argv[3]);
  } else {
    const opt = (name, dflt) => {
      const i = argv.indexOf(name);
      return i >= 0 ? Number(argv[i + 1]) : dflt;
    };
    const { buildGuests } = await import('./lib.mjs');
    buildGuests();
    const rows = benchSandbox({ runs: opt('--runs', 7), calls: opt('--calls', 20000) });
    const f = (s) => `${s.median.toFixed(2)} (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
    console.log('| Hypercall | without filter µs | with filter µs | with ÷ without | control | net |');
    console.log('|---|---|---|---|---|---|');
    for (const r of rows) console.log(`| ${r.kind} | ${f(r.without)} | ${f(r.with)} | ${r.ratio.median.toFixed(3)} | ${r.control.median.toFixed(3)} | ${r.net.toFixed(3)} |`);
  }
}
