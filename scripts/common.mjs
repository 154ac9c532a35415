// Small helpers shared by scripts/fuzz.mjs and scripts/soak.mjs.

/**
 * Parses `--name value` / `--name=value` options by a spec of
 * { name: { kind: 'count' | 'seed' | 'minutes', default? } }. `--help` prints
 * usage on stdout and exits 0; anything wrong calls die(message), which
 * prints one line and exits 1.
 */
export function parseArgs(argv, spec, usage, die) {
  const out = {};
  for (const [name, s] of Object.entries(spec)) if (s.default !== undefined) out[name] = s.default;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${usage}\n`);
      process.exit(0);
    }
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m || !(m[1] in spec)) die(`unknown argument '${arg}'`);
    const name = m[1];
    let value = m[2];
    if (value === undefined) {
      if (i + 1 >= argv.length) die(`--${name} needs a value`);
      value = argv[++i];
    }
    out[name] = convert(name, spec[name].kind, value, die);
  }
  return out;
}

function convert(name, kind, v, die) {
  switch (kind) {
    case 'count': {
      // Plain digits (underscores allowed as separators): no 1e6, no negatives.
      if (!/^\d[\d_]*$/.test(v)) die(`--${name} wants a whole number ≥ 0, not '${v}'`);
      const n = Number(v.replace(/_/g, ''));
      if (!Number.isSafeInteger(n)) die(`--${name} is too large: ${v}`);
      return n;
    }
    case 'seed': {
      const n = /^(\d+|0x[0-9a-f]+)$/i.test(v) ? Number(v) : NaN;
      if (!Number.isInteger(n) || n > 0xffffffff) die(`--${name} wants a 32-bit unsigned integer (decimal or 0x hex), not '${v}'`);
      return n;
    }
    case 'minutes': {
      const n = /^(\d+(\.\d*)?|\.\d+)$/.test(v) ? Number(v) : NaN;
      if (!(n > 0) || n > 7 * 24 * 60) die(`--${name} wants a positive number of minutes (fractions allowed), not '${v}'`);
      return n;
    }
    default:
      throw new Error(`unknown option kind ${kind}`);
  }
}

/** Chunk k's seed from the master seed: the master itself for chunk 0, else a 32-bit hash of both. */
export function deriveSeed(master, k) {
  if (k === 0) return master >>> 0;
  let x = (master ^ Math.imul(k, 0x9e3779b9)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x21f0aaad);
  x = Math.imul(x ^ (x >>> 15), 0x735a2d97);
  return (x ^ (x >>> 15)) >>> 0;
}

/** Splits total into n counts that differ by at most one (the larger first). */
export function splitCounts(total, n) {
  return Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0));
}

/** Output with terminal colour codes removed (vitest colours even into a pipe). */
export function stripAnsi(s) {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '');
}

/** 83456 ms → "1 min 23.5 s". */
export function formatDuration(ms) {
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${(s % 60).toFixed(1)} s`;
}
