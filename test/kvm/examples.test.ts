// The README's embedding example must keep working: run it as a user would.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { describeKvm, ROOT } from '../helpers/tender.js';

describeKvm('examples/embed.mjs', () => {
  it('starts hello, streams its console, stops a spinner and reads its stats', () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'examples', 'embed.mjs')], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('[hello] Hello, world\n');
    expect(r.stdout).toContain('[hello] cmdline: from examples/embed.mjs\n');
    expect(r.stdout).toContain('hello exited: status 0 (halt)\n');
    expect(r.stdout).toContain('[spin] spinning\n');
    expect(r.stdout).toMatch(/spin exited: stopped; \d+ I\/O exits, 1 PUTS, vCPU [0-9.]+ ms of \d+ ms\n/);
  });
});
