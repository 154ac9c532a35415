// HostIo.openFile's contract over Node's fs (close-on-exec, as libuv opens
// everything), for code that runs without the addon (the CLI's kernel
// before the backend loads, unit tests): a directory is refused with the
// same EISDIR a write-mode open gives, so a kernel path naming a directory
// reads "Could not open: Is a directory" whichever mode asked. Its
// descriptors are closed with closeSync.
import { closeSync, fstatSync, openSync } from 'node:fs';
import type { FileMode } from './host.js';

export function openFile(path: string, mode: FileMode): number {
  const fd = openSync(path, mode);
  let isDir = false;
  try {
    isDir = fstatSync(fd).isDirectory();
  } catch {
    // fstat cannot fail on a descriptor just opened; reading will tell.
  }
  if (isDir) {
    closeSync(fd);
    throw Object.assign(new Error(`EISDIR: illegal operation on a directory, open '${path}'`), { errno: -21, code: 'EISDIR', syscall: 'open', path });
  }
  return fd;
}
