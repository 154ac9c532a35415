// gdb's breakpoints and watchpoints (Z0–Z4, docs/abi.md §16.6) mapped onto
// what a vCPU offers: four debug-address registers shared by everything,
// and int3 patched into guest memory.
//
// Z0 (software breakpoint) takes a debug register while one is free and
// falls back to an int3 only when all four are taken: on hosts whose
// instruction emulator cannot deliver int3 to the monitor (PVM, see
// test/kvm/debug.test.ts) a debug register is the one kind that works, and
// it needs no write to the guest's text. Z1 (hardware breakpoint) and
// Z2–Z4 (watchpoints) need debug registers; a watchpoint that is not one
// aligned 1/2/4/8-byte piece takes one register per aligned piece, and a
// request that finds no register free moves a Z0 over to an int3 first if
// it can. x86 has no read-only watch, so Z3 watches reads and writes (gdb
// ignores a "read" hit that changed the value). Memory the stub reads
// through the table shows the original bytes under its int3s; writes that
// cover one keep the int3 and remember the new byte.
import type { HardwareBreakpoint } from '../../monitor/backend/debug.js';

export const INT3 = 0xcc;
export const DEBUG_REGISTERS = 4;

/** The Z packet types. */
export type BreakType = 0 | 1 | 2 | 3 | 4;

/** Guest memory as the stub sees it (gdb's addresses are guest physical = virtual). */
export interface GuestRam {
  /** Up to len bytes from addr (fewer where access ends); null if none can be read. A copy. */
  read(addr: bigint, len: number): Uint8Array | null;
  /** Writes every byte or none. */
  write(addr: bigint, bytes: Uint8Array): boolean;
}

/** Why a debug-register or int3 hit stopped the guest, as a stop reply says it. */
export type HitReason = { kind: 'swbreak' | 'hwbreak' } | { kind: 'watch' | 'rwatch' | 'awatch'; address: bigint };

interface Entry {
  type: BreakType;
  address: bigint;
  length: number;
  /** Debug-register pieces, or null for a planted int3. */
  pieces: HardwareBreakpoint[] | null;
  /** The guest's own byte under the int3. */
  saved: number;
}

const WATCH_KIND: Readonly<Record<2 | 3 | 4, HardwareBreakpoint['kind']>> = { 2: 'write', 3: 'access', 4: 'access' };
const HIT_KIND: Readonly<Record<2 | 3 | 4, 'watch' | 'rwatch' | 'awatch'>> = { 2: 'watch', 3: 'rwatch', 4: 'awatch' };
/** The longest watched region accepted (four 8-byte pieces). */
const MAX_WATCH = 32;

/** [address, length) cut into naturally aligned pieces of 8, 4, 2 or 1 bytes. */
export function alignedPieces(address: bigint, length: number): { address: bigint; length: 1 | 2 | 4 | 8 }[] {
  const out: { address: bigint; length: 1 | 2 | 4 | 8 }[] = [];
  let a = address;
  let left = BigInt(length);
  while (left > 0n) {
    let size = 8n;
    while (size > 1n && (a % size !== 0n || size > left)) size /= 2n;
    out.push({ address: a, length: Number(size) as 1 | 2 | 4 | 8 });
    a += size;
    left -= size;
  }
  return out;
}

export class BreakpointTable {
  private entries: Entry[] = [];

  constructor(
    private readonly ram: GuestRam,
    private readonly slots = DEBUG_REGISTERS,
  ) {}

  /** Inserts a breakpoint or watchpoint; false if it cannot be (gdb is told E01). One that exists already succeeds unchanged. */
  insert(type: BreakType, address: bigint, length: number): boolean {
    if (address < 0n || address >= 1n << 64n) return false;
    if (this.find(type, address, length) >= 0) return true;
    if (type === 0) {
      if (this.free() >= 1) return this.add({ type, address, length: 1, pieces: [{ address, kind: 'exec', length: 1 }], saved: 0 });
      return this.plant(address);
    }
    if (type === 1) return this.room(1) && this.add({ type, address, length: 1, pieces: [{ address, kind: 'exec', length: 1 }], saved: 0 });
    if (!(length >= 1 && length <= MAX_WATCH) || address + BigInt(length) > 1n << 64n) return false;
    const kind = WATCH_KIND[type];
    const pieces = alignedPieces(address, length).map((p): HardwareBreakpoint => ({ address: p.address, kind, length: p.length }));
    return this.room(pieces.length) && this.add({ type, address, length, pieces, saved: 0 });
  }

  /** Removes one; removing one that is not there succeeds (gdb may retry after an error). False only if an int3 could not be taken out. */
  remove(type: BreakType, address: bigint, length: number): boolean {
    const i = this.find(type, address, length);
    if (i < 0) return true;
    const e = this.entries[i] as Entry;
    if (!e.pieces && !this.ram.write(e.address, Uint8Array.of(e.saved))) return false;
    this.entries.splice(i, 1);
    return true;
  }

  /** Removes everything (detach); int3s that cannot be taken out are left (there is no one to tell). */
  clear(): void {
    for (const e of this.entries) if (!e.pieces) this.ram.write(e.address, Uint8Array.of(e.saved));
    this.entries = [];
  }

  /** The debug registers to load, slot n for the nth. */
  hardware(): HardwareBreakpoint[] {
    return this.entries.flatMap((e) => e.pieces ?? []);
  }

  /** True if some breakpoint is an int3 in guest memory. */
  hasInt3(): boolean {
    return this.entries.some((e) => !e.pieces);
  }

  /** True if an int3 of ours is at addr. */
  isInt3(address: bigint): boolean {
    return this.entries.some((e) => !e.pieces && e.address === address);
  }

  /** What the debug status register's B0–B3 bits (as set by the last hardware() load) name; undefined if none of ours. */
  hitBy(dr6: bigint): HitReason | undefined {
    let slot = 0;
    let exec: HitReason | undefined;
    for (const e of this.entries) {
      for (const _ of e.pieces ?? []) {
        if (slot < 4 && (dr6 >> BigInt(slot)) & 1n) {
          // A data hit says more than an execution hit that came with it.
          if (e.type >= 2) return { kind: HIT_KIND[e.type as 2 | 3 | 4], address: e.address };
          exec ??= { kind: e.type === 0 ? 'swbreak' : 'hwbreak' };
        }
        slot++;
      }
    }
    return exec;
  }

  /** Guest memory as gdb should see it: the original bytes under our int3s. */
  read(address: bigint, len: number): Uint8Array | null {
    const bytes = this.ram.read(address, len);
    if (!bytes) return null;
    for (const e of this.entries) {
      const at = e.address - address;
      if (!e.pieces && at >= 0n && at < BigInt(bytes.length)) bytes[Number(at)] = e.saved;
    }
    return bytes;
  }

  /** Writes guest memory for gdb; our int3s stay in place and take the new bytes as the ones they hide. */
  write(address: bigint, bytes: Uint8Array): boolean {
    const data = bytes.slice();
    const covered: [Entry, number][] = [];
    for (const e of this.entries) {
      const at = e.address - address;
      if (!e.pieces && at >= 0n && at < BigInt(data.length)) {
        covered.push([e, data[Number(at)] as number]);
        data[Number(at)] = INT3;
      }
    }
    if (!this.ram.write(address, data)) return false;
    for (const [e, b] of covered) e.saved = b;
    return true;
  }

  private find(type: BreakType, address: bigint, length: number): number {
    return this.entries.findIndex((e) => e.type === type && e.address === address && (type <= 1 || e.length === length));
  }

  private free(): number {
    return this.slots - this.hardware().length;
  }

  /** Makes n debug registers free, moving Z0s to int3s as needed; false if it cannot. */
  private room(n: number): boolean {
    for (const e of this.entries) {
      if (this.free() >= n) break;
      if (e.type !== 0 || !e.pieces) continue;
      const saved = this.ram.read(e.address, 1);
      if (!saved || saved.length !== 1 || !this.ram.write(e.address, Uint8Array.of(INT3))) continue;
      e.saved = saved[0] as number;
      e.pieces = null;
    }
    return this.free() >= n;
  }

  private plant(address: bigint): boolean {
    const saved = this.ram.read(address, 1);
    if (!saved || saved.length !== 1 || !this.ram.write(address, Uint8Array.of(INT3))) return false;
    return this.add({ type: 0, address, length: 1, pieces: null, saved: saved[0] as number });
  }

  private add(e: Entry): boolean {
    this.entries.push(e);
    return true;
  }
}
