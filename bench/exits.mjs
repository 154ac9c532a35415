// Exit cost: µs per WALLTIME, zero-timeout POLL and 1-byte PUTS (console to
// /dev/null), through the TypeScript path and through the native floor loop
// (same guest, same VM setup, hypercalls answered in C++). Per-call cost is
// (time of N calls − time of 0 calls) / N, both measured around the run only.
import { bootFloorVm, bootVm, stats } from './lib.mjs';

function timeRun(kind, n, floor) {
  const vm = floor ? bootFloorVm('bench_exits', [kind, String(n)]) : bootVm('bench_exits', [kind, String(n)]);
  try {
    const t = process.hrtime.bigint();
    const status = vm.run();
    const dt = Number(process.hrtime.bigint() - t) / 1e3; // µs
    const ok = floor ? status === 0 : status.kind === 'halt' && status.status === 0;
    if (!ok) throw new Error(`bench_exits ${kind} ${n} did not exit 0`);
    return dt;
  } finally {
    vm.close();
  }
}

export function benchExits({ runs = 5, calls = 20000 } = {}) {
  const rows = [];
  for (const kind of ['walltime', 'poll', 'puts']) {
    const ts = [];
    const floor = [];
    for (let r = 0; r < runs; r++) {
      // Interleave the two paths so drift in the machine affects both alike.
      ts.push((timeRun(kind, calls, false) - timeRun(kind, 0, false)) / calls);
      floor.push((timeRun(kind, calls, true) - timeRun(kind, 0, true)) / calls);
    }
    const t = stats(ts);
    const f = stats(floor);
    rows.push({ kind, calls, ukvmTs: t, floor: f, ratio: t.median / f.median });
  }
  return rows;
}
