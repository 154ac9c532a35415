// Net: ping round trip and packets per second against the bench_ping test
// unikernel over a tap in a network namespace of our own: the hypercall path
// (--net-ring=off) with POLL's spin off and on, the shared ring
// (--net-ring=on, docs/abi.md §13) with its I/O thread's spin at the default
// and longer, and Solo5's own tender (its ring) when SOLO5_HVT names its
// solo5-hvt; plus the CPU the tender used per second of flood. The
// configurations take turns within each run, so a machine whose load drifts
// treats them alike.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { BIN, guest, stats } from './lib.mjs';

const NS = `ukvmb-${process.pid}`;
const TAP = 'tapb0';
const HOST_IP = '10.213.0.1';
const GUEST_IP = '10.213.0.2';

const ip = (...args) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
const inNs = (cmd, args) => execFileSync('ip', ['netns', 'exec', NS, cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** CPU seconds (user + system) a process has used so far, all its threads (the ring's too). */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/** The configurations compared, side by side. */
function configs() {
  const ukvm = (label, args, env) => ({ label, cmd: [BIN, ...args], env });
  const list = [
    ukvm('hypercalls (--net-ring=off), POLL spin 0 µs', ['--net-ring=off'], { UKVM_POLL_SPIN_NS: '0' }),
    ukvm('hypercalls (--net-ring=off), POLL spin 100 µs', ['--net-ring=off'], { UKVM_POLL_SPIN_NS: '100000' }),
    ukvm('ring (--net-ring=on), thread spin 200 µs', ['--net-ring=on'], { UKVM_RING_SPIN_US: '200' }),
    ukvm('ring (--net-ring=on), thread spin 2 ms', ['--net-ring=on'], { UKVM_RING_SPIN_US: '2000' }),
  ];
  if (process.env.SOLO5_HVT) list.push({ label: `solo5-hvt (C, its ring): ${process.env.SOLO5_HVT}`, cmd: [process.env.SOLO5_HVT], env: {} });
  return list;
}

async function withTender(config, fn) {
  const child = spawn('ip', ['netns', 'exec', NS, ...config.cmd, `--net:service=${TAP}`, guest('bench_ping'), GUEST_IP], {
    env: { ...process.env, ...config.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    await new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => d.toString().includes('bench_ping: ready') && resolve());
      child.on('exit', (code) => reject(new Error(`bench_ping exited early (${code})`)));
    });
    inNs('ping', ['-c', '3', '-w', '10', '-q', GUEST_IP]); // ARP and warm-up
    return fn(child.pid);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r() : child.on('exit', r)));
  }
}

/** Median round trip in ms from `ping -i 0`'s per-reply times. */
function rttMedian(count) {
  const out = inNs('ping', ['-c', String(count), '-i', '0', '-w', '60', GUEST_IP]);
  const times = [...out.matchAll(/time=([0-9.]+) ms/g)].map((m) => Number(m[1]));
  if (times.length < count * 0.99) throw new Error(`ping lost packets: ${times.length}/${count}`);
  return stats(times).median;
}

/** Flood: packets per second, loss, and tender CPU share while flooding. */
function flood(pid, count) {
  const cpu0 = cpuSeconds(pid);
  const t0 = process.hrtime.bigint();
  const out = inNs('ping', ['-f', '-c', String(count), '-w', '60', '-q', GUEST_IP]);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuSeconds(pid) - cpu0;
  const rx = Number(/(\d+) received/.exec(out)?.[1] ?? 0);
  return { pps: rx / secs, loss: 1 - rx / count, cpuShare: cpu / secs };
}

export async function benchNet({ runs = 5, pings = 1000, floodCount = 5000 } = {}) {
  ip('netns', 'add', NS);
  try {
    ip('-n', NS, 'link', 'set', 'lo', 'up');
    ip('-n', NS, 'tuntap', 'add', 'dev', TAP, 'mode', 'tap');
    ip('-n', NS, 'link', 'set', TAP, 'up');
    ip('-n', NS, 'addr', 'add', `${HOST_IP}/24`, 'dev', TAP);
    const list = configs();
    const got = list.map(() => ({ rtt: [], pps: [], cpu: [] }));
    for (let r = 0; r < runs; r++) {
      for (const [i, config] of list.entries()) {
        const g = got[i];
        await withTender(config, (pid) => {
          g.rtt.push(rttMedian(pings));
          const f = flood(pid, floodCount);
          g.pps.push(f.pps);
          g.cpu.push(f.cpuShare * 100);
        });
      }
    }
    return list.map((c, i) => ({ label: c.label, rttMs: stats(got[i].rtt), pps: stats(got[i].pps), cpuPercent: stats(got[i].cpu) }));
  } finally {
    ip('netns', 'del', NS);
  }
}
