// Parsing of the net module's options (docs/abi.md §12.1): --net:NAME=IFACE,
// --net:NAME=@FD, --net-mac:NAME=HWADDR and the ukvm form --net=IFACE.
import { splitNamed } from '../../monitor/devices.js';

/** The reference copies at most 19 characters of IFACE (§12.1). */
const IFACE_MAX = 19;

export type NetOption =
  | { kind: 'attach'; name: string; iface: string }
  | { kind: 'mac'; name: string; mac: Uint8Array }
  | { kind: 'only'; iface: string }
  | { kind: 'ring'; mode: 'on' | 'off' };

/** Six groups of 1–2 hex digits separated by ':'; null if it does not parse. */
export function parseMac(text: string): Uint8Array | null {
  const parts = text.split(':');
  if (parts.length !== 6 || !parts.every((p) => /^[0-9A-Fa-f]{1,2}$/.test(p))) return null;
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

/** Returns the option, or null if it is not a (well-formed) net option. */
export function parseNetOption(arg: string): NetOption | null {
  if (arg === '--net-ring=on' || arg === '--net-ring=off') return { kind: 'ring', mode: arg === '--net-ring=on' ? 'on' : 'off' };
  if (arg.startsWith('--net=')) {
    const iface = arg.slice('--net='.length).slice(0, IFACE_MAX);
    return iface ? { kind: 'only', iface } : null;
  }
  const attach = splitNamed(arg, '--net:');
  if (attach !== undefined) {
    const iface = attach?.value.slice(0, IFACE_MAX);
    return attach && iface ? { kind: 'attach', name: attach.name, iface } : null;
  }
  const mac = splitNamed(arg, '--net-mac:');
  if (mac !== undefined) {
    const bytes = mac && parseMac(mac.value);
    return mac && bytes ? { kind: 'mac', name: mac.name, mac: bytes } : null;
  }
  return null;
}

/** "@FD": a decimal descriptor number 0..2^31−1, or null. */
export function parseFdRef(iface: string): number | null {
  if (!/^@[0-9]{1,10}$/.test(iface)) return null;
  const fd = Number(iface.slice(1));
  return fd <= 0x7fffffff ? fd : null;
}
