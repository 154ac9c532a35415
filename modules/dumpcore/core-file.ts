// Writing a core file (docs/abi.md §15.3, §15.6): created exclusively with
// mode 0600, the head at offset 0, then guest memory as a sparse file.
//
// Which pages are written: those that are not all zero. The reference asks
// the host which pages are resident (mincore); from here the host mapping's
// residency cannot be asked, and a page that is not resident reads as zero
// anyway, so a hole is exactly what such a page reads as: the file's bytes
// equal guest memory byte for byte. A resident page the guest zeroed is left
// out too, which only makes the file smaller. The price: guest RAM is a
// shared mapping, so reading a page the guest never touched makes the host
// allocate it. Dumping a 512 MiB guest takes ~1.2 s and briefly adds its
// size to the monitor's resident memory (a 4 GiB guest ~16 s), once, as the
// run ends; asking the host (mincore) would avoid both.
import { closeSync, constants, ftruncateSync, openSync, writeSync } from 'node:fs';
import { MEMORY_OFFSET } from './elf-core.js';
import { type GuestImage, HOST_PAGE } from './guest-image.js';

/** The reference's file name, whatever the program is called (§15.3; tools look for it). */
export function coreFileName(pid: number): string {
  return `core.solo5-hvt.${pid}`;
}

/** DIR/NAME as the reference prints it. */
export function corePath(dir: string, pid: number): string {
  return `${dir.endsWith('/') ? dir : `${dir}/`}${coreFileName(pid)}`;
}

/**
 * Creates path for writing: O_CREAT|O_EXCL (an existing file, or a symbolic
 * link of that name, is never touched: EEXIST), mode 0600 (less if the umask
 * says so). Throws Node's error.
 */
export function createExclusive(path: string): number {
  return openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
}

/** Writes all of bytes at position (a regular file takes them or fails). */
function writeAll(fd: number, bytes: Uint8Array, position: number): void {
  for (let done = 0; done < bytes.length; ) {
    const n = writeSync(fd, bytes, done, bytes.length - done, position + done);
    if (n <= 0) throw new Error(`write returned ${n}`);
    done += n;
  }
}

/** Pages examined together: an all-zero chunk is skipped with one comparison. */
const CHUNK = 512 * HOST_PAGE;
const ZERO = new Uint8Array(CHUNK);

const isZero = (bytes: Uint8Array) => Buffer.compare(bytes, ZERO.subarray(0, bytes.length)) === 0;

export interface MemoryWritten {
  /** Pages written (not all zero). */
  pages: number;
  /** Pages of guest memory. */
  total: number;
  /** Pages the monitor may not read (host no-access segments), left as holes. */
  unreadable: number;
}

/**
 * Writes head at 0 and the pages of guest memory that are not all zero at
 * MEMORY_OFFSET + their address, coalescing neighbours into one write; the
 * rest are holes, and the file is extended to its full length (so a core
 * whose top pages are holes is not short). Throws on a write error.
 */
export function writeCore(fd: number, head: Uint8Array, image: GuestImage): MemoryWritten {
  if (head.length !== MEMORY_OFFSET) throw new RangeError(`a core head is ${MEMORY_OFFSET} bytes, got ${head.length}`);
  writeAll(fd, head, 0);
  const out: MemoryWritten = { pages: 0, total: Math.ceil(image.size / HOST_PAGE), unreadable: 0 };
  let run = -1; // start of the pending run of pages to write, or −1
  const flush = (end: number) => {
    if (run < 0) return;
    const bytes = image.view(run, end - run);
    if (bytes === null) throw new Error(`guest memory at 0x${run.toString(16)} became unreadable`);
    writeAll(fd, bytes, MEMORY_OFFSET + run);
    run = -1;
  };
  for (let chunk = 0; chunk < image.size; chunk += CHUNK) {
    const chunkEnd = Math.min(chunk + CHUNK, image.size);
    const whole = image.view(chunk, chunkEnd - chunk);
    if (whole !== null && isZero(whole)) continue;
    for (let page = chunk; page < chunkEnd; page += HOST_PAGE) {
      const len = Math.min(HOST_PAGE, chunkEnd - page);
      const bytes = whole === null ? image.view(page, len) : whole.subarray(page - chunk, page - chunk + len);
      if (bytes === null) out.unreadable++;
      if (bytes === null || isZero(bytes)) {
        flush(page);
        continue;
      }
      if (run < 0) run = page;
      out.pages++;
    }
    flush(chunkEnd);
  }
  ftruncateSync(fd, MEMORY_OFFSET + image.size);
  return out;
}

/** Closes a descriptor createExclusive() made; errors are the caller's to report. */
export function closeCore(fd: number): void {
  closeSync(fd);
}
