// Network device module on real KVM (docs/abi.md §4.3–4.5, §6.1, §8.2, §9.3,
// §10.3, §10.6–10.7, §12): guests answer ARP and ICMP echo through taps in
// a private network namespace (test/helpers/netns.ts) while the host pings
// them: a 10,000-packet flood, patterned payloads checked byte for byte by
// ping, two interfaces at once, MTU 9000, MACs from --net-mac and random
// ones, @FD, the ukvm --net forms, hostile guests and every option error.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { statSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cleanupStaleNetns,
  Netns,
  netUnavailableReason,
  python3Available,
  type Proc,
  type ProcResult,
  type Tap,
} from '../helpers/netns.js';
import { checkedPing, floodPing, quitGuest } from '../helpers/ping.js';
import { BIN, describeKvm, guest, kvmAvailable, ROOT } from '../helpers/tender.js';

const P = 'ukvm-ts: ';
const ECHO = guest('net_echo');
const TWO = guest('net_two');
const HOSTILE = guest('net_hostile');
const HANDLES = guest('net_handles');

const netSkip = kvmAvailable ? netUnavailableReason() : null;
if (netSkip) {
  const bar = '!'.repeat(72);
  process.stderr.write(`\n${bar}\n!! net KVM tests SKIPPED: ${netSkip}\n!! This is NOT a pass of the net suite.\n${bar}\n\n`);
}
const describeNet = netSkip ? describe.skip : describeKvm;
const havePython = !netSkip && python3Available();

function lines(s: string): string[] {
  return s.split('\n').filter((l) => l !== '');
}

// ---- guest output ----

interface DevLine {
  dev: string;
  handle: number;
  mac: string;
  mtu: number;
  ip: string;
  mem_size: number;
  host_features: number;
  net_ring: number;
  attached: number;
}

/** The start-up line(s) `PROG: dev=NAME handle=H mac=.. mtu=N ip=.. mem_size=N ...`. */
function devLines(stdout: string): DevLine[] {
  const out: DevLine[] = [];
  for (const l of lines(stdout)) {
    const m = /^net_(?:echo|two): dev=(\S+) (.*)$/.exec(l);
    if (!m) continue;
    const kv = Object.fromEntries((m[2] ?? '').split(' ').map((w) => w.split('=') as [string, string]));
    out.push({
      dev: m[1] ?? '',
      handle: Number(kv.handle),
      mac: kv.mac ?? '',
      mtu: Number(kv.mtu),
      ip: kv.ip ?? '',
      mem_size: Number(kv.mem_size),
      host_features: Number(kv.host_features),
      net_ring: Number(kv.net_ring),
      attached: Number(kv.attached),
    });
  }
  return out;
}

/** The final counters line `PROG: replies=N arp=N bad_checksums=N ...`. */
function counters(stdout: string): Record<string, number> {
  const l = lines(stdout).find((x) => /^net_(?:echo|two): replies=/.test(x));
  if (!l) throw new Error(`no counters line in:\n${stdout}`);
  return Object.fromEntries(l.replace(/^\S+ /, '').split(' ').map((w) => {
    const [k, v] = w.split('=');
    return [k ?? '', Number(v)];
  }));
}

function devReplies(stdout: string, dev: string): number {
  const m = new RegExp(`^dev ${dev}: replies=(\\d+)$`, 'm').exec(stdout);
  return m ? Number(m[1]) : NaN;
}

/** Every counter that must stay 0 in a healthy run. */
function expectCleanCounters(c: Record<string, number>): void {
  expect({
    bad_checksums: c.bad_checksums,
    poll_bogus: c.poll_bogus,
    poll_mismatch: c.poll_mismatch,
    poll_spurious: c.poll_spurious,
  }).toEqual({ bad_checksums: 0, poll_bogus: 0, poll_mismatch: 0, poll_spurious: 0 });
}

// ---- ping ----

// ---- running guests ----

/** Starts net_echo (or another guest) and waits until it is serving. */
async function startEcho(ns: Netns, args: string[]): Promise<Proc> {
  const t = ns.spawnTender(args, 600_000);
  await t.waitFor(/^net_(?:echo|two): ready$/m, 60_000);
  return t;
}

function neighbourMac(ns: Netns, tap: Tap, ip: string): string {
  const out = ns.ip('neigh', 'show', ip, 'dev', tap.name);
  return /lladdr ([0-9a-f:]{17})/.exec(out)?.[1] ?? `(none: ${out.trim()})`;
}

/** Starts net_echo with ARGS on a new tap, pings it a few times, quits; returns the output and the neighbour MAC. */
async function echoOnce(ns: Netns, tap: Tap, opts: string[]): Promise<{ r: ProcResult; dev: DevLine; neigh: string }> {
  const t = await startEcho(ns, [...opts, ECHO, tap.guestIp]);
  await checkedPing(ns, tap.guestIp, 3, 56);
  const neigh = neighbourMac(ns, tap, tap.guestIp);
  const r = await quitGuest(ns, t, tap.guestIp);
  const d = devLines(r.stdout);
  expect(d).toHaveLength(1);
  expectCleanCounters(counters(r.stdout));
  return { r, dev: d[0] as DevLine, neigh };
}

/** Asserts a rejected option: the warnings, then Invalid option, then the usage text; exit 1, no guest output. */
function expectInvalidOption(r: ProcResult, arg: string, warnings: string[]): void {
  const l = r.stderr.split('\n');
  expect(l.slice(0, warnings.length + 1)).toEqual([...warnings.map((w) => `${P}${w}`), `${P}Invalid option: \`${arg}'`]);
  expect(l[warnings.length + 1]).toMatch(/^usage: /);
  expect(r.stdout).toBe('');
  expect(r.status).toBe(1);
}

// net_two.c includes net_echo.c, which build.mjs does not watch: rebuild it if stale.
function rebuildNetTwoIfStale(): void {
  const src = (n: string) => statSync(join(ROOT, 'test', 'guests', n)).mtimeMs;
  let built = 0;
  try {
    built = statSync(TWO).mtimeMs;
  } catch {
    /* not built */
  }
  if (built > src('net_echo.c') && built > src('net_two.c')) return;
  rmSync(TWO, { force: true });
  const r = spawnSync(process.execPath, [join(ROOT, 'test', 'guests', 'build.mjs'), 'net_two'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building net_two failed: ${r.stderr}`);
}

let ns: Netns;

beforeAll(() => {
  if (netSkip || !kvmAvailable) return;
  cleanupStaleNetns();
  rebuildNetTwoIfStale();
  ns = Netns.create();
});

afterAll(async () => {
  await ns?.destroy();
});

describeNet('net: traffic (net_echo)', () => {
  it('answers 10,000 flood pings without loss, then patterned pings of several sizes byte for byte', async () => {
    const tap = ns.addTap();
    const t = await startEcho(ns, ['--mem=64', `--net:service=${tap.name}`, ECHO, tap.guestIp]);
    const flood = await floodPing(ns, tap.guestIp, 10_000);
    console.log(`net_echo flood (56-byte payloads): ${flood.summary}\n  ${flood.rtt}`);
    const big = await floodPing(ns, tap.guestIp, 2_000, ['-s', '1472', '-p', 'c3a5']);
    console.log(`net_echo flood (1472-byte payloads): ${big.summary}\n  ${big.rtt}`);
    const patterned: Array<[number, number, string | undefined]> = [
      [100, 1, undefined], // odd sizes: the last checksum word is half a word
      [100, 57, 'a5'],
      [100, 1000, 'ff00'],
      [100, 1001, '0123456789abcdeffedcba9876543210'],
      [100, 1472, 'deadbeef'], // the largest unfragmented payload at MTU 1500
    ];
    // Every request ping sent was answered: the guest's counter says so.
    let sent = flood.transmitted + big.transmitted;
    for (const [count, size, pattern] of patterned) {
      sent += (await checkedPing(ns, tap.guestIp, count, size, pattern, ['-M', 'do'])).transmitted;
    }
    const r = await quitGuest(ns, t, tap.guestIp);
    const c = counters(r.stdout);
    expectCleanCounters(c);
    expect(c.replies).toBe(sent);
    expect(devReplies(r.stdout, 'service')).toBe(sent);
  }, 900_000);

  it('start-up state: mem_size is the --mem size (4094 MiB for 4096), no ring, NET_READ with nothing pending is AGAIN, bad handles are EINVAL', async () => {
    // --mem=4096 cannot grow past the 4 GiB cap: the ring's 2 MiB come out of
    // the guest's share (docs/abi.md §6.1 step 5). --mem=2 is the smallest guest.
    const cases = [
      [['--mem=64'], 67108864],
      [[], 536870912],
      [['--mem=66'], 69206016],
      [['--mem=2'], 2097152],
      [['--mem=4096'], 4292870144],
    ] as const;
    for (const [mem, size] of cases) {
      const tap = ns.addTap();
      const t = await startEcho(ns, [...mem, `--net:service=${tap.name}`, ECHO, tap.guestIp]);
      const r = await quitGuest(ns, t, tap.guestIp);
      const d = devLines(r.stdout);
      expect(d).toEqual([
        expect.objectContaining({ dev: 'service', handle: 1, mtu: 1500, ip: tap.guestIp, mem_size: size, host_features: 0, net_ring: 0, attached: 1 }),
      ]);
      const l = lines(r.stdout);
      expect(l.slice(1, 11)).toEqual([
        'read-empty(service): AGAIN',
        'poll-empty: ret=0 ready=0x0',
        'wrong-handle 0x0: read=2 write=2',
        'wrong-handle 0x2: read=2 write=2',
        'wrong-handle 0x3: read=2 write=2',
        'wrong-handle 0x40: read=2 write=2',
        'wrong-handle 0x3e8: read=2 write=2',
        'wrong-handle 0x100000001: read=2 write=2',
        'wrong-handle 0xffffffffffffffff: read=2 write=2',
        'net_echo: ready',
      ]);
      expect(counters(r.stdout).replies).toBe(0);
    }
  }, 300_000);

  it('handles next to a block device: block entry, 0, entries and truncated handles are EINVAL; POLL ignores the disk', async () => {
    const tap = ns.addTap();
    const dir = mkdtempSync(join(tmpdir(), 'ukvm-ts-net-'));
    try {
      const disk = join(dir, 'disk.img');
      writeFileSync(disk, Buffer.alloc(4096));
      const r = await ns.runTender([`--net:service=${tap.name}`, `--block:disk=${disk}`, HANDLES]);
      expect(r.stderr).toBe('');
      expect(lines(r.stdout).filter((l) => l.endsWith(' FAIL'))).toEqual([]);
      expect(lines(r.stdout).at(-1)).toBe('net_handles: 0 failed');
      expect(lines(r.stdout)).toHaveLength(16);
      expect(r.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('two interfaces at once (net_two): both answer concurrent floods, each on its own tap', async () => {
    const a = ns.addTap();
    const b = ns.addTap();
    const t = await startEcho(ns, ['--mem=32', `--net:a=${a.name}`, `--net:b=${b.name}`, TWO, a.guestIp, b.guestIp]);
    const [fa, fb] = await Promise.all([floodPing(ns, a.guestIp, 3_000), floodPing(ns, b.guestIp, 3_000, ['-s', '600'])]);
    console.log(`net_two flood a: ${fa.summary}\n  ${fa.rtt}\nnet_two flood b: ${fb.summary}\n  ${fb.rtt}`);
    const [ca, cb] = await Promise.all([checkedPing(ns, a.guestIp, 50, 200, '1a'), checkedPing(ns, b.guestIp, 50, 1400, '2b')]);
    // Read the ARP entries while the tender runs: its exit takes the carrier
    // down and the kernel flushes them.
    const neighA = neighbourMac(ns, a, a.guestIp);
    const neighB = neighbourMac(ns, b, b.guestIp);
    const r = await quitGuest(ns, t, a.guestIp);
    const d = devLines(r.stdout);
    expect(d.map((x) => [x.dev, x.handle, x.ip, x.mtu, x.attached])).toEqual([
      ['a', 1, a.guestIp, 1500, 1],
      ['b', 2, b.guestIp, 1500, 1],
    ]);
    expect(d[0]?.mac).not.toBe(d[1]?.mac);
    expect(neighA).toBe(d[0]?.mac);
    expect(neighB).toBe(d[1]?.mac);
    expect(lines(r.stdout)).toContain('read-empty(a): AGAIN');
    expect(lines(r.stdout)).toContain('read-empty(b): AGAIN');
    expectCleanCounters(counters(r.stdout));
    expect(devReplies(r.stdout, 'a')).toBe(fa.transmitted + ca.transmitted);
    expect(devReplies(r.stdout, 'b')).toBe(fb.transmitted + cb.transmitted);
  }, 900_000);

  it('MTU 9000: the manifest copy says 9000 and jumbo pings up to 8972 bytes (frame = MTU + 14) come back intact', async () => {
    const tap = ns.addTap({ mtu: 9000 });
    const t = await startEcho(ns, [`--net:service=${tap.name}`, ECHO, tap.guestIp]);
    expect(devLines(t.stdout)[0]?.mtu).toBe(9000);
    const p1 = await checkedPing(ns, tap.guestIp, 20, 8000, '5a', ['-M', 'do']);
    const p2 = await checkedPing(ns, tap.guestIp, 20, 8972, 'e1d2c3b4', ['-M', 'do']);
    const big = await floodPing(ns, tap.guestIp, 500, ['-s', '8972', '-M', 'do']);
    console.log(`net_echo flood (8972-byte payloads, MTU 9000): ${big.summary}\n  ${big.rtt}`);
    const r = await quitGuest(ns, t, tap.guestIp);
    const c = counters(r.stdout);
    expectCleanCounters(c);
    expect(c.replies).toBe(p1.transmitted + p2.transmitted + big.transmitted);
  }, 600_000);
});

describeNet('net: MAC addresses', () => {
  it('--net-mac before --net: the guest sees it and ARP answers with it', async () => {
    const tap = ns.addTap();
    const { dev, neigh } = await echoOnce(ns, tap, ['--net-mac:service=02:00:5e:10:20:30', `--net:service=${tap.name}`]);
    expect(dev.mac).toBe('02:00:5e:10:20:30');
    expect(neigh).toBe('02:00:5e:10:20:30');
  }, 120_000);

  it('--net-mac after --net, upper-case hex digits', async () => {
    const tap = ns.addTap();
    const { dev, neigh } = await echoOnce(ns, tap, [`--net:service=${tap.name}`, '--net-mac:service=0A:1B:2C:3D:4E:5F']);
    expect(dev.mac).toBe('0a:1b:2c:3d:4e:5f');
    expect(neigh).toBe('0a:1b:2c:3d:4e:5f');
  }, 120_000);

  it('--net-mac with one-digit groups (docs/abi.md §12.1: 1-2 hex digits per group)', async () => {
    const tap = ns.addTap();
    const { dev } = await echoOnce(ns, tap, [`--net:service=${tap.name}`, '--net-mac:service=2:0:5e:a:b:c']);
    expect(dev.mac).toBe('02:00:5e:0a:0b:0c');
  }, 120_000);

  it('without --net-mac: a random locally administered unicast MAC, different each run, used in ARP', async () => {
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const tap = ns.addTap();
      const { dev, neigh } = await echoOnce(ns, tap, [`--net:service=${tap.name}`]);
      expect(dev.mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      expect(parseInt(dev.mac.slice(0, 2), 16) & 3).toBe(2);
      expect(neigh).toBe(dev.mac);
      seen.push(dev.mac);
    }
    expect(new Set(seen).size).toBe(3);
  }, 300_000);
});

describeNet('net: other ways to attach', () => {
  it.each([['--net', 'separate'], ['--net=', 'joined']])('ukvm form %s IFACE (%s) attaches the only net device', async (flag) => {
    const tap = ns.addTap();
    const opts = flag === '--net' ? ['--net', tap.name] : [`--net=${tap.name}`];
    const { dev, neigh } = await echoOnce(ns, tap, opts);
    expect(dev.attached).toBe(1);
    expect(neigh).toBe(dev.mac);
  }, 120_000);

  it('--net: given twice for one device: the later interface wins', async () => {
    const first = ns.addTap();
    const second = ns.addTap();
    const { dev, neigh } = await echoOnce(ns, second, [`--net:service=${first.name}`, `--net:service=${second.name}`]);
    expect(neigh).toBe(dev.mac);
  }, 120_000);

  it('@FD that is not a tap (a socket): MTU 1500 with one warning line; the written frame arrives byte for byte', async () => {
    // No namespace needed: nothing but the inherited socket is touched.
    const child = spawn(process.execPath, [BIN, '--mem=8', '--net:service=@3', HOSTILE, 'write-ok'], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    const got: Buffer[] = [];
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => got.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const [status] = (await once(child, 'close')) as [number | null];
    clearTimeout(timer);
    const warn = lines(stderr);
    expect(warn).toHaveLength(1);
    expect(warn[0]).toMatch(new RegExp(`^${P}.*@3.*1500`));
    const m = /^mac=(\S+) mtu=(\d+)$/m.exec(stdout);
    expect(m?.[2]).toBe('1500');
    expect(lines(stdout).at(-1)).toBe('survived ret=0');
    expect(status).toBe(0);
    const mac = Buffer.from((m?.[1] ?? '').split(':').map((x) => parseInt(x, 16)));
    const frame = Buffer.concat([Buffer.alloc(6, 0xff), mac, Buffer.from([0x88, 0xb5]), Buffer.from(Array.from({ length: 46 }, (_, i) => i + 14))]);
    expect(Buffer.concat(got).toString('hex')).toBe(frame.toString('hex'));
  }, 120_000);

  it.skipIf(!havePython)('@FD: an open tap descriptor inherited as fd 3; pings work and the MTU is the tap\'s', async () => {
    const tap = ns.addTap({ mtu: 4000 });
    // Opens /dev/net/tun, binds it to the tap (TUNSETIFF, IFF_TAP | IFF_NO_PI),
    // puts it at fd 3 and execs the tender with --net:service=@3.
    const script = [
      'import fcntl, os, struct, sys',
      "fd = os.open('/dev/net/tun', os.O_RDWR)",
      "fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH22x', sys.argv[1].encode(), 0x0002 | 0x1000))",
      'if fd != 3:',
      '    os.dup2(fd, 3)',
      '    os.close(fd)',
      'os.set_inheritable(3, True)',
      'os.execv(sys.argv[2], sys.argv[2:])',
    ].join('\n');
    const t = ns.spawn('python3', ['-c', script, tap.name, process.execPath, BIN, '--net:service=@3', ECHO, tap.guestIp], 300_000);
    await t.waitFor(/^net_echo: ready$/m, 60_000);
    const p = await checkedPing(ns, tap.guestIp, 50, 3000, '0ff0', ['-M', 'do']);
    const f = await floodPing(ns, tap.guestIp, 1_000);
    const r = await quitGuest(ns, t, tap.guestIp);
    const d = devLines(r.stdout);
    expect(d[0]?.mtu).toBe(4000);
    expect(d[0]?.attached).toBe(1);
    expect(lines(r.stdout)).toContain('read-empty(service): AGAIN');
    expect(counters(r.stdout).replies).toBe(p.transmitted + f.transmitted);
  }, 300_000);
});

describeNet('net: POLL (net_hostile poll-wait)', () => {
  it('a frame arriving ends a one-hour POLL: ret=1, ready_set = bit of the device', async () => {
    const tap = ns.addTap();
    const t = ns.spawnTender([`--net:service=${tap.name}`, HOSTILE, 'poll-wait'], 120_000);
    await t.waitFor(/^polling$/m);
    // The guest does not answer: this ping only makes the host send an ARP request.
    await ns.run('ping', ['-c', '1', '-W', '1', tap.guestIp], 30_000);
    const r = await t.wait(60_000);
    expect(r.stderr).toBe('');
    expect(lines(r.stdout)).toEqual(['mode: poll-wait', 'polling', 'poll: ret=1 ready=0x2']);
    expect(r.status).toBe(0);
  }, 120_000);

  it('SIGTERM while the guest waits in a one-hour POLL ends the run: Exiting on signal 15, exit 1', async () => {
    const tap = ns.addTap();
    const t = ns.spawnTender([`--net:service=${tap.name}`, HOSTILE, 'poll-wait'], 60_000);
    await t.waitFor(/^polling$/m);
    t.kill('SIGTERM');
    const r = await t.wait(30_000);
    expect(r.timedOut).toBe(false);
    expect(r.stderr).toBe(`${P}Exiting on signal 15\n`);
    expect(lines(r.stdout)).toEqual(['mode: poll-wait', 'polling']);
    expect(r.status).toBe(1);
  }, 120_000);
});

describeNet('net: hostile guests (net_hostile)', () => {
  let tap: Tap;
  beforeAll(() => {
    tap = ns.addTap();
  });

  it.each([
    'read-struct-outside',
    'write-struct-outside',
    'read-data-outside',
    'write-data-outside',
    'read-data-straddle',
    'read-end-at-memsize',
    'write-len-wrap',
    'read-len-huge',
  ])('%s: Invalid guest access naming the region, exit 1', async (mode) => {
    const r = await ns.runTender(['--mem=64', `--net:service=${tap.name}`, HOSTILE, mode]);
    const m = /^expect: gpa=0x([0-9a-f]+) sz=(\d+)$/m.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(r.stdout).not.toContain('survived');
    expect(r.stderr).toBe(`${P}Invalid guest access: gpa=0x${m?.[1]}, sz=${m?.[2]}\n`);
    expect(r.status).toBe(1);
  }, 60_000);

  it('read-bad-handle-data-outside: the handle is checked first, so EINVAL (ret=2), not fatal', async () => {
    const r = await ns.runTender(['--mem=64', `--net:service=${tap.name}`, HOSTILE, 'read-bad-handle-data-outside']);
    expect(r.stderr).toBe('');
    expect(lines(r.stdout)).toEqual(['mode: read-bad-handle-data-outside', 'survived ret=2']);
    expect(r.status).toBe(0);
  }, 60_000);

  it('write-ok: a valid write returns 0', async () => {
    const r = await ns.runTender(['--mem=64', `--net:service=${tap.name}`, HOSTILE, 'write-ok']);
    expect(r.stderr).toBe('');
    expect(lines(r.stdout)).toEqual(['mode: write-ok', expect.stringMatching(/^mac=\S+ mtu=1500$/), 'survived ret=0']);
    expect(r.status).toBe(0);
  }, 60_000);
});

describeNet('net: option errors', () => {
  const attachFails = async (iface: string, errno: string) => {
    const arg = `--net:service=${iface}`;
    const r = await ns.runTender([arg, ECHO, '10.0.0.2']);
    expectInvalidOption(r, arg, [`Could not attach interface: ${iface}: ${errno}`]);
  };

  it('interface that does not exist: No such file or directory (15 characters is still a lookup)', async () => {
    await attachFails('nosuch0', 'No such file or directory');
    await attachFails('abcdefghijklmno', 'No such file or directory');
  });

  it('interface name of 16 or more characters: File name too long', async () => {
    await attachFails('abcdefghijklmnop', 'File name too long');
    await attachFails('averyveryverylon', 'File name too long');
  });

  it('tap that is down: Network is down', async () => {
    const tap = ns.addTap({ up: false });
    await attachFails(tap.name, 'Network is down');
  });

  it('interface that is not a tap (dummy, or veth where dummy is missing): Invalid argument', async () => {
    ns.addNonTap('nottap0');
    await attachFails('nottap0', 'Invalid argument');
    let bridge = true;
    try {
      ns.ip('link', 'add', 'nottap1', 'type', 'bridge');
      ns.ip('link', 'set', 'nottap1', 'up');
    } catch {
      bridge = false; // no bridge support in this kernel: the first case suffices
    }
    if (bridge) await attachFails('nottap1', 'Invalid argument');
  });

  it('tap already attached by another process: Device or resource busy; the first keeps working', async () => {
    const tap = ns.addTap();
    const first = await startEcho(ns, [`--net:service=${tap.name}`, ECHO, tap.guestIp]);
    await attachFails(tap.name, 'Device or resource busy');
    await checkedPing(ns, tap.guestIp, 5, 56);
    await quitGuest(ns, first, tap.guestIp);
    // Once the first has exited the tap is free again.
    const again = await startEcho(ns, [`--net:service=${tap.name}`, ECHO, tap.guestIp]);
    await checkedPing(ns, tap.guestIp, 5, 56);
    await quitGuest(ns, again, tap.guestIp);
  }, 180_000);

  it.each(['zz', '00:11:22:33:44', '00:11:22:33:44:5g', '', '00-11-22-33-44-55', '00:11::33:44:55'])(
    'bad MAC %j: Invalid option',
    async (mac) => {
      const tap = ns.addTap();
      for (const order of ['before', 'after']) {
        const arg = `--net-mac:service=${mac}`;
        const net = `--net:service=${tap.name}`;
        const r = await ns.runTender([...(order === 'before' ? [arg, net] : [net, arg]), ECHO, tap.guestIp]);
        expectInvalidOption(r, arg, []);
      }
    },
  );

  it('NAME not in the manifest (or naming a block device): Resource not declared in manifest', async () => {
    const tap = ns.addTap();
    for (const arg of [`--net:nosuch=${tap.name}`, '--net-mac:nosuch=02:00:00:00:00:01', `--net:Service=${tap.name}`]) {
      const name = /:(\w+)=/.exec(arg)?.[1];
      const r = await ns.runTender([`--net:service=${tap.name}`, arg, ECHO, tap.guestIp]);
      expectInvalidOption(r, arg, [`Resource not declared in manifest: '${name}'`]);
    }
    const dir = mkdtempSync(join(tmpdir(), 'ukvm-ts-net-'));
    try {
      const disk = join(dir, 'disk.img');
      writeFileSync(disk, Buffer.alloc(4096));
      const arg = `--net:disk=${tap.name}`;
      const r = await ns.runTender([`--net:service=${tap.name}`, `--block:disk=${disk}`, arg, HANDLES]);
      expectInvalidOption(r, arg, ["Resource not declared in manifest: 'disk'"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each(['@abc', '@-1', '@999', '@', '@3x', '@99999999999'])('bad descriptor %s: one line naming it, exit 1', async (fd) => {
    const r = await ns.runTender([`--net:service=${fd}`, ECHO, '10.0.0.2']);
    const first = r.stderr.split('\n')[0] ?? '';
    expect(first.startsWith(P)).toBe(true);
    expect(first).toContain(fd);
    expect(r.stdout).toBe('');
    expect(r.status).toBe(1);
  });

  it('declared net devices left unattached: named, then the fatal line', async () => {
    const tap = ns.addTap();
    const unattached = (name: string) => [
      `${P}Device '${name}' of type NET_BASIC declared but not attached.`,
      `${P}All declared devices must be attached. See --help for syntax.`,
    ];
    let r = await ns.runTender([ECHO, '10.0.0.2']);
    expect(lines(r.stderr)).toEqual(unattached('service'));
    expect([r.stdout, r.status]).toEqual(['', 1]);
    // --net-mac alone does not attach.
    r = await ns.runTender(['--net-mac:service=02:00:00:00:00:01', ECHO, '10.0.0.2']);
    expect(lines(r.stderr)).toEqual(unattached('service'));
    expect([r.stdout, r.status]).toEqual(['', 1]);
    r = await ns.runTender([`--net:a=${tap.name}`, TWO, '10.0.0.2', '10.0.0.3']);
    expect(lines(r.stderr)).toEqual(unattached('b'));
    expect([r.stdout, r.status]).toEqual(['', 1]);
  });

  it('the ukvm form --net=IFACE is refused when the manifest has two net devices', async () => {
    const tap = ns.addTap();
    const r = await ns.runTender([`--net=${tap.name}`, TWO, '10.0.0.2', '10.0.0.3']);
    expect(r.stdout).toBe('');
    expect(r.status).toBe(1);
  });
});
