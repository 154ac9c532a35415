// Command line (docs/abi.md §2), memory sizing (§6.1) and the guest command line (§8.3).
import { describe, expect, it } from 'vitest';
import { thrownBy } from '../helpers/thrown.js';
import { buildCmdline } from '../../monitor/vm/bootinfo.js';
import { firstPass, secondPass, usageText, versionText } from '../../monitor/cli/parse.js';
import { ConfigError, UsageError } from '../../monitor/errors.js';
import { Manifest } from '../../monitor/kernel/manifest.js';
import { parseMemArg, sizeMemory } from '../../monitor/vm/memsize.js';
import type { HostIo } from '../../monitor/backend/host.js';
import type { Module, ModuleDescriptor } from '../../monitor/module.js';
import { consoleModule } from '../../modules/console/index.js';
import { manifestBytes, MFT_BLOCK_BASIC } from '../helpers/elf-builder.js';

const MiB = 1n << 20n;
const GiB = 1n << 30n;
// Only the console module: option handling of block/net is theirs to test.
const descriptors: ModuleDescriptor[] = [consoleModule];
const modules: Module[] = [consoleModule.create({}, { host: {} as HostIo })];
const mft = Manifest.parse(manifestBytes(), 'k');

describe('firstPass (§2.3 rule 1)', () => {
  it('finds KERNEL after the leading options and passes the rest verbatim', () => {
    expect(firstPass(['--mem=64', 'k.hvt', 'a', '--solo5:quiet', '--mem=1', '--', '-x'], descriptors)).toEqual({
      kind: 'run',
      kernel: 'k.hvt',
      options: ['--mem=64'],
      guestArgs: ['a', '--solo5:quiet', '--mem=1', '--', '-x'],
    });
  });

  it('no options, no arguments', () => {
    expect(firstPass(['k.hvt'], descriptors)).toEqual({ kind: 'run', kernel: 'k.hvt', options: [], guestArgs: [] });
  });

  it('guest args that look like tender options are not interpreted after KERNEL', () => {
    expect(firstPass(['k', '--help', '--version', '--foo'], descriptors)).toEqual({
      kind: 'run',
      kernel: 'k',
      options: [],
      guestArgs: ['--help', '--version', '--foo'],
    });
  });

  it('arguments keep their spaces and empty strings', () => {
    expect(firstPass(['k', 'x y', '', '  '], descriptors)).toMatchObject({ guestArgs: ['x y', '', '  '] });
  });

  it.each([
    [['--help']],
    [['--help', 'k']],
    [['--mem=64', '--help', 'k']],
    [['--foo', '--bar', '--help']],
    [['--help', '--version']],
  ])('--help anywhere before KERNEL: %j', (argv) => {
    expect(firstPass(argv, descriptors)).toEqual({ kind: 'help' });
  });

  it.each([
    [['--version']],
    [['--version', 'k']],
    [['--mem=abc', '--version', 'k']],
    [['--foo', '--version', '--help']],
  ])('--version anywhere before KERNEL: %j', (argv) => {
    expect(firstPass(argv, descriptors)).toEqual({ kind: 'version' });
  });

  it('"--" ends the options; the next argument is KERNEL even if it starts with "-"', () => {
    expect(firstPass(['--', '-k.hvt', 'a'], descriptors)).toEqual({ kind: 'run', kernel: '-k.hvt', options: [], guestArgs: ['a'] });
    expect(firstPass(['--mem=8', '--', '--help'], descriptors)).toEqual({ kind: 'run', kernel: '--help', options: ['--mem=8'], guestArgs: [] });
    expect(firstPass(['--', '--'], descriptors)).toEqual({ kind: 'run', kernel: '--', options: [], guestArgs: [] });
    expect(firstPass(['--', 'k', '--', 'x'], descriptors)).toEqual({ kind: 'run', kernel: 'k', options: [], guestArgs: ['--', 'x'] });
  });

  it('--help after "--" is the kernel, not a request for help', () => {
    expect(firstPass(['--', '--version'], descriptors)).toMatchObject({ kind: 'run', kernel: '--version' });
  });

  it.each([[[]], [['--mem=64']], [['--']], [['--foo', '--']], [['-', '--bar']]])('missing KERNEL: %j', (argv) => {
    expect(firstPass(argv, descriptors)).toEqual({ kind: 'missing-kernel' });
  });

  it('a lone "-" is an option, not the kernel', () => {
    expect(firstPass(['-', 'k'], descriptors)).toEqual({ kind: 'run', kernel: 'k', options: ['-'], guestArgs: [] });
  });

  it('joins "--opt VALUE" for options a module declares as taking a separate value', () => {
    const m: ModuleDescriptor = { name: 'disk', serves: [], cli: { usage: [], separateValue: ['--disk'] }, library: [], create: () => ({ name: 'disk', setup() {} }) };
    expect(firstPass(['--disk', 'img', 'k'], [m])).toEqual({ kind: 'run', kernel: 'k', options: ['--disk=img'], guestArgs: [] });
  });
});

describe('secondPass (§2.3 rules 3–4)', () => {
  it('default memory is 512 MiB', () => {
    expect(secondPass([], mft, modules)).toBe(512n * MiB);
  });

  it('the last --mem wins', () => {
    expect(secondPass(['--mem=64', '--mem=128'], mft, modules)).toBe(128n * MiB);
    expect(secondPass(['--mem=128', '--mem=64'], mft, modules)).toBe(64n * MiB);
  });

  it.each(['--foo', '--x-exec-heap', '-', '--mem', '--mem64', '--MEM=64', '--solo5:quiet', '--help=1', '--version=2'])(
    'unknown option %s → UsageError "Invalid option"',
    (arg) => {
      const e = thrownBy(() => secondPass(['--mem=64', arg], mft, modules), UsageError);
      expect(e.message).toBe(`Invalid option: \`${arg}'`);
      expect(e.warnings).toEqual([]);
    },
  );

  it('options are handled in order: the first bad one is reported', () => {
    expect(thrownBy(() => secondPass(['--foo', '--mem=abc'], mft, modules), UsageError).message).toBe("Invalid option: `--foo'");
    expect(thrownBy(() => secondPass(['--mem=abc', '--foo'], mft, modules), ConfigError).message).toBe('Malformed argument to --mem');
    // A malformed --mem is fatal even if a later one is fine.
    expect(thrownBy(() => secondPass(['--mem=0', '--mem=64'], mft, modules), ConfigError).message).toBe('Malformed argument to --mem');
  });

  it('offers other options to the modules in order; the first taker consumes it', () => {
    const seen: string[] = [];
    const a: Module = { name: 'a', handleArg: (arg) => (seen.push(`a:${arg}`), arg === '--a'), setup() {} };
    const b: Module = { name: 'b', handleArg: (arg) => (seen.push(`b:${arg}`), arg.startsWith('--')), setup() {} };
    expect(secondPass(['--a', '--b', '--mem=2'], mft, [a, b])).toBe(2n * MiB);
    expect(seen).toEqual(['a:--a', 'a:--b', 'b:--b']);
  });

  it('module handlers see the manifest', () => {
    const m = Manifest.parse(manifestBytes({ devices: [{ name: 'disk', type: MFT_BLOCK_BASIC }] }), 'k');
    const block: Module = { name: 'block', handleArg: (arg, man) => arg === '--block:disk=x' && man.find('disk', 1) === 1, setup() {} };
    expect(() => secondPass(['--block:disk=x'], m, [block])).not.toThrow();
    expect(() => secondPass(['--block:disk=x'], mft, [block])).toThrowError(UsageError);
  });
});

describe('parseMemArg (§6.1 step 1, strtoll rules)', () => {
  it.each(['0', 'abc', '0x10', '', ' ', '-', '+', '-0', '00', 'x64', '\u00a064'])('"%s" → Malformed argument to --mem', (v) => {
    expect(thrownBy(() => parseMemArg(v), ConfigError).message).toBe('Malformed argument to --mem');
  });

  it.each([
    ['64', 64n * MiB],
    ['64MB', 64n * MiB],
    ['  \t64', 64n * MiB],
    ['\n\v\f\r64', 64n * MiB],
    ['+64', 64n * MiB],
    ['064', 64n * MiB],
    ['1', MiB],
    ['4096', 4096n * MiB],
    ['4097', 4097n * MiB],
    ['-1', (1n << 64n) - MiB],
    ['17592186044416', 0n], // 2^44 MiB = 2^64: wraps to 0 → malformed, see below
  ])('"%s" → %s bytes', (v, bytes) => {
    if (bytes === 0n) {
      expect(() => parseMemArg(v)).toThrowError('Malformed argument to --mem');
    } else {
      expect(parseMemArg(v)).toBe(bytes);
    }
  });

  it('saturates like strtoll before multiplying (64-bit wrap-around)', () => {
    // LLONG_MAX × 2^20 mod 2^64 = 2^64 − 2^20.
    expect(parseMemArg('99999999999999999999999')).toBe((1n << 64n) - MiB);
    // LLONG_MIN × 2^20 mod 2^64 = 0 → malformed.
    expect(() => parseMemArg('-99999999999999999999999')).toThrowError('Malformed argument to --mem');
  });
});

describe('sizeMemory (§6.1 steps 2–5)', () => {
  const size = (mib: string, reserve = 0) => sizeMemory(parseMemArg(mib), reserve);

  it('64 MiB stays as is, without a warning', () => {
    expect(size('64')).toEqual({ guestSize: 64 * 2 ** 20, allocSize: 64 * 2 ** 20 });
  });

  it('the default 512 MiB', () => {
    expect(sizeMemory(512n * MiB)).toEqual({ guestSize: 512 * 2 ** 20, allocSize: 512 * 2 ** 20 });
  });

  it('4096 is exactly the 4 GiB maximum', () => {
    expect(size('4096')).toEqual({ guestSize: 2 ** 32, allocSize: 2 ** 32 });
  });

  it('4097 is adjusted down to exactly 4 GiB, with the warning', () => {
    expect(size('4097')).toEqual({ guestSize: 2 ** 32, allocSize: 2 ** 32, warning: 'adjusting memory to 4294967296 bytes' });
  });

  it('1 is adjusted up to 2 MiB', () => {
    expect(size('1')).toEqual({ guestSize: 2 ** 21, allocSize: 2 ** 21, warning: 'adjusting memory to 2097152 bytes' });
  });

  it('63 is rounded down to 62 MiB', () => {
    expect(size('63')).toEqual({ guestSize: 65011712, allocSize: 65011712, warning: 'adjusting memory to 65011712 bytes' });
  });

  it('4098 exceeds the maximum (no adjustment warning: it is a multiple of 2 MiB)', () => {
    const e = thrownBy(() => size('4098'), ConfigError);
    expect(e.message).toBe('guest memory size 4297064448 bytes exceeds the max size 4294967296 bytes');
    expect(e.warnings).toEqual([]);
  });

  it('-1 wraps to a huge size: adjusted (warning) and then too big', () => {
    const e = thrownBy(() => size('-1'), ConfigError);
    expect(e.message).toBe('guest memory size 18446744073707454464 bytes exceeds the max size 4294967296 bytes');
    expect(e.warnings).toEqual(['adjusting memory to 18446744073707454464 bytes']);
  });

  it('sizes that are not whole MiB (library callers) are rounded to 2 MiB too', () => {
    expect(sizeMemory(3n * MiB + 5n)).toEqual({ guestSize: 2 ** 21, allocSize: 2 ** 21, warning: 'adjusting memory to 2097152 bytes' });
    expect(sizeMemory(1n)).toMatchObject({ guestSize: 2 ** 21, warning: 'adjusting memory to 2097152 bytes' });
  });

  describe('with a 2 MiB net ring reservation', () => {
    it.each([2 * 2 ** 20, 49280])('--mem=64 gives the guest 64 MiB and allocates 66 MiB (reserve %i)', (reserve) => {
      expect(size('64', reserve)).toEqual({ guestSize: 64 * 2 ** 20, allocSize: 66 * 2 ** 20 });
    });

    it.each([2 * 2 ** 20, 49280])('--mem=4096 gives the guest 4094 MiB and allocates 4 GiB (reserve %i)', (reserve) => {
      expect(size('4096', reserve)).toEqual({ guestSize: 4094 * 2 ** 20, allocSize: 2 ** 32 });
    });

    it('--mem=4095 is adjusted to 4094 MiB first, then fits with the ring', () => {
      expect(size('4095', 2 ** 21)).toEqual({ guestSize: 4094 * 2 ** 20, allocSize: 2 ** 32, warning: 'adjusting memory to 4292870144 bytes' });
    });

    it('--mem=1 with a ring: 2 MiB guest, 4 MiB allocated', () => {
      expect(size('1', 2 ** 21)).toMatchObject({ guestSize: 2 ** 21, allocSize: 2 ** 22 });
    });
  });

  it('the 4 GiB cap holds for every allocation', () => {
    expect(Number(4n * GiB)).toBe(2 ** 32);
    expect(size('4096', 2 ** 21).allocSize).toBeLessThanOrEqual(2 ** 32);
  });
});

describe('buildCmdline (§8.3)', () => {
  const text = (b: Uint8Array) => new TextDecoder().decode(b);

  it('joins arguments with single spaces, no trailing space', () => {
    expect(text(buildCmdline(['a', 'b c', '--solo5:quiet']))).toBe('a b c --solo5:quiet');
  });

  it('no arguments → empty string', () => {
    expect(buildCmdline([]).length).toBe(0);
  });

  it('empty arguments still get their separating spaces', () => {
    expect(text(buildCmdline(['', '']))).toBe(' ');
    expect(text(buildCmdline(['a', '', 'b']))).toBe('a  b');
  });

  it('8191 characters are accepted', () => {
    expect(buildCmdline(['x'.repeat(8191)]).length).toBe(8191);
    expect(buildCmdline(['x'.repeat(4095), 'y'.repeat(4095)]).length).toBe(8191);
  });

  it('8192 characters are too long', () => {
    const e = thrownBy(() => buildCmdline(['x'.repeat(8192)]), ConfigError);
    expect(e.message).toBe('Guest command line too long (max=8191 characters)');
    expect(() => buildCmdline(['x'.repeat(4096), 'y'.repeat(4095)])).toThrowError('Guest command line too long (max=8191 characters)');
  });

  it('the limit counts bytes (UTF-8), not UTF-16 units', () => {
    expect(buildCmdline(['é'.repeat(4095)]).length).toBe(8190);
    expect(() => buildCmdline(['é'.repeat(4096)])).toThrowError('Guest command line too long (max=8191 characters)');
  });
});

describe('usage and version text (§2.4, Behaviour 3)', () => {
  it('version: the program name, then exactly "ABI version 2"', () => {
    const lines = versionText('solo5-hvt', '0.1.0').split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain('solo5-hvt');
    expect(lines[0]).toContain('0.1.0');
    expect(lines[1]).toBe('ABI version 2');
  });

  it('usage names the program, KERNEL, ARGS, --mem=512, --help, --version and the modules', () => {
    const u = usageText('solo5-hvt', descriptors);
    expect(u.split('\n')[0]).toContain('solo5-hvt');
    for (const s of ['KERNEL', 'ARGS', '--mem=512', '--help', '--version', 'console']) expect(u).toContain(s);
  });
});
