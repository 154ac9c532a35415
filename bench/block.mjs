// Block: µs per one-block BLOCK_READ and BLOCK_WRITE hypercall at 4096- and
// 32768-byte sectors, on a file in the page cache. Per-call cost is
// (time of N calls − time of 0 calls) / N, measured around the run only.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootVm, stats } from './lib.mjs';

function timeRun(disk, sector, kind, n) {
  const vm = bootVm('bench_block', [kind, String(n)], 32, { block: { block: { storage: disk }, blockSectorSize: { storage: sector } } });
  try {
    const t = process.hrtime.bigint();
    const out = vm.run();
    const us = Number(process.hrtime.bigint() - t) / 1e3;
    if (out.kind !== 'halt' || out.status !== 0) throw new Error(`bench_block ${kind} ${n} did not exit 0`);
    return us;
  } finally {
    vm.close();
  }
}

export function benchBlock({ runs = 5, calls = 4000 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'ukvm-bench-'));
  const rows = [];
  try {
    for (const sector of [4096, 32768]) {
      const disk = join(dir, `disk-${sector}.img`);
      writeFileSync(disk, Buffer.alloc(sector * 64, 1));
      for (const kind of ['read', 'write']) {
        const per = [];
        for (let r = 0; r < runs; r++) per.push((timeRun(disk, sector, kind, calls) - timeRun(disk, sector, kind, 0)) / calls);
        rows.push({ kind, sector, calls, us: stats(per) });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}
