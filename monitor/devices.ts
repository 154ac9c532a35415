// Helpers the device modules share: the NAME=VALUE option syntax (§2.3 rule
// 6), matching options against the manifest (§4.3), and library options
// given per device name.
import { ConfigError, invalidOption, OptionError } from './errors.js';
import type { Manifest } from './kernel/manifest.js';
import type { LibraryOption } from './module.js';

const NAME = /^([A-Za-z0-9]{1,67})=/;

/**
 * Splits "PREFIXNAME=VALUE". Returns undefined if arg does not start with
 * prefix, null if what follows is not a valid NAME and "=".
 */
export function splitNamed(arg: string, prefix: string): { name: string; value: string } | null | undefined {
  if (!arg.startsWith(prefix)) return undefined;
  const rest = arg.slice(prefix.length);
  const m = NAME.exec(rest);
  return m && m[1] !== undefined ? { name: m[1], value: rest.slice(m[0].length) } : null;
}

/** An option naming a device the manifest does not declare (with that type) is invalid. */
export function requireDeclared(mft: Manifest, name: string, type: number, arg: string): void {
  if (mft.find(name, type) < 0) throw invalidOption(arg, [`Resource not declared in manifest: '${name}'`]);
}

/**
 * The name of the manifest's only device of a type, for the ukvm-style
 * options (--disk, --net); a clear error if there are none or several.
 */
export function onlyDevice(mft: Manifest, type: number, option: string, noun: string, longForm: string): string {
  const all = mft.indicesOf(type);
  if (all.length === 1) return mft.name(all[0] as number);
  if (all.length === 0) throw new ConfigError(`${option}: the unikernel declares no ${noun}`);
  const list = all.map((i) => mft.name(i)).join(', ');
  throw new ConfigError(`${option}: the unikernel declares ${all.length} ${noun}s (${list}); use ${longForm}`);
}

/** Index of a configured device (library or CLI) in the manifest; ConfigError if undeclared. */
export function declaredIndex(mft: Manifest, name: string, type: number): number {
  const index = mft.find(name, type);
  if (index < 0) throw new ConfigError(`Resource not declared in manifest: '${name}'`);
  return index;
}

/**
 * A startUnikernel option holding one value per device name, e.g.
 * `block: { storage: 'disk.img' }`: checks it is a plain object whose every
 * value passes `item` (expect: what such a value is, for the message).
 */
export function perDeviceOption(name: string, item: (v: unknown) => boolean, expect: string): LibraryOption {
  return {
    name,
    check(value) {
      if (value === undefined) return;
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new OptionError(`${name} must be an object`);
      for (const [k, v] of Object.entries(value)) {
        if (!item(v)) throw new OptionError(`${name}.${k} must be ${expect}`);
      }
    },
  };
}

/** The entries of a per-device option as given (after perDeviceOption checked it). */
export function perDevice<T>(options: Readonly<Record<string, unknown>>, name: string): Record<string, T> {
  return { ...(options[name] as Record<string, T> | undefined) };
}
