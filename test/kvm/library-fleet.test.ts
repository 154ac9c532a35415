// examples/fleet.mjs, run as a user would with a small count: its unikernels
// start from one pool, its table shows them running, and Ctrl-C (SIGINT)
// stops every one of them and ends the program cleanly.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { describeKvm, ROOT } from '../helpers/tender.js';

const children: ReturnType<typeof spawn>[] = [];
afterEach(() => {
  // Also when a test failed: no fleet outlives it.
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function fleet(args: string[]) {
  const child = spawn(process.execPath, [join(ROOT, 'examples', 'fleet.mjs'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const ended = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const waitFor = async (re: RegExp, ms: number) => {
    const until = Date.now() + ms;
    while (!re.test(out)) {
      if (Date.now() > until) throw new Error(`fleet never printed ${re}; stdout:\n${out}\nstderr:\n${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  return { child, ended, waitFor, out: () => out, err: () => err };
}

describeKvm('examples/fleet.mjs', () => {
  it('runs 8 unikernels with a live table; SIGINT stops all 8 and the program exits 0', async () => {
    const f = fleet(['--count', '8', '--interval', '200']);
    await f.waitFor(/fleet: 8 running, 0 ended, 0 to start/, 60_000);
    expect(f.out()).toMatch(/\n {4}7 {2}running /);
    f.child.kill('SIGINT');
    expect(await f.ended).toBe(0);
    expect(f.err()).toBe('');
    expect(f.out()).toContain('fleet: 0 running, 8 ended, 0 to start');
    expect(f.out().trimEnd().split('\n').at(-1)).toBe('fleet: 8 unikernels: 8 stopped');
  }, 90_000);

  it('refuses a bad count in one line, exit 1', async () => {
    const f = fleet(['--count', 'many']);
    expect(await f.ended).toBe(1);
    expect(f.err()).toBe('fleet: --count must be a positive integer, --interval at least 10 (ms), --per-worker from 1 to 64\n');
  }, 30_000);
});
