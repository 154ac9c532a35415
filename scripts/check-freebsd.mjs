#!/usr/bin/env node
// npm run check:freebsd — what can be checked of the FreeBSD vmm backend on a
// machine without FreeBSD (README "FreeBSD"):
//
//   1. every native source binding.gyp builds on FreeBSD compiles with clang
//      for x86_64-unknown-freebsd14, -fsyntax-only -Wall -Wextra -Werror,
//      against the project's own declarations of the FreeBSD interfaces
//      (native/freebsd/fbsd_sys.h with UKVM_FREEBSD_DECLS; its static_asserts
//      pin every size, offset and ioctl number to FreeBSD's headers). The
//      generic POSIX and C++ headers come from the host (glibc, libstdc++):
//      they stand in for FreeBSD's for syntax and types only;
//   2. the numbers the C side pins and the ones the TypeScript backend reads
//      are the same (a host build of native/freebsd/abi_dump.cc prints them);
//   3. the unit tests of the TypeScript backend over a recording fake of the
//      native surface (test/unit/vmm-*.test.ts).
// Exits non-zero, saying which step failed, if any does.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const TARGET = 'x86_64-unknown-freebsd14';

function fail(message) {
  console.error(`check:freebsd: ${message}`);
  process.exit(1);
}

function clang() {
  for (const c of [process.env.CXX_CLANG, 'clang++', 'clang++-19', 'clang++-18', 'clang++-17', 'clang++-16', 'clang++-15', 'clang++-14']) {
    if (c && spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0) return c;
  }
  return fail('clang++ not found (apt-get install clang; .ci/run installs it)');
}

/** The sources the FreeBSD build compiles: binding.gyp's product target plus its OS=='freebsd' sources. */
function freebsdSources() {
  const gyp = JSON.parse(readFileSync(join(root, 'binding.gyp'), 'utf8'));
  const target = gyp.targets.find((t) => t.target_name === 'ukvm_native');
  const extra = gyp.variables.ukvm_freebsd_sources;
  if (!target || !Array.isArray(extra)) fail('binding.gyp has no ukvm_native target or ukvm_freebsd_sources');
  return [...target.sources, ...extra];
}

/** Node's headers (node_api.h), where node-gyp would take them from. */
function nodeIncludeDir() {
  const candidates = [
    process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
    join(dirname(process.execPath), '..', 'include', 'node'),
    '/usr/include/node',
    join(homedir(), '.cache', 'node-gyp', process.versions.node, 'include', 'node'),
  ].filter(Boolean);
  const dir = candidates.find((d) => existsSync(join(d, 'node_api.h')));
  return dir ?? fail(`node_api.h not found in ${candidates.join(', ')}`);
}

/** The host's C++ standard library and multiarch include directories, as clang searches them for the host. */
function hostCxxIncludes(cxx) {
  const r = spawnSync(cxx, ['-E', '-x', 'c++', '-', '-v'], { input: '', encoding: 'utf8' });
  const lines = r.stderr.split('\n');
  const start = lines.findIndex((l) => l.startsWith('#include <...> search starts here'));
  const end = lines.findIndex((l) => l.startsWith('End of search list'));
  const dirs = lines.slice(start + 1, end).map((l) => l.trim());
  // The C++ library and the multiarch C headers; not clang's own resource
  // directory (the FreeBSD target brings it) nor plain /usr/include (added last).
  return dirs.filter((d) => d.includes('c++') || d.endsWith('-linux-gnu'));
}

function step1(cxx) {
  const nodeApi = join(root, 'node_modules', 'node-addon-api');
  if (!existsSync(join(nodeApi, 'napi.h'))) fail('node_modules/node-addon-api is missing (npm ci)');
  const flags = [
    `--target=${TARGET}`, '-fsyntax-only', '-std=c++17', '-Wall', '-Wextra', '-Werror',
    '-DUKVM_FREEBSD_DECLS', '-D_GNU_SOURCE', '-DNAPI_VERSION=8', '-DNAPI_DISABLE_CPP_EXCEPTIONS',
    '-nostdinc++', ...hostCxxIncludes(cxx).flatMap((d) => ['-isystem', d]), '-isystem', '/usr/include',
    // Node's own headers as system headers: V8's (guest_mapping.cc needs
    // them) do not build warning-free under -Wextra, and are not ours to fix.
    '-I', nodeApi, '-isystem', nodeIncludeDir(),
  ];
  for (const src of freebsdSources()) {
    const r = spawnSync(cxx, [...flags, join(root, src)], { encoding: 'utf8' });
    if (r.status !== 0) {
      process.stderr.write(r.stderr);
      fail(`${src} does not compile for ${TARGET}`);
    }
    console.log(`ok   ${src} compiles for ${TARGET} (-fsyntax-only -Wall -Wextra -Werror)`);
  }
}

async function step2(cxx) {
  const dir = mkdtempSync(join(tmpdir(), 'ukvm-fbsd-'));
  try {
    const exe = join(dir, 'abi_dump');
    execFileSync(cxx, ['-std=c++17', '-Wall', '-Werror', '-DUKVM_FREEBSD_DECLS', '-D_GNU_SOURCE', '-o', exe, join(root, 'native/freebsd/abi_dump.cc')], { stdio: 'inherit' });
    const c = JSON.parse(execFileSync(exe, { encoding: 'utf8' }));
    const { VMM_EXIT, VMM_REG, VMM_EXITCODE, VMM_IOCTLS } = await import(join(root, 'dist/native/binding/vmm.js'));
    const problems = [];
    const same = (what, ts, cv) => {
      for (const [k, v] of Object.entries(ts)) if (cv[k] !== v) problems.push(`${what}.${k}: TypeScript ${v}, C ${cv[k]}`);
    };
    same('VMM_EXIT', VMM_EXIT, c.exit);
    same('VMM_REG', VMM_REG, c.reg);
    same('VMM_EXITCODE', VMM_EXITCODE, c.exitcode);
    same('VMM_IOCTLS', VMM_IOCTLS, c.ioctls);
    if (problems.length) fail(`TypeScript and native/freebsd/fbsd_sys.h disagree: ${problems.join('; ')}`);
    console.log(`ok   vm_exit offsets, register numbers, exit codes and ioctl numbers agree (C ↔ TypeScript)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function step3() {
  const r = spawnSync(process.execPath, [join(root, 'node_modules/vitest/vitest.mjs'), 'run', 'test/unit/vmm-'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) fail('the vmm unit tests failed');
}

const cxx = clang();
if (!existsSync(join(root, 'dist/native/binding/vmm.js'))) fail('dist/ is missing: run npm run build:ts first');
step1(cxx);
await step2(cxx);
step3();
console.log('check:freebsd: all checks passed (nothing here ran on FreeBSD; see README "FreeBSD")');
