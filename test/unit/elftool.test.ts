// The elftool's pure parts: the JSON reader with solo5-elftool's quirks and
// line numbers, the manifest source checks, the generated C, and the query
// output for notes built in memory (test/helpers/elf-builder.ts).
import { describe, expect, it } from 'vitest';
import { bufferSource } from '../../monitor/kernel/elf.js';
import { manifestC, readManifestSource } from '../../monitor/elftool/gen-manifest.js';
import { cString, parseJson, type JsonValue } from '../../monitor/elftool/json.js';
import { queryAbi, queryManifest } from '../../monitor/elftool/query.js';
import { kernel, MFT_NET_BASIC, MFT_RESERVED_FIRST, RESERVED_ENTRY } from '../helpers/elf-builder.js';

const parse = (s: string) => parseJson(Buffer.from(s, 'latin1'));
const failure = (s: string) => {
  try {
    parse(s);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error(`${JSON.stringify(s)} parsed`);
};

/** A value as a plain shape, for comparing. */
function shape(v: JsonValue): unknown {
  switch (v.kind) {
    case 'string':
      return v.bytes;
    case 'int':
      return v.value;
    case 'array':
      return v.items.map(shape);
    case 'object':
      return Object.fromEntries(v.members.map((m) => [m.name, shape(m.value)]));
    default:
      return v.kind;
  }
}

describe('the JSON reader', () => {
  it('reads ordinary JSON', () => {
    expect(shape(parse('{"a": [1, -2, "x", true, false, null, {}], "b": 1.5}'))).toEqual({ a: [1n, -2n, 'x', 'true', 'false', 'null', {}], b: 'real' });
  });

  it('keeps the reference quirks: optional and extra commas, text after the value, a wrong last letter', () => {
    expect(shape(parse('[1 2,,3,]'))).toEqual([1n, 2n, 3n]);
    expect(shape(parse('{"a":1 "b":2}'))).toEqual({ a: 1n, b: 2n });
    expect(shape(parse('{"a":1} and then anything ['))).toEqual({ a: 1n });
    expect(shape(parse('[tru!, nulL, falsX]'))).toEqual(['true', 'null', 'false']);
    expect(failure('[tXue]')).toBe('expected true on line 1 in JSON data');
    expect(failure('[,1]')).toBe('missing value before comma on line 1 in JSON data');
  });

  it('numbers: integers clamp to 64 bits; a fraction or exponent makes a real', () => {
    expect(shape(parse('[99999999999999999999, -99999999999999999999, -0]'))).toEqual([(1n << 63n) - 1n, -(1n << 63n), 0n]);
    expect(shape(parse('[1e5, 1., 2E-1]'))).toEqual(['real', 'real', 'real']);
    expect(failure('[01]')).toBe("unexpected '1' on line 1 in JSON data");
    expect(failure('[1x]')).toBe("unexpected 'x' on line 1 in JSON data");
  });

  it('strings are bytes; \\u escapes become UTF-8; NUL ends them for C', () => {
    const v = parse('"a\\u00e9\\u20ac\\n\\/\xff"');
    expect(v.kind === 'string' && v.bytes).toBe('a\xc3\xa9\xe2\x82\xac\n/\xff');
    const n = parse('"ab\\u0000cd"');
    expect(n.kind === 'string' && cString(n.bytes)).toBe('ab');
    expect(failure('"a\tb"')).toBe('unescaped whitespace on line 1 in JSON data');
    expect(failure('"a\x01b"')).toBe('unknown byte (0x01) on line 1 in JSON data');
    expect(failure('"\\u12g4"')).toBe('expected hex digit on line 1 in JSON data');
    expect(failure('"\\x"')).toBe("unknown escape code '\\x' on line 1 in JSON data");
  });

  it('a value remembers the line where the token before it ended', () => {
    const v = parse('{\n"a"\n:\n\n1,\n "b": [\n  2\n ]}');
    expect(v.line).toBe(1);
    if (v.kind !== 'object') throw new Error('not an object');
    expect(v.members.map((m) => m.value.line)).toEqual([3, 6]);
    const b = v.members[1]?.value;
    expect(b?.kind === 'array' && b.items[0]?.line).toBe(7);
  });

  it('an early end is reported without a line', () => {
    for (const s of ['', '   ', '{', '{"a', '{"a":', '["x', '[tr', '"\\u12']) expect(failure(s)).toBe('premature EOF in JSON data');
    // Except where the reference wants a colon: the end is then "not a colon".
    expect(failure('{"a"')).toBe('expected colon in object element on line 1 in JSON data');
  });
});

const SOURCE = '{"type": "solo5.manifest", "version": 1, "devices": [{"name": "disk0", "type": "BLOCK_BASIC"}, {"name": "net0", "type": "NET_BASIC"}]}';

describe('manifest sources', () => {
  it('gives the devices in order', () => {
    expect(readManifestSource(Buffer.from(SOURCE), 's.json')).toEqual([
      { name: 'disk0', type: 'BLOCK_BASIC' },
      { name: 'net0', type: 'NET_BASIC' },
    ]);
  });

  it('the first check that fails speaks, in the reference order', () => {
    const msg = (s: string) => {
      try {
        readManifestSource(Buffer.from(s), 'm.json');
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    // An unknown key is found while walking the members, before anything is missing.
    expect(msg('{"x": 1}')).toBe('m.json:1: (root): unknown key: x');
    // Missing keys come before wrong values.
    expect(msg('{"type": "other", "version": 1}')).toBe('m.json:1: missing .devices[]');
    // A later duplicate wins.
    expect(msg('{"type": "other", "version": 1, "devices": [], "type": "solo5.manifest"}')).toBe('accepted');
    // Device checks run device by device.
    expect(msg('{"type": "solo5.manifest", "version": 1, "devices": [{"name": "a-b"}, {"foo": 1}]}')).toBe('m.json:1: .devices[...]: name is not alphanumeric');
  });

  it('writes the C the reference writes', () => {
    expect(manifestC([{ name: 'disk0', type: 'BLOCK_BASIC' }], 'V')).toBe(
      '/* Generated by solo5-elftool version V, do not edit */\n\n#define MFT_ENTRIES 2\n#include "mft_abi.h"\n\n' +
        'MFT1_NOTE_DECLARE_BEGIN\n{\n  .version = MFT_VERSION, .entries = 2,\n  .e = {\n' +
        '    { .name = "", .type = MFT_RESERVED_FIRST },\n    { .name = "disk0", .type = MFT_DEV_BLOCK_BASIC },\n' +
        '  }\n}\nMFT1_NOTE_DECLARE_END\n',
    );
  });
});

describe('queries', () => {
  it('leaves out reserved entries wherever they are, with commas only between devices', () => {
    const k = kernel({ manifest: { entries: [RESERVED_ENTRY, { name: 'a', type: MFT_NET_BASIC }, { name: 'r', type: MFT_RESERVED_FIRST + 1 }, { name: 'b', type: 3 }, { name: 'z', type: MFT_RESERVED_FIRST }] } });
    expect(queryManifest(bufferSource(k), 'k').toString('latin1')).toBe(
      '{\n  "type": "solo5.manifest",\n  "version": 1,\n  "devices": [\n' +
        '    { "name": "a", "type": "NET_BASIC" },\n    { "name": "b", "type": "<undefined type>" }\n  ]\n}\n',
    );
  });

  it('passes UTF-8 names unchanged', () => {
    const k = kernel({ manifest: { devices: [{ name: '\xc3\xa9t\xc3\xa9' }] } });
    expect(queryManifest(bufferSource(k), 'k').toString('utf8')).toContain('{ "name": "été", "type": "BLOCK_BASIC" }');
  });

  it('query-abi prints any version it finds', () => {
    expect(queryAbi(bufferSource(kernel({ abi: { version: 7 } })), 'k').toString()).toBe('{\n  "type": "solo5.abi",\n  "target": "hvt",\n  "version": 7\n}\n');
  });
});
