// Every structure the monitor and a guest share, once: its size and the byte
// offset and type of each field (docs/abi.md §4.1, §8.2, §10). Guest memory
// is read and written only through these (vm/memory.ts: struct()).

export type FieldType = 'u8' | 'u16' | 'u32' | 'i32' | 'u64';

export interface Layout {
  /** The C name, for messages and docs. */
  readonly name: string;
  readonly size: number;
  readonly fields: Readonly<Record<string, readonly [offset: number, type: FieldType]>>;
}

/** Names of a layout's fields of one type (so a u64 field cannot be read as an i32). */
export type FieldOf<L extends Layout, T extends FieldType> = {
  [K in keyof L['fields']]: L['fields'][K][1] extends T ? K : never;
}[keyof L['fields']] &
  string;

const layout = <const F extends Layout['fields']>(name: string, size: number, fields: F) => ({ name, size, fields }) as const;

/** §10.1 WALLTIME: the wall clock in ns. */
export const WALLTIME_ARGS = layout('hvt_hc_walltime', 8, { nsecs: [0, 'u64'] });

/** §10.2 PUTS: `len` bytes at `data` to the console. */
export const PUTS_ARGS = layout('hvt_hc_puts', 16, { data: [0, 'u64'], len: [8, 'u64'] });

/** §10.3 POLL: wait up to `timeoutNanos`; bit n of `readySet` for handle n; `ret` = handles ready. */
export const POLL_ARGS = layout('hvt_hc_poll', 24, { timeoutNanos: [0, 'u64'], readySet: [8, 'u64'], ret: [16, 'i32'] });

/** §10.4, §10.5 BLOCK_WRITE / BLOCK_READ. */
export const BLOCK_ARGS = layout('hvt_hc_block_write/read', 40, {
  handle: [0, 'u64'],
  offset: [8, 'u64'],
  data: [16, 'u64'],
  len: [24, 'u64'],
  ret: [32, 'i32'],
});

/** §10.6, §10.7 NET_WRITE / NET_READ: for a read, `len` is the buffer size in and the frame size out. */
export const NET_ARGS = layout('hvt_hc_net_write/read', 32, {
  handle: [0, 'u64'],
  data: [8, 'u64'],
  len: [16, 'u64'],
  ret: [24, 'i32'],
});

/** §10.8 HALT: `cookie` is 0 or the GPA of 512 bytes of trap state. */
export const HALT_ARGS = layout('hvt_hc_halt', 16, { cookie: [0, 'u64'], exitStatus: [8, 'i32'] });

/** §8.2 struct hvt_boot_info at 0x10000. */
export const BOOT_INFO = layout('hvt_boot_info', 56, {
  memSize: [0, 'u64'],
  kernelEnd: [8, 'u64'],
  cpuCycleFreq: [16, 'u64'],
  cmdline: [24, 'u64'],
  mft: [32, 'u64'],
  hostFeatures: [40, 'u32'],
  guestFeatures: [44, 'u32'],
  netRing: [48, 'u64'],
});

/** §4.1 struct mft header: version, then the entry count. */
export const MFT_HEADER = layout('mft', 8, { version: [0, 'u32'], entries: [4, 'u32'] });

/**
 * §4.1 struct mft_entry (104 bytes): a NUL-terminated name of up to 67
 * characters, the type, the type's own fields, host fd and attached flag.
 */
export const MFT_ENTRY = layout('mft_entry', 104, {
  type: [68, 'u32'],
  /** BLOCK_BASIC: capacity in bytes. */
  capacity: [72, 'u64'],
  /** BLOCK_BASIC: block size. */
  blockSize: [80, 'u16'],
  /** NET_BASIC: the MAC's 6 bytes start here (u8 each). */
  mac: [72, 'u8'],
  /** NET_BASIC: MTU. */
  mtu: [78, 'u16'],
  hostFd: [88, 'i32'],
  attached: [96, 'u8'],
});
/** Bytes of an entry's name field, NUL included. */
export const MFT_NAME_SIZE = 68;

/**
 * §13.3 the net ring's header (two cache lines: the first written by the
 * guest only, the second by the host only); the entries and commits follow.
 */
export const RING_HEADER = layout('hvt_ring', 128, {
  entTail: [0, 'u32'],
  comHead: [4, 'u32'],
  entHead: [64, 'u32'],
  comTail: [68, 'u32'],
  needsKick: [72, 'u32'],
});

/** §13.3 a submission entry (guest → host), at 128 + 32 × slot. */
export const RING_ENTRY = layout('hvt_ring_entry', 32, {
  operation: [0, 'u32'],
  handle: [4, 'u32'],
  data: [8, 'u64'],
  len: [16, 'u32'],
  id: [20, 'u32'],
});

/** §13.3 a commit (host → guest), at 32896 + 16 × slot; one per NET_READ entry. */
export const RING_COMMIT = layout('hvt_ring_commit', 16, {
  id: [0, 'u32'],
  ret: [4, 'i32'],
  len: [8, 'u32'],
});

/** Every layout, for the docs and the table test. */
export const LAYOUTS = [WALLTIME_ARGS, PUTS_ARGS, POLL_ARGS, BLOCK_ARGS, NET_ARGS, HALT_ARGS, BOOT_INFO, MFT_HEADER, MFT_ENTRY, RING_HEADER, RING_ENTRY, RING_COMMIT] as const;
