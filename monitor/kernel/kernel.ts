// Opening a unikernel: the file (or bytes), its ELF headers, ABI note and
// manifest (docs/abi.md §3.4, §3.5, §4.2), all checked before anything is built.
import { I64_MAX } from '../abi/constants.js';
import { closeSync, readSync } from 'node:fs';
import type { HostIo } from '../backend/host.js';
import { openFile } from '../backend/open-file.js';
import { type ByteSource, bufferSource, checkAbiNote, type ElfImage, findNote, MANIFEST_NOTE, readElf } from './elf.js';
import { KernelError, withErrno } from '../errors.js';
import { Manifest } from './manifest.js';

const FS_FILES: KernelFiles = { openFile, close: closeSync };

export interface Kernel {
  /** How the kernel is named in messages (the path as given). */
  readonly name: string;
  readonly src: ByteSource;
  readonly elf: ElfImage;
  /** The validated manifest: the working copy modules attach devices to. */
  readonly manifest: Manifest;
  /** Closes the file (idempotent); called once the segments are loaded. */
  close(): void;
}

/** Reads a kernel through an open descriptor; read errors become KernelErrors naming it. */
export function fdSource(fd: number, name: string): ByteSource {
  return {
    read(buf, position) {
      // No file is that large: a read there finds nothing, like one past EOF.
      // The kernel's off_t is signed 64-bit.
      if (position + BigInt(buf.length) > I64_MAX) return 0;
      try {
        return readSync(fd, buf, 0, buf.length, position);
      } catch (e) {
        throw new KernelError(withErrno(`${name}: Could not read`, e), { cause: e });
      }
    },
  };
}

function inspect(name: string, src: ByteSource, closeOnce: () => void): Kernel {
  let open = true;
  const close = () => {
    if (open) closeOnce();
    open = false;
  };
  try {
    const elf = readElf(src, name);
    checkAbiNote(src, elf, name);
    const desc = findNote(src, elf, name, MANIFEST_NOTE);
    if (!desc) throw new KernelError(`${name}: No Solo5 manifest found in executable`);
    return { name, src, elf, manifest: Manifest.parse(desc, name), close };
  } catch (e) {
    close();
    if (e instanceof KernelError) throw e;
    // A read error (EIO, EISDIR, …) while reading headers or notes.
    throw new KernelError(withErrno(`${name}: Could not read`, e), { cause: e });
  }
}

/** How a kernel file is opened and closed (HostIo's calls, or Node's fs). */
export type KernelFiles = Pick<HostIo, 'openFile' | 'close'>;

/**
 * Opens and checks a kernel file; the descriptor stays open for loading.
 * `files` opens and closes it: Node's fs by default; a library worker passes
 * its HostIo (whose opening a confined worker asks of the embedding
 * program's thread, library/broker.ts).
 */
export function openKernel(path: string, files: KernelFiles = FS_FILES): Kernel {
  let fd: number;
  try {
    fd = files.openFile(path, 'r');
  } catch (e) {
    throw new KernelError(withErrno(`${path}: Could not open`, e), { cause: e });
  }
  return inspect(path, fdSource(fd, path), () => files.close(fd));
}

/** Checks a kernel given as bytes (library use); `name` is used in messages. */
export function kernelFromBytes(bytes: Uint8Array, name = '<kernel bytes>'): Kernel {
  return inspect(name, bufferSource(bytes), () => {});
}
