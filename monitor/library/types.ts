// The types a library caller sees of one running unikernel.
import type { ExitReason } from './shared.js';

export interface ExitInfo {
  /** The process exit status the CLI would have given (guest status & 0xFF, or 1). */
  status: number;
  reason: ExitReason;
  /** The diagnostic line for 'fault', 'error' and 'timeout' (what the CLI prints). */
  message?: string;
}

export interface UnikernelStats {
  exits: Record<string, number>;
  hypercalls: Record<string, number>;
  /** Per attached device: bytes into the guest (block reads, frames received) and out, by hypercall and net ring alike. */
  devices: Record<string, { in: number; out: number }>;
  /** Net ring entries served (docs/abi.md §13): NET_READ entries committed, NET_WRITE entries sent. */
  ring: { reads: number; writes: number };
  wallMs: number;
  vcpuMs: number;
}

/**
 * The guest's console output when the VM was started with
 * `console: 'iterable'`: its bytes as they come, in chunks (`for await (const
 * chunk of vm.console)`), or as text lines without their '\n' (`for await
 * (const line of vm.console.lines())`). One reader: the chunks are handed out
 * once. Iteration ends once the VM has ended and everything was read. Output
 * not yet read counts against the VM's console window, so a guest nobody
 * reads from is held at PUTS (as one writing to a full pipe); leaving the
 * loop early (break) drops what follows and lets the guest go on.
 */
export interface ConsoleOutput extends AsyncIterable<Uint8Array> {
  lines(): AsyncIterable<string>;
}

export interface Unikernel {
  /** Settles once the VM has ended; never rejects. */
  readonly exited: Promise<ExitInfo>;
  /** Asks the VM to stop; exited then resolves with reason 'stopped'. */
  stop(): void;
  /** Live counters, readable while the guest runs. */
  stats(): UnikernelStats;
  /** Console output (see ConsoleOutput); iterating it throws OptionError unless the VM was started with console: 'iterable'. */
  readonly console: ConsoleOutput;
}
