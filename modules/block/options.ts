// Parsing of the block module's options (docs/abi.md §11.1, §2.3 rule 6):
// --block:NAME=PATH, --block-sector-size:NAME=N and the ukvm form --disk=PATH.
import { splitNamed } from '../../monitor/devices.js';

export type BlockOption =
  | { kind: 'attach'; name: string; path: string }
  | { kind: 'sector-size'; name: string; value: string }
  | { kind: 'disk'; path: string };

/** PATH is everything up to the first whitespace, 1..4096 characters (§11.1). */
function pathPart(rest: string): string | null {
  const path = /^\S*/.exec(rest)?.[0] ?? '';
  return path.length >= 1 && path.length <= 4096 ? path : null;
}

/** Returns the option, or null if it is not a (well-formed) block option. */
export function parseBlockOption(arg: string): BlockOption | null {
  if (arg.startsWith('--disk=')) {
    const path = pathPart(arg.slice('--disk='.length));
    return path === null ? null : { kind: 'disk', path };
  }
  const attach = splitNamed(arg, '--block:');
  if (attach !== undefined) {
    const path = attach ? pathPart(attach.value) : null;
    return attach && path ? { kind: 'attach', name: attach.name, path } : null;
  }
  const size = splitNamed(arg, '--block-sector-size:');
  if (size !== undefined) return size && { kind: 'sector-size', name: size.name, value: size.value };
  return null;
}

export const MIN_SECTOR = 512;
export const MAX_SECTOR = 32768;

/**
 * A sector size: decimal, a power of two from 512 to 32768. The reference
 * parses it as u16 and wraps 65536 and above; we reject those instead.
 */
export function parseSectorSize(value: string): number | null {
  if (!/^[0-9]{1,10}$/.test(value)) return null;
  const n = Number(value);
  return n >= MIN_SECTOR && n <= MAX_SECTOR && (n & (n - 1)) === 0 ? n : null;
}

/** The warning for a refused sector size (the reference's wording, then our bounds). */
export function badSectorSize(value: string | number): string {
  return `Block size must be a multiple of 2 greater than or equal ${MIN_SECTOR} and at most ${MAX_SECTOR}: ${value}`;
}
