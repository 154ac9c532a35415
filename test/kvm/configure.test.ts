// `ukvm-ts configure KERNEL -o MONITOR.mjs` (issues #6, #10): the generated
// per-unikernel monitor loads the prebuilt bundles of only the modules its
// kernel's manifest needs, runs kernels with exactly that manifest and refuses
// the others, loads less code than bin/ukvm-ts (measured with importClosure,
// itself checked against module-load hooks at run time), and finds ukvm-ts
// after the checkout moves or when ukvm-ts is installed as a package.
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importClosure } from '../helpers/import-closure.js';
import { kernel, MFT_BLOCK_BASIC } from '../helpers/elf-builder.js';
import { makeDisk, patternMismatch, readAt } from '../helpers/disk.js';
import { BIN, ROOT, describeKvm, guest, runTender, type RunResult } from '../helpers/tender.js';

const HELLO = guest('hello');
const RW = guest('block_rw');
const ECHO = guest('net_echo');

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ukvm-configure-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs a generated monitor (or any script) with node; returns its output. */
function runNode(script: string, args: readonly string[], extraNodeArgs: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): RunResult {
  const r = spawnSync(process.execPath, [...extraNodeArgs, script, ...args], { encoding: 'utf8', timeout: 60_000, env });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** `ukvm-ts configure KERNEL -o OUT`, expected to succeed; returns OUT. */
function configure(kernel: string, name: string): string {
  const out = join(dir, name);
  const r = runTender(['configure', kernel, '-o', out]);
  expect(r.stderr).toMatch(new RegExp(`^ukvm-ts: wrote ${out.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: modules console(, block)?(, net)?\n$`));
  expect(r.stdout).toBe('');
  expect(r.status).toBe(0);
  return out;
}

/**
 * The bundles a generated monitor loads (dynamically, once it found the
 * package): dist/bundles/monitor.mjs and one per module it names. With
 * importClosure they give every file it runs.
 */
function monitorBundles(text: string, file: string): string[] {
  const modules = /^const MODULES = (\[.*\]);$/m.exec(text);
  const at = /^const GENERATED_AT = (".*");$/m.exec(text);
  if (!modules || !at) return [];
  expect(file.endsWith('.mjs')).toBe(true);
  const root = JSON.parse(at[1] as string) as string;
  return ['monitor', ...(JSON.parse(modules[1] as string) as string[])].map((n) => join(root, 'dist', 'bundles', `${n}.mjs`));
}
const closure = (entry: string) => importClosure(entry, monitorBundles);
const modulesOf = (mon: string) => JSON.parse(/^const MODULES = (\[.*\]);$/m.exec(readFileSync(mon, 'utf8'))?.[1] ?? 'null') as unknown;

// Text only each device module's code contains, to see which ones a monitor loads.
const MARK = { block: 'Could not open block device', net: 'Could not attach interface' } as const;
const holds = (mon: string, m: keyof typeof MARK) => closure(mon).files.some((f) => readFileSync(f, 'utf8').includes(MARK[m]));

/** Asserts an "Invalid option" refusal: that line first, then the usage; exit 1, nothing on stdout. */
function expectInvalidOption(r: RunResult, prog: string, arg: string): void {
  const l = r.stderr.split('\n');
  expect(l[0]).toBe(`${prog}: Invalid option: \`${arg}'`);
  expect(l[1]).toMatch(/^usage: /);
  expect(r.stdout).toBe('');
  expect(r.status).toBe(1);
}

function expectManifestRefused(r: RunResult, prog: string, kernel: string): void {
  expect(r.stderr).toBe(`${prog}: ${kernel}: manifest differs from the one this monitor was generated for\n`);
  expect(r.stdout).toBe('');
  expect(r.status).toBe(1);
}

/** The "Compiled-in modules:" line of a --help text. */
function compiledIn(stderr: string): string | undefined {
  return stderr.split('\n').find((l) => l.startsWith('Compiled-in modules:'));
}

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

describeKvm('configure: running the hello monitor', () => {
  let mon = '';
  const prog = 'hello-mon.mjs';
  beforeAll(() => {
    mon = configure(HELLO, prog);
  });

  it('runs hello with its arguments and exits 0 (with node, and as an executable)', () => {
    const r = runNode(mon, [HELLO, 'a', 'b']);
    expect(r.stdout).toBe('Hello, world\ncmdline: a b\n');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const direct = runTender([HELLO, 'direct'], { bin: mon });
    expect(direct.stdout).toBe('Hello, world\ncmdline: direct\n');
    expect(direct.status).toBe(0);
  });

  it('runs another kernel with the same (empty) manifest, with its exit status', () => {
    const r = runNode(mon, ['--mem=32', guest('exit'), '300']);
    expect(r.stdout).toBe('exit: status 300\n');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(44);
  });

  it('refuses kernels with another manifest', () => {
    expectManifestRefused(runNode(mon, [RW]), prog, RW);
    expectManifestRefused(runNode(mon, [ECHO, '10.0.0.2']), prog, ECHO);
    expectManifestRefused(runNode(mon, ['--block:storage=/dev/null', RW]), prog, RW);
  });

  it('block and net options are invalid options for it', () => {
    const disk = makeDisk(join(dir, 'hello-mon.img'), 512);
    expectInvalidOption(runNode(mon, [`--block:storage=${disk}`, HELLO]), prog, `--block:storage=${disk}`);
    expectInvalidOption(runNode(mon, ['--net:service=tap0', HELLO]), prog, '--net:service=tap0');
    expectInvalidOption(runNode(mon, [`--disk=${disk}`, HELLO]), prog, `--disk=${disk}`);
    expectInvalidOption(runNode(mon, ['--net=tap0', HELLO]), prog, '--net=tap0');
  });

  it('--help lists only console as compiled-in module and no module options', () => {
    const r = runNode(mon, ['--help']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^usage: ${prog} `));
    expect(compiledIn(r.stderr)).toBe('Compiled-in modules: console');
    expect(r.stderr).not.toMatch(/--block|--disk|--net|Module options/);
    // For comparison: the full CLI has all three.
    expect(compiledIn(runTender(['--help']).stderr)).toBe('Compiled-in modules: console block net');
  });

  it('--version works', () => {
    const r = runNode(mon, ['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout + r.stderr).toMatch(new RegExp(`^${prog} \\(ukvm-ts\\) tender, version \\S+\\nABI version 2\\n$`));
  });

  it('loads exactly its import closure at run time, and no block or net code', () => {
    // Record every file: URL node loads, through a module-load hook.
    const hooks = join(dir, 'hooks.mjs');
    const register = join(dir, 'register.mjs');
    writeFileSync(hooks, [
      "import { appendFileSync } from 'node:fs';",
      'export async function load(url, context, next) {',
      "  if (url.startsWith('file:')) appendFileSync(process.env.UKVM_LOAD_LOG, url + '\\n');",
      '  return next(url, context);',
      '}',
      '',
    ].join('\n'));
    writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
    const loaded = (script: string, args: string[], log: string): string[] => {
      const r = runNode(script, args, ['--import', pathToFileURL(register).href], { ...process.env, UKVM_LOAD_LOG: log });
      expect(r.stdout).toBe('Hello, world\ncmdline: \n');
      expect(r.status).toBe(0);
      return [...new Set(readFileSync(log, 'utf8').split('\n').filter(Boolean))].map((u) => new URL(u).pathname).sort();
    };
    const monLoaded = loaded(mon, [HELLO], join(dir, 'mon-load.log'));
    const binLoaded = loaded(BIN, [HELLO], join(dir, 'bin-load.log'));
    console.log(`loaded at run time: hello monitor ${monLoaded.length} files, bin/ukvm-ts ${binLoaded.length} files`);
    // importClosure measures what node really loads, for both programs.
    expect(monLoaded).toEqual([...closure(mon).files].sort());
    expect(binLoaded).toEqual([...closure(BIN).files].sort());
    expect(monLoaded.filter((f) => /\/modules\/(block|net)\//.test(f))).toEqual([]);
  });
});

describeKvm('configure: running the block_rw monitor', () => {
  let mon = '';
  const prog = 'rw-mon.mjs';
  beforeAll(() => {
    mon = configure(RW, prog);
  });

  function expectRw(r: RunResult, disk: string, seed: number, blocks: number): void {
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n').at(-1)).toBe('block_rw: ok');
    expect(r.status).toBe(0);
    expect(patternMismatch(readAt(disk, 0, blocks * 512), seed, 512)).toBeNull();
  }

  it('runs block_rw with --block:storage=DISK', () => {
    const disk = makeDisk(join(dir, 'rw1.img'), 64 * 512);
    expectRw(runNode(mon, ['--mem=32', `--block:storage=${disk}`, RW, 'rw', '11']), disk, 11, 64);
  });

  it('runs block_rw with --disk DISK and --disk=DISK', () => {
    const d1 = makeDisk(join(dir, 'rw2.img'), 32 * 512);
    expectRw(runNode(mon, ['--mem=32', '--disk', d1, RW, 'rw', '12']), d1, 12, 32);
    const d2 = makeDisk(join(dir, 'rw3.img'), 32 * 512);
    expectRw(runNode(mon, ['--mem=32', `--disk=${d2}`, RW, 'rw', '13']), d2, 13, 32);
  });

  it('still requires the device to be attached', () => {
    const r = runNode(mon, ['--mem=32', RW]);
    expect(r.stderr).toMatch(/declared but not attached/);
    expect(r.stderr).toMatch(/All declared devices must be attached/);
    expect(r.status).toBe(1);
  });

  it('net options are invalid options for it', () => {
    const disk = makeDisk(join(dir, 'rw4.img'), 512);
    expectInvalidOption(runNode(mon, [`--block:storage=${disk}`, '--net:service=tap0', RW]), prog, '--net:service=tap0');
    expectInvalidOption(runNode(mon, [`--block:storage=${disk}`, '--net-mac:service=02:00:00:00:00:01', RW]), prog, '--net-mac:service=02:00:00:00:00:01');
  });

  it('refuses a kernel with a different manifest (block_two, hello)', () => {
    const disk = makeDisk(join(dir, 'rw5.img'), 512);
    const two = guest('block_two');
    expectManifestRefused(runNode(mon, [`--block:first=${disk}`, `--block:second=${disk}`, two]), prog, two);
    expectManifestRefused(runNode(mon, [two]), prog, two);
    expectManifestRefused(runNode(mon, [HELLO]), prog, HELLO);
  });

  it('--help lists console and block only', () => {
    const r = runNode(mon, ['--help']);
    expect(r.status).toBe(1);
    expect(compiledIn(r.stderr)).toBe('Compiled-in modules: console block');
    expect(r.stderr).toMatch(/--block:NAME=PATH/);
    expect(r.stderr).not.toMatch(/--net/);
  });
});

describeKvm('configure: the net_echo monitor', () => {
  it('--help lists console and net only; other manifests are refused', () => {
    const prog = 'net-mon.mjs';
    const mon = configure(ECHO, prog);
    const r = runNode(mon, ['--help']);
    expect(r.status).toBe(1);
    expect(compiledIn(r.stderr)).toBe('Compiled-in modules: console net');
    expect(r.stderr).toMatch(/--net:NAME=IFACE/);
    expect(r.stderr).not.toMatch(/--block|--disk/);
    expectManifestRefused(runNode(mon, [RW]), prog, RW);
    expectManifestRefused(runNode(mon, [HELLO]), prog, HELLO);
  });
});

describeKvm('configure: unusual paths', () => {
  /** A copy of the built package (bin, dist, the addon) under `name` in the temp dir; returns its bin. */
  function copyPackage(name: string): string {
    const pkg = join(dir, name);
    mkdirSync(join(pkg, 'build', 'Release'), { recursive: true });
    for (const d of ['bin', 'dist']) cpSync(join(ROOT, d), join(pkg, d), { recursive: true });
    copyFileSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
    copyFileSync(join(ROOT, 'build', 'Release', 'ukvm_native.node'), join(pkg, 'build', 'Release', 'ukvm_native.node'));
    return join(pkg, 'bin', 'ukvm-ts');
  }

  function configureWith(bin: string, kernel: string, out: string): void {
    const r = runTender(['configure', kernel, '-o', out], { bin });
    expect(r.stderr).toMatch(/: wrote .*: modules console\n$/);
    expect(r.status).toBe(0);
  }

  it('a package under a directory with a space: the monitor runs and importClosure follows its imports', () => {
    const bin = copyPackage('pkg with space');
    const out = join(dir, 'space-mon.mjs');
    configureWith(bin, HELLO, out);
    const r = runNode(out, [HELLO, 'sp']);
    expect(r.stdout).toBe('Hello, world\ncmdline: sp\n');
    expect(r.status).toBe(0);
    const c = closure(out);
    expect(c.files.some((f) => f.endsWith('/dist/bundles/console.mjs'))).toBe(true);
    expect(c.files.every((f) => existsSync(f))).toBe(true);
  });

  it("a package under a directory with a quote ('): the generated monitor still parses and runs", () => {
    const bin = copyPackage("pkg'quote");
    expect(runTender([HELLO, 'direct'], { bin }).stdout).toBe('Hello, world\ncmdline: direct\n');
    const out = join(dir, 'quote-mon.mjs');
    configureWith(bin, HELLO, out);
    const r = runNode(out, [HELLO, 'q']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('Hello, world\ncmdline: q\n');
    expect(r.status).toBe(0);
  });

  it('a kernel path with a newline: the generated monitor still parses and runs', () => {
    const k = join(dir, 'two\nlines;process.exit(7);.hvt');
    copyFileSync(HELLO, k);
    const out = join(dir, 'newline-mon.mjs');
    expect(runTender(['configure', k, '-o', out]).status).toBe(0);
    const r = runNode(out, [k, 'nl']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('Hello, world\ncmdline: nl\n');
    expect(r.status).toBe(0);
  });

  it('installed as a package: a monitor in the project finds ukvm-ts in node_modules, also after the project moved', () => {
    const bin = copyPackage(join('project', 'node_modules', 'ukvm-ts'));
    const out = join(dir, 'project', 'hello-mon.mjs');
    configureWith(bin, HELLO, out);
    renameSync(join(dir, 'project'), join(dir, 'project-moved'));
    const r = runNode(join(dir, 'project-moved', 'hello-mon.mjs'), [HELLO, 'pkg']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('Hello, world\ncmdline: pkg\n');
    expect(r.status).toBe(0);
  });

  it('the checkout moved: a monitor finds ukvm-ts through the ukvm-ts command on PATH, and says so in one line when it cannot', () => {
    const bin = copyPackage('checkout');
    const out = join(dir, 'moved-mon.mjs');
    configureWith(bin, HELLO, out);
    renameSync(join(dir, 'checkout'), join(dir, 'checkout-moved'));
    const path = `${join(dir, 'checkout-moved', 'bin')}:${process.env['PATH'] ?? ''}`;
    const r = runNode(out, [HELLO, 'path'], [], { ...process.env, PATH: path });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('Hello, world\ncmdline: path\n');
    const lost = runNode(out, [HELLO], [], { ...process.env, PATH: '/usr/bin:/bin' });
    expect(lost.stdout).toBe('');
    expect(lost.stderr).toMatch(/^moved-mon\.mjs: cannot find ukvm-ts \S+: install it next to this monitor, put its ukvm-ts command on PATH, or run ukvm-ts configure again\n$/);
    expect(lost.status).toBe(1);
  });
});
