// Loads the PT_LOAD segments of a checked ELF into guest RAM and applies the
// host protections (docs/abi.md §3.2, §3.3), rule by rule in the reference's order so
// that the same broken file gets the same message.
import { MIN_LOAD_ADDR } from '../abi/constants.js';
import { type ByteSource, type ElfImage, invalidExe, PF_R, PF_W, PF_X, PT_LOAD, readFull } from './elf.js';
import { HostError, KernelError } from '../errors.js';

const U64_MAX = (1n << 64n) - 1n;
const PAGE = 4096n;

/** Host protection requested for [start, end): bits 1 read, 2 write, 4 exec. */
export interface SegmentProtection {
  start: number;
  end: number;
  prot: number;
}

export interface LoadTarget {
  /** Guest RAM, at least `limit` bytes. */
  bytes: Uint8Array;
  /** Applies a host protection; throws on failure. */
  protect(p: SegmentProtection): void;
}

export interface LoadResult {
  entry: number;
  /** Page-aligned end of the last file-backed segment (0 if none). */
  kernelEnd: number;
}

/** Host protection for p_flags (§3.3); execute is never granted on the host. */
export function hostProtection(flags: number): number {
  if (flags & PF_X) return 1;
  const r = flags & PF_R ? 1 : 0;
  // Write-only is readable on x86 anyway; say so, so the monitor may read it.
  return flags & PF_W ? 3 : r;
}

export function loadElf(src: ByteSource, elf: ElfImage, limit: number, target: LoadTarget, kernel: string): LoadResult {
  const lim = BigInt(limit);
  const min = BigInt(MIN_LOAD_ADDR);
  const bad = (what: string) => invalidExe(kernel, what);
  if (elf.entry < min || elf.entry >= lim) {
    throw bad(`e_entry does not fall within the memory allocation range (${elf.entry} < ${min} || ${elf.entry} >= ${lim})`);
  }
  let lastVaddr = 0n;
  let eEnd = 0n;
  for (const ph of elf.phdrs) {
    if (ph.type !== PT_LOAD || ph.filesz === 0n) continue;
    const i = ph.index;
    const { vaddr, filesz, memsz, align } = ph;
    if (vaddr < min) throw bad(`phdr[${i}].p_vaddr outside of valid memory range (${vaddr} < ${min})`);
    if (vaddr < lastVaddr) throw bad(`phdr[${i}].p_vaddr is not in ascending order (${vaddr} < ${lastVaddr})`);
    lastVaddr = vaddr;
    if (align === 0n || (align & (align - 1n)) !== 0n) {
      throw bad(`phdr[${i}].p_vaddr is outside of memory range (align_down with ${vaddr} (p_vaddr) and ${align} (p_align) failed)`);
    }
    const start = vaddr & ~(align - 1n);
    if (start < min) throw bad(`phdr[${i}].p_vaddr_start is outside of memory range (${start} < ${min} (p_min_loadaddr))`);
    if (start < eEnd) throw bad(`phdr[${i}].p_vaddr_start is outside of memory range (${start} < ${eEnd} (e_end))`);
    const fileSeg = (what: string) => bad(`phdr[${i}] program file segment falls outside of valid range (${what})`);
    if (vaddr >= lim) throw fileSeg(`${vaddr} >= ${lim} (mem_size)`);
    if (vaddr + filesz > U64_MAX) throw fileSeg(`${vaddr} (p_vaddr) + ${filesz} (p_filesz) overflow`);
    if (vaddr + filesz > lim) throw fileSeg(`${vaddr + filesz} (p_vaddr + p_filesz) > ${lim} (mem_size)`);
    const memSeg = (what: string) => bad(`phdr[${i}] program memory segment falls outside of valid range (${what})`);
    if (memsz < filesz) throw memSeg(`${memsz} (p_memsz) < ${filesz} (p_filesz)`);
    if (vaddr + memsz > U64_MAX) throw memSeg(`${vaddr} (p_vaddr) + ${memsz} (p_memsz) overflow`);
    const memEnd = vaddr + memsz;
    const end = (memEnd + align - 1n) & ~(align - 1n);
    if (memEnd + align - 1n > U64_MAX) {
      throw memSeg(`align_up with ${memEnd} (p_vaddr_end) and ${align} (p_align) failed`);
    }
    if (end > lim) throw memSeg(`${end} (p_vaddr + p_memsz) > ${lim} (mem_size)`);
    if (end > eEnd) eEnd = end;

    // All of [vaddr, end) is now known to lie below limit (≤ 4 GiB): numbers are exact.
    const at = Number(vaddr);
    const got = readFull(src, target.bytes.subarray(at, at + Number(filesz)), ph.offset);
    if (got !== Number(filesz)) {
      throw new KernelError(`${kernel}: phdr[${i}] host file segment mismatched (pread_in_full returned ${got} != ${filesz} (p_filesz))`);
    }
    target.bytes.fill(0, at + Number(filesz), Number(memEnd));

    if (start % PAGE !== 0n) throw bad(`phdr[${i}] p_vaddr_start not aligned with architectural page size (${start} & (4096 - 1))`);
    if (end % PAGE !== 0n) throw bad(`phdr[${i}] p_vaddr_end not aligned with architectural page size (${end} & (4096 - 1))`);
    if ((ph.flags & PF_W) && (ph.flags & PF_X)) throw bad(`phdr[${i}] requests WRITE and EXEC permissions`);
    try {
      target.protect({ start: Number(start), end: Number(end), prot: hostProtection(ph.flags) });
    } catch (e) {
      // The reference's words (docs/abi.md §3.6); the host failed, not the ELF.
      throw new HostError(`${kernel}: mprotect failed`, { cause: e });
    }
  }
  return { entry: Number(elf.entry), kernelEnd: Number(eEnd) };
}
