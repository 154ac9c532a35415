// The dumpcore module on real KVM (docs/abi.md §15), read back with the real
// gdb: a guest that aborts from nested application functions
// (test/guests/dumpcore_abort.c) and one whose CPU exception its own trap
// handler turns into HALT 255 with the trap frame as cookie
// (dumpcore_trap.c), both built with debug information. Also: the messages
// and exit statuses, the file's mode, length and sparseness, a second abort
// in the same DIR, the library option, and DIR problems (missing, not a
// directory, not writable), which the CLI reports before opening /dev/kvm.
// Skipped loudly without /dev/kvm; the gdb checks also without gdb.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HostError, OptionError, startUnikernel, type UnikernelOptions } from 'ukvm-ts';
import { BIN, describeKvm, guest, kvmAvailable, type RunResult, runTender } from '../helpers/tender.js';

const P = 'ukvm-ts: ';
const ABORT = guest('dumpcore_abort');
const TRAP = guest('dumpcore_trap');
const MEM_MIB = 32;
const MEM = MEM_MIB << 20;
const PAGES = MEM / 4096;
const HEAD = 532; // file offset of guest address 0 (§15.4)
const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

/**
 * With --dumpcore the monitor must not be sandboxed (the core file is created
 * at HALT), and a build that has a sandbox then says so before the guest
 * runs with the two lines of the reference's debug tender (docs/abi.md §17).
 */
const UNCONFINED = [
  'WARNING: Tender is configured with HVT_DROP_PRIVILEGES=0. Not dropping any privileges.',
  'WARNING: This is not recommended for production use.',
];
const UNCONFINED_TEXT = UNCONFINED.map((l) => `${P}${l}\n`).join('');

/** stderr without the leading unconfined-run warnings (checked to be both or none). */
function afterUnconfined(stderr: string): string {
  return stderr.startsWith(UNCONFINED_TEXT) ? stderr.slice(UNCONFINED_TEXT.length) : stderr;
}

/** First line of `gdb --version`, or null if there is no gdb to run. */
function gdbVersion(): string | null {
  const r = spawnSync('gdb', ['--version'], { encoding: 'utf8', timeout: 30_000 });
  return r.status === 0 ? (r.stdout.split('\n')[0] ?? 'gdb') : null;
}
const GDB = kvmAvailable ? gdbVersion() : null;
if (kvmAvailable && GDB === null) {
  const bar = '!'.repeat(72);
  process.stderr.write(`\n${bar}\n!! dumpcore gdb tests SKIPPED: gdb is not installed (gdb --version failed)\n!! This is NOT a pass of the dumpcore suite.\n${bar}\n\n`);
}
const describeGdb = GDB === null ? describe.skip : describeKvm;

const TMP = mkdtempSync(join(tmpdir(), 'ukvm-dumpcore-'));
chmodSync(TMP, 0o755); // the unprivileged user of the not-writable test reads its kernel here
afterAll(() => rmSync(TMP, { recursive: true, force: true }));
let dirs = 0;
function freshDir(): string {
  const d = join(TMP, `cores${dirs++}`);
  mkdirSync(d);
  return d;
}

interface Dump {
  r: RunResult;
  path: string;
  pid: number;
  pages: number;
  /** name=value pairs the guest printed. */
  said: Map<string, string>;
}

/** Runs KERNEL with --dumpcore=DIR; it must abort (255) and leave a core, reported as §15 says. */
function dumped(kernel: string, dir: string, args: string[] = [], mem = MEM_MIB): Dump {
  const r = runTender([`--mem=${mem}`, `--dumpcore=${dir}`, kernel, ...args]);
  expect(r.signal).toBeNull();
  expect(r.status, r.stderr).toBe(255);
  const m = new RegExp(`^${P}dumpcore: dumping guest core to: (${dir}/core\\.solo5-hvt\\.([0-9]+))\\n${P}dumpcore: dumped ([0-9]+) pages of total ${(mem << 20) / 4096} pages\\n$`).exec(afterUnconfined(r.stderr));
  expect(m, r.stderr).not.toBeNull();
  const said = new Map<string, string>();
  for (const [, k, v] of r.stdout.matchAll(/([a-z_]+)=(\S+)/g)) said.set(k ?? '', v ?? '');
  return { r, path: m?.[1] ?? '', pid: Number(m?.[2]), pages: Number(m?.[3]), said };
}

/** gdb -batch on KERNEL and CORE with these commands; its stdout. */
function gdb(kernel: string, core: string, ...commands: string[]): string {
  const r = spawnSync('gdb', ['-batch', '-nx', ...commands.flatMap((c) => ['-ex', c]), kernel, core], { encoding: 'utf8', timeout: 60_000 });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout;
}

/** The function names of the last backtrace in gdb's output, innermost first (gdb also prints frame #0 when it loads a core). */
function frames(out: string): string[] {
  let names: string[] = [];
  for (const [, n, name] of out.matchAll(/^#([0-9]+)\s+(?:0x[0-9a-f]+ in )?([A-Za-z_][A-Za-z0-9_]*|\?\?) \(/gm)) {
    if (n === '0') names = [];
    names.push(name ?? '');
  }
  return names;
}

describeKvm('dumpcore: an aborting guest (HALT 255, no cookie)', () => {
  const dir = freshDir();
  let dump: Dump;
  let core: Buffer;

  it('exits 255 and says where the core went and how many of the 8192 pages it holds', () => {
    dump = dumped(ABORT, dir);
    expect(dump.pid).toBeGreaterThan(0);
    expect(dump.r.stdout).toContain('inner_depth=3 inner_key=0x2469579a\n');
    core = readFileSync(dump.path);
  });

  it('the file: mode 0600, ET_CORE for EM_X86_64, 532 + mem_size bytes long', () => {
    expect(statSync(dump.path).mode & 0o7777).toBe(0o600);
    const v = new DataView(core.buffer, core.byteOffset, core.byteLength);
    expect([...core.subarray(0, 8)]).toEqual([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 255]);
    expect([v.getUint16(16, true), v.getUint16(18, true), v.getUint16(56, true)]).toEqual([4, 62, 2]);
    expect(v.getBigUint64(120 + 32, true)).toBe(BigInt(MEM)); // PT_LOAD p_filesz = mem_size
    expect(core.length).toBe(HEAD + MEM);
  });

  it('the image is guest memory: the marker, the last byte of guest memory, and the page count', () => {
    const at = Number(dump.said.get('marker_at'));
    expect(core.readBigUInt64LE(HEAD + at).toString(16)).toBe('c0de5eedf00d');
    expect(core[HEAD + MEM - 1]).toBe(0xa5);
    let nonZero = 0;
    for (let p = 0; p < MEM; p += 4096) if (core.subarray(HEAD + p, HEAD + p + 4096).some((b) => b !== 0)) nonZero++;
    expect(nonZero).toBe(dump.pages);
    expect(dump.pages).toBeGreaterThan(3);
    expect(dump.pages).toBeLessThan(PAGES / 100);
  });

  it('a second abort into the same DIR makes a second file and leaves the first alone', () => {
    const before = readFileSync(dump.path);
    const again = dumped(ABORT, dir);
    expect(again.path).not.toBe(dump.path);
    expect(Buffer.compare(readFileSync(dump.path), before)).toBe(0);
    expect(readFileSync(again.path).length).toBe(HEAD + MEM);
  });

  it('a guest that exits normally leaves no core and the tender says nothing', () => {
    const d = freshDir();
    const r = runTender([`--mem=${MEM_MIB}`, `--dumpcore=${d}`, ABORT, 'exit']);
    expect(r.status).toBe(0);
    expect(afterUnconfined(r.stderr)).toBe('');
    expect(spawnSync('ls', ['-A', d], { encoding: 'utf8' }).stdout).toBe('');
  });
});

describeGdb(`dumpcore read by gdb (${GDB ?? 'no gdb'})`, () => {
  it('abort: bt shows the application frames below the abort, and their locals and globals read back', () => {
    const dump = dumped(ABORT, freshDir());
    const bt = gdb(ABORT, dump.path, 'bt');
    const names = frames(bt);
    const chain = ['guest_abort', 'app_inner', 'app_middle', 'app_outer', 'guest_main'];
    const at = names.indexOf('guest_abort');
    expect(at, bt).toBeGreaterThanOrEqual(0);
    expect(names.slice(at, at + chain.length), bt).toEqual(chain);
    expect(bt).toMatch(/ in app_inner \(depth=3, key=610883482\) at .*dumpcore_abort\.c:/);
    const inner = names.indexOf('app_inner');
    const out = gdb(ABORT, dump.path, 'print/x dumpcore_marker', `frame ${inner}`, 'print inner_depth', 'print/x inner_key', `x/1bx ${MEM - 1}`);
    expect(out).toMatch(/^\$1 = 0xc0de5eedf00d$/m);
    expect(out).toMatch(/^\$2 = 3$/m);
    expect(out).toMatch(/^\$3 = 0x2469579a$/m);
    expect(out).toMatch(new RegExp(`^0x${(MEM - 1).toString(16)}:\\s+0xa5$`, 'm'));
  });

  it.each(['ud2', 'pf'])('CPU exception (%s) caught by the guest: bt starts at the faulting function, rip is the faulting instruction', (mode) => {
    const dump = dumped(TRAP, freshDir(), [mode]);
    const expected = /expect: rip=(0x[0-9a-f]+)/.exec(dump.r.stdout)?.[1];
    expect(expected, dump.r.stdout).toBeDefined();
    expect(dump.r.stdout).toContain(`rip=${expected} rsp=`); // the handler's line: the trap frame says the same
    const bt = gdb(TRAP, dump.path, 'bt');
    expect(frames(bt), bt).toEqual(['fault_here', 'app_level2', 'app_level1', 'guest_main', 'hvt_runtime_start', '??']);
    expect(bt).toMatch(new RegExp(`^#0  fault_here \\(pf=${mode === 'pf' ? 1 : 0}, depth=3\\) at .*dumpcore_trap\\.c:`, 'm'));
    const regs = gdb(TRAP, dump.path, 'info registers rip');
    expect(regs).toMatch(new RegExp(`^rip\\s+${expected}\\s+${expected} <fault_here\\+[0-9]+>$`, 'm'));
  });
});

describeKvm('dumpcore: a sparse file', () => {
  it('64 MiB of guest memory: the file is 532 + 64 MiB long, but only a few pages are allocated on disk', () => {
    const dump = dumped(TRAP, freshDir(), [], 64);
    const st = statSync(dump.path);
    expect(st.size).toBe(HEAD + (64 << 20));
    // Each page written costs at most two file-system blocks (532 is not block-aligned) plus the head.
    expect(st.blocks * 512).toBeLessThanOrEqual((dump.pages + 1) * 2 * 4096 + 64 * 1024);
    expect(st.blocks * 512).toBeLessThan((64 << 20) / 64);
  });
});

describeKvm('dumpcore from the library (startUnikernel option dumpcore)', () => {
  const run = (extra: Record<string, unknown>) => {
    const warnings: string[] = [];
    const vm = startUnikernel({ kernel: ABORT, memoryMiB: MEM_MIB, console: () => {}, warn: (l) => warnings.push(l), ...extra } as UnikernelOptions);
    return { vm, warnings };
  };

  it('an abort writes DIR/core.solo5-hvt.PID of this process and warns as the CLI does', async () => {
    const dir = freshDir();
    const { vm, warnings } = run({ dumpcore: dir });
    const exited = await (await vm).exited;
    expect(exited.status).toBe(255);
    const path = `${dir}/core.solo5-hvt.${process.pid}`;
    const mine = warnings.slice(warnings[0] === UNCONFINED[0] && warnings[1] === UNCONFINED[1] ? 2 : 0);
    expect(mine.length, warnings.join('\n')).toBe(2);
    expect(mine[0]).toBe(`dumpcore: dumping guest core to: ${path}`);
    expect(mine[1]).toMatch(new RegExp(`^dumpcore: dumped [0-9]+ pages of total ${PAGES} pages$`));
    expect(statSync(path).size).toBe(HEAD + MEM);
  });

  it('rejects a dumpcore that is not a non-empty string (EOPTION), and a missing DIR (EHOST)', async () => {
    await expect(run({ dumpcore: '' }).vm).rejects.toThrow(OptionError);
    await expect(run({ dumpcore: 42 }).vm).rejects.toThrow('dumpcore must be a directory path (a non-empty string)');
    const missing = join(TMP, 'missing-lib');
    const e = await run({ dumpcore: missing }).vm.then(() => null, (err: unknown) => err);
    expect(e).toBeInstanceOf(HostError);
    expect((e as HostError).code).toBe('EHOST');
    expect((e as Error).message).toMatch(new RegExp(`^dumpcore: cannot open dir: ${missing}: No such file or directory$`));
  });
});

// These fail in module prepare(), before /dev/kvm is opened: they need no KVM.
describe('dumpcore: DIR problems are one line and exit status 1, before the guest runs', () => {
  // Any kernel: the error comes first. A copy any user can read.
  const kernel = join(TMP, 'hello.hvt');
  copyFileSync(guest('hello'), kernel);
  chmodSync(kernel, 0o644);

  function expectOneLine(r: RunResult, line: string): void {
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`${P}${line}\n`);
    expect(r.status).toBe(1);
  }

  it('DIR missing', () => {
    const missing = join(TMP, 'no-such-dir');
    expectOneLine(runTender([`--dumpcore=${missing}`, kernel]), `dumpcore: cannot open dir: ${missing}: No such file or directory`);
  });

  it('DIR empty (--dumpcore=)', () => {
    expectOneLine(runTender(['--dumpcore=', kernel]), 'dumpcore: cannot open dir: : No such file or directory');
  });

  it('DIR is a file', () => {
    const file = join(TMP, 'a-file');
    writeFileSync(file, '');
    expectOneLine(runTender([`--dumpcore=${file}`, kernel]), `dumpcore: cannot open dir: ${file}: Not a directory`);
  });

  it.skipIf(!isRoot)('DIR not writable by the user running the tender (as nobody, a 0555 directory)', () => {
    const d = freshDir();
    chmodSync(d, 0o555);
    const r = spawnSync(BIN, [`--dumpcore=${d}`, kernel], { uid: NOBODY, gid: NOBODY, encoding: 'utf8', timeout: 30_000 });
    expectOneLine({ status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }, `dumpcore: dir not writable: ${d}: Permission denied`);
  });

  const canUnshare = isRoot && spawnSync('unshare', ['--mount', 'true']).status === 0;
  it.skipIf(!canUnshare)('DIR on a read-only mount (a read-only bind in a private mount namespace)', () => {
    const d = freshDir();
    const script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && exec "$2" "--dumpcore=$1" "$3"';
    const r = spawnSync('unshare', ['--mount', 'sh', '-c', script, 'sh', d, BIN, kernel], { encoding: 'utf8', timeout: 30_000 });
    expectOneLine({ status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }, `dumpcore: dir not writable: ${d}: Read-only file system`);
  });

  it('--dumpcore without "=DIR" is an invalid option', () => {
    const r = runTender(['--dumpcore', kernel]);
    expect(r.status).toBe(1);
    expect(r.stderr.split('\n')[0]).toBe(`${P}Invalid option: \`--dumpcore'`);
  });
});
