// Finding and loading the addons, and checking each once at load: every
// export the typed surface declares must be there with the right type, and
// the struct kvm_run offsets the addon was compiled with must be the ones the
// TypeScript decoder reads. Nothing here imports from monitor/: the package
// root is found from this file's own location.
//
// Where an addon comes from, in order: a provider the process installed
// (the self-contained executable carries its addon inside itself, see
// monitor/exe/); <package>/build/Release/NAME.node (a checkout, or an install
// that compiled it); for ukvm_native only, the prebuilt addon an npm package
// ships in prebuilds/<platform>-<arch>/, found by node-gyp-build (the
// convention of native addons, so installing needs no compiler).
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { HOST_SHAPE, type HostBinding } from './host.js';
import { KVM_RUN_OFFSETS, KVM_SHAPE, type KvmBinding } from './kvm.js';
import { SCHED_SHAPE, type SchedBinding } from './sched.js';

/** The product's native surface: KVM, host and several-VMs-per-thread (the bench addon adds benchRunToHalt, see bench.ts). */
export type NativeBinding = KvmBinding & HostBinding & SchedBinding;

export type ExportKind = 'function' | 'number' | 'string' | 'object';
export type Shape = Readonly<Record<string, ExportKind>>;

export const NATIVE_SHAPE: Shape = { ...KVM_SHAPE, ...HOST_SHAPE, ...SCHED_SHAPE };

const PACKAGE_NAME = 'ukvm-ts';

/**
 * The directory holding the package.json named "ukvm-ts", walking up from
 * `from`: native/binding/ (sources, tests), dist/native/binding/ (the
 * library), dist/ (the CLI bundle dist/ukvm-ts.mjs), dist/bundles/ (the
 * generated monitors' bundles) all lead to the same root.
 */
export function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      let name: unknown;
      try {
        name = (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name;
      } catch {
        name = undefined; // not ours; keep walking
      }
      if (name === PACKAGE_NAME) return dir;
    }
    if (dirname(dir) === dir) throw new Error(`${PACKAGE_NAME}: cannot find the package root above ${from}`);
  }
}

let root: string | undefined;

/** The package root of this copy of ukvm-ts (found once). */
export function packageRoot(): string {
  root ??= findPackageRoot(import.meta.dirname);
  return root;
}

export type AddonName = 'ukvm_native' | 'ukvm_bench';

/** What node-gyp-build exports (a CommonJS package without types). */
interface NodeGypBuild {
  path(dir: string): string;
}

/**
 * The file NAME is loaded from: <package>/build/Release/NAME.node if it
 * exists; else, for ukvm_native, the prebuild node-gyp-build picks for this
 * platform; else the build/Release path (so the error names what is missing).
 */
export function addonPath(name: AddonName): string {
  const built = join(packageRoot(), 'build', 'Release', `${name}.node`);
  if (name !== 'ukvm_native' || existsSync(built)) return built;
  try {
    const ngb = createRequire(import.meta.url)('node-gyp-build') as NodeGypBuild;
    const found = ngb.path(packageRoot());
    // node-gyp-build takes the first .node in build/Release before the
    // prebuilds; a stray bench addon there must not pass for the product.
    if (basename(found).startsWith(`${name}.`)) return found;
  } catch {
    // no prebuild for this platform (or node-gyp-build absent): report the build path
  }
  return built;
}

/** Loads an addon by name the way this process wants it (see provideAddon). */
export type AddonProvider = (name: AddonName) => unknown;

let provider: AddonProvider | undefined;

/**
 * Makes every later load in this thread take its addons from `load` instead
 * of the package's files: the self-contained executable, which has no
 * package on disk, hands out the addon it carries. Loads already made stay.
 */
export function provideAddon(load: AddonProvider): void {
  provider = load;
}

/**
 * Checks a loaded addon against a shape; throws one Error naming every
 * export that is missing or of the wrong type, and any kvm_run offset that
 * differs from KVM_RUN_OFFSETS (a stale build, or headers that moved).
 */
export function checkShape<T>(addon: unknown, shape: Shape, what: string): T {
  if (typeof addon !== 'object' || addon === null) throw new Error(`${what}: the addon exports no object`);
  const a = addon as Record<string, unknown>;
  const missing: string[] = [];
  const wrong: string[] = [];
  for (const [name, kind] of Object.entries(shape)) {
    const t = a[name] === null ? 'null' : typeof a[name];
    if (t === 'undefined') missing.push(name);
    else if (t !== kind) wrong.push(`${name} is ${t}, not ${kind}`);
  }
  const problems: string[] = [];
  if (missing.length) problems.push(`missing ${missing.join(', ')}`);
  if (wrong.length) problems.push(wrong.join('; '));
  if (shape['kvmRunOffsets'] === 'object' && !missing.includes('kvmRunOffsets') && !wrong.some((w) => w.startsWith('kvmRunOffsets'))) {
    const got = a['kvmRunOffsets'] as Record<string, unknown>;
    for (const [field, offset] of Object.entries(KVM_RUN_OFFSETS)) {
      if (got[field] !== offset) problems.push(`kvm_run field ${field} is at ${String(got[field])}, TypeScript reads it at ${offset}`);
    }
  }
  if (problems.length) throw new Error(`${what} does not match its typed surface (rebuild it: npm run build): ${problems.join('; ')}`);
  return addon as T;
}

/** Loads addon NAME in this thread (see addonPath, provideAddon) and checks it against shape. */
export function loadAddon<T>(name: AddonName, shape: Shape): T {
  if (provider !== undefined) return checkShape<T>(provider(name), shape, `the embedded ${name} addon`);
  const path = addonPath(name);
  const require = createRequire(import.meta.url);
  return checkShape<T>(require(path), shape, path);
}

let cached: NativeBinding | undefined;

/** Loads the ukvm_native addon once per thread, checked. */
export function loadNative(): NativeBinding {
  cached ??= loadAddon<NativeBinding>('ukvm_native', NATIVE_SHAPE);
  return cached;
}

/**
 * The C library's strerror text, for the monitor to register with its error
 * wording (monitor/errors.ts useStrerror); loads the addon on first use.
 */
export function strerror(errno: number): string {
  return loadNative().strerror(errno);
}
