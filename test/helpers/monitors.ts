// Helpers of the configure tests (test/cli/configure.test.ts without KVM,
// test/kvm/configure.test.ts running the monitors): running generated
// monitors, what they load, and the refusals they print.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { importClosure } from './import-closure.js';
import { runTender, type RunResult } from './tender.js';

/** Runs a generated monitor (or any script) with node; returns its output. */
export function runNode(script: string, args: readonly string[], extraNodeArgs: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): RunResult {
  const r = spawnSync(process.execPath, [...extraNodeArgs, script, ...args], { encoding: 'utf8', timeout: 60_000, env });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** `ukvm-ts configure KERNEL -o DIR/NAME`, expected to succeed; returns that path. */
export function configureInto(dir: string, kernel: string, name: string): string {
  const out = join(dir, name);
  const r = runTender(['configure', kernel, '-o', out]);
  expect(r.stderr).toMatch(new RegExp(`^ukvm-ts: wrote ${out.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: modules console(, block)?(, net)?\n$`));
  expect(r.stdout).toBe('');
  expect(r.status).toBe(0);
  return out;
}

/**
 * The bundles a generated monitor loads (dynamically, once it found the
 * package): dist/bundles/monitor.mjs and one per module it names. With
 * importClosure they give every file it runs.
 */
export function monitorBundles(text: string, file: string): string[] {
  const modules = /^const MODULES = (\[.*\]);$/m.exec(text);
  const at = /^const GENERATED_AT = (".*");$/m.exec(text);
  if (!modules || !at) return [];
  expect(file.endsWith('.mjs')).toBe(true);
  const root = JSON.parse(at[1] as string) as string;
  return ['monitor', ...(JSON.parse(modules[1] as string) as string[])].map((n) => join(root, 'dist', 'bundles', `${n}.mjs`));
}
export const closure = (entry: string) => importClosure(entry, monitorBundles);
export const modulesOf = (mon: string) => JSON.parse(/^const MODULES = (\[.*\]);$/m.exec(readFileSync(mon, 'utf8'))?.[1] ?? 'null') as unknown;

// Text only each device module's code contains, to see which ones a monitor loads.
export const MARK = { block: 'Could not open block device', net: 'Could not attach interface' } as const;
export const holds = (mon: string, m: keyof typeof MARK) => closure(mon).files.some((f) => readFileSync(f, 'utf8').includes(MARK[m]));

/** Asserts an "Invalid option" refusal: that line first, then the usage; exit 1, nothing on stdout. */
export function expectInvalidOption(r: RunResult, prog: string, arg: string): void {
  const l = r.stderr.split('\n');
  expect(l[0]).toBe(`${prog}: Invalid option: \`${arg}'`);
  expect(l[1]).toMatch(/^usage: /);
  expect(r.stdout).toBe('');
  expect(r.status).toBe(1);
}

export function expectManifestRefused(r: RunResult, prog: string, kernel: string): void {
  expect(r.stderr).toBe(`${prog}: ${kernel}: manifest differs from the one this monitor was generated for\n`);
  expect(r.stdout).toBe('');
  expect(r.status).toBe(1);
}

/** The "Compiled-in modules:" line of a --help text. */
export function compiledIn(stderr: string): string | undefined {
  return stderr.split('\n').find((l) => l.startsWith('Compiled-in modules:'));
}
