// GuestMemory (docs/abi.md §9.3): strict bounds against mem_size, 64-bit
// values as two 32-bit halves, exact messages, host-protection checks.
import { describe, expect, it } from 'vitest';
import { GuestError } from '../../monitor/errors.js';
import { GuestMemory } from '../../monitor/vm/memory.js';
import { type FieldType, BLOCK_ARGS, HALT_ARGS, LAYOUTS, NET_ARGS, POLL_ARGS, PUTS_ARGS, WALLTIME_ARGS } from '../../monitor/abi/layouts.js';

const SIZE = 1 << 20; // 1 MiB of guest memory
const U32 = 0xffffffff;

function fresh(size = SIZE, guestSize?: number): GuestMemory {
  return new GuestMemory(new ArrayBuffer(size), guestSize);
}

/** The GuestError message of a rejected region. */
function rejected(mem: GuestMemory, gLo: number, gHi: number, lLo: number, lHi: number, access: 'read' | 'write' = 'read'): string {
  let err: unknown;
  try {
    mem.check(gLo, gHi, lLo, lHi, access);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(GuestError);
  return (err as Error).message;
}

const msg = (gpa: bigint, sz: bigint) => `Invalid guest access: gpa=0x${gpa.toString(16)}, sz=${sz}`;

describe('bounds (strict: gpa + len < mem_size)', () => {
  const mem = fresh();

  it('size - 2, len 1 is fine (ends at size - 1)', () => {
    expect(mem.check(SIZE - 2, 0, 1, 0, 'read')).toBe(SIZE - 2);
    expect(mem.check(SIZE - 2, 0, 1, 0, 'write')).toBe(SIZE - 2);
  });

  it('size - 1, len 1 is rejected: the range ends exactly at mem_size', () => {
    expect(rejected(mem, SIZE - 1, 0, 1, 0)).toBe(msg(BigInt(SIZE - 1), 1n));
  });

  it('0, len size - 1 is fine; 0, len size is rejected', () => {
    expect(mem.check(0, 0, SIZE - 1, 0, 'read')).toBe(0);
    expect(rejected(mem, 0, 0, SIZE, 0)).toBe(msg(0n, BigInt(SIZE)));
  });

  it('gpa = size is rejected, even with length 0', () => {
    expect(rejected(mem, SIZE, 0, 0, 0)).toBe(msg(BigInt(SIZE), 0n));
    expect(rejected(mem, SIZE, 0, 1, 0)).toBe(msg(BigInt(SIZE), 1n));
  });

  it('zero length inside memory is fine, at gpa 0 and at size - 1', () => {
    expect(mem.check(0, 0, 0, 0, 'read')).toBe(0);
    expect(mem.check(SIZE - 1, 0, 0, 0, 'write')).toBe(SIZE - 1);
  });

  it('a high half in gpa or length is always out of range', () => {
    expect(rejected(mem, 0, 1, 0, 0)).toBe(msg(1n << 32n, 0n));
    expect(rejected(mem, 0x1000, 0, 0, 1)).toBe(msg(0x1000n, 1n << 32n));
    expect(rejected(mem, 0x1000, 0x80000000, 16, 0)).toBe(msg(0x8000000000001000n, 16n));
  });

  it('a length that wraps gpa + len past 2^64 is rejected and printed exactly', () => {
    // 0x1000 + (2^64 - 0x800) wraps to 0x800 in 64 bits.
    expect(rejected(mem, 0x1000, 0, 0xfffff800, U32)).toBe(msg(0x1000n, 18446744073709549568n));
    expect(rejected(mem, 1, 0, U32, U32)).toBe(msg(1n, 18446744073709551615n));
  });

  it('gpa = 2^64 - 1 is rejected and printed exactly', () => {
    expect(rejected(mem, U32, U32, 1, 0)).toBe(msg(18446744073709551615n, 1n));
    expect(rejected(mem, U32, U32, 1, 0)).toBe('Invalid guest access: gpa=0xffffffffffffffff, sz=1');
    expect(rejected(mem, U32, U32, U32, U32)).toBe('Invalid guest access: gpa=0xffffffffffffffff, sz=18446744073709551615');
  });

  it('32-bit values near 4 GiB do not wrap (no 32-bit arithmetic)', () => {
    expect(rejected(mem, U32, 0, 2, 0)).toBe(msg(0xffffffffn, 2n));
    expect(rejected(mem, 2, 0, U32, 0)).toBe(msg(2n, 0xffffffffn));
  });

  it('the check is against the guest size, not the allocation (net ring excluded)', () => {
    const ringed = fresh(4 << 20, 2 << 20);
    expect(ringed.allocSize).toBe(4 << 20);
    expect(ringed.check((2 << 20) - 2, 0, 1, 0, 'read')).toBe((2 << 20) - 2);
    expect(rejected(ringed, 2 << 20, 0, 1, 0)).toBe(msg(2n << 20n, 1n));
    ringed.guestSize = 4 << 20;
    expect(ringed.check(2 << 20, 0, 1, 0, 'read')).toBe(2 << 20);
  });

  it('4 GiB guests: the largest valid range ends at 2^32 - 1', () => {
    // Without allocating 4 GiB: only guestSize matters for the check.
    const big = new GuestMemory(new ArrayBuffer(16), 2 ** 32);
    expect(big.check(U32 - 1, 0, 1, 0, 'read')).toBe(U32 - 1);
    expect(rejected(big, U32, 0, 1, 0)).toBe(msg(0xffffffffn, 1n));
    expect(rejected(big, 0, 1, 0, 0)).toBe(msg(1n << 32n, 0n));
  });
});

describe('struct(): check and typed access in one call', () => {
  const put = (mem: GuestMemory, at: number, v: bigint) => new DataView(mem.bytes.buffer).setBigUint64(at, v, true);

  it('checks [gpa, gpa + size) the same way as any region', () => {
    const mem = fresh();
    expect(mem.struct(SIZE - 17, PUTS_ARGS, 'read').gpa).toBe(SIZE - 17);
    expect(() => mem.struct(SIZE - 16, PUTS_ARGS, 'read')).toThrowError(new GuestError(msg(BigInt(SIZE - 16), 16n)));
  });

  it('reads and writes fields at the offsets of the layout table, little-endian', () => {
    const mem = fresh();
    put(mem, 0x100, 7n); // handle
    put(mem, 0x108, 0x1122334455667788n); // offset
    const s = mem.struct(0x100, BLOCK_ARGS, 'write');
    expect(s.u64('offset')).toBe(0x1122334455667788n);
    expect(s.u64Halves('offset')).toEqual([0x55667788, 0x11223344]);
    expect(s.u64Halves('handle')).toEqual([7, 0]);
    s.setI32('ret', -2);
    expect(new DataView(mem.bytes.buffer).getInt32(0x100 + 32, true)).toBe(-2);
    s.setU64Halves('len', 0x30, 1);
    expect(s.u64('len')).toBe((1n << 32n) | 0x30n);
  });

  it('buffer() reads pointer and length fields as halves and checks the region they name', () => {
    const mem = fresh();
    put(mem, 0x100, 0x2000n);
    put(mem, 0x108, 0x30n);
    const view = mem.struct(0x100, PUTS_ARGS, 'read').buffer('data', 'len', 'read');
    expect([view.byteOffset, view.length]).toEqual([0x2000, 0x30]);
    put(mem, 0x108, 0xdeadbeef00000030n);
    expect(() => mem.struct(0x100, PUTS_ARGS, 'read').buffer('data', 'len', 'read')).toThrowError(new GuestError(msg(0x2000n, 0xdeadbeef00000030n)));
    put(mem, 0x100, 0xffffffffffffff00n);
    put(mem, 0x108, 0x200n);
    expect(() => mem.struct(0x100, PUTS_ARGS, 'read').buffer('data', 'len', 'write')).toThrowError(new GuestError(msg(0xffffffffffffff00n, 0x200n)));
  });

  it('region() checks a pointer given as halves (the HALT cookie)', () => {
    const mem = fresh();
    expect(mem.region(0x3000, 0, 512, 'read').byteOffset).toBe(0x3000);
    expect(() => mem.region(0x3000, 1, 512, 'read')).toThrowError(new GuestError(msg(0x100003000n, 512n)));
  });

  it('the layout table: every field lies inside its structure, and sizes match the ABI', () => {
    for (const l of LAYOUTS) {
      for (const [name, [offset, type]] of Object.entries(l.fields)) {
        const width = ({ u8: 1, u16: 2, u32: 4, i32: 4, u64: 8 } as const)[type as FieldType];
        expect(offset + width, `${l.name}.${name}`).toBeLessThanOrEqual(l.size);
      }
    }
    expect([WALLTIME_ARGS.size, PUTS_ARGS.size, POLL_ARGS.size, BLOCK_ARGS.size, NET_ARGS.size, HALT_ARGS.size]).toEqual([8, 16, 24, 40, 32, 16]);
  });
});

describe('host protections', () => {
  const mem = fresh();
  mem.protect({ start: 0x10000, end: 0x20000, readable: true, writable: false }); // read-only (text)
  mem.protect({ start: 0x30000, end: 0x31000, readable: false, writable: false }); // no access
  mem.protect({ start: 0x40000, end: 0x41000, readable: true, writable: true }); // read/write: not recorded

  it('a write into a read-only range is rejected, a read is allowed', () => {
    expect(rejected(mem, 0x10000, 0, 16, 0, 'write')).toBe(msg(0x10000n, 16n));
    expect(mem.check(0x10000, 0, 16, 0, 'read')).toBe(0x10000);
  });

  it('partial overlaps count at both edges', () => {
    expect(rejected(mem, 0xfff8, 0, 16, 0, 'write')).toBe(msg(0xfff8n, 16n));
    expect(rejected(mem, 0x1fff8, 0, 16, 0, 'write')).toBe(msg(0x1fff8n, 16n));
    expect(mem.check(0xfff0, 0, 16, 0, 'write')).toBe(0xfff0); // ends exactly at start
    expect(mem.check(0x20000, 0, 16, 0, 'write')).toBe(0x20000); // starts exactly at end
  });

  it('a read from a no-access range is rejected, and so is a write', () => {
    expect(rejected(mem, 0x30800, 0, 8, 0, 'read')).toBe(msg(0x30800n, 8n));
    expect(rejected(mem, 0x30800, 0, 8, 0, 'write')).toBe(msg(0x30800n, 8n));
    expect(rejected(mem, 0x2f000, 0, 0x2000, 0, 'read')).toBe(msg(0x2f000n, 0x2000n));
  });

  it('read/write ranges and unprotected memory are fine', () => {
    expect(mem.check(0x40000, 0, 0x1000, 0, 'write')).toBe(0x40000);
    expect(mem.check(0x50000, 0, 0x1000, 0, 'write')).toBe(0x50000);
  });

  it('zero-length regions inside protected ranges are not refused', () => {
    expect(mem.check(0x10000, 0, 0, 0, 'write')).toBe(0x10000);
    expect(mem.check(0x30000, 0, 0, 0, 'read')).toBe(0x30000);
  });
});
