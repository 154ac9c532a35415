// HostIo on Linux: the addon's descriptor, positional-I/O, tap and clock
// calls, one to one (their contracts are in backend/host.ts).
import type { NativeBinding } from '../../../native/binding.js';
import type { HostIo } from '../host.js';

export function linuxHostIo(b: NativeBinding): HostIo {
  return {
    write: (fd, bytes) => b.writeFd(fd, bytes),
    read: (fd, bytes) => b.readFd(fd, bytes),
    preadAll: (fd, bytes, position) => b.preadAll(fd, bytes, position),
    pwriteAll: (fd, bytes, position) => b.pwriteAll(fd, bytes, position),
    sizeOf: (fd) => b.seekEnd(fd),
    close: (fd) => b.closeFd(fd),
    openFile: (path, mode) => b.openFile(path, mode === 'r+'),
    openTap: (name) => b.tapAttach(name),
    tapName: (fd) => b.tapName(fd),
    mtu: (iface) => b.ifMtu(iface),
    disableOffloads: (iface) => b.disableOffloads(iface),
    adopt(fd) {
      b.setNonBlocking(fd);
      b.checkPollable(fd);
    },
    realtimeInto: (bytes) => b.realtimeInto(bytes, 0),
  };
}
