// A test-only monitor: the CLI's own main() with every module of the
// registry plus one probe module, which does one thing from the guest's
// HALT hook, i.e. inside the sandboxed process after set-up:
//
//   node test/kvm/sandbox-probe.mjs PROBE [ukvm-ts arguments…]
//
// It exists only here: not in the registry, not in dist/ or any bundle, not
// reachable from bin/ukvm-ts or a generated monitor, by any option or
// variable; so nothing in production can make a monitor try a forbidden
// call on purpose. test/kvm/sandbox.test.ts and scripts/syscalls.mjs run it.
//
// Probes (what the HALT hook does; the run then exits with the guest's status):
//   open   fs.openSync of a file: fails (EPERM); prints "probe open: CODE"
//   exec   child_process.execFileSync('/bin/true'): clone without CLONE_THREAD → killed (SIGSYS)
//   pool   starts libuv's thread pool (a crypto job) and waits for it: allowed
//   pool-open  a pool thread opens a file (fs.readFile): fails there; prints what the callback got
//   alloc  churns memory (small and large buffers, many objects, GC): allowed
//   skip   nothing at HALT; the module asks for the sandbox to be skipped (as --dumpcore does)
//   none   nothing
import { execFileSync } from 'node:child_process';
import { pbkdf2 } from 'node:crypto';
import { openSync, readFile, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { main } from '../../dist/monitor/cli/main.js';
import { REGISTRY } from '../../dist/monitor/registry.js';

const say = (text) => writeSync(2, `probe ${text}\n`);
const sleepMs = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

const PROBES = {
  none() {},
  skip() {},
  open() {
    try {
      openSync('/etc/hostname', 'r');
      say('open: opened');
    } catch (e) {
      say(`open: ${e.code}`);
    }
  },
  exec() {
    execFileSync('/bin/true');
    say('exec: ran');
  },
  pool() {
    let done = 0;
    for (let i = 0; i < 4; i++) pbkdf2('secret', 'salt', 1000, 32, 'sha256', () => done++);
    sleepMs(300); // the pool's threads start, run the jobs and wait for more
    say('pool: started');
  },
  'pool-open'() {
    readFile('/etc/hostname', () => {});
    sleepMs(300);
    say('pool-open: survived');
  },
  alloc() {
    const keep = [];
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 2000; i++) keep.push(Buffer.allocUnsafeSlow(1 + ((i * 7919) % 3000)));
      for (let i = 0; i < 20; i++) keep.push(Buffer.alloc(256 * 1024 + i));
      const objects = Array.from({ length: 50000 }, (_, i) => ({ i, s: `x${i}` }));
      keep.push(objects.length);
      keep.length = round % 2 ? 0 : keep.length;
    }
    say(`alloc: done (${keep.length})`);
  },
};

const [probe, ...argv] = process.argv.slice(2);
const action = PROBES[probe];
if (!action) {
  process.stderr.write(`sandbox-probe: unknown probe '${probe}' (${Object.keys(PROBES).join(', ')})\n`);
  process.exit(2);
}

const probeModule = {
  name: 'probe',
  serves: [],
  cli: { usage: [] },
  library: [],
  create: () => ({
    name: 'probe',
    setup(ctx) {
      ctx.onHalt(() => action());
    },
    ...(probe === 'skip' ? { sandbox: () => 'skip' } : {}),
  }),
};

process.exit(main(argv, basename(process.argv[1] ?? 'probe'), [...REGISTRY, probeModule]));
