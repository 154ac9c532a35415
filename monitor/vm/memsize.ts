// Guest memory sizing (docs/abi.md §6.1): --mem parsing with the reference's strtoll
// rules, 2 MiB granularity, the 4 GiB cap and the hidden net ring.
import { GUEST_PAGE, I64_MAX, MAX_ALLOC, MiB } from '../abi/constants.js';
import { ConfigError } from '../errors.js';

const I64_MIN = -(1n << 63n);

/**
 * Parses the value of --mem=N like strtoll (leading whitespace, sign, decimal
 * digits, trailing garbage ignored, saturating), then N × 2^20 wrapped to 64
 * bits. Returns the byte count, still to be adjusted by sizeMemory().
 */
export function parseMemArg(value: string): bigint {
  const m = /^[ \t\n\v\f\r]*([+-]?)([0-9]+)/.exec(value);
  if (!m || m[2] === undefined) throw new ConfigError('Malformed argument to --mem');
  let n = BigInt(m[2]) * (m[1] === '-' ? -1n : 1n);
  if (n > I64_MAX) n = I64_MAX;
  if (n < I64_MIN) n = I64_MIN;
  const bytes = BigInt.asUintN(64, n * BigInt(MiB));
  if (bytes === 0n) throw new ConfigError('Malformed argument to --mem');
  return bytes;
}

export interface MemorySize {
  /** Bytes the guest is told it owns (mem_size). */
  guestSize: number;
  /** Bytes allocated and registered (guest + reservations). */
  allocSize: number;
  /** Warning to print, if the request was adjusted. */
  warning?: string;
}

/** Rounds and caps a requested size; `reserve` bytes (the net ring) go on top. */
export function sizeMemory(requested: bigint, reserve = 0): MemorySize {
  const page = BigInt(GUEST_PAGE);
  let size = (requested / page) * page;
  if (size === 0n) size = page;
  const warning = size !== requested ? `adjusting memory to ${size} bytes` : undefined;
  if (size > BigInt(MAX_ALLOC)) {
    throw new ConfigError(`guest memory size ${size} bytes exceeds the max size ${MAX_ALLOC} bytes`, { warnings: warning ? [warning] : [] });
  }
  let alloc = size;
  if (reserve > 0) {
    alloc = ((size + BigInt(reserve) + page - 1n) / page) * page;
    if (alloc > BigInt(MAX_ALLOC)) alloc = BigInt(MAX_ALLOC);
  }
  const guest = reserve > 0 ? alloc - page * BigInt(Math.ceil(reserve / GUEST_PAGE)) : size;
  const out: MemorySize = { guestSize: Number(guest), allocSize: Number(alloc) };
  if (warning) out.warning = warning;
  return out;
}
