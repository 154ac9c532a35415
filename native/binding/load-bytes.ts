// Loading an addon that exists only as bytes in memory: the self-contained
// executable carries ukvm_native.node inside itself, and the dynamic loader
// only maps files. Node has no memfd_create, so the bytes go into an
// anonymous file: O_TMPFILE (no name ever exists) in the first directory that
// takes one, or, where the filesystem lacks O_TMPFILE, a fresh file that is
// unlinked the moment it exists. Either way the loader opens it as
// /proc/self/fd/N, so it maps exactly the inode written here whatever happens
// to the directory, and nothing is left behind, not even after a crash
// (the descriptor stays open while the addon is loaded, see below).
// The directory's filesystem must allow executable mappings: a noexec mount
// (urunc mounts /tmp noexec) makes dlopen fail, and the next one is tried.
// Without /proc the loader gets the file by its name instead (unlinked right
// after loading).
import { closeSync, existsSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, isAbsolute, join } from 'node:path';

/** Linux x86_64: O_TMPFILE is __O_TMPFILE | O_DIRECTORY (Node's fs.constants lacks it). */
const O_TMPFILE = 0o20200000;
const O_RDWR = 2;
const O_CREAT = 0o100;
const O_EXCL = 0o200;

/**
 * Where to try, in order: $TMPDIR, the usual memory filesystems, then /dev
 * (urunc's /dev is a tmpfs without noexec: its only exec-capable writable
 * place) and the executable's own directory.
 */
export function scratchDirectories(env: NodeJS.ProcessEnv = process.env, execPath = process.execPath): string[] {
  const dirs = [env['TMPDIR'], '/dev/shm', '/tmp', '/run', '/var/tmp', '/dev', dirname(execPath)];
  return [...new Set(dirs.filter((d): d is string => d !== undefined && d !== '' && isAbsolute(d)))];
}

interface Scratch {
  fd: number;
  /** The file's name while it has one (no O_TMPFILE and no /proc). */
  path?: string;
}

/** A short reason: the errno code of a system call, the loader's own words for a dlopen failure. */
function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code !== undefined && !err.code.startsWith('ERR_')) return err.code;
  const first = String(err.message ?? e).split('\n')[0] ?? '';
  return first.slice(first.lastIndexOf(': ') + 1).trim() || first;
}

function makeScratch(dir: string, procfs: boolean): Scratch {
  if (procfs) {
    try {
      return { fd: openSync(dir, O_TMPFILE | O_RDWR, 0o700) };
    } catch (e) {
      // EISDIR/EOPNOTSUPP/EINVAL: this filesystem or kernel has no O_TMPFILE; try a named file.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EISDIR' && code !== 'EOPNOTSUPP' && code !== 'EINVAL') throw e;
    }
  }
  const path = join(dir, `.ukvm-ts-addon-${process.pid}-${randomBytes(8).toString('hex')}.node`);
  // O_EXCL: never follows a planted symlink or reuses someone's file.
  const fd = openSync(path, O_CREAT | O_EXCL | O_RDWR, 0o700);
  if (!procfs) return { fd, path };
  unlinkSync(path);
  return { fd };
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
}

export interface LoadedAddon {
  exports: unknown;
  /**
   * The name the loader knows it by. Another thread's process.dlopen of this
   * name gets the same object (glibc matches loaded objects by name first),
   * so worker threads share the main thread's addon and its vCPU table.
   */
  path: string;
}

/**
 * dlopens an addon given as bytes. Throws one Error naming each directory
 * tried and why it did not do.
 */
export function loadAddonBytes(bytes: Uint8Array, label: string, dirs: readonly string[] = scratchDirectories()): LoadedAddon {
  const procfs = existsSync('/proc/self/fd');
  const tried: string[] = [];
  for (const dir of dirs) {
    let scratch: Scratch;
    try {
      scratch = makeScratch(dir, procfs);
    } catch (e) {
      tried.push(`${dir}: ${reason(e)}`);
      continue;
    }
    let loaded = false;
    try {
      writeAll(scratch.fd, bytes);
      const module = { exports: {} as unknown };
      const path = scratch.path ?? `/proc/self/fd/${scratch.fd}`;
      process.dlopen(module, path);
      loaded = true;
      return { exports: module.exports, path };
    } catch (e) {
      // Most often "failed to map segment from shared object": a noexec mount.
      tried.push(`${dir}: ${reason(e)}`);
    } finally {
      // A loaded object keeps its descriptor for the life of the process:
      // the dynamic loader knows it by the name /proc/self/fd/N, and if N
      // were closed and reused, a later load by that name would be handed
      // this object instead of opening the new file. A named file goes now.
      if (!loaded || scratch.path !== undefined) closeSync(scratch.fd);
      if (scratch.path !== undefined) {
        try {
          unlinkSync(scratch.path);
        } catch {
          // already gone: nothing to clean up
        }
      }
    }
  }
  throw new Error(`cannot load the embedded ${label}: it needs a writable directory on a filesystem that allows executable mappings (tried ${tried.join('; ') || 'none'})`);
}
