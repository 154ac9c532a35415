// Reads the program headers of a built test unikernel, so that tests can
// predict what the tender derives from it (kernel_end, segment ranges).
import { readFileSync } from 'node:fs';

export interface Segment {
  type: number;
  flags: number;
  vaddr: bigint;
  filesz: bigint;
  memsz: bigint;
  align: bigint;
}

export function segments(path: string): Segment[] {
  const b = readFileSync(path);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const phoff = Number(dv.getBigUint64(32, true));
  const phnum = dv.getUint16(56, true);
  const out: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * 56;
    out.push({
      type: dv.getUint32(o, true),
      flags: dv.getUint32(o + 4, true),
      vaddr: dv.getBigUint64(o + 16, true),
      filesz: dv.getBigUint64(o + 32, true),
      memsz: dv.getBigUint64(o + 40, true),
      align: dv.getBigUint64(o + 48, true),
    });
  }
  return out;
}

/** kernel_end as docs/abi.md §3.2 defines it: the highest aligned end of a
 * file-backed PT_LOAD (BSS-only segments do not count). */
export function kernelEnd(path: string): bigint {
  let end = 0n;
  for (const s of segments(path)) {
    if (s.type !== 1 || s.filesz === 0n) continue;
    const e = (s.vaddr + s.memsz + s.align - 1n) & ~(s.align - 1n);
    if (e > end) end = e;
  }
  return end;
}

/** [start, end) of the executable PT_LOAD. */
export function textRange(path: string): [bigint, bigint] {
  const t = segments(path).find((s) => s.type === 1 && (s.flags & 1) !== 0);
  if (!t) throw new Error(`${path}: no executable PT_LOAD`);
  return [t.vaddr, t.vaddr + t.memsz];
}
