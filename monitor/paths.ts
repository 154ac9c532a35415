// Where the package is on disk, found by walking up from this file to the
// package.json named ukvm-ts. The CLI runs from a single bundled file and
// the library from dist/, so fixed relative paths would differ between them.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'ukvm-ts') return dir;
    if (dirname(dir) === dir) throw new Error(`ukvm-ts: cannot find the package root above ${from}`);
  }
}

/** The directory holding ukvm-ts's package.json. */
export const PACKAGE_ROOT = findRoot(import.meta.dirname);
/** Compiled JavaScript (tsc output). */
export const DIST = join(PACKAGE_ROOT, 'dist');
