// `ukvm-ts configure KERNEL -o MONITOR.mjs` (issues #6, #10): the generated
// per-unikernel monitor loads the prebuilt bundles of only the modules its
// kernel's manifest needs, runs kernels with exactly that manifest and refuses
// the others, loads less code than bin/ukvm-ts (measured with importClosure,
// itself checked against module-load hooks at run time), and finds ukvm-ts
// after the checkout moves or when ukvm-ts is installed as a package.
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { closure, compiledIn, configureInto, expectInvalidOption, expectManifestRefused, runNode } from '../helpers/monitors.js';
import { makeDisk, patternMismatch, readAt } from '../helpers/disk.js';
import { BIN, ROOT, describeKvm, guest, runTender, type RunResult } from '../helpers/tender.js';

const HELLO = guest('hello');
const RW = guest('block_rw');
const ECHO = guest('net_echo');

let dir = '';
const configure = (kernel: string, name: string) => configureInto(dir, kernel, name);
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ukvm-configure-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
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
    expect(compiledIn(runTender(['--help']).stderr)).toBe('Compiled-in modules: console block net dumpcore gdb');
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
