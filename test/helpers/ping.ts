// ping(8) against a test guest that answers ICMP echo (net_echo, net_two and
// their ring builds), run inside a test network namespace, and the UDP
// "quit" those guests end on: one set of checks for the hypercall and the
// ring tests alike.
import { expect } from 'vitest';
import type { Netns, Proc, ProcResult } from './netns.js';

export interface PingStats {
  transmitted: number;
  received: number;
  summary: string;
  rtt: string;
}

const lines = (s: string) => s.split('\n').filter((l) => l !== '');

export function pingStats(r: ProcResult): PingStats {
  const m = /(\d+) packets transmitted, (\d+) received([^\n]*)/.exec(r.stdout);
  if (!m) throw new Error(`no ping summary:\n${r.stdout}${r.stderr}`);
  return {
    transmitted: Number(m[1]),
    received: Number(m[2]),
    summary: m[0],
    rtt: /rtt [^\n]*/.exec(r.stdout)?.[0] ?? '',
  };
}

/**
 * Flood ping (-f -q): ping checks the reply checksums itself (corrupted and
 * duplicates are counted). With -c and -w ping stops once `count` replies
 * came; a flood sends the next request after a reply or 10 ms, so on a loaded
 * machine it sends a few more than `count` — the guest answers those too, so
 * callers compare the guest's reply counter with the requests ping sent.
 * deadlineS: ping's -w.
 */
export async function floodPing(ns: Netns, ip: string, count: number, extra: string[] = [], deadlineS = 600): Promise<PingStats> {
  const r = await ns.run('ping', ['-f', '-q', '-c', String(count), '-w', String(deadlineS), ...extra, ip], (deadlineS + 60) * 1000);
  const s = pingStats(r);
  expect(s.summary).not.toMatch(/duplicates|corrupted|errors/);
  expect({ received: s.received, status: r.status }).toEqual({ received: count, status: 0 });
  expect(s.transmitted).toBeGreaterThanOrEqual(count);
  return s;
}

/**
 * Ordinary (not quiet, not flood) pings: only then does ping compare every
 * payload byte of each reply with what it sent ("wrong data byte ...").
 * deadlineS: ping's -w.
 */
export async function checkedPing(
  ns: Netns, ip: string, count: number, size: number, pattern?: string, extra: string[] = [], deadlineS = 120,
): Promise<PingStats> {
  // -w: ping stops once `count` replies came (or at the deadline). Without it
  // ping gives the last replies only two round trips, which a loaded machine
  // can exceed; with it, ping may send a few more while it waits, so the
  // check is that requests 1..count were each answered once, in order.
  const args = ['-c', String(count), '-i', '0.002', '-W', '5', '-w', String(deadlineS), '-s', String(size), ...extra];
  if (pattern !== undefined) args.push('-p', pattern);
  const r = await ns.run('ping', [...args, ip], 300_000);
  const what = `ping ${args.join(' ')} ${ip}`;
  expect(r.stdout, what).not.toMatch(/wrong data byte|BAD CHECKSUM|DUP!|truncated|DIFFERENT ADDRESS/);
  const seqs = lines(r.stdout).flatMap((l) => {
    const m = new RegExp(`^${size + 8} bytes from ${ip.replace(/\./g, '\\.')}: icmp_seq=(\\d+) ttl=64`).exec(l);
    return m ? [Number(m[1])] : [];
  });
  expect(seqs, `${what}\n${r.stdout}${r.stderr}`).toEqual(Array.from({ length: count }, (_, i) => i + 1));
  const s = pingStats(r);
  expect({ received: s.received, status: r.status }, what).toEqual({ received: count, status: 0 });
  expect(s.transmitted, what).toBeGreaterThanOrEqual(count);
  return s;
}

/** Sends the UDP "quit" to ip and returns the guest's result (it must exit 0, quietly, within timeoutMs). */
export async function quitGuest(ns: Netns, t: Proc, ip: string, timeoutMs = 60_000): Promise<ProcResult> {
  await ns.sendUdp(ip, 9, 'quit');
  const r = await t.wait(timeoutMs);
  expect(r.timedOut, `the guest did not exit after "quit"\n${r.stdout}${r.stderr}`).toBe(false);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r;
}
