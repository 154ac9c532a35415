// Boot: wall time and peak RSS of `bin/ukvm-ts hello.hvt` from spawn to exit,
// with bare `node -e 0` beside it for scale (Node's own start-up floor).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { BIN, guest, stats } from './lib.mjs';

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
  const hello = [BIN, [guest('hello')]];
  const node = [process.execPath, ['-e', '0']];
  once(...hello); // warm the page cache
  const rows = [];
  for (const [label, [cmd, args]] of [['ukvm-ts hello', hello], ['node -e 0', node]]) {
    const wall = [];
    const rss = [];
    for (let i = 0; i < runs; i++) {
      wall.push(once(cmd, args));
      const kib = peakRss(cmd, args);
      if (kib !== null) rss.push(kib / 1024);
    }
    rows.push({ label, wallMs: stats(wall), peakRssMiB: rss.length ? stats(rss) : null });
  }
  return rows;
}
