// `npm run build:exe`: the self-contained executable dist/exe/ukvm-ts, a
// Node 20 single-executable application (SEA): a copy of this machine's node
// with, injected by postject, the CLI bundled into one CommonJS script
// (monitor/exe/entry.ts; an SEA main cannot be an ES module in Node 20),
// build/Release/ukvm_native.node as an SEA asset, and as assets too the
// scripts of worker threads the CLI starts (the gdb stub's socket thread),
// each bundled after monitor/exe/worker-setup.ts. Beside it the links
// solo5-hvt and solo5-hvt-debug. Needs `npm run build` (addon and dist/)
// first; `npm run build:exe` runs build:ts itself. With --if-stale it does
// nothing when the executable is newer than everything that goes into it.
//
// The node copy is stripped of its symbol tables when `strip` is there
// (−13 MB; the addon needs only the dynamic symbols, which stay).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { build } from 'esbuild';
import { inject } from 'postject';

const ROOT = join(import.meta.dirname, '..');
const OUT = join(ROOT, 'dist', 'exe');
/** The bundled script, the SEA configuration and blob: kept apart so dist/exe holds only the program. */
const WORK = join(ROOT, 'dist', 'sea');
const ENTRY = join(ROOT, 'dist', 'monitor', 'exe', 'entry.js');
const ADDON = join(ROOT, 'build', 'Release', 'ukvm_native.node');
/** The asset key monitor/exe/setup.ts reads. */
const ADDON_ASSET = 'ukvm_native.node';
/** Node's SEA fuse: postject flips it so the binary looks for its blob. */
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
export const LINKS = ['solo5-hvt', 'solo5-hvt-debug', 'solo5-elftool'];
/** Worker scripts the CLI starts, by path under dist/ (monitor/workers.ts); asset key `worker:PATH`. */
const WORKERS = ['modules/gdb/socket-worker.js', 'modules/net/ring-worker.js'];

function fail(message) {
  process.stderr.write(`build-exe: ${message}\n`);
  process.exit(1);
}

for (const [file, hint] of [[ENTRY, 'npm run build:ts'], [ADDON, 'npm run build']]) {
  if (!existsSync(file)) fail(`${relative(ROOT, file)} is missing: run ${hint} first`);
}
const INPUTS = [ENTRY, join(ROOT, 'dist', 'ukvm-ts.mjs'), ADDON, join(ROOT, 'package.json'), import.meta.filename,
  ...WORKERS.map((w) => join(ROOT, 'dist', w))];
const exe = join(OUT, 'ukvm-ts');
if (process.argv.includes('--if-stale') && existsSync(exe)) {
  const built = statSync(exe).mtimeMs;
  if (INPUTS.every((f) => existsSync(f) && statSync(f).mtimeMs <= built)) process.exit(0);
}
const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;

rmSync(OUT, { recursive: true, force: true });
rmSync(WORK, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
mkdirSync(WORK, { recursive: true });
const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  logLevel: 'warning',
  // monitor/paths.ts: no package.json exists inside the executable.
  define: { UKVM_EMBEDDED_VERSION: JSON.stringify(version) },
  // import.meta is empty in CommonJS; every use of it (finding the package
  // on disk) is behind EMBEDDED_VERSION or the addon provider.
  logOverride: { 'empty-import-meta': 'silent' },
};
const script = join(WORK, 'ukvm-ts.cjs');
await build({ ...common, entryPoints: [ENTRY], outfile: script });
const workerAssets = {};
for (const [i, w] of WORKERS.entries()) {
  const entry = join(WORK, `worker-${i}-entry.mjs`);
  const dist = (p) => JSON.stringify(join(ROOT, 'dist', p));
  writeFileSync(entry, `import ${dist('monitor/exe/worker-setup.js')};\nimport ${dist(w)};\n`);
  const out = join(WORK, `worker-${i}.cjs`);
  await build({ ...common, entryPoints: [entry], outfile: out });
  workerAssets[`worker:${w}`] = out;
}

const config = join(WORK, 'sea-config.json');
const blob = join(WORK, 'sea-prep.blob');
writeFileSync(config, JSON.stringify({
  main: script,
  output: blob,
  disableExperimentalSEAWarning: true,
  useCodeCache: true,
  assets: { [ADDON_ASSET]: ADDON, ...workerAssets },
}, null, 2));
execFileSync(process.execPath, ['--experimental-sea-config', config], { stdio: 'pipe' });

const tmp = `${exe}.tmp`;
copyFileSync(process.execPath, tmp);
chmodSync(tmp, 0o755);
if (spawnSync('strip', ['--version'], { stdio: 'ignore' }).status === 0) execFileSync('strip', [tmp]);
// postject's ELF writer warns about the many notes of node's build; the result is checked below.
const quiet = console.warn;
console.warn = () => {};
try {
  await inject(tmp, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: FUSE });
} finally {
  console.warn = quiet;
}
renameSync(tmp, exe);
for (const link of LINKS) symlinkSync('ukvm-ts', join(OUT, link));

const check = spawnSync(exe, ['--version'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
if (check.status !== 0 || !check.stderr.includes(`version ${version}`)) {
  fail(`the built executable does not answer --version (status ${check.status}): ${check.stderr.trim()}`);
}
process.stdout.write(`built ${relative(ROOT, exe)} (${(statSync(exe).size / 2 ** 20).toFixed(1)} MiB, node ${process.version}) and links ${LINKS.join(', ')}\n`);
