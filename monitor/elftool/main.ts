// `ukvm-ts elftool COMMAND …` and a link named solo5-elftool: Solo5's
// solo5-elftool in TypeScript, so inspecting or generating a manifest needs
// no C toolchain (docs/abi.md §4.6). Same commands, output, messages and
// exit statuses: 0 on success; 1 with one line on stderr for any failure;
// usage on stderr and 1 for a wrong command or argument count. It needs
// neither KVM nor the native addon.
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync, constants } from 'node:fs';
import { describeSystemError, TenderError } from '../errors.js';
import { printer } from '../cli/printer.js';
import type { ByteSource } from '../kernel/elf.js';
import { fdSource } from '../kernel/kernel.js';
import { manifestC, ManifestSourceError, readManifestSource } from './gen-manifest.js';
import { JsonError } from './json.js';
import { queryAbi, queryManifest } from './query.js';

/** The name a link must have to be this tool. */
export const ELFTOOL_PROGRAM = 'solo5-elftool';

/** A failure already worded as its diagnostic line. */
class ToolError extends Error {}

/**
 * "MESSAGE: strerror". The C library's text, not libuv's, where they differ
 * for what happens here (the tool runs without the addon, whose strerror the
 * tender uses).
 */
function withErrno(message: string, e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return `${message}: ${code === 'EISDIR' ? 'Is a directory' : describeSystemError(e)}`;
}

/** Throws EISDIR for a directory: open(2) takes one for reading, read(2) then fails. */
function refuseDirectory(fd: number): void {
  if (fstatSync(fd).isDirectory()) throw Object.assign(new Error('EISDIR'), { code: 'EISDIR' });
}

export function usageText(prog: string, version: string): string {
  return [
    `usage: ${prog} COMMAND ...`,
    `${prog} version ${version}`,
    '',
    'COMMAND is:',
    '    gen-manifest SOURCE OUTPUT:',
    '        Generate application manifest from SOURCE, writing to OUTPUT.',
    '    query-abi BINARY:',
    '        Display the ABI target and version from BINARY.',
    '    query-manifest BINARY:',
    '        Display the application manifest from BINARY.',
  ].join('\n');
}

/**
 * Runs the elftool for argv (the command and its arguments); returns the exit
 * status. `prog` names the program in usage and diagnostics; `version`
 * appears in the usage and the generated C.
 */
export function runElftool(argv: readonly string[], prog: string, version: string): number {
  const say = printer(prog);
  const [command, ...args] = argv;
  const usage = () => {
    say.raw(usageText(prog, version));
    return 1;
  };
  try {
    if (command === 'gen-manifest' && args.length === 2) return genManifest(args[0] as string, args[1] as string, version);
    if (command === 'query-manifest' && args.length === 1) return query(args[0] as string, queryManifest);
    if (command === 'query-abi' && args.length === 1) return query(args[0] as string, queryAbi);
    return usage();
  } catch (e) {
    if (e instanceof ToolError || e instanceof TenderError || e instanceof JsonError || e instanceof ManifestSourceError) {
      say.line(e.message);
    } else {
      say.line(`internal error: ${e instanceof Error ? e.message : String(e)}`);
    }
    return 1;
  }
}

function query(binary: string, what: (src: ByteSource, kernel: string) => Buffer): number {
  let fd: number;
  try {
    fd = openSync(binary, 'r');
  } catch (e) {
    throw new ToolError(withErrno(`${binary}: Could not open`, e));
  }
  let text: Buffer;
  try {
    try {
      refuseDirectory(fd);
    } catch (e) {
      throw new ToolError(withErrno(`${binary}: Could not open`, e));
    }
    text = what(fdSource(fd, binary), binary);
  } finally {
    closeSync(fd);
  }
  writeAll(1, text, 'standard output', false);
  return 0;
}

/**
 * Opens SOURCE, then OUTPUT (as the reference does, so an unwritable OUTPUT
 * is reported first), then checks everything before writing a byte: on any
 * failure OUTPUT keeps what it had (the reference has already truncated it
 * and may leave half a file). "-" is standard input or output.
 */
function genManifest(source: string, output: string, version: string): number {
  const inFd = source === '-' ? 0 : openOrFail(source, constants.O_RDONLY, 'Could not open for reading');
  let outFd = -1;
  try {
    outFd = output === '-' ? 1 : openOrFail(output, constants.O_WRONLY | constants.O_CREAT, 'Could not open for writing');
    const devices = readManifestSource(readAll(inFd, source), source);
    const text = Buffer.from(manifestC(devices, version), 'latin1');
    // Truncated only now that there is something to write; a FIFO or
    // terminal cannot be truncated and needs not be.
    const file = outFd !== 1 && fstatSync(outFd).isFile();
    if (file) ftruncateSync(outFd, 0);
    writeAll(outFd, text, output, file);
    return 0;
  } finally {
    if (outFd > 1) closeSync(outFd);
    if (inFd > 0) closeSync(inFd);
  }
}

function openOrFail(path: string, flags: number, what: string): number {
  try {
    return openSync(path, flags, 0o666);
  } catch (e) {
    throw new ToolError(withErrno(`${path}: ${what}`, e));
  }
}

function readAll(fd: number, name: string): Uint8Array {
  const parts: Buffer[] = [];
  for (;;) {
    const buf = Buffer.alloc(65536);
    let n: number;
    try {
      if (parts.length === 0) refuseDirectory(fd);
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      throw new ToolError(withErrno(`${name}: Could not read`, e));
    }
    if (n === 0) return Buffer.concat(parts);
    parts.push(buf.subarray(0, n));
  }
}

/** Writes every byte; a regular file from its start (it was opened without O_TRUNC). */
function writeAll(fd: number, bytes: Uint8Array, name: string, fromStart: boolean): void {
  let off = 0;
  try {
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off, fromStart ? off : null);
  } catch (e) {
    throw new ToolError(withErrno(`${name}: Could not write`, e));
  }
}
