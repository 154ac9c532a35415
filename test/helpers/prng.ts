// A small deterministic pseudo-random generator for the fuzz tests: a
// xorshift128 core seeded through an integer mixer, so that consecutive
// seeds give unrelated streams. Not for cryptography; only reproducibility
// matters: the same seed always gives the same sequence, on every machine.
//
// Seeds are 32-bit unsigned integers. fuzzSeed() reads the base seed of a
// fuzz run from the environment (FUZZ_SEED, decimal or 0x hex) so that a
// failure printed by a test can be replayed exactly.

/** Mixes a 32-bit value into a well-spread 32-bit value (a bijection). */
export function mix32(x: number): number {
  let z = x >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x7feb352d);
  z = Math.imul(z ^ (z >>> 15), 0x846ca68b);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Seed of case `index` of a run whose base seed is `base`. */
export function caseSeed(base: number, index: number): number {
  return mix32((base ^ mix32(index + 0x9e3779b9)) >>> 0);
}

export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(readonly seed: number) {
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      return mix32(s);
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1;
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    let t = this.d;
    const s = this.a;
    this.d = this.c;
    this.c = this.b;
    this.b = s;
    t ^= t << 11;
    t ^= t >>> 8;
    this.a = (t ^ s ^ (s >>> 19)) >>> 0;
    return this.a;
  }

  /** Uniform integer in [0, n) for 1 ≤ n ≤ 2^32. */
  int(n: number): number {
    if (n <= 1) return 0;
    // Rejection sampling keeps it exactly uniform.
    const limit = Math.floor(2 ** 32 / n) * n;
    for (;;) {
      const x = this.u32();
      if (x < limit) return x % n;
    }
  }

  /** Uniform integer in [lo, hi] (inclusive). */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.u32() < p * 2 ** 32;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(items.length)] as T;
  }

  /** Picks an index by relative weights. */
  weighted(weights: readonly number[]): number {
    const total = weights.reduce((s, w) => s + w, 0);
    let x = this.int(total);
    for (let i = 0; i < weights.length; i++) {
      x -= weights[i] as number;
      if (x < 0) return i;
    }
    return weights.length - 1;
  }

  /** Uniform 64-bit unsigned integer. */
  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

/**
 * The base seed of a fuzz run: FUZZ_SEED from the environment if set
 * (decimal or 0x hex), else `fallback` (fixed, so CI runs are reproducible).
 */
export function fuzzSeed(fallback: number): number {
  const v = process.env['FUZZ_SEED'];
  if (v === undefined || v === '') return fallback >>> 0;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`FUZZ_SEED must be a 32-bit unsigned integer, not ${v}`);
  return n >>> 0;
}

/** A positive integer from the environment (e.g. FUZZ_CASES), else `fallback`. */
export function envCount(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, not ${v}`);
  return n;
}
