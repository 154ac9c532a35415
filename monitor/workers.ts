// Starting a worker thread on one of ukvm-ts's own scripts, named by its
// path under dist/ (e.g. modules/gdb/socket-worker.js). From a package that
// is the file; the self-contained executable has no dist/ on disk and
// carries the script's bundled source instead (monitor/exe/), which it
// registers here, so the thread is started from that source.
import { join } from 'node:path';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { DIST } from './paths.js';

/** The bundled source of a dist/ script, or undefined if none is carried. */
export type WorkerSource = (distPath: string) => string | undefined;

let embedded: WorkerSource | undefined;

/** Makes startWorker take scripts from `source` first (the executable's set-up calls it). */
export function provideWorkerSources(source: WorkerSource): void {
  embedded = source;
}

/** new Worker on dist/DISTPATH, or on its carried source. */
export function startWorker(distPath: string, options: WorkerOptions): Worker {
  const code = embedded?.(distPath);
  return code === undefined ? new Worker(join(DIST, distPath), options) : new Worker(code, { ...options, eval: true });
}
