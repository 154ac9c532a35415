// The CLI: parse, validate, compose, run. The only place that decides the
// process exit status; bin/ukvm-ts calls process.exit with what main returns.
import { readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { loadNative } from '../../native/binding.js';
import { KvmBackend } from '../backend/kvm/backend.js';
import { firstPass, secondPass, usageText, versionText } from './parse.js';
import { configure } from './configure.js';
import { ExitCode, KernelError, TenderError, UsageError } from '../errors.js';
import { openKernel } from '../kernel/kernel.js';
import { PACKAGE_ROOT } from '../paths.js';
import type { Module } from '../module.js';
import { refuseInspector, restoreDefaultSignals } from './process-guard.js';
import { createVm } from '../vm/compose.js';
import { printable } from '../text.js';

const SIGINT = 2;
const SIGTERM = 15;

/**
 * Writes diagnostic lines to stderr, each prefixed with "prog: ". Unprintable
 * characters are escaped (text.ts), so a kernel path or manifest name holding
 * a newline cannot split a diagnostic or forge a line of its own.
 */
function printer(prog: string) {
  const out = (line: string) => writeSync(2, `${line}\n`);
  return {
    raw: out,
    line: (msg: string) => out(printable(`${prog}: ${msg}`)),
  };
}

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export interface CliOptions {
  /** Only a kernel whose manifest has exactly these bytes is run (generated monitors). */
  expectManifest?: Uint8Array;
}

/** UKVM_POLL_SPIN_NS tunes how long POLL spins before it sleeps (see VmConfig.pollSpinNs). */
function pollSpin(): { pollSpinNs?: number } {
  const v = process.env['UKVM_POLL_SPIN_NS'];
  return v !== undefined && /^[0-9]{1,10}$/.test(v) ? { pollSpinNs: Number(v) } : {};
}

/**
 * Runs the tender for argv (without node and script) with these modules;
 * returns the exit status.
 */
export function main(argv: readonly string[], prog: string, modules: readonly Module[], options: CliOptions = {}): number {
  const say = printer(prog);
  const usage = () => say.raw(usageText(prog, modules));
  try {
    // First of all: no signal may open a debugging port (process-guard.ts).
    // Loaded this early also so that every message uses the C library's error texts.
    const binding = loadNative();
    restoreDefaultSignals(binding);
    refuseInspector();
    const action = firstPass(argv, modules);
    switch (action.kind) {
      case 'help':
        usage();
        return ExitCode.FAILURE;
      case 'version':
        say.raw(versionText(prog, packageVersion()));
        return ExitCode.OK;
      case 'missing-kernel':
        say.line('Missing KERNEL operand');
        usage();
        return ExitCode.FAILURE;
      case 'run':
        break;
    }
    const kernel = openKernel(action.kernel);
    if (options.expectManifest && !sameBytes(kernel.manifest.bytes, options.expectManifest)) {
      kernel.close();
      throw new KernelError(`${action.kernel}: manifest differs from the one this monitor was generated for`);
    }
    const memoryBytes = secondPass(action.options, kernel.manifest, modules);
    binding.installTerminationHandlers([SIGINT, SIGTERM]);
    const backend = () => new KvmBackend(binding);
    const vm = createVm({ kernel, memoryBytes, args: action.guestArgs, modules, backend, warn: say.line, binding, ...pollSpin() });
    refuseInspector();
    const outcome = vm.run();
    switch (outcome.kind) {
      case 'halt':
        return outcome.status & 0xff;
      case 'signal':
        say.line(`Exiting on signal ${outcome.signal}`);
        return ExitCode.FAILURE;
      case 'stopped':
        return ExitCode.FAILURE;
    }
  } catch (e) {
    if (e instanceof TenderError) {
      for (const w of e.warnings) say.line(w);
      say.line(e.message);
      if (e instanceof UsageError) usage();
      return ExitCode.FAILURE;
    }
    say.line(`internal error: ${e instanceof Error ? e.message : String(e)}`);
    return ExitCode.FAILURE;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** `configure KERNEL -o OUT`: writes a per-unikernel monitor; returns the exit status. */
export function runConfigure(argv: readonly string[], prog: string): number {
  const say = printer(prog);
  try {
    say.line(configure(argv));
    return ExitCode.OK;
  } catch (e) {
    say.line(e instanceof Error ? e.message : String(e));
    return ExitCode.FAILURE;
  }
}
