// The npm package as a consumer gets it: `npm pack` (with the prepack step,
// scripts/prebuilds.mjs, run by hand: npm's own prepare would rebuild dist/
// under the other test files), then `npm install ./ukvm-ts-*.tgz` in empty
// projects whose PATH holds only node, npm, npx and sh, so no compiler,
// make or python can be found. Once as npm installs by default (npm ≥ 11
// does not run a dependency's install scripts unless allowed) and once with
// ukvm-ts's install script allowed (node-gyp-build finds the prebuild and
// compiles nothing). Then `npx ukvm-ts --version`, `npx ukvm-ts KERNEL`,
// and a TypeScript program importing startUnikernel, type-checked and run.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeKvm, guest, ROOT } from '../helpers/tender.js';

let dir = '';
let tarball = '';
let files: string[] = [];
const FAKEBIN = () => join(dir, 'bin');

interface Consumer {
  name: string;
  path: string;
  install: { status: number | null; output: string };
}
const consumers: Consumer[] = [];

/** A clean environment: HOME (npm's cache) and the PATH without compilers. */
function env(): NodeJS.ProcessEnv {
  return { HOME: process.env['HOME'] ?? '/root', PATH: FAKEBIN() };
}

function sh(cwd: string, cmd: string, args: readonly string[], timeout = 120_000) {
  const r = spawnSync(cmd, args, { cwd, env: env(), encoding: 'utf8', timeout });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function makeConsumer(name: string, extra: Record<string, unknown>): Consumer {
  const path = join(dir, name);
  mkdirSync(path);
  writeFileSync(join(path, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true, type: 'module', ...extra }, null, 2));
  const r = sh(path, join(FAKEBIN(), 'npm'), ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline', '--foreground-scripts'], 300_000);
  return { name, path, install: { status: r.status, output: r.stdout + r.stderr } };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'ukvm-pkg-'));
  mkdirSync(FAKEBIN());
  for (const tool of ['node', 'npm', 'npx', 'sh']) {
    const where = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    if (!where) throw new Error(`${tool} is not on PATH`);
    symlinkSync(where, join(FAKEBIN(), tool));
  }
  const pre = spawnSync(process.execPath, [join(ROOT, 'scripts', 'prebuilds.mjs')], { encoding: 'utf8' });
  try {
    if (pre.status !== 0) throw new Error(`prebuilds.mjs failed: ${pre.stderr}`);
    const pack = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    if (pack.status !== 0) throw new Error(`npm pack failed: ${pack.stderr}`);
    const info = (JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[])[0];
    if (!info) throw new Error(`npm pack said nothing: ${pack.stdout}`);
    tarball = join(dir, info.filename);
    files = info.files.map((f) => f.path).sort();
  } finally {
    spawnSync(process.execPath, [join(ROOT, 'scripts', 'prebuilds.mjs'), '--clean']);
  }
  consumers.push(makeConsumer('default', {}));
  consumers.push(makeConsumer('scripts-allowed', { allowScripts: { 'ukvm-ts': true } }));
}, 600_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the npm package', () => {
  it('holds the program, the library with its types, the prebuilt addon and the addon sources; no tests, bench or executable', () => {
    expect(files).toContain('bin/ukvm-ts');
    expect(files).toContain('dist/ukvm-ts.mjs');
    expect(files).toContain('dist/monitor/index.js');
    expect(files).toContain('dist/monitor/index.d.ts');
    expect(files).toContain('dist/bundles/monitor.mjs');
    expect(files).toContain(`prebuilds/${process.platform}-${process.arch}/ukvm_native.napi.glibc.node`);
    expect(files).toContain('binding.gyp');
    expect(files).toContain('native/addon.cc');
    for (const f of files) expect(f).not.toMatch(/^(test|bench|scripts|examples|build|dist\/exe|dist\/sea|dist\/bundle-entries)\//);
    expect(files.filter((f) => f.endsWith('.node'))).toHaveLength(1);
  });

  it('the consumers cannot reach a compiler', () => {
    for (const tool of ['cc', 'gcc', 'g++', 'c++', 'make', 'python3']) {
      expect(sh(dir, join(FAKEBIN(), 'sh'), ['-c', `command -v ${tool}`]).status).not.toBe(0);
    }
  });

  it.each(['default', 'scripts-allowed'])('%s: npm install of the tarball succeeds and compiles nothing', (name) => {
    const c = consumers.find((x) => x.name === name) as Consumer;
    expect(c.install.status, c.install.output).toBe(0);
    expect(existsSync(join(c.path, 'node_modules', 'ukvm-ts', 'build'))).toBe(false);
    if (name === 'scripts-allowed') expect(c.install.output).toContain('> node-gyp-build');
  });

  it.each(['default', 'scripts-allowed'])('%s: npx ukvm-ts --version', (name) => {
    const c = consumers.find((x) => x.name === name) as Consumer;
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    const r = sh(c.path, join(FAKEBIN(), 'npx'), ['ukvm-ts', '--version']);
    expect(r).toEqual({ status: 0, stdout: '', stderr: `ukvm-ts (ukvm-ts) tender, version ${version}\nABI version 2\n` });
  });

  it('types: a program importing startUnikernel type-checks, and a wrong option type does not', () => {
    const c = consumers[0] as Consumer;
    writeFileSync(join(c.path, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'out',
        types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')],
      },
      files: ['app.ts'],
    }));
    writeFileSync(join(c.path, 'app.ts'), [
      "import { startUnikernel, type TenderError } from 'ukvm-ts';",
      'const kernel: string = process.argv[2] ?? "";',
      "const vm = await startUnikernel({ kernel, memoryMiB: 32, args: ['from', 'the', 'library'], console: (text: string) => process.stdout.write(text) });",
      'const { status, reason } = await vm.exited;',
      'const unused: TenderError | undefined = undefined;',
      'void unused;',
      'console.log(`exited ${reason} ${status}`);',
      '',
    ].join('\n'));
    const tsc = [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')];
    const ok = sh(c.path, join(FAKEBIN(), 'node'), [...tsc, '-p', 'tsconfig.json']);
    expect(ok, ok.stdout).toMatchObject({ status: 0 });
    writeFileSync(join(c.path, 'bad.ts'), "import { startUnikernel } from 'ukvm-ts';\nawait startUnikernel({ kernel: 'x.hvt', memoryMiB: 'lots' });\n");
    const wrong = sh(c.path, join(FAKEBIN(), 'node'), [...tsc, '--noEmit', '--strict', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022',
      '--types', 'node', '--typeRoots', join(ROOT, 'node_modules', '@types'), 'bad.ts']);
    expect(wrong.status).not.toBe(0);
    expect(wrong.stdout).toMatch(/bad\.ts\(2,\d+\): error TS2322: Type 'string' is not assignable to type 'number/);
  });
});

describeKvm('the npm package runs unikernels', () => {
  it.each(['default', 'scripts-allowed'])('%s: npx ukvm-ts KERNEL ARGS', (name) => {
    const c = consumers.find((x) => x.name === name) as Consumer;
    const r = sh(c.path, join(FAKEBIN(), 'npx'), ['ukvm-ts', '--mem=32', guest('hello'), 'from', 'npx']);
    expect(r).toEqual({ status: 0, stdout: 'Hello, world\ncmdline: from npx\n', stderr: '' });
  });

  it('the TypeScript program runs hello through startUnikernel', () => {
    const c = consumers[0] as Consumer;
    expect(existsSync(join(c.path, 'out', 'app.js'))).toBe(true);
    const r = sh(c.path, join(FAKEBIN(), 'node'), [join('out', 'app.js'), guest('hello')]);
    expect(r).toEqual({ status: 0, stdout: 'Hello, world\ncmdline: from the library\nexited halt 0\n', stderr: '' });
  });
});
