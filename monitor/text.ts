// Text that reaches a terminal or a log: one line, every character visible.
// Guest-chosen bytes (manifest names) and user-chosen strings (paths) must
// not be able to split a diagnostic, forge a line of their own, move the
// cursor or reorder text (C0 and C1 controls, bidi and other format
// characters, line and paragraph separators), nor be silently re-encoded.

/**
 * Invalid UTF-8 bytes are carried through strings as the lone surrogates
 * U+DC80–U+DCFF ("surrogateescape"), which printable() turns back into \xNN.
 */
const ESCAPE_BASE = 0xdc00;

/** Decodes UTF-8 without losing anything: each invalid byte b becomes U+DC00 + b. */
export function decodeLossless(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    // Decode piece by piece: valid sequences as text, every other byte escaped.
  }
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const len = sequenceLength(bytes, i);
    if (len === 0) {
      out += String.fromCharCode(ESCAPE_BASE + (bytes[i] as number));
      i++;
    } else {
      out += new TextDecoder('utf-8').decode(bytes.subarray(i, i + len));
      i += len;
    }
  }
  return out;
}

/** Length of the well-formed UTF-8 sequence at bytes[i] (RFC 3629), 0 if none. */
function sequenceLength(bytes: Uint8Array, i: number): number {
  const b0 = bytes[i] as number;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => {
    const b = bytes[i + k];
    return b !== undefined && b >= lo && b <= hi;
  };
  if (b0 < 0x80) return 1;
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if (b0 === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0; // no UTF-16 surrogates
  if (b0 >= 0xe1 && b0 <= 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (b0 === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (b0 >= 0xf1 && b0 <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b0 === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

/** Controls (C0, DEL, C1), format characters, separators, lone surrogates. */
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

const hex = (b: number) => `\\x${b.toString(16).padStart(2, '0')}`;

/**
 * The text with every unprintable character written as the \xNN escapes of
 * its UTF-8 bytes (C1 U+0085 → \xc2\x85), and every byte that was not UTF-8
 * (see decodeLossless) as \xNN of that byte.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    if (c.length === 1 && code >= ESCAPE_BASE + 0x80 && code <= ESCAPE_BASE + 0xff) return hex(code - ESCAPE_BASE);
    if (c.length === 1 && code >= 0xd800 && code <= 0xdfff) return `\\u${code.toString(16)}`; // another lone surrogate: no bytes to show
    return Array.from(Buffer.from(c, 'utf8'), hex).join('');
  });
}
