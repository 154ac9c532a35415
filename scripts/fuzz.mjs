#!/usr/bin/env node
// Fuzzing at scale: runs the existing fuzz suites (test/fuzz/*.fuzz.test.ts)
// with sizes far beyond CI's, from one seed, and sums up what they did.
//
//   npm run fuzz -- --hypercalls 1000000 --elfs 100000 [--seed S]
//
// The suites take their sizes from the environment (FUZZ_RUNS, FUZZ_CALLS,
// FUZZ_NET_RUNS, FUZZ_CASES, FUZZ_SEED, ...) and print replay commands for
// every failing run or case. Their hypercall and CLI tests carry an explicit
// 120 s timeout that vitest's --testTimeout does not override (an explicit
// per-test timeout wins), so one huge vitest run would time out. Instead the
// work is cut into chunks that each finish well inside 120 s, every chunk a
// separate `vitest run` with its own FUZZ_SEED derived from the master seed
// (chunk 0 uses the master seed itself). --testTimeout/--hookTimeout are
// still raised for the tests without an explicit timeout (the in-process ELF
// test) and for the hooks (the net suite's namespace set-up).
import { spawn, spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { splitCounts, deriveSeed, parseArgs, stripAnsi, formatDuration } from './common.mjs';

const ROOT = join(import.meta.dirname, '..');
const VITEST = join(ROOT, 'node_modules', '.bin', 'vitest');
const HC_FILE = 'test/fuzz/hypercalls.fuzz.test.ts';
const ELF_FILE = 'test/fuzz/elf.fuzz.test.ts';

// Sizes of one chunk. A 1000-call run takes ~2 s here (PVM, 2 cores, 2
// parallel tenders): the block test of a chunk (20 long + 40 short runs)
// took 23-40 s, the net one (5 + 16) 8-9 s, with other tests running on the
// machine; a third of the 120 s limit at worst, room for a busier machine.
const CALLS_PER_RUN = 1000;
const BLOCK_RUNS_PER_CHUNK = 20;
const NET_RUNS_PER_CHUNK = 5;
const NET_SHARE = 0.2; // of the long runs, when the net variant can run
const SHORT_RUNS = 40; // per chunk: 4-call runs that mostly test the final (fatal) calls
const NET_SHORT_RUNS = 16;
const ELF_CASES_PER_CHUNK = 25_000; // ~8 s in-process
const ELF_CLI_CASES = 50; // files per chunk run through bin/ukvm-ts (the suite's default)
// What a tender says when dist/ or the native addon is missing at its start, or when
// one was rebuilt and the other not yet (the addon's own check, "rebuild it").
const MISSING_BUILD = /Cannot find module '[^']*\/(?:dist|build\/Release)\/[^']*'|ukvm_native\.node does not match its typed surface/;
const CHUNK_WATCHDOG_MS = 15 * 60_000; // a chunk that hangs this long is killed and counted failed

const USAGE = `usage: npm run fuzz -- [--hypercalls N] [--elfs N] [--seed S]

  --hypercalls N  about N fuzzed hypercalls from guests (test/fuzz/hypercalls.fuzz.test.ts),
                  in runs of ${CALLS_PER_RUN} calls; ${NET_SHARE * 100}% of the runs with a net device when
                  root can make a network namespace. 0 skips. Default 1000000.
  --elfs N        N mutated kernels through the ELF reader and loader
                  (test/fuzz/elf.fuzz.test.ts), ${ELF_CLI_CASES} of every ${ELF_CASES_PER_CHUNK} also through the CLI. 0 skips.
                  Default 100000.
  --seed S        master seed, decimal or 0x hex, 32 bits (default: a random one, printed first)
  --help          this text

Prints the seed first, one line per chunk, the output of any failing chunk
(its replay commands and seeds), and a summary. Exit status 1 if anything failed.`;

function die(msg) {
  process.stderr.write(`fuzz: ${msg} (see --help)\n`);
  process.exit(1);
}

const opts = parseArgs(process.argv.slice(2), {
  hypercalls: { kind: 'count', default: 1_000_000 },
  elfs: { kind: 'count', default: 100_000 },
  seed: { kind: 'seed' },
}, USAGE, die);
const seed = opts.seed ?? randomInt(0x100000000);

/** True if the net fuzz can run: root, ip, ping, /dev/net/tun, and a namespace can be made. */
function netAvailable() {
  if (process.getuid?.() !== 0) return false;
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    return false;
  }
  for (const cmd of ['ip', 'ping']) if (spawnSync(cmd, ['-V']).status !== 0) return false;
  const probe = `ukvmfz-${process.pid}`;
  if (spawnSync('ip', ['netns', 'add', probe]).status !== 0) return false;
  spawnSync('ip', ['netns', 'del', probe]);
  return true;
}

/** The plan: a list of chunks, each an environment and a vitest test-name filter. */
function plan() {
  const chunks = [];
  const net = opts.hypercalls > 0 && netAvailable();
  if (opts.hypercalls > 0) {
    const calls = Math.min(CALLS_PER_RUN, opts.hypercalls);
    const runs = Math.max(1, Math.round(opts.hypercalls / calls));
    const netRuns = net ? Math.round(runs * NET_SHARE) : 0;
    const blockRuns = runs - netRuns;
    const n = Math.max(Math.ceil(blockRuns / BLOCK_RUNS_PER_CHUNK), Math.ceil(netRuns / NET_RUNS_PER_CHUNK));
    const b = splitCounts(blockRuns, n);
    const nr = splitCounts(netRuns, n);
    for (let i = 0; i < n; i++) {
      // The suites need counts ≥ 1, so a variant with no runs in a chunk is filtered out by name instead.
      const names = [];
      if (b[i] > 0) names.push('block device: ');
      if (nr[i] > 0) names.push('net and block devices: ');
      chunks.push({
        kind: 'hypercalls',
        file: HC_FILE,
        filter: names.join('|'),
        env: {
          FUZZ_SEED: String(deriveSeed(seed, chunks.length)),
          FUZZ_CALLS: String(calls),
          FUZZ_RUNS: String(Math.max(1, b[i])),
          FUZZ_SHORT_RUNS: String(SHORT_RUNS),
          FUZZ_NET_RUNS: String(Math.max(1, nr[i])),
          FUZZ_NET_SHORT_RUNS: String(NET_SHORT_RUNS),
        },
        what: `${b[i]} block${nr[i] ? ` + ${nr[i]} net` : ''} runs × ${calls} calls`,
      });
    }
  }
  if (opts.elfs > 0) {
    const n = Math.ceil(opts.elfs / ELF_CASES_PER_CHUNK);
    for (const cases of splitCounts(opts.elfs, n)) {
      // Few cases cannot fill ELF_CLI_CASES distinct files; the suite insists on min(CLI, 40) of them.
      const cli = Math.max(1, Math.min(ELF_CLI_CASES, Math.floor(cases / 20)));
      chunks.push({
        kind: 'elfs',
        file: ELF_FILE,
        filter: '',
        env: { FUZZ_SEED: String(deriveSeed(seed, chunks.length)), FUZZ_CASES: String(cases), FUZZ_CLI_CASES: String(cli) },
        what: `${cases} ELF cases, ${cli} through the CLI`,
      });
    }
  }
  return { chunks, net };
}

/** The command that replays one chunk by hand. */
function replayCommand(c) {
  const env = Object.entries(c.env).map(([k, v]) => `${k}=${v}`).join(' ');
  return `${env} npx vitest run ${c.file}${c.filter ? ` -t '${c.filter}'` : ''}`;
}

let current = null; // the running vitest, killed on Ctrl-C

/** Runs one chunk; resolves with its output, its JSON report and whether it passed. */
function runChunk(c, dir, index) {
  const report = join(dir, `chunk-${index}.json`);
  const args = ['run', c.file, '--testTimeout=900000', '--hookTimeout=300000',
    '--reporter=default', '--reporter=json', `--outputFile.json=${report}`];
  if (c.filter) args.push('-t', c.filter);
  // A replay variable left in the caller's environment would turn a chunk into a one-case replay.
  const env = { ...process.env, ...c.env };
  for (const k of ['FUZZ_RUN', 'FUZZ_NET_RUN', 'FUZZ_CASE']) delete env[k];
  return new Promise((resolve) => {
    const child = spawn(VITEST, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    current = child;
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, CHUNK_WATCHDOG_MS);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      current = null;
      let json = null;
      try {
        json = JSON.parse(readFileSync(report, 'utf8'));
      } catch {
        // no report: vitest died or could not start; counted as a failure below
      }
      // Colours off; the note about the JSON file is noise (the file is ours and temporary).
      out = stripAnsi(out).replace(/^JSON report written to .*\n?/m, '');
      if (hung) out += `\nfuzz: chunk killed after ${CHUNK_WATCHDOG_MS / 60_000} minutes (hang)\n`;
      const failedTests = json?.numFailedTests ?? 0;
      const passed = status === 0 && json !== null && json.success === true && failedTests === 0;
      resolve({ out, json, passed, failedTests: passed ? 0 : Math.max(1, failedTests), status, signal });
    });
  });
}

/** Waits (up to 2 minutes) until dist/ukvm-ts.mjs and the addon exist and have not changed for 5 s. */
async function buildSettled() {
  const files = [join(ROOT, 'dist', 'ukvm-ts.mjs'), join(ROOT, 'build', 'Release', 'ukvm_native.node')];
  for (let t = 0; t < 120; t++) {
    try {
      if (files.every((f) => Date.now() - statSync(f).mtimeMs > 5000)) return;
    } catch {
      // not there (yet)
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** What the suites print about their work (console.log lines in the vitest output). */
function counts(out) {
  const c = { blockCalls: 0, netCalls: 0, blockRuns: 0, netRuns: 0, elfCases: 0, cliFiles: 0 };
  for (const m of out.matchAll(/^fuzz_hypercalls(_net)?: (\d+) runs, (\d+) calls issued/gm)) {
    if (m[1]) {
      c.netRuns += Number(m[2]);
      c.netCalls += Number(m[3]);
    } else {
      c.blockRuns += Number(m[2]);
      c.blockCalls += Number(m[3]);
    }
  }
  for (const m of out.matchAll(/^elf fuzz: (\d+) cases/gm)) c.elfCases += Number(m[1]);
  for (const m of out.matchAll(/^elf fuzz via CLI: (\d+) files/gm)) c.cliFiles += Number(m[1]);
  return c;
}

async function main() {
  // Seed first, so that even an interrupted run can be repeated.
  console.log(`fuzz: seed ${seed} (0x${seed.toString(16)}); repeat with --seed ${seed} --hypercalls ${opts.hypercalls} --elfs ${opts.elfs}`);
  if (!existsSync(VITEST)) die('node_modules/.bin/vitest is missing: run npm install first');
  // The tests run bin/ukvm-ts, which loads dist/.
  if (!existsSync(join(ROOT, 'dist', 'ukvm-ts.mjs'))) {
    console.log('fuzz: dist/ is missing, running npm run build:ts');
    if (spawnSync('npm', ['run', 'build:ts'], { cwd: ROOT, stdio: 'inherit' }).status !== 0) die('npm run build:ts failed');
  }
  const { chunks, net } = plan();
  if (opts.hypercalls > 0 && !net) console.log('fuzz: no network namespace possible (needs root, ip, ping, /dev/net/tun): block-device hypercall runs only');
  console.log(`fuzz: ${chunks.length} chunks (each a vitest run; replay one with the command printed on failure)`);

  const dir = mkdtempSync(join(tmpdir(), 'ukvm-ts-fuzz-'));
  const t0 = Date.now();
  const total = { blockCalls: 0, netCalls: 0, blockRuns: 0, netRuns: 0, elfCases: 0, cliFiles: 0 };
  const failed = [];
  let failedTests = 0;
  process.on('SIGINT', () => {
    current?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    console.log(`\nfuzz: interrupted after ${formatDuration(Date.now() - t0)}; seed ${seed}`);
    process.exit(130);
  });
  try {
    for (const [i, c] of chunks.entries()) {
      const start = Date.now();
      let r = await runChunk(c, dir, i);
      // Someone rebuilding this checkout (npm run build:ts, node-gyp) removes dist/ukvm-ts.mjs or
      // the addon for a moment, and every tender started then dies at its start. That says
      // nothing about the monitor: the same chunk (same seeds) runs once more, and we say so.
      if (!r.passed && MISSING_BUILD.test(r.out)) {
        console.log(`fuzz: chunk ${i + 1}: tenders could not load dist/ or the addon, or they did not match (rebuilt meanwhile?); running the chunk again`);
        await buildSettled();
        r = await runChunk(c, dir, i);
      }
      const n = counts(r.out);
      for (const k of Object.keys(total)) total[k] += n[k];
      const did = c.kind === 'hypercalls'
        ? `${n.blockCalls + n.netCalls} calls issued in ${n.blockRuns + n.netRuns} runs`
        : `${n.elfCases} cases, ${n.cliFiles} via CLI`;
      console.log(`fuzz: chunk ${i + 1}/${chunks.length} ${c.kind} FUZZ_SEED=${c.env.FUZZ_SEED} (${c.what}): ` +
        `${did}, ${r.passed ? 'ok' : 'FAILED'}, ${formatDuration(Date.now() - start)}`);
      if (!r.passed) {
        failedTests += r.failedTests;
        // The suites' own messages name each failing seed or case and how to replay it.
        const seeds = r.out.split('\n').filter((l) => /^\s*(seed \d+, \d+ calls:|case \d+ \(seed|replay:)/.test(l)).map((l) => l.trim());
        failed.push({ i, c, seeds });
        console.log(`---- output of chunk ${i + 1} (status ${r.status ?? r.signal}) ----\n${r.out.trimEnd()}\n---- end of chunk ${i + 1} ----`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const wall = Date.now() - t0;
  console.log('\n==== fuzz summary ====');
  console.log(`seed:               ${seed} (0x${seed.toString(16)})`);
  console.log(`hypercalls issued:  ${total.blockCalls + total.netCalls} (block device: ${total.blockCalls} in ${total.blockRuns} runs; ` +
    `net device: ${total.netCalls} in ${total.netRuns} runs)`);
  console.log(`ELF cases:          ${total.elfCases} (${total.cliFiles} also through the CLI)`);
  console.log(`failures:           ${failedTests} failed test(s) in ${failed.length} of ${chunks.length} chunks`);
  for (const f of failed) {
    console.log(`  chunk ${f.i + 1}: ${replayCommand(f.c)}`);
    for (const s of f.seeds.slice(0, 20)) console.log(`    ${s}`);
  }
  console.log(`wall time:          ${formatDuration(wall)}`);
  process.exit(failed.length ? 1 : 0);
}

main().catch((e) => {
  process.stderr.write(`fuzz: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
