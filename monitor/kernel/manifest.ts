// The application manifest (docs/abi.md §4): parsing and validation of the note's
// descriptor, the tender's working copy that modules attach devices to, and
// the bytes copied into guest memory at boot.
import { MFT_MAX_ENTRIES } from '../abi/constants.js';
import { MFT_ENTRY, MFT_HEADER, MFT_NAME_SIZE } from '../abi/layouts.js';
import { KernelError } from '../errors.js';
import { decodeLossless } from '../text.js';

export const MFT_VERSION = 1;
export { MFT_MAX_ENTRIES };
export const MFT_ENTRY_SIZE = MFT_ENTRY.size;
export const MFT_HEADER_SIZE = MFT_HEADER.size;
export { MFT_NAME_SIZE };

export const DeviceType = {
  BLOCK_BASIC: 1,
  NET_BASIC: 2,
  RESERVED_FIRST: 0x40000000,
} as const;
export type DeviceType = (typeof DeviceType)[keyof typeof DeviceType];

/** Entry field offsets (§4.1), from the one table of layouts. */
const F = MFT_ENTRY.fields;
export const Entry = {
  name: 0,
  type: F.type[0],
  /** BLOCK_BASIC: capacity u64; NET_BASIC: MAC (6 bytes). */
  capacity: F.capacity[0],
  mac: F.mac[0],
  /** BLOCK_BASIC: block size u16. */
  blockSize: F.blockSize[0],
  /** NET_BASIC: MTU u16. */
  mtu: F.mtu[0],
  hostFd: F.hostFd[0],
  attached: F.attached[0],
} as const;

export function typeName(type: number): string {
  switch (type) {
    case DeviceType.BLOCK_BASIC:
      return 'BLOCK_BASIC';
    case DeviceType.NET_BASIC:
      return 'NET_BASIC';
    case DeviceType.RESERVED_FIRST:
      return 'RESERVED_FIRST';
    default:
      return '<undefined type>';
  }
}

/** The tender's working copy of the manifest; modules fill in devices. */
export class Manifest {
  private readonly view: DataView;

  private constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Validates a manifest descriptor (§4.2) and takes a private copy of it. */
  static parse(desc: Uint8Array, kernel: string): Manifest {
    const invalid = () => new KernelError(`${kernel}: Solo5 manifest is invalid`);
    if (desc.length < MFT_HEADER_SIZE) throw invalid();
    const v = new DataView(desc.buffer, desc.byteOffset, desc.byteLength);
    const version = v.getUint32(0, true);
    const entries = v.getUint32(4, true);
    if (version !== MFT_VERSION || entries > MFT_MAX_ENTRIES) throw invalid();
    if (desc.length !== MFT_HEADER_SIZE + MFT_ENTRY_SIZE * entries || entries < 1) throw invalid();
    const m = new Manifest(desc.slice());
    if (m.type(0) !== DeviceType.RESERVED_FIRST || desc[MFT_HEADER_SIZE] !== 0) throw invalid();
    for (let i = 0; i < entries; i++) {
      const base = m.entryOffset(i);
      if (desc[base + MFT_NAME_SIZE - 1] !== 0 || desc[base + Entry.attached] !== 0) throw invalid();
    }
    return m;
  }

  get entries(): number {
    return this.view.getUint32(4, true);
  }

  /** Byte size of header + entries: what is copied into the guest. */
  get size(): number {
    return this.bytes.length;
  }

  entryOffset(index: number): number {
    return MFT_HEADER_SIZE + MFT_ENTRY_SIZE * index;
  }

  name(index: number): string {
    const base = this.entryOffset(index);
    const raw = this.bytes.subarray(base, base + MFT_NAME_SIZE);
    const nul = raw.indexOf(0);
    // UTF-8 where valid; other bytes survive, to be shown as \xNN (text.ts).
    return decodeLossless(raw.subarray(0, nul < 0 ? raw.length : nul));
  }

  type(index: number): number {
    return this.view.getUint32(this.entryOffset(index) + Entry.type, true);
  }

  attached(index: number): boolean {
    return this.bytes[this.entryOffset(index) + Entry.attached] !== 0;
  }

  /** Index of the first entry with this name and type, or -1 (§4.3). */
  find(name: string, type: number): number {
    for (let i = 0; i < this.entries; i++) {
      if (this.type(i) === type && this.name(i) === name) return i;
    }
    return -1;
  }

  /** Indices of every entry of a type, in manifest order. */
  indicesOf(type: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.entries; i++) if (this.type(i) === type) out.push(i);
    return out;
  }

  /** Marks an entry attached and records its host descriptor (§4.5). */
  attach(index: number, hostFd: number): void {
    const base = this.entryOffset(index);
    this.view.setInt32(base + Entry.hostFd, hostFd, true);
    this.bytes[base + Entry.attached] = 1;
  }

  /** DataView over one entry, for modules to fill device properties. */
  entryView(index: number): DataView {
    return new DataView(this.bytes.buffer, this.bytes.byteOffset + this.entryOffset(index), MFT_ENTRY_SIZE);
  }

  /** Entries with a device type that nobody attached (§4.4). */
  unattached(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.entries; i++) {
      if (this.type(i) < DeviceType.RESERVED_FIRST && !this.attached(i)) out.push(i);
    }
    return out;
  }
}
