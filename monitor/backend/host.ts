// What core and modules need from the host operating system besides the
// hypervisor: descriptor I/O on guest-memory views, positional block I/O,
// tap interfaces and the wall clock. Each platform implements it in its
// backend folder (Linux: backend/kvm/host-io.ts); nothing above the backend
// calls the native addon.

/** How openFile opens a file. */
export type FileMode = 'r' | 'r+';

export interface HostIo {
  /** One write(2): bytes written, −1 for EAGAIN, −2 when a signal interrupted it. */
  write(fd: number, bytes: Uint8Array): number;
  /** One read(2): bytes read, −1 for EAGAIN (or nothing to read), −2 when a signal interrupted it. */
  read(fd: number, bytes: Uint8Array): number;
  /**
   * pread until bytes is full or end of file: bytes read, short also when a
   * signal interrupted it, −2 if one came before any byte. Throws on error.
   */
  preadAll(fd: number, bytes: Uint8Array, position: bigint): number;
  /** pwrite all of bytes, the same way (short if the file takes no more). */
  pwriteAll(fd: number, bytes: Uint8Array, position: bigint): number;
  /** Size of a file or block device (seek to its end). */
  sizeOf(fd: number): bigint;
  /** Closes a descriptor this host opened (a tap, a file of openFile). */
  close(fd: number): void;
  /**
   * Opens an existing file (a kernel, a disk) close-on-exec, 'r' read-only or
   * 'r+' read/write; throws the system error, EISDIR for a directory.
   */
  openFile(path: string, mode: FileMode): number;
  /** Opens the existing, up tap interface `name` (non-blocking, no packet info). */
  openTap(name: string): number;
  /** Name of the interface a tap descriptor is bound to. */
  tapName(fd: number): string;
  /** MTU of an interface. */
  mtu(iface: string): number;
  /** Turns off offloads the guest cannot handle (GRO, GSO), best effort; true if all went off. */
  disableOffloads(iface: string): boolean;
  /** Makes an inherited descriptor usable for POLL: non-blocking, close-on-exec, pollable (throws otherwise). */
  adopt(fd: number): void;
  /** Stores the wall clock (CLOCK_REALTIME) in ns as a little-endian u64 in bytes[0..8). */
  realtimeInto(bytes: Uint8Array): void;
}
