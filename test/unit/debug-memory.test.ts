// The debugger's view of guest RAM (monitor/vm/debug-memory.ts): bounds
// [0, mem_size) with the end included, and host protections lifted around a
// copy and put back exactly as the loader left them.
import { describe, expect, it } from 'vitest';
import { debugMemory, type DebugMemoryTarget } from '../../monitor/vm/debug-memory.js';

const PAGE = 4096;

/** A fake target: 8 pages, a protection map per page, every mprotect recorded. */
function target(applied: DebugMemoryTarget['applied']) {
  const bytes = new Uint8Array(8 * PAGE);
  const prot = new Array<number>(8).fill(3);
  const calls: [number, number, number][] = [];
  const protect = (start: number, end: number, p: number) => {
    expect(start % PAGE).toBe(0);
    expect(end % PAGE).toBe(0);
    calls.push([start, end, p]);
    for (let i = start / PAGE; i < end / PAGE; i++) prot[i] = p;
  };
  for (const a of applied) protect(a.start, a.end, a.prot & 3);
  calls.length = 0;
  const t: DebugMemoryTarget = { bytes, guestSize: 7 * PAGE, applied, protect };
  return { t, bytes, prot, calls };
}

describe('debugMemory', () => {
  it('reads and writes [0, mem_size), end included; refuses anything past it, negative or unsafe', () => {
    const { t, bytes } = target([]);
    const m = debugMemory(t);
    expect(m.write(7 * PAGE - 2, Uint8Array.of(1, 2))).toBe(true);
    expect([...bytes.subarray(7 * PAGE - 2, 7 * PAGE)]).toEqual([1, 2]);
    expect([...(m.read(7 * PAGE - 2, 2) ?? [])]).toEqual([1, 2]);
    expect(m.read(7 * PAGE - 1, 2)).toBeNull(); // one byte past mem_size (the ring area beyond is not the guest's)
    expect(m.write(7 * PAGE, Uint8Array.of(9))).toBe(false);
    expect(bytes[7 * PAGE]).toBe(0);
    expect(m.read(-1, 1)).toBeNull();
    expect(m.read(2 ** 53, 1)).toBeNull();
    expect(m.read(0.5, 1)).toBeNull();
  });

  it('a read returns a copy, not a view the guest can change under it', () => {
    const { t, bytes } = target([]);
    const r = debugMemory(t).read(0, 4);
    bytes[0] = 7;
    expect(r?.[0]).toBe(0);
  });

  it('writes into read-only text: the touched pages are made writable for the copy, then get back what the loader set', () => {
    const { t, bytes, prot, calls } = target([{ start: PAGE, end: 3 * PAGE, prot: 5 /* r-x: read on the host */ }, { start: 3 * PAGE, end: 4 * PAGE, prot: 1 }]);
    const m = debugMemory(t);
    // An int3 across the boundary of pages 2 and 3 (two segments).
    expect(m.write(3 * PAGE - 1, Uint8Array.of(0xcc, 0xcc))).toBe(true);
    expect([bytes[3 * PAGE - 1], bytes[3 * PAGE]]).toEqual([0xcc, 0xcc]);
    expect(calls[0]).toEqual([2 * PAGE, 4 * PAGE, 3]);
    expect(prot).toEqual([3, 1, 1, 1, 3, 3, 3, 3]);
  });

  it('leaves unprotected pages alone (no mprotect) and replays overlapping protections in the loader\'s order', () => {
    const plain = target([{ start: 0, end: PAGE, prot: 3 }]);
    expect(debugMemory(plain.t).write(10, Uint8Array.of(1))).toBe(true);
    expect(plain.calls).toEqual([]);
    // Two protections of one page: the later one is what the page has.
    const twice = target([{ start: 0, end: 2 * PAGE, prot: 1 }, { start: PAGE, end: 2 * PAGE, prot: 0 }]);
    expect(debugMemory(twice.t).read(PAGE + 5, 1)).not.toBeNull();
    expect(twice.prot.slice(0, 2)).toEqual([1, 0]);
  });

  it('puts the protection back even when the copy throws', () => {
    const { t, prot } = target([{ start: 0, end: PAGE, prot: 1 }]);
    const m = debugMemory({ ...t, bytes: { set: () => { throw new Error('boom'); }, slice: () => new Uint8Array() } as unknown as Uint8Array });
    expect(() => m.write(0, Uint8Array.of(1))).toThrow('boom');
    expect(prot[0]).toBe(1);
  });
});
