// HostIo on FreeBSD: the addon's descriptor, positional-I/O, tap and clock
// calls, one to one (contracts in backend/host.ts). FreeBSD taps hand
// frames as written, without GRO/GSO coalescing, so there are no offloads
// to switch off. Disks are character devices whose size comes from an ioctl.
import type { FreebsdHostBinding, VmmBinding } from '../../../native/binding/vmm.js';
import type { HostIo } from '../host.js';

export function freebsdHostIo(b: FreebsdHostBinding & Pick<VmmBinding, 'diskSize'>): HostIo {
  return {
    write: (fd, bytes) => b.writeFd(fd, bytes),
    read: (fd, bytes) => b.readFd(fd, bytes),
    preadAll: (fd, bytes, position) => b.preadAll(fd, bytes, position),
    pwriteAll: (fd, bytes, position) => b.pwriteAll(fd, bytes, position),
    sizeOf: (fd) => b.diskSize(fd),
    close: (fd) => b.closeFd(fd),
    openFile: (path, mode) => b.openFile(path, mode === 'r+'),
    openTap: (name) => b.tapAttach(name),
    tapName: (fd) => b.tapName(fd),
    mtu: (iface) => b.ifMtu(iface),
    disableOffloads: () => true,
    adopt(fd) {
      b.setNonBlocking(fd);
      b.checkPollable(fd);
    },
    realtimeInto: (bytes) => b.realtimeInto(bytes, 0),
  };
}
