// Boot info, manifest copy and command line (docs/abi.md §8), written into guest
// memory right before the vCPU first runs.
import { BOOT_INFO_GPA, CMDLINE_SIZE, MANIFEST_GPA } from '../abi/constants.js';
import { BOOT_INFO } from '../abi/layouts.js';
import { ConfigError } from '../errors.js';
import type { Manifest } from '../kernel/manifest.js';

/** The guest command line: arguments joined by single spaces, as bytes. */
export function buildCmdline(args: readonly string[]): Uint8Array {
  const bytes = new TextEncoder().encode(args.join(' '));
  if (bytes.length > CMDLINE_SIZE - 1) {
    throw new ConfigError(`Guest command line too long (max=${CMDLINE_SIZE - 1} characters)`);
  }
  return bytes;
}

export interface BootInfoValues {
  memSize: number;
  kernelEnd: number;
  cpuCycleFreq: number;
  hostFeatures: number;
  netRing: number;
}

/** GPA of the command line for a manifest of `size` bytes. */
export function cmdlineGpa(manifestSize: number): number {
  return MANIFEST_GPA + manifestSize;
}

export function writeBootInfo(mem: Uint8Array, info: BootInfoValues, mft: Manifest, cmdline: Uint8Array): void {
  const v = new DataView(mem.buffer, mem.byteOffset);
  const cmd = cmdlineGpa(mft.size);
  const at = (field: keyof typeof BOOT_INFO.fields) => BOOT_INFO_GPA + BOOT_INFO.fields[field][0];
  v.setBigUint64(at('memSize'), BigInt(info.memSize), true);
  v.setBigUint64(at('kernelEnd'), BigInt(info.kernelEnd), true);
  v.setBigUint64(at('cpuCycleFreq'), BigInt(info.cpuCycleFreq), true);
  v.setBigUint64(at('cmdline'), BigInt(cmd), true);
  v.setBigUint64(at('mft'), BigInt(MANIFEST_GPA), true);
  v.setUint32(at('hostFeatures'), info.hostFeatures, true);
  v.setUint32(at('guestFeatures'), 0, true);
  v.setBigUint64(at('netRing'), BigInt(info.netRing), true);
  mem.set(mft.bytes, MANIFEST_GPA);
  mem.fill(0, cmd, cmd + CMDLINE_SIZE);
  mem.set(cmdline, cmd);
}
