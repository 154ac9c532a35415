// Disk images for the block device tests: the guests' data pattern computed
// on the host, image creation and checking, and loop devices (losetup) for
// running a guest on a real host block device.
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readSync, writeFileSync } from 'node:fs';

/**
 * Block `block` of the pattern of `seed`, `bs` bytes: little-endian 32-bit
 * words of a xorshift32 sequence. Must match pattern() in
 * test/guests/block_rw.c (and the copies in block_63.c, block_two.c,
 * block_hostile.c).
 */
export function patternBlock(seed: number, block: number, bs: number): Buffer {
  const out = Buffer.alloc(bs);
  let s = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul((block + 1) >>> 0, 0x85ebca6b)) >>> 0;
  if (s === 0) s = 0x6b43a9b5;
  for (let i = 0; i < bs; i += 4) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out.writeUInt32LE(s >>> 0, i);
  }
  return out;
}

/** The whole-disk pattern: `blocks` blocks of `bs` bytes. */
export function patternDisk(seed: number, blocks: number, bs: number): Buffer {
  return Buffer.concat(Array.from({ length: blocks }, (_, b) => patternBlock(seed, b, bs)));
}

/** Creates (or replaces) a file of `size` bytes, each `fill`. */
export function makeDisk(path: string, size: number, fill = 0): string {
  writeFileSync(path, Buffer.alloc(size, fill));
  return path;
}

/** Reads `len` bytes at `offset` of a file or device (short if it ends first). */
export function readAt(path: string, offset: number, len: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const n = readSync(fd, buf, got, len - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/**
 * Compares `data` with the pattern of `seed` in blocks of `bs`, where
 * data[0] is block `firstBlock`. Returns null if equal, else a description
 * of the first difference (tests print it).
 */
export function patternMismatch(data: Buffer, seed: number, bs: number, firstBlock = 0): string | null {
  if (data.length % bs !== 0) return `${data.length} bytes is not a whole number of ${bs}-byte blocks`;
  for (let b = 0; b * bs < data.length; b++) {
    const want = patternBlock(seed, firstBlock + b, bs);
    const got = data.subarray(b * bs, (b + 1) * bs);
    if (!got.equals(want)) {
      let i = 0;
      while (got[i] === want[i]) i++;
      return `block ${firstBlock + b} byte ${i}: got 0x${(got[i] ?? 0).toString(16)}, want 0x${(want[i] ?? 0).toString(16)}`;
    }
  }
  return null;
}

export type LoopResult = { ok: true; device: string } | { ok: false; reason: string };

/** Attaches `image` to a free loop device (losetup -f --show). */
export function attachLoop(image: string): LoopResult {
  const r = spawnSync('losetup', ['-f', '--show', image], { encoding: 'utf8', timeout: 10_000 });
  if (r.error) return { ok: false, reason: `losetup: ${r.error.message}` };
  const device = r.stdout.trim();
  if (r.status !== 0 || !device.startsWith('/dev/')) {
    return { ok: false, reason: `losetup -f --show failed (status ${r.status}): ${r.stderr.trim()}` };
  }
  return { ok: true, device };
}

/** Detaches a loop device attached by attachLoop; throws if losetup -d fails. */
export function detachLoop(device: string): void {
  const r = spawnSync('losetup', ['-d', device], { encoding: 'utf8', timeout: 10_000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`losetup -d ${device} failed: ${r.stderr.trim()}`);
}
