// The self-contained executable for the tests: dist/exe/ukvm-ts, built by
// scripts/build-exe.mjs when it is missing or older than what goes into it
// (the script's --if-stale).
// Test files run in parallel, so the build runs under flock(1): the first
// file builds, the others wait and find it fresh.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './tender.js';

export const EXE_DIR = join(ROOT, 'dist', 'exe');
export const EXE = join(EXE_DIR, 'ukvm-ts');
export const EXE_SOLO5_HVT = join(EXE_DIR, 'solo5-hvt');
export const EXE_SOLO5_HVT_DEBUG = join(EXE_DIR, 'solo5-hvt-debug');
export const EXE_SOLO5_ELFTOOL = join(EXE_DIR, 'solo5-elftool');

/** Builds the executable unless it is fresh (build-exe.mjs --if-stale decides); throws with the build's output on failure. */
export function ensureExe(): string {
  const build = [process.execPath, join(ROOT, 'scripts', 'build-exe.mjs'), '--if-stale'];
  const r = spawnSync('flock', [join(ROOT, 'dist', '.exe.lock'), ...build], { encoding: 'utf8', timeout: 300_000 });
  if (r.error) throw r.error;
  if (r.status !== 0 || !existsSync(EXE)) throw new Error(`building the executable failed (${r.status}):\n${r.stdout}${r.stderr}`);
  return EXE;
}
