// Block module (docs/abi.md §11): attaches files and host block devices to
// the manifest's BLOCK_BASIC entries and serves BLOCK_WRITE / BLOCK_READ.
// Every option is checked and every device opened before the VM is built.
import { Hypercall } from '../../monitor/abi/constants.js';
import { declaredIndex, onlyDevice, perDevice, perDeviceOption, requireDeclared } from '../../monitor/devices.js';
import { ConfigError, HostError, invalidOption, withErrno } from '../../monitor/errors.js';
import { DeviceType, Entry } from '../../monitor/kernel/manifest.js';
import type { Module, ModuleDescriptor, ModuleEnv } from '../../monitor/module.js';
import { type BlockDevice, blockIoHandler } from './io.js';
import { badSectorSize, MAX_SECTOR, MIN_SECTOR, parseBlockOption, parseSectorSize } from './options.js';

const DEFAULT_SECTOR = 512;

export const blockModule: ModuleDescriptor = {
  name: 'block',
  serves: [DeviceType.BLOCK_BASIC],
  cli: {
    usage: [
      '[ --block:NAME=PATH ] (attach block device/file at PATH as block storage NAME)',
      `[ --block-sector-size:NAME=SECTORSIZE ] (block size of NAME: ${MIN_SECTOR}..${MAX_SECTOR}, a power of two; default ${DEFAULT_SECTOR})`,
      '[ --disk PATH | --disk=PATH ] (attach PATH to the only block device of the manifest)',
    ],
    separateValue: ['--disk'],
  },
  library: [
    // block: { NAME: 'path' }, blockSectorSize: { NAME: 4096 }
    perDeviceOption('block', (v) => typeof v === 'string' && v.length > 0, 'a path'),
    perDeviceOption('blockSectorSize', (v) => Number.isInteger(v), 'an integer'),
  ],
  grants: (options) => ({ files: Object.values(perDevice<string>(options, 'block')).map((path) => ({ path, mode: 'r+' as const })) }),
  create: (options, env) => block(perDevice(options, 'block'), perDevice(options, 'blockSectorSize'), env),
};

function block(pathsGiven: Record<string, string>, sectorsGiven: Record<string, number>, env: ModuleEnv): Module {
  const paths = new Map<string, string>(Object.entries(pathsGiven));
  const sectors = new Map<string, number>(Object.entries(sectorsGiven));
  const devices = new Map<number, BlockDevice>();
  const host = env.host;

  return {
    name: 'block',

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
          fd = host.openFile(path, 'r+');
        } catch (e) {
          throw new HostError(withErrno(`Could not open block device: ${path}`, e), { cause: e });
        }
        devices.set(index, { fd, capacity: 0n });
        let capacity: bigint;
        try {
          capacity = host.sizeOf(fd);
        } catch (e) {
          throw new HostError(withErrno(`${path}: Could not determine capacity`, e), { cause: e });
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
      ctx.hypercall(Hypercall.BLOCK_WRITE, blockIoHandler(ctx, devices, host, true));
      ctx.hypercall(Hypercall.BLOCK_READ, blockIoHandler(ctx, devices, host, false));
    },

    close() {
      for (const d of devices.values()) host.close(d.fd);
      devices.clear();
    },
  };
}
export default blockModule;
