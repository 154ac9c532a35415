import { getSystemErrorMap } from 'node:util';

// One error type per layer. Only the CLI (cli/main.ts) turns them into a
// process exit; everything else throws. Every message is one line, without
// the program-name prefix (the printer adds it).

/** Process exit statuses of the tender itself (guest statuses pass through). */
export const ExitCode = {
  OK: 0,
  /** Every tender-side failure: bad input, KVM failure, guest fault, signal. */
  FAILURE: 1,
} as const;

/** What kind of failure an error is, for programs that handle them. */
export type ErrorCode = 'EUSAGE' | 'EOPTION' | 'EKERNEL' | 'ECONFIG' | 'EHOST' | 'EGUEST' | 'EMODULE' | 'EINTERNAL';

export interface TenderErrorOptions {
  /** Warning lines printed before the message (e.g. which device is missing). */
  warnings?: readonly string[];
  /** The system or library error behind this one. */
  cause?: unknown;
}

/** Base: a condition the monitor reports as one line and exit status 1. */
export class TenderError extends Error {
  /** Stable machine-readable code for library callers. */
  readonly code: ErrorCode;
  readonly warnings: readonly string[];
  constructor(code: ErrorCode, message: string, options: TenderErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.warnings = options.warnings ?? [];
  }
}

/** Bad command line: printed, followed by the usage text. */
export class UsageError extends TenderError {
  constructor(message: string, options?: TenderErrorOptions) {
    super('EUSAGE', message, options);
  }
}

/** A startUnikernel option has the wrong name, type or shape. */
export class OptionError extends TenderError {
  constructor(message: string, options?: TenderErrorOptions) {
    super('EOPTION', message, options);
  }
}

/** Bad kernel file: ELF, ABI note or manifest problems. */
export class KernelError extends TenderError {
  constructor(message: string, options?: TenderErrorOptions) {
    super('EKERNEL', message, options);
  }
}

/** Bad configuration other than syntax: memory size, devices, command line. */
export class ConfigError extends TenderError {
  constructor(message: string, options?: TenderErrorOptions) {
    super('ECONFIG', message, options);
  }
}

/** The host (KVM, files, taps) failed us. */
export class HostError extends TenderError {
  constructor(message: string, options?: TenderErrorOptions) {
    super('EHOST', message, options);
  }
}

/** The guest did something the ABI does not allow; the run ends. */
export class GuestError extends TenderError {
  constructor(message: string, options?: TenderErrorOptions) {
    super('EGUEST', message, options);
  }
}

/**
 * Modules do not fit together: a hypercall, POLL descriptor, option or name
 * claimed twice. A programming error of a module, never of the user.
 */
export class ModuleError extends TenderError {
  constructor(message: string, options?: TenderErrorOptions) {
    super('EMODULE', message, options);
  }
}

/** Every error class by name: how an error that crossed a thread is rebuilt. */
export const ERROR_CLASSES = {
  UsageError,
  OptionError,
  KernelError,
  ConfigError,
  HostError,
  GuestError,
  ModuleError,
} as const satisfies Record<string, new (message: string, options?: TenderErrorOptions) => TenderError>;

/** What of an error crosses a thread (structured-clonable). */
export interface ErrorRecord {
  name: string;
  code: ErrorCode;
  message: string;
  warnings: string[];
}

export function errorRecord(e: unknown): ErrorRecord {
  const err = e instanceof Error ? e : new Error(String(e));
  const tender = e instanceof TenderError ? e : null;
  return { name: err.name, code: tender?.code ?? 'EINTERNAL', message: err.message, warnings: [...(tender?.warnings ?? [])] };
}

/** Rebuilds the typed error of a record; an unknown name becomes a plain TenderError with its code. */
export function reviveError(r: ErrorRecord): TenderError {
  const C = (ERROR_CLASSES as Record<string, (typeof ERROR_CLASSES)[keyof typeof ERROR_CLASSES] | undefined>)[r.name];
  return C ? new C(r.message, { warnings: r.warnings }) : new TenderError(r.code, r.message, { warnings: r.warnings });
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

/** Lets the monitor use the C library's strerror (set when the backend is loaded). */
export function useStrerror(fn: (errno: number) => string): void {
  strerror = fn;
}

/** The reference's "Invalid option" (§2.3), with the warning lines that explain it. */
export function invalidOption(arg: string, warnings: readonly string[] = []): UsageError {
  return new UsageError(`Invalid option: \`${arg}'`, { warnings });
}
