// Runs bin/ukvm-ts as a child process, the way an orchestrator would, and
// captures everything it says. KVM tests use describeKvm so that a machine
// without /dev/kvm skips them loudly instead of failing or faking a pass.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { describe } from 'vitest';
import { kvmUsable } from './kvm.js';

export const ROOT = join(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'ukvm-ts');
export const GUEST_BUILD = join(ROOT, 'test', 'guests', 'build');

/** Path of a built test unikernel, e.g. guest('hello') → …/build/hello.hvt */
export function guest(name: string): string {
  return join(GUEST_BUILD, `${name}.hvt`);
}

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  /** argv[0] the tender sees; defaults to the real bin path. */
  bin?: string;
  env?: NodeJS.ProcessEnv;
}

/** Runs the tender to completion (synchronously) and returns its output. */
export function runTender(args: readonly string[], opts: RunOptions = {}): RunResult {
  const r = spawnSync(opts.bin ?? BIN, args, {
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 30_000,
    env: opts.env ?? process.env,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error && (r.error as NodeJS.ErrnoException).code !== 'ETIMEDOUT') throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Starts the tender in the background (for signal tests). */
export function startTender(args: readonly string[], opts: RunOptions = {}): ChildProcess {
  return spawn(opts.bin ?? BIN, args, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
}

export const kvmAvailable: boolean = kvmUsable();

/** describe() for tests that need /dev/kvm; skipped (loudly, see global-setup) without it. */
export const describeKvm = kvmAvailable ? describe : describe.skip;
