// npm pack's prepack and postpack: put this machine's build of the main
// addon into prebuilds/<platform>-<arch>/ under the name node-gyp-build
// looks for, so that the package installs without a compiler (the install
// script, node-gyp-build, loads it and only falls back to node-gyp rebuild
// when it cannot). `--clean` removes prebuilds/ again: in a checkout the
// addon comes from build/Release. The bench addon is not shipped.
//
// The name: ukvm_native.napi.<libc>.node — "napi" because the addon uses
// only Node-API (NAPI_VERSION 8 in binding.gyp), so one build serves every
// Node version ≥ 20; the libc tag keeps a glibc build off musl systems.
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
const PREBUILDS = join(ROOT, 'prebuilds');
const ADDON = join(ROOT, 'build', 'Release', 'ukvm_native.node');

function fail(message) {
  process.stderr.write(`prebuilds: ${message}\n`);
  process.exit(1);
}

if (process.argv.includes('--clean')) {
  rmSync(PREBUILDS, { recursive: true, force: true });
  process.exit(0);
}

if (!existsSync(ADDON)) fail(`${relative(ROOT, ADDON)} is missing: run npm run build first`);
const sources = ['binding.gyp', ...readdirSync(join(ROOT, 'native')).filter((f) => /\.(cc|h)$/.test(f)).map((f) => join('native', f))];
const built = statSync(ADDON).mtimeMs;
const newer = sources.filter((f) => existsSync(join(ROOT, f)) && statSync(join(ROOT, f)).mtimeMs > built);
if (newer.length) fail(`${relative(ROOT, ADDON)} is older than ${newer.join(', ')}: run npm run build first`);

const libc = process.platform !== 'linux' ? '' : process.report.getReport().header.glibcVersionRuntime ? '.glibc' : '.musl';
const dir = join(PREBUILDS, `${process.platform}-${process.arch}`);
rmSync(PREBUILDS, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
const out = join(dir, `ukvm_native.napi${libc}.node`);
copyFileSync(ADDON, out);
process.stdout.write(`prebuilds: ${relative(ROOT, out)}\n`);
