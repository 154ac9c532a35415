// Manifest validation (docs/abi.md §4.2), lookup (§4.3) and the attached check (§4.4).
import { describe, expect, it } from 'vitest';
import { KernelError } from '../../monitor/errors.js';
import { DeviceType, Entry, Manifest, MFT_MAX_ENTRIES, typeName } from '../../monitor/kernel/manifest.js';
import { manifestBytes, type ManifestOptions, MFT_BLOCK_BASIC, MFT_NET_BASIC, MFT_RESERVED_FIRST, RESERVED_ENTRY } from '../helpers/elf-builder.js';

const K = 'k.hvt';
const INVALID = `${K}: Solo5 manifest is invalid`;

const parse = (o: ManifestOptions | Uint8Array) => Manifest.parse(o instanceof Uint8Array ? o : manifestBytes(o), K);

function invalid(o: ManifestOptions | Uint8Array): void {
  let err: unknown;
  try {
    parse(o);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(KernelError);
  expect((err as Error).message).toBe(INVALID);
}

const devices = (n: number, type = MFT_BLOCK_BASIC) => Array.from({ length: n }, (_, i) => ({ name: `dev${i}`, type }));

describe('validation (§4.2)', () => {
  it('accepts the minimal manifest (entry 0 only) and one with devices', () => {
    expect(parse({}).entries).toBe(1);
    const m = parse({ devices: [{ name: 'disk', type: MFT_BLOCK_BASIC }, { name: 'net0', type: MFT_NET_BASIC }] });
    expect(m.entries).toBe(3);
    expect(m.size).toBe(8 + 3 * 104);
  });

  it('1: size >= 8', () => {
    invalid(new Uint8Array(0));
    invalid(new Uint8Array(7));
    invalid(manifestBytes().subarray(0, 7));
  });

  it.each([0, 2, 0xffffffff])('2: version %i', (version) => {
    invalid({ version });
  });

  it('3: entries <= 64', () => {
    // 65 entries of real data: the count check fails even though the size matches.
    invalid({ devices: devices(64) });
    invalid({ count: 0xffffffff });
    // The size would match 8 + 104 * n only with 32-bit wrap-around; no wrapping here.
    invalid({ count: 0x80000000 });
  });

  it('4: size must be exactly 8 + 104 × entries', () => {
    invalid({ count: 2 }); // one entry written, two declared
    invalid({ devices: devices(1), count: 1 });
    invalid({ extra: 1 });
    invalid({ extra: 104 });
    invalid(manifestBytes().subarray(0, 8 + 103));
  });

  it('5: entries >= 1', () => {
    invalid({ entries: [] });
    invalid({ entries: [], extra: 104 }); // 0 declared, one entry of bytes
  });

  it('6: entry 0 must be RESERVED_FIRST with an empty name', () => {
    invalid({ entries: [{ name: '', type: MFT_BLOCK_BASIC }] });
    invalid({ entries: [{ name: '', type: 0 }] });
    invalid({ entries: [{ name: '', type: MFT_RESERVED_FIRST + 1 }] });
    invalid({ entries: [{ name: 'x', type: MFT_RESERVED_FIRST }] });
    // "Empty" means the first byte is 0; later bytes of the name field are not looked at.
    const b = manifestBytes();
    b[8 + 5] = 0x41;
    expect(parse(b).entries).toBe(1);
  });

  it('7: name byte 67 must be 0 in every entry', () => {
    invalid({ entries: [{ ...RESERVED_ENTRY, byte67: 1 }] });
    invalid({ devices: [{ name: 'a', type: MFT_BLOCK_BASIC }, { name: 'b', type: MFT_NET_BASIC, byte67: 0x41 }] });
    // 67 characters fill bytes 0..66: valid.
    const long = 'n'.repeat(67);
    const m = parse({ devices: [{ name: long, type: MFT_BLOCK_BASIC }] });
    expect(m.name(1)).toBe(long);
    // A 68-character name puts a character in byte 67: invalid.
    invalid({ devices: [{ name: 'n'.repeat(68), type: MFT_BLOCK_BASIC }] });
  });

  it('7: attached must be 0 in every entry', () => {
    invalid({ entries: [{ ...RESERVED_ENTRY, attached: 1 }] });
    invalid({ devices: [...devices(5), { name: 'late', type: MFT_NET_BASIC, attached: 0x80 }] });
  });

  it('does not validate other types, name characters or duplicate names', () => {
    const m = parse({
      devices: [
        { name: 'x', type: 0 },
        { name: 'x', type: 0 },
        { name: 'weird name!', type: 7 },
        { name: '', type: MFT_BLOCK_BASIC },
        { name: 'r', type: 0x7fffffff },
      ],
    });
    expect(m.entries).toBe(6);
  });

  it('the 64-entry limit: 64 entries are valid, 65 are not', () => {
    const m = parse({ devices: devices(MFT_MAX_ENTRIES - 1) });
    expect(m.entries).toBe(64);
    expect(m.size).toBe(8 + 64 * 104);
    expect(m.name(63)).toBe('dev62');
    invalid({ devices: devices(MFT_MAX_ENTRIES) });
  });

  it('takes a private copy of the descriptor', () => {
    const b = manifestBytes({ devices: [{ name: 'disk', type: MFT_BLOCK_BASIC }] });
    const m = parse(b);
    b.fill(0xff);
    expect(m.name(1)).toBe('disk');
    expect(m.type(1)).toBe(MFT_BLOCK_BASIC);
    expect(m.bytes).not.toBe(b);
  });
});

describe('find() (§4.3)', () => {
  const m = parse({
    devices: [
      { name: 'disk', type: MFT_BLOCK_BASIC },
      { name: 'net', type: MFT_NET_BASIC },
      { name: 'both', type: MFT_NET_BASIC },
      { name: 'both', type: MFT_BLOCK_BASIC },
      { name: 'disk', type: MFT_BLOCK_BASIC },
    ],
  });

  it('matches name and type, first match wins', () => {
    expect(m.find('disk', DeviceType.BLOCK_BASIC)).toBe(1);
    expect(m.find('net', DeviceType.NET_BASIC)).toBe(2);
    expect(m.find('both', DeviceType.NET_BASIC)).toBe(3);
    expect(m.find('both', DeviceType.BLOCK_BASIC)).toBe(4);
  });

  it('returns -1 for a wrong type, unknown name or prefix', () => {
    expect(m.find('disk', DeviceType.NET_BASIC)).toBe(-1);
    expect(m.find('net', DeviceType.BLOCK_BASIC)).toBe(-1);
    expect(m.find('nope', DeviceType.BLOCK_BASIC)).toBe(-1);
    expect(m.find('dis', DeviceType.BLOCK_BASIC)).toBe(-1);
    expect(m.find('disk0', DeviceType.BLOCK_BASIC)).toBe(-1);
  });

  it('indicesOf lists every entry of a type in order', () => {
    expect(m.indicesOf(DeviceType.BLOCK_BASIC)).toEqual([1, 4, 5]);
    expect(m.indicesOf(DeviceType.NET_BASIC)).toEqual([2, 3]);
    expect(m.indicesOf(DeviceType.RESERVED_FIRST)).toEqual([0]);
  });
});

describe('attach() and unattached() (§4.4, §4.5)', () => {
  it('lists every device entry not attached, skipping types >= RESERVED_FIRST', () => {
    const m = parse({
      devices: [
        { name: 'disk', type: MFT_BLOCK_BASIC },
        { name: 'net', type: MFT_NET_BASIC },
        { name: 'zero', type: 0 },
        { name: 'res', type: MFT_RESERVED_FIRST },
        { name: 'hi', type: 0xffffffff },
      ],
    });
    expect(m.unattached()).toEqual([1, 2, 3]);
    m.attach(2, 7);
    expect(m.unattached()).toEqual([1, 3]);
    expect(m.attached(2)).toBe(true);
    expect(m.attached(1)).toBe(false);
  });

  it('attach sets the attached byte and the host descriptor at offset 88', () => {
    const m = parse({ devices: [{ name: 'disk', type: MFT_BLOCK_BASIC }] });
    m.attach(1, 42);
    const base = 8 + 104;
    expect(m.bytes[base + Entry.attached]).toBe(1);
    expect(new DataView(m.bytes.buffer, m.bytes.byteOffset).getInt32(base + Entry.hostFd, true)).toBe(42);
    expect(m.entryView(1).getUint32(Entry.type, true)).toBe(MFT_BLOCK_BASIC);
    expect(m.unattached()).toEqual([]);
  });

  it('a manifest with only entry 0 has nothing to attach', () => {
    expect(parse({}).unattached()).toEqual([]);
  });
});

describe('typeName', () => {
  it.each([
    [1, 'BLOCK_BASIC'],
    [2, 'NET_BASIC'],
    [0x40000000, 'RESERVED_FIRST'],
    [0, '<undefined type>'],
    [3, '<undefined type>'],
  ])('%i → %s', (type, name) => {
    expect(typeName(type)).toBe(name);
  });
});
