// `elftool query-manifest` and `query-abi`: the notes of a unikernel as
// the JSON Solo5's solo5-elftool prints (docs/abi.md §4.6.2), read with the
// tender's own ELF and note readers (kernel/elf.ts), so a file the tender
// refuses is refused here with the same message. Like the reference, each
// query looks only for its own note: query-manifest works on an image of
// another target, and query-abi reports whatever target and version it finds.
import { KernelError } from '../errors.js';
import { ABI_NOTE, type ByteSource, findNote, MANIFEST_NOTE, readElf } from '../kernel/elf.js';
import { DeviceType, Manifest, MFT_NAME_SIZE, typeName } from '../kernel/manifest.js';

/** Solo5's ABI targets (elf_abi.h), by number. */
const TARGETS: Record<number, string> = { 1: 'hvt', 2: 'spt', 3: 'virtio', 4: 'muen', 5: 'genode', 6: 'xen' };

/** The manifest as solo5-elftool query-manifest prints it (the reserved entries left out). */
export function queryManifest(src: ByteSource, kernel: string): Buffer {
  const desc = findNote(src, readElf(src, kernel), kernel, MANIFEST_NOTE);
  if (!desc) throw new KernelError(`${kernel}: No Solo5 manifest found in executable`);
  let mft: Manifest;
  try {
    mft = Manifest.parse(desc, kernel);
  } catch (e) {
    if (!(e instanceof KernelError)) throw e;
    throw new KernelError(`${kernel}: Manifest validation failed`, { cause: e });
  }
  const lines: Buffer[] = [];
  for (let i = 0; i < mft.entries; i++) {
    if (mft.type(i) >= DeviceType.RESERVED_FIRST) continue;
    lines.push(Buffer.concat([Buffer.from('    { "name": "'), jsonBytes(nameBytes(mft, i)), Buffer.from(`", "type": "${typeName(mft.type(i))}" }`)]));
  }
  // The reference decides the comma by the entry's index, so a reserved
  // entry last leaves a dangling one; here commas go between printed lines.
  const devices = lines.map((l, k) => Buffer.concat([l, Buffer.from(k === lines.length - 1 ? '\n' : ',\n')]));
  return Buffer.concat([
    Buffer.from('{\n  "type": "solo5.manifest",\n  "version": 1,\n  "devices": [\n'),
    ...devices,
    Buffer.from('  ]\n}\n'),
  ]);
}

/** The ABI note as solo5-elftool query-abi prints it. */
export function queryAbi(src: ByteSource, kernel: string): Buffer {
  const desc = findNote(src, readElf(src, kernel), kernel, ABI_NOTE);
  // Shorter than target + version: treated as absent, as the tender does.
  if (!desc || desc.length < 8) throw new KernelError(`${kernel}: No Solo5 ABI information found in executable`);
  const v = new DataView(desc.buffer, desc.byteOffset, desc.byteLength);
  const target = TARGETS[v.getUint32(0, true)] ?? 'unknown';
  return Buffer.from(`{\n  "type": "solo5.abi",\n  "target": "${target}",\n  "version": ${v.getUint32(4, true)}\n}\n`);
}

/** An entry's name as the bytes before its NUL (the manifest guarantees one). */
function nameBytes(mft: Manifest, index: number): Uint8Array {
  const base = mft.entryOffset(index);
  const raw = mft.bytes.subarray(base, base + MFT_NAME_SIZE);
  const nul = raw.indexOf(0);
  return raw.subarray(0, nul < 0 ? raw.length : nul);
}

/**
 * A name's bytes inside a JSON string. The reference prints them as they
 * are; names from gen-manifest are alphanumeric and come out identical, but
 * a hand-made note could hold a quote, a backslash or control bytes, which
 * are escaped here so the output stays JSON and cannot drive a terminal.
 * Other bytes (UTF-8 included) pass unchanged.
 */
function jsonBytes(bytes: Uint8Array): Buffer {
  const out: number[] = [];
  for (const b of bytes) {
    if (b === 0x22 || b === 0x5c) out.push(0x5c, b);
    else if (b < 0x20 || b === 0x7f) out.push(...Buffer.from(`\\u${b.toString(16).padStart(4, '0')}`));
    else out.push(b);
  }
  return Buffer.from(out);
}
