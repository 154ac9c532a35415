// The PT_LOAD loader (docs/abi.md §3.2 rules 1–12, §3.3 host protections, §3.6
// loader messages), with a fake LoadTarget that records protect() calls.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bufferSource, type ByteSource, readElf } from '../../monitor/kernel/elf.js';
import { HostError, KernelError } from '../../monitor/errors.js';
import { thrownBy } from '../helpers/thrown.js';
import { openKernel } from '../../monitor/kernel/kernel.js';
import { hostProtection, type LoadResult, type LoadTarget, loadElf, type SegmentProtection } from '../../monitor/kernel/loader.js';
import {
  BSS_VADDR,
  DATA_VADDR,
  DEFAULT_KERNEL_END,
  haltStruct,
  haltText,
  kernel,
  type KernelOptions,
  PF_R,
  PF_W,
  PF_X,
  PT_GNU_STACK,
  PT_INTERP,
  PT_LOAD,
  PT_TLS,
  RODATA_VADDR,
  type Segment,
  TEXT_VADDR,
} from '../helpers/elf-builder.js';

const K = 'test/k.hvt';
const IE = `${K}: invalid executable: `;
const MiB = 1 << 20;
const LIMIT = 8 * MiB;
const U64_MAX = (1n << 64n) - 1n;

interface FakeTarget extends LoadTarget {
  calls: SegmentProtection[];
}

/** Guest RAM filled with 0xAA (so untouched bytes are visible) and a protect() recorder. */
function fakeTarget(size = LIMIT, failProtect = false): FakeTarget {
  const calls: SegmentProtection[] = [];
  return {
    bytes: new Uint8Array(size).fill(0xaa),
    calls,
    protect(p) {
      if (failProtect) throw new Error('mprotect: Cannot allocate memory');
      calls.push(p);
    },
  };
}

function loadBytes(bytes: Uint8Array, target: LoadTarget = fakeTarget(), limit = LIMIT, src: ByteSource = bufferSource(bytes)): LoadResult {
  const elf = readElf(src, K);
  return loadElf(src, elf, limit, target, K);
}

const load = (o: KernelOptions, target?: LoadTarget, limit?: number) => loadBytes(kernel(o), target, limit);

/** The message of the KernelError thrown while loading. */
function loadError(o: KernelOptions, limit = LIMIT, target: LoadTarget = fakeTarget(limit > LIMIT ? LIMIT : limit)): string {
  try {
    load(o, target, limit);
  } catch (e) {
    expect(e).toBeInstanceOf(KernelError);
    return (e as Error).message;
  }
  throw new Error('expected a KernelError, but the kernel loaded');
}

/** A single PT_LOAD with `size` bytes of content (or a given filesz without content). */
function seg(fields: Partial<Segment> & { size?: number }): Segment {
  const { size, ...rest } = fields;
  const s: Segment = { type: PT_LOAD, flags: PF_R, vaddr: TEXT_VADDR, ...rest };
  if (size !== undefined && s.filesz === undefined && s.content === undefined) s.content = new Uint8Array(size).fill(0x5a);
  return s;
}
const one = (fields: Partial<Segment> & { size?: number }): KernelOptions => ({ loads: [seg(fields)] });

describe('loading the default image', () => {
  it('copies the file-backed segments, zero-fills BSS tails and returns entry and kernel_end', () => {
    const t = fakeTarget();
    const r = load({}, t);
    expect(r).toEqual({ entry: TEXT_VADDR, kernelEnd: DEFAULT_KERNEL_END });
    const text = haltText();
    expect(t.bytes.subarray(TEXT_VADDR, TEXT_VADDR + text.length)).toEqual(text);
    expect(t.bytes[TEXT_VADDR + text.length]).toBe(0xaa); // past memsz: untouched
    expect(t.bytes.subarray(RODATA_VADDR, RODATA_VADDR + 32)).toEqual(haltStruct());
    expect(Array.from(t.bytes.subarray(DATA_VADDR, DATA_VADDR + 8))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // BSS tail of the data segment: [vaddr + filesz, vaddr + memsz) is zeroed.
    expect(t.bytes.subarray(DATA_VADDR + 8, DATA_VADDR + 0x100).every((b) => b === 0)).toBe(true);
    expect(t.bytes[DATA_VADDR + 0x100]).toBe(0xaa);
    // The BSS-only PT_LOAD is not touched at all (guest RAM is zero already).
    expect(t.bytes.subarray(BSS_VADDR, BSS_VADDR + 0x1000).every((b) => b === 0xaa)).toBe(true);
  });

  it('requests host protections per segment (§3.3), none for the BSS-only segment', () => {
    const t = fakeTarget();
    load({}, t);
    expect(t.calls).toEqual([
      { start: TEXT_VADDR, end: TEXT_VADDR + 0x1000, prot: 1 },
      { start: RODATA_VADDR, end: RODATA_VADDR + 0x1000, prot: 1 },
      { start: DATA_VADDR, end: DATA_VADDR + 0x1000, prot: 3 },
    ]);
  });

  it('kernel_end excludes BSS-only PT_LOADs but includes the BSS tail of file-backed ones', () => {
    expect(load({}).kernelEnd).toBe(0x103000); // BSS-only segment at 0x103000..0x104000 not counted
    const loads = [seg({ size: 16, flags: PF_R | PF_W, memsz: 0x2800 })];
    expect(load({ loads }).kernelEnd).toBe(0x103000);
    expect(load({ loads: [] }).kernelEnd).toBe(0);
  });
});

describe('host protection for p_flags (§3.3)', () => {
  it.each([
    ['R', PF_R, 1],
    ['R+W', PF_R | PF_W, 3],
    // The spec says "write (readable on x86 in practice)"; the tender asks for read+write.
    ['W', PF_W, 3],
    ['X', PF_X, 1],
    ['R+X', PF_R | PF_X, 1],
    ['none', 0, 0],
  ])('%s → prot %i', (_name, flags, prot) => {
    expect(hostProtection(flags)).toBe(prot);
    const t = fakeTarget();
    load(one({ flags, size: 0x20 }), t);
    expect(t.calls).toEqual([{ start: TEXT_VADDR, end: TEXT_VADDR + 0x1000, prot }]);
  });

  it('protects [align_down(vaddr), align_up(vaddr + memsz)), execute never granted', () => {
    const t = fakeTarget();
    load({ entry: 0x180000, loads: [seg({ vaddr: 0x180000, size: 0x10, memsz: 0x3001, flags: PF_R | PF_X })] }, t);
    expect(t.calls).toEqual([{ start: 0x180000, end: 0x184000, prot: 1 }]);
    expect(t.calls.every((c) => (c.prot & 4) === 0)).toBe(true);
  });
});

describe('ignored program headers (§3.2)', () => {
  it('PT_LOADs with p_filesz 0 are ignored whatever they say', () => {
    const t = fakeTarget();
    const junk: Segment[] = [
      seg({ vaddr: 0, filesz: 0, memsz: U64_MAX, align: 3, flags: PF_W | PF_X }),
      seg({ vaddr: U64_MAX, filesz: 0, memsz: 0 }),
    ];
    const r = load({ loads: [...junk, seg({ size: 0x10 })] }, t);
    expect(r.kernelEnd).toBe(TEXT_VADDR + 0x1000);
    expect(t.calls).toHaveLength(1);
  });

  it('a BSS-only PT_LOAD does not take part in the ascending-order check', () => {
    const loads = [seg({ vaddr: 0x400000, filesz: 0, memsz: 0x1000 }), seg({ size: 0x10 })];
    expect(load({ loads }).kernelEnd).toBe(TEXT_VADDR + 0x1000);
  });

  it('PT_INTERP, PT_TLS, PT_GNU_STACK and others are ignored', () => {
    const garbage = { offset: U64_MAX, vaddr: 5, filesz: U64_MAX, memsz: 1, align: 3, flags: 7 };
    const after: Segment[] = [PT_INTERP, PT_TLS, PT_GNU_STACK, 0x70000000].map((type) => ({ type, ...garbage }));
    const t = fakeTarget();
    expect(load({ after }, t)).toEqual({ entry: TEXT_VADDR, kernelEnd: DEFAULT_KERNEL_END });
    expect(t.calls).toHaveLength(3);
  });
});

describe('entry point check (done before segments)', () => {
  const entryMsg = (e: bigint | number, lim = LIMIT) => `${IE}e_entry does not fall within the memory allocation range (${e} < 1048576 || ${e} >= ${lim})`;

  it('rejects an entry below 0x100000', () => {
    expect(loadError({ entry: 0xfffff })).toBe(entryMsg(0xfffff));
    expect(loadError({ entry: 0 })).toBe(entryMsg(0));
  });

  it('rejects an entry at or above the limit', () => {
    expect(loadError({ entry: LIMIT })).toBe(entryMsg(LIMIT));
    expect(loadError({ entry: U64_MAX })).toBe(entryMsg(U64_MAX));
    expect(loadError({ entry: (1n << 53n) + 1n })).toBe(entryMsg((1n << 53n) + 1n));
  });

  it('accepts 0x100000 and limit - 1, without checking segments or permissions', () => {
    expect(load({ entry: 0x100000 }).entry).toBe(0x100000);
    expect(load({ entry: LIMIT - 1 }).entry).toBe(LIMIT - 1);
    expect(load({ entry: DATA_VADDR + 3 }).entry).toBe(DATA_VADDR + 3); // inside a R+W segment
  });

  it('is reported before any segment error', () => {
    expect(loadError({ entry: 1, loads: [seg({ vaddr: 0, size: 1 })] })).toBe(entryMsg(1));
  });
});

describe('segment rules 1–12 (§3.2) and their messages (§3.6)', () => {
  it('1: p_vaddr below 0x100000', () => {
    expect(loadError(one({ vaddr: 0xff000, size: 16 }))).toBe(`${IE}phdr[0].p_vaddr outside of valid memory range (1044480 < 1048576)`);
    expect(loadError(one({ vaddr: 0, size: 16 }))).toBe(`${IE}phdr[0].p_vaddr outside of valid memory range (0 < 1048576)`);
  });

  it('2: p_vaddr not ascending', () => {
    const loads = [seg({ vaddr: 0x102000, size: 16 }), seg({ vaddr: 0x101000, size: 16 })];
    expect(loadError({ loads })).toBe(`${IE}phdr[1].p_vaddr is not in ascending order (1052672 < 1056768)`);
  });

  it('2: equal p_vaddr passes rule 2 and fails on overlap (rule 5)', () => {
    const loads = [seg({ vaddr: 0x101000, size: 16 }), seg({ vaddr: 0x101000, size: 16 })];
    expect(loadError({ loads })).toBe(`${IE}phdr[1].p_vaddr_start is outside of memory range (1052672 < 1056768 (e_end))`);
  });

  it.each([0, 3, 0x1800, 6])('3: p_align %i is not a non-zero power of two', (align) => {
    expect(loadError(one({ align, size: 16 }))).toBe(
      `${IE}phdr[0].p_vaddr is outside of memory range (align_down with 1048576 (p_vaddr) and ${align} (p_align) failed)`,
    );
  });

  it('3: p_align 1 and 2^63 are powers of two', () => {
    expect(load(one({ align: 1, size: 0x1000 })).kernelEnd).toBe(0x101000);
    expect(loadError(one({ align: 1n << 63n, size: 16 }))).toBe(`${IE}phdr[0].p_vaddr_start is outside of memory range (0 < 1048576 (p_min_loadaddr))`);
  });

  it('4: start (p_vaddr aligned down) below 0x100000', () => {
    expect(loadError(one({ align: 0x200000, size: 16 }))).toBe(
      `${IE}phdr[0].p_vaddr_start is outside of memory range (0 < 1048576 (p_min_loadaddr))`,
    );
    expect(loadError(one({ vaddr: 0x100800, align: 0x1000000, size: 16 }))).toBe(
      `${IE}phdr[0].p_vaddr_start is outside of memory range (0 < 1048576 (p_min_loadaddr))`,
    );
  });

  it('5: start overlaps the aligned end of an earlier segment (including its BSS)', () => {
    const loads = [seg({ size: 16, memsz: 0x1800 }), seg({ vaddr: 0x101000, size: 16 })];
    expect(loadError({ loads })).toBe(`${IE}phdr[1].p_vaddr_start is outside of memory range (1052672 < 1056768 (e_end))`);
    // Aligned down into the previous segment's last page.
    const loads2 = [seg({ size: 16 }), seg({ vaddr: 0x100800, align: 0x800, size: 16 })];
    expect(loadError({ loads: loads2 })).toBe(`${IE}phdr[1].p_vaddr_start is outside of memory range (1050624 < 1052672 (e_end))`);
  });

  it('5: a segment starting exactly at e_end is fine', () => {
    const loads = [seg({ size: 16, memsz: 0x1800 }), seg({ vaddr: 0x102000, size: 16 })];
    expect(load({ loads }).kernelEnd).toBe(0x103000);
  });

  it('6a: p_vaddr at or above the limit', () => {
    expect(loadError(one({ vaddr: LIMIT, size: 16 }))).toBe(`${IE}phdr[0] program file segment falls outside of valid range (8388608 >= 8388608 (mem_size))`);
    const huge = (1n << 60n) + 0x1000n;
    expect(loadError(one({ vaddr: huge, size: 16 }))).toBe(`${IE}phdr[0] program file segment falls outside of valid range (${huge} >= 8388608 (mem_size))`);
  });

  it('6b: p_vaddr + p_filesz overflows 64 bits', () => {
    expect(loadError(one({ filesz: U64_MAX }))).toBe(
      `${IE}phdr[0] program file segment falls outside of valid range (1048576 (p_vaddr) + 18446744073709551615 (p_filesz) overflow)`,
    );
    const f = (1n << 64n) - 0x100000n; // sum is exactly 2^64
    expect(loadError(one({ filesz: f }))).toBe(`${IE}phdr[0] program file segment falls outside of valid range (1048576 (p_vaddr) + ${f} (p_filesz) overflow)`);
  });

  it('6c: p_vaddr + p_filesz above the limit', () => {
    expect(loadError(one({ filesz: LIMIT - 0x100000 + 1 }))).toBe(
      `${IE}phdr[0] program file segment falls outside of valid range (8388609 (p_vaddr + p_filesz) > 8388608 (mem_size))`,
    );
    // One below overflowing: the sum is 2^64 - 1, printed exactly.
    expect(loadError(one({ filesz: (1n << 64n) - 0x100001n }))).toBe(
      `${IE}phdr[0] program file segment falls outside of valid range (18446744073709551615 (p_vaddr + p_filesz) > 8388608 (mem_size))`,
    );
  });

  it('6c boundary: a segment ending exactly at the limit is accepted', () => {
    const limit = 2 * MiB;
    const t = fakeTarget(limit);
    const r = load({ entry: TEXT_VADDR, loads: [seg({ size: MiB })] }, t, limit);
    expect(r.kernelEnd).toBe(limit);
    expect(t.bytes[limit - 1]).toBe(0x5a);
  });

  it('7a: p_memsz < p_filesz', () => {
    expect(loadError(one({ size: 16, memsz: 8 }))).toBe(`${IE}phdr[0] program memory segment falls outside of valid range (8 (p_memsz) < 16 (p_filesz))`);
  });

  it('7b: p_vaddr + p_memsz overflows 64 bits', () => {
    const m = (1n << 64n) - 0x100000n;
    expect(loadError(one({ size: 16, memsz: m }))).toBe(
      `${IE}phdr[0] program memory segment falls outside of valid range (1048576 (p_vaddr) + ${m} (p_memsz) overflow)`,
    );
    expect(loadError(one({ size: 16, memsz: U64_MAX }))).toBe(
      `${IE}phdr[0] program memory segment falls outside of valid range (1048576 (p_vaddr) + 18446744073709551615 (p_memsz) overflow)`,
    );
  });

  it('7c: align_up(p_vaddr + p_memsz) overflows', () => {
    const m = (1n << 64n) - 0x100001n; // vaddr + memsz = 2^64 - 1
    expect(loadError(one({ size: 16, memsz: m }))).toBe(
      `${IE}phdr[0] program memory segment falls outside of valid range (align_up with 18446744073709551615 (p_vaddr_end) and 4096 (p_align) failed)`,
    );
    // With p_align 1 aligning cannot overflow: rule 7d reports it instead.
    expect(loadError(one({ size: 16, memsz: m, align: 1 }))).toBe(
      `${IE}phdr[0] program memory segment falls outside of valid range (18446744073709551615 (p_vaddr + p_memsz) > 8388608 (mem_size))`,
    );
  });

  it('7d: aligned end above the limit (the aligned value is printed)', () => {
    expect(loadError(one({ size: 16, memsz: LIMIT }))).toBe(
      `${IE}phdr[0] program memory segment falls outside of valid range (9437184 (p_vaddr + p_memsz) > 8388608 (mem_size))`,
    );
    expect(loadError(one({ size: 16, memsz: LIMIT - 0x100000 + 1 }))).toBe(
      `${IE}phdr[0] program memory segment falls outside of valid range (8392704 (p_vaddr + p_memsz) > 8388608 (mem_size))`,
    );
  });

  it('9: short read of the segment contents (no "invalid executable")', () => {
    expect(loadError(one({ filesz: 0x100, offset: 1n << 40n }))).toBe(
      `${K}: phdr[0] host file segment mismatched (pread_in_full returned 0 != 256 (p_filesz))`,
    );
    const len = kernel(one({ filesz: 0x100 })).length;
    expect(loadError(one({ filesz: 0x100, offset: len - 16 }))).toBe(
      `${K}: phdr[0] host file segment mismatched (pread_in_full returned 16 != 256 (p_filesz))`,
    );
  });

  it('10a: start not page aligned (checked after copying)', () => {
    const t = fakeTarget();
    expect(loadError(one({ vaddr: 0x100800, align: 1, size: 16 }), LIMIT, t)).toBe(
      `${IE}phdr[0] p_vaddr_start not aligned with architectural page size (1050624 & (4096 - 1))`,
    );
    expect(t.bytes[0x100800]).toBe(0x5a); // rule 9 ran before rule 10
    expect(loadError(one({ vaddr: 0x100800, align: 0x800, size: 16 }))).toBe(
      `${IE}phdr[0] p_vaddr_start not aligned with architectural page size (1050624 & (4096 - 1))`,
    );
  });

  it('10b: end not page aligned', () => {
    expect(loadError(one({ align: 16, size: 16 }))).toBe(`${IE}phdr[0] p_vaddr_end not aligned with architectural page size (1048592 & (4096 - 1))`);
  });

  it.each([
    ['W+X', PF_W | PF_X],
    ['R+W+X', PF_R | PF_W | PF_X],
  ])('11: %s is rejected', (_name, flags) => {
    const t = fakeTarget();
    expect(loadError(one({ flags, size: 16 }), LIMIT, t)).toBe(`${IE}phdr[0] requests WRITE and EXEC permissions`);
    expect(t.calls).toEqual([]);
  });

  it('11: a W+X segment is reported with its own index', () => {
    const loads = [seg({ size: 16 }), seg({ vaddr: 0x101000, size: 16, flags: PF_W | PF_X })];
    expect(loadError({ loads })).toBe(`${IE}phdr[1] requests WRITE and EXEC permissions`);
  });

  it('12: a failing protect is "mprotect failed", a host error (the ELF is fine)', () => {
    expect(thrownBy(() => load({}, fakeTarget(LIMIT, true), LIMIT), HostError).message).toBe(`${K}: mprotect failed`);
  });

  it('limit is what the caller passes (the allocation size)', () => {
    const limit = 2 * MiB;
    expect(loadError(one({ vaddr: 0x200000, size: 16 }), limit)).toBe(
      `${IE}phdr[0] program file segment falls outside of valid range (2097152 >= 2097152 (mem_size))`,
    );
  });
});

describe('loading through a file descriptor (openKernel)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ukvm-loader-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function loadFile(name: string, o: KernelOptions, target = fakeTarget()): LoadResult {
    const p = join(dir, name);
    writeFileSync(p, kernel(o));
    const k = openKernel(p);
    try {
      return loadElf(k.src, k.elf, LIMIT, target, K);
    } finally {
      k.close();
    }
  }

  it('loads the default image', () => {
    const t = fakeTarget();
    expect(loadFile('ok.hvt', {}, t)).toEqual({ entry: TEXT_VADDR, kernelEnd: DEFAULT_KERNEL_END });
    expect(t.bytes.subarray(TEXT_VADDR, TEXT_VADDR + haltText().length)).toEqual(haltText());
  });

  it('9: short read with an offset beyond the end of the file (below 2^63)', () => {
    expect(() => loadFile('off40.hvt', one({ filesz: 0x100, offset: 1n << 40n }))).toThrowError(
      new KernelError(`${K}: phdr[0] host file segment mismatched (pread_in_full returned 0 != 256 (p_filesz))`),
    );
  });

  // Regression: p_offset >= 2^63 once reached fs.readSync, whose RangeError
  // escaped as "internal error: …" instead of rule 9's "host file segment
  // mismatched" message.
  it('9: short read with p_offset >= 2^63', () => {
    let err: unknown;
    try {
      loadFile('off63.hvt', one({ filesz: 0x100, offset: 1n << 63n }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KernelError);
    expect((err as Error).message).toMatch(/phdr\[0\] host file segment mismatched \(pread_in_full returned \d+ != 256 \(p_filesz\)\)$/);
  });

  // Same family: just below 2^63 the read failed with EINVAL (offset + length
  // overflows loff_t) and escaped as "internal error: EINVAL …".
  it('9: short read with p_offset = 2^63 - 1', () => {
    let err: unknown;
    try {
      loadFile('off63m1.hvt', one({ filesz: 0x100, offset: (1n << 63n) - 1n }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KernelError);
    expect((err as Error).message).toMatch(/phdr\[0\] host file segment mismatched \(pread_in_full returned \d+ != 256 \(p_filesz\)\)$/);
  });
});
