// Guest RAM as a debugger needs it (SetupContext.debugMemory): all of
// [0, mem_size), end included, and host-protected pages too — a software
// breakpoint is an int3 written into the guest's text, which the loader made
// read-only on the host (docs/abi.md §3.3). The protection is lifted from the
// pages an access touches for the length of the copy and put back at once,
// so the guest and every other path of the monitor see the ELF's
// protections as before. Only debuggers get this; hypercalls keep going
// through CheckedMemory's strict checks (§9.3).
export interface DebugMemory {
  /** A copy of [gpa, gpa + len), or null if any of it lies outside [0, mem_size). */
  read(gpa: number, len: number): Uint8Array | null;
  /** Writes bytes at gpa; false (nothing written) if any of it lies outside [0, mem_size). */
  write(gpa: number, bytes: Uint8Array): boolean;
}

const PAGE = 4096;

export interface DebugMemoryTarget {
  /** Guest RAM (the host mapping). */
  readonly bytes: Uint8Array;
  /** mem_size: what the guest owns. */
  readonly guestSize: number;
  /** Every host protection the loader applied, in its order (bits 1 read, 2 write; exec is never granted). */
  readonly applied: readonly { readonly start: number; readonly end: number; readonly prot: number }[];
  /** mprotect of [start, end) (page aligned), bits 1 read, 2 write. */
  protect(start: number, end: number, prot: number): void;
}

export function debugMemory(t: DebugMemoryTarget): DebugMemory {
  const inside = (gpa: number, len: number) =>
    Number.isSafeInteger(gpa) && Number.isSafeInteger(len) && gpa >= 0 && len >= 0 && gpa + len <= t.guestSize;

  /** Runs fn with [start, end) readable and writable on the host, then restores what was there. */
  function lifted<T>(start: number, end: number, fn: () => T): T {
    const lo = Math.floor(start / PAGE) * PAGE;
    const hi = Math.ceil(end / PAGE) * PAGE;
    const hit = t.applied.filter((p) => p.start < hi && p.end > lo);
    if (end === start || hit.every((p) => (p.prot & 3) === 3)) return fn();
    t.protect(lo, hi, 3);
    try {
      return fn();
    } finally {
      // Pages no segment protected were read-write; the rest get back what
      // the loader left, its protections replayed in order, clipped.
      for (const p of hit) t.protect(Math.max(p.start, lo), Math.min(p.end, hi), p.prot & 3);
    }
  }

  return {
    read(gpa, len) {
      if (!inside(gpa, len)) return null;
      return lifted(gpa, gpa + len, () => t.bytes.slice(gpa, gpa + len));
    },
    write(gpa, bytes) {
      if (!inside(gpa, bytes.length)) return false;
      lifted(gpa, gpa + bytes.length, () => t.bytes.set(bytes, gpa));
      return true;
    },
  };
}
