// The gdb stub's framing layer (modules/gdb/packet.ts, docs/abi.md §16.3):
// checksums, acknowledgements and Ctrl-C between packets, packets split
// across reads, NAK-worthy packets (bad checksum, too long, no hex digits),
// the escaped-binary and hex encodings; then a seeded fuzz of the reader
// with garbage, interleaved acks and random chunking.
import { describe, expect, it } from 'vitest';
import {
  checksum,
  escapeBinary,
  type FrameEvent,
  frame,
  fromHex,
  hex2,
  latin1,
  latin1Bytes,
  MAX_PAYLOAD,
  PacketReader,
  parseHex,
  toHex,
  unescapeBinary,
} from '../../modules/gdb/packet.js';
import { caseSeed, envCount, fuzzSeed, Prng } from '../helpers/prng.js';

const bytes = (s: string) => latin1Bytes(s);
const feed = (s: string, r = new PacketReader()) => r.feed(bytes(s));

describe('gdb packet framing', () => {
  it('frames a payload with the 8-bit sum in lowercase hex', () => {
    expect(latin1(frame('OK'))).toBe('$OK#9a');
    expect(latin1(frame(''))).toBe('$#00');
    expect(checksum('g')).toBe('67');
    expect(checksum('\xff\xff')).toBe('fe');
    expect(() => frame('a$b')).toThrow(RangeError);
    expect(() => frame('a#b')).toThrow(RangeError);
    expect(() => latin1Bytes('\u0100')).toThrow(RangeError);
  });

  it('reads acks, NAKs, Ctrl-C and packets; ignores other bytes between packets', () => {
    expect(feed('+-\x03x$g#67\x03')).toEqual([
      { kind: 'ack' }, { kind: 'nak' }, { kind: 'interrupt' }, { kind: 'packet', payload: 'g' }, { kind: 'interrupt' },
    ]);
  });

  it('accepts upper-case checksum digits and a packet split at every byte', () => {
    const r = new PacketReader();
    const s = `$${'qSupported:xmlRegisters=i386'}#${checksum('qSupported:xmlRegisters=i386').toUpperCase()}`;
    const events = [...s].flatMap((c) => r.feed(bytes(c)));
    expect(events).toEqual([{ kind: 'packet', payload: 'qSupported:xmlRegisters=i386' }]);
  });

  it('reports a wrong checksum with both sums, and a non-hex checksum as syntax', () => {
    expect(feed('$g#00')).toEqual([{ kind: 'bad', reason: 'checksum', payload: 'g', computed: 0x67, sent: 0 }]);
    expect(feed('$g#zz')).toEqual([{ kind: 'bad', reason: 'syntax', payload: 'g' }]);
  });

  it('a $ inside a packet starts it again; 0x03 inside one is data', () => {
    expect(feed(`$mab$g#67`)).toEqual([{ kind: 'packet', payload: 'g' }]);
    const p = 'X0,1:\x03';
    expect(feed(`$${p}#${checksum(p)}`)).toEqual([{ kind: 'packet', payload: p }]);
  });

  it('a payload longer than the limit is consumed and reported, keeping only the limit in memory', () => {
    const r = new PacketReader(16);
    const long = 'm'.repeat(100);
    const events = r.feed(bytes(`$${long}#${checksum(long)}$g#67`));
    expect(events[0]).toMatchObject({ kind: 'bad', reason: 'too-long' });
    expect((events[0] as { payload: string }).payload).toHaveLength(16);
    expect(events[1]).toEqual({ kind: 'packet', payload: 'g' });
    expect(MAX_PAYLOAD).toBe(0x4000);
  });

  it('escapes $ # } * in binary replies and undoes escapes in requests', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const esc = escapeBinary(all);
    expect(esc).not.toMatch(/[$#*]/);
    expect(Array.from(unescapeBinary(esc) ?? [])).toEqual(Array.from(all));
    expect(escapeBinary(bytes('a$b'))).toBe('a}\x04b');
    expect(unescapeBinary('abc}')).toBeNull();
  });

  it('hex: pairs of digits, numbers of 1..16 digits, nothing else', () => {
    expect(toHex(Uint8Array.of(0, 0xab, 0x10))).toBe('00ab10');
    expect(Array.from(fromHex('00AbfF') ?? [])).toEqual([0, 0xab, 0xff]);
    expect(fromHex('abc')).toBeNull();
    expect(fromHex('zz')).toBeNull();
    expect(parseHex('ffffffffffffffff')).toBe(0xffffffffffffffffn);
    expect(parseHex('1ffffffffffffffff')).toBeNull();
    expect(parseHex('')).toBeNull();
    expect(parseHex('-1')).toBeNull();
    expect(parseHex('12', 1)).toBeNull();
    expect(hex2(0x1ff)).toBe('ff');
  });
});

describe('gdb packet reader fuzz (seeded; FUZZ_SEED, FUZZ_CASES)', () => {
  const base = fuzzSeed(0x6db5eed);
  const cases = envCount('FUZZ_CASES', 300);

  /** A stream of known pieces: framed packets (good and bad), acks, Ctrl-C, garbage; and the events it must give. */
  function stream(rng: Prng): { input: Uint8Array; expected: FrameEvent[] } {
    const parts: Uint8Array[] = [];
    const expected: FrameEvent[] = [];
    const pieces = rng.range(1, 30);
    for (let i = 0; i < pieces; i++) {
      switch (rng.weighted([5, 2, 1, 1, 2, 1])) {
        case 0: { // a good packet of any bytes but $ and #
          const payload = latin1(rng.bytes(rng.range(0, 200)).map((b) => (b === 0x24 || b === 0x23 ? 0x41 : b)));
          parts.push(frame(payload));
          expected.push({ kind: 'packet', payload });
          break;
        }
        case 1: { // a bad checksum
          const payload = 'm' + rng.range(0, 1000).toString(16);
          const good = parseInt(checksum(payload), 16);
          const sent = (good + rng.range(1, 255)) & 0xff;
          parts.push(bytes(`$${payload}#${hex2(sent)}`));
          expected.push({ kind: 'bad', reason: 'checksum', payload, computed: good, sent });
          break;
        }
        case 2:
          parts.push(bytes('+'));
          expected.push({ kind: 'ack' });
          break;
        case 3:
          parts.push(bytes('-'));
          expected.push({ kind: 'nak' });
          break;
        case 4: { // garbage without any framing byte
          parts.push(rng.bytes(rng.range(1, 50)).map((b) => ([0x24, 0x23, 0x2b, 0x2d, 0x03].includes(b) ? 0x20 : b)));
          break;
        }
        case 5:
          parts.push(Uint8Array.of(0x03));
          expected.push({ kind: 'interrupt' });
          break;
      }
    }
    const input = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      input.set(p, at);
      at += p.length;
    }
    return { input, expected };
  }

  it('gives exactly the events of the pieces, however the stream is cut into reads', () => {
    for (let c = 0; c < cases; c++) {
      const seed = caseSeed(base, c);
      const rng = new Prng(seed);
      const { input, expected } = stream(rng);
      const r = new PacketReader();
      const got: FrameEvent[] = [];
      for (let at = 0; at < input.length; ) {
        const n = rng.range(1, 64);
        got.push(...r.feed(input.subarray(at, at + n)));
        at += n;
      }
      expect(r.inPacket, `seed ${seed}`).toBe(false);
      expect(got, `seed ${seed}`).toEqual(expected);
    }
  });

  it('never throws and never keeps more than the limit on random bytes', () => {
    for (let c = 0; c < cases; c++) {
      const seed = caseSeed(base ^ 0x5a5a, c);
      const rng = new Prng(seed);
      const r = new PacketReader(256);
      for (let k = 0; k < 20; k++) {
        // Random bytes with framing bytes made common.
        const chunk = rng.bytes(rng.range(1, 400)).map((b) => (b < 40 ? [0x24, 0x23, 0x2b, 0x2d, 0x03, 0x30, 0x61][b % 7] as number : b));
        for (const e of r.feed(chunk)) {
          if (e.kind === 'packet' || e.kind === 'bad') expect(e.payload.length, `seed ${seed}`).toBeLessThanOrEqual(256);
          if (e.kind === 'packet') expect(checksum(e.payload)).toMatch(/^[0-9a-f]{2}$/);
        }
      }
    }
  });
});
