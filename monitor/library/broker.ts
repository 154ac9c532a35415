// The embedding program's side of a confined worker's host calls. A library
// worker that is confined (seccomp, monitor/sandbox/) still builds VMs, but
// its thread can no longer open anything: no open(2), no socket(2). The
// few calls of a build that open a host resource — a kernel or disk file, a
// tap, an interface's MTU — it sends here instead, to the caller's thread,
// which the sandbox never confines, and waits for the answer
// (brokered-host.ts). Only what the VM's own options name is served
// (ModuleDescriptor.grants plus the kernel's path): a worker subverted by a
// guest can ask, but gets nothing the embedding program did not give that
// VM. Each answer is a value or the error the call threw, which the worker
// throws again, so messages and their order are those of an unconfined build.
import type { FileMode, HostIo } from '../backend/host.js';
import type { HostGrants } from '../module.js';

/** One host call of a worker, as it crosses threads. */
export type HostRequest =
  | { op: 'openFile'; path: string; mode: FileMode }
  | { op: 'openTap'; name: string }
  | { op: 'mtu'; iface: string }
  | { op: 'disableOffloads'; iface: string }
  | { op: 'tapName'; fd: number }
  | { op: 'adopt'; fd: number };

/** The answer: a value, or what the call threw (an Error's own fields). */
export type HostReply =
  | { ok: true; value: number | string | boolean | undefined }
  | { ok: false; error: { message: string; errno?: number; code?: string; syscall?: string } };

/** EPERM, worded as the addon words its errors ("CALL: strerror"). */
function refused(what: string): HostReply {
  return { ok: false, error: { message: `${what}: Operation not permitted (not among this VM's options)`, errno: 1, code: 'EPERM' } };
}

/** Serves the host calls of one VM's build, within `grants`. */
export function hostBroker(host: HostIo, grants: HostGrants): (r: HostRequest) => HostReply {
  const files = new Set((grants.files ?? []).map((f) => `${f.mode}\0${f.path}`));
  const taps = new Set(grants.taps ?? []);
  const fds = new Set(grants.fds ?? []);
  /** Interfaces whose MTU and offloads may be asked for: the taps, and those the given descriptors are bound to. */
  const ifaces = new Set(taps);
  const run = (fn: () => number | string | boolean | void): HostReply => {
    try {
      const value = fn();
      return { ok: true, value: value === undefined ? undefined : value };
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      return {
        ok: false,
        error: {
          message: err instanceof Error ? err.message : String(e),
          ...(typeof err.errno === 'number' ? { errno: err.errno } : {}),
          ...(typeof err.code === 'string' ? { code: err.code } : {}),
          ...(typeof err.syscall === 'string' ? { syscall: err.syscall } : {}),
        },
      };
    }
  };
  return (r) => {
    switch (r.op) {
      case 'openFile':
        return files.has(`${r.mode}\0${r.path}`) ? run(() => host.openFile(r.path, r.mode)) : refused('open');
      case 'openTap':
        return taps.has(r.name) ? run(() => host.openTap(r.name)) : refused('open');
      case 'mtu':
        return ifaces.has(r.iface) ? run(() => host.mtu(r.iface)) : refused('SIOCGIFMTU');
      case 'disableOffloads':
        return ifaces.has(r.iface) ? run(() => host.disableOffloads(r.iface)) : refused('TUNSETOFFLOAD');
      case 'tapName':
        if (!fds.has(r.fd)) return refused('TUNGETIFF');
        return run(() => {
          const name = host.tapName(r.fd);
          ifaces.add(name);
          return name;
        });
      case 'adopt':
        return fds.has(r.fd) ? run(() => host.adopt(r.fd)) : refused('fcntl');
      default:
        return refused('host call');
    }
  };
}
