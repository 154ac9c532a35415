// monitor/text.ts: lossless decoding of guest bytes and the escaping every
// diagnostic goes through (issue #9 item 6).
import { describe, expect, it } from 'vitest';
import { decodeLossless, printable } from '../../monitor/text.js';

const show = (bytes: number[]) => printable(decodeLossless(Uint8Array.from(bytes)));

describe('decodeLossless + printable', () => {
  it('keeps valid UTF-8 as text', () => {
    expect(show([0x63, 0x61, 0x66, 0xc3, 0xa9])).toBe('café');
    expect(show([0xf0, 0x9f, 0x98, 0x80])).toBe('😀');
  });

  it('shows every byte that is not UTF-8 as \\xNN, nothing re-encoded', () => {
    expect(show([0xff, 0xfe, 0x80])).toBe('\\xff\\xfe\\x80');
    expect(show([0x61, 0xc3])).toBe('a\\xc3'); // truncated sequence
    expect(show([0xc0, 0xaf])).toBe('\\xc0\\xaf'); // overlong '/'
    expect(show([0xed, 0xa0, 0x80])).toBe('\\xed\\xa0\\x80'); // an encoded UTF-16 surrogate
    expect(show([0xf4, 0x90, 0x80, 0x80])).toBe('\\xf4\\x90\\x80\\x80'); // above U+10FFFF
    expect(show([0xe2, 0x82, 0x41])).toBe('\\xe2\\x82A');
  });

  it('escapes C0, DEL and C1 controls the same way, as their UTF-8 bytes', () => {
    expect(show([0x0a, 0x1b, 0x7f])).toBe('\\x0a\\x1b\\x7f');
    expect(show([0xc2, 0x85, 0xc2, 0x9b])).toBe('\\xc2\\x85\\xc2\\x9b');
    expect(printable('\u0000\u009f')).toBe('\\x00\\xc2\\x9f');
  });

  it('escapes line separators, bidi controls and other format characters', () => {
    expect(printable('a\u2028b\u2029c')).toBe('a\\xe2\\x80\\xa8b\\xe2\\x80\\xa9c');
    expect(printable('\u202eevil\u2066')).toBe('\\xe2\\x80\\xaeevil\\xe2\\x81\\xa6');
    expect(printable('\ufeff')).toBe('\\xef\\xbb\\xbf');
  });

  it('shows a lone surrogate from a JavaScript string as \\uXXXX', () => {
    expect(printable('x\ud800y')).toBe('x\\ud800y');
  });

  it('leaves printable text alone (spaces, quotes, backslashes, letters of any script)', () => {
    const s = "it's a \\path/ — 日本語 Ω";
    expect(printable(s)).toBe(s);
  });
});
