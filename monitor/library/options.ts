// Options of startUnikernel, checked on the caller's thread before a worker
// is started: unknown names, wrong types and shapes are rejected here with
// OptionError — the core's options here, each module's by its descriptor
// (registry.ts). Everything the CLI would reject about the kernel and its
// devices is rejected by the same code the CLI uses, inside the worker.
import { OptionError } from '../errors.js';
import type { ModuleDescriptor } from '../module.js';
import { CORE_LIBRARY_OPTIONS } from '../registry.js';

/** Console output: a writable stream, or a callback receiving decoded text. */
export type ConsoleTarget = { write(chunk: Uint8Array): unknown } | ((text: string) => void);

export interface UnikernelOptions {
  /** Path of the .hvt file, or its bytes. */
  kernel: string | Uint8Array;
  /** Guest memory in MiB (default 512; rounded down to a multiple of 2, at least 2, at most 4096). */
  memoryMiB?: number;
  /** The guest's command line, as arguments (joined with single spaces). */
  args?: readonly string[];
  /** Block devices by manifest name: path of a file or host block device. */
  block?: Readonly<Record<string, string>>;
  /** Sector sizes by manifest name (512..32768, a power of two). */
  blockSectorSize?: Readonly<Record<string, number>>;
  /** Net devices by manifest name: a tap interface name, or an open tap descriptor (stays yours to close). */
  net?: Readonly<Record<string, string | { fd: number }>>;
  /** MAC addresses by manifest name, "xx:xx:xx:xx:xx:xx". */
  netMac?: Readonly<Record<string, string>>;
  /** Offer the shared net ring (docs/abi.md §13), as --net-ring=; default 'off' (README: Numbers). */
  netRing?: 'on' | 'off';
  /** Directory for a core file when the guest aborts (as --dumpcore=DIR). */
  dumpcore?: string;
  /**
   * Wait for a debugger (gdb remote protocol) on this TCP port (default 1234;
   * 0: any free one) and address (default 127.0.0.1) before the guest runs.
   */
  gdb?: Readonly<{ port?: number; host?: string }>;
  /** Where guest console output goes (default: this process's stdout); 'iterable': read it from vm.console. */
  console?: ConsoleTarget | 'iterable';
  /** Receives warning lines, e.g. memory adjustments (default: stderr). */
  warn?: (line: string) => void;
  /** See VmConfig.pollSpinNs. */
  pollSpinNs?: number;
  /** Aborting it stops the VM (as stop()); already aborted: the VM is never built and exited says 'stopped'. */
  signal?: AbortSignal;
  /** Stops the VM this many ms after it started running; exited then says 'timeout'. */
  timeout?: number;
  /**
   * Confine the VM's worker thread before the guest runs (default true). A
   * confined worker cannot build another VM and is replaced; with false it
   * goes back to its pool (see README, Library at scale).
   */
  sandbox?: boolean;
}

/** Checks the options; returns each module's options by module name (structured-clonable). */
export function checkOptions(o: UnikernelOptions, registry: readonly ModuleDescriptor[]): Record<string, Record<string, unknown>> {
  if (typeof o !== 'object' || o === null) throw new OptionError('options must be an object');
  const known = new Set<string>([...CORE_LIBRARY_OPTIONS, ...registry.flatMap((d) => d.library.map((l) => l.name))]);
  for (const name of Object.keys(o)) {
    if (!known.has(name)) throw new OptionError(`unknown option: ${name}`);
  }
  if (typeof o.kernel !== 'string' && !(o.kernel instanceof Uint8Array)) {
    throw new OptionError('kernel must be a path or a Uint8Array');
  }
  if (o.memoryMiB !== undefined && (!Number.isInteger(o.memoryMiB) || o.memoryMiB < 1)) {
    throw new OptionError('memoryMiB must be a positive integer');
  }
  // Indexed, not every(): every() skips the holes of a sparse array.
  if (o.args !== undefined && (!Array.isArray(o.args) || !Array.from(o.args).every((a) => typeof a === 'string'))) {
    throw new OptionError('args must be an array of strings');
  }
  if (o.console !== undefined && o.console !== 'iterable' && typeof o.console !== 'function' && typeof (o.console as { write?: unknown } | null)?.write !== 'function') {
    throw new OptionError("console must be a writable stream, a function or 'iterable'");
  }
  if (o.warn !== undefined && typeof o.warn !== 'function') throw new OptionError('warn must be a function');
  if (o.pollSpinNs !== undefined && !(Number.isFinite(o.pollSpinNs) && o.pollSpinNs >= 0)) {
    throw new OptionError('pollSpinNs must be a non-negative number');
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new OptionError('signal must be an AbortSignal');
  // setTimeout's own limit (2^31 − 1 ms): beyond it Node fires at once.
  if (o.timeout !== undefined && !(Number.isFinite(o.timeout) && o.timeout > 0 && o.timeout <= 0x7fffffff)) {
    throw new OptionError('timeout must be a number of milliseconds, more than 0 and at most 2147483647');
  }
  if (o.sandbox !== undefined && typeof o.sandbox !== 'boolean') throw new OptionError('sandbox must be a boolean');
  const given = o as unknown as Record<string, unknown>;
  const byModule: Record<string, Record<string, unknown>> = {};
  for (const d of registry) {
    const mine: Record<string, unknown> = {};
    for (const opt of d.library) {
      const value = given[opt.name];
      opt.check(value);
      // A copy: the caller may change its objects while the worker starts.
      if (value !== undefined) mine[opt.name] = structuredClone(value);
    }
    byModule[d.name] = mine;
  }
  return byModule;
}
