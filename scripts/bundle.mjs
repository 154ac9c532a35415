// Part of the build: bundles the CLI into dist/ukvm-ts.mjs, and the code of
// generated monitors into dist/bundles/ — monitor.mjs (the CLI's main) and
// one file per module of the registry (its descriptor as the default
// export), sharing chunks, so a monitor loads exactly the modules its
// manifest needs. The module list comes from the registry, nothing else.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { build } from 'esbuild';

const ROOT = join(import.meta.dirname, '..');
const DIST = join(ROOT, 'dist');
const ENTRIES = join(DIST, 'bundle-entries');
const common = { bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' };

await build({ ...common, entryPoints: [join(DIST, 'monitor', 'cli', 'entry.js')], outfile: join(DIST, 'ukvm-ts.mjs') });

const { REGISTRY } = await import(join(DIST, 'monitor', 'registry.js'));
rmSync(ENTRIES, { recursive: true, force: true });
rmSync(join(DIST, 'bundles'), { recursive: true, force: true });
mkdirSync(ENTRIES, { recursive: true });
const spec = (file) => `./${relative(ENTRIES, file)}`;
const entry = (name, text) => {
  const file = join(ENTRIES, `${name}.js`);
  writeFileSync(file, `${text}\n`);
  return file;
};
const entries = [entry('monitor', `export { main } from '${spec(join(DIST, 'monitor', 'cli', 'main.js'))}';`)];
// The library's VM worker (monitor/library/worker.ts), in the same chunk
// graph: it loads a module's bundle only when a VM needs it, and the module
// then shares the worker's copy of the core (one TenderError class, etc.).
entries.push(entry('library-worker', `import '${spec(join(DIST, 'monitor', 'library', 'worker.js'))}';`));
for (const d of REGISTRY) {
  // Each module folder's index.js exports its descriptor as the default.
  entries.push(entry(d.name, `export { default } from '${spec(join(DIST, 'modules', d.name, 'index.js'))}';`));
}
await build({
  ...common,
  entryPoints: entries,
  outdir: join(DIST, 'bundles'),
  splitting: true,
  chunkNames: 'chunk-[hash]',
  outExtension: { '.js': '.mjs' },
});
