// The caller's side of a confined worker's host calls (library/broker.ts):
// only what the VM's options name is served, answers carry the call's own
// error, and grants come from the registry (library/grants.ts).
import { describe, expect, it } from 'vitest';
import type { HostIo } from '../../monitor/backend/host.js';
import { hostBroker, type HostRequest } from '../../monitor/library/broker.js';
import { vmGrants } from '../../monitor/library/grants.js';
import { REGISTRY } from '../../monitor/registry.js';

/** A HostIo that records the opening calls and answers with made-up values. */
function recordingHost(calls: string[]): HostIo {
  const fail = () => {
    throw new Error('not for the broker');
  };
  return {
    write: fail, read: fail, preadAll: fail, pwriteAll: fail, sizeOf: fail, close: fail, realtimeInto: fail,
    openFile(path, mode) {
      calls.push(`openFile ${path} ${mode}`);
      if (path === '/missing') throw Object.assign(new Error('open: No such file or directory'), { errno: 2, code: 'ENOENT', syscall: 'open' });
      return 40;
    },
    openTap(name) {
      calls.push(`openTap ${name}`);
      return 41;
    },
    mtu(iface) {
      calls.push(`mtu ${iface}`);
      return 1500;
    },
    disableOffloads(iface) {
      calls.push(`disableOffloads ${iface}`);
      return true;
    },
    tapName(fd) {
      calls.push(`tapName ${fd}`);
      return 'tapfd7';
    },
    adopt(fd) {
      calls.push(`adopt ${fd}`);
    },
  };
}

describe('hostBroker', () => {
  const grants = { files: [{ path: '/k.hvt', mode: 'r' as const }, { path: '/disk.img', mode: 'r+' as const }, { path: '/missing', mode: 'r+' as const }], taps: ['tap0'], fds: [7] };

  it('serves the calls the grants name, with their values', () => {
    const calls: string[] = [];
    const serve = hostBroker(recordingHost(calls), grants);
    expect(serve({ op: 'openFile', path: '/k.hvt', mode: 'r' })).toEqual({ ok: true, value: 40 });
    expect(serve({ op: 'openFile', path: '/disk.img', mode: 'r+' })).toEqual({ ok: true, value: 40 });
    expect(serve({ op: 'openTap', name: 'tap0' })).toEqual({ ok: true, value: 41 });
    expect(serve({ op: 'mtu', iface: 'tap0' })).toEqual({ ok: true, value: 1500 });
    expect(serve({ op: 'disableOffloads', iface: 'tap0' })).toEqual({ ok: true, value: true });
    expect(serve({ op: 'adopt', fd: 7 })).toEqual({ ok: true, value: undefined });
    expect(serve({ op: 'tapName', fd: 7 })).toEqual({ ok: true, value: 'tapfd7' });
    // The interface a given descriptor is bound to, once named by tapName.
    expect(serve({ op: 'mtu', iface: 'tapfd7' })).toEqual({ ok: true, value: 1500 });
    expect(calls).toEqual(['openFile /k.hvt r', 'openFile /disk.img r+', 'openTap tap0', 'mtu tap0', 'disableOffloads tap0', 'adopt 7', 'tapName 7', 'mtu tapfd7']);
  });

  it("answers with the call's own error, errno and code kept", () => {
    const serve = hostBroker(recordingHost([]), grants);
    expect(serve({ op: 'openFile', path: '/missing', mode: 'r+' })).toEqual({
      ok: false, error: { message: 'open: No such file or directory', errno: 2, code: 'ENOENT', syscall: 'open' },
    });
  });

  it('refuses, without calling the host, whatever the grants do not name', () => {
    const calls: string[] = [];
    const serve = hostBroker(recordingHost(calls), grants);
    const refused: HostRequest[] = [
      { op: 'openFile', path: '/etc/shadow', mode: 'r' },
      // A granted path, but not in that mode: a read-only kernel is not a writable disk.
      { op: 'openFile', path: '/k.hvt', mode: 'r+' },
      { op: 'openTap', name: 'tap1' },
      { op: 'mtu', iface: 'eth0' },
      { op: 'disableOffloads', iface: 'eth0' },
      { op: 'tapName', fd: 3 },
      { op: 'adopt', fd: 0 },
      { op: 'exec', path: '/bin/sh' } as unknown as HostRequest,
    ];
    for (const r of refused) {
      const a = serve(r);
      expect(a.ok, JSON.stringify(r)).toBe(false);
      expect(a.ok ? null : a.error, JSON.stringify(r)).toMatchObject({ errno: 1, code: 'EPERM' });
    }
    expect(calls).toEqual([]);
  });
});

describe('vmGrants', () => {
  it("the kernel's path read-only, each disk read/write, each tap by name or descriptor", () => {
    expect(vmGrants('/k.hvt', { block: { block: { a: '/a.img', b: '/b.img' } }, net: { net: { s: 'tap0', t: { fd: 9 } } } }, REGISTRY)).toEqual({
      files: [{ path: '/k.hvt', mode: 'r' }, { path: '/a.img', mode: 'r+' }, { path: '/b.img', mode: 'r+' }],
      taps: ['tap0'],
      fds: [9],
    });
    expect(vmGrants(new Uint8Array(4), {}, REGISTRY)).toEqual({ files: [], taps: [], fds: [] });
  });

  it('unconfined when an option needs it: the net ring, dumpcore, gdb', () => {
    expect(vmGrants('/k', { net: { net: { s: 'tap0' }, netRing: 'on' } }, REGISTRY)).toBe('unconfined');
    expect(vmGrants('/k', { net: { net: { s: 'tap0' }, netRing: 'off' } }, REGISTRY)).not.toBe('unconfined');
    expect(vmGrants('/k', { dumpcore: { dumpcore: '/tmp' } }, REGISTRY)).toBe('unconfined');
    expect(vmGrants('/k', { gdb: { gdb: {} } }, REGISTRY)).toBe('unconfined');
  });
});
