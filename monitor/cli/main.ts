// The CLI: parse, validate, compose, run. The only place that decides the
// process exit status; bin/ukvm-ts and generated monitors call process.exit
// with what main returns.
import { platform } from '../backend/index.js';
import { ExitCode, KernelError, TenderError, UsageError } from '../errors.js';
import { openKernel } from '../kernel/kernel.js';
import type { ModuleDescriptor } from '../module.js';
import { packageVersion } from '../paths.js';
import { DEBUG_PROGRAM, sandboxStep } from '../sandbox/step.js';
import { createVm } from '../vm/compose.js';
import { firstPass, secondPass, usageText, versionText } from './parse.js';
import { printer } from './printer.js';
import { refuseInspector } from './process-guard.js';

export interface CliOptions {
  /** Only a kernel whose manifest has exactly these bytes is run (generated monitors). */
  expectManifest?: Uint8Array;
}

/** The core option that runs the guest without the sandbox (one warning). */
const NO_SANDBOX = '--no-sandbox';

/** UKVM_POLL_SPIN_NS tunes how long POLL spins before it sleeps (see VmConfig.pollSpinNs). */
function pollSpin(): { pollSpinNs?: number } {
  const v = process.env['UKVM_POLL_SPIN_NS'];
  return v !== undefined && /^[0-9]{1,10}$/.test(v) ? { pollSpinNs: Number(v) } : {};
}

/**
 * Runs the tender for argv (without node and script) with the modules of
 * these descriptors; returns the exit status.
 */
export function main(argv: readonly string[], prog: string, descriptors: readonly ModuleDescriptor[], options: CliOptions = {}): number {
  const say = printer(prog);
  const usage = () => say.raw(usageText(prog, descriptors));
  try {
    // First of all: no signal may open a debugging port (process-guard.ts).
    const plat = platform();
    plat.signals.restoreDefaults();
    refuseInspector();
    const action = firstPass(argv, descriptors);
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
    const modules = descriptors.map((d) => d.create({}, { host: plat.host }));
    // --no-sandbox is a core option like --mem=, taken before the modules see the rest.
    const noSandbox = action.options.includes(NO_SANDBOX);
    const memoryBytes = secondPass(action.options.filter((o) => o !== NO_SANDBOX), kernel.manifest, modules);
    plat.signals.catchTermination();
    const vm = createVm({
      kernel,
      memoryBytes,
      args: action.guestArgs,
      modules,
      backend: () => plat.openBackend(),
      host: plat.host,
      warn: say.line,
      ...pollSpin(),
      // Every thread of this process is confined right before the guest first runs (monitor/sandbox/).
      sandbox: sandboxStep({
        sandbox: plat.sandbox,
        scope: 'process',
        skip: prog === DEBUG_PROGRAM ? 'debug-program' : noSandbox ? 'no-sandbox' : undefined,
        modules,
        warn: say.line,
      }),
    });
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
