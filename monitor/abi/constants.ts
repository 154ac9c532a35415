// Constants of the Solo5 hvt ABI (docs/abi.md §5, §8, §10). Structure
// layouts are in layouts.ts.

export const HVT_ABI_TARGET = 1;
export const HVT_ABI_VERSION = 2;

export const MIN_LOAD_ADDR = 0x100000;
export const HYPERCALL_PORT_BASE = 0x500;
export const RING_KICK_PORT = 0x600;
export const BOOT_INFO_GPA = 0x10000;
export const MANIFEST_GPA = 0x10038; // right after the 56 bytes of boot info
export const CMDLINE_SIZE = 8192; // 8191 characters + NUL
export const HALT_COOKIE_SIZE = 512;
/** Entries a manifest may have, the reserved entry 0 included (§4.1). */
export const MFT_MAX_ENTRIES = 64;

export const MiB = 1 << 20;
export const GUEST_PAGE = 2 * MiB;
export const MAX_ALLOC = 4 * 1024 * MiB; // 4 GiB
export const DEFAULT_MEM_MIB = 512;

/** Hypercall numbers; port = 0x500 + number. */
export const Hypercall = {
  WALLTIME: 1,
  PUTS: 2,
  POLL: 3,
  BLOCK_WRITE: 4,
  BLOCK_READ: 5,
  NET_WRITE: 6,
  NET_READ: 7,
  HALT: 8,
} as const;
export type HypercallNr = (typeof Hypercall)[keyof typeof Hypercall];
export const HYPERCALL_MAX = 8;

/** The net ring (§13.3): slots, where the arrays start, its size, its operations, boot info's feature bit. */
export const Ring = {
  SLOTS: 1024,
  MASK: 1023,
  ENTRIES_OFFSET: 128,
  COMMITS_OFFSET: 128 + 1024 * 32,
  SIZE: 128 + 1024 * 32 + 1024 * 16, // 49,280 bytes
  /** The Solo5 guest's per-slot copy buffer: larger frames go by NET_WRITE hypercall. */
  GUEST_BUF_SIZE: 2048,
  OP_NET_WRITE: 1,
  OP_NET_READ: 2,
  /** host_features bit 0 (§8.2). */
  FEATURE_RING_IO: 1,
} as const;

/** Result codes written back into argument structures. */
export const Result = { OK: 0, AGAIN: 1, EINVAL: 2, EUNSPEC: 3 } as const;

/** Largest signed 64-bit value: file offsets (off_t) and block lengths stop there. */
export const I64_MAX = (1n << 63n) - 1n;
