// The JSON reader of `elftool gen-manifest`, written to accept exactly what
// Solo5's solo5-elftool accepts and to fail with the same words
// (docs/abi.md §4.6.1), because build systems run it on the same manifest
// files and its diagnostics are what users search for. Its quirks are kept
// on purpose: one value is read and anything after it ignored; commas
// between elements are optional, and a trailing or doubled one is
// accepted; a literal whose last letter is wrong (`tru!`) still reads as
// the literal; each value remembers the line where the token before it
// ended. Strings are bytes: each character of a JsonString is one byte
// (latin1), \uXXXX is stored as UTF-8, and a NUL ends the string as far as
// the C code was concerned (see cString).

import { decodeLossless } from '../text.js';

export type JsonValue =
  | { kind: 'null' | 'true' | 'false'; line: number }
  | { kind: 'string'; line: number; bytes: string }
  | { kind: 'int'; line: number; value: bigint }
  | { kind: 'real'; line: number }
  | { kind: 'array'; line: number; items: JsonValue[] }
  | { kind: 'object'; line: number; members: JsonMember[] };

export interface JsonMember {
  /** The member's name, bytes as in JsonString. */
  name: string;
  value: JsonValue;
}

/** A parse failure; the message is the whole diagnostic (no file name, as the reference). */
export class JsonError extends Error {}

/**
 * Bytes of the input as text for a diagnostic: UTF-8 where valid, any other
 * byte kept to be shown as \xNN (the printer escapes control characters too).
 */
export function shown(bytes: string): string {
  return decodeLossless(Buffer.from(bytes, 'latin1'));
}

/** The text C code saw of a string: up to its first NUL. */
export function cString(bytes: string): string {
  const nul = bytes.indexOf('\0');
  return nul < 0 ? bytes : bytes.slice(0, nul);
}

/** How the reference names each kind in "expected X, got Y". */
export function kindName(v: JsonValue): string {
  switch (v.kind) {
    case 'null':
      return 'NULL';
    case 'true':
    case 'false':
      return 'BOOLEAN';
    case 'string':
      return 'STRING';
    case 'array':
      return 'ARRAY';
    case 'object':
      return 'OBJECT';
    case 'int':
      return 'INTEGER';
    case 'real':
      return 'REAL';
  }
}

const EOF = -1;
const I64_MAX = (1n << 63n) - 1n;
const I64_MIN = -(1n << 63n);

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isHex = (c: number) => isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
/** C's isspace in the C locale: space, \t, \n, \v, \f, \r. */
const isCSpace = (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d);
const char = (c: number) => String.fromCharCode(c & 0xff);

class Reader {
  private pos = 0;
  line = 1;

  constructor(private readonly src: Uint8Array) {}

  get(): number {
    if (this.pos >= this.src.length) return EOF;
    const c = this.src[this.pos++] as number;
    if (c === 0x0a) this.line++;
    return c;
  }

  unget(c: number): void {
    if (c === EOF) return;
    this.pos--;
    if (c === 0x0a) this.line--;
  }

  /** Skips JSON whitespace and returns the next byte, consumed. */
  getSkip(): number {
    let c: number;
    do c = this.get();
    while (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d);
    return c;
  }

  /** Skips JSON whitespace and returns the next byte, left in place. */
  peekSkip(): number {
    const c = this.getSkip();
    this.unget(c);
    return c;
  }

  fail(message: string): never {
    throw new JsonError(`${message} on line ${this.line} in JSON data`);
  }
}

function earlyEof(): never {
  throw new JsonError('premature EOF in JSON data');
}

/** Reads the first JSON value of src (the rest is not looked at). */
export function parseJson(src: Uint8Array): JsonValue {
  return readValue(new Reader(src));
}

function readValue(r: Reader): JsonValue {
  const line = r.line; // before the whitespace, as the reference records it
  const c = r.peekSkip();
  switch (c) {
    case EOF:
      return earlyEof();
    case 0x66: // f
      literal(r, 'false');
      return { kind: 'false', line };
    case 0x6e: // n
      literal(r, 'null');
      return { kind: 'null', line };
    case 0x74: // t
      literal(r, 'true');
      return { kind: 'true', line };
    case 0x7b: // {
      return { kind: 'object', line, members: readSeries(r, 0x7d, () => readMember(r)) };
    case 0x5b: // [
      return { kind: 'array', line, items: readSeries(r, 0x5d, () => readValue(r)) };
    case 0x22: // "
      return { kind: 'string', line, bytes: readString(r) };
    default:
      if (c === 0x2d || isDigit(c)) return number(readNumber(r), line);
      return r.fail(`unexpected '${shown(char(c))}'`);
  }
}

/**
 * Compares the input with word byte by byte, as the reference does: it stops
 * at the first mismatch but has already stepped past that letter, so only a
 * mismatch before the last letter is an error.
 */
function literal(r: Reader, word: string): void {
  let i = 0;
  let c = 0;
  while (i < word.length && (c = r.get()) !== EOF) {
    if (word.charCodeAt(i++) !== c) break;
  }
  if (i === word.length) return;
  if (c === EOF) earlyEof();
  r.fail(`expected ${word}`);
}

function readSeries<T>(r: Reader, term: number, element: () => T): T[] {
  r.get(); // the [ or {
  const out: T[] = [];
  for (;;) {
    const c = r.peekSkip();
    if (c === EOF) earlyEof();
    if (c === 0x2c) {
      if (out.length === 0) r.fail('missing value before comma');
      r.get();
    } else if (c === term) {
      r.get();
      return out;
    } else {
      out.push(element());
    }
  }
}

function readMember(r: Reader): JsonMember {
  const name = readString(r);
  if (r.getSkip() !== 0x3a) r.fail('expected colon in object element');
  return { name, value: readValue(r) };
}

function readString(r: Reader): string {
  const open = r.get();
  if (open === EOF) earlyEof();
  if (open !== 0x22) r.fail('missing quote from string');
  let out = '';
  for (;;) {
    const c = r.get();
    if (c === EOF) earlyEof();
    if (c === 0x22) return out;
    if (c === 0x5c) {
      out += readEscape(r);
    } else if (c >= 0x20) {
      out += char(c); // bytes 0x7f and above too, unchanged
    } else if (isCSpace(c)) {
      r.fail('unescaped whitespace');
    } else {
      r.fail(`unknown byte (0x${c.toString(16).padStart(2, '0')})`);
    }
  }
}

const ESCAPES: Record<number, string> = { 0x22: '"', 0x2f: '/', 0x5c: '\\', 0x62: '\b', 0x66: '\f', 0x6e: '\n', 0x72: '\r', 0x74: '\t' };

function readEscape(r: Reader): string {
  const c = r.get();
  if (c === EOF) earlyEof();
  const simple = ESCAPES[c];
  if (simple !== undefined) return simple;
  if (c !== 0x75) r.fail(`unknown escape code '\\${shown(char(c))}'`);
  let x = 0;
  for (let i = 0; i < 4; i++) {
    const h = r.get();
    if (h === EOF) earlyEof();
    if (!isHex(h)) r.fail('expected hex digit');
    x = x * 16 + Number.parseInt(char(h), 16);
  }
  // Stored as UTF-8 bytes (surrogates too, each on its own, as the reference does).
  return Buffer.from(utf8Of(x)).toString('latin1');
}

function utf8Of(x: number): number[] {
  if (x <= 0x7f) return [x];
  if (x <= 0x7ff) return [0xc0 | (x >> 6), 0x80 | (x & 0x3f)];
  return [0xe0 | (x >> 12), 0x80 | ((x >> 6) & 0x3f), 0x80 | (x & 0x3f)];
}

/** The number's text, as the reference gathers it (it may end in "." or "e"). */
function readNumber(r: Reader): string {
  let text = '';
  let c = r.get();
  if (c === 0x2d) text += '-';
  else r.unget(c);
  c = r.get();
  if (c === 0x30) {
    text += '0';
    c = r.get();
  } else if (isDigit(c)) {
    while (isDigit(c)) {
      text += char(c);
      c = r.get();
    }
  } else {
    r.fail(`unexpected '${shown(char(c))}'`);
  }
  if (c === 0x2e) {
    do {
      text += char(c);
      c = r.get();
    } while (isDigit(c));
  }
  if (c === 0x65 || c === 0x45) {
    text += char(c);
    c = r.get();
    if (c === 0x2b || c === 0x2d) {
      text += char(c);
      c = r.get();
    }
    while (isDigit(c)) {
      text += char(c);
      c = r.get();
    }
  }
  if (c === 0x2c || c === 0x5d || c === 0x7d) r.unget(c);
  else if (c !== EOF && !isCSpace(c)) r.fail(`unexpected '${shown(char(c))}'`);
  return text;
}

/** An integer unless it has a fraction or exponent; clamped to 64 bits as strtoll does. */
function number(text: string, line: number): JsonValue {
  if (/[.eE]/.test(text)) return { kind: 'real', line };
  let value = BigInt(text);
  if (value > I64_MAX) value = I64_MAX;
  if (value < I64_MIN) value = I64_MIN;
  return { kind: 'int', line, value };
}
