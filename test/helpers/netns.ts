// Network namespaces for the net KVM tests: each Netns is a uniquely named
// namespace ("ukvmt-<pid>-<n>") holding the taps and other links a test
// needs; the tender, ping and friends run inside it through `ip netns exec`,
// so nothing touches the host's own interfaces. destroy() kills whatever the
// namespace still runs and deletes it (its taps go with it). Namespaces left
// behind by an earlier run that died (its pid is gone) are deleted by
// cleanupStaleNetns(), and an exit hook deletes this process's own.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { BIN } from './tender.js';

export const NETNS_PREFIX = 'ukvmt-';
const OWN = new RegExp(`^${NETNS_PREFIX}(\\d+)-\\d+$`);

export interface ProcResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** true if the process was killed because it ran past its time limit. */
  timedOut: boolean;
}

/** A process running inside a namespace, with its output collected as it comes. */
export class Proc {
  stdout = '';
  stderr = '';
  readonly done: Promise<ProcResult>;
  private timedOut = false;

  constructor(readonly child: ChildProcess, timeoutMs: number) {
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (this.stdout += s));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    const timer = setTimeout(() => {
      this.timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    this.done = new Promise((resolve) => {
      const finish = (status: number | null, signal: NodeJS.Signals | null) => {
        clearTimeout(timer);
        resolve({ status, signal, stdout: this.stdout, stderr: this.stderr, timedOut: this.timedOut });
      };
      child.on('error', (e) => {
        this.stderr += `spawn failed: ${e.message}\n`;
        finish(null, null);
      });
      child.on('close', finish);
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves once stdout matches re; rejects (with the output so far) on exit or after timeoutMs. */
  async waitFor(re: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.stdout.match(re);
      if (m) return m;
      if (!this.running || Date.now() > deadline) {
        const why = this.running ? `not seen within ${timeoutMs} ms` : 'process exited first';
        throw new Error(`waiting for ${re}: ${why}\n--- stdout ---\n${this.stdout}--- stderr ---\n${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Waits for the exit; after timeoutMs kills the process (the result then says timedOut). */
  async wait(timeoutMs: number): Promise<ProcResult> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
    await Promise.race([this.done, late]);
    clearTimeout(timer);
    if (this.running) {
      this.timedOut = true;
      this.kill('SIGKILL');
    }
    return this.done;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.running) this.child.kill(signal);
  }
}

function ipCmd(args: readonly string[]): string {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

function listNetns(): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  return r.stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n !== '');
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Deletes ukvmt-PID-N namespaces whose creating process no longer exists. */
export function cleanupStaleNetns(): void {
  for (const name of listNetns()) {
    const m = OWN.exec(name);
    if (m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) {
      spawnSync('ip', ['netns', 'del', name]);
    }
  }
}

/**
 * Why the net tests cannot run here, or null if they can: needs `ip`,
 * `ping`, a usable /dev/net/tun and the right to create a namespace.
 */
export function netUnavailableReason(): string | null {
  for (const [cmd, arg] of [['ip', '-V'], ['ping', '-V']] as const) {
    const r = spawnSync(cmd, [arg], { encoding: 'utf8' });
    if (r.error || r.status !== 0) return `\`${cmd}\` is not available (${r.error?.message ?? r.stderr.trim()})`;
  }
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    return '/dev/net/tun is missing or not usable';
  }
  const probe = `${NETNS_PREFIX}${process.pid}-probe`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.status !== 0) return `cannot create a network namespace: ${r.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return null;
}

export function python3Available(): boolean {
  const r = spawnSync('python3', ['-c', 'import fcntl, struct'], { encoding: 'utf8' });
  return !r.error && r.status === 0;
}

export interface Tap {
  name: string;
  /** Address of the tap on the host side (10.77.N.1). */
  hostIp: string;
  /** Address the test gives the guest (10.77.N.2). */
  guestIp: string;
}

export interface TapOptions {
  mtu?: number;
  /** Bring the tap up (default true). */
  up?: boolean;
}

const live = new Set<Netns>();
let counter = 0;

export class Netns {
  private readonly procs = new Set<Proc>();
  private taps = 0;
  private destroyed = false;

  private constructor(readonly name: string) {}

  /** Creates a fresh namespace with lo up and IPv6 off (so no router solicitations reach the guests). */
  static create(): Netns {
    const ns = new Netns(`${NETNS_PREFIX}${process.pid}-${++counter}`);
    ipCmd(['netns', 'add', ns.name]);
    live.add(ns);
    try {
      ns.ip('link', 'set', 'lo', 'up');
      // Best effort: a kernel without IPv6 has no such files.
      spawnSync('ip', ['netns', 'exec', ns.name, 'sh', '-c',
        'for f in all default; do echo 1 > /proc/sys/net/ipv6/conf/$f/disable_ipv6; done 2>/dev/null']);
    } catch (e) {
      ns.destroySync();
      throw e;
    }
    return ns;
  }

  /** `ip -n NS ARGS`; throws with ip's message on failure. */
  ip(...args: string[]): string {
    return ipCmd(['-n', this.name, ...args]);
  }

  /** Creates tapN (optionally with an MTU), brings it up unless told not to, addresses it 10.77.N.1/24. */
  addTap(opts: TapOptions = {}): Tap {
    const n = ++this.taps;
    const tap: Tap = { name: `tap${n}`, hostIp: `10.77.${n}.1`, guestIp: `10.77.${n}.2` };
    this.ip('tuntap', 'add', 'dev', tap.name, 'mode', 'tap');
    if (opts.mtu !== undefined) this.ip('link', 'set', tap.name, 'mtu', String(opts.mtu));
    this.ip('addr', 'add', `${tap.hostIp}/24`, 'dev', tap.name);
    if (opts.up ?? true) this.ip('link', 'set', tap.name, 'up');
    return tap;
  }

  /**
   * Creates an interface that is up but is not a tap: a dummy interface if
   * the kernel has them, else one end of a veth pair. Returns the kind used.
   */
  addNonTap(name: string): 'dummy' | 'veth' {
    let kind: 'dummy' | 'veth' = 'dummy';
    try {
      this.ip('link', 'add', name, 'type', 'dummy');
    } catch {
      kind = 'veth';
      this.ip('link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`);
    }
    this.ip('link', 'set', name, 'up');
    return kind;
  }

  /** Starts CMD ARGS inside the namespace. */
  spawn(cmd: string, args: readonly string[], timeoutMs = 120_000): Proc {
    if (this.destroyed) throw new Error(`namespace ${this.name} is gone`);
    const child = spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const p = new Proc(child, timeoutMs);
    this.procs.add(p);
    void p.done.then(() => this.procs.delete(p));
    return p;
  }

  /** Runs CMD ARGS inside the namespace to completion. */
  run(cmd: string, args: readonly string[], timeoutMs = 120_000): Promise<ProcResult> {
    return this.spawn(cmd, args, timeoutMs).done;
  }

  /** Starts `node bin/ukvm-ts ARGS` inside the namespace. */
  spawnTender(args: readonly string[], timeoutMs = 120_000): Proc {
    return this.spawn(process.execPath, [BIN, ...args], timeoutMs);
  }

  runTender(args: readonly string[], timeoutMs = 60_000): Promise<ProcResult> {
    return this.spawnTender(args, timeoutMs).done;
  }

  /** Sends one UDP datagram with PAYLOAD to IP:PORT from inside the namespace (bash's /dev/udp). */
  async sendUdp(ip: string, port: number, payload: string): Promise<void> {
    const r = await this.run('bash', ['-c', `printf '%s' "$0" > /dev/udp/${ip}/${port}`, payload], 30_000);
    if (r.status !== 0) throw new Error(`sending UDP to ${ip}:${port} failed: ${r.stderr}`);
  }

  /** Kills what still runs in the namespace, waits for it, deletes the namespace. */
  async destroy(): Promise<void> {
    const pending = [...this.procs];
    for (const p of pending) p.kill('SIGKILL');
    await Promise.race([
      Promise.all(pending.map((p) => p.done)),
      new Promise((r) => setTimeout(r, 10_000)),
    ]);
    this.destroySync();
  }

  destroySync(): void {
    for (const p of this.procs) p.kill('SIGKILL');
    if (!this.destroyed) spawnSync('ip', ['netns', 'del', this.name]);
    this.destroyed = true;
    live.delete(this);
  }
}

// Last resort if a test run is torn down without afterAll/finally running.
process.on('exit', () => {
  for (const ns of [...live]) ns.destroySync();
});

/** Runs fn with a fresh namespace and always deletes it afterwards. */
export async function withNetns<T>(fn: (ns: Netns) => Promise<T>): Promise<T> {
  const ns = Netns.create();
  try {
    return await fn(ns);
  } finally {
    await ns.destroy();
  }
}
