// A root filesystem shaped like the one urunc (the containerd runtime for
// unikernels) gives the tender it execs, after its source
// (pkg/unikontainers/rootfs.go, prepareMonRootfs): the tender file
// bind-mounted at its host path (here read-only), /lib, /lib64 and /usr/lib
// bind-mounted from the host (read-only here too), a tmpfs /dev (nosuid,
// mode 755) holding only the device nodes null, urandom, kvm and net/tun,
// made with mknod like urunc does, a tmpfs /tmp mounted noexec, and /proc.
// Nothing else: no /etc, no /bin, no shell, no node.
//
// Every mount is made inside a private mount namespace (unshare -m) of the
// command that then chroots and execs the tender, so the mounts vanish with
// that process, whatever happens to the test; the directory left on the
// host holds only the copied files and is removed by destroy().
import { mkdirSync, mkdtempSync, rmSync, statSync, copyFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Where urunc puts the tender: the path it found on the host's PATH. */
export const TENDER_PATH = '/usr/local/bin/solo5-hvt';

export interface UruncRootOptions {
  /**
   * Make the root itself read-only (urunc leaves the container's root as it
   * is, usually writable): then the tender's only writable places are the
   * tmpfs /dev and the noexec /tmp.
   */
  readOnlyRoot?: boolean;
  /**
   * Make /dev read-only after the nodes are made: with readOnlyRoot, no
   * directory both takes a new file and allows executable mappings.
   */
  readOnlyDev?: boolean;
  /** Leave /proc unmounted (urunc's container normally has it). */
  noProc?: boolean;
}

function devNumbers(path: string): { major: number; minor: number } {
  const rdev = statSync(path).rdev;
  return { major: Math.floor(rdev / 256) & 0xfff, minor: (rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00) };
}

// Runs as root in the new mount namespace: $1 root, $2 the tender's host
// file, $3 and $4 "ro" for a read-only root and /dev, $5 "noproc" to leave
// /proc out, then the device numbers; after "--" the tender's argv.
const SETUP = String.raw`
set -eu
R=$1; EXE=$2; ROROOT=$3; RODEV=$4; PROC=$5; shift 5
mount --make-rprivate /
mount --bind "$R" "$R"
mount --bind "$EXE" "$R${TENDER_PATH}"
mount -o remount,bind,ro "$R${TENDER_PATH}"
for d in /lib /lib64 /usr/lib; do
  mount --bind "$d" "$R$d"
  mount -o remount,bind,ro "$R$d"
done
mount -t tmpfs -o nosuid,strictatime,mode=755,size=65536k tmpfs "$R/dev"
mkdir "$R/dev/net"
for n in null urandom kvm net/tun; do
  mknod -m 666 "$R/dev/$n" c "$1" "$2"; shift 2
done
[ "$RODEV" = ro ] && mount -o remount,ro "$R/dev"
mount -t tmpfs -o nosuid,noexec,strictatime,mode=1777,size=65536k tmpfs "$R/tmp"
[ "$PROC" = noproc ] || mount -t proc proc "$R/proc"
[ "$ROROOT" = ro ] && mount -o remount,bind,ro "$R"
[ "$1" = -- ] && shift
exec /usr/bin/env -i /usr/sbin/chroot "$R" "$@"
`;

export class UruncRoot {
  private constructor(readonly dir: string, private readonly exe: string, private readonly opts: UruncRootOptions) {}

  /** A fresh root for the executable at `exe` (a file on the host). */
  static create(exe: string, opts: UruncRootOptions = {}): UruncRoot {
    const dir = mkdtempSync(join(tmpdir(), 'ukvm-urunc-'));
    for (const d of ['lib', 'lib64', 'usr/lib', 'dev', 'tmp', 'proc', 'unikernel', dirname(TENDER_PATH).slice(1)]) {
      mkdirSync(join(dir, d), { recursive: true });
    }
    writeFileSync(join(dir, TENDER_PATH), ''); // the bind mount's target
    return new UruncRoot(dir, exe, opts);
  }

  /** Copies a host file into the root at `inside` (e.g. /unikernel/app.hvt); returns `inside`. */
  add(hostFile: string, inside: string): string {
    mkdirSync(join(this.dir, dirname(inside)), { recursive: true });
    copyFileSync(hostFile, join(this.dir, inside));
    return inside;
  }

  /** The host path of a file inside the root. */
  hostPath(inside: string): string {
    return join(this.dir, inside);
  }

  /**
   * The command (program and arguments) that runs `TENDER_PATH argv…` in
   * the root, as urunc execs it: argv[0] is the tender's path, the
   * environment empty.
   */
  command(argv: readonly string[]): [string, string[]] {
    const devs = ['/dev/null', '/dev/urandom', '/dev/kvm', '/dev/net/tun'].flatMap((p) => {
      const { major, minor } = devNumbers(p);
      return [String(major), String(minor)];
    });
    return ['unshare', ['--mount', 'sh', '-c', SETUP, 'sh', this.dir, this.exe, this.opts.readOnlyRoot ? 'ro' : 'rw', this.opts.readOnlyDev ? 'ro' : 'rw', this.opts.noProc ? 'noproc' : 'proc', ...devs, '--', TENDER_PATH, ...argv]];
  }

  destroy(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
