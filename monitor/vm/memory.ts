// GuestMemory: every access the monitor makes to guest RAM goes through here,
// range-checked with overflow-safe arithmetic. Guest-supplied 64-bit values
// are read as two 32-bit halves: guest RAM is at most 4 GiB, so any value with
// a non-zero high half is out of range without ever building a BigInt or
// losing precision in a double. This is the only place guest addresses are
// narrowed to JavaScript numbers.
import { GuestError } from '../errors.js';

/** Host protection of a range of guest RAM (mirror of what mprotect was told). */
export interface Protection {
  start: number;
  end: number;
  readable: boolean;
  writable: boolean;
}

export class GuestMemory {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  /** Bytes registered with the hypervisor (alloc_size). */
  readonly allocSize: number;
  /** Bytes the guest owns (mem_size); hypercall buffers must lie below it. */
  guestSize: number;
  private readonly protections: Protection[] = [];

  constructor(readonly buffer: ArrayBuffer, guestSize = buffer.byteLength) {
    this.bytes = new Uint8Array(buffer);
    this.view = new DataView(buffer);
    this.allocSize = buffer.byteLength;
    this.guestSize = guestSize;
  }

  /** Records a host protection so the monitor never faults on it itself. */
  protect(p: Protection): void {
    if (!p.readable || !p.writable) this.protections.push(p);
  }

  /**
   * Checks a guest region given as 64-bit halves and returns its offset.
   * Valid only if gpa < mem_size and gpa + len < mem_size (strictly, as the
   * reference tender: §9.3). `write` also refuses host read-only segments,
   * `read` host no-access ones; without that, the monitor's own access would
   * fault on a page the guest's ELF asked to protect.
   */
  region(gpaLo: number, gpaHi: number, lenLo: number, lenHi: number, access: 'read' | 'write'): number {
    const size = this.guestSize;
    if (gpaHi !== 0 || lenHi !== 0 || gpaLo >= size || gpaLo + lenLo >= size) {
      throw invalidAccess(gpaLo, gpaHi, lenLo, lenHi);
    }
    if (this.protections.length !== 0 && lenLo !== 0 && this.blocked(gpaLo, gpaLo + lenLo, access)) {
      throw invalidAccess(gpaLo, gpaHi, lenLo, lenHi);
    }
    return gpaLo;
  }

  /** region() for a structure at a 32-bit GPA of a known size. */
  struct(gpa: number, size: number, access: 'read' | 'write'): number {
    return this.region(gpa, 0, size, 0, access);
  }

  /** Reads the u64 at off as [low, high] 32-bit halves. */
  u64Halves(off: number): [number, number] {
    return [this.view.getUint32(off, true), this.view.getUint32(off + 4, true)];
  }

  /** Reads a guest u64 and checks it names a region of len bytes. */
  regionAt(ptrOff: number, lenOff: number, access: 'read' | 'write'): { gpa: number; len: number } {
    const [gLo, gHi] = this.u64Halves(ptrOff);
    const [lLo, lHi] = this.u64Halves(lenOff);
    return { gpa: this.region(gLo, gHi, lLo, lHi, access), len: lLo };
  }

  private blocked(start: number, end: number, access: 'read' | 'write'): boolean {
    for (const p of this.protections) {
      if (start < p.end && end > p.start && !(access === 'write' ? p.writable : p.readable)) return true;
    }
    return false;
  }
}

function invalidAccess(gpaLo: number, gpaHi: number, lenLo: number, lenHi: number): GuestError {
  const gpa = (BigInt(gpaHi) << 32n) | BigInt(gpaLo);
  const len = (BigInt(lenHi) << 32n) | BigInt(lenLo);
  return new GuestError(`Invalid guest access: gpa=0x${gpa.toString(16)}, sz=${len}`);
}
