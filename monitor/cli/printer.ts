// Diagnostic lines on stderr, each prefixed with "prog: ". Unprintable
// characters are escaped (text.ts), so a kernel path or manifest name holding
// a newline cannot split a diagnostic or forge a line of its own.
import { writeSync } from 'node:fs';
import { printable } from '../text.js';

export interface Printer {
  /** Text as it is (usage, version). */
  raw(text: string): void;
  /** One diagnostic line. */
  line(message: string): void;
}

export function printer(prog: string): Printer {
  const out = (text: string) => writeSync(2, `${text}\n`);
  return { raw: out, line: (message) => out(printable(`${prog}: ${message}`)) };
}
