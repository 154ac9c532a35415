// The native surface's loader (native/binding/load.ts): the shape check made
// once at load, the kvm_run offsets the addon reports against the ones the
// TypeScript decoder reads, the package root found from native/'s own
// location in every layout the package runs from, the product and bench
// addons kept apart, and native/ importing nothing from monitor/. Loading an
// addon needs no /dev/kvm.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BENCH_SHAPE, loadBench } from '../../native/binding/bench.js';
import { HOST_SHAPE } from '../../native/binding/host.js';
import { KVM_RUN_OFFSETS, KVM_SHAPE } from '../../native/binding/kvm.js';
import * as binding from '../../native/binding.js';
import { addonPath, checkShape, findPackageRoot, loadNative, NATIVE_SHAPE, packageRoot, strerror } from '../../native/binding.js';

const ROOT = join(import.meta.dirname, '..', '..');

/** An object with every export of a shape, of the right type. */
function fakeAddon(shape: Readonly<Record<string, string>>): Record<string, unknown> {
  const value = { function: () => 0, number: 1, object: {} } as Record<string, unknown>;
  const a = Object.fromEntries(Object.entries(shape).map(([k, kind]) => [k, value[kind]]));
  a['kvmRunOffsets'] = { ...KVM_RUN_OFFSETS };
  return a;
}

describe('native addon shape check', () => {
  it('accepts the built product addon, which has the kvm and host surfaces and no bench export', () => {
    const b = loadNative();
    expect(b).toBe(loadNative()); // once per thread
    for (const name of [...Object.keys(KVM_SHAPE), ...Object.keys(HOST_SHAPE)]) expect(name in b).toBe(true);
    expect('benchRunToHalt' in b).toBe(false);
    expect(b.kvmRunOffsets).toEqual(KVM_RUN_OFFSETS);
    expect(b.kvmRunSize).toBe(2352);
  });

  it('loads the bench addon apart, with the whole surface and benchRunToHalt', () => {
    const bench = loadBench();
    expect(bench).not.toBe(loadNative());
    expect(typeof bench.benchRunToHalt).toBe('function');
    expect(Object.keys(BENCH_SHAPE).sort()).toEqual([...Object.keys(NATIVE_SHAPE), 'benchRunToHalt'].sort());
    expect(addonPath('ukvm_bench')).toBe(join(ROOT, 'build', 'Release', 'ukvm_bench.node'));
  });

  it('registers exactly the declared surface: nothing undeclared is exported', () => {
    const declared = new Set(Object.keys(NATIVE_SHAPE));
    expect(Object.keys(loadNative()).filter((k) => !declared.has(k))).toEqual([]);
  });

  it('names every missing export and every export of the wrong type', () => {
    const a = fakeAddon(NATIVE_SHAPE);
    delete a['getFpu'];
    delete a['waitsetWait'];
    a['kick'] = 3;
    a['kvmRunSize'] = null;
    const message = (() => {
      try {
        checkShape(a, NATIVE_SHAPE, 'x.node');
      } catch (e) {
        return (e as Error).message;
      }
      return 'no error';
    })();
    expect(message).toMatch(/^x\.node does not match its typed surface \(rebuild it: npm run build\): /);
    expect(message).toContain('missing getFpu, waitsetWait');
    expect(message).toContain('kick is number, not function');
    expect(message).toContain('kvmRunSize is null, not number');
  });

  it('refuses an addon whose kvm_run offsets differ from the decoder\'s', () => {
    const a = fakeAddon(NATIVE_SHAPE);
    a['kvmRunOffsets'] = { ...KVM_RUN_OFFSETS, ioPort: 36, debugPc: undefined };
    expect(() => checkShape(a, NATIVE_SHAPE, 'x.node')).toThrow(
      'kvm_run field ioPort is at 36, TypeScript reads it at 34; kvm_run field debugPc is at undefined, TypeScript reads it at 40',
    );
  });

  it('accepts a complete addon and refuses something that is not an object', () => {
    const a = fakeAddon(NATIVE_SHAPE);
    expect(checkShape(a, NATIVE_SHAPE, 'x.node')).toBe(a);
    expect(() => checkShape(undefined, NATIVE_SHAPE, 'x.node')).toThrow('x.node: the addon exports no object');
  });

  it('exports strerror for the monitor to register (the C library\'s text)', () => {
    expect(strerror(2)).toBe('No such file or directory');
  });

  it('keeps the old import path: native/binding.js re-exports the split surface', () => {
    expect(typeof binding.loadNative).toBe('function');
    expect(typeof binding.isNativeError).toBe('function');
    expect([binding.RUN_EXIT, binding.RUN_INTERRUPTED, binding.RUN_FAULT]).toEqual([0, 1, 2]);
    expect(binding.KVM_RUN_OFFSETS.exitReason).toBe(8);
  });
});

describe('package root', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ukvm-root-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('is found from the sources, the library build, the CLI bundle and the monitor bundles', () => {
    expect(packageRoot()).toBe(ROOT);
    for (const from of ['native/binding', 'dist/native/binding', 'dist', 'dist/bundles']) expect(findPackageRoot(join(ROOT, from))).toBe(ROOT);
  });

  it('walks past a package.json of another name (an installing project, node_modules) and a broken one', () => {
    const pkg = join(tmp, 'app', 'node_modules', 'ukvm-ts');
    mkdirSync(join(pkg, 'dist', 'native', 'binding'), { recursive: true });
    writeFileSync(join(tmp, 'app', 'package.json'), JSON.stringify({ name: 'app' }));
    writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'ukvm-ts' }));
    writeFileSync(join(pkg, 'dist', 'package.json'), '{ not json');
    writeFileSync(join(pkg, 'dist', 'native', 'package.json'), JSON.stringify({ name: 'other' }));
    expect(findPackageRoot(join(pkg, 'dist', 'native', 'binding'))).toBe(pkg);
    expect(() => findPackageRoot(join(tmp, 'app'))).toThrow(`ukvm-ts: cannot find the package root above ${join(tmp, 'app')}`);
  });
});

describe('native/ stands alone', () => {
  it('imports nothing from monitor/ (or modules/)', () => {
    const dir = join(ROOT, 'native');
    const files = [join(dir, 'binding.ts'), ...readdirSync(join(dir, 'binding')).map((f) => join(dir, 'binding', f))];
    for (const file of files) {
      const src = readFileSync(file, 'utf8');
      const specifiers = [...src.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+'([^']+)'/gm)].map((m) => m[1]);
      expect(specifiers.filter((s) => !s?.startsWith('node:') && !s?.startsWith('./')), file).toEqual([]);
    }
  });
});
