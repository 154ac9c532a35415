// The net ring (docs/abi.md §13) on real KVM, with guests that use it as
// Solo5's bindings do (test/guests/runtime/ring.c): net_ring_echo and
// net_ring_two answer ARP and ICMP echo through the ring while the host
// pings them in a private namespace; net_ring_hostile misuses it. Every
// run is sandboxed (the default); the library runs go through
// net-ring-lib.mjs, where the VM's worker and the ring's thread each confine
// themselves.
import { spawnSync } from 'node:child_process';
import { statSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupStaleNetns, Netns, netUnavailableReason, type Proc, type ProcResult, type Tap } from '../helpers/netns.js';
import { ensureExe } from '../helpers/exe.js';
import { checkedPing, floodPing, quitGuest } from '../helpers/ping.js';
import { describeKvm, guest, kvmAvailable, ROOT } from '../helpers/tender.js';

const P = 'ukvm-ts: ';
const ECHO = guest('net_ring_echo');
const TWO = guest('net_ring_two');
const HOSTILE = guest('net_ring_hostile');
const LIB = join(ROOT, 'test', 'kvm', 'net-ring-lib.mjs');
const ON = '--net-ring=on';

const netSkip = kvmAvailable ? netUnavailableReason() : null;
if (netSkip) {
  const bar = '!'.repeat(72);
  process.stderr.write(`\n${bar}\n!! net ring KVM tests SKIPPED: ${netSkip}\n!! This is NOT a pass of the net ring suite.\n${bar}\n\n`);
}
const describeNet = netSkip ? describe.skip : describeKvm;

const lines = (s: string) => s.split('\n').filter((l) => l !== '');

/** key=value pairs of the first stdout line starting with `prefix`. */
function fields(stdout: string, prefix: RegExp): Record<string, string> {
  const l = lines(stdout).find((x) => prefix.test(x));
  if (!l) throw new Error(`no line matching ${prefix} in:\n${stdout}`);
  return Object.fromEntries(l.split(' ').filter((w) => w.includes('=')).map((w) => w.split('=') as [string, string]));
}

// net_ring_*.c include net_echo.c, which build.mjs does not watch.
function rebuildIfStale(name: string, deps: string[]): void {
  const src = (n: string) => statSync(join(ROOT, 'test', 'guests', n)).mtimeMs;
  let built = 0;
  try {
    built = statSync(guest(name)).mtimeMs;
  } catch {
    /* not built yet */
  }
  if (deps.every((d) => built > src(d))) return;
  rmSync(guest(name), { force: true });
  const r = spawnSync(process.execPath, [join(ROOT, 'test', 'guests', 'build.mjs'), name], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building ${name} failed: ${r.stderr}`);
}

// ---- ping ----

// ---- guests ----

async function started(t: Proc, re = /^net_(?:echo|two): ready$/m): Promise<Proc> {
  await t.waitFor(re, 90_000);
  return t;
}

/** Counters the guest prints at the end; the ones that must be 0 in a healthy run. */
function expectClean(stdout: string): Record<string, string> {
  const c = fields(stdout, /^net_(?:echo|two): replies=/);
  expect({ bad: c.bad_checksums, bogus: c.poll_bogus, mismatch: c.poll_mismatch }).toEqual({ bad: '0', bogus: '0', mismatch: '0' });
  return c;
}

/** Frames the host's side of a tap received (the guest's writes). */
function tapRx(ns: Netns, tap: Tap): number {
  const j = JSON.parse(ns.ip('-s', '-j', 'link', 'show', 'dev', tap.name)) as { stats64: { rx: { packets: number } } }[];
  return j[0]?.stats64.rx.packets ?? NaN;
}

/** The library embedding (net-ring-lib.mjs) inside the namespace. */
function libRun(ns: Netns, o: Record<string, unknown>, timeoutMs = 300_000): Proc {
  return ns.spawn(process.execPath, [LIB, JSON.stringify(o)], timeoutMs);
}

function libEnd(r: ProcResult): { exit: { status: number; reason: string; message?: string }; stats: Record<string, any> } {
  const get = (k: string) => {
    const l = lines(r.stdout).find((x) => x.startsWith(`${k} `));
    if (!l) throw new Error(`no "${k}" line:\n${r.stdout}${r.stderr}`);
    return JSON.parse(l.slice(k.length + 1));
  };
  return { exit: get('exit'), stats: get('stats') };
}

let ns: Netns;

beforeAll(() => {
  if (netSkip || !kvmAvailable) return;
  cleanupStaleNetns();
  rebuildIfStale('net_ring_echo', ['net_echo.c', 'net_ring_echo.c']);
  rebuildIfStale('net_ring_two', ['net_echo.c', 'net_ring_two.c']);
  ns = Netns.create();
});

afterAll(async () => {
  await ns?.destroy();
});

describeNet('net ring: traffic through the ring (net_ring_echo, net_ring_two)', () => {
  it('offers the ring (host_features 1, net_ring = mem_size) and answers 10,000 flood pings, then patterned pings, byte for byte', async () => {
    const tap = ns.addTap();
    const t = await started(ns.spawnTender(['--mem=64', ON, `--net:service=${tap.name}`, ECHO, tap.guestIp], 1_200_000));
    const d = fields(t.stdout, /^net_echo: dev=/);
    expect({ hf: d.host_features, ring: d.ring, net_ring: d.net_ring, mem: d.mem_size }).toEqual({ hf: '1', ring: '1', net_ring: String(64 << 20), mem: String(64 << 20) });
    // A ring read with nothing pending commits AGAIN with len 0; bad handles: reads EINVAL, writes skipped (no commit).
    expect(t.stdout).toContain('ring-read-empty(service): ret=1 len=0\n');
    for (const h of ['0x0', '0x2', '0x40', '0xffffffff']) expect(t.stdout).toContain(`ring-wrong-handle ${h}: read=2 len=0 write=0\n`);
    const f = await floodPing(ns, tap.guestIp, 10_000, [], 900);
    console.log(`net_ring_echo flood: ${f.summary} ${f.rtt}`);
    await floodPing(ns, tap.guestIp, 1_000, ['-s', '1472', '-p', 'c3a5'], 900);
    for (const [size, pattern] of [[1, 'ff'], [57, 'a5'], [1000, '0123456789abcdef'], [1472, 'fedcba9876543210']] as const) {
      await checkedPing(ns, tap.guestIp, 50, size, pattern, [], 180);
    }
    const r = await quitGuest(ns, t, tap.guestIp, 90_000);
    const c = expectClean(r.stdout);
    expect(Number(c.replies)).toBeGreaterThanOrEqual(10_000 + 1_000 + 200);
  });

  it('serves two interfaces over the one ring at once', async () => {
    const a = ns.addTap();
    const b = ns.addTap();
    const t = await started(ns.spawnTender(['--mem=64', ON, `--net:a=${a.name}`, `--net:b=${b.name}`, TWO, a.guestIp, b.guestIp], 900_000));
    const devs = lines(t.stdout).filter((l) => l.startsWith('net_two: dev='));
    expect(devs).toHaveLength(2);
    for (const l of devs) expect(l).toMatch(/ host_features=1 .* ring=1$/);
    const [fa, fb] = await Promise.all([floodPing(ns, a.guestIp, 2_000, ['-p', 'aa55'], 900), floodPing(ns, b.guestIp, 2_000, ['-p', '55aa'], 900)]);
    console.log(`net_ring_two floods: a ${fa.summary} ${fa.rtt}; b ${fb.summary} ${fb.rtt}`);
    const r = await quitGuest(ns, t, a.guestIp, 90_000);
    expectClean(r.stdout);
    for (const dev of ['a', 'b']) {
      const m = new RegExp(`^dev ${dev}: replies=(\\d+)$`, 'm').exec(r.stdout);
      expect(Number(m?.[1])).toBeGreaterThanOrEqual(2_000);
    }
  });

  it('sends frames over 2048 bytes by hypercall while the ring carries the rest, and the stats count both (library)', async () => {
    const tap = ns.addTap({ mtu: 9000 });
    const t = libRun(ns, { kernel: ECHO, net: { service: tap.name }, netRing: 'on', args: [tap.guestIp] });
    await started(t);
    for (const size of [4000, 8972]) await checkedPing(ns, tap.guestIp, 20, size, '5a0f', [], 180);
    await checkedPing(ns, tap.guestIp, 20, 100, '77', [], 180);
    await ns.sendUdp(tap.guestIp, 9, 'quit');
    const r = await t.wait(90_000);
    const { exit, stats } = libEnd(r);
    expect(exit).toEqual({ status: 0, reason: 'halt' });
    // Replies over 2048 bytes went by NET_WRITE hypercall; every frame read came through the ring.
    expect(stats.hypercalls.NET_WRITE).toBeGreaterThanOrEqual(7 + 40);
    expect(stats.hypercalls.NET_READ).toBe(8); // the start-up checks of net_echo.c, nothing after
    expect(stats.ring.reads).toBeGreaterThan(60);
    expect(stats.ring.writes).toBeGreaterThanOrEqual(20);
    expect(stats.devices.service.in).toBeGreaterThan(20 * 4042 + 20 * 9014);
    expect(stats.devices.service.out).toBeGreaterThan(20 * 4042 + 20 * 9014);
  });

  it('with --net-ring=off the same guest uses the hypercalls and nothing else changes', async () => {
    const tap = ns.addTap();
    const t = await started(ns.spawnTender(['--mem=64', '--net-ring=off', `--net:service=${tap.name}`, ECHO, tap.guestIp]));
    const d = fields(t.stdout, /^net_echo: dev=/);
    expect({ hf: d.host_features, ring: d.ring, net_ring: d.net_ring, mem: d.mem_size }).toEqual({ hf: '0', ring: '0', net_ring: '0', mem: String(64 << 20) });
    await floodPing(ns, tap.guestIp, 500, [], 900);
    await checkedPing(ns, tap.guestIp, 20, 1000, 'a5', [], 180);
    expectClean((await quitGuest(ns, t, tap.guestIp, 90_000)).stdout);
  });
});

describeNet('net ring: flow control and hostile guests (net_ring_hostile)', () => {
  const run = (tap: Tap, mode: string[], extra: string[] = []) => ns.runTender(['--mem=64', ON, ...extra, `--net:service=${tap.name}`, HOSTILE, ...mode], 180_000);

  it('1023 entries published at once, then thousands more under flow control: every frame reaches the tap', async () => {
    const tap = ns.addTap();
    const before = tapRx(ns, tap);
    const r = await run(tap, ['burst', '3000']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^burst: sent=4023 max_outstanding=1023 read=[01]$/m);
    expect(tapRx(ns, tap) - before).toBeGreaterThanOrEqual(4023);
  });

  const fatal: Array<[string, (top: number) => string]> = [
    ['tail-jump', () => 'Invalid net ring state: ent_tail=2147483648 is 2147483648 entries ahead of ent_head=0 (the ring has 1024 slots)'],
    ['read-outside', (top) => `Invalid guest access: gpa=0x${(top + 0x1000).toString(16)}, sz=1514`],
    ['write-outside', (top) => `Invalid guest access: gpa=0x${(top - 16).toString(16)}, sz=64`],
    ['write-huge', () => 'Invalid guest access: gpa=0x200000, sz=4294963200'],
  ];
  for (const [mode, message] of fatal) {
    it(`${mode}: ends the run with one line, exit 1`, async () => {
      const tap = ns.addTap();
      const r = await run(tap, [mode]);
      expect(r.stderr).toBe(`${P}${message(64 << 20)}\n`);
      expect(r.stdout).not.toContain('survived');
      expect(r.status).toBe(1);
    });
  }

  it('read-text: a read into the guest\'s own (host read-only) text is refused like a hypercall\'s', async () => {
    const tap = ns.addTap();
    const r = await run(tap, ['read-text']);
    const gpa = /^expect: gpa=(0x[0-9a-f]+) sz=64$/m.exec(r.stdout)?.[1];
    expect(r.stderr).toBe(`${P}Invalid guest access: gpa=${gpa}, sz=64\n`);
    expect(r.status).toBe(1);
  });

  it('garbage entries: unknown operations skipped, one commit per read whatever its handle, nothing written past the ring', async () => {
    const tap = ns.addTap();
    const r = await run(tap, ['garbage']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const g = fields(r.stdout, /^garbage: /);
    expect(Number(g.reads)).toBeGreaterThan(100);
    expect(g.commits).toBe(g.reads);
  });

  it('commits never consumed: the host wraps the commit array (4 times) and goes on', async () => {
    const tap = ns.addTap();
    const r = await run(tap, ['no-consume', '4500']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('no-consume: com_head=0 com_tail=4500\n');
  });

  it('host-owned indices overwritten by the guest: the host keeps and republishes its own', async () => {
    const tap = ns.addTap();
    const r = await run(tap, ['host-fields']);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^host-fields: id_ok=1 ret=[01] com_tail=1 expected=1 ent_head_ok=1$/m);
    expect(r.status).toBe(0);
  });

  it('kicks with nothing to do are harmless; without a ring a kick is an invalid port access', async () => {
    const tap = ns.addTap();
    const on = await run(tap, ['kick']);
    expect(on.stderr).toBe('');
    expect(on.stdout).toMatch(/^kick: read=[01]$/m);
    const off = await ns.runTender(['--mem=64', '--net-ring=off', `--net:service=${tap.name}`, HOSTILE, 'kick'], 60_000);
    expect(off.stdout).toContain('ring=0\n');
    expect(off.stderr).toBe(`${P}Invalid guest port access: port=0x600\n`);
    expect(off.status).toBe(1);
  });
});

describeNet('net ring: ending a run wherever the ring thread waits', () => {
  for (const [mode, ready, env] of [
    ['idle', /^idle$/m, {}],
    ['spin', /^spinning$/m, { UKVM_RING_SPIN_US: '10000000' }],
  ] as const) {
    it(`SIGTERM while the ring thread ${mode === 'idle' ? 'sleeps in read(2)' : 'spins'}: "Exiting on signal 15", exit 1`, async () => {
      const tap = ns.addTap();
      const t = ns.spawn('env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, join(ROOT, 'bin', 'ukvm-ts'), '--mem=64', ON, `--net:service=${tap.name}`, HOSTILE, mode], 120_000);
      await t.waitFor(ready, 60_000);
      await new Promise((r) => setTimeout(r, 500)); // the thread's spin (0.2 ms) is long over: it sleeps, or spins on
      t.kill('SIGTERM');
      const r = await t.wait(30_000);
      expect(r.timedOut).toBe(false);
      expect(r.stderr).toBe(`${P}Exiting on signal 15\n`);
      expect(r.status).toBe(1);
    });

    it(`stop() while the ring thread ${mode === 'idle' ? 'sleeps' : 'spins'}: exited says 'stopped' and the program ends`, async () => {
      const tap = ns.addTap();
      const t = libRun(ns, { kernel: HOSTILE, net: { service: tap.name }, netRing: 'on', args: [mode], stopOn: ready.source, stopDelayMs: 500 }, 120_000);
      const r = await t.wait(60_000);
      expect(r.timedOut).toBe(false);
      expect(r.status).toBe(0);
      expect(libEnd(r).exit).toEqual({ status: 1, reason: 'stopped' });
      if (mode === 'spin') expect(libEnd(r).stats.ring.reads).toBeGreaterThan(0);
    });
  }

  it('a fatal ring error in a library VM settles its exited with the message (reason fault)', async () => {
    const tap = ns.addTap();
    const r = await libRun(ns, { kernel: HOSTILE, net: { service: tap.name }, netRing: 'on', args: ['read-outside'] }).wait(60_000);
    expect(libEnd(r).exit).toEqual({ status: 1, reason: 'fault', message: `Invalid guest access: gpa=0x${((64 << 20) + 0x1000).toString(16)}, sz=1514` });
    expect(r.status).toBe(0);
  });
});

describeNet('net ring: the self-contained executable', () => {
  it('carries the ring thread: it shares the main thread\'s addon (a fatal error stops the right vCPU), flow control and SIGTERM work', async () => {
    const exe = ensureExe();
    const tap = ns.addTap();
    const burst = await ns.run(exe, ['--mem=64', ON, `--net:service=${tap.name}`, HOSTILE, 'burst', '500'], 180_000);
    expect(burst.stderr).toBe('');
    expect(burst.stdout).toMatch(/^burst: sent=1523 max_outstanding=1023 read=[01]$/m);
    const bad = await ns.run(exe, ['--mem=64', ON, `--net:service=${tap.name}`, HOSTILE, 'read-outside'], 60_000);
    expect(bad.stderr).toBe(`${P}Invalid guest access: gpa=0x${((64 << 20) + 0x1000).toString(16)}, sz=1514\n`);
    expect(bad.status).toBe(1);
    const t = ns.spawn(exe, ['--mem=64', ON, `--net:service=${tap.name}`, HOSTILE, 'idle'], 120_000);
    await t.waitFor(/^idle$/m, 60_000);
    await new Promise((r) => setTimeout(r, 500));
    t.kill('SIGTERM');
    const r = await t.wait(30_000);
    expect({ timedOut: r.timedOut, stderr: r.stderr, status: r.status }).toEqual({ timedOut: false, stderr: `${P}Exiting on signal 15\n`, status: 1 });
  });
});
