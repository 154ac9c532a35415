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

// The self-contained executable (scripts/build-exe.mjs) has no package on
// disk: its bundler defines UKVM_EMBEDDED_VERSION as the version string, and
// nothing may look for a package.json then. Elsewhere the name is undeclared
// and `typeof` says so without throwing.
declare const UKVM_EMBEDDED_VERSION: string | undefined;

/** The version built into the self-contained executable; undefined when running from a package. */
export const EMBEDDED_VERSION: string | undefined = typeof UKVM_EMBEDDED_VERSION === 'string' ? UKVM_EMBEDDED_VERSION : undefined;

/** The directory holding ukvm-ts's package.json ('' inside the self-contained executable). */
export const PACKAGE_ROOT = EMBEDDED_VERSION === undefined ? findRoot(import.meta.dirname) : '';

/** ukvm-ts's version: package.json's, or the one built into the executable. */
export function packageVersion(): string {
  if (EMBEDDED_VERSION !== undefined) return EMBEDDED_VERSION;
  return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}
/** Compiled JavaScript (tsc output). */
export const DIST = join(PACKAGE_ROOT, 'dist');
