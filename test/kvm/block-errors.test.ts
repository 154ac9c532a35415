// A host I/O error during BLOCK_WRITE ends the run with a clear message and
// exit 1; it is never reported to the guest as success, and every block the
// guest was told was written is in the file. The error is made real with a
// disk image on a tmpfs too small to hold it (ENOSPC).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { patternBlock } from '../helpers/disk.js';
import { describeKvm, guest, runTender } from '../helpers/tender.js';

const BS = 512;
let dir = '';
let mnt = '';
let mounted = false;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ukvm-enospc-'));
  mnt = join(dir, 'small');
  mkdirSync(mnt);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt], { stdio: 'pipe' });
    mounted = true;
  } catch (e) {
    console.warn(`!! cannot mount a tmpfs (${(e as Error).message.split('\n')[0]}): the ENOSPC test is skipped`);
  }
});

afterAll(() => {
  if (mounted) execFileSync('umount', [mnt]);
  rmSync(dir, { recursive: true, force: true });
});

describeKvm('block: host I/O errors', () => {
  it('ENOSPC while writing: one line, exit 1, and the blocks already acknowledged are in the file', (ctx) => {
    if (!mounted) ctx.skip();
    const image = join(mnt, 'disk.img');
    writeFileSync(image, '');
    truncateSync(image, 1 << 20); // sparse: 1 MiB on a 64 KiB file system
    const r = runTender([`--block:storage=${image}`, guest('block_rw'), 'rw', '7']);
    expect(r.stderr).toBe('ukvm-ts: Fatal error when writing: No space left on device\n');
    expect(r.status).toBe(1);
    // The guest never got a success for the failed write, so it never went on
    // to read back or report anything.
    expect(r.stdout).not.toMatch(/block_rw: (ok|wrote)|FAIL/);
    const data = readFileSync(image);
    let written = 0;
    while (written * BS < data.length && data.subarray(written * BS, (written + 1) * BS).some((b) => b !== 0)) written++;
    expect(written).toBeGreaterThan(0);
    for (let i = 0; i < written; i++) {
      expect(data.subarray(i * BS, (i + 1) * BS).equals(patternBlock(7, i, BS))).toBe(true);
    }
  });
});
