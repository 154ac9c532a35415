// 50 start/stop cycles of a library VM with a block and a net device (issue
// #10): no Node warning on stderr (a tap closed with fs.closeSync in a worker
// thread made Node warn "File descriptor N closed but not opened in unmanaged
// mode", a close of a descriptor it never opened), and the process's
// descriptor count back where it started. The program runs in a child node
// process inside a network namespace that holds its tap.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDisk } from '../helpers/disk.js';
import { cleanupStaleNetns, Netns, netUnavailableReason } from '../helpers/netns.js';
import { describeKvm, guest, kvmAvailable, ROOT } from '../helpers/tender.js';

const CYCLES = 50;
const netSkip = kvmAvailable ? netUnavailableReason() : null;
if (netSkip) {
  const bar = '!'.repeat(72);
  process.stderr.write(`\n${bar}\n!! library start/stop cycles SKIPPED: ${netSkip}\n!! This is NOT a pass.\n${bar}\n\n`);
}
const describeNet = netSkip ? describe.skip : describeKvm;

/** The child: CYCLES × (start, wait for "idle", stop, await exit); prints fd counts as JSON. */
const program = (disk: string, tap: string) => `
import { readdirSync } from 'node:fs';
const { startUnikernel } = await import(${JSON.stringify(pathToFileURL(join(ROOT, 'dist', 'monitor', 'index.js')).href)});
const fds = () => readdirSync('/proc/self/fd').length;
const options = (console) => ({
  kernel: ${JSON.stringify(guest('devices_idle'))}, memoryMiB: 8, console,
  block: { storage: ${JSON.stringify(disk)} }, net: { service: ${JSON.stringify(tap)} },
});
// One VM first, so that what Node opens once per process (the worker
// machinery, the addon) is already open when we count.
const once = async () => {
  let ready;
  const idle = new Promise((r) => (ready = r));
  const vm = await startUnikernel(options((t) => t.includes('idle') && ready()));
  await idle;
  vm.stop();
  const e = await vm.exited;
  if (e.reason !== 'stopped') throw new Error('unexpected exit ' + JSON.stringify(e));
};
await once();
await new Promise((r) => setTimeout(r, 200)); // the first worker's own descriptors close after its exit
const before = fds();
for (let i = 0; i < ${CYCLES}; i++) await once();
await new Promise((r) => setTimeout(r, 200));
process.stdout.write(JSON.stringify({ before, after: fds() }) + '\\n');
`;

describeNet('library: start/stop cycles with block and net devices', () => {
  let ns: Netns;
  let dir = '';
  beforeAll(() => {
    cleanupStaleNetns();
    ns = Netns.create();
    dir = mkdtempSync(join(tmpdir(), 'ukvm-cycles-'));
  });
  afterAll(async () => {
    await ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(`${CYCLES} cycles: no warning on stderr, no descriptor left behind`, async () => {
    const tap = ns.addTap();
    const disk = makeDisk(join(dir, 'cycles.img'), 64 * 1024);
    const r = await ns.run(process.execPath, ['--input-type=module', '-e', program(disk, tap.name)], 240_000);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const counts = JSON.parse(r.stdout.trim()) as { before: number; after: number };
    // Not more than before (transient descriptors of Node's may have closed meanwhile).
    expect(counts.after).toBeLessThanOrEqual(counts.before);
  }, 300_000);
});
