// Guest memory. Every access the monitor makes on a guest's behalf goes
// through CheckedMemory: struct() checks a structure's whole range and hands
// back typed accessors for its fields (check and access in one call, so no
// caller adds offsets to an unchecked base), and buffer() checks the region a
// structure's pointer and length fields name. Checks are overflow-safe:
// guest-supplied 64-bit values are read as two 32-bit halves, and guest RAM
// is at most 4 GiB, so a value with a non-zero high half is out of range
// without a BigInt or a lossy double. Modules only ever see CheckedMemory;
// the raw bytes are for the VM's own set-up code (loader, page tables, boot
// info), which writes what the monitor itself decides.
import type { FieldOf, Layout } from '../abi/layouts.js';
import { GuestError, HostError } from '../errors.js';

/** Host protection of a range of guest RAM (mirror of what mprotect was told). */
export interface Protection {
  start: number;
  end: number;
  readable: boolean;
  writable: boolean;
}

export type Access = 'read' | 'write';

/** One checked structure in guest memory. */
export interface GuestStruct<L extends Layout> {
  /** Where it is. */
  readonly gpa: number;
  u8(field: FieldOf<L, 'u8'>): number;
  u16(field: FieldOf<L, 'u16'>): number;
  u32(field: FieldOf<L, 'u32'>): number;
  i32(field: FieldOf<L, 'i32'>): number;
  u64(field: FieldOf<L, 'u64'>): bigint;
  /** A u64 as [low, high] 32-bit halves (no BigInt on hot paths). */
  u64Halves(field: FieldOf<L, 'u64'>): [number, number];
  setU32(field: FieldOf<L, 'u32'>, value: number): void;
  setI32(field: FieldOf<L, 'i32'>, value: number): void;
  setU64(field: FieldOf<L, 'u64'>, value: bigint): void;
  /** Stores a u64 from 32-bit halves. */
  setU64Halves(field: FieldOf<L, 'u64'>, lo: number, hi: number): void;
  /** The 8 bytes of a u64 field, for the host to fill in (the clock). */
  u64Bytes(field: FieldOf<L, 'u64'>): Uint8Array;
  /**
   * The guest buffer this structure points at: address in `ptr`, size in
   * `len`, checked for `access` (§9.3). A view of guest memory, valid until
   * the guest runs again.
   */
  buffer(ptr: FieldOf<L, 'u64'>, len: FieldOf<L, 'u64'>, access: Access): Uint8Array;
}

/**
 * Guest memory for a device's own thread (the net ring's consumer): the same
 * RAM, the same mem_size and host protections, so GuestMemory.fromShared()
 * on that thread checks exactly as this one does. Structured-clonable.
 */
export interface SharedGuestMemory {
  readonly buffer: SharedArrayBuffer;
  readonly guestSize: number;
  readonly protections: readonly Protection[];
}

/** What modules get: guest memory only through checks. */
export interface CheckedMemory {
  /** Checks [gpa, gpa + layout.size) for `access` and returns its fields. */
  struct<L extends Layout>(gpa: number, layout: L, access: Access): GuestStruct<L>;
  /** A guest region given as 64-bit halves, checked like buffer(); for a pointer found elsewhere (the HALT cookie). */
  region(gpaLo: number, gpaHi: number, len: number, access: Access): Uint8Array;
  /** The memory for another thread, checked there the same way; throws if the backend cannot share it. */
  share(): SharedGuestMemory;
}

export class GuestMemory implements CheckedMemory {
  /** The VM's set-up code only (loader, page tables, boot info): unchecked. */
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  /** Bytes registered with the hypervisor (alloc_size). */
  readonly allocSize: number;
  /** Bytes the guest owns (mem_size); hypercall buffers must lie below it. */
  guestSize: number;
  private readonly protections: Protection[] = [];
  /** Makes the SharedArrayBuffer over this RAM (compose.ts: the backend's Machine.share). */
  sharer?: () => SharedArrayBuffer;

  constructor(buffer: ArrayBufferLike, guestSize = buffer.byteLength) {
    this.bytes = new Uint8Array(buffer);
    this.view = new DataView(buffer);
    this.allocSize = buffer.byteLength;
    this.guestSize = guestSize;
  }

  /** Guest memory handed over by share() on another thread. */
  static fromShared(s: SharedGuestMemory): GuestMemory {
    const m = new GuestMemory(s.buffer, s.guestSize);
    for (const p of s.protections) m.protect(p);
    return m;
  }

  share(): SharedGuestMemory {
    if (!this.sharer) throw new HostError('guest memory cannot be shared with another thread here');
    return { buffer: this.sharer(), guestSize: this.guestSize, protections: this.protections.map((p) => ({ ...p })) };
  }

  /** Records a host protection so the monitor never faults on it itself. */
  protect(p: Protection): void {
    if (!p.readable || !p.writable) this.protections.push(p);
  }

  struct<L extends Layout>(gpa: number, layout: L, access: Access): GuestStruct<L> {
    return new StructAt(this, this.view, this.check(gpa, 0, layout.size, 0, access), layout);
  }

  region(gpaLo: number, gpaHi: number, len: number, access: Access): Uint8Array {
    const at = this.check(gpaLo, gpaHi, len, 0, access);
    return this.bytes.subarray(at, at + len);
  }

  /**
   * Checks a guest region given as 64-bit halves and returns its offset.
   * Valid only if gpa < mem_size and gpa + len < mem_size (strictly, as the
   * reference tender: §9.3). `write` also refuses host read-only segments,
   * `read` host no-access ones; without that, the monitor's own access would
   * fault on a page the guest's ELF asked to protect.
   */
  check(gpaLo: number, gpaHi: number, lenLo: number, lenHi: number, access: Access): number {
    const size = this.guestSize;
    if (gpaHi !== 0 || lenHi !== 0 || gpaLo >= size || gpaLo + lenLo >= size) {
      throw invalidAccess(gpaLo, gpaHi, lenLo, lenHi);
    }
    if (this.protections.length !== 0 && lenLo !== 0 && this.blocked(gpaLo, gpaLo + lenLo, access)) {
      throw invalidAccess(gpaLo, gpaHi, lenLo, lenHi);
    }
    return gpaLo;
  }

  private blocked(start: number, end: number, access: Access): boolean {
    for (const p of this.protections) {
      if (start < p.end && end > p.start && !(access === 'write' ? p.writable : p.readable)) return true;
    }
    return false;
  }
}

/** A structure at a checked offset. Field offsets come from its layout, never from the caller. */
class StructAt<L extends Layout> implements GuestStruct<L> {
  constructor(
    private readonly mem: GuestMemory,
    private readonly v: DataView,
    readonly gpa: number,
    private readonly layout: L,
  ) {}

  private at(field: string): number {
    return this.gpa + (this.layout.fields[field] as readonly [number, string])[0];
  }

  u8(f: FieldOf<L, 'u8'>): number {
    return this.v.getUint8(this.at(f));
  }
  u16(f: FieldOf<L, 'u16'>): number {
    return this.v.getUint16(this.at(f), true);
  }
  u32(f: FieldOf<L, 'u32'>): number {
    return this.v.getUint32(this.at(f), true);
  }
  i32(f: FieldOf<L, 'i32'>): number {
    return this.v.getInt32(this.at(f), true);
  }
  u64(f: FieldOf<L, 'u64'>): bigint {
    return this.v.getBigUint64(this.at(f), true);
  }
  u64Halves(f: FieldOf<L, 'u64'>): [number, number] {
    const at = this.at(f);
    return [this.v.getUint32(at, true), this.v.getUint32(at + 4, true)];
  }
  setU32(f: FieldOf<L, 'u32'>, value: number): void {
    this.v.setUint32(this.at(f), value, true);
  }
  setI32(f: FieldOf<L, 'i32'>, value: number): void {
    this.v.setInt32(this.at(f), value, true);
  }
  setU64(f: FieldOf<L, 'u64'>, value: bigint): void {
    this.v.setBigUint64(this.at(f), value, true);
  }
  setU64Halves(f: FieldOf<L, 'u64'>, lo: number, hi: number): void {
    const at = this.at(f);
    this.v.setUint32(at, lo >>> 0, true);
    this.v.setUint32(at + 4, hi >>> 0, true);
  }
  u64Bytes(f: FieldOf<L, 'u64'>): Uint8Array {
    const at = this.at(f);
    return this.mem.bytes.subarray(at, at + 8);
  }
  buffer(ptr: FieldOf<L, 'u64'>, len: FieldOf<L, 'u64'>, access: Access): Uint8Array {
    const [gLo, gHi] = this.u64Halves(ptr);
    const [lLo, lHi] = this.u64Halves(len);
    const at = this.mem.check(gLo, gHi, lLo, lHi, access);
    return this.mem.bytes.subarray(at, at + lLo);
  }
}

function invalidAccess(gpaLo: number, gpaHi: number, lenLo: number, lenHi: number): GuestError {
  const gpa = (BigInt(gpaHi) << 32n) | BigInt(gpaLo);
  const len = (BigInt(lenHi) << 32n) | BigInt(lenLo);
  return new GuestError(`Invalid guest access: gpa=0x${gpa.toString(16)}, sz=${len}`);
}
