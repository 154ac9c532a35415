// The self-contained executable without KVM: its names (the links
// solo5-hvt and solo5-hvt-debug speak as themselves), --version and usage
// exactly as bin/ukvm-ts, what it needs from the system (only the C and C++
// runtime libraries), and the hostile-review guarantees: no inspector from
// NODE_OPTIONS or the command line, any other NODE_OPTIONS refused, and no
// `configure` (it needs the package on disk).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureExe, EXE, EXE_DIR, EXE_SOLO5_ELFTOOL, EXE_SOLO5_HVT, EXE_SOLO5_HVT_DEBUG } from '../helpers/exe.js';
import { BIN, guest } from '../helpers/tender.js';

let dir = '';

beforeAll(() => {
  ensureExe();
  dir = mkdtempSync(join(tmpdir(), 'ukvm-exe-'));
}, 300_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs a program with an environment holding only PATH and `extra`. */
function run(bin: string, args: readonly string[], extra: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env['PATH'] ?? '', ...extra } });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

describe('the self-contained executable', () => {
  it('dist/exe holds the program and its three links, nothing else', () => {
    expect(readdirSync(EXE_DIR).sort()).toEqual(['solo5-elftool', 'solo5-hvt', 'solo5-hvt-debug', 'ukvm-ts']);
  });

  it('solo5-elftool: query-abi and query-manifest of a guest print what bin/ukvm-ts elftool prints; bad usage is status 1 as there', () => {
    const kernel = guest('hello');
    for (const args of [['query-abi', kernel], ['query-manifest', kernel], ['no-such-command']]) {
      const want = run(BIN, ['elftool', ...args]);
      const got = run(EXE_SOLO5_ELFTOOL, args);
      expect(got.status, args.join(' ')).toBe(want.status);
      expect(got.stdout, args.join(' ')).toBe(want.stdout);
    }
    expect(run(EXE_SOLO5_ELFTOOL, ['query-abi', kernel]).stdout).toContain('"type": "solo5.abi"');
  });

  it.each([['ukvm-ts', EXE], ['solo5-hvt', EXE_SOLO5_HVT], ['solo5-hvt-debug', EXE_SOLO5_HVT_DEBUG]])('%s --version: the same as bin/ukvm-ts by that name, status 0', (name, bin) => {
    const link = join(dir, name);
    symlinkSync(BIN, link);
    const want = run(link, ['--version']);
    expect(want.status).toBe(0);
    expect(run(bin, ['--version'])).toEqual(want);
    expect(want.stderr).toMatch(new RegExp(`^${name} \\(ukvm-ts\\) tender, version \\S+\\nABI version 2\\n$`));
    rmSync(link);
  });

  it('no kernel: the usage of solo5-hvt, status 1, as bin/ukvm-ts', () => {
    const link = join(dir, 'solo5-hvt');
    symlinkSync(BIN, link);
    const r = run(EXE_SOLO5_HVT, []);
    expect(r).toEqual(run(link, []));
    expect(r.status).toBe(1);
    expect(r.stderr.split('\n')[0]).toBe('solo5-hvt: Missing KERNEL operand');
    rmSync(link);
  });

  it('needs nothing from the system beyond the C and C++ runtime libraries', () => {
    const r = spawnSync('readelf', ['-d', EXE], { encoding: 'utf8' });
    if (r.error || r.status !== 0) return; // binutils missing: nothing to read the ELF with
    const needed = [...r.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
    expect(needed.length).toBeGreaterThan(0);
    for (const lib of needed) expect(lib).toMatch(/^(libc|libm|libdl|libpthread|libstdc\+\+|libgcc_s|ld-linux-x86-64)\.so\.\d+$/);
  });

  it('NODE_OPTIONS with a --require module: refused in one line, status 1, no guest runs', () => {
    const pre = join(dir, 'pre.cjs');
    writeFileSync(pre, '');
    const r = run(EXE_SOLO5_HVT, [guest('hello')], { NODE_OPTIONS: `--require ${pre}` });
    expect(r).toEqual({
      status: 1,
      signal: null,
      stdout: '',
      stderr: 'solo5-hvt: refusing to run with NODE_OPTIONS set: Node has already applied it to this executable; unset it\n',
    });
  });

  it.each(['--inspect=127.0.0.1:0', '--inspect-brk=127.0.0.1:0', '--inspect-port=0'])('NODE_OPTIONS=%s: Node refuses it for an executable (status 9), no debugger listens', (opt) => {
    const r = run(EXE, [guest('hello')], { NODE_OPTIONS: opt });
    expect(r.status).toBe(9);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/is not allowed in NODE_OPTIONS\n$/);
    expect(r.stderr).not.toContain('Debugger listening');
  });

  it('--inspect on the command line is an argument of the tender, not of Node: no debugger listens', () => {
    const r = run(EXE, ['--inspect=127.0.0.1:0', join(dir, 'missing.hvt')]);
    expect(r.status).toBe(1);
    expect(r.stderr).not.toContain('Debugger listening');
    expect(r.stderr.split('\n')[0]).toMatch(/^ukvm-ts: /);
  });

  it('configure: one line saying it needs the npm package, status 1', () => {
    const r = run(EXE, ['configure', guest('hello'), '-o', join(dir, 'm.mjs')]);
    expect(r).toEqual({
      status: 1,
      signal: null,
      stdout: '',
      stderr: 'ukvm-ts: configure: the self-contained executable cannot generate monitors; use the npm package\n',
    });
  });
});
