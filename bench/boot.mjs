// Boot: wall time and peak RSS of `bin/ukvm-ts hello.hvt` from spawn to exit,
// the same through the self-contained executable (dist/exe/ukvm-ts, built
// here when stale), and bare `node -e 0` for scale (Node's own start-up
// floor). The rows take turns run by run, so a busy moment hits them alike.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, guest, ROOT, stats } from './lib.mjs';

const EXE = join(ROOT, 'dist', 'exe', 'ukvm-ts');

const TIME = '/usr/bin/time';

function once(cmd, args) {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return ms;
}

// Peak RSS in KiB via GNU time (%M), or null where it is not installed.
function peakRss(cmd, args) {
  if (!existsSync(TIME)) return null;
  // GNU time reports on stderr, after anything the command itself printed there.
  const r = spawnSync(TIME, ['-f', '%M', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${TIME} ${cmd} exited ${r.status}: ${r.stderr}`);
  return Number(r.stderr.trim().split('\n').pop());
}

export function benchBoot({ runs = 10 } = {}) {
  const build = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-exe.mjs'), '--if-stale'], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (build.status !== 0) throw new Error('building the self-contained executable failed');
  const subjects = [
    { label: 'ukvm-ts hello', cmd: BIN, args: [guest('hello')] },
    { label: `ukvm-ts hello, self-contained executable (${(statSync(EXE).size / 2 ** 20).toFixed(1)} MiB)`, cmd: EXE, args: [guest('hello')] },
    { label: 'node -e 0', cmd: process.execPath, args: ['-e', '0'] },
  ].map((s) => ({ ...s, wall: [], rss: [] }));
  for (const s of subjects) once(s.cmd, s.args); // warm the page cache
  for (let i = 0; i < runs; i++) {
    for (const s of subjects) {
      s.wall.push(once(s.cmd, s.args));
      const kib = peakRss(s.cmd, s.args);
      if (kib !== null) s.rss.push(kib / 1024);
    }
  }
  return subjects.map((s) => ({ label: s.label, wallMs: stats(s.wall), peakRssMiB: s.rss.length ? stats(s.rss) : null }));
}
