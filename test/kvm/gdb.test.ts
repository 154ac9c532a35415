// The gdb module on real KVM, driven by the real gdb in batch mode
// (docs/abi.md §16): the messages of §16.2, breakpoints, backtraces, next /
// step / stepi, registers read and written, globals printed and set,
// disassembly, more breakpoints than debug registers, watchpoints, a guest
// fault, Ctrl-C (spinning and in POLL), detach, kill, dropped connections, a
// second connection, SIGTERM, hostile debugger input, the options and the
// library's gdb option. The guest is test/guests/gdb_target.c (-g -O0).
//
// This machine's KVM is PVM (see test/kvm/debug.test.ts): data watchpoints
// never fire and int3 at CPL 0 ends KVM_RUN with an internal error. Tests of
// what PVM cannot do assert what it does instead, only when /sys/module/kvm_pvm
// exists, and say "PVM LIMIT" in their names.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { platform } from '../../monitor/backend/index.js';
import { openKernel } from '../../monitor/kernel/kernel.js';
import { createVm } from '../../monitor/vm/compose.js';
import { COUNTERS_LENGTH, EXIT_KINDS } from '../../monitor/vm/core.js';
import { consoleModule } from '../../modules/console/index.js';
import { gdbModule } from '../../modules/gdb/index.js';
import { checksum } from '../../modules/gdb/packet.js';
import { startUnikernel } from 'ukvm-ts';
import { BIN, describeKvm, guest, kvmAvailable } from '../helpers/tender.js';

const PVM = existsSync('/sys/module/kvm_pvm');
const KERNEL = guest('gdb_target');
const P = 'ukvm-ts: ';
const WAIT_MS = 20_000;

function gdbUnavailableReason(): string | null {
  const r = spawnSync('gdb', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return `\`gdb\` is not available (${r.error?.message ?? r.stderr.trim()})`;
  return null;
}
const gdbSkip = kvmAvailable ? gdbUnavailableReason() : null;
if (gdbSkip) {
  const bar = '!'.repeat(72);
  process.stderr.write(`\n${bar}\n!! gdb KVM tests SKIPPED: ${gdbSkip}\n!! This is NOT a pass of the gdb suite.\n${bar}\n\n`);
}
const describeGdb = gdbSkip ? describe.skip : describeKvm;

interface Done {
  status: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

/** A child process whose output is collected and can be waited on. */
class Proc {
  out = '';
  err = '';
  readonly child: ChildProcess;
  readonly done: Promise<Done>;
  private wake: (() => void)[] = [];

  constructor(cmd: string, args: readonly string[]) {
    this.child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const woke = () => {
      for (const w of this.wake.splice(0)) w();
    };
    this.child.stdout?.on('data', (d: Buffer) => {
      this.out += d.toString();
      woke();
    });
    this.child.stderr?.on('data', (d: Buffer) => {
      this.err += d.toString();
      woke();
    });
    this.done = new Promise((resolve) => {
      this.child.on('close', (status, signal) => {
        woke();
        resolve({ status, signal, out: this.out, err: this.err });
      });
    });
    running.push(this);
  }

  /** Waits until stdout (or stderr) matches; fails the test with both outputs after WAIT_MS. */
  async waitFor(re: RegExp, where: 'out' | 'err' = 'out'): Promise<RegExpExecArray> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const m = re.exec(where === 'out' ? this.out : this.err);
      if (m) return m;
      if (Date.now() > deadline || this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`no ${re} in ${where} of ${this.child.spawnfile}:\n--- stdout\n${this.out}\n--- stderr\n${this.err}`);
      }
      await Promise.race([new Promise<void>((r) => this.wake.push(r)), sleep(100)]);
    }
  }

  /** Waits for the end (killing it after WAIT_MS). */
  async finish(): Promise<Done> {
    const t = setTimeout(() => this.child.kill('SIGKILL'), WAIT_MS);
    try {
      return await this.done;
    } finally {
      clearTimeout(t);
    }
  }
}

let running: Proc[] = [];
afterEach(() => {
  for (const p of running) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  running = [];
});

/** The tender with --gdb on a free port, once it says where to connect. */
async function debuggee(mode: string, options: readonly string[] = ['--gdb-port=0']): Promise<{ tender: Proc; port: number }> {
  const tender = new Proc(BIN, ['--gdb', ...options, KERNEL, mode]);
  const m = await tender.waitFor(/target remote localhost:(\d+)" KERNEL\n/);
  return { tender, port: Number(m[1]) };
}

/** gdb -batch with these commands after `target remote`. */
function gdb(port: number, commands: readonly string[]): Proc {
  const args = ['-batch', '-nx', '-ex', 'set pagination off', '-ex', 'set width 0', '-ex', 'set confirm off', '-ex', `target remote 127.0.0.1:${port}`];
  for (const c of commands) args.push('-ex', c);
  return new Proc('gdb', [...args, KERNEL]);
}

/** One whole session: the tender in `mode`, gdb running `commands`, both to their end. */
async function session(mode: string, commands: readonly string[]): Promise<{ gdb: Done; tender: Done }> {
  const { tender, port } = await debuggee(mode);
  const g = gdb(port, commands);
  const [gd, td] = await Promise.all([g.finish(), tender.finish()]);
  return { gdb: gd, tender: td };
}

/** A free TCP port on the loopback (closed again at once). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** The symbol's address, from gdb without a target. */
function symbol(name: string): bigint {
  const r = spawnSync('gdb', ['-batch', '-nx', '-ex', `print/x (long)&${name}`, KERNEL], { encoding: 'utf8' });
  const m = /= (0x[0-9a-f]+)/.exec(r.stdout);
  if (!m?.[1]) throw new Error(`no address for ${name}: ${r.stdout}${r.stderr}`);
  return BigInt(m[1]);
}

const REGISTER_VALUES: Record<string, string> = {
  rax: '0xa0a0a0a0a0a0a01', rbx: '0xb0b0b0b0b0b0b02', rcx: '0xc0c0c0c0c0c0c03', rdx: '0xd0d0d0d0d0d0d04',
  rsi: '0x5151515151515105', rdi: '0xd1d1d1d1d1d1d106', rbp: '0xb0b0b0b0b0b0b007', r8: '0x808080808080808',
  r9: '0x909090909090909', r10: '0x101010101010100a', r11: '0x111111111111110b', r12: '0x121212121212120c',
  r13: '0x131313131313130d', r14: '0x141414141414140e', r15: '0x151515151515150f',
};

/** "NAME   0xVALUE ..." lines of `info registers`. */
function infoRegisters(out: string): Record<string, string> {
  const regs: Record<string, string> = {};
  for (const m of out.matchAll(/^(\w+)\s+(0x[0-9a-f]+)\s+(.*)$/gm)) regs[m[1] as string] = `${m[2]} ${m[3]}`.trim();
  return regs;
}

describeGdb('gdb: inspecting a stopped guest', () => {
  it('prints the §16.2 messages, stops at the entry point, breaks at a function, continues, and shows the backtrace', async () => {
    const { gdb: g, tender: t } = await session('calls', ['break gdb_leaf', 'continue', 'bt', 'continue']);
    const port = /localhost:(\d+)/.exec(t.out)?.[1];
    expect(t.out.startsWith(`Waiting for a debugger. Connect to it like this:\n\tgdb --ex="target remote localhost:${port}" KERNEL\nConnection from debugger at 127.0.0.1\n`)).toBe(true);
    expect(g.out).toMatch(/^0x0*100000 in _start \(\)$/m); // the initial stop: the entry point, before any instruction
    expect(g.out).toMatch(/^Breakpoint 1, gdb_leaf \(x=4\) at \S*gdb_target\.c:\d+$/m);
    expect(g.out).toMatch(/^#0 {2}gdb_leaf \(x=4\) at \S*gdb_target\.c:\d+\n#1 {2}0x[0-9a-f]+ in gdb_middle \(x=3\) at \S+\n#2 {2}0x[0-9a-f]+ in gdb_outer \(x=2\) at \S+\n#3 {2}0x[0-9a-f]+ in guest_main \(bi=0x10000, cmdline=0x[0-9a-f]+ "calls"\)/m);
    expect(g.out).toContain('[Inferior 1 (Remote target) exited normally]');
    expect(t.out).toContain('outer=28 value=1 counter=1\n');
    expect(t.status).toBe(0);
    expect(g.err).toBe('');
  });

  it('next steps over a call, step goes into one, stepi moves one instruction', async () => {
    const { gdb: g, tender: t } = await session('calls', [
      'break gdb_outer', 'continue', 'step', 'next', 'print gdb_counter', 'print/x $pc', 'stepi', 'print/x $pc', 'info line *$pc',
    ]);
    expect(g.out).toMatch(/^Breakpoint 1, gdb_outer \(x=2\) at \S+:42\n42\t {2}int a = gdb_middle\(x \+ 1\);$/m);
    expect(g.out).toMatch(/^gdb_middle \(x=3\) at \S+:37\n37\t {2}int r = gdb_leaf\(x \+ 1\);$/m); // step: into the call
    expect(g.out).toMatch(/^38\t {2}return r \* 3;$/m); // next: over gdb_leaf, which ran
    expect(g.out).toMatch(/^\$1 = 1$/m);
    const pcs = [...g.out.matchAll(/^\$[23] = (0x[0-9a-f]+)$/gm)].map((m) => BigInt(m[1] as string));
    expect(pcs).toHaveLength(2);
    expect(pcs[1]! - pcs[0]!).toBeGreaterThan(0n);
    expect(pcs[1]! - pcs[0]!).toBeLessThan(16n); // one instruction further
    expect(g.out).toMatch(/^0x[0-9a-f]+\t38\t {2}return r \* 3;$/m); // stepi stops inside line 38
    expect(t.out).toContain('outer=28 value=1 counter=1\n');
    expect(t.status).toBe(0);
  });

  it('info registers shows what the guest loaded (rax–r15, rip, eflags, segments); registers gdb sets, r12–r15 included, are what the guest then holds', async () => {
    const writes = { rax: 0xa1n, rbx: 0xb1b1n, r12: 0xc0ffee0000001212n, r13: 0x1313n, r14: 0xe14e14e14n, r15: 0xf15f15f15f15f15fn };
    const { gdb: g, tender: t } = await session('regs', [
      'break *gdb_regs_stop', 'continue', 'info registers',
      ...Object.entries(writes).map(([r, v]) => `set $${r} = 0x${v.toString(16)}`), 'set $eflags = 0x887', 'continue',
    ]);
    const regs = infoRegisters(g.out);
    for (const [name, value] of Object.entries(REGISTER_VALUES)) expect(`${name} ${regs[name]?.split(' ')[0]}`).toBe(`${name} ${value}`);
    const stopAt = symbol('gdb_regs_stop');
    expect(regs['rip']).toBe(`0x${stopAt.toString(16)} 0x${stopAt.toString(16)} <gdb_regs_probe+${stopAt - symbol('gdb_regs_probe')}>`);
    expect(regs['eflags']).toBe('0x8c3 [ CF ZF SF OF ]');
    expect(['cs', 'ss', 'ds', 'es', 'fs', 'gs', 'fs_base', 'gs_base'].map((r) => `${r} ${regs[r]}`)).toEqual([
      'cs 0x8 8', 'ss 0x10 16', 'ds 0x10 16', 'es 0x10 16', 'fs 0x10 16', 'gs 0x10 16', 'fs_base 0x0 0', 'gs_base 0x0 0',
    ]);
    const held = (name: string) => new RegExp(`^${name}=(0x[0-9a-f]+)$`, 'm').exec(t.out)?.[1];
    for (const [name, value] of Object.entries(writes)) expect(`${name}=${held(name)}`).toBe(`${name}=0x${value.toString(16)}`);
    for (const name of ['rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'r8', 'r9', 'r10', 'r11']) expect(`${name}=${held(name)}`).toBe(`${name}=${REGISTER_VALUES[name]}`);
    expect(held('rflags')).toBe('0x887');
    expect(t.status).toBe(0);
  });

  it('print reads globals and locals; set var writes guest memory the guest then reads; x/4i disassembles at $pc', async () => {
    const { gdb: g, tender: t } = await session('calls', [
      'break gdb_outer', 'continue', 'print gdb_greeting', 'print gdb_value', 'print x', 'x/s gdb_greeting',
      'set var gdb_value = 42', 'print gdb_value', 'x/4i $pc', 'continue',
    ]);
    expect(g.out).toMatch(/^\$1 = "hello from gdb_target"$/m);
    expect(g.out).toMatch(/^\$2 = 1$/m);
    expect(g.out).toMatch(/^\$3 = 2$/m);
    expect(g.out).toMatch(/^0x[0-9a-f]+ <gdb_greeting>:\t"hello from gdb_target"$/m);
    expect(g.out).toMatch(/^\$4 = 42$/m);
    const dis = g.out.match(/^(?:=> | {3})0x[0-9a-f]+ <gdb_outer\+\d+>:\t\S.*$/gm) ?? [];
    expect(dis).toHaveLength(4);
    expect(dis[0]).toMatch(/^=> /);
    expect(t.out).toContain('outer=69 value=42 counter=1\n'); // 27 + 42
    expect(t.status).toBe(0);
  });

  it('a guest fault stops as SIGSEGV at the faulting instruction; continuing ends the run with the fault', async () => {
    const { gdb: g, tender: t } = await session('fault', ['continue', 'bt 1', 'continue']);
    expect(g.out).toMatch(/Program received signal SIGSEGV, Segmentation fault\.\nguest_main \(bi=0x10000, cmdline=0x[0-9a-f]+ "fault"\) at \S+:\d+\n\d+\t {4}\*\(volatile long \*\)\(uintptr_t\)8 = 1;/);
    expect(g.out).toContain('Program terminated with signal SIGSEGV, Segmentation fault.');
    expect(t.err).toMatch(new RegExp(`^${P}KVM: unhandled exit: exit_reason=0x8, rip=0x[0-9a-f]+$`, 'm'));
    expect(t.out).not.toContain('not reached');
    expect(t.status).toBe(1);
  });
});

describeGdb('gdb: breakpoints and watchpoints', () => {
  const six = ['break gdb_f1', 'break gdb_f2', 'break gdb_f3', 'break gdb_f4', 'break gdb_f5', 'break gdb_f6'];

  it('six breakpoints on the command line: four in debug registers, the two beyond int3s written into host-protected text (SetupContext.debugMemory); all six stop the guest', async () => {
    const { gdb: g, tender: t } = await session('many', [...six, ...Array(7).fill('continue')]);
    for (let i = 1; i <= 6; i++) expect(g.out).toMatch(new RegExp(`^Breakpoint ${i}, gdb_f${i} \\(\\) at `, 'm'));
    expect(g.out).toContain('[Inferior 1 (Remote target) exited normally]');
    expect(g.err).toBe('');
    expect(t.out).toContain('many counter=111111\n');
    expect(t.status).toBe(0);
  });

  it('in process, counting exits: breakpoints beyond four are int3s that stop the guest' + (PVM ? ' (PVM: int3 ends KVM_RUN with an internal error, reported as the breakpoint)' : ''), async () => {
    const port = await freePort();
    // The VM runs on this thread: gdb is started first and connects (gdb retries
    // a refused connection) while setup() waits for it.
    const g = gdb(port, [...six, ...Array(7).fill('continue')]);
    const out = await runInProcess(port, 'many');
    const gd = await g.finish();
    for (let i = 1; i <= 6; i++) expect(gd.out).toMatch(new RegExp(`^Breakpoint ${i}, gdb_f${i} \\(\\) at `, 'm'));
    expect(gd.out).toContain('[Inferior 1 (Remote target) exited normally]');
    expect(out.text).toContain('many counter=111111\n');
    expect(out.outcome).toEqual({ kind: 'halt', status: 0 });
    // Whichever breakpoints gdb inserted last were int3s (it reinserts them at
    // every resume, so which ones varies): on PVM each int3 hit came as an
    // internal error the module took for the breakpoint.
    if (PVM) expect(out.internalErrors).toBeGreaterThanOrEqual(1);
    else expect(out.internalErrors).toBe(0);
  });

  it(PVM ? 'PVM LIMIT: a hardware watchpoint is accepted but never fires (the emulated store checks no debug registers); the guest runs to its end' : 'a hardware watchpoint stops after each store with the old and new value', async () => {
    const { gdb: g, tender: t } = await session('watch', ['break gdb_watch_writes', 'continue', 'watch gdb_watched', 'continue', 'continue', 'continue', 'continue']);
    expect(g.out).toMatch(/^Hardware watchpoint 2: gdb_watched$/m); // Z2 accepted: no "Could not insert"
    expect(g.err).not.toContain('Could not insert');
    if (PVM) {
      expect(g.out).not.toContain('Old value');
      expect(g.out).toContain('[Inferior 1 (Remote target) exited normally]');
    } else {
      expect(g.out).toMatch(/Hardware watchpoint 2: gdb_watched\n\nOld value = 0\nNew value = 1\n/);
      expect(g.out).toMatch(/Old value = 1\nNew value = 2\n/);
      expect(g.out).toMatch(/Old value = 2\nNew value = 3\n/);
    }
    expect(t.out).toContain('watched=3\n');
    expect(t.status).toBe(0);
  });
});

/** Runs gdb_target MODE in this process with console + gdb modules, counting exits by kind. */
async function runInProcess(port: number, mode: string): Promise<{ text: string; outcome: unknown; internalErrors: number }> {
  const host = platform();
  let text = '';
  const output = (b: Uint8Array) => void (text += Buffer.from(b).toString());
  const gdbMod = gdbModule.create({ gdb: { port } }, { host: host.host, output });
  const counters = new Float64Array(COUNTERS_LENGTH);
  const vm = createVm({
    kernel: openKernel(KERNEL), memoryBytes: 32n << 20n, args: [mode], modules: [consoleModule.create({}, { host: host.host, output }), gdbMod],
    backend: () => host.openBackend(), host: host.host, warn: (l) => void (text += `warn: ${l}\n`), counters,
  });
  try {
    const outcome = vm.run();
    return { text, outcome, internalErrors: counters[EXIT_KINDS.indexOf('internalError')] ?? -1 };
  } finally {
    vm.close();
  }
}

describeGdb('gdb: running, interrupting, leaving', () => {
  it('Ctrl-C stops a guest spinning without exits (SIGINT); bt and print show where and how far; continue goes on', async () => {
    const { tender, port } = await debuggee('spin');
    const g = gdb(port, ['continue', 'bt', 'print gdb_spin_count > 0', 'set var gdb_spin_flag = 7', 'continue']);
    await tender.waitFor(/^spinning$/m);
    await sleep(200);
    g.child.kill('SIGINT');
    const [gd, td] = await Promise.all([g.finish(), tender.finish()]);
    expect(gd.out).toMatch(/Program received signal SIGINT, Interrupt\.\n/);
    expect(gd.out).toMatch(/^#0 {2}(0x[0-9a-f]+ in )?gdb_spin_loop \(\) at \S+gdb_target\.c:\d+\n#1 {2}0x[0-9a-f]+ in guest_main /m);
    expect(gd.out).toMatch(/^\$1 = 1$/m);
    expect(gd.out).toContain('[Inferior 1 (Remote target) exited normally]');
    expect(td.out).toContain('spun flag=7\n');
    expect(td.status).toBe(0);
  });

  it('Ctrl-C stops a guest sleeping in POLL; it goes on polling afterwards', async () => {
    const { tender, port } = await debuggee('poll');
    const g = gdb(port, ['continue', 'bt', 'set var gdb_spin_flag = 1', 'continue']);
    await tender.waitFor(/^polling$/m);
    await sleep(300);
    g.child.kill('SIGINT');
    const [gd, td] = await Promise.all([g.finish(), tender.finish()]);
    expect(gd.out).toMatch(/Program received signal SIGINT, Interrupt\.\n/);
    // The runtime (hvt_poll) has no debug information: gdb shows where, not how it got there.
    expect(gd.out).toMatch(/^#0 {2}0x[0-9a-f]+ in hvt_poll \(\)$/m);
    expect(td.out).toContain('polled flag=1\n');
    expect(td.status).toBe(0);
  });

  it('the sandbox stays on: with gdb attached and the guest stopped at a breakpoint, every thread shows Seccomp: 2 and NoNewPrivs: 1; no WARNING', async () => {
    const { tender, port } = await debuggee('calls');
    const g = gdb(port, ['break gdb_leaf', 'continue', 'shell sleep 2', 'print gdb_counter', 'continue']);
    await g.waitFor(/^Breakpoint 1, gdb_leaf/m);
    const pid = tender.child.pid as number;
    const tasks = readdirSync(`/proc/${pid}/task`);
    expect(tasks.length).toBeGreaterThan(2); // the vCPU's thread, the socket thread, V8's and libuv's
    for (const t of tasks) {
      const status = readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
      expect(/^Seccomp:\s+(\d+)$/m.exec(status)?.[1], `thread ${t}`).toBe('2');
      expect(/^NoNewPrivs:\s+(\d+)$/m.exec(status)?.[1], `thread ${t}`).toBe('1');
    }
    const [gd, td] = await Promise.all([g.finish(), tender.finish()]);
    expect(gd.out).toMatch(/^\$1 = 0$/m);
    expect(gd.out).toContain('[Inferior 1 (Remote target) exited normally]');
    expect(td).toMatchObject({ status: 0, signal: null, err: '' });
  });

  it('detach takes the breakpoints out and lets the guest run to its end', async () => {
    const { gdb: g, tender: t } = await session('calls', ['break gdb_middle', 'break gdb_leaf', 'continue', 'detach']);
    expect(g.out).toMatch(/^Breakpoint 1, gdb_middle \(x=3\)/m);
    expect(g.out).toContain('[Inferior 1 (Remote target) detached]');
    expect(g.out).not.toMatch(/Breakpoint 2, gdb_leaf/);
    expect(t.out).toMatch(/Connection from debugger at 127\.0\.0\.1\nDebugger detached\nouter=28 value=1 counter=1\n/);
    expect(t.status).toBe(0);
  });

  it('kill ends the run: one line, status 1, the guest goes no further', async () => {
    const { gdb: g, tender: t } = await session('calls', ['break gdb_leaf', 'continue', 'kill']);
    expect(g.out).toContain('[Inferior 1 (Remote target) killed]');
    expect(t.err.split('\n').filter((l) => !l.includes('WARNING') && l !== '')).toEqual([`${P}GDB: the debugger killed the guest`]);
    expect(t.out).not.toContain('outer=');
    expect(t.status).toBe(1);
  });

  it('a connection that drops while the guest is stopped ends the run with §16.8\'s message', async () => {
    const { tender, port } = await debuggee('calls');
    const g = gdb(port, ['break gdb_leaf', 'continue', 'shell sleep 30']);
    await g.waitFor(/^Breakpoint 1, gdb_leaf/m);
    g.child.kill('SIGKILL');
    const t = await tender.finish();
    expect(t.err).toMatch(new RegExp(`^${P}GDB: Exiting as we could not receive the next command from the debugger\\.$`, 'm'));
    expect(t.out).not.toContain('outer=');
    expect(t.status).toBe(1);
  });

  it('a connection that drops while the guest runs ends the run too (a spinning guest is interrupted for it)', async () => {
    const { tender, port } = await debuggee('spin');
    const g = gdb(port, ['continue']);
    await tender.waitFor(/^spinning$/m);
    g.child.kill('SIGKILL');
    const t = await tender.finish();
    expect(t.err).toMatch(new RegExp(`^${P}GDB: Exiting as we could not receive the next command from the debugger\\.$`, 'm'));
    expect(t.status).toBe(1);
  });

  it('a second connection is refused while one is attached', async () => {
    const { tender, port } = await debuggee('calls');
    const g = gdb(port, ['shell sleep 1', 'continue']);
    await tender.waitFor(/^Connection from debugger at 127\.0\.0\.1$/m);
    const second = await new Promise<string>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.on('connect', () => resolve('connected'));
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    expect(second).toBe('ECONNREFUSED');
    const [gd, td] = await Promise.all([g.finish(), tender.finish()]);
    expect(gd.out).toContain('exited normally');
    expect(td.status).toBe(0);
  });

  it('SIGTERM ends the run while it waits for a debugger, while gdb holds the guest stopped, and while it runs (gdb hears of it)', async () => {
    const waiting = await debuggee('calls');
    waiting.tender.child.kill('SIGTERM');
    const w = await waiting.tender.finish();
    expect(w.err).toMatch(new RegExp(`^${P}Exiting on signal 15$`, 'm'));
    expect(w.status).toBe(1);

    const { tender, port } = await debuggee('calls');
    const g = gdb(port, ['break gdb_leaf', 'continue', 'shell sleep 30']);
    await g.waitFor(/^Breakpoint 1, gdb_leaf/m);
    tender.child.kill('SIGTERM');
    const t = await tender.finish();
    expect(t.err).toMatch(new RegExp(`^${P}Exiting on signal 15$`, 'm'));
    expect(t.status).toBe(1);
    g.child.kill('SIGKILL');

    const spinning = await debuggee('spin');
    const g2 = gdb(spinning.port, ['continue']);
    await spinning.tender.waitFor(/^spinning$/m);
    spinning.tender.child.kill('SIGTERM');
    const [gd2, t2] = await Promise.all([g2.finish(), spinning.tender.finish()]);
    expect(gd2.out).toContain('Program terminated with signal SIGTERM, Terminated.');
    expect(t2.err).toMatch(new RegExp(`^${P}Exiting on signal 15$`, 'm'));
    expect(t2.status).toBe(1);
  });
});

/** A raw protocol client: bytes in, bytes out. */
class Raw {
  text = '';
  private constructor(readonly s: Socket) {
    s.on('data', (d: Buffer) => void (this.text += d.toString('latin1')));
  }
  static open(port: number): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new Raw(s)));
      s.on('error', reject);
    });
  }
  send(s: string): void {
    this.s.write(Buffer.from(s, 'latin1'));
  }
  packet(p: string): void {
    this.send(`$${p}#${checksum(p)}`);
  }
  /** Waits for a pattern in what came since the last call, then forgets it. */
  async expect(re: RegExp): Promise<RegExpExecArray> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const m = re.exec(this.text);
      if (m) {
        this.text = this.text.slice(m.index + m[0].length);
        return m;
      }
      if (Date.now() > deadline) throw new Error(`no ${re} in ${JSON.stringify(this.text)}`);
      await sleep(10);
    }
  }
}

describeKvm('gdb: hostile debugger input', () => {
  it('garbage, bad checksums, oversized packets, huge lengths, bad addresses and unknown packets are answered; the monitor lives on', async () => {
    const { tender, port } = await debuggee('spin');
    const c = await Raw.open(port);
    c.send('garbage\x00\xff+++---');
    c.send('$g#00');
    await c.expect(/^[^$]*-/); // NAK for the bad checksum
    c.send(`$${'m'.repeat(0x5000)}#00`);
    await c.expect(/^[^$]*-/); // NAK for the oversized packet
    c.send('$g#zz');
    await c.expect(/^[^$]*-/);
    c.packet('?');
    await c.expect(/\$T05thread:1;#[0-9a-f]{2}/);
    c.send('+');
    c.packet('g');
    const g = await c.expect(/\$([0-9a-f]+)#[0-9a-f]{2}/);
    expect(g[1]).toHaveLength(2 * 552);
    c.send('+');
    c.packet('m0,ffffffffffffffff');
    const big = await c.expect(/\$([0-9a-fE]+)#[0-9a-f]{2}/);
    expect((big[1] ?? '').length).toBeLessThanOrEqual(0x4000);
    for (const [p, want] of [
      ['mffffffffffffffff,10', 'E01'], ['m40000000,1', 'E01'], ['M40000000,1:00', 'E01'], ['mzz', 'E01'], ['Z0,zz,1', 'E01'],
      ['P99=00', 'E01'], ['qNoSuchThing', ''], ['vNoSuchThing', ''], ['\xff\xfe', ''],
    ] as const) {
      c.packet(p);
      const r = await c.expect(/\$([^#]*)#[0-9a-f]{2}/);
      expect(`${JSON.stringify(p)} → ${r[1]}`).toBe(`${JSON.stringify(p)} → ${want}`);
      c.send('+');
    }
    c.packet('qC');
    await c.expect(/\$QC1#[0-9a-f]{2}/);
    c.send('-'); // a NAK of the last reply: sent again
    await c.expect(/^\$QC1#[0-9a-f]{2}/);
    c.send('+');
    c.send('\x03'); // Ctrl-C while stopped: ignored, the next c runs the guest
    c.packet('c');
    await tender.waitFor(/^spinning$/m);
    await sleep(100);
    expect(c.text).toBe('+'); // the ack of c, and no stop: still running
    c.send('\x03');
    await c.expect(/\$T02thread:1;#[0-9a-f]{2}/); // that one stops it
    c.send('+');
    c.packet('k');
    const t = await tender.finish();
    expect(t.err).toContain(`${P}Failed checksum from GDB. My count = 0x67, sent=0x0. buf=g\n`);
    expect(t.err).toMatch(new RegExp(`^${P}GDB: the debugger killed the guest$`, 'm'));
    expect(t.status).toBe(1);
    c.s.destroy();
  });

  it('QStartNoAckMode: no more acknowledgements either way', async () => {
    const { tender, port } = await debuggee('calls');
    const c = await Raw.open(port);
    c.packet('QStartNoAckMode');
    await c.expect(/^\+\$OK#9a/);
    c.send('+');
    c.packet('qC');
    const r = await c.expect(/^(.*?)\$QC1#[0-9a-f]{2}/);
    expect(r[1]).toBe(''); // no '+' before it
    c.packet('D');
    await c.expect(/^\$OK#9a/);
    const t = await tender.finish();
    expect(t.out).toContain('Debugger detached\nouter=28');
    expect(t.status).toBe(0);
  });
});

describeGdb('gdb: options', () => {
  it('--gdb-port=N listens on that port; a busy port is one line, status 1; malformed values are refused before KVM', async () => {
    const port = await freePort();
    const { tender } = await debuggee('calls', [`--gdb-port=${port}`, '--gdb-host=127.0.0.1']);
    expect(tender.out).toContain(`target remote localhost:${port}" KERNEL`);
    const busy = new Proc(BIN, ['--gdb', `--gdb-port=${port}`, KERNEL, 'calls']);
    const b = await busy.finish();
    expect(b.err).toMatch(new RegExp(`^${P}GDB: Could not listen on 127\\.0\\.0\\.1:${port}: Address already in use$`, 'm'));
    expect(b.status).toBe(1);
    const g = gdb(port, ['continue']);
    await Promise.all([g.finish(), tender.finish()]);
    for (const [arg, message] of [['--gdb-port=65536', 'Malformed argument to --gdb-port'], ['--gdb-host=no such host', 'Malformed argument to --gdb-host']]) {
      const r = spawnSync(BIN, ['--gdb', arg as string, KERNEL], { encoding: 'utf8' });
      expect(r.stderr.split('\n')[0]).toBe(`${P}${message}`);
      expect(r.status).toBe(1);
    }
  });

  it('the library option: startUnikernel({ gdb: { port } }) resolves once a debugger is attached', async () => {
    const port = await freePort();
    let text = '';
    let resolved = false;
    // `gdb` is checked by the module's LibraryOption; UnikernelOptions does not list it yet (see the report).
    const options = { kernel: KERNEL, memoryMiB: 32, args: ['calls'], gdb: { port }, console: (t: string) => void (text += t) };
    const started = startUnikernel(options as Parameters<typeof startUnikernel>[0]).then((vm) => {
      resolved = true;
      return vm;
    });
    for (let i = 0; i < 200 && !text.includes('Waiting for a debugger'); i++) await sleep(25);
    expect(text).toBe(`Waiting for a debugger. Connect to it like this:\n\tgdb --ex="target remote localhost:${port}" KERNEL\n`);
    await sleep(200);
    expect(resolved).toBe(false);
    const g = gdb(port, ['break gdb_leaf', 'continue', 'bt 1', 'continue']);
    const vm = await started;
    const [gd, exit] = await Promise.all([g.finish(), vm.exited]);
    expect(gd.out).toMatch(/^Breakpoint 1, gdb_leaf \(x=4\)/m);
    expect(gd.out).toContain('exited normally');
    expect(text).toContain('Connection from debugger at 127.0.0.1\nouter=28 value=1 counter=1\n');
    expect(exit).toEqual({ status: 0, reason: 'halt' });
  });

  it('the library\'s stop() ends a run that gdb holds stopped', async () => {
    const port = await freePort();
    let text = '';
    const options = { kernel: KERNEL, memoryMiB: 32, args: ['calls'], gdb: { port }, console: (t: string) => void (text += t) };
    const started = startUnikernel(options as Parameters<typeof startUnikernel>[0]);
    for (let i = 0; i < 200 && !text.includes('Waiting for a debugger'); i++) await sleep(25);
    const g = gdb(port, ['break gdb_leaf', 'continue', 'shell sleep 30']);
    const vm = await started;
    await g.waitFor(/^Breakpoint 1, gdb_leaf/m);
    vm.stop();
    expect(await vm.exited).toEqual({ status: 1, reason: 'stopped' });
    expect(text).not.toContain('outer=');
    g.child.kill('SIGKILL');
  });
});
