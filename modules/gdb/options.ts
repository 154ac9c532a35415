// The gdb module's options: --gdb, --gdb-port=N, --gdb-host=ADDR on the
// command line (docs/abi.md §16.1; the host option is ours) and
// `gdb: { port?, host? }` for startUnikernel.
import { isIP } from 'node:net';
import { OptionError, UsageError } from '../../monitor/errors.js';
import type { LibraryOption } from '../../monitor/module.js';

export const DEFAULT_PORT = 1234;
/** Loopback by default: the reference listens on every interface, which lets anyone on the network drive the guest. */
export const DEFAULT_HOST = '127.0.0.1';

export interface GdbConfig {
  enabled: boolean;
  port: number;
  host: string;
}

const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** A port number 0..65535 written in decimal; null otherwise. */
export function parsePort(s: string): number | null {
  if (!/^[0-9]{1,5}$/.test(s)) return null;
  const n = Number(s);
  return n <= 65535 ? n : null;
}

/** An IPv4/IPv6 address or a host name. */
export function validHost(s: string): boolean {
  return isIP(s) !== 0 || HOST_NAME.test(s);
}

/** Applies one command-line option; false if it is not one of ours. */
export function handleGdbArg(arg: string, config: GdbConfig): boolean {
  if (arg === '--gdb') {
    config.enabled = true;
    return true;
  }
  if (arg.startsWith('--gdb-port=')) {
    const port = parsePort(arg.slice('--gdb-port='.length));
    if (port === null) throw new UsageError('Malformed argument to --gdb-port');
    config.port = port;
    return true;
  }
  if (arg.startsWith('--gdb-host=')) {
    const host = arg.slice('--gdb-host='.length);
    if (!validHost(host)) throw new UsageError('Malformed argument to --gdb-host');
    config.host = host;
    return true;
  }
  return false;
}

export const gdbLibraryOption: LibraryOption = {
  name: 'gdb',
  check(value) {
    if (value === undefined) return;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new OptionError('gdb must be an object: { port?, host? }');
    const o = value as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (k !== 'port' && k !== 'host') throw new OptionError(`unknown option: gdb.${k}`);
    }
    if (o['port'] !== undefined && !(Number.isInteger(o['port']) && (o['port'] as number) >= 0 && (o['port'] as number) <= 65535)) {
      throw new OptionError('gdb.port must be an integer in 0..65535');
    }
    if (o['host'] !== undefined && !(typeof o['host'] === 'string' && validHost(o['host']))) {
      throw new OptionError('gdb.host must be an IP address or a host name');
    }
  },
};

/** The configuration from startUnikernel's (checked) options; disabled without `gdb`. */
export function configFromOptions(options: Readonly<Record<string, unknown>>): GdbConfig {
  const g = options['gdb'] as { port?: number; host?: string } | undefined;
  return { enabled: g !== undefined, port: g?.port ?? DEFAULT_PORT, host: g?.host ?? DEFAULT_HOST };
}
