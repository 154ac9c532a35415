// Block module (spec §11): attaches files and host block devices to the
// manifest's BLOCK_BASIC entries and serves BLOCK_WRITE / BLOCK_READ.
// Every option is checked and every device opened before the VM is built.
import { closeSync, openSync } from 'node:fs';
import { Hypercall } from '../../monitor/abi/constants.js';
import { invalidOption } from '../../monitor/cli/parse.js';
import { ConfigError, HostError, withErrno } from '../../monitor/errors.js';
import { declaredIndex, onlyDevice, requireDeclared } from '../../monitor/devices.js';
import { DeviceType, Entry } from '../../monitor/kernel/manifest.js';
import type { Module } from '../../monitor/module.js';
import { loadNative, type NativeBinding } from '../../native/binding.js';
import { type BlockDevice, blockIoHandler } from './io.js';
import { badSectorSize, MAX_SECTOR, MIN_SECTOR, parseBlockOption, parseSectorSize } from './options.js';

const DEFAULT_SECTOR = 512;

export interface BlockConfig {
  /** Backing file or device by manifest name. */
  paths?: Record<string, string>;
  /** Sector sizes by manifest name (512..32768, a power of two). */
  sectorSizes?: Record<string, number>;
  binding?: NativeBinding;
}

export function block(config: BlockConfig = {}): Module {
  const paths = new Map<string, string>(Object.entries(config.paths ?? {}));
  const sectors = new Map<string, number>(Object.entries(config.sectorSizes ?? {}));
  const devices = new Map<number, BlockDevice>();

  return {
    name: 'block',
    separateValueOptions: ['--disk'],
    usage: () => [
      '[ --block:NAME=PATH ] (attach block device/file at PATH as block storage NAME)',
      `[ --block-sector-size:NAME=SECTORSIZE ] (block size of NAME: ${MIN_SECTOR}..${MAX_SECTOR}, a power of two; default ${DEFAULT_SECTOR})`,
      '[ --disk PATH | --disk=PATH ] (attach PATH to the only block device of the manifest)',
    ],

    handleArg(arg, mft) {
      const opt = parseBlockOption(arg);
      if (!opt) return false;
      switch (opt.kind) {
        case 'attach':
          requireDeclared(mft, opt.name, DeviceType.BLOCK_BASIC, arg);
          paths.set(opt.name, opt.path);
          return true;
        case 'sector-size': {
          requireDeclared(mft, opt.name, DeviceType.BLOCK_BASIC, arg);
          const n = parseSectorSize(opt.value);
          if (n === null) {
            throw invalidOption(arg, [badSectorSize(opt.value)]);
          }
          sectors.set(opt.name, n);
          return true;
        }
        case 'disk':
          paths.set(onlyDevice(mft, DeviceType.BLOCK_BASIC, '--disk', 'block device', '--block:NAME=PATH'), opt.path);
          return true;
      }
    },

    prepare(mft) {
      const native = config.binding ?? loadNative();
      for (const [name, size] of sectors) {
        declaredIndex(mft, name, DeviceType.BLOCK_BASIC);
        if (parseSectorSize(String(size)) === null) {
          throw new ConfigError(badSectorSize(size));
        }
      }
      // Every name is checked before any file is opened, as the CLI does.
      for (const name of paths.keys()) declaredIndex(mft, name, DeviceType.BLOCK_BASIC);
      for (const [name, path] of paths) {
        const index = declaredIndex(mft, name, DeviceType.BLOCK_BASIC);
        let fd: number;
        try {
          fd = openSync(path, 'r+');
        } catch (e) {
          throw new HostError(withErrno(`Could not open block device: ${path}`, e));
        }
        devices.set(index, { fd, capacity: 0n });
        let capacity: bigint;
        try {
          capacity = native.seekEnd(fd);
        } catch (e) {
          throw new HostError(withErrno(`${path}: Could not determine capacity`, e));
        }
        const size = sectors.get(name) ?? DEFAULT_SECTOR;
        if (capacity % BigInt(size) !== 0n) {
          throw new ConfigError(`${name}: Backing storage size must be block aligned (${size} bytes)`);
        }
        if (capacity < BigInt(size)) {
          throw new ConfigError(`${name}: Backing storage must be at least 1 block (${size} bytes) in size`);
        }
        (devices.get(index) as BlockDevice).capacity = capacity;
        const e = mft.entryView(index);
        e.setBigUint64(Entry.capacity, capacity, true);
        e.setUint16(Entry.blockSize, size, true);
        mft.attach(index, fd);
      }
    },

    setup(ctx) {
      if (devices.size === 0) return;
      const native = config.binding ?? loadNative();
      ctx.hypercall(Hypercall.BLOCK_WRITE, blockIoHandler(ctx.mem, devices, native, true, ctx.deviceBytes, ctx.run));
      ctx.hypercall(Hypercall.BLOCK_READ, blockIoHandler(ctx.mem, devices, native, false, ctx.deviceBytes, ctx.run));
    },

    close() {
      for (const d of devices.values()) closeSync(d.fd);
      devices.clear();
    },
  };
}
