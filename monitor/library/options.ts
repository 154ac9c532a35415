// Options of startUnikernel, checked on the caller's thread before a worker
// is started: wrong types and shapes are rejected here with OptionError;
// everything the CLI would reject about the kernel and its devices is
// rejected by the same code the CLI uses, inside the worker.
import { TenderError } from '../errors.js';

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
  /** Net devices by manifest name: a tap interface name, or an open tap descriptor. */
  net?: Readonly<Record<string, string | { fd: number }>>;
  /** MAC addresses by manifest name, "xx:xx:xx:xx:xx:xx". */
  netMac?: Readonly<Record<string, string>>;
  /** Where guest console output goes (default: this process's stdout). */
  console?: ConsoleTarget;
  /** Receives warning lines, e.g. memory adjustments (default: stderr). */
  warn?: (line: string) => void;
  /** See VmConfig.pollSpinNs. */
  pollSpinNs?: number;
}

/** A startUnikernel option has the wrong type or shape. */
export class OptionError extends TenderError {
  constructor(message: string) {
    super('EOPTION', message);
  }
}

function record(value: unknown, what: string, item: (v: unknown) => boolean, expect: string): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new OptionError(`${what} must be an object`);
  for (const [k, v] of Object.entries(value)) {
    if (!item(v)) throw new OptionError(`${what}.${k} must be ${expect}`);
  }
}

export function checkOptions(o: UnikernelOptions): void {
  if (typeof o !== 'object' || o === null) throw new OptionError('options must be an object');
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
  record(o.block, 'block', (v) => typeof v === 'string' && v.length > 0, 'a path');
  record(o.blockSectorSize, 'blockSectorSize', (v) => Number.isInteger(v), 'an integer');
  const fdOrName = (v: unknown) =>
    (typeof v === 'string' && v.length > 0) ||
    (typeof v === 'object' && v !== null && Number.isInteger((v as { fd?: unknown }).fd) && (v as { fd: number }).fd >= 0);
  record(o.net, 'net', fdOrName, 'an interface name or { fd }');
  record(o.netMac, 'netMac', (v) => typeof v === 'string', 'a MAC address string');
  if (o.console !== undefined && typeof o.console !== 'function' && typeof (o.console as { write?: unknown }).write !== 'function') {
    throw new OptionError('console must be a writable stream or a function');
  }
  if (o.pollSpinNs !== undefined && !(Number.isFinite(o.pollSpinNs) && o.pollSpinNs >= 0)) {
    throw new OptionError('pollSpinNs must be a non-negative number');
  }
}
