// Parsing of the net module's options (spec §12.1): --net:NAME=IFACE,
// --net:NAME=@FD, --net-mac:NAME=HWADDR and the ukvm form --net=IFACE.

const NAME = /^([A-Za-z0-9]{1,67})=/;
/** The reference copies at most 19 characters of IFACE (§12.1). */
const IFACE_MAX = 19;

export type NetOption =
  | { kind: 'attach'; name: string; iface: string }
  | { kind: 'mac'; name: string; mac: Uint8Array }
  | { kind: 'only'; iface: string };

/** Six groups of 1–2 hex digits separated by ':'; null if it does not parse. */
export function parseMac(text: string): Uint8Array | null {
  const parts = text.split(':');
  if (parts.length !== 6 || !parts.every((p) => /^[0-9A-Fa-f]{1,2}$/.test(p))) return null;
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

export function formatMac(mac: Uint8Array): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Returns the option, or null if it is not a (well-formed) net option. */
export function parseNetOption(arg: string): NetOption | null {
  if (arg.startsWith('--net=')) {
    const iface = arg.slice('--net='.length).slice(0, IFACE_MAX);
    return iface ? { kind: 'only', iface } : null;
  }
  for (const [prefix, kind] of [['--net:', 'attach'], ['--net-mac:', 'mac']] as const) {
    if (!arg.startsWith(prefix)) continue;
    const rest = arg.slice(prefix.length);
    const m = NAME.exec(rest);
    if (!m || m[1] === undefined) return null;
    const value = rest.slice(m[0].length);
    if (kind === 'mac') {
      const mac = parseMac(value);
      return mac ? { kind, name: m[1], mac } : null;
    }
    const iface = value.slice(0, IFACE_MAX);
    return iface ? { kind, name: m[1], iface } : null;
  }
  return null;
}

/** "@FD": a decimal descriptor number 0..2^31−1, or null. */
export function parseFdRef(iface: string): number | null {
  if (!/^@[0-9]{1,10}$/.test(iface)) return null;
  const fd = Number(iface.slice(1));
  return fd <= 0x7fffffff ? fd : null;
}
