// Guest memory [0, mem_size) as the core dump reads it, through the module's
// CheckedMemory only. Two things that interface does not hand out directly:
//
// * mem_size itself. It is found from the checks: region(gpa, 0, 0) is
//   accepted exactly when gpa < mem_size (§9.3), so a binary search over
//   32-bit addresses finds it (done once, at setup).
// * The last byte. §9.3 refuses a range that ends at mem_size, so a range
//   reaching the top is checked without its last byte and its view then
//   widened by that byte. That byte is guest memory (it lies below
//   mem_size), and it is readable by the monitor whenever the checked part
//   is: host protections are whole pages, and the checked part includes the
//   byte before it, on the same page (mem_size is page-aligned).
// A CheckedMemory method for the monitor's own whole-memory reads (mem_size,
// and views whose end may equal it) would make both workarounds unnecessary.
import { GuestError } from '../../monitor/errors.js';
import type { CheckedMemory } from '../../monitor/vm/memory.js';

/** The host page: the unit in which pages are tested and written (§15.6). */
export const HOST_PAGE = 4096;
/** Guest memory is at most 4 GiB: every guest address fits 32 bits. */
const ADDRESS_LIMIT = 2 ** 32;

export interface GuestImage {
  /** mem_size: bytes the guest owns (the net ring above it is not part of it). */
  readonly size: number;
  /**
   * A view of [gpa, gpa + len), valid until the guest runs again; null if
   * the monitor may not read it (part of it is a host no-access segment).
   * The range must lie within [0, size); one reaching size must be whole
   * pages.
   */
  view(gpa: number, len: number): Uint8Array | null;
}

/** region() for reading, or null where guest memory refuses the range. */
function readable(memory: CheckedMemory, gpa: number, len: number): Uint8Array | null {
  try {
    return memory.region(gpa, 0, len, 'read');
  } catch (e) {
    if (e instanceof GuestError) return null;
    throw e;
  }
}

/** mem_size, from the checks: the first address region() refuses. */
export function probeSize(memory: CheckedMemory): number {
  const inside = (gpa: number) => readable(memory, gpa, 0) !== null;
  if (!inside(0)) return 0;
  // Invariant: lo is inside, hi is not (ADDRESS_LIMIT never is).
  let lo = 0;
  let hi = ADDRESS_LIMIT;
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (inside(mid)) lo = mid;
    else hi = mid;
  }
  return hi;
}

export function guestImage(memory: CheckedMemory, size = probeSize(memory)): GuestImage {
  return {
    size,
    view(gpa, len) {
      if (!(Number.isSafeInteger(gpa) && Number.isSafeInteger(len) && gpa >= 0 && len > 0 && gpa + len <= size)) {
        throw new RangeError(`[${gpa}, ${gpa + len}) is not a range of guest memory [0, ${size})`);
      }
      if (gpa + len < size) return readable(memory, gpa, len);
      // Reaching the top: check all but the last byte, then widen (see above).
      if (size % HOST_PAGE !== 0 || gpa % HOST_PAGE !== 0 || len % HOST_PAGE !== 0) {
        throw new RangeError(`a range reaching the top of guest memory must be whole pages: [${gpa}, ${gpa + len})`);
      }
      const part = readable(memory, gpa, len - 1);
      if (part === null || part.byteOffset + len > part.buffer.byteLength) return null;
      return new Uint8Array(part.buffer, part.byteOffset, len);
    },
  };
}
