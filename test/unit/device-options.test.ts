// Option syntax of the block and net modules (docs/abi.md §2.3 rule 6, §11.1,
// §12.1) and the shared manifest matching, without KVM.
import { describe, expect, it } from 'vitest';
import { thrownBy } from '../helpers/thrown.js';
import { onlyDevice, requireDeclared, splitNamed } from '../../monitor/devices.js';
import { ConfigError, UsageError } from '../../monitor/errors.js';
import { DeviceType, Manifest } from '../../monitor/kernel/manifest.js';
import { parseBlockOption, parseSectorSize } from '../../modules/block/options.js';
import { parseFdRef, parseMac, parseNetOption } from '../../modules/net/options.js';

/** A manifest with these (name, type) devices after the reserved entry. */
function manifest(devices: [string, number][]): Manifest {
  const n = devices.length + 1;
  const desc = new Uint8Array(8 + 104 * n);
  const v = new DataView(desc.buffer);
  v.setUint32(0, 1, true);
  v.setUint32(4, n, true);
  v.setUint32(8 + 68, DeviceType.RESERVED_FIRST, true);
  devices.forEach(([name, type], i) => {
    const base = 8 + 104 * (i + 1);
    desc.set(new TextEncoder().encode(name), base);
    v.setUint32(base + 68, type, true);
  });
  return Manifest.parse(desc, 'k');
}

describe('splitNamed', () => {
  it('splits PREFIXNAME=VALUE, names of 1..67 alphanumerics', () => {
    expect(splitNamed('--block:disk0=/x=y', '--block:')).toEqual({ name: 'disk0', value: '/x=y' });
    expect(splitNamed('--block:a=', '--block:')).toEqual({ name: 'a', value: '' });
    expect(splitNamed(`--block:${'n'.repeat(67)}=v`, '--block:')?.name).toHaveLength(67);
  });
  it('null when the name does not parse, undefined for another prefix', () => {
    expect(splitNamed(`--block:${'n'.repeat(68)}=v`, '--block:')).toBeNull();
    expect(splitNamed('--block:my-disk=v', '--block:')).toBeNull();
    expect(splitNamed('--block:=v', '--block:')).toBeNull();
    expect(splitNamed('--block:disk', '--block:')).toBeNull();
    expect(splitNamed('--net:x=y', '--block:')).toBeUndefined();
  });
});

describe('block options', () => {
  it('--block:NAME=PATH takes PATH up to the first whitespace, 1..4096 characters', () => {
    expect(parseBlockOption('--block:storage=/tmp/d.img')).toEqual({ kind: 'attach', name: 'storage', path: '/tmp/d.img' });
    expect(parseBlockOption('--block:storage=/a b')).toEqual({ kind: 'attach', name: 'storage', path: '/a' });
    expect(parseBlockOption('--block:storage=')).toBeNull();
    expect(parseBlockOption(`--block:s=${'p'.repeat(4096)}`)).not.toBeNull();
    expect(parseBlockOption(`--block:s=${'p'.repeat(4097)}`)).toBeNull();
  });
  it('--block-sector-size and --disk', () => {
    expect(parseBlockOption('--block-sector-size:storage=4096')).toEqual({ kind: 'sector-size', name: 'storage', value: '4096' });
    expect(parseBlockOption('--disk=/d.img')).toEqual({ kind: 'disk', path: '/d.img' });
    expect(parseBlockOption('--disk=')).toBeNull();
    expect(parseBlockOption('--net:x=y')).toBeNull();
  });
  it('sector sizes: powers of two from 512 to 32768, nothing wraps', () => {
    for (const ok of [512, 1024, 4096, 32768]) expect(parseSectorSize(String(ok))).toBe(ok);
    for (const bad of ['256', '511', '513', '768', '65536', '66048', '4294967808', '0x200', '', '4096k', '-512']) {
      expect(parseSectorSize(bad)).toBeNull();
    }
  });
});

describe('net options', () => {
  it('--net:NAME=IFACE keeps at most 19 characters of IFACE', () => {
    expect(parseNetOption('--net:service=tap0')).toEqual({ kind: 'attach', name: 'service', iface: 'tap0' });
    expect(parseNetOption(`--net:service=${'x'.repeat(25)}`)).toEqual({ kind: 'attach', name: 'service', iface: 'x'.repeat(19) });
    expect(parseNetOption('--net:service=')).toBeNull();
    expect(parseNetOption('--net=tap1')).toEqual({ kind: 'only', iface: 'tap1' });
  });
  it('MACs: six groups of one or two hex digits', () => {
    expect(parseMac('02:0a:B0:1:ff:00')).toEqual(Uint8Array.from([2, 10, 0xb0, 1, 0xff, 0]));
    for (const bad of ['', '02:00:00:00:00', '02:00:00:00:00:00:00', '002:00:00:00:00:00', 'zz:00:00:00:00:00', '02-00-00-00-00-00', '02:00:00:00:00:']) {
      expect(parseMac(bad)).toBeNull();
      expect(parseNetOption(`--net-mac:service=${bad}`)).toBeNull();
    }
  });
  it('@FD: a decimal descriptor 0..2^31-1', () => {
    expect(parseFdRef('@3')).toBe(3);
    expect(parseFdRef('@2147483647')).toBe(2147483647);
    for (const bad of ['@', '@-1', '@abc', '@2147483648', '@3x', '3']) expect(parseFdRef(bad)).toBeNull();
  });
});

describe('matching options against the manifest', () => {
  const mft = manifest([['disk', DeviceType.BLOCK_BASIC], ['eth', DeviceType.NET_BASIC]]);
  it('an undeclared name (or one of another type) is an invalid option with a warning', () => {
    expect(() => requireDeclared(mft, 'disk', DeviceType.BLOCK_BASIC, '--block:disk=x')).not.toThrow();
    for (const [name, type] of [['nope', DeviceType.BLOCK_BASIC], ['eth', DeviceType.BLOCK_BASIC]] as const) {
      const e = thrownBy(() => requireDeclared(mft, name, type, `--block:${name}=x`), UsageError);
      expect(e.message).toBe(`Invalid option: \`--block:${name}=x'`);
      expect(e.warnings).toEqual([`Resource not declared in manifest: '${name}'`]);
    }
  });
  it('the only device of a type; none or several is a clear error', () => {
    expect(onlyDevice(mft, DeviceType.BLOCK_BASIC, '--disk', 'block device', '--block:NAME=PATH')).toBe('disk');
    const none = manifest([]);
    expect(() => onlyDevice(none, DeviceType.BLOCK_BASIC, '--disk', 'block device', '--block:NAME=PATH')).toThrow(
      new ConfigError('--disk: the unikernel declares no block device'),
    );
    const two = manifest([['a', DeviceType.BLOCK_BASIC], ['b', DeviceType.BLOCK_BASIC]]);
    expect(() => onlyDevice(two, DeviceType.BLOCK_BASIC, '--disk', 'block device', '--block:NAME=PATH')).toThrow(
      '--disk: the unikernel declares 2 block devices (a, b); use --block:NAME=PATH',
    );
  });
});
