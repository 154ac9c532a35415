// The framing layer of the GDB remote serial protocol (docs/abi.md §16.3): a
// streaming reader that turns the bytes of the connection into events
// (acknowledgements, Ctrl-C, packets whose checksum was checked), the
// encoder of outgoing packets, and the hex and escaped-binary encodings the
// packets carry. Pure code, no I/O: the socket thread (socket-worker.ts)
// feeds it, and test/unit/gdb-packet.test.ts fuzzes it.
//
// Payloads travel as "latin1" strings: one character per byte, so that a
// packet with any bytes in it (X carries binary data) survives unchanged.

/** The largest payload accepted, and what qSupported advertises as PacketSize. */
export const MAX_PAYLOAD = 0x4000;

/** What one piece of the input stream was. */
export type FrameEvent =
  | { kind: 'ack' }
  | { kind: 'nak' }
  /** A 0x03 byte between packets: the user pressed Ctrl-C. */
  | { kind: 'interrupt' }
  | { kind: 'packet'; payload: string }
  /** A packet that must be answered with a NAK: wrong checksum, too long, or not followed by two hex digits. */
  | { kind: 'bad'; reason: 'checksum'; payload: string; computed: number; sent: number }
  | { kind: 'bad'; reason: 'too-long' | 'syntax'; payload: string };

const DOLLAR = 0x24;
const HASH = 0x23;
const PLUS = 0x2b;
const MINUS = 0x2d;
const CTRL_C = 0x03;
const ESCAPE = 0x7d; // '}'
const ESCAPE_XOR = 0x20;

const enum State {
  Idle,
  Payload,
  Check1,
  Check2,
}

/** The value of one hex digit, or −1. */
export function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/**
 * Splits an input stream into FrameEvents. Bytes between packets other than
 * '+', '-' and 0x03 are ignored; a '$' inside a packet starts a new one (the
 * unfinished one is dropped); a payload longer than `maxPayload` is read to
 * its end and reported as 'too-long' without being kept. Memory use is
 * bounded by maxPayload whatever the input.
 */
export class PacketReader {
  private state = State.Idle;
  private readonly buf: Uint8Array;
  private len = 0;
  private overflow = false;
  private sum = 0;
  private check = 0;
  private checkOk = true;

  constructor(private readonly maxPayload = MAX_PAYLOAD) {
    this.buf = new Uint8Array(maxPayload);
  }

  /** Consumes bytes; returns the events they complete, in order. */
  feed(bytes: Uint8Array): FrameEvent[] {
    const out: FrameEvent[] = [];
    for (const c of bytes) {
      switch (this.state) {
        case State.Idle:
          if (c === DOLLAR) this.begin();
          else if (c === PLUS) out.push({ kind: 'ack' });
          else if (c === MINUS) out.push({ kind: 'nak' });
          else if (c === CTRL_C) out.push({ kind: 'interrupt' });
          break;
        case State.Payload:
          if (c === HASH) {
            this.state = State.Check1;
          } else if (c === DOLLAR) {
            this.begin();
          } else {
            this.sum = (this.sum + c) & 0xff;
            if (this.len < this.maxPayload) this.buf[this.len++] = c;
            else this.overflow = true;
          }
          break;
        case State.Check1:
        case State.Check2: {
          const d = hexDigit(c);
          if (d < 0) this.checkOk = false;
          this.check = (this.check << 4) | Math.max(d, 0);
          if (this.state === State.Check1) {
            this.state = State.Check2;
          } else {
            out.push(this.finish());
            this.state = State.Idle;
          }
          break;
        }
      }
    }
    return out;
  }

  /** True while a packet has begun and not ended. */
  get inPacket(): boolean {
    return this.state !== State.Idle;
  }

  private begin(): void {
    this.state = State.Payload;
    this.len = 0;
    this.overflow = false;
    this.sum = 0;
    this.check = 0;
    this.checkOk = true;
  }

  private finish(): FrameEvent {
    const payload = latin1(this.buf.subarray(0, this.len));
    if (this.overflow) return { kind: 'bad', reason: 'too-long', payload };
    if (!this.checkOk) return { kind: 'bad', reason: 'syntax', payload };
    if (this.check !== this.sum) return { kind: 'bad', reason: 'checksum', payload, computed: this.sum, sent: this.check };
    return { kind: 'packet', payload };
  }
}

/** Bytes as a latin1 string (one character per byte). */
export function latin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

/** A latin1 string as bytes; throws RangeError for a character above 0xFF. */
export function latin1Bytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new RangeError(`packet character U+${c.toString(16)} is not a byte`);
    out[i] = c;
  }
  return out;
}

/** The 8-bit sum of a payload, as two lowercase hex digits. */
export function checksum(payload: string): string {
  let sum = 0;
  for (let i = 0; i < payload.length; i++) sum = (sum + payload.charCodeAt(i)) & 0xff;
  return sum.toString(16).padStart(2, '0');
}

/**
 * `$payload#cc`. The payload must not contain '$' or '#' (binary data goes
 * through escapeBinary first); a reply that does is a bug of the stub.
 */
export function frame(payload: string): Uint8Array {
  if (/[$#]/.test(payload)) throw new RangeError('a packet payload may not contain $ or #');
  return latin1Bytes(`$${payload}#${checksum(payload)}`);
}

/** Binary data for a reply: '$', '#', '}' and '*' become '}' and the byte XOR 0x20. */
export function escapeBinary(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) {
    s += b === 0x24 || b === 0x23 || b === ESCAPE || b === 0x2a ? String.fromCharCode(ESCAPE, b ^ ESCAPE_XOR) : String.fromCharCode(b);
  }
  return s;
}

/** Binary data of a request (X): undoes the escapes; null if it ends inside one. */
export function unescapeBinary(s: string): Uint8Array | null {
  const out = new Uint8Array(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i) & 0xff;
    if (c === ESCAPE) {
      if (++i >= s.length) return null;
      c = (s.charCodeAt(i) & 0xff) ^ ESCAPE_XOR;
    }
    out[n++] = c;
  }
  return out.subarray(0, n);
}

/** Bytes as lowercase hex, two digits each. */
export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Hex digits (an even number of them) as bytes; null for anything else. */
export function fromHex(s: string): Uint8Array | null {
  if (s.length % 2 !== 0) return null;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = hexDigit(s.charCodeAt(2 * i));
    const lo = hexDigit(s.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) return null;
    out[i] = (hi << 4) | lo;
  }
  return out;
}

/** A number written in 1..maxDigits hex digits (addresses, lengths, register numbers); null otherwise. */
export function parseHex(s: string, maxDigits = 16): bigint | null {
  if (s.length === 0 || s.length > maxDigits) return null;
  let v = 0n;
  for (let i = 0; i < s.length; i++) {
    const d = hexDigit(s.charCodeAt(i));
    if (d < 0) return null;
    v = (v << 4n) | BigInt(d);
  }
  return v;
}

/** Two hex digits of a byte value (signal numbers, exit statuses). */
export function hex2(n: number): string {
  return (n & 0xff).toString(16).padStart(2, '0');
}
