// Signals as an attacker or an orchestrator sends them (issue #9): no signal
// or environment opens a Node inspector; SIGUSR1, SIGUSR2, SIGHUP, SIGQUIT,
// SIGALRM and SIGPIPE kill the monitor by their default action like the
// reference tender; SIGTERM/SIGINT end a run whose console is a pipe nobody
// reads (the write is blocked) at once; a reader that goes away is SIGPIPE.
// Each against a guest spinning in KVM_RUN and one blocked on console output.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BIN, describeKvm, guest, ROOT, runTender } from '../helpers/tender.js';

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Spawns a monitor with stdout and stderr piped; stdout is read until `ready`, then no more. */
async function startReady(cmd: string, args: string[], ready: string, env: NodeJS.ProcessEnv = process.env): Promise<{ child: ChildProcess; ended: Promise<Ended> }> {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const ended = exit.then(([code, signal]) => ({ code, signal, stderr }));
  let stdout = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      stdout += d.toString();
      if (!stdout.includes(ready)) return;
      // From now on nobody reads: the pipe fills up and the monitor blocks.
      child.stdout?.off('data', onData);
      child.stdout?.pause();
      resolve();
    };
    child.stdout?.on('data', onData);
    child.once('exit', () => reject(new Error(`monitor exited before "${ready}": ${stderr}`)));
  });
  return { child, ended };
}

/** The system call the monitor's main thread sits in (Linux x86_64 numbers), or null while it runs. */
function blockedIn(pid: number): number | null {
  const text = readFileSync(`/proc/${pid}/task/${pid}/syscall`, 'utf8');
  return /^\d+ /.test(text) ? Number(text.split(' ')[0]) : null;
}

const SYS_WRITE = 1;
const SYS_POLL = 7;

/** Waits until the monitor is blocked on its console output: in write(2) or in poll(2). */
async function waitBlockedOnOutput(pid: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const nr = blockedIn(pid);
    if (nr === SYS_WRITE || nr === SYS_POLL) {
      // Seen twice in a row: not a write that is merely passing through.
      await sleep(50);
      const again = blockedIn(pid);
      if (again === SYS_WRITE || again === SYS_POLL) return;
    }
    await sleep(50);
  }
  throw new Error('the monitor never blocked on its console');
}

/** The two guests: one spinning in KVM_RUN, one whose output blocks. */
const GUESTS = {
  spinning: { args: [guest('spin')], ready: 'spinning\n', blocked: false },
  'blocked on console (64-byte lines)': { args: [guest('chatty')], ready: 'chatty\n', blocked: true },
  'blocked on console (256 KiB PUTS)': { args: [guest('chatty'), 'big'], ready: 'chatty\n', blocked: true },
} as const;
type GuestName = keyof typeof GUESTS;

async function startGuest(name: GuestName, env?: NodeJS.ProcessEnv) {
  const g = GUESTS[name];
  const s = await startReady(BIN, [...g.args], g.ready, env);
  if (g.blocked) await waitBlockedOnOutput(s.child.pid as number);
  return s;
}

const GUEST_NAMES = Object.keys(GUESTS) as GuestName[];

describeKvm('SIGTERM and SIGINT end a run whatever it waits on', () => {
  it.each(GUEST_NAMES.flatMap((g) => [[g, 'SIGTERM', 15], [g, 'SIGINT', 2]] as const))(
    '%s: %s → "Exiting on signal", status 1',
    async (name, sig, num) => {
      const { child, ended } = await startGuest(name);
      child.kill(sig);
      const r = await Promise.race([ended, sleep(5000).then(() => null)]);
      if (r === null) child.kill('SIGKILL');
      expect(r, 'still running 5 s after the signal').not.toBeNull();
      expect(r?.signal).toBeNull();
      expect(r?.code).toBe(1);
      expect(r?.stderr).toBe(`ukvm-ts: Exiting on signal ${num}\n`);
    },
    30_000,
  );
});

describeKvm('other signals keep their default action (as the reference)', () => {
  const DEFAULT_ACTION = ['SIGUSR1', 'SIGUSR2', 'SIGHUP', 'SIGQUIT', 'SIGALRM', 'SIGPIPE'] as const;
  it.each(GUEST_NAMES.flatMap((g) => DEFAULT_ACTION.map((sig) => [g, sig] as const)))(
    '%s: %s kills the monitor, no inspector opens',
    async (name, sig) => {
      const { child, ended } = await startGuest(name);
      child.kill(sig);
      const r = await Promise.race([ended, sleep(5000).then(() => null)]);
      if (r === null) child.kill('SIGKILL');
      expect(r, 'still running 5 s after the signal').not.toBeNull();
      expect(r?.signal).toBe(sig);
      expect(r?.stderr).not.toMatch(/Debugger|inspector/i);
    },
    30_000,
  );
});

describeKvm('no inspector from the environment or from node flags', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ukvm-inspect-'));
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const INSPECT_ENV = { ...process.env, NODE_OPTIONS: '--inspect=127.0.0.1:0' };

  it('NODE_OPTIONS=--inspect does not reach bin/ukvm-ts', async () => {
    const { child, ended } = await startGuest('spinning', INSPECT_ENV);
    child.kill('SIGTERM');
    const r = await ended;
    expect(r.stderr).toBe('ukvm-ts: Exiting on signal 15\n');
  }, 30_000);

  it('NODE_OPTIONS=--inspect does not reach a generated monitor, and SIGUSR1 kills it', async () => {
    const monitor = join(dir, 'spin-monitor.mjs');
    expect(runTender(['configure', guest('spin'), '-o', monitor]).status).toBe(0);
    expect(readFileSync(monitor, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env -S -u NODE_OPTIONS node');
    const { child, ended } = await startReady(monitor, [guest('spin')], 'spinning\n', INSPECT_ENV);
    child.kill('SIGUSR1');
    const r = await ended;
    expect(r.signal).toBe('SIGUSR1');
    expect(r.stderr).toBe('');
  }, 30_000);

  it('node started by hand with --inspect: the monitor closes it and refuses to run, one line, status 1', () => {
    const r = runTender(['--inspect=127.0.0.1:0', join(ROOT, 'dist', 'ukvm-ts.mjs'), guest('hello')], { bin: process.execPath });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    const ours = r.stderr.split('\n').filter((l) => l.startsWith('ukvm-ts.mjs: '));
    expect(ours).toEqual([
      'ukvm-ts.mjs: refusing to run with a Node.js inspector open (--inspect or SIGUSR1): it lets whoever reaches its port run code in the monitor',
    ]);
  }, 30_000);
});

describeKvm('a console whose reader went away', () => {
  it.each(['chatty', 'hello'] as const)('%s: the monitor dies of SIGPIPE (status 141 in a shell), as the reference', async (name) => {
    const child = spawn(BIN, [guest(name)], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Close our end before the guest writes anything: every write meets EPIPE.
    child.stdout?.destroy();
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    expect({ code, signal, stderr }).toEqual({ code: null, signal: 'SIGPIPE', stderr: '' });
  }, 30_000);
});
