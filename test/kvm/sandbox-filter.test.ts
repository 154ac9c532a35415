// The monitor's seccomp program, installed for real in a child process
// (issue #12): test/kvm/sandbox-probe.c reads the program this test builds
// with monitor/sandbox/filter.ts (for the child's own pid), installs it as
// the monitor does (no-new-privileges, then seccomp; TSYNC for the CLI's
// scope) and makes one call. Each forbidden call fails as designed (SIGSYS,
// EPERM for open*), the calls the monitor needs work, and so do a thread
// (clone3 → ENOSYS, then clone), a signal handler and a wait the kernel
// resumes after SIGSTOP/SIGCONT (restart_syscall). No KVM needed; gcc is.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFilter } from '../../monitor/sandbox/filter.js';
import type { Scope } from '../../monitor/sandbox/policy.js';

let dir = '';
let probe = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ukvm-sandbox-filter-'));
  probe = join(dir, 'sandbox-probe');
  execFileSync(process.env['CC'] ?? 'gcc', ['-O1', '-Wall', '-o', probe, join(import.meta.dirname, 'sandbox-probe.c'), '-lpthread']);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Outcome {
  signal: NodeJS.Signals | null;
  code: number | null;
  /** What the call returned, when the probe lived to say it. */
  ret?: number;
  errno?: number;
  out: string;
}

/** Runs one call under the scope's filter; `during` acts on the probe's pid after the filter is in (signals). */
function probeCall(scope: Scope, call: string, during?: (pid: number) => Promise<void>): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(probe, [scope, call, dir], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let sent = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /^pid (\d+)\n/.exec(out);
      if (m && !sent) {
        sent = true;
        child.stdin.end(buildFilter(scope, { pid: Number(m[1]) }));
        if (during) void during(Number(m[1]));
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const r = /ret (-?\d+) errno (\d+)/.exec(out);
      resolve({ code, signal, out, ...(r ? { ret: Number(r[1]), errno: Number(r[2]) } : {}) });
    });
  });
}

const EPERM = 1;
const ENOSYS = 38;
const EBADF = 9;

/** The list, each made with arguments that would do nothing if a broken filter let it through. */
const KILLED = [
  'execve', 'execveat', 'creat',
  'socket', 'socket-inet', 'connect', 'bind', 'listen', 'accept', 'accept4',
  'ptrace', 'process_vm_readv', 'process_vm_writev',
  'fork', 'vfork', 'clone-process', 'clone-thread-newnet',
  'mount', 'unshare', 'setns', 'bpf', 'init_module', 'finit_module', 'kexec_load', 'kexec_file_load',
  // and a few more the filter must stop: another filter, the x32 ABI, a terminal's input, other processes
  'seccomp', 'x32-write', 'ioctl-tiocsti', 'tgkill-other', 'kill-other',
];

describe.each(['process', 'thread'] as const)('the %s filter in a child process', (scope) => {
  it.each(KILLED)('%s: killed by SIGSYS', async (call) => {
    const r = await probeCall(scope, call);
    expect(r.signal, r.out).toBe('SIGSYS');
    expect(r.out).toMatch(/^pid \d+\n$/);
  });

  it.each(['open', 'openat', 'openat2'])('%s: fails with EPERM (glibc opens files lazily and copes)', async (call) => {
    expect(await probeCall(scope, call)).toMatchObject({ signal: null, code: 0, ret: -1, errno: EPERM });
  });

  it('clone3: fails with ENOSYS (glibc then uses clone, whose flags the filter reads)', async () => {
    expect(await probeCall(scope, 'clone3')).toMatchObject({ signal: null, code: 0, ret: -1, errno: ENOSYS });
  });

  it.each(['write', 'memory', 'futex', 'clocks', 'tgkill-own'])('%s: works', async (call) => {
    expect(await probeCall(scope, call)).toMatchObject({ signal: null, code: 0, ret: 0 });
  });

  it('ioctl KVM_RUN: allowed (EBADF on a bad descriptor), also with high bits the kernel ignores', async () => {
    expect(await probeCall(scope, 'ioctl-kvm-run')).toMatchObject({ signal: null, ret: -1, errno: EBADF });
    expect(await probeCall(scope, 'ioctl-kvm-run-high-bits')).toMatchObject({ signal: null, ret: -1, errno: EBADF });
  });

  it('a timed wait stopped by SIGSTOP and resumed by SIGCONT (restart_syscall) goes on', async () => {
    const r = await probeCall(scope, 'poll-sleep', async (pid) => {
      await new Promise((ok) => setTimeout(ok, 300));
      process.kill(pid, 'SIGSTOP');
      await new Promise((ok) => setTimeout(ok, 200));
      process.kill(pid, 'SIGCONT');
    });
    expect(r).toMatchObject({ signal: null, code: 0, ret: 0 });
  });

  it(scope === 'process' ? 'a thread: created (clone3 ENOSYS, clone with CLONE_THREAD), runs and is joined' : 'a thread: killed (a VM thread never creates one)', async () => {
    const r = await probeCall(scope, 'thread');
    if (scope === 'process') expect(r).toMatchObject({ signal: null, code: 0, ret: 0 });
    else expect(r.signal).toBe('SIGSYS');
  });
});
