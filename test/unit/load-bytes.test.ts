// native/binding/load-bytes.ts: an addon given as bytes is dlopened through
// an anonymous file (O_TMPFILE, else a file unlinked at once) and nothing is
// left in the directory; directories that cannot take it are skipped, and
// when none can, one line names each with its reason. (The urunc-shaped
// KVM test covers noexec and read-only mounts.)
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAddonBytes, scratchDirectories } from '../../native/binding/load-bytes.js';
import { ROOT } from '../helpers/tender.js';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ukvm-load-bytes-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('loadAddonBytes', () => {
  it('loads the addon from bytes, skipping a missing directory, and leaves no file behind', () => {
    const bytes = readFileSync(join(ROOT, 'build', 'Release', 'ukvm_native.node'));
    const addon = loadAddonBytes(bytes, 'native addon', [join(dir, 'missing'), dir]);
    expect(typeof (addon.exports as { strerror?: unknown }).strerror).toBe('function');
    expect(addon.path).toMatch(/^\/proc\/self\/fd\/\d+$/);
    expect(readdirSync(dir)).toEqual([]);
  });

  // Runs after a successful load on purpose: with the loaded object's descriptor
  // closed, this load would reuse its /proc/self/fd/N name and get that object.
  it('bytes that are no shared object (after a load): one line naming every directory and why', () => {
    let message = '';
    try {
      loadAddonBytes(Buffer.from('not an ELF file'), 'test addon', [join(dir, 'missing'), dir]);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(new RegExp(`^cannot load the embedded test addon: it needs a writable directory on a filesystem that allows executable mappings \\(tried ${join(dir, 'missing')}: ENOENT; ${dir}: .+\\)$`));
    expect(message).not.toContain('\n');
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('scratchDirectories', () => {
  it('$TMPDIR first, then the memory filesystems, /dev and the executable directory; no duplicates, no relative paths', () => {
    expect(scratchDirectories({ TMPDIR: '/tmp' }, '/usr/local/bin/solo5-hvt')).toEqual(['/tmp', '/dev/shm', '/run', '/var/tmp', '/dev', '/usr/local/bin']);
    expect(scratchDirectories({ TMPDIR: 'relative' }, '/opt/x')).toEqual(['/dev/shm', '/tmp', '/run', '/var/tmp', '/dev', '/opt']);
  });
});
