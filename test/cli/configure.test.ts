// `ukvm-ts configure` without KVM (issues #6, #10): the source it generates
// (which bundles a monitor loads, made from the registry; no code injection
// through names) and its refusals. Running the monitors: test/kvm/configure.test.ts.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernel, MFT_BLOCK_BASIC } from '../helpers/elf-builder.js';
import { closure, configureInto, holds, modulesOf, monitorBundles } from '../helpers/monitors.js';
import { BIN, guest, ROOT, runTender, type RunResult } from '../helpers/tender.js';

const HELLO = guest('hello');
const RW = guest('block_rw');
const ECHO = guest('net_echo');

let dir = '';
const configure = (k: string, name: string) => configureInto(dir, k, name);
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ukvm-configure-cli-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('configure: the generated source', () => {
  it('hello: loads the monitor bundle and the console module, no block or net code', async () => {
    const mon = configure(HELLO, 'hello-src.mjs');
    expect(modulesOf(mon)).toEqual(['console']);
    const [main, cons] = monitorBundles(readFileSync(mon, 'utf8'), mon) as [string, string];
    expect(Object.keys(await import(pathToFileURL(main).href))).toEqual(['main']);
    expect(((await import(pathToFileURL(cons).href)) as { default: { name: string } }).default.name).toBe('console');
    expect(holds(mon, 'block') || holds(mon, 'net')).toBe(false);
    const text = readFileSync(mon, 'utf8');
    expect(text).not.toMatch(/modules\/block|modules\/net|REGISTRY/);
    expect(text).toMatch(/expectManifest/);
    expect(text.startsWith('#!/usr/bin/env -S -u NODE_OPTIONS node\n')).toBe(true);
    expect(statSync(mon).mode & 0o111).not.toBe(0);
  });

  it('block_rw: loads the block module but not net', () => {
    const mon = configure(RW, 'rw-src.mjs');
    expect(modulesOf(mon)).toEqual(['console', 'block']);
    expect(holds(mon, 'block')).toBe(true);
    expect(holds(mon, 'net')).toBe(false);
  });

  it('net_echo: loads the net module but not block', () => {
    const mon = configure(ECHO, 'net-src.mjs');
    expect(modulesOf(mon)).toEqual(['console', 'net']);
    expect(holds(mon, 'net')).toBe(true);
    expect(holds(mon, 'block')).toBe(false);
  });

  it('the bundles are made from the registry: one per module, each default-exporting its descriptor', async () => {
    const { REGISTRY } = (await import(pathToFileURL(join(ROOT, 'dist', 'monitor', 'registry.js')).href)) as { REGISTRY: { name: string }[] };
    for (const d of REGISTRY) {
      const b = (await import(pathToFileURL(join(ROOT, 'dist', 'bundles', `${d.name}.mjs`)).href)) as { default: { name: string } };
      expect(b.default.name).toBe(d.name);
    }
  });

  it('a manifest name cannot inject code into the generated source', () => {
    const evil = join(dir, 'evil-name.hvt');
    writeFileSync(evil, kernel({ manifest: { devices: [{ name: 'a\nprocess.exit(7);//', type: MFT_BLOCK_BASIC }] } }));
    const text = readFileSync(configure(evil, 'evil-mon.mjs'), 'utf8');
    expect(text).toContain("block 'a\\x0aprocess.exit(7);//'");
    expect(text.split('\n').some((l) => l.startsWith('process.exit(7)'))).toBe(false);
  });

  it('importClosure: a monitor loads less code the fewer device modules it needs, and less than bin/ukvm-ts', () => {
    const hello = closure(configure(HELLO, 'hello-closure.mjs'));
    const rw = closure(configure(RW, 'rw-closure.mjs'));
    const echo = closure(configure(ECHO, 'net-closure.mjs'));
    const bin = closure(BIN);
    console.log(`import closure: hello monitor ${hello.files.length} files, ${hello.bytes} bytes; ` +
      `block_rw monitor ${rw.files.length} files, ${rw.bytes} bytes; ` +
      `net_echo monitor ${echo.files.length} files, ${echo.bytes} bytes; ` +
      `bin/ukvm-ts ${bin.files.length} files, ${bin.bytes} bytes`);
    expect(bin.files).toHaveLength(2); // the program and its one bundle
    expect(hello.bytes).toBeLessThan(rw.bytes);
    expect(hello.bytes).toBeLessThan(echo.bytes);
    for (const c of [hello, rw, echo]) expect(c.bytes).toBeLessThan(bin.bytes);
  });
});

describe('configure: errors', () => {
  function expectOneLine(r: RunResult, pattern: RegExp): void {
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.endsWith('\n')).toBe(true);
    expect(r.stderr.split('\n')).toHaveLength(2);
    expect(r.stderr).toMatch(pattern);
  }

  it('without -o: usage in one line, exit 1, nothing written', () => {
    expectOneLine(runTender(['configure', HELLO]), /^ukvm-ts: usage: ukvm-ts configure KERNEL -o /);
    expectOneLine(runTender(['configure', HELLO, '-o']), /^ukvm-ts: usage: /);
    expectOneLine(runTender(['configure', '-o', join(dir, 'nokernel.mjs')]), /^ukvm-ts: usage: /);
    expect(existsSync(join(dir, 'nokernel.mjs'))).toBe(false);
    expectOneLine(runTender(['configure']), /^ukvm-ts: usage: /);
  });

  it('a missing kernel: one line naming it, exit 1, nothing written', () => {
    const out = join(dir, 'missing.mjs');
    const kernel = join(dir, 'no-such.hvt');
    expectOneLine(runTender(['configure', kernel, '-o', out]), new RegExp(`^ukvm-ts: .*no-such\\.hvt.*: No such file or directory\\n$`));
    expect(existsSync(out)).toBe(false);
  });

  it('a file that is not a unikernel: one line, exit 1, nothing written', () => {
    const bad = join(dir, 'bad.hvt');
    writeFileSync(bad, 'not an ELF file\n');
    const out = join(dir, 'bad.mjs');
    expectOneLine(runTender(['configure', bad, '-o', out]), /^ukvm-ts: .*bad\.hvt: /);
    expect(existsSync(out)).toBe(false);
  });

  it('an output path that cannot be written, or an extra argument: one line, exit 1', () => {
    expectOneLine(runTender(['configure', HELLO, '-o', join(dir, 'no-dir', 'x.mjs')]), /^ukvm-ts: .*no-dir/);
    expectOneLine(runTender(['configure', HELLO, '-o', join(dir, 'extra.mjs'), 'extra']), /^ukvm-ts: .*extra/);
  });
});
