// `ukvm-ts elftool` and a link named solo5-elftool, spawned: the output of
// Solo5's solo5-elftool byte for byte for the test guests' notes and for
// manifest sources, one diagnostic line and status 1 for every bad file or
// source, usage and status 1 for bad usage. gen-manifest's C is compiled
// with gcc (against test/cli/fixtures/mft_abi.h) and must give the very
// note bytes the guest built from the same devices carries.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { usageText } from '../../monitor/elftool/main.js';
import { kernel, MFT_BLOCK_BASIC } from '../helpers/elf-builder.js';
import { BIN, guest, ROOT } from '../helpers/tender.js';

const dir = mkdtempSync(join(tmpdir(), 'ukvm-elftool-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const LINK = join(dir, 'solo5-elftool');
symlinkSync(BIN, LINK);
const VERSION = `${(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version} (ukvm-ts)`;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function tool(args: string[], opts: { link?: boolean; input?: string } = {}): Run {
  const [cmd, argv] = opts.link ? [LINK, args] : [BIN, ['elftool', ...args]];
  const r = spawnSync(cmd, argv, { encoding: 'latin1', timeout: 30_000, input: opts.input ?? '' });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function file(name: string, bytes: Uint8Array | string): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

const manifestJson = (devices: { name: string; type: string }[]) =>
  ['{', '  "type": "solo5.manifest",', '  "version": 1,', '  "devices": [',
    ...devices.map((d, i) => `    { "name": "${d.name}", "type": "${d.type}" }${i === devices.length - 1 ? '' : ','}`),
    '  ]', '}', ''].join('\n');

const ABI_HVT2 = '{\n  "type": "solo5.abi",\n  "target": "hvt",\n  "version": 2\n}\n';

describe('query-manifest and query-abi on the test guests', () => {
  it.each([
    ['devices_idle', [{ name: 'storage', type: 'BLOCK_BASIC' }, { name: 'service', type: 'NET_BASIC' }]],
    ['hello', []],
    ['net_two', [{ name: 'a', type: 'NET_BASIC' }, { name: 'b', type: 'NET_BASIC' }]],
    ['block_63', Array.from({ length: 63 }, (_, i) => ({ name: `d${i + 1}`, type: 'BLOCK_BASIC' }))],
  ])('query-manifest %s prints the manifest as solo5-elftool does', (name, devices) => {
    for (const link of [false, true]) {
      const r = tool(['query-manifest', guest(name)], { link });
      expect(r).toEqual({ status: 0, stdout: manifestJson(devices), stderr: '' });
    }
  });

  it('the output is JSON that says what the manifest declares', () => {
    const r = tool(['query-manifest', guest('devices_idle')]);
    expect(JSON.parse(r.stdout)).toEqual({
      type: 'solo5.manifest',
      version: 1,
      devices: [{ name: 'storage', type: 'BLOCK_BASIC' }, { name: 'service', type: 'NET_BASIC' }],
    });
  });

  it('query-abi prints target and version', () => {
    for (const link of [false, true]) expect(tool(['query-abi', guest('hello')], { link })).toEqual({ status: 0, stdout: ABI_HVT2, stderr: '' });
  });

  it('each query reads only its own note, as the reference does', () => {
    const spt = file('spt.hvt', kernel({ abi: { target: 2, version: 1 } }));
    expect(tool(['query-abi', spt]).stdout).toBe('{\n  "type": "solo5.abi",\n  "target": "spt",\n  "version": 1\n}\n');
    expect(tool(['query-abi', file('t99.hvt', kernel({ abi: { target: 99 } }))]).stdout).toContain('"target": "unknown"');
    const noAbi = file('noabi.hvt', kernel({ abi: null, manifest: { devices: [{ name: 'disk', type: MFT_BLOCK_BASIC }] } }));
    expect(tool(['query-manifest', noAbi]).stdout).toBe(manifestJson([{ name: 'disk', type: 'BLOCK_BASIC' }]));
  });
});

describe('bad files: one line on stderr, status 1, nothing on stdout', () => {
  const hello = readFileSync(guest('hello'));
  const cases: [string, () => string, string, (f: string) => string][] = [
    ['missing', () => join(dir, 'nope.hvt'), 'both', (f) => `${f}: Could not open: No such file or directory`],
    ['a directory', () => dir, 'both', (f) => `${f}: Could not open: Is a directory`],
    ['not ELF', () => file('text.hvt', 'just some text, and long enough to fill an ELF header of 64 bytes.\n'), 'both',
      (f) => `${f}: invalid executable: invalid or unsupported executable (elf header invalid while loading note)`],
    ['empty', () => file('empty.hvt', ''), 'both', (f) => `${f}: invalid executable: elf header does not match the expected size (0 != 64)`],
    ['truncated in its ELF header', () => file('cut40.hvt', hello.subarray(0, 40)), 'both',
      (f) => `${f}: invalid executable: elf header does not match the expected size (40 != 64)`],
    ['truncated in its program headers', () => file('cut100.hvt', hello.subarray(0, 100)), 'both',
      (f) => `${f}: invalid executable: program header does not match the expected size (36 != ${new DataView(hello.buffer, hello.byteOffset).getUint16(56, true) * 56} while loading note)`],
    ['without a manifest note', () => file('nomft.hvt', kernel({ manifest: null })), 'query-manifest', (f) => `${f}: No Solo5 manifest found in executable`],
    ['without an ABI note', () => file('noabi2.hvt', kernel({ abi: null })), 'query-abi', (f) => `${f}: No Solo5 ABI information found in executable`],
    ['with an ABI note too short for target and version', () => file('abi4.hvt', kernel({ abi: { desc: new Uint8Array(4) } })), 'query-abi',
      (f) => `${f}: No Solo5 ABI information found in executable`],
    ['with an invalid manifest (entry 0 not reserved)', () => file('bad0.hvt', kernel({ manifest: { entries: [{ name: '', type: 1 }] } })),
      'query-manifest', (f) => `${f}: Manifest validation failed`],
    ['with a manifest marked attached', () => file('att.hvt', kernel({ manifest: { devices: [{ name: 'x', attached: 1 }] } })),
      'query-manifest', (f) => `${f}: Manifest validation failed`],
    ['with a manifest of 65 entries', () => file('m65.hvt', kernel({ manifest: { devices: Array.from({ length: 64 }, (_, i) => ({ name: `d${i}` })) } })),
      'query-manifest', (f) => `${f}: invalid executable: phdr[5] note does not fall within valid size (6772 < 1 || 6772 > 6668)`],
    ['with a manifest note running past its segment', () => file('short.hvt', kernel({ manifestPhdr: { filesz: 30 } })),
      'query-manifest', (f) => `${f}: invalid executable: phdr[5] note does not fall within valid size (30 < 136)`],
  ];
  it.each(cases)('%s', (_what, make, which, message) => {
    const f = make();
    for (const command of which === 'both' ? ['query-manifest', 'query-abi'] : [which]) {
      expect(tool([command, f])).toEqual({ status: 1, stdout: '', stderr: `ukvm-ts elftool: ${message(f)}\n` });
      expect(tool([command, f], { link: true })).toEqual({ status: 1, stdout: '', stderr: `solo5-elftool: ${message(f)}\n` });
    }
  });

  it('a name with quotes or control bytes still prints as JSON', () => {
    const f = file('odd.hvt', kernel({ manifest: { devices: [{ name: 'a"b\\c\x1b[0m' }] } }));
    const r = tool(['query-manifest', f]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('{ "name": "a\\"b\\\\c\\u001b[0m", "type": "BLOCK_BASIC" }\n');
    expect(JSON.parse(r.stdout).devices[0].name).toBe('a"b\\c\x1b[0m');
  });
});

describe('usage', () => {
  const bad = [[], ['query-abi'], ['query-abi', 'a', 'b'], ['query-manifest'], ['gen-manifest', 'x'], ['gen-manifest', 'a', 'b', 'c'], ['dump', 'x'], ['--help']];
  it.each(bad)('%j → usage on stderr, status 1', (...args) => {
    expect(tool(args)).toEqual({ status: 1, stdout: '', stderr: `${usageText('ukvm-ts elftool', VERSION)}\n` });
    expect(tool(args, { link: true })).toEqual({ status: 1, stdout: '', stderr: `${usageText('solo5-elftool', VERSION)}\n` });
  });

  it('the usage text is the reference one', () => {
    expect(tool([], { link: true }).stderr).toBe(
      `usage: solo5-elftool COMMAND ...\nsolo5-elftool version ${VERSION}\n\nCOMMAND is:\n` +
        '    gen-manifest SOURCE OUTPUT:\n        Generate application manifest from SOURCE, writing to OUTPUT.\n' +
        '    query-abi BINARY:\n        Display the ABI target and version from BINARY.\n' +
        '    query-manifest BINARY:\n        Display the application manifest from BINARY.\n',
    );
  });

  it('a link named solo5-hvt has no elftool sub-command: "elftool" is a kernel file name there', () => {
    const hvt = join(dir, 'solo5-hvt');
    symlinkSync(BIN, hvt);
    const r = spawnSync(hvt, ['elftool', 'query-abi', guest('hello')], { encoding: 'utf8', cwd: dir, timeout: 30_000 });
    expect(r.stderr).toBe('solo5-hvt: elftool: Could not open: No such file or directory\n');
    expect(r.status).toBe(1);
  });
});

const C_FOR_IDLE =
  `/* Generated by solo5-elftool version ${VERSION}, do not edit */\n\n` +
  '#define MFT_ENTRIES 3\n#include "mft_abi.h"\n\nMFT1_NOTE_DECLARE_BEGIN\n{\n' +
  '  .version = MFT_VERSION, .entries = 3,\n  .e = {\n' +
  '    { .name = "", .type = MFT_RESERVED_FIRST },\n' +
  '    { .name = "storage", .type = MFT_DEV_BLOCK_BASIC },\n' +
  '    { .name = "service", .type = MFT_DEV_NET_BASIC },\n' +
  '  }\n}\nMFT1_NOTE_DECLARE_END\n';

/** The bytes of the PT_NOTE of an ELF file that starts with the manifest note. */
function manifestNoteOf(path: string): Buffer {
  const b = readFileSync(path);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const phoff = Number(v.getBigUint64(32, true));
  for (let i = 0; i < v.getUint16(56, true); i++) {
    const o = phoff + i * 56;
    const off = Number(v.getBigUint64(o + 8, true));
    if (v.getUint32(o, true) === 4 && v.getUint32(off + 8, true) === 0x3154464d) return b.subarray(off, off + Number(v.getBigUint64(o + 32, true)));
  }
  throw new Error(`${path}: no manifest note`);
}

describe('gen-manifest', () => {
  it('writes the C source of the note, byte for byte as solo5-elftool', () => {
    const src = file('idle.json', manifestJson([{ name: 'storage', type: 'BLOCK_BASIC' }, { name: 'service', type: 'NET_BASIC' }]));
    const out = join(dir, 'idle.c');
    expect(tool(['gen-manifest', src, out])).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(readFileSync(out, 'latin1')).toBe(C_FOR_IDLE);
    // "-" is standard input and output; the link answers the same.
    expect(tool(['gen-manifest', '-', '-'], { link: true, input: readFileSync(src, 'latin1') })).toEqual({ status: 0, stdout: C_FOR_IDLE, stderr: '' });
  });

  it('query-manifest → gen-manifest → gcc gives the same note as the guest carries', () => {
    for (const name of ['devices_idle', 'hello', 'block_63']) {
      const json = file(`${name}.json`, tool(['query-manifest', guest(name)]).stdout);
      const c = join(dir, `${name}.c`);
      expect(tool(['gen-manifest', json, c]).status).toBe(0);
      const obj = join(dir, `${name}.o`);
      const note = join(dir, `${name}.note`);
      const cc = spawnSync('gcc', ['-c', '-std=gnu11', '-Wall', '-Werror', '-I', join(ROOT, 'test', 'cli', 'fixtures'), '-o', obj, c], { encoding: 'utf8' });
      expect(cc.stderr).toBe('');
      expect(cc.status).toBe(0);
      const oc = spawnSync('objcopy', ['-O', 'binary', '--only-section=.note.solo5.manifest', obj, note], { encoding: 'utf8' });
      expect(oc.status).toBe(0);
      expect(readFileSync(note).equals(manifestNoteOf(guest(name)))).toBe(true);
    }
  });

  it('a device list at the limit (63) is accepted, one more is not', () => {
    const dev = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `d${i}`, type: 'NET_BASIC' }));
    expect(tool(['gen-manifest', file('63.json', manifestJson(dev(63))), join(dir, '63.c')]).status).toBe(0);
    const src = file('64.json', manifestJson(dev(64)));
    expect(tool(['gen-manifest', src, join(dir, '64.c')])).toEqual({ status: 1, stdout: '', stderr: `ukvm-ts elftool: ${src}:4: .devices[]: too many entries, maximum 63\n` });
  });

  const name68 = 'a'.repeat(68);
  const bad: [string, string, (src: string) => string][] = [
    ['empty', '', () => 'premature EOF in JSON data'],
    ['not JSON', 'hello', () => "unexpected 'h' on line 1 in JSON data"],
    ['cut short', '{\n  "type": "solo5.manifest",\n  "version": 1,\n  "devices": [\n', () => 'premature EOF in JSON data'],
    ['a bad escape', '{"type": "solo5\\q"}', () => "unknown escape code '\\q' on line 1 in JSON data"],
    ['a raw newline in a string', '{"type": "solo5\nmanifest"}', () => 'unescaped whitespace on line 2 in JSON data'],
    ['no colon', '{\n"type" "x"}', () => 'expected colon in object element on line 2 in JSON data'],
    ['an array', '[1, 2]', (s) => `${s}:1: (root): expected OBJECT, got ARRAY`],
    ['an unknown key', '{\n  "type": "solo5.manifest",\n  "colour": "blue"\n}', (s) => `${s}:3: (root): unknown key: colour`],
    ['no type', '{"version": 1, "devices": []}', (s) => `${s}:1: missing .type`],
    ['no version', '{"type": "solo5.manifest", "devices": []}', (s) => `${s}:1: missing .version`],
    ['no devices', '{"type": "solo5.manifest", "version": 1}', (s) => `${s}:1: missing .devices[]`],
    ['a wrong type', '{"type": "solo5.abi", "version": 1, "devices": []}', (s) => `${s}:1: .type: invalid value, expected "solo5.manifest"`],
    ['a string version', '{\n "type": "solo5.manifest",\n "version": "1"}', (s) => `${s}:3: .version: expected INTEGER, got STRING`],
    ['a real version', '{"version": 1.0}', (s) => `${s}:1: .version: expected INTEGER, got REAL`],
    ['version 2', '{"type": "solo5.manifest", "version": 2, "devices": []}', (s) => `${s}:1: .version: invalid version 2, expected 1`],
    ['devices not an array', '{"devices": {}}', (s) => `${s}:1: .devices: expected ARRAY, got OBJECT`],
    ['a device that is not an object', '{"devices": [\n  "disk"\n]}', (s) => `${s}:2: .devices[]: expected OBJECT, got STRING`],
    ['a device without a name', '{"type": "solo5.manifest", "version": 1, "devices": [\n {"type": "NET_BASIC"}]}', (s) => `${s}:2: .devices[...]: missing .name`],
    ['an empty name', '{"type": "solo5.manifest", "version": 1, "devices": [{"name": "", "type": "NET_BASIC"}]}', (s) => `${s}:1: .devices[...]: .name may not be empty`],
    ['a name of 68 characters', `{"type": "solo5.manifest", "version": 1, "devices": [{"name": "${name68}", "type": "NET_BASIC"}]}`, (s) => `${s}:1: .devices[...]: name too long`],
    ['a name with a dash', '{"type": "solo5.manifest", "version": 1, "devices": [{"name": "my-disk", "type": "BLOCK_BASIC"}]}', (s) => `${s}:1: .devices[...]: name is not alphanumeric`],
    ['a name with a non-ASCII letter', '{"type": "solo5.manifest", "version": 1, "devices": [{"name": "d\\u00e9", "type": "BLOCK_BASIC"}]}', (s) => `${s}:1: .devices[...]: name is not alphanumeric`],
    ['a number as name', '{"type": "solo5.manifest", "version": 1, "devices": [{"name": 7}]}', (s) => `${s}:1: .devices[...]: expected STRING, got INTEGER`],
    ['an unknown device key', '{"type": "solo5.manifest", "version": 1, "devices": [{"name": "a", "size": 7}]}', (s) => `${s}:1: .devices[...]: unknown key: size`],
    ['a device without a type', '{"type": "solo5.manifest", "version": 1, "devices": [{"name": "a"}]}', (s) => `${s}:1: .devices[...]: missing .type`],
    ['an unknown device type', '{"type": "solo5.manifest", "version": 1, "devices": [{"name": "a", "type": "NET_BASIC }, { evil"}]}',
      (s) => `${s}:1: .devices[...]: .type: invalid value, expected "BLOCK_BASIC" or "NET_BASIC"`],
  ];
  it.each(bad)('%s: one line, status 1, OUTPUT left as it was', (what, json, message) => {
    const src = file(`bad-${what.replace(/\W+/g, '_')}.json`, json);
    const out = file(`bad-${what.replace(/\W+/g, '_')}.c`, 'previous content\n');
    expect(tool(['gen-manifest', src, out])).toEqual({ status: 1, stdout: '', stderr: `ukvm-ts elftool: ${message(src)}\n` });
    expect(readFileSync(out, 'utf8')).toBe('previous content\n');
  });

  it('files that cannot be opened', () => {
    const src = file('ok.json', manifestJson([]));
    expect(tool(['gen-manifest', join(dir, 'none.json'), join(dir, 'x.c')], { link: true }).stderr).toBe(
      `solo5-elftool: ${join(dir, 'none.json')}: Could not open for reading: No such file or directory\n`,
    );
    expect(tool(['gen-manifest', src, join(dir, 'no', 'such', 'dir.c')]).stderr).toBe(
      `ukvm-ts elftool: ${join(dir, 'no', 'such', 'dir.c')}: Could not open for writing: No such file or directory\n`,
    );
    expect(tool(['gen-manifest', src, dir])).toEqual({ status: 1, stdout: '', stderr: `ukvm-ts elftool: ${dir}: Could not open for writing: Is a directory\n` });
    expect(tool(['gen-manifest', dir, join(dir, 'y.c')])).toEqual({ status: 1, stdout: '', stderr: `ukvm-ts elftool: ${dir}: Could not read: Is a directory\n` });
  });

  it('a longer OUTPUT is replaced, not overwritten in part', () => {
    const out = file('long.c', 'x'.repeat(5000));
    expect(tool(['gen-manifest', file('idle2.json', manifestJson([{ name: 'storage', type: 'BLOCK_BASIC' }, { name: 'service', type: 'NET_BASIC' }])), out]).status).toBe(0);
    expect(readFileSync(out, 'latin1')).toBe(C_FOR_IDLE);
  });
});
