// The FreeBSD platform object and its host services over the recording fake:
// signal numbers are the host's own (FreeBSD's SIGUSR1 is 30), cross-thread
// controls reach only vmm vCPUs, the kqueue wait set hides the wake pipe and
// restarts after foreign signals, and the loader refuses an addon compiled
// with other numbers than TypeScript reads.
import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import { vmmPlatform } from '../../monitor/backend/vmm/platform.js';
import { HostRunControl, HostWaitSet } from '../../monitor/backend/wait-set.js';
import { VmRegistry } from '../../monitor/backend/vmm/vms.js';
import { FREEBSD_HOST_SHAPE, VMM_EXIT, VMM_IOCTLS, vmmAbiProblems } from '../../native/binding/vmm.js';
import { fake, KQ_FD, WAKE_FD } from './vmm-fake.js';

describe('vmmPlatform', () => {
  it('catches SIGINT/SIGTERM and restores the defaults of the host\'s own signal numbers', () => {
    const f = fake();
    const p = vmmPlatform(f.binding, new VmRegistry(f.binding, () => {}));
    p.signals.catchTermination();
    p.signals.restoreDefaults();
    const S = constants.signals;
    expect(f.calls).toEqual([
      `installTerminationHandlers([${S.SIGINT} ${S.SIGTERM}])`,
      `restoreDefaultSignals([${S.SIGHUP} ${S.SIGQUIT} ${S.SIGUSR1} ${S.SIGUSR2} ${S.SIGPIPE} ${S.SIGALRM}])`,
    ]);
  });

  it('opening the backend installs the kick handler once; stop and interrupt reach vmm vCPUs only', () => {
    const f = fake();
    const p = vmmPlatform(f.binding, new VmRegistry(f.binding, () => {}));
    p.openBackend();
    p.openBackend();
    expect(f.calls.filter((c) => c === 'installKickHandler()')).toHaveLength(1);
    p.stop({ backend: 'vmm', token: 5 });
    p.stop({ backend: 'kvm', token: 5 });
    p.interrupt({ backend: 'vmm', token: 6 });
    expect(f.calls.filter((c) => c.startsWith('kick') || c.startsWith('interrupt'))).toEqual(['kick(5)', 'kick(-1)', 'interrupt(6)']);
    expect(p.host.disableOffloads('tap0')).toBe(true);
    // A block device's size: DIOCGMEDIASIZE for disks (the addon decides by fstat), never lseek alone.
    expect(p.host.sizeOf(12)).toBe(1n << 20n);
    expect(f.calls.at(-1)).toBe('diskSize(12)');
  });
});

describe('HostWaitSet over the FreeBSD binding', () => {
  it('holds the wake pipe under key −1, reports device keys only, restarts after a foreign signal', () => {
    const f = fake();
    const results = [-1, 2];
    const b = {
      ...f.binding,
      waitsetWait: (_kq: number, _ns: number, keys: Int32Array) => {
        const r = results.shift() ?? 0;
        if (r > 0) keys.set([-1, 3]);
        return r;
      },
    };
    const ids = { token: 1, wakeFd: WAKE_FD };
    const ws = new HostWaitSet(b, ids, new HostRunControl(b, ids), 0);
    ws.add(30, 3);
    expect(f.calls).toEqual(['waitsetCreate()', `waitsetAdd(${KQ_FD},${WAKE_FD},-1)`, `waitsetAdd(${KQ_FD},30,3)`]);
    expect(ws.wait(1e9)).toEqual([3]);
    f.signal = 15;
    results.push(-1);
    expect(ws.wait(1e9)).toBeNull();
    ws.close();
    ws.close();
    expect(f.calls.filter((c) => c.startsWith('closeFd'))).toEqual([`closeFd(${KQ_FD})`]);
  });
});

describe('the FreeBSD addon\'s typed surface', () => {
  it('the host shape leaves out Linux\'s seccomp, personality and ethtool calls', () => {
    for (const linuxOnly of ['personality', 'setNoNewPrivs', 'seccompFilter', 'disableOffloads']) expect(FREEBSD_HOST_SHAPE).not.toHaveProperty(linuxOnly);
    expect(FREEBSD_HOST_SHAPE).toHaveProperty('waitsetWait', 'function');
  });

  it('an addon compiled with another vm_exit size or ioctl number is named', () => {
    expect(vmmAbiProblems({ vmmIoctls: { ...VMM_IOCTLS }, vmExitSize: VMM_EXIT.size })).toEqual([]);
    expect(vmmAbiProblems({ vmmIoctls: { ...VMM_IOCTLS, VM_RUN_14: 0xc0287601 }, vmExitSize: 144 })).toEqual([
      'struct vm_exit is 144 bytes, TypeScript reads 136',
      'VM_RUN_14 is 0xc0287601, TypeScript uses 0xc0207601',
    ]);
  });
});
