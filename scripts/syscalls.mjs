#!/usr/bin/env node
// Measures which system calls the monitor makes after set-up — the calls
// the sandbox (monitor/sandbox/policy.ts) must allow — and checks every one
// of them against the monitor's real seccomp program.
//
//   node scripts/syscalls.mjs [--kvm] [--gdb] [--library] [--tty] [--probe] [--soak M] [--out FILE]
//   node scripts/syscalls.mjs --check FILE      (re-check a saved measurement against the current policy)
// (The exit cost with and without the filter is bench/sandbox.mjs, a row of `npm run bench`.)
//
// Each workload runs under `strace -f` with raw arguments (paths decoded) and with the
// monitor's own seccomp(2) call faked (`-e inject=seccomp:retval=0`): the
// monitor runs exactly as in production, prctl(NO_NEW_PRIVS) included, but no
// filter is installed, so a call the policy lacks is seen instead of killing
// the run. That seccomp call marks the end of set-up: with TSYNC (the CLI)
// for every thread of its process, without (a library VM's worker) for its
// own thread; a thread created later by a marked thread is marked too. The
// counts are like `strace -c`'s, split at that mark and by scope; nothing
// before the mark matters to the filter.
//
// Workloads (default: --kvm --library --tty --probe):
//   --kvm      the KVM test suite (test/kvm), without the library and sandbox tests
//   --gdb      test/kvm/gdb.test.ts alone (real gdb; also part of --kvm)
//   --library  the library tests (library, -console, -cycles, -pool, -shared; examples.test.ts)
//   --tty      hello, a block guest and a SIGTERM with the console on a terminal (script(1))
//   --probe    test/kvm/sandbox-probe.mjs's probes that must run through (libuv's pool
//              started after set-up, memory churn, a refused open), and SIGSTOP/SIGCONT
//              of a spinning guest and of one blocked on a full console pipe
//   --soak M   npm run soak -- --minutes M (ping flood and block I/O; root)
//   --log F    an existing strace -f log (raw arguments) instead of running anything
// The sandbox's own tests are left out: they make forbidden calls on purpose.
//
// Output: per scope, each call seen after set-up with its count per
// workload, the argument values the policy checks, errors returned, and the
// policy's verdict; then the calls the policy would not allow (must be none)
// and the policy's calls no workload made. --out saves the aggregate (JSON).
// Needs strace, and root for the net tests and the soak.
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const ROOT = join(import.meta.dirname, '..');
const VITEST = join(ROOT, 'node_modules', '.bin', 'vitest');
const BIN = join(ROOT, 'bin', 'ukvm-ts');
const GUESTS = join(ROOT, 'test', 'guests', 'build');
const UNISTD = '/usr/include/x86_64-linux-gnu/asm/unistd_64.h';

const USAGE = `usage: node scripts/syscalls.mjs [--kvm] [--gdb] [--library] [--tty] [--probe] [--soak MINUTES] [--log FILE] [--out FILE]
       node scripts/syscalls.mjs --check FILE

Runs the workloads under strace -f (the monitor's seccomp call faked, so
nothing is killed), counts the system calls made after set-up per scope
(CLI process, library VM thread), and checks each against the monitor's
seccomp program (dist/monitor/sandbox). Default workloads: --kvm --library --tty --probe.`;

function die(msg) {
  process.stderr.write(`syscalls: ${msg}\n`);
  process.exit(1);
}

// ---- arguments ----

const opts = { workloads: [], out: null, check: null, soakMinutes: 0 };
{
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (a === '--kvm' || a === '--library' || a === '--tty' || a === '--probe' || a === '--gdb') {
      opts.workloads.push(a.slice(2));
    } else if (a === '--soak') {
      const m = Number(argv[++i]);
      if (!(m > 0)) die('--soak wants a positive number of minutes');
      opts.soakMinutes = m;
      opts.workloads.push('soak');
    } else if (a === '--out') {
      opts.out = argv[++i] ?? die('--out wants a file');
    } else if (a === '--log') {
      // An existing `strace -f -e raw=all` log, counted as workload "log".
      opts.log = argv[++i] ?? die('--log wants a file');
      opts.workloads.push('log');
    } else if (a === '--check') {
      opts.check = argv[++i] ?? die('--check wants a file');
    } else {
      die(`unknown argument '${a}' (see --help)`);
    }
  }
  if (opts.workloads.length === 0 && !opts.check) opts.workloads.push('kvm', 'library', 'tty', 'probe');
}

// ---- the policy, as the monitor builds it ----

const distSandbox = join(ROOT, 'dist', 'monitor', 'sandbox');
if (!existsSync(join(distSandbox, 'filter.js'))) die('dist/ is missing: npm run build first');
const { buildProgram } = await import(join(distSandbox, 'filter.js'));
const { evaluate, RET } = await import(join(distSandbox, 'bpf.js'));
const { POLICY, FAIL, AUDIT_ARCH_X86_64 } = await import(join(distSandbox, 'policy.js'));

/** name → number, from the kernel's header (strace prints names). */
const NR = new Map();
for (const m of readFileSync(UNISTD, 'utf8').matchAll(/^#define __NR_(\w+) (\d+)$/gm)) NR.set(m[1], Number(m[2]));

/**
 * The arguments the policy may check, by call: only these are kept (the rest
 * are pointers and lengths, different every call). `pid` marks a process id
 * compared with the caller's own.
 */
const KEPT_ARGS = {
  ioctl: [1],
  clone: [0],
  fcntl: [1],
  prctl: [0],
  tgkill: ['pid', 2],
  kill: ['pid', 1],
  tkill: [1],
  futex: [1],
  mmap: [2, 3],
  mprotect: [2],
  madvise: [2],
  rt_sigprocmask: [0],
  socket: [0, 1],
  open: ['path0'],
  openat: ['path1'],
  statx: ['path1'],
};

/** Calls strace decodes (their paths are worth seeing); every other call's arguments are raw numbers. */
const DECODED = ['open', 'openat', 'openat2', 'statx', 'execve', 'execveat'];

const verdictOf = (() => {
  const programs = new Map();
  // debuggerOn: the program of a run with gdb attached (the gdb workload's runs).
  return (scope, name, args, debuggerOn = false) => {
    const nr = NR.get(name);
    if (nr === undefined) return 'unknown call';
    const key = `${scope}|${debuggerOn}`;
    if (!programs.has(key)) programs.set(key, buildProgram(scope, { pid: 1000, debugger: debuggerOn }));
    const full = [0n, 0n, 0n, 0n, 0n, 0n];
    (KEPT_ARGS[name] ?? []).forEach((spec, i) => {
      const v = args[i];
      if (spec === 'pid') full[0] = v === 'own' ? 1000n : 999999n;
      else if (typeof spec === 'number' && v !== undefined && v !== '?') full[spec] = BigInt(v);
    });
    const r = evaluate(programs.get(key), { nr, arch: AUDIT_ARCH_X86_64, args: full });
    if (r === RET.ALLOW) return 'allow';
    if ((r & 0xffff0000) === RET.ERRNO) return `errno ${r & 0xffff}`;
    return r === RET.KILL_PROCESS ? 'KILL' : `0x${r.toString(16)}`;
  };
})();

// ---- parsing strace -f -e raw=all output ----

/** Splits "a, b, {c, d}, e" at top-level commas. */
function splitArgs(s) {
  const out = [];
  let depth = 0;
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      cur += c;
      if (c === '\\') cur += s[++i] ?? '';
      else if (c === '"') quoted = false;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === '{' || c === '[' || c === '(') depth++;
    else if (c === '}' || c === ']' || c === ')') depth--;
    if (c === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else {
      cur += c;
    }
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

const toNum = (s) => (/^-?(0x[0-9a-f]+|\d+)$/i.test(s ?? '') ? BigInt(s) : undefined);

class Aggregate {
  constructor() {
    /** "scope|name|kept args" → { scope, name, args, counts: {workload: n}, errors: {E…: n} } */
    this.after = new Map();
    /** name → total count before set-up (all workloads), for scale only */
    this.before = new Map();
    this.totals = { lines: 0, before: 0, after: 0 };
    this.killed = [];
    /** Threads whose parent's clone never returned in the log. */
    this.unattributed = [];
  }

  add(workload, scope, name, args, error) {
    this.totals.lines++;
    if (scope === null) {
      this.totals.before++;
      this.before.set(name, (this.before.get(name) ?? 0) + 1);
      return;
    }
    this.totals.after++;
    const key = `${scope}|${name}|${args.join(',')}`;
    let e = this.after.get(key);
    if (!e) this.after.set(key, (e = { scope, name, args, counts: {}, errors: {} }));
    e.counts[workload] = (e.counts[workload] ?? 0) + 1;
    if (error) e.errors[error] = (e.errors[error] ?? 0) + 1;
  }

  toJSON() {
    return { totals: this.totals, after: [...this.after.values()], before: Object.fromEntries(this.before), killed: this.killed, unattributed: this.unattributed };
  }

  static fromJSON(j) {
    const a = new Aggregate();
    a.totals = j.totals;
    a.killed = j.killed ?? [];
    a.unattributed = j.unattributed ?? [];
    for (const e of j.after) a.after.set(`${e.scope}|${e.name}|${e.args.join(',')}`, e);
    for (const [k, v] of Object.entries(j.before)) a.before.set(k, v);
    return a;
  }
}

/**
 * Follows threads and processes through one strace log: which thread group
 * each thread belongs to, and from when each is confined ('process' or
 * 'thread' scope; null before set-up).
 */
function tracer(workload, agg) {
  const threads = new Map(); // tid → { tgid, scope }
  const cloning = new Map(); // tid → { thread: boolean, scope } of a clone in progress
  const pending = new Map(); // tid not yet known (its clone has not returned) → [[name, args, error]]
  let root = null;

  const known = (tid) => {
    if (threads.has(tid)) return threads.get(tid);
    if (root === null) {
      root = tid;
      threads.set(tid, { tgid: tid, scope: null });
      return threads.get(tid);
    }
    return null;
  };

  const record = (tid, name, rawArgs, ret) => {
    if (name === 'seccomp' && toNum(rawArgs[0]) === 1n && threads.get(tid)?.scope) return; // the mark itself
    const t = known(tid);
    const error = /^-1 (E[A-Z0-9]+)/.exec(ret ?? '')?.[1] ?? null;
    const kept = (KEPT_ARGS[name] ?? []).map((spec) => {
      if (spec === 'path0' || spec === 'path1') return rawArgs[spec === 'path0' ? 0 : 1] ?? '?';
      if (spec === 'pid') {
        const v = toNum(rawArgs[0]);
        return v === undefined ? '?' : t && Number(v) === t.tgid ? 'own' : 'other';
      }
      const v = toNum(rawArgs[spec]);
      return v === undefined ? '?' : `0x${v.toString(16)}`;
    });
    if (t === null) {
      if (!pending.has(tid)) pending.set(tid, []);
      pending.get(tid).push([name, kept, error]);
      return;
    }
    agg.add(workload, t.scope, name, kept, error);
  };

  const born = (parentTid, childTid, thread, scope) => {
    const p = threads.get(parentTid);
    threads.set(childTid, { tgid: thread && p ? p.tgid : childTid, scope });
    for (const [name, kept, error] of pending.get(childTid) ?? []) agg.add(workload, scope, name, kept, error);
    pending.delete(childTid);
  };

  const entry = (tid, name, args) => {
    // The mark: seccomp(SECCOMP_SET_MODE_FILTER = 1, flags, prog); flag 1 is TSYNC.
    if (name === 'seccomp' && toNum(args[0]) === 1n) {
      const t = known(tid);
      if (t) {
        const tsync = ((toNum(args[1]) ?? 0n) & 1n) === 1n;
        if (tsync) for (const o of threads.values()) if (o.tgid === t.tgid) o.scope = 'process';
        if (!tsync) t.scope = 'thread';
      }
    }
    if (name === 'clone' || name === 'clone3' || name === 'fork' || name === 'vfork') {
      // clone3's flags are behind a pointer; glibc uses it for pthread_create (and posix_spawn): taken as a thread.
      const thread = name === 'clone' ? ((toNum(args[0]) ?? 0n) & 0x10000n) !== 0n : name === 'clone3';
      cloning.set(tid, { thread, scope: threads.get(tid)?.scope ?? null });
    }
  };

  const exit = (tid, ret) => {
    const c = cloning.get(tid);
    if (!c) return;
    cloning.delete(tid);
    const child = toNum(/^(0x[0-9a-f]+|\d+)/i.exec(ret ?? '')?.[1]);
    if (child !== undefined && child > 0n) born(tid, Number(child), c.thread, c.scope);
  };

  // Lines: "TID name(args) = ret", "TID name(args <unfinished ...>", "TID <... name resumed>rest) = ret",
  // "TID +++ killed by SIGSYS +++", "TID --- SIG… ---".
  const unfinished = new Map(); // tid → [name, argsText]
  return {
    line(l) {
      const m = /^(\d+)\s+(.*)$/.exec(l);
      if (!m) return;
      const tid = Number(m[1]);
      const rest = m[2];
      // A tracee the kernel killed for a seccomp violation (only if a filter was really installed).
      if (rest.startsWith('+++ killed by SIGSYS')) {
        agg.killed.push({ workload, tid, what: rest });
        return;
      }
      if (rest.startsWith('+++') || rest.startsWith('---')) return;
      let r = /^<\.\.\. (\w+) resumed>(.*)$/.exec(rest);
      if (r) {
        const [name, text] = unfinished.get(tid) ?? [r[1], ''];
        unfinished.delete(tid);
        const [args, ret] = argsAndReturn(`${text}${r[2]}`);
        record(tid, name, args, ret);
        exit(tid, ret);
        return;
      }
      r = /^(\w+)\((.*)$/.exec(rest);
      if (!r) return;
      const name = r[1];
      let text = r[2];
      if (text.endsWith(' <unfinished ...>')) {
        text = text.slice(0, -' <unfinished ...>'.length);
        const args = splitArgs(text);
        entry(tid, name, args);
        unfinished.set(tid, [name, `${text}`]);
        return;
      }
      const [args, ret] = argsAndReturn(text);
      entry(tid, name, args);
      record(tid, name, args, ret);
      exit(tid, ret);
    },
    end() {
      // Threads whose clone never returned in the log (the parent was killed
      // inside it, e.g. by a test's clean-up): nobody can say whether they
      // descend from a confined thread. Counted apart, never as "after set-up";
      // a confined thread's child would show up as the parent's clone anyway.
      for (const [tid, list] of pending) {
        agg.unattributed.push({ workload, tid, calls: list.length, first: list[0]?.[0] ?? '?' });
      }
    },
  };
}

/** "a, b) = ret" (strace pads before the "=") → [[a, b], ret]; ret "?" for calls that never return. */
function argsAndReturn(text) {
  const m = /^(.*)\)\s+= (.*)$/.exec(text);
  return m ? [splitArgs(m[1]), m[2].trim()] : [splitArgs(text.replace(/\)\s*$/, '')), '?'];
}

/** Runs argv under strace, feeding every line to a tracer; resolves with the exit status. */
async function traced(workload, argv, agg, options = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'ukvm-syscalls-'));
  const fifo = join(dir, 'trace');
  if (spawnSync('mkfifo', [fifo]).status !== 0) die('mkfifo failed');
  const t = tracer(workload, agg);
  const started = Date.now();
  const child = spawn('strace', ['-f', '-q', '-e', `raw=!${DECODED.join(',')}`, '-e', 'inject=seccomp:retval=0', '-o', fifo, '--', ...argv],
    { cwd: ROOT, stdio: ['ignore', options.quiet ? 'ignore' : 'inherit', 'inherit'], env: options.env ?? process.env });
  const lines = createInterface({ input: createReadStream(fifo), crlfDelay: Infinity });
  let n = 0;
  for await (const l of lines) {
    t.line(l);
    n++;
  }
  t.end();
  const status = await new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.on('close', resolve)));
  rmSync(dir, { recursive: true, force: true });
  process.stderr.write(`syscalls: ${workload}: ${argv.join(' ').slice(0, 100)} → status ${status}, ${n} lines, ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  return status;
}

// ---- workloads ----

const WORKLOADS = {
  async kvm(agg) {
    const exclude = ['test/kvm/library*.test.ts', 'test/kvm/examples.test.ts', 'test/kvm/sandbox*.test.ts'];
    return traced('kvm', [VITEST, 'run', 'test/kvm', ...exclude.flatMap((e) => ['--exclude', e])], agg);
  },
  async gdb(agg) {
    // Real gdb against the stub, with the sandbox on (the main program name; the debug name skips it).
    return traced('gdb', [VITEST, 'run', 'test/kvm/gdb.test.ts'], agg);
  },
  async library(agg) {
    // Confined workers build VMs too, and shared workers run several (library-pool, library-shared).
    return traced('library', [VITEST, 'run', 'test/kvm/library.test.ts', 'test/kvm/library-console.test.ts',
      'test/kvm/library-cycles.test.ts', 'test/kvm/library-pool.test.ts', 'test/kvm/library-shared.test.ts',
      'test/kvm/examples.test.ts'], agg);
  },
  async tty(agg) {
    if (spawnSync('script', ['--version']).status !== 0) die('script(1) (util-linux) is needed for --tty');
    const disk = join(mkdtempSync(join(tmpdir(), 'ukvm-syscalls-disk-')), 'disk.img');
    writeFileSync(disk, Buffer.alloc(64 * 512));
    // A terminal on stdin, stdout and stderr: Node's exit then restores the terminal's modes (tcsetattr).
    const runs = [
      `${BIN} ${GUESTS}/hello.hvt on a tty`,
      `${BIN} --block:storage=${disk} ${GUESTS}/block_rw.hvt rw 7`,
      `${BIN} ${GUESTS}/chatty.hvt & sleep 2; kill -TERM $!; wait $!`,
    ];
    let worst = 0;
    for (const cmd of runs) worst = Math.max(worst, await traced('tty', ['script', '-qec', cmd, '/dev/null'], agg, { quiet: true }));
    rmSync(join(disk, '..'), { recursive: true, force: true });
    return worst;
  },
  async log(agg) {
    const t = tracer('log', agg);
    for await (const l of createInterface({ input: createReadStream(opts.log), crlfDelay: Infinity })) t.line(l);
    t.end();
    return 0;
  },
  async probe(agg) {
    // The sandbox probes that must run through (test/kvm/sandbox-probe.mjs), and SIGSTOP/SIGCONT.
    const probe = join(ROOT, 'test', 'kvm', 'sandbox-probe.mjs');
    const env = { ...process.env };
    delete env.NODE_OPTIONS;
    let worst = 0;
    for (const p of ['none', 'open', 'pool', 'pool-open', 'alloc']) {
      worst = Math.max(worst, await traced('probe', [process.execPath, probe, p, `${GUESTS}/hello.hvt`], agg, { quiet: true, env }));
    }
    // Stopped and continued while spinning in KVM_RUN and while blocked on a full console pipe, then SIGTERM.
    const stopCont = 'kill -STOP $P; sleep 0.5; kill -CONT $P; sleep 0.5; kill -STOP $P; sleep 0.5; kill -CONT $P; sleep 0.5; kill -TERM $P; wait $P';
    const runs = [
      `${BIN} ${GUESTS}/spin.hvt > /dev/null & P=$!; sleep 1.5; ${stopCont}`,
      // The reader opens the FIFO at once but reads only after 5 s: the console blocks first.
      `f=$(mktemp -u); mkfifo $f; (exec 3<$f; sleep 5; cat <&3 > /dev/null) & ${BIN} ${GUESTS}/chatty.hvt > $f & P=$!; sleep 1.5; ${stopCont}; wait; rm -f $f`,
    ];
    for (const sh of runs) worst = Math.max(worst, await traced('probe', ['sh', '-c', sh], agg, { quiet: true, env }));
    return worst;
  },
  async soak(agg) {
    return traced('soak', [process.execPath, join(ROOT, 'scripts', 'soak.mjs'), '--minutes', String(opts.soakMinutes)], agg);
  },
};

// ---- report ----

const IOCTLS = {
  0xae80: 'KVM_RUN', 0x8090ae81: 'KVM_GET_REGS', 0x8138ae83: 'KVM_GET_SREGS', 0x4090ae82: 'KVM_SET_REGS', 0x4138ae84: 'KVM_SET_SREGS', 0x81a0ae8c: 'KVM_GET_FPU', 0x4048ae9b: 'KVM_SET_GUEST_DEBUG', 0x5401: 'TCGETS', 0x5402: 'TCSETS',
  0x5403: 'TCSETSW', 0x5413: 'TIOCGWINSZ', 0x5421: 'FIONBIO', 0x5451: 'FIOCLEX', 0x5412: 'TIOCSTI',
};
const FCNTL = { 0: 'F_DUPFD', 1: 'F_GETFD', 2: 'F_SETFD', 3: 'F_GETFL', 4: 'F_SETFL', 0x406: 'F_DUPFD_CLOEXEC' };

function argText(name, args) {
  if (name === 'ioctl') return IOCTLS[Number(args[0])] ?? args[0];
  if (name === 'fcntl') return FCNTL[Number(args[0])] ?? args[0];
  return args.join(',');
}

function report(agg, workloads) {
  const scopes = [...new Set([...agg.after.values()].map((e) => e.scope))].sort();
  console.log(`\n${agg.totals.lines} calls traced: ${agg.totals.before} before set-up, ${agg.totals.after} after.`);
  const problems = [];
  for (const scope of scopes) {
    const rows = [...agg.after.values()].filter((e) => e.scope === scope);
    const byName = new Map();
    for (const e of rows) {
      if (!byName.has(e.name)) byName.set(e.name, []);
      byName.get(e.name).push(e);
    }
    const names = [...byName.keys()].sort((a, b) => sum(byName.get(b)) - sum(byName.get(a)));
    console.log(`\n## scope ${scope}: ${names.length} distinct calls after set-up\n`);
    console.log(`| call | nr | ${workloads.join(' | ')} | total | arguments the policy checks (count) | errors | verdict |`);
    console.log(`|---|---|${workloads.map(() => '---|').join('')}---|---|---|---|`);
    for (const name of names) {
      const es = byName.get(name);
      const per = workloads.map((w) => es.reduce((s, e) => s + (e.counts[w] ?? 0), 0));
      const argsCol = KEPT_ARGS[name] ? es.map((e) => `${argText(name, e.args)} (${sum([e])})`).join('; ') : '';
      const errors = {};
      for (const e of es) for (const [k, v] of Object.entries(e.errors)) errors[k] = (errors[k] ?? 0) + v;
      // Each workload's calls against its own program: the gdb workload's with the debugger's additions.
      const verdicts = new Set();
      for (const e of es) {
        for (const w of Object.keys(e.counts)) {
          const v = scope === 'unknown' ? 'n/a' : verdictOf(scope, name, e.args, w === 'gdb');
          verdicts.add(v);
          if (v !== 'allow' && !(v.startsWith('errno') && name in FAIL)) problems.push(`${scope}: ${name}(${argText(name, e.args)}) ×${e.counts[w]} in ${w} → ${v}`);
        }
      }
      console.log(`| ${name} | ${NR.get(name) ?? '?'} | ${per.join(' | ')} | ${sum(es)} | ${argsCol} | ${Object.entries(errors).map(([k, v]) => `${k} ${v}`).join(', ')} | ${[...verdicts].join(', ')} |`);
    }
    const unused = Object.entries(POLICY).filter(([n, r]) => r.scopes.includes(scope) && !byName.has(n)).map(([n]) => n);
    console.log(`\nin the policy for ${scope} but not seen: ${unused.join(', ') || 'none'}`);
  }
  if (agg.unattributed.length) {
    const calls = agg.unattributed.reduce((n, u) => n + u.calls, 0);
    console.log(`\n${agg.unattributed.length} threads (${calls} calls) whose parent's clone never returned in the log (parent killed inside it): not counted`);
  }
  if (agg.killed.length) console.log(`\nprocesses killed: ${agg.killed.map((k) => `${k.workload} ${k.tid} ${k.what}`).join('; ')}`);
  console.log(`\n${problems.length ? `NOT ALLOWED by the policy (${problems.length}):\n  ${problems.join('\n  ')}` : 'every call seen after set-up is allowed by the policy'}`);
  return problems.length;
}

const sum = (es) => es.reduce((s, e) => s + Object.values(e.counts).reduce((a, b) => a + b, 0), 0);

// ---- main ----

let agg;
let workloads = opts.workloads;
if (opts.check) {
  const j = JSON.parse(readFileSync(opts.check, 'utf8'));
  agg = Aggregate.fromJSON(j.aggregate);
  workloads = j.workloads;
} else {
  if (spawnSync('strace', ['-V']).status !== 0) die('strace is not installed');
  agg = new Aggregate();
  for (const w of workloads) {
    const status = await WORKLOADS[w](agg);
    if (status !== 0) process.stderr.write(`syscalls: ${w} exited ${status} (its calls still count)\n`);
  }
  if (opts.out) writeFileSync(opts.out, `${JSON.stringify({ workloads, date: new Date().toISOString(), aggregate: agg.toJSON() }, null, 1)}\n`);
}
process.exit(report(agg, workloads) ? 1 : 0);
