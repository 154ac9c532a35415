// ELF header acceptance (docs/abi.md §3.1) and the Solo5 note reader (§3.4, §3.5,
// messages N0–N7 of §3.6), over images made by test/helpers/elf-builder.ts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ABI_NOTE, bufferSource, checkAbiNote, findNote, MANIFEST_NOTE, readElf } from '../../monitor/kernel/elf.js';
import { KernelError } from '../../monitor/errors.js';
import { kernelFromBytes, openKernel } from '../../monitor/kernel/kernel.js';
import { Manifest } from '../../monitor/kernel/manifest.js';
import {
  abiNote,
  buildElf,
  ELFCLASS32,
  ELFDATA2MSB,
  EM_AARCH64,
  ET_DYN,
  kernel,
  kernelSpec,
  type KernelOptions,
  manifestNote,
  MFT_BLOCK_BASIC,
  MFT_NET_BASIC,
  note,
  noteIndex,
  PF_R,
  PT_INTERP,
  PT_LOAD,
  PT_NOTE,
  SHT_NOTE,
  TEXT_VADDR,
} from '../helpers/elf-builder.js';

const K = 'test/k.hvt';
const IE = `${K}: invalid executable: `;
const HEADER_INVALID = `${IE}invalid or unsupported executable (elf header invalid while loading note)`;
const NO_ABI = `${K}: No Solo5 ABI information found in executable`;
const NO_MANIFEST = `${K}: No Solo5 manifest found in executable`;
const ABI_PH = noteIndex({}, 'abi'); // 4
const MFT_PH = noteIndex({}, 'manifest'); // 5

/** Runs fn and returns the KernelError it throws (fails the test otherwise). */
function kernelError(fn: () => unknown): KernelError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(KernelError);
    return e as KernelError;
  }
  throw new Error('expected a KernelError, but nothing was thrown');
}

/** The tender's whole note-reading sequence (kernel.ts): header, ABI note, manifest note, manifest. */
function inspect(bytes: Uint8Array) {
  return kernelFromBytes(bytes, K);
}

const rejects = (bytes: Uint8Array) => kernelError(() => inspect(bytes)).message;

/** p_offset of program header i in a built image. */
function phOffset(bytes: Uint8Array, i: number): number {
  return Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(64 + 56 * i + 8, true));
}

describe('the default built image', () => {
  it('is accepted by readElf, checkAbiNote, findNote(MANIFEST_NOTE) and Manifest.parse', () => {
    const bytes = kernel();
    const src = bufferSource(bytes);
    const elf = readElf(src, K);
    expect(elf.entry).toBe(BigInt(TEXT_VADDR));
    expect(elf.phdrs.map((p) => p.type)).toEqual([PT_LOAD, PT_LOAD, PT_LOAD, PT_LOAD, PT_NOTE, PT_NOTE]);
    expect(() => checkAbiNote(src, elf, K)).not.toThrow();
    const abi = findNote(src, elf, K, ABI_NOTE);
    expect(Array.from(abi ?? [])).toEqual([1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const desc = findNote(src, elf, K, MANIFEST_NOTE);
    expect(desc?.length).toBe(8 + 104);
    const mft = Manifest.parse(desc as Uint8Array, K);
    expect(mft.entries).toBe(1);
    expect(inspect(bytes).manifest.entries).toBe(1);
  });

  it('reads every program header field as an exact u64', () => {
    const big = (1n << 64n) - 3n;
    const bytes = kernel({ after: [{ type: 0x60000000, flags: 0xdeadbeef, offset: big, vaddr: big - 1n, filesz: big - 2n, memsz: big - 3n, align: big - 4n }] });
    const ph = readElf(bufferSource(bytes), K).phdrs[6];
    expect(ph).toEqual({ index: 6, type: 0x60000000, flags: 0xdeadbeef, offset: big, vaddr: big - 1n, filesz: big - 2n, memsz: big - 3n, align: big - 4n });
  });
});

describe('ELF header acceptance (§3.1, N0, N0b, N0c)', () => {
  it('N0: a header shorter than 64 bytes', () => {
    expect(rejects(kernel({ truncate: 63 }))).toBe(`${IE}elf header does not match the expected size (63 != 64)`);
    expect(rejects(kernel({ truncate: 4 }))).toBe(`${IE}elf header does not match the expected size (4 != 64)`);
    expect(rejects(new Uint8Array(0))).toBe(`${IE}elf header does not match the expected size (0 != 64)`);
  });

  it.each([
    ['bad magic byte 0', { magic: [0x7e, 0x45, 0x4c, 0x46] }],
    ['bad magic byte 3', { magic: [0x7f, 0x45, 0x4c, 0x47] }],
    ['class 32', { class: ELFCLASS32 }],
    ['class 0', { class: 0 }],
    ['big-endian', { data: ELFDATA2MSB }],
    ['data 0', { data: 0 }],
    ['machine aarch64 (183)', { machine: EM_AARCH64 }],
    ['machine i386 (3)', { machine: 3 }],
    ['type ET_DYN', { type: ET_DYN }],
    ['type ET_REL', { type: 1 }],
    ['type ET_CORE', { type: 4 }],
    ['e_version 0', { version: 0 }],
    ['e_version 2', { version: 2 }],
    ['e_ehsize 52', { ehsize: 52 }],
    ['e_ehsize 65', { ehsize: 65 }],
    ['e_phentsize 32', { phentsize: 32 }],
    ['e_phentsize 57', { phentsize: 57 }],
    ['e_phnum 0', { phnum: 0 }],
  ])('N0b: %s', (_what, header) => {
    expect(rejects(kernel({ header }))).toBe(HEADER_INVALID);
  });

  it('N0b: a text file of 64 bytes or more', () => {
    expect(rejects(new TextEncoder().encode('#!/bin/sh\necho this is not an ELF file at all, just a shell script\n'))).toBe(HEADER_INVALID);
  });

  it('does not check EI_OSABI, EI_ABIVERSION, EI_VERSION, e_flags or section headers', () => {
    const bytes = kernel({ header: { osabi: 255, identVersion: 0, flags: 0x12345678, shoff: (1n << 64n) - 1n, shnum: 0xffff, shentsize: 1, shstrndx: 0xffff } });
    bytes[8] = 0x42; // EI_ABIVERSION
    expect(inspect(bytes).manifest.entries).toBe(1);
  });

  it('N0c: a program header table cut short by the end of the file', () => {
    const bytes = kernel();
    // 6 headers = 336 bytes at offset 64; keep 2 whole headers and 10 bytes.
    expect(rejects(bytes.slice(0, 64 + 2 * 56 + 10))).toBe(`${IE}program header does not match the expected size (122 != 336 while loading note)`);
    expect(rejects(bytes.slice(0, 64))).toBe(`${IE}program header does not match the expected size (0 != 336 while loading note)`);
  });

  it('N0c: e_phoff or e_phnum pointing past the end of the file', () => {
    const len = kernel().length;
    expect(rejects(kernel({ header: { phoff: len - 100 } }))).toBe(`${IE}program header does not match the expected size (100 != 336 while loading note)`);
    expect(rejects(kernel({ header: { phoff: 1n << 40n } }))).toBe(`${IE}program header does not match the expected size (0 != 336 while loading note)`);
    expect(rejects(kernel({ header: { phoff: (1n << 64n) - 1n } }))).toBe(`${IE}program header does not match the expected size (0 != 336 while loading note)`);
    expect(rejects(kernel({ header: { phnum: 0xffff } }))).toBe(
      `${IE}program header does not match the expected size (${len - 64} != ${0xffff * 56} while loading note)`,
    );
  });
});

describe('the ABI note (§3.4)', () => {
  it('missing: no ABI PT_NOTE at all', () => {
    expect(rejects(kernel({ abi: null }))).toBe(NO_ABI);
  });

  it.each([1, 4, 7])('a descriptor of %i bytes (< 8) is treated as missing', (descsz) => {
    expect(rejects(kernel({ abi: { descsz } }))).toBe(NO_ABI);
  });

  it('a descriptor of exactly 8 bytes (target and version only) is enough', () => {
    expect(inspect(kernel({ abi: { descsz: 8 } })).manifest.entries).toBe(1);
    expect(inspect(kernel({ abi: { desc: new Uint8Array([1, 0, 0, 0, 2, 0, 0, 0]) } })).manifest.entries).toBe(1);
  });

  it.each([0, 2, 3, 6, 0xffffffff])('wrong target %i', (target) => {
    expect(rejects(kernel({ abi: { target } }))).toBe(`${K}: Executable is not for the solo5-hvt target`);
  });

  it.each([0, 1, 3, 0xffffffff])('wrong version %i', (version) => {
    expect(rejects(kernel({ abi: { version } }))).toBe(`${K}: Executable requests unsupported ABI version ${version}`);
  });

  it('checks the target before the version', () => {
    expect(rejects(kernel({ abi: { target: 2, version: 3 } }))).toBe(`${K}: Executable is not for the solo5-hvt target`);
  });

  it('ignores notes with another name, name size or type', () => {
    expect(rejects(kernel({ abi: { name: 'Solo6' } }))).toBe(NO_ABI);
    expect(rejects(kernel({ abi: { name: 'solo5' } }))).toBe(NO_ABI);
    expect(rejects(kernel({ abi: { namesz: 5 } }))).toBe(NO_ABI);
    expect(rejects(kernel({ abi: { namesz: 7 } }))).toBe(NO_ABI);
    expect(rejects(kernel({ abi: { name: 'Solo5\0\0' } }))).toBe(NO_ABI); // namesz 8
    expect(rejects(kernel({ abi: { type: 0x32494241 } }))).toBe(NO_ABI);
  });

  it('looks only at the first note of each PT_NOTE', () => {
    const openbsd = note({ name: 'OpenBSD', type: 1, desc: new Uint8Array(4) });
    const both = new Uint8Array([...openbsd, ...abiNote()]);
    expect(rejects(kernel({ abi: both }))).toBe(NO_ABI);
    // The Solo5 layout: the OpenBSD note in a PT_NOTE of its own, before the ABI PT_NOTE.
    expect(inspect(kernel({ before: [{ type: PT_NOTE, content: openbsd }] })).manifest.entries).toBe(1);
  });

  it('the first matching PT_NOTE wins', () => {
    const v3 = { type: PT_NOTE, content: abiNote({ version: 3 }) };
    expect(inspect(kernel({ after: [v3] })).manifest.entries).toBe(1);
    expect(rejects(kernel({ before: [v3] }))).toBe(`${K}: Executable requests unsupported ABI version 3`);
  });

  it('finds notes through program headers, never through sections', () => {
    // A perfectly good SHT_NOTE section but no PT_NOTE: not found.
    expect(rejects(kernel({ abi: null, sections: [{ type: SHT_NOTE, content: abiNote() }] }))).toBe(NO_ABI);
    // The note bytes inside a PT_LOAD (as in real binaries) do not count either.
    const loads = [{ type: PT_LOAD, flags: PF_R, vaddr: TEXT_VADDR, content: abiNote() }];
    expect(rejects(kernel({ abi: null, loads }))).toBe(NO_ABI);
    // And a PT_NOTE with no section describing it is found.
    expect(inspect(kernel({ sections: [] })).manifest.entries).toBe(1);
  });

  it('ignores PT_INTERP and other program header types', () => {
    const interp = { type: PT_INTERP, content: new TextEncoder().encode('/nonexistent/solo5/\0') };
    expect(inspect(kernel({ before: [interp] })).manifest.entries).toBe(1);
  });

  it('ABI and manifest searches each walk all PT_NOTEs from the start', () => {
    // Manifest PT_NOTE before the ABI PT_NOTE.
    const bytes = buildElf({ ...kernelSpec(), segments: [...kernelSpec().segments].reverse() });
    expect(inspect(bytes).manifest.entries).toBe(1);
  });

  it('the ABI note is looked for before the manifest note', () => {
    expect(rejects(kernel({ abi: null, manifest: { descsz: 1 } }))).toBe(NO_ABI);
    expect(rejects(kernel({ abi: { version: 9 }, manifest: null }))).toBe(`${K}: Executable requests unsupported ABI version 9`);
  });
});

describe('note reader messages (§3.6 N1–N7)', () => {
  it('N1: a PT_NOTE with p_filesz < 12 is fatal, whatever it holds', () => {
    expect(rejects(kernel({ before: [{ type: PT_NOTE, content: new Uint8Array(8) }] }))).toBe(
      `${IE}phdr[0].p_filesz note does not fall within valid size (8 < 12)`,
    );
    expect(rejects(kernel({ abiPhdr: { filesz: 11 } }))).toBe(`${IE}phdr[${ABI_PH}].p_filesz note does not fall within valid size (11 < 12)`);
    expect(rejects(kernel({ abiPhdr: { filesz: 0 } }))).toBe(`${IE}phdr[${ABI_PH}].p_filesz note does not fall within valid size (0 < 12)`);
  });

  it('N1 is only reached by a search that gets that far', () => {
    // After both Solo5 notes: both searches stop before it.
    expect(inspect(kernel({ after: [{ type: PT_NOTE, filesz: 3 }] })).manifest.entries).toBe(1);
    // Between them: the ABI search stops before it, the manifest search does not.
    const o: KernelOptions = { abi: null, before: [{ type: PT_NOTE, content: abiNote() }], manifestPhdr: { filesz: 5 } };
    expect(rejects(kernel(o))).toBe(`${IE}phdr[${noteIndex(o, 'manifest')}].p_filesz note does not fall within valid size (5 < 12)`);
  });

  it('a PT_NOTE with 12 <= p_filesz < 20 is skipped', () => {
    expect(rejects(kernel({ abiPhdr: { filesz: 19 } }))).toBe(NO_ABI);
    expect(inspect(kernel({ before: [{ type: PT_NOTE, content: new Uint8Array(16) }] })).manifest.entries).toBe(1);
    expect(inspect(kernel({ before: [{ type: PT_NOTE, filesz: 12, offset: 1n << 50n }] })).manifest.entries).toBe(1);
  });

  it('N2: the 20-byte note header cannot be read', () => {
    expect(rejects(kernel({ abiPhdr: { offset: 1n << 40n } }))).toBe(`${K}: phdr[${ABI_PH}] bytes read mismatches note size (0 != 20)`);
    const at = phOffset(kernel(), ABI_PH);
    expect(rejects(kernel({ truncate: at + 10 }))).toBe(`${K}: phdr[${ABI_PH}] bytes read mismatches note size (10 != 20)`);
  });

  it('N3: descsz 0 or above the maximum', () => {
    const n3 = (ph: number, d: number, max: number) => `${IE}phdr[${ph}] note does not fall within valid size (${d} < 1 || ${d} > ${max})`;
    expect(rejects(kernel({ abi: { descsz: 0 } }))).toBe(n3(ABI_PH, 0, 32));
    expect(rejects(kernel({ abi: { descsz: 33 } }))).toBe(n3(ABI_PH, 33, 32));
    expect(rejects(kernel({ abi: { descsz: 0xffffffff } }))).toBe(n3(ABI_PH, 0xffffffff, 32));
    expect(rejects(kernel({ manifest: { descsz: 0 } }))).toBe(n3(MFT_PH, 0, 6668));
    expect(rejects(kernel({ manifest: { descsz: 6669 } }))).toBe(n3(MFT_PH, 6669, 6668));
  });

  it('N3 boundaries: descsz 32 (ABI) and 6668 (manifest) pass the size check', () => {
    const abi32 = new Uint8Array(32);
    abi32.set([1, 0, 0, 0, 2, 0, 0, 0]);
    expect(inspect(kernel({ abi: { desc: abi32 } })).manifest.entries).toBe(1);
    const devices = Array.from({ length: 63 }, (_, i) => ({ name: `d${i}`, type: MFT_BLOCK_BASIC }));
    const n = manifestNote({ devices });
    expect(new DataView(n.buffer).getUint32(4, true)).toBe(6668);
    expect(inspect(kernel({ manifest: n })).manifest.entries).toBe(64);
  });

  it('N4: p_filesz < 20 + descsz', () => {
    expect(rejects(kernel({ abi: { descsz: 32 } }))).toBe(`${IE}phdr[${ABI_PH}] note does not fall within valid size (36 < 52)`);
    expect(rejects(kernel({ abiPhdr: { filesz: 30 } }))).toBe(`${IE}phdr[${ABI_PH}] note does not fall within valid size (30 < 36)`);
    expect(rejects(kernel({ manifestPhdr: { filesz: 135 } }))).toBe(`${IE}phdr[${MFT_PH}] note does not fall within valid size (135 < 136)`);
  });

  it('N6: the buggy note (manifest descsz = 1) prints the wrapped size, with "invalid executable" instead of INV_EXE', () => {
    expect(rejects(kernel({ manifest: { descsz: 1 } }))).toBe(
      `${K}: invalid executable: phdr[${MFT_PH}] note does not fall within valid size (18446744073709551613 <= 0 || 18446744073709551613 > 1)`,
    );
    expect(rejects(kernel({ manifest: { descsz: 1 } }))).not.toContain('INV_EXE');
  });

  it.each([
    [2, 18446744073709551614n],
    [3, 18446744073709551615n],
    [4, 0n],
  ])('N6: manifest descsz %i leaves no usable descriptor', (descsz, usable) => {
    expect(rejects(kernel({ manifest: { descsz } }))).toBe(
      `${IE}phdr[${MFT_PH}] note does not fall within valid size (${usable} <= 0 || ${usable} > ${descsz})`,
    );
  });

  it('N6 boundary: manifest descsz 5 leaves one byte, rejected as an invalid manifest', () => {
    expect(rejects(kernel({ manifest: { descsz: 5 } }))).toBe(`${K}: Solo5 manifest is invalid`);
  });

  it('N7: the descriptor cannot be read in full', () => {
    const abiAt = phOffset(kernel(), ABI_PH);
    expect(rejects(kernel({ truncate: abiAt + 28 }))).toBe(`${K}: phdr[${ABI_PH}] bytes read mismatches note size (8 != 16)`);
    const mftAt = phOffset(kernel(), MFT_PH);
    expect(rejects(kernel({ truncate: mftAt + 24 + 50 }))).toBe(`${K}: phdr[${MFT_PH}] bytes read mismatches note size (50 != 112)`);
    // The descriptor offset is fixed by the note layout, not by p_filesz.
    expect(rejects(kernel({ truncate: mftAt + 24 }))).toBe(`${K}: phdr[${MFT_PH}] bytes read mismatches note size (0 != 112)`);
  });
});

describe('the manifest note (§3.5)', () => {
  it('missing', () => {
    expect(rejects(kernel({ manifest: null }))).toBe(NO_MANIFEST);
    expect(rejects(kernel({ manifest: { type: 0x3154464e } }))).toBe(NO_MANIFEST);
    expect(rejects(kernel({ manifest: { name: 'Solo' } }))).toBe(NO_MANIFEST);
  });

  it('the manifest starts 24 bytes into the note, after 4 padding bytes that are never read', () => {
    const n = manifestNote({ devices: [{ name: 'disk', type: MFT_BLOCK_BASIC }] });
    n.fill(0xee, 20, 24);
    const mft = inspect(kernel({ manifest: n })).manifest;
    expect(mft.entries).toBe(2);
    expect(mft.name(1)).toBe('disk');
  });

  it('a manifest note in the first note of a later PT_NOTE is found', () => {
    const o: KernelOptions = { manifest: null, after: [{ type: PT_NOTE, content: manifestNote({ devices: [{ name: 'net0', type: MFT_NET_BASIC }] }) }] };
    expect(inspect(kernel(o)).manifest.find('net0', MFT_NET_BASIC)).toBe(1);
  });

  it('invalid manifests are reported as such', () => {
    expect(rejects(kernel({ manifest: { version: 2 } }))).toBe(`${K}: Solo5 manifest is invalid`);
    expect(rejects(kernel({ manifest: { count: 2 } }))).toBe(`${K}: Solo5 manifest is invalid`);
    expect(rejects(kernel({ manifest: { devices: [{ name: 'x', attached: 1 }] } }))).toBe(`${K}: Solo5 manifest is invalid`);
  });
});

describe('kernels read from a file descriptor (openKernel)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ukvm-elf-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, bytes: Uint8Array) => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };

  it('gives the same results as the in-memory source', () => {
    const p = file('ok.hvt', kernel());
    const k = openKernel(p);
    expect(k.name).toBe(p);
    expect(k.manifest.entries).toBe(1);
    k.close();
    const bad = file('buggy.hvt', kernel({ manifest: { descsz: 1 } }));
    expect(kernelError(() => openKernel(bad)).message).toBe(
      `${bad}: invalid executable: phdr[${MFT_PH}] note does not fall within valid size (18446744073709551613 <= 0 || 18446744073709551613 > 1)`,
    );
  });

  it('N0c / N2 with offsets far beyond the end of the file (below 2^63)', () => {
    const a = file('phoff40.hvt', kernel({ header: { phoff: 1n << 40n } }));
    expect(kernelError(() => openKernel(a)).message).toBe(`${a}: invalid executable: program header does not match the expected size (0 != 336 while loading note)`);
    const b = file('noteoff40.hvt', kernel({ abiPhdr: { offset: 1n << 40n } }));
    expect(kernelError(() => openKernel(b)).message).toBe(`${b}: phdr[${ABI_PH}] bytes read mismatches note size (0 != 20)`);
  });

  // Regression: positions >= 2^63 once reached fs.readSync, whose RangeError
  // became "Could not read: The value of "position" is out of range" instead
  // of the short-read message of §3.6 (N0c here). Now they read nothing.
  it('N0c when e_phoff >= 2^63 (fd source)', () => {
    const p = file('phoff63.hvt', kernel({ header: { phoff: 1n << 63n } }));
    expect(kernelError(() => openKernel(p)).message).toMatch(
      /: invalid executable: program header does not match the expected size \(\d+ != 336 while loading note\)$/,
    );
  });

  // Same bug, note reader: expected N2.
  it('N2 when a PT_NOTE p_offset >= 2^63 (fd source)', () => {
    const p = file('noteoff63.hvt', kernel({ abiPhdr: { offset: (1n << 64n) - 1n } }));
    expect(kernelError(() => openKernel(p)).message).toMatch(/: phdr\[4\] bytes read mismatches note size \(\d+ != 20\)$/);
  });
});
