// ELF64 parsing for hvt unikernels (docs/abi.md §3.1, §3.4–§3.6): the header and
// program headers, and the Solo5 note reader. Loading into guest memory is
// kernel/loader.ts. All file values are u64 and handled as BigInt here, so
// nothing a hostile file says is ever rounded. Messages follow §3.6.
import { HVT_ABI_TARGET, HVT_ABI_VERSION, MFT_MAX_ENTRIES } from '../abi/constants.js';
import { MFT_ENTRY, MFT_HEADER } from '../abi/layouts.js';
import { KernelError } from '../errors.js';

/** Where the bytes of a kernel come from: a file descriptor or a buffer. */
export interface ByteSource {
  /** Reads up to buf.length bytes at position; returns how many were read (0 at EOF). */
  read(buf: Uint8Array, position: bigint): number;
}

/** Reads until buf is full or EOF; returns the byte count. */
export function readFull(src: ByteSource, buf: Uint8Array, position: bigint): number {
  let done = 0;
  while (done < buf.length) {
    const n = src.read(buf.subarray(done), position + BigInt(done));
    if (n <= 0) break;
    done += n;
  }
  return done;
}

export function bufferSource(data: Uint8Array): ByteSource {
  return {
    read(buf, position) {
      if (position >= BigInt(data.length)) return 0;
      const start = Number(position);
      const n = Math.min(buf.length, data.length - start);
      buf.set(data.subarray(start, start + n));
      return n;
    },
  };
}

export const PT_LOAD = 1;
export const PT_NOTE = 4;
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

export interface Phdr {
  index: number;
  type: number;
  flags: number;
  offset: bigint;
  vaddr: bigint;
  filesz: bigint;
  memsz: bigint;
  align: bigint;
}

export interface ElfImage {
  entry: bigint;
  phdrs: Phdr[];
}

const EHDR_SIZE = 64;
/** ELF identification and header values of an x86_64 hvt unikernel (§3.1). */
const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46]; // "\x7fELF"
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ET_EXEC = 2;
const EM_X86_64 = 62;
const EV_CURRENT = 1;
const PHDR_SIZE = 56;

/** "<K>: invalid executable: …" */
export function invalidExe(kernel: string, what: string): KernelError {
  return new KernelError(`${kernel}: invalid executable: ${what}`);
}

/** Reads and checks the ELF header and program header table (§3.1). */
export function readElf(src: ByteSource, kernel: string): ElfImage {
  const eh = new Uint8Array(EHDR_SIZE);
  const got = readFull(src, eh, 0n);
  if (got !== EHDR_SIZE) {
    throw invalidExe(kernel, `elf header does not match the expected size (${got} != ${EHDR_SIZE})`);
  }
  const v = new DataView(eh.buffer);
  const ok =
    ELF_MAGIC.every((b, i) => eh[i] === b) &&
    eh[4] === ELFCLASS64 &&
    eh[5] === ELFDATA2LSB &&
    v.getUint16(16, true) === ET_EXEC &&
    v.getUint16(18, true) === EM_X86_64 &&
    v.getUint32(20, true) === EV_CURRENT &&
    v.getUint16(52, true) === EHDR_SIZE &&
    v.getUint16(54, true) === PHDR_SIZE &&
    v.getUint16(56, true) >= 1;
  if (!ok) throw invalidExe(kernel, 'invalid or unsupported executable (elf header invalid while loading note)');
  const phoff = v.getBigUint64(32, true);
  const phnum = v.getUint16(56, true);
  const table = new Uint8Array(phnum * PHDR_SIZE);
  const tgot = readFull(src, table, phoff);
  if (tgot !== table.length) {
    throw invalidExe(kernel, `program header does not match the expected size (${tgot} != ${table.length} while loading note)`);
  }
  const t = new DataView(table.buffer);
  const phdrs: Phdr[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = i * PHDR_SIZE;
    phdrs.push({
      index: i,
      type: t.getUint32(o, true),
      flags: t.getUint32(o + 4, true),
      offset: t.getBigUint64(o + 8, true),
      vaddr: t.getBigUint64(o + 16, true),
      filesz: t.getBigUint64(o + 32, true),
      memsz: t.getBigUint64(o + 40, true),
      align: t.getBigUint64(o + 48, true),
    });
  }
  return { entry: v.getBigUint64(24, true), phdrs };
}

/** What to look for: a Solo5 note of this type (§3.4, §3.5). */
export interface NoteSpec {
  type: number;
  /** Alignment of the descriptor inside the note (4 for ABI, 8 for manifest). */
  align: number;
  maxDescsz: number;
}

export const ABI_NOTE: NoteSpec = { type: 0x31494241, align: 4, maxDescsz: 32 };
// The largest manifest note descriptor: 4 bytes of padding (the manifest is
// 8-aligned), the header and 64 entries (§3.5, §4.1).
export const MANIFEST_NOTE: NoteSpec = { type: 0x3154464d, align: 8, maxDescsz: 4 + MFT_HEADER.size + MFT_MAX_ENTRIES * MFT_ENTRY.size };

const NOTE_HDR = 20; // namesz, descsz, type, 8-byte name field
const SOLO5_NAME = [0x53, 0x6f, 0x6c, 0x6f, 0x35, 0x00]; // "Solo5\0"

/**
 * Finds the first PT_NOTE whose first note is a Solo5 note of the wanted
 * type, and returns its descriptor (after the alignment padding), or null.
 */
export function findNote(src: ByteSource, elf: ElfImage, kernel: string, spec: NoteSpec): Uint8Array | null {
  for (const ph of elf.phdrs) {
    if (ph.type !== PT_NOTE) continue;
    const i = ph.index;
    if (ph.filesz < 12n) {
      throw invalidExe(kernel, `phdr[${i}].p_filesz note does not fall within valid size (${ph.filesz} < 12)`);
    }
    if (ph.filesz < BigInt(NOTE_HDR)) continue;
    const hdr = new Uint8Array(NOTE_HDR);
    const got = readFull(src, hdr, ph.offset);
    if (got !== NOTE_HDR) throw new KernelError(`${kernel}: phdr[${i}] bytes read mismatches note size (${got} != ${NOTE_HDR})`);
    const h = new DataView(hdr.buffer);
    const namesz = h.getUint32(0, true);
    const descsz = h.getUint32(4, true);
    const type = h.getUint32(8, true);
    if (namesz !== SOLO5_NAME.length || type !== spec.type) continue;
    if (!SOLO5_NAME.every((b, k) => hdr[12 + k] === b)) continue;
    if (descsz < 1 || descsz > spec.maxDescsz) {
      throw invalidExe(kernel, `phdr[${i}] note does not fall within valid size (${descsz} < 1 || ${descsz} > ${spec.maxDescsz})`);
    }
    if (ph.filesz < BigInt(NOTE_HDR + descsz)) {
      throw invalidExe(kernel, `phdr[${i}] note does not fall within valid size (${ph.filesz} < ${NOTE_HDR + descsz})`);
    }
    const descOff = Math.ceil(NOTE_HDR / spec.align) * spec.align;
    // The reference computes this in size_t and prints it wrapped (§3.6 N6).
    const usable = BigInt.asUintN(64, BigInt(descsz) - BigInt(descOff - NOTE_HDR));
    if (usable === 0n || usable > BigInt(descsz)) {
      throw invalidExe(kernel, `phdr[${i}] note does not fall within valid size (${usable} <= 0 || ${usable} > ${descsz})`);
    }
    const desc = new Uint8Array(Number(usable));
    const dgot = readFull(src, desc, ph.offset + BigInt(descOff));
    if (dgot !== desc.length) {
      throw new KernelError(`${kernel}: phdr[${i}] bytes read mismatches note size (${dgot} != ${desc.length})`);
    }
    return desc;
  }
  return null;
}

/** Reads the ABI note and checks target and version (§3.4). */
export function checkAbiNote(src: ByteSource, elf: ElfImage, kernel: string): void {
  const desc = findNote(src, elf, kernel, ABI_NOTE);
  // A descriptor too short to hold target and version is treated as absent
  // (the reference would read past it).
  if (!desc || desc.length < 8) throw new KernelError(`${kernel}: No Solo5 ABI information found in executable`);
  const v = new DataView(desc.buffer, desc.byteOffset, desc.byteLength);
  if (v.getUint32(0, true) !== HVT_ABI_TARGET) throw new KernelError(`${kernel}: Executable is not for the solo5-hvt target`);
  const version = v.getUint32(4, true);
  if (version !== HVT_ABI_VERSION) throw new KernelError(`${kernel}: Executable requests unsupported ABI version ${version}`);
}
