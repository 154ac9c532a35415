// The self-contained executable (npm run build:exe) run the way urunc runs
// solo5-hvt: exec'd as /usr/local/bin/solo5-hvt inside a root that holds
// only that file, /lib, /lib64, /usr/lib, /proc, a tmpfs /dev with null,
// urandom, kvm and net/tun, and a noexec /tmp (test/helpers/urunc-root.ts),
// with the argv urunc builds: `--mem=M [--net:service=TAP
// --net-mac:service=MAC] [--block:storage=PATH|--block:rootfs=PATH] --
// KERNEL CMDLINE`, the command line one argument. Also the sandbox and the
// signals of the executable outside the root. Needs root (mount namespaces,
// mknod); skipped loudly without it.
import { spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UNCONFINED_WARNINGS } from '../../monitor/sandbox/step.js';
import { patternMismatch } from '../helpers/disk.js';
import { ensureExe, EXE, EXE_SOLO5_HVT, EXE_SOLO5_HVT_DEBUG } from '../helpers/exe.js';
import { cleanupStaleNetns, Netns, netUnavailableReason } from '../helpers/netns.js';
import { describeKvm, guest, GUEST_BUILD, kvmAvailable, ROOT } from '../helpers/tender.js';
import { UruncRoot } from '../helpers/urunc-root.js';

function rootSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'not root (mount namespaces and mknod need it)';
  for (const tool of ['unshare', 'mount', 'mknod', 'flock']) {
    if (spawnSync(tool, ['--version'], { stdio: 'ignore' }).status !== 0) return `\`${tool}\` is not available`;
  }
  if (!existsSync('/usr/sbin/chroot')) return '/usr/sbin/chroot is missing';
  const probe = spawnSync('unshare', ['--mount', 'true']);
  if (probe.status !== 0) return 'cannot create a mount namespace';
  return null;
}

const rootSkip = kvmAvailable ? rootSkipReason() : null;
if (rootSkip) {
  const bar = '!'.repeat(72);
  process.stderr.write(`\n${bar}\n!! urunc-shaped executable tests SKIPPED: ${rootSkip}\n!! This is NOT a pass of them.\n${bar}\n\n`);
}
const describeRoot = rootSkip ? describe.skip : describeKvm;
const netSkip = kvmAvailable && !rootSkip ? netUnavailableReason() : null;
if (netSkip) process.stderr.write(`!! urunc-shaped net test SKIPPED: ${netSkip}\n`);

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runIn(root: UruncRoot, argv: readonly string[]): Run {
  const [cmd, args] = root.command(argv);
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** block_rootfs.hvt includes block_rw.c, which build.mjs does not watch for it. */
function freshBlockRootfs(): void {
  const hvt = guest('block_rootfs');
  if (existsSync(hvt) && statSync(hvt).mtimeMs < statSync(join(ROOT, 'test', 'guests', 'block_rw.c')).mtimeMs) rmSync(hvt);
  spawnSync(process.execPath, [join(ROOT, 'test', 'guests', 'build.mjs'), 'block_rootfs'], { stdio: 'inherit' });
}

const roots: UruncRoot[] = [];
function newRoot(opts: Parameters<typeof UruncRoot.create>[1] = {}): UruncRoot {
  const r = UruncRoot.create(EXE, opts);
  roots.push(r);
  return r;
}

beforeAll(() => {
  if (!rootSkip && kvmAvailable) {
    ensureExe();
    freshBlockRootfs();
  }
}, 300_000);

afterAll(() => {
  for (const r of roots) r.destroy();
});

describeRoot('the executable in a urunc-shaped root', () => {
  it('hello: the command line as one argument, status 0, nothing on stderr', () => {
    const root = newRoot();
    const kernel = root.add(guest('hello'), '/unikernel/hello.hvt');
    const r = runIn(root, ['--mem=32', '--', kernel, 'Hello from urunc --and=options']);
    expect(r).toEqual({ status: 0, signal: null, stdout: 'Hello, world\ncmdline: Hello from urunc --and=options\n', stderr: '' });
  });

  it("urunc's own argv (its June 2025 source splits the command on spaces, no --): the same command line", () => {
    const root = newRoot();
    const kernel = root.add(guest('hello'), '/unikernel/hello.hvt');
    const r = runIn(root, ['--mem=32', kernel, 'Hello', 'from', 'urunc']);
    expect(r).toEqual({ status: 0, signal: null, stdout: 'Hello, world\ncmdline: Hello from urunc\n', stderr: '' });
  });

  it('a read-only root: the addon is loaded through the tmpfs /dev (the noexec /tmp cannot map it)', () => {
    const root = newRoot({ readOnlyRoot: true });
    const kernel = root.add(guest('hello'), '/unikernel/hello.hvt');
    const r = runIn(root, ['--mem=32', '--', kernel, 'read-only']);
    expect(r).toEqual({ status: 0, signal: null, stdout: 'Hello, world\ncmdline: read-only\n', stderr: '' });
  });

  it('no /proc: the addon goes through a named file (unlinked right after loading), hello runs', () => {
    const root = newRoot({ noProc: true });
    const kernel = root.add(guest('hello'), '/unikernel/hello.hvt');
    const r = runIn(root, ['--mem=32', '--', kernel, 'no proc']);
    expect(r).toEqual({ status: 0, signal: null, stdout: 'Hello, world\ncmdline: no proc\n', stderr: '' });
  });

  it('nowhere writable and executable: one line naming every directory tried, status 1', () => {
    const root = newRoot({ readOnlyRoot: true, readOnlyDev: true });
    const kernel = root.add(guest('hello'), '/unikernel/hello.hvt');
    const r = runIn(root, ['--mem=32', '--', kernel]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^solo5-hvt: cannot load the embedded native addon: it needs a writable directory on a filesystem that allows executable mappings \(tried /);
    expect(lines[0]).toContain('/dev/shm: ENOENT');
    expect(lines[0]).toMatch(/\/tmp: [^;]*failed to map segment/);
    expect(lines[0]).toContain('/dev: EROFS');
    expect(lines[0]).toContain('/usr/local/bin: EROFS');
  });

  it.each([['storage', 'block_rw'], ['rootfs', 'block_rootfs']] as const)('--block:%s=PATH: %s writes, reads back and checks its disk', (name, kernelName) => {
    const root = newRoot();
    const kernel = root.add(guest(kernelName), `/unikernel/${kernelName}.hvt`);
    writeFileSync(root.hostPath('/unikernel/disk.img'), Buffer.alloc(128 * 512));
    const r = runIn(root, ['--mem=32', `--block:${name}=/unikernel/disk.img`, '--', kernel, 'rw 21']);
    expect(r).toMatchObject({ status: 0, signal: null, stderr: '' });
    expect(r.stdout.split('\n').filter((l) => l !== '')).toEqual([
      'block_rw: handle=1 capacity=65536 block_size=512 attached=1',
      'block_rw: wrote and verified 128 blocks',
      'block_rw: ok',
    ]);
    expect(patternMismatch(readFileSync(root.hostPath('/unikernel/disk.img')), 21, 512)).toBeNull();
  });

  (netSkip ? it.skip : it)('--net:service=TAP --net-mac:service=MAC in a network namespace: net_echo answers ping, exits 0', async () => {
    cleanupStaleNetns();
    const ns = Netns.create();
    try {
      const tap = ns.addTap();
      const root = newRoot();
      const kernel = root.add(guest('net_echo'), '/unikernel/net_echo.hvt');
      const mac = '02:75:72:75:6e:63';
      const [cmd, args] = root.command(['--mem=32', `--net:service=${tap.name}`, `--net-mac:service=${mac}`, '--', kernel, `${tap.guestIp} 3`]);
      const t = ns.spawn(cmd, args, 120_000);
      await t.waitFor(/^net_echo: ready$/m, 60_000);
      expect(t.stdout).toMatch(new RegExp(`^net_echo: dev=service handle=1 mac=${mac} mtu=1500 ip=${tap.guestIp.replace(/\./g, '\\.')} `, 'm'));
      const ping = await ns.run('ping', ['-c', '3', '-i', '0.2', '-W', '5', tap.guestIp], 60_000);
      expect(ping.status).toBe(0);
      const r = await t.wait(60_000);
      expect(r).toMatchObject({ status: 0, signal: null, stderr: '', timedOut: false });
      expect(r.stdout).toMatch(/^net_echo: replies=3 /m);
    } finally {
      await ns.destroy();
    }
  });
});

/** Starts the executable (or a link) on a guest and resolves once it printed `ready`. */
function startExe(bin: string, args: readonly string[], ready = 'spinning\n') {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  const started = (async () => {
    const deadline = Date.now() + 30_000;
    while (!stdout.includes(ready)) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`no "${ready}": ${stdout}${stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return { child, ended, started, stdoutNow: () => stdout };
}

function seccompOf(pid: number): { seccomp: string; noNewPrivs: string } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { seccomp: /^Seccomp:\s+(\d+)$/m.exec(s)?.[1] ?? '?', noNewPrivs: /^NoNewPrivs:\s+(\d+)$/m.exec(s)?.[1] ?? '?' };
}

describeKvm('the executable: sandbox and signals', () => {
  beforeAll(() => {
    ensureExe();
  }, 300_000);

  it('while a guest runs the process is confined (Seccomp 2, NoNewPrivs 1); SIGTERM: status 1 and the message', async () => {
    const m = startExe(EXE_SOLO5_HVT, [guest('spin')], 'spinning\n');
    await m.started;
    expect(seccompOf(m.child.pid as number)).toEqual({ seccomp: '2', noNewPrivs: '1' });
    m.child.kill('SIGTERM');
    expect(await m.ended).toMatchObject({ code: 1, signal: null, stderr: 'solo5-hvt: Exiting on signal 15\n' });
  });

  it('solo5-hvt-debug: the two WARNING lines, and the guest runs unconfined', async () => {
    const m = startExe(EXE_SOLO5_HVT_DEBUG, [guest('spin')], 'spinning\n');
    await m.started;
    expect(seccompOf(m.child.pid as number)).toEqual({ seccomp: '0', noNewPrivs: '0' });
    m.child.kill('SIGINT');
    const r = await m.ended;
    expect(r).toMatchObject({ code: 1, signal: null });
    expect(r.stderr).toBe(`${UNCONFINED_WARNINGS.map((w) => `solo5-hvt-debug: ${w}\n`).join('')}solo5-hvt-debug: Exiting on signal 2\n`);
  });

  it('SIGUSR1 kills it (default action), no inspector opens', async () => {
    const m = startExe(EXE, [guest('spin')], 'spinning\n');
    await m.started;
    m.child.kill('SIGUSR1');
    const r = await m.ended;
    expect(r.signal).toBe('SIGUSR1');
    expect(r.stderr).toBe('');
  });

  it('--gdb: the socket thread is carried too and shares the vCPU (Ctrl-C stops a spinning guest), k ends the run', async () => {
    const m = startExe(EXE, ['--gdb', '--gdb-port=0', guest('spin')]);
    let port = 0;
    const deadline = Date.now() + 30_000;
    while (port === 0) {
      // The stub says where it listens on the console (stdout), as the reference does.
      const found = /target remote localhost:(\d+)/.exec(await new Promise<string>((r) => setTimeout(() => r(m.stdoutNow()), 50)));
      if (found) port = Number(found[1]);
      if (Date.now() > deadline) throw new Error(`no port: ${m.stdoutNow()}`);
    }
    const sock = connect(port, '127.0.0.1');
    let got = '';
    sock.on('data', (d: Buffer) => void (got += d.toString('latin1')));
    const packet = (p: string) => sock.write(`$${p}#${([...p].reduce((a, c) => a + c.charCodeAt(0), 0) & 0xff).toString(16).padStart(2, '0')}`);
    const expectReply = async (re: RegExp) => {
      const until = Date.now() + 30_000;
      while (!re.test(got)) {
        if (Date.now() > until) throw new Error(`no ${re} in ${JSON.stringify(got)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      got = '';
    };
    packet('?');
    await expectReply(/\$T05thread:1;#[0-9a-f]{2}/);
    sock.write('+');
    packet('c');
    await m.started; // "spinning": the guest runs
    sock.write('\x03');
    await expectReply(/\$T02thread:1;#[0-9a-f]{2}/);
    sock.write('+');
    packet('k');
    const r = await m.ended;
    sock.destroy();
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ukvm-ts: GDB: the debugger killed the guest$/m);
  });

  it('a guest exit status comes through unchanged', () => {
    const r = spawnSync(EXE, [join(GUEST_BUILD, 'exit.hvt'), '300'], { encoding: 'utf8' });
    expect(r.status).toBe(300 & 0xff);
  });
});
