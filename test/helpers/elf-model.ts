// An independent model of docs/abi.md §3.1–§3.5 and §4.2 for the ELF fuzz tests
// (test/fuzz/elf.fuzz.test.ts): written from the spec, sharing no code with
// monitor/, so the tender and the model can be checked against each other.
import type { SegmentProtection } from '../../monitor/kernel/loader.js';
import { PF_R, PF_W, PF_X, PT_LOAD, PT_NOTE } from './elf-builder.js';

const MIN_LOAD = 0x100000;
const PAGE = 4096;
const U64_MAX = (1n << 64n) - 1n;

/** Little-endian unsigned value of `size` bytes at off. */
function getLe(b: Uint8Array, off: number, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[off + i] ?? 0);
  return v;
}

// The model: §3.1–§3.5 and §4.2 as the spec states them, independently of
// monitor/ (no code shared). Returns where the kernel is refused, or what a
// successful load must produce.

export interface ModelSegment {
  index: number;
  offset: bigint;
  vaddr: bigint;
  filesz: bigint;
  memsz: bigint;
}

export type ModelResult =
  | { stage: 'kernel'; why: string }
  | { stage: 'load'; why: string; considered: ModelSegment[] }
  | {
      stage: 'ok';
      entry: number;
      kernelEnd: number;
      protections: SegmentProtection[];
      considered: ModelSegment[];
      devices: number;
    };

export function modelKernel(b: Uint8Array, limit: number): ModelResult {
  const size = BigInt(b.length);
  // A full read of n bytes at off, or null (short read or EOF).
  const read = (off: bigint, n: number): Uint8Array | null => (off + BigInt(n) > size ? null : b.subarray(Number(off), Number(off) + n));
  const kernelFail = (why: string): ModelResult => ({ stage: 'kernel', why });

  // §3.1
  if (b.length < 64) return kernelFail('short header');
  const u16 = (x: Uint8Array, o: number) => Number(getLe(x, o, 2));
  const u32 = (x: Uint8Array, o: number) => Number(getLe(x, o, 4));
  const u64 = (x: Uint8Array, o: number) => getLe(x, o, 8);
  const identOk = b[0] === 0x7f && b[1] === 0x45 && b[2] === 0x4c && b[3] === 0x46 && b[4] === 2 && b[5] === 1;
  if (!identOk || u16(b, 16) !== 2 || u16(b, 18) !== 62 || u32(b, 20) !== 1 || u16(b, 52) !== 64 || u16(b, 54) !== 56 || u16(b, 56) < 1) {
    return kernelFail('header');
  }
  const entry = u64(b, 24);
  const phnum = u16(b, 56);
  const table = read(u64(b, 32), 56 * phnum);
  if (!table) return kernelFail('phdr table');
  const ph = Array.from({ length: phnum }, (_, i) => {
    const o = 56 * i;
    return {
      index: i,
      type: u32(table, o),
      flags: u32(table, o + 4),
      offset: u64(table, o + 8),
      vaddr: u64(table, o + 16),
      filesz: u64(table, o + 32),
      memsz: u64(table, o + 40),
      align: u64(table, o + 48),
    };
  });

  // §3.4 steps 1–8, for either note.
  type Found = { desc: Uint8Array } | { fatal: string } | null;
  const findNote = (wanted: number, pad: number, max: number): Found => {
    for (const p of ph) {
      if (p.type !== PT_NOTE) continue;
      if (p.filesz < 12n) return { fatal: `phdr[${p.index}] filesz < 12` };
      if (p.filesz < 20n) continue;
      const h = read(p.offset, 20);
      if (!h) return { fatal: `phdr[${p.index}] short note header` };
      const isSolo5 = u32(h, 0) === 6 && [0x53, 0x6f, 0x6c, 0x6f, 0x35, 0].every((c, k) => h[12 + k] === c);
      if (!isSolo5 || u32(h, 8) !== wanted) continue;
      const descsz = u32(h, 4);
      if (descsz < 1 || descsz > max) return { fatal: `phdr[${p.index}] descsz ${descsz}` };
      if (p.filesz < 20n + BigInt(descsz)) return { fatal: `phdr[${p.index}] filesz < 20 + descsz` };
      if (descsz <= pad) return { fatal: `phdr[${p.index}] usable size <= 0` };
      const desc = read(p.offset + 20n + BigInt(pad), descsz - pad);
      if (!desc) return { fatal: `phdr[${p.index}] short descriptor` };
      return { desc };
    }
    return null;
  };
  const abi = findNote(0x31494241, 0, 32);
  if (!abi) return kernelFail('no ABI note');
  if ('fatal' in abi) return kernelFail(abi.fatal);
  // README: an ABI descriptor shorter than 8 bytes counts as missing.
  if (abi.desc.length < 8) return kernelFail('ABI note too short');
  if (u32(abi.desc, 0) !== 1) return kernelFail('ABI target');
  if (u32(abi.desc, 4) !== 2) return kernelFail('ABI version');
  const mft = findNote(0x3154464d, 4, 6668);
  if (!mft) return kernelFail('no manifest');
  if ('fatal' in mft) return kernelFail(mft.fatal);

  // §4.2
  const m = mft.desc;
  if (m.length < 8) return kernelFail('manifest < 8');
  const entries = u32(m, 4);
  if (u32(m, 0) !== 1 || entries > 64 || m.length !== 8 + 104 * entries || entries < 1) return kernelFail('manifest header');
  if (u32(m, 8 + 68) !== 0x40000000 || m[8] !== 0) return kernelFail('manifest entry 0');
  let devices = 0;
  for (let e = 0; e < entries; e++) {
    const eo = 8 + 104 * e;
    if (m[eo + 67] !== 0 || m[eo + 96] !== 0) return kernelFail(`manifest entry ${e}`);
    if (u32(m, eo + 68) < 0x40000000) devices++;
  }

  // §3.2, §3.3
  const lim = BigInt(limit);
  const considered: ModelSegment[] = [];
  const loadFail = (why: string): ModelResult => ({ stage: 'load', why, considered });
  if (entry < BigInt(MIN_LOAD) || entry >= lim) return loadFail('entry');
  let lastVaddr = 0n;
  let eEnd = 0n;
  const protections: SegmentProtection[] = [];
  for (const p of ph) {
    if (p.type !== PT_LOAD || p.filesz === 0n) continue;
    const i = p.index;
    if (p.vaddr < BigInt(MIN_LOAD)) return loadFail(`${i}: rule 1`);
    if (p.vaddr < lastVaddr) return loadFail(`${i}: rule 2`);
    lastVaddr = p.vaddr;
    if (p.align === 0n || (p.align & (p.align - 1n)) !== 0n) return loadFail(`${i}: rule 3`);
    const start = p.vaddr - (p.vaddr % p.align);
    if (start < BigInt(MIN_LOAD)) return loadFail(`${i}: rule 4`);
    if (start < eEnd) return loadFail(`${i}: rule 5`);
    if (p.vaddr >= lim || p.vaddr + p.filesz > U64_MAX || p.vaddr + p.filesz > lim) return loadFail(`${i}: rule 6`);
    if (p.memsz < p.filesz || p.vaddr + p.memsz > U64_MAX) return loadFail(`${i}: rule 7ab`);
    const memEnd = p.vaddr + p.memsz;
    const rounded = memEnd % p.align === 0n ? memEnd : memEnd + (p.align - (memEnd % p.align));
    if (rounded > U64_MAX) return loadFail(`${i}: rule 7c`);
    if (rounded > lim) return loadFail(`${i}: rule 7d`);
    if (rounded > eEnd) eEnd = rounded;
    considered.push({ index: i, offset: p.offset, vaddr: p.vaddr, filesz: p.filesz, memsz: p.memsz });
    if (!read(p.offset, Number(p.filesz))) return loadFail(`${i}: rule 9`);
    if (start % BigInt(PAGE) !== 0n || rounded % BigInt(PAGE) !== 0n) return loadFail(`${i}: rule 10`);
    if (p.flags & PF_W && p.flags & PF_X) return loadFail(`${i}: rule 11`);
    // §3.3 (and the README: write-only is mapped read+write, execute never).
    const prot = p.flags & PF_W ? 3 : p.flags & (PF_R | PF_X) ? 1 : 0;
    protections.push({ start: Number(start), end: Number(rounded), prot });
  }
  return { stage: 'ok', entry: Number(entry), kernelEnd: Number(eEnd), protections, considered, devices };
}

