// Net module (docs/abi.md §12): attaches tap interfaces (by name or as an
// inherited @FD) to the manifest's NET_BASIC entries, reserves the 2 MiB ring
// area the reference reserves (§6.1, §13.2) so guests see the same memory
// map, adds each tap to POLL's wait set, serves NET_WRITE / NET_READ and,
// unless told --net-ring=off, offers the shared ring (§13, ring.ts).
import { randomBytes } from 'node:crypto';
import { GUEST_PAGE, Hypercall } from '../../monitor/abi/constants.js';
import type { HostIo } from '../../monitor/backend/host.js';
import { declaredIndex, onlyDevice, perDevice, perDeviceOption, requireDeclared } from '../../monitor/devices.js';
import { ConfigError, describeSystemError, HostError, invalidOption, OptionError } from '../../monitor/errors.js';
import { DeviceType, Entry } from '../../monitor/kernel/manifest.js';
import type { Module, ModuleDescriptor, ModuleEnv } from '../../monitor/module.js';
import { type NetDevice, netReadHandler, netWriteHandler } from './io.js';
import { parseFdRef, parseMac, parseNetOption } from './options.js';
import { DEFAULT_RING_MODE, type RingHandle, type RingMode, startRing } from './ring.js';

/** The reference's ring (49,280 bytes) rounded up to the 2 MiB guest page. */
export const RING_RESERVATION = GUEST_PAGE;
const DEFAULT_MTU = 1500;

/** A tap: an interface name, or { fd } of an open tap descriptor (which stays the caller's). */
type TapRef = string | { fd: number };

const isTapRef = (v: unknown): boolean =>
  (typeof v === 'string' && v.length > 0) ||
  (typeof v === 'object' && v !== null && Number.isInteger((v as { fd?: unknown }).fd) && (v as { fd: number }).fd >= 0);

export const netModule: ModuleDescriptor = {
  name: 'net',
  serves: [DeviceType.NET_BASIC],
  cli: {
    usage: [
      '[ --net:NAME=IFACE | @NN ] (attach tap at IFACE, or the open tap descriptor NN, as network NAME)',
      '[ --net-mac:NAME=HWADDR ] (set HWADDR for network NAME)',
      '[ --net IFACE | --net=IFACE ] (attach IFACE to the only network device of the manifest)',
      `[ --net-ring=on|off ] (offer the shared ring for network I/O; default ${DEFAULT_RING_MODE})`,
    ],
    separateValue: ['--net'],
  },
  library: [
    // net: { NAME: 'tap0' | { fd } }, netMac: { NAME: '02:00:00:00:00:01' }
    perDeviceOption('net', isTapRef, 'an interface name or { fd }'),
    perDeviceOption('netMac', (v) => typeof v === 'string' && parseMac(v) !== null, 'a MAC address "xx:xx:xx:xx:xx:xx"'),
    {
      name: 'netRing',
      check(value) {
        if (value !== undefined && value !== 'on' && value !== 'off') throw new OptionError("netRing must be 'on' or 'off'");
      },
    },
  ],
  grants(options) {
    // The ring's consumer is a thread of its own, which a confined worker cannot start.
    if (((options['netRing'] as RingMode | undefined) ?? DEFAULT_RING_MODE) === 'on') return 'unconfined';
    const taps = Object.values(perDevice<TapRef>(options, 'net'));
    return {
      taps: taps.filter((t): t is string => typeof t === 'string'),
      fds: taps.filter((t): t is { fd: number } => typeof t !== 'string').map((t) => t.fd),
    };
  },
  create(options, env) {
    const macs: Record<string, Uint8Array> = {};
    for (const [name, text] of Object.entries(perDevice<string>(options, 'netMac'))) macs[name] = parseMac(text) as Uint8Array;
    return net(perDevice<TapRef>(options, 'net'), macs, (options['netRing'] as RingMode | undefined) ?? DEFAULT_RING_MODE, env);
  },
};

interface Wanted {
  iface: string;
  /** The command-line option that asked for it (for "Invalid option"), or null from the library. */
  arg: string | null;
}

function net(taps: Record<string, TapRef>, macsGiven: Record<string, Uint8Array>, ringMode: RingMode, env: ModuleEnv): Module {
  const host = env.host;
  const wanted = new Map<string, Wanted>();
  for (const [name, t] of Object.entries(taps)) {
    const iface = typeof t === 'string' ? t : `@${t.fd}`;
    wanted.set(name, { iface, arg: null });
  }
  const macs = new Map<string, Uint8Array>(Object.entries(macsGiven));
  for (const [name, mac] of macs) {
    if (mac.length !== 6) throw new ConfigError(`${name}: a MAC address has 6 bytes, not ${mac.length}`);
  }
  const devices = new Map<number, NetDevice>();
  /** Descriptors this module opened itself (closed with the VM). */
  const opened = new Set<number>();
  let ring: RingHandle | null = null;

  /** Opens the tap and returns its descriptor and MTU; throws "Could not attach". */
  const open = (host: HostIo, name: string, w: Wanted, warn: (m: string) => void): { fd: number; mtu: number } => {
    // On the command line the reference warns and rejects the option (§12.1);
    // a library caller gets the host error itself.
    const fail = (e: unknown) => {
      const why = `Could not attach interface: ${w.iface}: ${describeSystemError(e)}`;
      return w.arg === null ? new HostError(why, { cause: e }) : invalidOption(w.arg, [why]);
    };
    if (!w.iface.startsWith('@')) {
      let fd: number;
      let mtu: number;
      try {
        fd = host.openTap(w.iface);
      } catch (e) {
        throw fail(e);
      }
      try {
        mtu = host.mtu(w.iface);
      } catch (e) {
        host.close(fd);
        throw fail(e);
      }
      host.disableOffloads(w.iface);
      return { fd, mtu };
    }
    const fd = parseFdRef(w.iface);
    if (fd === null) throw new HostError(`Could not attach interface: ${w.iface}: not a descriptor number`);
    try {
      host.adopt(fd);
    } catch (e) {
      throw new HostError(`Could not attach interface: ${w.iface}: ${describeSystemError(e)}`, { cause: e });
    }
    // Unlike the reference (which never sets the MTU on this path and so
    // always fails), use the MTU of the interface the tap is bound to.
    try {
      const iface = host.tapName(fd);
      const mtu = host.mtu(iface);
      host.disableOffloads(iface);
      return { fd, mtu };
    } catch (e) {
      warn(`${name}: cannot tell the MTU of ${w.iface} (${describeSystemError(e)}), using ${DEFAULT_MTU}`);
      return { fd, mtu: DEFAULT_MTU };
    }
  };

  return {
    name: 'net',

    handleArg(arg, mft) {
      const opt = parseNetOption(arg);
      if (!opt) return false;
      switch (opt.kind) {
        case 'attach':
          requireDeclared(mft, opt.name, DeviceType.NET_BASIC, arg);
          wanted.set(opt.name, { iface: opt.iface, arg });
          return true;
        case 'mac':
          requireDeclared(mft, opt.name, DeviceType.NET_BASIC, arg);
          macs.set(opt.name, opt.mac);
          return true;
        case 'ring':
          ringMode = opt.mode;
          return true;
        case 'only': {
          const name = onlyDevice(mft, DeviceType.NET_BASIC, '--net', 'network device', '--net:NAME=IFACE');
          wanted.set(name, { iface: opt.iface, arg });
          return true;
        }
      }
    },

    prepare(mft, warn) {
      // Every name is checked before any tap is opened, as the CLI does.
      for (const name of [...macs.keys(), ...wanted.keys()]) declaredIndex(mft, name, DeviceType.NET_BASIC);
      for (const [name, w] of wanted) {
        const index = declaredIndex(mft, name, DeviceType.NET_BASIC);
        const { fd, mtu } = open(host, name, w, warn);
        devices.set(index, { fd });
        // A descriptor handed to us (@FD, { fd }) stays the caller's to close.
        if (!w.iface.startsWith('@')) opened.add(fd);
        const e = mft.entryView(index);
        const mac = macs.get(name) ?? randomMac();
        for (let i = 0; i < 6; i++) e.setUint8(Entry.mac + i, mac[i] as number);
        e.setUint16(Entry.mtu, mtu, true);
        mft.attach(index, fd);
      }
    },

    extraMemory: () => (devices.size > 0 ? RING_RESERVATION : 0),

    setup(ctx) {
      if (devices.size === 0) return;
      ctx.hypercall(Hypercall.NET_WRITE, netWriteHandler(ctx, devices, host));
      ctx.hypercall(Hypercall.NET_READ, netReadHandler(ctx, devices, host));
      for (const [index, d] of devices) ctx.pollFd(d.fd, index);
      // One ring for every device (§13.1); off: the guest sees host_features 0.
      if (ringMode === 'on') ring = startRing(ctx, new Map([...devices].map(([i, d]) => [i, d.fd])), host);
    },

    sandboxed(scope) {
      ring?.sandboxed(scope);
    },

    close() {
      // The ring's thread first: it may be using the taps.
      ring?.stop();
      ring = null;
      // Taps were opened by the host, not Node's fs: closeSync on them in a
      // worker thread makes Node warn of a descriptor it never opened.
      for (const fd of opened) host.close(fd);
      opened.clear();
      devices.clear();
    },
  };
}

/** A random unicast, locally administered MAC (§12.3). */
function randomMac(): Uint8Array {
  const mac = randomBytes(6);
  mac[0] = ((mac[0] as number) & 0xfe) | 0x02;
  return mac;
}
export default netModule;
