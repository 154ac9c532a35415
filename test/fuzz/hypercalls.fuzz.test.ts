// Fuzzing the hypercall interface (docs/abi.md §9.2, §9.3, §10) from inside a guest:
// test/guests/fuzz_hypercalls.c issues random hypercalls chosen by a seed,
// predicts each outcome from the spec and checks the results it can see
// (BLOCK ret codes, data read back against its shadow of the disk, POLL and
// WALLTIME results, untouched input fields). Its last call may be fatal:
// a bad structure or data address, an unregistered hypercall, a bad port
// access, a store into text/rodata, a triple fault, or a HALT.
//
// For every run this file checks, from the outside:
//   * the tender is never killed by a signal and never hangs (20 s);
//   * stderr is empty, or exactly one line from the documented set, and
//     exactly the line the guest predicted; never "internal error";
//   * the exit status is the predicted one (guest status, or 1);
//   * the guest saw no mismatch ("@@ FAIL" lines, fails=0);
//   * the disk image equals the guest's shadow (same hash), and every byte
//     the guest never wrote still holds the initial pattern.
//
// Runs: RUNS seeds with CALLS calls each, plus SHORT_RUNS seeds with a few
// calls each (more final calls, which end a run). The device is one block
// device of 16 KiB; no net device (NET_READ/NET_WRITE are unregistered then,
// which the last call exercises). A second suite runs fuzz_hypercalls_net
// (the same guest with a net device too) on taps in a network namespace
// (test/helpers/netns.ts; needs root, skipped loudly otherwise), with
// NET_RUNS and NET_SHORT_RUNS runs.
//
// Replay: a failure prints the seed, the count, the command line (the disk
// image must hold the pattern, diskPattern() below) and the last calls of a
// verbose re-run (the guest's third argument "verbose"). FUZZ_SEED=<n>
// changes the base seed, FUZZ_RUNS / FUZZ_CALLS the sizes; FUZZ_RUN=<seed>
// (FUZZ_NET_RUN=<seed> for the net variant) with FUZZ_CALLS=<count> runs one
// guest and prints its whole output.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupStaleNetns, Netns, netUnavailableReason } from '../helpers/netns.js';
import { caseSeed, envCount, fuzzSeed } from '../helpers/prng.js';
import { BIN, describeKvm, guest, kvmAvailable, ROOT } from '../helpers/tender.js';

const BASE_SEED = fuzzSeed(0x5eedca11);
const RUNS = envCount('FUZZ_RUNS', 20);
const CALLS = envCount('FUZZ_CALLS', 300);
const SHORT_RUNS = envCount('FUZZ_SHORT_RUNS', 40);
const SHORT_CALLS = 4;
const NET_RUNS = envCount('FUZZ_NET_RUNS', 8);
const NET_SHORT_RUNS = envCount('FUZZ_NET_SHORT_RUNS', 16);
// Replay of one run: FUZZ_RUN=<seed> (block variant) or FUZZ_NET_RUN=<seed> (net variant).
const ONLY_BLOCK = process.env['FUZZ_RUN'] ? Number(process.env['FUZZ_RUN']) : null;
const ONLY_NET = process.env['FUZZ_NET_RUN'] ? Number(process.env['FUZZ_NET_RUN']) : null;
const REPLAY = ONLY_BLOCK !== null || ONLY_NET !== null;
const DISK_SIZE = 16384;
const MEM_MIB = 8;
const TIMEOUT_MS = 20_000;
const M64 = (1n << 64n) - 1n;

/** Word w of the initial disk image; pattern_word() in fuzz_hypercalls.c. */
function patternWord(w: bigint): bigint {
  let x = ((w + 1n) * 0x9e3779b97f4a7c15n) & M64;
  x ^= x >> 29n;
  x = (x * 0xbf58476d1ce4e5b9n) & M64;
  x ^= x >> 32n;
  return x;
}

function diskPattern(): Buffer {
  const b = Buffer.alloc(DISK_SIZE);
  for (let w = 0; w < DISK_SIZE / 8; w++) b.writeBigUInt64LE(patternWord(BigInt(w)), 8 * w);
  return b;
}

/** shadow_hash() of the guest, over a disk image. */
function diskHash(b: Buffer): bigint {
  let h = 0xcbf29ce484222325n;
  for (let o = 0; o < b.length; o += 8) {
    h ^= b.readBigUInt64LE(o);
    h = (h * 0x100000001b3n) & M64;
  }
  return h;
}

interface Run {
  seed: number;
  count: number;
  status: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  disk: Buffer;
}

type Output = Pick<Run, 'status' | 'signal' | 'timedOut' | 'stdout' | 'stderr'>;

/** Runs the tender directly (no network namespace). */
function spawnTender(args: readonly string[]): Promise<Output> {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, TIMEOUT_MS);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, timedOut, stdout: Buffer.concat(out).toString('latin1'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** How one variant of the guest is run: its name, extra options for worker w, the launcher. */
interface Variant {
  name: 'fuzz_hypercalls' | 'fuzz_hypercalls_net';
  options(worker: number): string[];
  launch(args: readonly string[]): Promise<Output>;
  workers: number;
  /** Stderr lines this variant may end with, besides the guest-caused ones. */
  hostLines: boolean;
}

async function runGuest(v: Variant, worker: number, dir: string, seed: number, count: number, pattern: Buffer, verbose = false): Promise<Run> {
  const img = join(dir, `disk-${seed}-${count}${verbose ? '-v' : ''}.img`);
  writeFileSync(img, pattern);
  const args = [`--mem=${MEM_MIB}`, `--block:storage=${img}`, ...v.options(worker), guest(v.name), String(seed), String(count)];
  if (verbose) args.push('verbose');
  const out = await v.launch(args);
  const disk = readFileSync(img);
  rmSync(img, { force: true });
  return { seed, count, disk, ...out };
}

/** Runs jobs on `width` workers, results in job order. */
async function pooled<T>(jobs: ((worker: number) => Promise<T>)[], width: number): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async (w: number) => {
    while (next < jobs.length) {
      const i = next++;
      results[i] = await (jobs[i] as (worker: number) => Promise<T>)(w);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, width) }, (_, w) => worker(w)));
  return results;
}

// Every line a run may end with (docs/abi.md §9.2, §9.3; README). "internal error"
// is not among them: this guest never runs instructions the host cannot.
const GUEST_LINES =
  'Invalid guest access: gpa=0x[0-9a-f]+, sz=\\d+|Invalid guest hypercall: num=\\d+|Invalid guest port access: port=0x[0-9a-f]+|' +
  'KVM: host/guest translation fault: rip=0x[0-9a-f]+|KVM: unhandled exit: exit_reason=0x[0-9a-f]+, rip=0x[0-9a-f]+';
// With a tap, the host may refuse a frame (docs/abi.md §10.6: a fatal host I/O error).
const HOST_LINES = 'Fatal error when (?:writing|reading): [^\\n]+';
const documented = (v: Variant) => new RegExp(`^ukvm-ts: (?:${GUEST_LINES}${v.hostLines ? `|${HOST_LINES}` : ''})\\n$`);

interface Summary {
  issued: number;
  einval: number;
  perKind: Record<string, number>;
  finals: Record<string, number>;
}

/** Everything wrong with one run (empty if it is fine). */
function problems(v: Variant, r: Run, pattern: Buffer, sum: Summary): string[] {
  const DOCUMENTED = documented(v);
  const p: string[] = [];
  if (r.timedOut) return [`no exit within ${TIMEOUT_MS} ms (hang)`];
  if (r.signal !== null) p.push(`killed by ${r.signal}`);
  if (/internal error/.test(r.stderr)) p.push('stderr says internal error');
  const lines = r.stdout.split('\n');
  const finalAt = lines.findIndex((l) => l.startsWith('@@ final '));
  const before = (finalAt < 0 ? lines : lines.slice(0, finalAt)).filter((l) => l.startsWith('@@ '));
  const after = finalAt < 0 ? [] : lines.slice(finalAt + 1);
  const seedLine = before.find((l) => l.startsWith('@@ seed='));
  if (seedLine !== `@@ seed=${r.seed} count=${r.count}` && !seedLine?.startsWith(`@@ seed=${r.seed} count=${r.count} `)) {
    p.push(`no seed line for seed ${r.seed}`);
  }
  for (const l of before.filter((x) => x.startsWith('@@ FAIL'))) p.push(`guest: ${l.slice(3)}`);
  const done = before.find((l) => l.startsWith('@@ done '));
  const d = done
    ? /issued=(\d+) .*einval=(\d+) walltime=(\d+) puts=(\d+) poll=(\d+) bwrite=(\d+) bread=(\d+) nwrite=(\d+) nread=(\d+) again=(\d+) frames=(\d+) putsb=(\d+) fails=(\d+) hash=0x([0-9a-f]+)$/.exec(done)
    : null;
  if (!d) {
    p.push('the run ended before its last call (no "@@ done" line)');
    if (r.stderr !== '' && !DOCUMENTED.test(r.stderr)) p.push('stderr is not exactly one documented line');
    return p;
  }
  if (d[13] !== '0') p.push(`guest counted ${d[13]} failed checks`);
  sum.issued += Number(d[1]);
  sum.einval += Number(d[2]);
  ['walltime', 'puts', 'poll', 'bwrite', 'bread', 'nwrite', 'nread', 'again', 'frames'].forEach((k, i) => {
    sum.perKind[k] = (sum.perKind[k] ?? 0) + Number(d[3 + i]);
  });

  // The disk: the guest's shadow (hash), and the pattern wherever it never wrote.
  if (diskHash(r.disk) !== BigInt(`0x${d[14]}`)) p.push(`disk hash 0x${diskHash(r.disk).toString(16)} != guest's shadow 0x${d[14]}`);

  // Console: every byte the fuzzed PUTS calls asked for, once (letters, on
  // lines of their own between the log lines).
  const doneAt = lines.indexOf(done as string);
  const consoleBytes = lines.slice(0, doneAt).filter((l) => !l.startsWith('@@ ')).join('');
  if (!/^[a-z]*$/.test(consoleBytes)) p.push('console bytes other than the PUTS letters before "@@ done"');
  if (consoleBytes.length !== Number(d[12])) p.push(`console got ${consoleBytes.length} PUTS bytes, the guest wrote ${d[12]}`);
  const written = new Uint8Array(pattern.length);
  for (const l of before.filter((x) => x.startsWith('@@ wrote'))) {
    for (const w of l.slice('@@ wrote'.length).trim().split(/\s+/)) {
      const [off, len] = w.split(':').map((x) => parseInt(x, 16));
      written.fill(1, off, (off ?? 0) + (len ?? 0));
    }
  }
  if (r.disk.length !== pattern.length) p.push(`disk size changed to ${r.disk.length}`);
  for (let i = 0; i < pattern.length; i++) {
    if (!written[i] && r.disk[i] !== pattern[i]) {
      p.push(`disk byte ${i} changed (${pattern[i]} → ${r.disk[i]}) though the guest never wrote it`);
      break;
    }
  }

  // The last call, as the guest predicted it.
  const fin = finalAt < 0 ? null : /^@@ final .*kind=(\S+) .*expect=(\w+)(?: (.*))?$/.exec(lines[finalAt] ?? '');
  if (!fin) {
    p.push('no "@@ final" line');
    return p;
  }
  const [, kind, expectKind, text = ''] = fin;
  sum.finals[`${kind}/${expectKind}`] = (sum.finals[`${kind}/${expectKind}`] ?? 0) + 1;
  const survived = after.includes('@@ survived');
  switch (expectKind) {
    case 'fatal':
      if (r.status !== 1 || r.stderr !== `ukvm-ts: ${text}\n`) p.push(`expected status 1 and "ukvm-ts: ${text}"`);
      if (survived) p.push('the guest survived a call that must end the run');
      break;
    case 'prefix':
      if (r.status !== 1 || !r.stderr.startsWith(`ukvm-ts: ${text}`) || !DOCUMENTED.test(r.stderr)) p.push(`expected status 1 and "ukvm-ts: ${text}…"`);
      if (survived) p.push('the guest survived a call that must end the run');
      break;
    case 'halt':
      if (r.status !== Number(text) || r.stderr !== '') p.push(`expected exit status ${text} and no stderr`);
      break;
    case 'survive':
      if (r.status !== 0 || r.stderr !== '' || !survived) p.push('expected the call to return, then exit status 0');
      break;
    case 'any':
      if (r.stderr !== '' && (r.status !== 1 || !DOCUMENTED.test(r.stderr))) p.push('expected a guest status, or status 1 and one documented line');
      break;
    default:
      p.push(`unknown expectation ${expectKind}`);
  }
  if (r.stderr !== '' && !DOCUMENTED.test(r.stderr)) p.push('stderr is not exactly one documented line');
  return p;
}

function describeRun(v: Variant, r: Run, p: string[]): string {
  const tail = r.stdout.split('\n').filter((l) => l.startsWith('@@ ')).slice(-16).join('\n      ');
  return [
    `seed ${r.seed}, ${r.count} calls: status=${r.status} signal=${r.signal} stderr=${JSON.stringify(r.stderr)}`,
    ...p.map((x) => `    PROBLEM: ${x}`),
    `    replay: node bin/ukvm-ts --mem=${MEM_MIB} --block:storage=DISK${v.hostLines ? ' --net:service=TAP' : ''} test/guests/build/${v.name}.hvt ${r.seed} ${r.count}` +
      `   (DISK: ${DISK_SIZE} bytes of the pattern; or ${v.hostLines ? 'FUZZ_NET_RUN' : 'FUZZ_RUN'}=${r.seed} FUZZ_CALLS=${r.count} npx vitest run test/fuzz/hypercalls.fuzz.test.ts)`,
    `    last guest lines:\n      ${tail}`,
  ].join('\n');
}

/** The whole fuzz run of one variant; `runs` long runs and `shortRuns` short ones. */
async function fuzz(v: Variant, dir: string, runsN: number, shortN: number): Promise<void> {
  const pattern = diskPattern();
  const salt = v.hostLines ? 5000 : 0;
  const only = v.hostLines ? ONLY_NET : ONLY_BLOCK;
  const specs: [number, number][] =
    only !== null
      ? [[only, CALLS]]
      : [
          ...Array.from({ length: runsN }, (_, i): [number, number] => [caseSeed(BASE_SEED, salt + i) & 0x7fffffff, CALLS]),
          ...Array.from({ length: shortN }, (_, i): [number, number] => [caseSeed(BASE_SEED, salt + 1000 + i) & 0x7fffffff, SHORT_CALLS]),
        ];
  const runs = await pooled(
    specs.map(([seed, count]) => (w: number) => runGuest(v, w, dir, seed, count, pattern)),
    v.workers,
  );
  const sum: Summary = { issued: 0, einval: 0, perKind: {}, finals: {} };
  const bad: string[] = [];
  for (const r of runs) {
    const p = problems(v, r, pattern, sum);
    if (only !== null) console.log(r.stdout, r.stderr);
    if (!p.length) continue;
    let text = describeRun(v, r, p);
    if (bad.length < 3) {
      // The same run again, printing every call before it is issued.
      const again = await runGuest(v, 0, dir, r.seed, r.count, pattern, true);
      const issues = again.stdout.split('\n').filter((l) => l.startsWith('@@ issue ')).slice(-6);
      text += `\n    verbose replay, last calls issued:\n      ${issues.join('\n      ')}\n      stderr: ${JSON.stringify(again.stderr)}`;
    }
    bad.push(text);
  }
  console.log(
    `${v.name}: ${runs.length} runs, ${sum.issued} calls issued (${sum.einval} EINVAL) ${JSON.stringify(sum.perKind)}; last calls ${JSON.stringify(sum.finals)}`,
  );
  expect(bad.length, `${bad.length} failing run(s):\n${bad.slice(0, 5).join('\n')}`).toBe(0);
  if (only === null) {
    // The fuzzing must actually reach every hypercall and several kinds of ending.
    const kinds = ['walltime', 'puts', 'poll', 'bwrite', 'bread', ...(v.hostLines ? ['nwrite', 'nread'] : [])];
    for (const k of kinds) expect(sum.perKind[k] ?? 0, k).toBeGreaterThan(runsN);
    expect(sum.einval).toBeGreaterThan(runsN);
    expect(Object.keys(sum.finals).length).toBeGreaterThanOrEqual(Math.min(6, shortN / 3));
  }
}

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ukvm-ts-fuzz-hc-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const describeBlock = REPLAY && ONLY_BLOCK === null ? describe.skip : describeKvm;
describeBlock(`hypercall fuzz (base seed 0x${BASE_SEED.toString(16)})`, () => {
  const direct: Variant = {
    name: 'fuzz_hypercalls',
    options: () => [],
    launch: spawnTender,
    workers: availableParallelism(),
    hostLines: false,
  };
  const label = ONLY_BLOCK !== null ? `seed ${ONLY_BLOCK}` : `${RUNS} seeds × ${CALLS} calls and ${SHORT_RUNS} seeds × ${SHORT_CALLS} calls`;
  it(`block device: ${label}: predicted results and exits, one documented line, disk intact`, async () => {
    await fuzz(direct, dir, RUNS, SHORT_RUNS);
  }, 120_000);
});

// The net variant needs taps in a private network namespace (root).
const netWanted = kvmAvailable && (!REPLAY || ONLY_NET !== null);
const netSkip = netWanted ? netUnavailableReason() : 'not run';
if (netWanted && netSkip) {
  const bar = '!'.repeat(72);
  process.stderr.write(`\n${bar}\n!! net hypercall fuzz SKIPPED: ${netSkip}\n!! This is NOT a pass of the net fuzz.\n${bar}\n\n`);
}
const describeNet = netSkip ? describe.skip : describeKvm;

describeNet(`hypercall fuzz with a net device (base seed 0x${BASE_SEED.toString(16)})`, () => {
  let ns: Netns | undefined;
  const taps: string[] = [];
  const workers = Math.min(2, availableParallelism());
  beforeAll(() => {
    // fuzz_hypercalls_net.c includes fuzz_hypercalls.c, which the build does
    // not know: rebuild it when that file is newer than the binary.
    const src = join(ROOT, 'test', 'guests', 'fuzz_hypercalls_net.c');
    const shared = statSync(join(ROOT, 'test', 'guests', 'fuzz_hypercalls.c')).mtimeMs;
    let built = 0;
    try {
      built = statSync(guest('fuzz_hypercalls_net')).mtimeMs;
    } catch {
      // not built yet
    }
    if (shared >= built) {
      const now = new Date();
      utimesSync(src, now, now);
      execFileSync(process.execPath, [join(ROOT, 'test', 'guests', 'build.mjs'), 'fuzz_hypercalls_net'], { stdio: 'inherit' });
    }
    cleanupStaleNetns();
    ns = Netns.create();
    for (let w = 0; w < workers; w++) taps.push(ns.addTap().name);
  });
  afterAll(async () => {
    await ns?.destroy();
  });

  const label = ONLY_NET !== null ? `seed ${ONLY_NET}` : `${NET_RUNS} seeds × ${CALLS} calls and ${NET_SHORT_RUNS} seeds × ${SHORT_CALLS} calls`;
  it(`net and block devices: ${label}: predicted results and exits, one documented line, disk intact`, async () => {
    const net: Variant = {
      name: 'fuzz_hypercalls_net',
      options: (w) => [`--net:service=${taps[w]}`],
      launch: (args) => (ns as Netns).runTender(args, TIMEOUT_MS),
      workers,
      hostLines: true,
    };
    await fuzz(net, dir, NET_RUNS, NET_SHORT_RUNS);
  }, 120_000);
});
