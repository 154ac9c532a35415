#!/usr/bin/env node
// Soak: one guest (test/guests/soak.c) runs for --minutes under a ping flood
// over a tap while it checks block I/O over its whole disk and prints a
// counter line every second. Measures the tender's memory over the run and
// fails on any loss of data integrity.
//
//   npm run soak -- --minutes 10        (fractions allowed: --minutes 0.5)
//
// Needs root: the tap lives in a network namespace of this script's own
// (ukvmsoak-PID), which is always deleted at the end, also on failure or
// Ctrl-C; one left by a run that was killed outright is deleted by the next.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatDuration, parseArgs } from './common.mjs';

const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'ukvm-ts');
const GUEST = join(ROOT, 'test', 'guests', 'build', 'soak.hvt');
const NS_PREFIX = 'ukvmsoak-';
const NS = `${NS_PREFIX}${process.pid}`;
const TAP = 'tap0';
const HOST_IP = '10.78.0.1';
const GUEST_IP = '10.78.0.2';
const DISK_BYTES = 2 * 1024 * 1024; // 4096 blocks of 512: a pass every few seconds, so old data is re-checked often
const BLOCK = 512;
const MEM_MIB = 16;
const WARMUP_S = 10; // RSS is taken after this (or a third of a short run): Node's start-up allocations are done by then
const STALL_S = 10; // the guest prints every second; this long without a line means the console (or the guest) stopped
const MiB = 1024 * 1024;

const USAGE = `usage: npm run soak -- [--minutes M]

  --minutes M  how long the guest runs under the ping flood, warm-up included
               (default 10; fractions allowed, e.g. 0.5)
  --help       this text

Runs test/guests/soak.c with a tap and a ${DISK_BYTES / MiB} MiB disk in a private network
namespace (needs root, ip, ping): ping -f against it, block write/read/verify
rounds over the whole disk, a console line every second. Prints the tender's
RSS after ${WARMUP_S} s of warm-up and at the end, ping's figures, the block rounds
verified (by the guest, and the final disk by this script), console lines and
the exit status. Exit status 1 on a block mismatch or error, a tender that
died or stopped printing, or a bad final disk; packet loss is only reported.`;

function die(msg) {
  process.stderr.write(`soak: ${msg}\n`);
  process.exit(1);
}

const opts = parseArgs(process.argv.slice(2), { minutes: { kind: 'minutes', default: 10 } }, USAGE,
  (m) => die(`${m} (see --help)`));
const DURATION_S = opts.minutes * 60;
const WARMUP = Math.min(WARMUP_S, DURATION_S / 3);
const SEED = Math.floor(Math.random() * 0x7fffffff); // the block pattern's seed; printed so a failure can be matched

// ---- helpers ----

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => console.log(`soak: ${s}`);
const mib = (b) => (b === null || b === undefined || Number.isNaN(b) ? 'n/a' : `${(b / MiB).toFixed(2)} MiB`);

function ip(...args) {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${(r.stderr || r.error?.message || '').trim()}`);
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

/** VmRSS of a process in bytes (null if it is gone). */
function memOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { rss: Number(/^VmRSS:\s+(\d+) kB/m.exec(s)?.[1] ?? NaN) * 1024 };
  } catch {
    return null;
  }
}

function median(xs) {
  const s = [...xs].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * The node process that is the tender: `ip netns exec` and `env` (the #!
 * line of bin/ukvm-ts) normally exec it in place, but if either forks, the
 * spawned pid is only its ancestor; so search the spawned pid and its
 * descendants for a node whose command line names bin/ukvm-ts.
 */
function findTender(rootPid) {
  const parents = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parents.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // exited meanwhile
    }
  }
  const queue = [rootPid];
  while (queue.length) {
    const pid = queue.shift();
    try {
      const exe = readlinkSync(`/proc/${pid}/exe`);
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (/\/node[^/]*$/.test(exe) && cmd.some((a) => a.endsWith('ukvm-ts'))) return pid;
    } catch {
      // exited or not readable
    }
    for (const [child, parent] of parents) if (parent === pid) queue.push(child);
  }
  return null;
}

// The block pattern of test/guests/soak.c (pattern_state, xorshift), for the final disk check.
const M64 = (1n << 64n) - 1n;
function patternState(seed, b, gen) {
  let x = BigInt(seed) ^ (((b + 1n) * 0x9e3779b97f4a7c15n) & M64) ^ (((gen + 1n) * 0xc2b2ae3d27d4eb4fn) & M64);
  x ^= x >> 31n;
  x = (x * 0xbf58476d1ce4e5b9n) & M64;
  x ^= x >> 29n;
  return x === 0n ? 1n : x;
}
function patternBlock(seed, b, gen) {
  const out = Buffer.alloc(BLOCK);
  let s = patternState(seed, BigInt(b), BigInt(gen));
  for (let i = 0; i < BLOCK; i += 8) {
    s ^= (s << 13n) & M64;
    s ^= s >> 7n;
    s ^= (s << 17n) & M64;
    out.writeBigUInt64LE(s, i);
  }
  return out;
}

/** Blocks of the final disk that differ from what the guest's last pass (gen, next) must have left. */
function badBlocks(disk, gen, next) {
  const zero = Buffer.alloc(BLOCK);
  let bad = 0;
  for (let b = 0; b * BLOCK < disk.length; b++) {
    const want = b < next ? patternBlock(SEED, b, gen) : gen === 0 ? zero : patternBlock(SEED, b, gen - 1);
    if (!disk.subarray(b * BLOCK, (b + 1) * BLOCK).equals(want)) bad++;
  }
  return bad;
}

/** A child process with its output collected (and stdout split into lines as they come). */
function start(cmd, args, onLine) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const p = { child, stdout: '', stderr: '', exit: null };
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (s) => {
    p.stdout += s;
    const lines = (partial + s).split('\n');
    partial = lines.pop();
    for (const l of lines) onLine?.(l);
  });
  child.stderr.setEncoding('utf8').on('data', (s) => (p.stderr += s));
  p.done = new Promise((resolve) => {
    child.on('error', (e) => {
      p.stderr += `${e.message}\n`;
    });
    child.on('close', (status, signal) => resolve((p.exit = { status, signal })));
  });
  return p;
}

async function waitExit(p, ms) {
  await Promise.race([p.done, sleep(ms)]);
  return p.exit;
}

// ---- set-up and clean-up ----

let dir = null;
let nsMade = false;
const children = [];

/** Kills what we started and deletes the namespace and the disk; safe to call more than once. */
function cleanup() {
  for (const p of children) if (p.exit === null) p.child.kill('SIGKILL');
  if (nsMade) spawnSync('ip', ['netns', 'del', NS]);
  nsMade = false;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    cleanup();
    console.log(`\nsoak: interrupted by ${sig}; namespace ${NS} and the disk image removed`);
    process.exit(130);
  });
}

function preflight() {
  if (process.getuid?.() !== 0) die('needs root (network namespaces and taps)');
  for (const cmd of ['ip', 'ping']) if (spawnSync(cmd, ['-V']).status !== 0) die(`\`${cmd}\` is not available`);
  if (!existsSync(join(ROOT, 'dist', 'ukvm-ts.mjs'))) {
    log('dist/ is missing, running npm run build:ts');
    if (spawnSync('npm', ['run', 'build:ts'], { cwd: ROOT, stdio: 'inherit' }).status !== 0) die('npm run build:ts failed');
  }
  // Builds soak.hvt if it is missing or older than its source.
  if (spawnSync(process.execPath, [join(ROOT, 'test', 'guests', 'build.mjs'), 'soak'], { stdio: 'inherit' }).status !== 0) {
    die('building test/guests/soak.c failed');
  }
  // Namespaces of earlier runs that were killed before they could clean up.
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const name of list.split('\n').map((l) => l.split(' ')[0])) {
    const m = new RegExp(`^${NS_PREFIX}(\\d+)$`).exec(name ?? '');
    if (m && !pidAlive(Number(m[1]))) spawnSync('ip', ['netns', 'del', name]);
  }
}

function makeNamespace() {
  ip('netns', 'add', NS);
  nsMade = true;
  ip('-n', NS, 'link', 'set', 'lo', 'up');
  // No IPv6: router solicitations and the like would only be frames for the guest to ignore.
  spawnSync('ip', ['netns', 'exec', NS, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  ip('-n', NS, 'tuntap', 'add', 'dev', TAP, 'mode', 'tap');
  ip('-n', NS, 'addr', 'add', `${HOST_IP}/24`, 'dev', TAP);
  ip('-n', NS, 'link', 'set', TAP, 'up');
}

// ---- the run ----

async function main() {
  preflight();
  dir = mkdtempSync(join(tmpdir(), 'ukvm-ts-soak-'));
  const disk = join(dir, 'disk.img');
  writeFileSync(disk, '');
  truncateSync(disk, DISK_BYTES); // zeros, as the guest's first pass expects
  makeNamespace();
  log(`${opts.minutes} min (${WARMUP.toFixed(0)} s warm-up), namespace ${NS}, guest ${GUEST_IP}, disk ${DISK_BYTES / MiB} MiB, pattern seed ${SEED}`);

  // The guest's console: every line counted; counter lines parsed; the time of the last one watched.
  const con = { lines: 0, last: null, done: null, mismatches: [], lastAt: Date.now() };
  const tender = start('ip', ['netns', 'exec', NS, BIN, `--mem=${MEM_MIB}`, `--net:service=${TAP}`,
    `--block:storage=${disk}`, GUEST, GUEST_IP, String(SEED)], (line) => {
    con.lines++;
    con.lastAt = Date.now();
    const m = /^soak: (done )?t=(\d+) (.*)$/.exec(line);
    if (m) {
      const c = Object.fromEntries([...m[3].matchAll(/(\w+)=(\d+)/g)].map(([, k, v]) => [k, Number(v)]));
      c.t = Number(m[2]);
      if (m[1]) con.done = c;
      else con.last = c;
    } else if (line.startsWith('soak: MISMATCH')) {
      con.mismatches.push(line);
    }
  });
  children.push(tender);

  const failures = [];
  const t0 = Date.now();
  while (!/^soak: ready/m.test(tender.stdout)) {
    if (tender.exit || Date.now() - t0 > 60_000) {
      throw new Error(`the guest did not start (exit ${JSON.stringify(tender.exit)}):\n${tender.stdout}${tender.stderr}`);
    }
    await sleep(50);
  }
  const pid = findTender(tender.child.pid);
  if (pid === null) throw new Error(`cannot find the tender's node process under pid ${tender.child.pid}`);
  log(`tender pid ${pid}${pid === tender.child.pid ? '' : ` (under ${tender.child.pid})`}; ${/^soak: ready.*$/m.exec(tender.stdout)[0]}`);

  // ping -f -q without a count: stopped with SIGINT at the end, when it prints its summary.
  const ping = start('ip', ['netns', 'exec', NS, 'ping', '-f', '-q', GUEST_IP]);
  children.push(ping);
  const floodStart = Date.now();
  const end = floodStart + DURATION_S * 1000;
  const progressEvery = Math.min(60, Math.max(5, DURATION_S / 20)) * 1000;
  let nextProgress = floodStart + progressEvery;
  let rssStart = null;
  const samples = [];
  while (Date.now() < end) {
    await sleep(Math.min(1000, Math.max(0, end - Date.now())));
    const now = Date.now();
    if (tender.exit) {
      failures.push(`the tender exited during the soak: ${JSON.stringify(tender.exit)} ${tender.stderr.trim()}`);
      break;
    }
    if (now - con.lastAt > STALL_S * 1000) {
      failures.push(`no console line for ${((now - con.lastAt) / 1000).toFixed(1)} s: the console (or the guest) stopped`);
      break;
    }
    const mem = memOf(pid);
    if (rssStart === null && now - floodStart >= WARMUP * 1000) {
      rssStart = mem;
      log(`RSS after warm-up: ${mib(mem?.rss)}`);
    }
    if (rssStart !== null && mem) samples.push(mem.rss);
    if (now >= nextProgress) {
      nextProgress += progressEvery;
      const c = con.last ?? {};
      log(`${((now - floodStart) / 1000).toFixed(0)} s: replies=${c.replies} blocks=${c.blocks} verified=${c.verified} ` +
        `mismatches=${c.mismatches} gen=${c.gen} rss=${mib(mem?.rss)}, console lines ${con.lines}`);
    }
  }
  const rssEnd = tender.exit ? null : memOf(pid);
  const floodSecs = (Date.now() - floodStart) / 1000;

  // Stop the flood first (its summary), then ask the guest to finish its round and exit.
  ping.child.kill('SIGINT');
  await waitExit(ping, 10_000);
  for (let i = 0; i < 5 && !tender.exit; i++) {
    spawnSync('ip', ['netns', 'exec', NS, 'bash', '-c', `printf quit > /dev/udp/${GUEST_IP}/9`]);
    await waitExit(tender, 3000);
  }
  if (!tender.exit) {
    failures.push('the guest did not exit after "quit" (15 s)');
    tender.child.kill('SIGKILL');
    await waitExit(tender, 5000);
  }

  // The results.
  const status = tender.exit;
  const done = con.done;
  if (!done) failures.push('no final "soak: done" line');
  const c = done ?? con.last ?? {};
  if ((c.mismatches ?? 0) > 0) failures.push(`${c.mismatches} block mismatches:\n  ${con.mismatches.join('\n  ')}`);
  if ((c.block_errors ?? 0) > 0) failures.push(`${c.block_errors} block hypercalls failed`);
  if ((c.net_errors ?? 0) > 0) failures.push(`${c.net_errors} net hypercalls failed`);
  if (status && (status.status !== 0 || status.signal)) failures.push(`tender exit ${JSON.stringify(status)}; stderr: ${tender.stderr.trim()}`);
  let hostBad = null;
  if (done) {
    hostBad = badBlocks(readFileSync(disk), done.gen, done.next);
    if (hostBad > 0) failures.push(`the final disk has ${hostBad} blocks that differ from the guest's last passes`);
  }
  const pm = /(\d+) packets transmitted, (\d+) received(.*?), ([\d.e+-]+)% packet loss/.exec(ping.stdout); // ping may print 8.4e-05%
  const rtt = /rtt min\/avg\/max\/mdev = ([^\n]*)/.exec(ping.stdout)?.[1];
  if (!pm) failures.push(`no ping summary: ${ping.stdout}${ping.stderr}`.trim());

  const growth = rssStart && rssEnd ? rssEnd.rss - rssStart.rss : null;
  console.log('\n==== soak summary ====');
  console.log(`duration:          ${formatDuration(floodSecs * 1000)} under flood (${WARMUP.toFixed(0)} s warm-up)`);
  console.log(`tender RSS:        start ${mib(rssStart?.rss)}, end ${mib(rssEnd?.rss)}, growth ${growth === null ? 'n/a' : `${(growth / 1024).toFixed(0)} KiB`}` +
    ` (goal < 1024 KiB: ${growth === null ? 'n/a' : growth < MiB ? 'met' : 'NOT met'})`);
  // One sample moves by a few MiB with Node's garbage collections; medians of the first and last fifth show the trend.
  if (samples.length >= 10) {
    const fifth = Math.floor(samples.length / 5);
    const a = median(samples.slice(0, fifth));
    const b = median(samples.slice(-fifth));
    console.log(`RSS samples:       ${samples.length} (1/s) after warm-up: min ${mib(Math.min(...samples))}, max ${mib(Math.max(...samples))}; ` +
      `median of the first fifth ${mib(a)}, of the last fifth ${mib(b)} (${((b - a) / 1024).toFixed(0)} KiB)`);
  }
  if (pm) {
    // Stopping ping with SIGINT loses the request in flight; the guest's own reply count tells.
    const lost = Number(pm[1]) - Number(pm[2]);
    const inFlight = lost > 0 && (c.replies ?? 0) >= Number(pm[1]) ? ', answered by the guest: in flight when ping was stopped' : '';
    console.log(`ping -f:           ${pm[1]} sent, ${pm[2]} received${pm[3]}, ${lost} lost (${pm[4]}%${inFlight}), ` +
      `${(Number(pm[2]) / floodSecs).toFixed(0)} replies/s` +
      `${rtt ? `; rtt min/avg/max/mdev ${rtt}` : ''}`);
  }
  console.log(`guest:             ${c.replies ?? 'n/a'} echo replies, ${c.arp ?? 'n/a'} ARP replies, ${c.frames ?? 'n/a'} frames, ${c.polls ?? 'n/a'} polls, ${c.net_errors ?? 'n/a'} net errors`);
  console.log(`block rounds:      ${c.blocks ?? 'n/a'} (read old + write + read back), ${c.verified ?? 'n/a'} verified, ${c.mismatches ?? 'n/a'} mismatches, ` +
    `${c.block_errors ?? 'n/a'} errors; ${c.gen ?? 'n/a'} full passes over ${DISK_BYTES / BLOCK} blocks; ` +
    `final disk checked by the host: ${hostBad === null ? 'not checked' : `${hostBad} bad blocks`}`);
  console.log(`console lines:     ${con.lines}`);
  console.log(`exit status:       ${status ? (status.signal ? `signal ${status.signal}` : status.status) : 'n/a'}${tender.stderr.trim() ? `; stderr: ${tender.stderr.trim()}` : ''}`);
  console.log(`result:            ${failures.length ? `FAILED\n  ${failures.join('\n  ')}` : 'ok'}`);
  cleanup();
  process.exit(failures.length ? 1 : 0);
}

main().catch((e) => {
  process.stderr.write(`soak: ${e instanceof Error ? e.message : String(e)}\n`);
  cleanup();
  process.exit(1);
});
