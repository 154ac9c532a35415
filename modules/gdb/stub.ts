// The stub's side of the remote serial protocol while the guest is stopped
// (docs/abi.md §16.4, and what gdb 13 asks beyond it): one request payload
// in, the reply and what happens next out. Pure: the registers, guest
// memory and breakpoints come in through a Target, so unit tests drive it
// with a fake one (test/unit/gdb-stub.test.ts). Framing and acknowledgement
// are the socket thread's (packet.ts); resuming the vCPU is session.ts's.
//
// Every request is parsed strictly: a malformed one is answered E01, an
// unknown one with the empty reply gdb reads as "not supported"; nothing a
// debugger sends can make it throw.
import type { BreakpointTable, BreakType, HitReason } from './breakpoints.js';
import { escapeBinary, fromHex, hex2, MAX_PAYLOAD, parseHex, toHex, unescapeBinary } from './packet.js';
import { REGISTER_COUNT, RIP, REGISTERS_SIZE } from './registers.js';

/** The registers of the stopped vCPU, in the packets' numbering (registers.ts). */
export interface TargetRegisters {
  read(n: number): Uint8Array;
  readAll(): Uint8Array;
  /** False if that register cannot be written (x87/SSE) or the value does not fit. */
  write(n: number, bytes: Uint8Array): boolean;
}

export interface Target {
  readonly registers: TargetRegisters;
  readonly breakpoints: BreakpointTable;
}

/** gdb's signal numbers the stub reports. */
export const SIGNAL = { INT: 2, TRAP: 5, KILL: 9, SEGV: 11, TERM: 15 } as const;

/** Why the guest stopped. */
export interface Stop {
  signal: number;
  reason?: HitReason;
}

/** What to do after a request. */
export type Next = 'serve' | 'continue' | 'step' | 'detach' | 'kill';

export interface Outcome {
  /** The reply to send; none for a resume (the stop reply comes later) or kill. */
  reply?: string;
  /** Acknowledgements end once this reply is sent (QStartNoAckMode). */
  noAckAfter?: boolean;
  next: Next;
}

const OK: Outcome = { reply: 'OK', next: 'serve' };
const ERROR: Outcome = { reply: 'E01', next: 'serve' };
const EMPTY: Outcome = { reply: '', next: 'serve' };
const THREAD = '1';

/** Longest memory read answered: its hex fills at most the packet size gdb was told. */
export const MAX_READ = Math.floor((MAX_PAYLOAD - 8) / 2);

function stopReply(stop: Stop): string {
  let s = `T${hex2(stop.signal)}thread:${THREAD};`;
  const r = stop.reason;
  if (r && 'address' in r) s += `${r.kind}:${r.address.toString(16)};`;
  else if (r) s += `${r.kind}:;`;
  return s;
}

/** "ADDR,LEN" → numbers, or null. */
function addrLen(s: string): { addr: bigint; len: bigint } | null {
  const comma = s.indexOf(',');
  if (comma < 0) return null;
  const addr = parseHex(s.slice(0, comma));
  const len = parseHex(s.slice(comma + 1));
  return addr === null || len === null ? null : { addr, len };
}

export class GdbStub {
  private last: Stop = { signal: SIGNAL.TRAP };
  /** Requests whose handling threw (answered E01); a bug if ever non-zero (the fuzz tests check). */
  internalErrors = 0;

  constructor(
    private readonly target: Target,
    private readonly description: () => string,
  ) {}

  /** Records why the guest stopped; returns the stop reply packet ('?' repeats it). */
  stopped(stop: Stop): string {
    this.last = stop;
    return stopReply(stop);
  }

  /** Answers one request payload (latin1, as framed). */
  handle(p: string): Outcome {
    try {
      return this.dispatch(p);
    } catch {
      // A bug must not take the monitor down with the debugger's input.
      this.internalErrors++;
      return ERROR;
    }
  }

  private dispatch(p: string): Outcome {
    const rest = p.slice(1);
    switch (p[0]) {
      case '?': return { reply: stopReply(this.last), next: 'serve' };
      case 'g': return rest === '' ? { reply: toHex(this.target.registers.readAll()), next: 'serve' } : ERROR;
      case 'G': return this.writeAll(rest);
      case 'p': return this.readOne(rest);
      case 'P': return this.writeOne(rest);
      case 'm': return this.readMemory(rest);
      case 'M': return this.writeMemory(rest, false);
      case 'X': return this.writeMemory(rest, true);
      case 'c': case 's': return this.resume(p[0] === 's' ? 'step' : 'continue', rest);
      case 'C': case 'S': {
        // A signal to deliver: a unikernel has no signals; resume as c/s.
        const semi = rest.indexOf(';');
        if (parseHex(semi < 0 ? rest : rest.slice(0, semi), 2) === null) return ERROR;
        return this.resume(p[0] === 'S' ? 'step' : 'continue', semi < 0 ? '' : rest.slice(semi + 1));
      }
      case 'Z': case 'z': return this.breakpoint(p[0] === 'Z', rest);
      case 'k': return { next: 'kill' };
      case 'D': return { reply: 'OK', next: 'detach' };
      case 'H': return OK;
      case 'T': return OK; // the one thread is alive
      case 'q': return this.query(p);
      case 'Q': return p === 'QStartNoAckMode' ? { reply: 'OK', noAckAfter: true, next: 'serve' } : EMPTY;
      case 'v':
        if (p.startsWith('vKill')) return { reply: 'OK', next: 'kill' };
        return EMPTY; // vCont? unanswered: gdb uses c and s; vMustReplyEmpty wants exactly this
      default: return EMPTY;
    }
  }

  private query(p: string): Outcome {
    if (p === 'qSupported' || p.startsWith('qSupported:')) {
      return { reply: `PacketSize=${MAX_PAYLOAD.toString(16)};qXfer:features:read+;QStartNoAckMode+;swbreak+;hwbreak+`, next: 'serve' };
    }
    if (p.startsWith('qXfer:features:read:')) return this.features(p.slice('qXfer:features:read:'.length));
    switch (p) {
      case 'qAttached': return { reply: '1', next: 'serve' }; // quitting gdb detaches, as from a process it attached to
      case 'qC': return { reply: `QC${THREAD}`, next: 'serve' };
      case 'qfThreadInfo': return { reply: `m${THREAD}`, next: 'serve' };
      case 'qsThreadInfo': return { reply: 'l', next: 'serve' };
      case 'qSymbol::': return OK;
      default: return EMPTY;
    }
  }

  /** qXfer:features:read:ANNEX:OFFSET,LENGTH */
  private features(s: string): Outcome {
    const colon = s.indexOf(':');
    if (colon < 0) return ERROR;
    if (s.slice(0, colon) !== 'target.xml') return { reply: 'E00', next: 'serve' };
    const r = addrLen(s.slice(colon + 1));
    if (!r) return ERROR;
    const xml = new TextEncoder().encode(this.description());
    if (r.addr > BigInt(xml.length)) return ERROR;
    const start = Number(r.addr);
    // Escaping may double a byte: half the packet is always enough.
    const take = Math.min(Number(r.len > BigInt(MAX_READ) ? BigInt(MAX_READ) : r.len), xml.length - start);
    const part = xml.subarray(start, start + take);
    return { reply: `${start + take >= xml.length ? 'l' : 'm'}${escapeBinary(part)}`, next: 'serve' };
  }

  private readOne(s: string): Outcome {
    const n = parseHex(s, 4);
    if (n === null || n >= BigInt(REGISTER_COUNT)) return ERROR;
    return { reply: toHex(this.target.registers.read(Number(n))), next: 'serve' };
  }

  private writeOne(s: string): Outcome {
    const eq = s.indexOf('=');
    const n = eq < 0 ? null : parseHex(s.slice(0, eq), 4);
    const bytes = fromHex(s.slice(eq + 1));
    if (n === null || n >= BigInt(REGISTER_COUNT) || !bytes) return ERROR;
    return this.target.registers.write(Number(n), bytes) ? OK : ERROR;
  }

  /** G: every register gdb changed is written; the ones that cannot be (x87/SSE) must come back unchanged. */
  private writeAll(s: string): Outcome {
    const bytes = fromHex(s);
    if (!bytes || bytes.length !== REGISTERS_SIZE) return ERROR;
    const regs = this.target.registers;
    const now = regs.readAll();
    let at = 0;
    let ok = true;
    for (let n = 0; n < REGISTER_COUNT; n++) {
      const size = regs.read(n).length;
      const mine = bytes.subarray(at, at + size);
      if (mine.some((b, i) => b !== now[at + i]) && !regs.write(n, mine)) ok = false;
      at += size;
    }
    return ok ? OK : ERROR;
  }

  private readMemory(s: string): Outcome {
    const r = addrLen(s);
    if (!r) return ERROR;
    if (r.len === 0n) return { reply: '', next: 'serve' };
    const len = r.len > BigInt(MAX_READ) ? MAX_READ : Number(r.len);
    const bytes = this.target.breakpoints.read(r.addr, len);
    return bytes && bytes.length > 0 ? { reply: toHex(bytes), next: 'serve' } : ERROR;
  }

  private writeMemory(s: string, binary: boolean): Outcome {
    const colon = s.indexOf(':');
    const r = colon < 0 ? null : addrLen(s.slice(0, colon));
    if (!r) return ERROR;
    const data = s.slice(colon + 1);
    const bytes = binary ? unescapeBinary(data) : fromHex(data);
    if (!bytes || BigInt(bytes.length) !== r.len) return ERROR;
    if (bytes.length === 0) return OK; // gdb's probe for X
    return this.target.breakpoints.write(r.addr, bytes) ? OK : ERROR;
  }

  private resume(next: 'continue' | 'step', addr: string): Outcome {
    if (addr !== '') {
      const a = parseHex(addr);
      if (a === null) return ERROR;
      const le = new Uint8Array(8);
      new DataView(le.buffer).setBigUint64(0, a, true);
      if (!this.target.registers.write(RIP, le)) return ERROR;
    }
    return { next };
  }

  /** Z/z TYPE,ADDR,KIND[;conditions] — conditions are not evaluated here (gdb does it). */
  private breakpoint(insert: boolean, s: string): Outcome {
    const fields = s.split(';')[0]?.split(',') ?? [];
    if (fields.length !== 3) return ERROR;
    const type = parseHex(fields[0] as string, 1);
    const addr = parseHex(fields[1] as string);
    const kind = parseHex(fields[2] as string, 4);
    if (type === null || addr === null || kind === null) return ERROR;
    if (type > 4n) return EMPTY;
    const t = Number(type) as BreakType;
    const table = this.target.breakpoints;
    return (insert ? table.insert(t, addr, Number(kind)) : table.remove(t, addr, Number(kind))) ? OK : ERROR;
  }
}
