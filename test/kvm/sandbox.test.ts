// The sandbox on real KVM (issue #12). The CLI confines every thread of its
// process right before the guest first runs (Seccomp: 2, NoNewPrivs: 1 in
// /proc), guests run as before (hello, block, net echo, signals, stop and
// continue, a terminal), a forbidden call made after set-up from inside the
// monitor fails as designed (test/kvm/sandbox-probe.mjs, a test-only monitor
// with a probe module), READ_IMPLIES_EXEC is refused, and the debug link
// name, a module's request and --no-sandbox run unconfined with their
// warnings. The library confines each VM's worker thread and nothing else:
// the embedding thread keeps every power. The filter's call-by-call
// behaviour is sandbox-filter.test.ts; the table and program are unit tests.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUnikernel } from '../../monitor/index.js';
import { READ_IMPLIES_EXEC_MESSAGE } from '../../monitor/sandbox/linux.js';
import { NO_SANDBOX_WARNING, UNCONFINED_WARNINGS } from '../../monitor/sandbox/step.js';
import { cleanupStaleNetns, Netns, netUnavailableReason } from '../helpers/netns.js';
import { BIN, describeKvm, guest, kvmAvailable, ROOT, runTender } from '../helpers/tender.js';

const PROBE = join(ROOT, 'test', 'kvm', 'sandbox-probe.mjs');
const ENV = (() => {
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  return env;
})();

interface Confinement {
  seccomp: number;
  noNewPrivs: number;
  filters: number;
}

function confinement(statusPath: string): Confinement {
  const s = readFileSync(statusPath, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)$`, 'm').exec(s)?.[1] ?? NaN);
  return { seccomp: field('Seccomp'), noNewPrivs: field('NoNewPrivs'), filters: field('Seccomp_filters') };
}

/** Each thread of a process: its id and its confinement. */
function threads(pid: number | 'self'): { tid: number; c: Confinement }[] {
  return readdirSync(`/proc/${pid}/task`).map((t) => ({ tid: Number(t), c: confinement(`/proc/${pid}/task/${t}/status`) }));
}

/** The node process that is the monitor: `pid` itself, or (ip netns exec, env) a descendant running node. */
function monitorPid(pid: number): number {
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift() as number;
    try {
      if (/\/node[^/]*$/.test(readlinkSync(`/proc/${p}/exe`))) return p;
    } catch {
      // gone
    }
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const st = readFileSync(`/proc/${d}/stat`, 'utf8');
        if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === p) queue.push(Number(d));
      } catch {
        // gone
      }
    }
  }
  throw new Error(`no node process under ${pid}`);
}

/** A monitor started in the background, its output collected. */
function startMonitor(cmd: string, args: string[]) {
  const child = spawn(cmd, args, { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return {
    child,
    ended,
    async waitFor(text: string): Promise<void> {
      for (let i = 0; i < 600 && !stdout.includes(text); i++) {
        if (child.exitCode !== null || child.signalCode !== null) break;
        await sleep(25);
      }
      if (!stdout.includes(text)) throw new Error(`no "${text}" from the monitor: ${stdout}${stderr}`);
    },
  };
}

/** Expects every thread of the process confined (the CLI: TSYNC), or none. */
function expectThreads(pid: number, confined: boolean): void {
  const ts = threads(pid);
  expect(ts.length).toBeGreaterThan(3); // main, V8's platform threads, libuv's pool
  const want = confined ? { seccomp: 2, noNewPrivs: 1, filters: 1 } : { seccomp: 0, noNewPrivs: 0, filters: 0 };
  for (const t of ts) expect(t.c, `thread ${t.tid}`).toEqual(want);
}

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ukvm-sandbox-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describeKvm('the CLI runs guests under the sandbox', () => {
  it('hello: its output and status, nothing on stderr', () => {
    const r = runTender([guest('hello'), 'sandboxed']);
    expect(r).toMatchObject({ status: 0, signal: null, stderr: '' });
    expect(r.stdout).toContain('cmdline: sandboxed');
  });

  it('while a guest runs, every thread shows Seccomp: 2 and NoNewPrivs: 1; SIGTERM still ends it', async () => {
    const m = startMonitor(BIN, [guest('spin')]);
    await m.waitFor('spinning\n');
    expectThreads(m.child.pid as number, true);
    m.child.kill('SIGTERM');
    expect(await m.ended).toMatchObject({ code: 1, signal: null, stderr: 'ukvm-ts: Exiting on signal 15\n' });
  });

  it('block: block_rw writes, reads back and checks its disk', () => {
    const disk = join(dir, 'disk.img');
    writeFileSync(disk, Buffer.alloc(64 * 512));
    const r = runTender([`--block:storage=${disk}`, guest('block_rw'), 'rw', '3']);
    expect(r).toMatchObject({ status: 0, signal: null, stderr: '' });
    expect(r.stdout.trim().split('\n').at(-1)).toBe('block_rw: ok');
  });

  it.each(['spin', 'chatty'] as const)('%s: SIGSTOP and SIGCONT (twice), then SIGINT: "Exiting on signal 2"', async (name) => {
    const m = startMonitor(BIN, [guest(name)]);
    await m.waitFor(`${name === 'spin' ? 'spinning' : 'chatty'}\n`);
    // chatty's console is a pipe the test reads; spin spins in KVM_RUN.
    for (let i = 0; i < 2; i++) {
      m.child.kill('SIGSTOP');
      await sleep(150);
      m.child.kill('SIGCONT');
      await sleep(150);
    }
    m.child.kill('SIGINT');
    expect(await m.ended).toMatchObject({ code: 1, signal: null, stderr: 'ukvm-ts: Exiting on signal 2\n' });
  });

  it('a console on a terminal (script(1)): the guest runs, and Node restores the terminal at exit', () => {
    if (spawnSync('script', ['--version']).status !== 0) return; // util-linux missing: nothing to test with
    const r = spawnSync('script', ['-qec', `${BIN} ${guest('hello')} on a tty`, '/dev/null'], { encoding: 'utf8', env: ENV, timeout: 30_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('cmdline: on a tty');
  });
});

const netSkip = kvmAvailable ? netUnavailableReason() : null;
(netSkip ? describe.skip : describeKvm)('the CLI serves a tap under the sandbox (net_echo)', () => {
  let ns: Netns | undefined;
  beforeAll(() => {
    cleanupStaleNetns();
    ns = Netns.create();
  });
  afterAll(async () => {
    await ns?.destroy();
  });

  it('answers pings while every thread is confined, and exits 0 on "quit"', async () => {
    const n = ns as Netns;
    const tap = n.addTap();
    const t = n.spawnTender([`--net:service=${tap.name}`, guest('net_echo'), tap.guestIp], 120_000);
    await t.waitFor(/^net_echo: ready$/m, 60_000);
    expectThreads(monitorPid(t.child.pid as number), true);
    const ping = await n.run('ping', ['-c', '20', '-i', '0.05', '-W', '2', tap.guestIp], 60_000);
    expect(ping.stdout).toMatch(/20 packets transmitted, 20 received/);
    await n.sendUdp(tap.guestIp, 9, 'quit');
    const r = await t.wait(60_000);
    expect(r).toMatchObject({ status: 0, stderr: '', timedOut: false });
  });
});

describeKvm('a forbidden call after set-up, from inside the monitor (test-only probe module)', () => {
  const probe = (name: string, args: string[] = [guest('hello')]) =>
    // `ulimit -c 0`: a process killed by SIGSYS dumps core otherwise.
    spawnSync('/bin/sh', ['-c', 'ulimit -c 0; exec "$@"', 'sh', process.execPath, PROBE, name, ...args], { encoding: 'utf8', env: ENV, timeout: 60_000 });

  it('the probe monitor without a probe behaves as bin/ukvm-ts', () => {
    const r = probe('none', [guest('hello'), 'probe']);
    expect(r).toMatchObject({ status: 0, signal: null, stderr: '' });
    expect(r.stdout).toContain('cmdline: probe');
  });

  it('opening a file fails with EPERM; the run goes on to the guest\'s status', () => {
    expect(probe('open')).toMatchObject({ status: 0, signal: null, stderr: 'probe open: EPERM\n' });
  });

  it('running a program (clone without CLONE_THREAD) kills the monitor with SIGSYS, after the guest ran', () => {
    const r = probe('exec');
    expect(r.signal).toBe('SIGSYS');
    expect(r.stdout).toContain('Hello, world');
    expect(r.stderr).toBe('');
  });

  it("libuv's pool working after set-up, a file opened on a pool thread, and memory churn do not trip the filter", () => {
    expect(probe('pool')).toMatchObject({ status: 0, signal: null, stderr: 'probe pool: started\n' });
    expect(probe('pool-open')).toMatchObject({ status: 0, signal: null, stderr: 'probe pool-open: survived\n' });
    expect(probe('alloc')).toMatchObject({ status: 0, signal: null });
  });

  it("a module that asks for it ('skip', as --dumpcore does) runs unconfined after the reference's two warnings", async () => {
    const m = startMonitor(process.execPath, [PROBE, 'skip', guest('spin')]);
    await m.waitFor('spinning\n');
    expectThreads(m.child.pid as number, false);
    m.child.kill('SIGTERM');
    const r = await m.ended;
    expect(r.stderr).toBe(`${UNCONFINED_WARNINGS.map((w) => `sandbox-probe.mjs: ${w}\n`).join('')}sandbox-probe.mjs: Exiting on signal 15\n`);
  });
});

describeKvm('refusing, and running unconfined on request', () => {
  /**
   * A process running with READ_IMPLIES_EXEC. setarch -X cannot make one:
   * x86_64 kernels clear the flag when they exec a 64-bit ELF. A preloaded
   * library sets it inside node, as native code could.
   */
  function readImpliesExecEnv(): NodeJS.ProcessEnv {
    const src = join(dir, 'rie.c');
    const lib = join(dir, 'rie.so');
    writeFileSync(src, '#include <sys/personality.h>\n__attribute__((constructor)) static void on(void) { personality(personality(0xffffffff) | READ_IMPLIES_EXEC); }\n');
    const cc = spawnSync(process.env['CC'] ?? 'gcc', ['-shared', '-fPIC', '-o', lib, src], { encoding: 'utf8' });
    expect(cc.status, cc.stderr).toBe(0);
    return { ...ENV, LD_PRELOAD: lib };
  }

  it("READ_IMPLIES_EXEC: the reference's message, status 1, the guest never runs; --no-sandbox runs", () => {
    const env = readImpliesExecEnv();
    expect(runTender([guest('hello')], { env })).toMatchObject({ status: 1, stdout: '', stderr: `ukvm-ts: ${READ_IMPLIES_EXEC_MESSAGE}\n` });
    // Only the sandbox refuses it (the reference's debug tender does not check either).
    const r = runTender(['--no-sandbox', guest('hello')], { env });
    expect(r).toMatchObject({ status: 0, stderr: `ukvm-ts: ${NO_SANDBOX_WARNING}\n` });
  });

  it('a link named solo5-hvt-debug: the two WARNING lines, then the guest runs unconfined', async () => {
    const link = join(dir, 'solo5-hvt-debug');
    symlinkSync(BIN, link);
    const r = runTender([guest('hello')], { bin: link, env: ENV });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe(UNCONFINED_WARNINGS.map((w) => `solo5-hvt-debug: ${w}\n`).join(''));
    expect(r.stdout).toContain('Hello, world');
    const m = startMonitor(link, [guest('spin')]);
    await m.waitFor('spinning\n');
    expectThreads(m.child.pid as number, false);
    m.child.kill('SIGTERM');
    await m.ended;
  });

  it('a link named solo5-hvt is confined like ukvm-ts', async () => {
    const link = join(dir, 'solo5-hvt');
    symlinkSync(BIN, link);
    const m = startMonitor(link, [guest('spin')]);
    await m.waitFor('spinning\n');
    expectThreads(m.child.pid as number, true);
    m.child.kill('SIGTERM');
    expect((await m.ended).stderr).toBe('solo5-hvt: Exiting on signal 15\n');
  });

  it('--no-sandbox: one WARNING line, and the guest runs unconfined', async () => {
    const r = runTender(['--no-sandbox', guest('hello')], { env: ENV });
    expect(r).toMatchObject({ status: 0, stderr: `ukvm-ts: ${NO_SANDBOX_WARNING}\n` });
    const m = startMonitor(BIN, ['--no-sandbox', guest('spin')]);
    await m.waitFor('spinning\n');
    expectThreads(m.child.pid as number, false);
    m.child.kill('SIGTERM');
    expect((await m.ended).stderr).toBe(`ukvm-ts: ${NO_SANDBOX_WARNING}\nukvm-ts: Exiting on signal 15\n`);
  });
});

/** KVM's own workers in the VM's thread group (Linux ≥ 6.13: NX huge page recovery), which never run user code. */
const kvmWorker = (tid: number) => /^Name:\s+kvm-/m.test(readFileSync(`/proc/self/task/${tid}/status`, 'utf8'));

describeKvm("the library confines each VM's thread, and only it", () => {
  it("two spinning VMs: their two threads are confined; every other thread of this process is not", async () => {
    const text: string[] = [];
    const vms = await Promise.all([0, 1].map(() => startUnikernel({ kernel: guest('spin'), memoryMiB: 32, console: (t) => void text.push(t) })));
    try {
      // Both workers confine themselves right before their guests first run.
      let confined: number[] = [];
      for (let i = 0; i < 200 && confined.length < 2; i++) {
        await sleep(20);
        confined = threads('self').filter((t) => t.c.seccomp === 2 && !kvmWorker(t.tid)).map((t) => t.tid);
      }
      expect(confined).toHaveLength(2);
      expect(confined).not.toContain(process.pid);
      expect(text.join('')).toContain('spinning');
      for (const t of threads('self')) {
        // KVM's workers are created by the VM's (confined) thread and inherit its filter.
        const yes = confined.includes(t.tid) || kvmWorker(t.tid);
        const want = yes ? { seccomp: 2, noNewPrivs: 1, filters: 1 } : { seccomp: 0, noNewPrivs: 0, filters: 0 };
        expect(t.c, `thread ${t.tid}${t.tid === process.pid ? ' (main)' : ''}`).toEqual(want);
      }
    } finally {
      for (const vm of vms) vm.stop();
      for (const vm of vms) expect(await vm.exited).toEqual({ status: 1, reason: 'stopped' });
    }
  });

  it('the embedding thread still opens files, runs programs, uses sockets and libuv\'s pool, with a VM running and after', async () => {
    const vm = await startUnikernel({ kernel: guest('spin'), memoryMiB: 32, console: () => {} });
    const check = async () => {
      expect(readFileSync('/proc/self/status', 'utf8')).toMatch(/^NoNewPrivs:\s+0$/m);
      expect(spawnSync('/bin/true').status).toBe(0);
      expect((await readFile(join(ROOT, 'package.json'), 'utf8')).length).toBeGreaterThan(0);
      const server = createServer((s) => s.end('ok'));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as { port: number }).port;
      const got = await new Promise<string>((resolve, reject) => {
        let data = '';
        connect(port, '127.0.0.1').setEncoding('utf8').on('data', (d: string) => (data += d)).on('end', () => resolve(data)).on('error', reject);
      });
      server.close();
      expect(got).toBe('ok');
    };
    try {
      await check();
    } finally {
      vm.stop();
    }
    expect(await vm.exited).toEqual({ status: 1, reason: 'stopped' });
    await check();
    const hello: string[] = [];
    expect(await (await startUnikernel({ kernel: guest('hello'), memoryMiB: 32, console: (t) => void hello.push(t) })).exited).toEqual({ status: 0, reason: 'halt' });
    expect(hello.join('')).toContain('Hello, world');
  });

  it('what a thread filter does not protect: the process is one; a forbidden call on the filtered thread ends it all', () => {
    // A separate node process: a worker enters the same thread sandbox the VM
    // workers use; its open fails, the main thread's works; then the worker
    // tries to start a program and the whole process dies of SIGSYS.
    const script = `
      import { Worker } from 'node:worker_threads';
      import { openSync, closeSync, writeSync } from 'node:fs';
      const code = \`
        const { parentPort } = require('node:worker_threads');
        import(${JSON.stringify(join(ROOT, 'dist', 'monitor', 'backend', 'index.js'))}).then(({ platform }) => {
          platform().sandbox.enter('thread');
          let open = 'opened';
          try { require('node:fs').openSync('/etc/hostname', 'r'); } catch (e) { open = e.code; }
          parentPort.postMessage(open);
          parentPort.once('message', () => require('node:child_process').spawnSync('/bin/true'));
        });
      \`;
      const w = new Worker(code, { eval: true });
      w.once('message', (open) => {
        closeSync(openSync('/etc/hostname', 'r'));
        writeSync(1, 'worker open: ' + open + ', main open: ok\\n');
        w.postMessage('spawn');
        setTimeout(() => writeSync(1, 'still alive\\n'), 5000);
      });
    `;
    const file = join(dir, 'thread-sandbox.mjs');
    writeFileSync(file, script);
    const r = spawnSync('/bin/sh', ['-c', 'ulimit -c 0; exec "$@"', 'sh', process.execPath, file], { encoding: 'utf8', env: ENV, timeout: 30_000 });
    expect(r.stdout, r.stderr).toBe('worker open: EPERM, main open: ok\n');
    expect(r.signal).toBe('SIGSYS');
  });
});
