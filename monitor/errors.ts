import { getSystemErrorMap } from 'node:util';

// One error type per layer. Only monitor/main.ts turns them into a process
// exit; everything else throws. Every message is one line, without the
// program-name prefix (the printer adds it).

/** Process exit statuses of the tender itself (guest statuses pass through). */
export const ExitCode = {
  OK: 0,
  /** Every tender-side failure: bad input, KVM failure, guest fault, signal. */
  FAILURE: 1,
  GUEST_ABORT: 255,
} as const;

/** Base: a condition the monitor reports as one line and exit status 1. */
export class TenderError extends Error {
  /** Stable machine-readable code for library callers. */
  readonly code: string;
  /** Warning lines printed before the message (e.g. which device is missing). */
  readonly warnings: readonly string[];
  constructor(code: string, message: string, warnings: readonly string[] = []) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.warnings = warnings;
  }
}

/** Bad command line: printed, followed by the usage text. */
export class UsageError extends TenderError {
  constructor(message: string, warnings: readonly string[] = []) {
    super('EUSAGE', message, warnings);
  }
}

/** Bad kernel file: ELF, ABI note or manifest problems. */
export class KernelError extends TenderError {
  constructor(message: string) {
    super('EKERNEL', message);
  }
}

/** Bad configuration other than syntax: memory size, devices, command line. */
export class ConfigError extends TenderError {
  constructor(message: string, warnings: readonly string[] = []) {
    super('ECONFIG', message, warnings);
  }
}

/** The host (KVM, files, taps) failed us. */
export class HostError extends TenderError {
  constructor(message: string) {
    super('EHOST', message);
  }
}

/** The guest did something the ABI does not allow; the run ends. */
export class GuestError extends TenderError {
  constructor(message: string) {
    super('EGUEST', message);
  }
}

/** "msg: strerror" for a native error, like the reference's (+errno) messages. */
export function withErrno(message: string, e: unknown): string {
  return `${message}: ${describeSystemError(e)}`;
}

/** Human text of a system error (strerror-like), without the syscall name. */
export function describeSystemError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const err = e as NodeJS.ErrnoException;
  if (typeof err.errno === 'number' && err.errno > 0) {
    // The addon's errors read "SYSCALL: strerror".
    const at = err.message.indexOf(': ');
    if (at >= 0) return err.message.slice(at + 2);
  }
  if (typeof err.errno === 'number' && err.errno !== 0) {
    // Node's fs errors carry a negative errno and libuv's wording; prefer the
    // C library's text, which is what the reference prints.
    const errno = Math.abs(err.errno);
    const text = strerror?.(errno);
    if (text) return text;
    const entry = getSystemErrorMap().get(-errno);
    if (entry) return entry[1].charAt(0).toUpperCase() + entry[1].slice(1);
  }
  return err.message;
}

let strerror: ((errno: number) => string) | undefined;

/** Lets the monitor use the addon's strerror (set when the addon is loaded). */
export function useStrerror(fn: (errno: number) => string): void {
  strerror = fn;
}
