// ukvm-ts driven exactly the way Albatross (robur-coop/albatross,
// src/vmm_unix.ml) drives solo5-hvt, on real KVM: the tender is found by
// name on PATH (a link named solo5-hvt, or solo5-hvt.2 which Albatross tries
// first); `solo5-hvt --version` with stderr merged into stdout must exit 0
// with a line that splits into exactly "ABI" "version" "2"; the unikernel
// runs as
//   taskset -c CPUS solo5-hvt --mem=MB --net:N=TAP --net-mac:N=MAC
//     --block:N=PATH --block-sector-size:N=SIZE -- IMAGE --name=NAME ARGS…
// with stdin, stdout and stderr all one descriptor of a FIFO opened
// O_WRONLY|O_APPEND, whose other end the test reads as albatross-console
// would; statistics come from /proc/PID/{stat,statm,status} parsed the
// way albatross-stats parses them and from the tap's counters; SIGTERM must
// give status 1 and `Exiting on signal 15` (0 would make Albatross restart
// it), and a guest's own exit status must come through unchanged.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupStaleNetns, Netns, netUnavailableReason } from '../helpers/netns.js';
import { BIN, describeKvm, guest, kvmAvailable } from '../helpers/tender.js';

const IMAGE = guest('albatross');
const MAC = '02:a1:ba:70:55:01';
const SECTOR = 4096;
const DISK_BYTES = 16 * SECTOR;
const DISK_TEXT = 'hello from the host\n';

const netSkip = kvmAvailable ? netUnavailableReason() : null;
if (netSkip) {
  const bar = '!'.repeat(72);
  process.stderr.write(`\n${bar}\n!! Albatross-shaped KVM tests SKIPPED: ${netSkip}\n!! This is NOT a pass.\n${bar}\n\n`);
}
const describeNet = netSkip ? describe.skip : describeKvm;

let dir = '';
let pathEnv = '';

/** The first CPU this process may run on (taskset -c must name an allowed one). */
function firstAllowedCpu(): string {
  const m = /^Cpus_allowed_list:\s*(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m?.[1] ?? '0';
}

/** Runs a shell line the way Bos.OS.Cmd.run_out ~err:err_run_out does: one descriptor for stdout and stderr. */
function runMerged(line: string): { status: number | null; out: string } {
  const r = spawnSync('sh', ['-c', `${line} 2>&1`], { encoding: 'utf8', env: { ...process.env, PATH: pathEnv }, timeout: 30_000 });
  return { status: r.status, out: r.stdout };
}

/** Albatross's check_solo5_tender: exit 0 and some line that splits on ' ' into exactly ABI, version, N. */
function albatrossAcceptsVersion(out: string, abi: number): boolean {
  return out.split('\n').some((l) => {
    const w = l.split(' ');
    return w.length === 3 && w[0] === 'ABI' && w[1] === 'version' && /^\d+$/.test(w[2] ?? '') && Number(w[2]) === abi;
  });
}

/**
 * The console reader on the other end of the FIFO (albatross-console's
 * part): the FIFO is opened for reading, non-blocking, before its write end
 * exists, so opening the write end never waits and the reader cannot see an
 * end of file before the tender holds its copies; it then reads until every
 * writer is gone.
 */
class FifoReader {
  text = '';
  readonly fd: number;
  done: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(path: string) {
    this.fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  }

  /** Starts reading; only once a writer exists (before that a read finds "end of file"). */
  start(): void {
    this.done = this.pump();
  }

  private async pump(): Promise<void> {
    const buf = Buffer.alloc(65536);
    while (!this.closed) {
      let n: number;
      try {
        n = readSync(this.fd, buf, 0, buf.length, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      // 0 only once a writer has come and every writer has gone.
      if (n === 0) return;
      this.text += buf.toString('latin1', 0, n);
    }
  }

  async waitFor(re: RegExp, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!re.test(this.text)) {
      if (Date.now() > deadline) throw new Error(`console never showed ${re}; it said:\n${this.text}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

interface Started {
  child: ChildProcess;
  console: FifoReader;
  exited: Promise<{ status: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the unikernel inside ns exactly as Albatross's Vmm_unix.exec builds the command line. */
function startAsAlbatross(ns: Netns, tap: string, disk: string, fifo: string, args: string[]): Started {
  const line = [
    'taskset', '-c', firstAllowedCpu(), 'solo5-hvt', '--mem=32',
    `--net:service=${tap}`, `--net-mac:service=${MAC}`,
    `--block:storage=${disk}`, `--block-sector-size:storage=${SECTOR}`,
    '--', IMAGE, '--name=alba1', ...args,
  ];
  const console = new FifoReader(fifo);
  // As Albatross: O_WRONLY|O_APPEND, blocking (a reader is there, so no wait).
  const fd = openSync(fifo, constants.O_WRONLY | constants.O_APPEND);
  console.start();
  let child: ChildProcess;
  try {
    // `ip netns exec` execs its command in place (as taskset does), so the
    // pid Albatross would record is the tender's.
    child = spawn('ip', ['netns', 'exec', ns.name, ...line], { stdio: [fd, fd, fd], env: { ...process.env, PATH: pathEnv } });
  } finally {
    closeSync(fd); // the child holds its three copies, as after Albatross's create_process
  }
  const exited = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (status, signal) => resolve({ status, signal })),
  );
  return { child, console, exited };
}

/** Fields of /proc/PID/stat the way albatross-stats splits them: pid, (comm), then the rest on ' '. */
function procStat(pid: number): string[] {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8').split('\n')[0] ?? '';
  const a = s.indexOf('(');
  const b = s.lastIndexOf(')');
  expect(a).toBeGreaterThan(0);
  expect(b).toBeGreaterThan(a);
  return [s.slice(0, a - 1), s.slice(a + 1, b), ...s.slice(b + 2).split(' ')];
}

function procStatus(pid: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const l of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    if (l === '') continue;
    const [k, ...v] = l.split(':');
    out.set(k ?? '', v.join(':').trim());
  }
  return out;
}

function tapCounters(ns: Netns, tap: string): { rxPackets: number; txPackets: number } {
  const j = JSON.parse(ns.ip('-s', '-j', 'link', 'show', tap)) as { stats64: { rx: { packets: number }; tx: { packets: number } } }[];
  const s = j[0]?.stats64;
  if (!s) throw new Error(`no statistics for ${tap}`);
  return { rxPackets: s.rx.packets, txPackets: s.tx.packets };
}

function makeDisk(path: string): void {
  const b = Buffer.alloc(DISK_BYTES);
  b.write(DISK_TEXT, 0, 'latin1');
  writeFileSync(path, b);
}

function fifoAt(path: string): string {
  const r = spawnSync('mkfifo', ['-m', '0640', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mkfifo ${path}: ${r.stderr}`);
  return path;
}

beforeAll(() => {
  cleanupStaleNetns();
  dir = mkdtempSync(join(tmpdir(), 'ukvm-albatross-'));
  const bin = join(dir, 'bin');
  spawnSync('mkdir', [bin]);
  symlinkSync(BIN, join(bin, 'solo5-hvt'));
  symlinkSync(BIN, join(bin, 'solo5-hvt.2'));
  pathEnv = `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`;
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describeKvm('Albatross: finding and checking the tender', () => {
  it.each(['solo5-hvt', 'solo5-hvt.2'])('%s --version (stderr merged) exits 0 with the line "ABI version 2"', (name) => {
    const r = runMerged(`${name} --version`);
    expect(r.status).toBe(0);
    expect(r.out.split('\n')).toContain('ABI version 2');
    expect(albatrossAcceptsVersion(r.out, 2)).toBe(true);
    expect(albatrossAcceptsVersion(r.out, 3)).toBe(false);
    expect(r.out).toMatch(new RegExp(`^${name.replace('.', '\\.')} \\(ukvm-ts\\) tender, version `));
  });
});

describeNet('Albatross: a unikernel with net and block, console on a FIFO', () => {
  it('runs under taskset with stdin/stdout/stderr on one write-only FIFO, gives stats, and SIGTERM ends it with status 1', async () => {
    const ns = Netns.create();
    const run = join(dir, 'sigterm');
    spawnSync('mkdir', [run]);
    const disk = join(run, 'storage.img');
    makeDisk(disk);
    const fifo = fifoAt(join(run, 'alba1.fifo'));
    let started: Started | undefined;
    try {
      const tap = ns.addTap().name;
      const before = tapCounters(ns, tap);
      started = startAsAlbatross(ns, tap, disk, fifo, ['hello', 'world']);
      const { child, console } = started;
      await console.waitFor(/albatross: ready\n/);
      expect(console.text).toContain('albatross: cmdline=--name=alba1 hello world\n');
      expect(console.text).toContain(`albatross: storage capacity=${DISK_BYTES} block_size=${SECTOR}\n`);
      expect(console.text).toContain(`albatross: service mac=${MAC} mtu=1500\n`);
      expect(console.text).toContain(`albatross: block0=${DISK_TEXT}`);

      // Statistics, read as albatross-stats reads them, are the tender's own.
      const pid = child.pid as number;
      const stat = procStat(pid);
      expect(stat.length).toBeGreaterThanOrEqual(52);
      expect(stat[0]).toBe(String(pid));
      for (const i of [9, 11, 13, 14, 22, 23, 35]) expect(stat[i]).toMatch(/^\d+$/);
      expect(Number(stat[23])).toBeGreaterThan(0); // rss in pages
      const statm = readFileSync(`/proc/${pid}/statm`, 'utf8').split('\n')[0]?.split(' ') ?? [];
      expect(statm.length).toBeGreaterThanOrEqual(7);
      for (const v of statm) expect(v).toMatch(/^\d+$/);
      const status = procStatus(pid);
      expect(status.get('voluntary_ctxt_switches')).toMatch(/^\d+$/);
      expect(status.get('nonvoluntary_ctxt_switches')).toMatch(/^\d+$/);
      expect(status.get('Cpus_allowed_list')).toBe(firstAllowedCpu()); // taskset's pinning is on the tender
      expect(status.get('Seccomp')).toBe('2'); // the sandbox is on in this shape too
      expect(status.get('NoNewPrivs')).toBe('1');
      expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toContain('--name=alba1');
      // The guest's frame reached the host side of the tap (albatross-stats reads these counters).
      expect(tapCounters(ns, tap).rxPackets).toBeGreaterThan(before.rxPackets);

      child.kill('SIGTERM');
      const end = await started.exited;
      expect(end).toEqual({ status: 1, signal: null });
      await console.done; // every writer is gone: the reader sees EOF
      expect(console.text.endsWith('solo5-hvt: Exiting on signal 15\n')).toBe(true);
      const after = readFileSync(disk);
      expect(after.subarray(DISK_BYTES - SECTOR, DISK_BYTES - SECTOR + 19).toString('latin1')).toBe('albatross was here\n');
    } finally {
      started?.child.kill('SIGKILL');
      started?.console.close();
      await ns.destroy();
    }
  });

  it('a console reader that stalls holds the guest; SIGTERM still ends it, and the message reaches the reader', async () => {
    const run = join(dir, 'stall');
    spawnSync('mkdir', [run]);
    const fifo = fifoAt(join(run, 'alba1.fifo'));
    // The stalled console daemon: holds the read end open and reads nothing until told.
    const readFd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    let child: ChildProcess | undefined;
    try {
      const fd = openSync(fifo, constants.O_WRONLY | constants.O_APPEND);
      try {
        child = spawn('taskset', ['-c', firstAllowedCpu(), 'solo5-hvt', '--mem=32', '--', guest('chatty'), '--name=alba1'], {
          stdio: [fd, fd, fd],
          env: { ...process.env, PATH: pathEnv },
        });
      } finally {
        closeSync(fd);
      }
      const exited = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child?.on('exit', (status, signal) => resolve({ status, signal })),
      );
      // Held: the vCPU thread waits in poll(2) for room in the full FIFO (syscall 7, or 271 ppoll).
      const pid = child.pid as number;
      const deadline = Date.now() + 30_000;
      for (;;) {
        const call = readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ')[0];
        if (call === '7' || call === '271') break;
        if (Date.now() > deadline) throw new Error(`the tender never blocked on its console (syscall ${call})`);
        await new Promise((r) => setTimeout(r, 50));
      }
      child.kill('SIGTERM');
      // The message goes to the same full FIFO; it arrives once the reader drains it.
      let text = '';
      const buf = Buffer.alloc(65536);
      for (;;) {
        let n: number;
        try {
          n = readSync(readFd, buf, 0, buf.length, null);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        if (n === 0) break; // the tender is gone: no writer left
        text += buf.toString('latin1', 0, n);
      }
      expect(await exited).toEqual({ status: 1, signal: null });
      expect(text.startsWith('chatty\n')).toBe(true);
      expect(text.endsWith('\nsolo5-hvt: Exiting on signal 15\n')).toBe(true);
    } finally {
      child?.kill('SIGKILL');
      closeSync(readFd);
    }
  });

  it.each([7, 64, 0])('a guest exit status of %i comes through unchanged, with nothing from the tender', async (code) => {
    const ns = Netns.create();
    const run = join(dir, `exit${code}`);
    spawnSync('mkdir', [run]);
    const disk = join(run, 'storage.img');
    makeDisk(disk);
    const fifo = fifoAt(join(run, 'alba1.fifo'));
    let started: Started | undefined;
    try {
      const tap = ns.addTap().name;
      started = startAsAlbatross(ns, tap, disk, fifo, [`exit=${code}`]);
      const end = await Promise.race([
        started.exited,
        new Promise<'late'>((r) => setTimeout(() => r('late'), 50_000)),
      ]);
      expect(end).toEqual({ status: code, signal: null });
      await started.console.done;
      const text = started.console.text;
      expect(text).toContain(`albatross: cmdline=--name=alba1 exit=${code}\n`);
      expect(text.endsWith(`albatross: exiting with ${code}\n`)).toBe(true);
      expect(text).not.toContain('solo5-hvt:');
    } finally {
      started?.child.kill('SIGKILL');
      started?.console.close();
      await ns.destroy();
    }
  });
});
