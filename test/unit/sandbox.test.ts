// The sandbox without KVM and without processes (issue #12): the policy
// table, the seccomp program built from it (run here by the BPF evaluator,
// with the kernel's checker rules), the order in which the Linux sandbox
// makes its calls, the skip decisions and their warnings, and when
// createVm's run() calls the sandbox step.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Backend, Sandbox, Vcpu, VcpuExit } from '../../monitor/backend/backend.js';
import { HostError } from '../../monitor/errors.js';
import { kernelFromBytes } from '../../monitor/kernel/kernel.js';
import type { Module } from '../../monitor/module.js';
import { Assembler, decode, encode, evaluate, type Insn, RET } from '../../monitor/sandbox/bpf.js';
import { buildFilter, buildProgram } from '../../monitor/sandbox/filter.js';
import { READ_IMPLIES_EXEC, READ_IMPLIES_EXEC_MESSAGE, seccompSandbox, type SeccompCalls } from '../../monitor/sandbox/linux.js';
import {
  allowedCount, AUDIT_ARCH_X86_64, CLONE_THREAD, F_GETFL, F_SETFD, F_SETFL, FAIL, FORBIDDEN, IOCTL, POLICY, type Rule, type Scope,
} from '../../monitor/sandbox/policy.js';
import { NO_SANDBOX_WARNING, sandboxStep, UNCONFINED_WARNINGS } from '../../monitor/sandbox/step.js';
import { createVm } from '../../monitor/vm/compose.js';
import { HALT_STRUCT_GPA, kernel } from '../helpers/elf-builder.js';
import { NO_PORT_EVENTS } from '../helpers/no-port-events.js';

const PID = 4242;
const SCOPES: Scope[] = ['process', 'thread'];
const program = (scope: Scope, withDebugger = false) => buildProgram(scope, { pid: PID, debugger: withDebugger });
const RULES = POLICY as Record<string, Rule>;

/** The filter's verdict on one call: 'allow', 'kill', or 'errno N'. */
function verdict(scope: Scope, nr: number, args: (number | bigint)[] = [], arch = AUDIT_ARCH_X86_64, withDebugger = false): string {
  const r = evaluate(program(scope, withDebugger), { nr, arch, args: args.map((a) => BigInt(a)) });
  if (r === RET.ALLOW) return 'allow';
  if (r === RET.KILL_PROCESS) return 'kill';
  if ((r & 0xffff0000) === RET.ERRNO) return `errno ${r & 0xffff}`;
  return `0x${r.toString(16)}`;
}

/** Arguments that satisfy a rule's check (for the "every allowed call is allowed" test). */
function goodArgs(rule: Rule, scope: Scope): bigint[] {
  const a = [0n, 0n, 0n, 0n, 0n, 0n];
  const c = rule.args;
  if (c?.kind === 'oneOf') a[c.arg] = BigInt(c.values.find((v) => !v.scopes || v.scopes.includes(scope))?.value ?? 0);
  if (c?.kind === 'flags') a[c.arg] = BigInt(c.set);
  if (c?.kind === 'ownPid') a[c.arg] = BigInt(PID);
  return a;
}

describe('the policy table', () => {
  it('numbers every call as the kernel header does', () => {
    const header = '/usr/include/x86_64-linux-gnu/asm/unistd_64.h';
    if (!existsSync(header)) return; // the check needs the kernel headers (linux-libc-dev)
    const nr = new Map([...readFileSync(header, 'utf8').matchAll(/^#define __NR_(\w+) (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
    for (const [name, rule] of Object.entries(RULES)) expect(rule.nr, name).toBe(nr.get(name));
    for (const [name, f] of Object.entries(FAIL)) expect(f.nr, name).toBe(nr.get(name));
    for (const [name, n] of Object.entries(FORBIDDEN)) expect(n, name).toBe(nr.get(name));
  });

  it('gives every call a reason and at least one scope; no call is both allowed and failed', () => {
    for (const [name, rule] of Object.entries(RULES)) {
      expect(rule.why.length, name).toBeGreaterThan(20);
      expect(rule.scopes.length, name).toBeGreaterThan(0);
      expect(name in FAIL, name).toBe(false);
    }
  });

  it('allows none of the forbidden calls unconditionally; clone only with CLONE_THREAD and only in the CLI', () => {
    for (const name of Object.keys(FORBIDDEN)) {
      const rule = RULES[name];
      if (name === 'clone') {
        expect(rule?.scopes).toEqual(['process']);
        expect(rule?.args).toMatchObject({ kind: 'flags', set: CLONE_THREAD });
      } else {
        expect(rule, name).toBeUndefined();
      }
    }
  });

  it('has the sizes the report quotes (CLI 33 calls, library thread 30; with gdb attached CLI 34, thread 30)', () => {
    expect(allowedCount('process')).toBe(33);
    expect(allowedCount('thread')).toBe(30);
    expect(allowedCount('process', true)).toBe(34);
    expect(allowedCount('thread', true)).toBe(30);
  });
});

describe('the seccomp program', () => {
  it.each(SCOPES)('%s: fits the kernel (≤ 4096 instructions, every path returns) and encodes 8 bytes each', (scope) => {
    const p = program(scope);
    expect(p.length).toBeLessThan(200);
    const bytes = buildFilter(scope, { pid: PID });
    expect(bytes.length).toBe(8 * p.length);
    expect(decode(bytes)).toEqual(p);
    // Every number 0..511 and a few beyond: the evaluator throws on a path without a return.
    for (let nr = 0; nr < 512; nr++) verdict(scope, nr);
  });

  it.each(SCOPES)('%s: another architecture and the x32 ABI are killed', (scope) => {
    expect(verdict(scope, 1, [], 0x40000003 /* AUDIT_ARCH_I386 */)).toBe('kill');
    expect(verdict(scope, 0x40000000 | 1)).toBe('kill');
    expect(verdict(scope, 0x40000000 | 16, [0, IOCTL.KVM_RUN])).toBe('kill');
  });

  it.each(SCOPES)('%s: allows every call of its scope, with arguments that pass its check (a debugger\'s calls only with one attached)', (scope) => {
    for (const [name, rule] of Object.entries(RULES)) {
      const inScope = rule.scopes.includes(scope);
      expect(verdict(scope, rule.nr, goodArgs(rule, scope)), name).toBe(inScope && rule.debugger !== true ? 'allow' : 'kill');
      expect(verdict(scope, rule.nr, goodArgs(rule, scope), AUDIT_ARCH_X86_64, true), `${name} with gdb`).toBe(inScope ? 'allow' : 'kill');
    }
  });

  it.each(SCOPES)('%s: with gdb attached, the register and guest-debug ioctls too; nothing else is widened', (scope) => {
    // A library worker's thread builds VMs once confined: it sets registers anyway (see the build test below).
    const buildSets = scope === 'thread' ? [IOCTL.KVM_SET_REGS, IOCTL.KVM_SET_SREGS] : [];
    const debugIoctls = [IOCTL.KVM_SET_REGS, IOCTL.KVM_GET_SREGS, IOCTL.KVM_SET_SREGS, IOCTL.KVM_GET_FPU, IOCTL.KVM_SET_GUEST_DEBUG];
    for (const req of debugIoctls) {
      expect(verdict(scope, 16, [5, req]), `${req.toString(16)} without gdb`).toBe(buildSets.includes(req) ? 'allow' : 'kill');
      expect(verdict(scope, 16, [5, req], AUDIT_ARCH_X86_64, true), `${req.toString(16)} with gdb`).toBe('allow');
    }
    const build = [0xae01 /* KVM_CREATE_VM */, 0xae41 /* KVM_CREATE_VCPU */, 0x4020ae46 /* KVM_SET_USER_MEMORY_REGION */];
    for (const req of [0x5412 /* TIOCSTI */, ...build]) {
      expect(verdict(scope, 16, [5, req], AUDIT_ARCH_X86_64, true), req.toString(16)).toBe(scope === 'thread' && build.includes(req) ? 'allow' : 'kill');
    }
    for (const [name, nr] of Object.entries(FORBIDDEN)) {
      const expected = name === 'open' || name === 'openat' || name === 'openat2' ? 'errno 1' : 'kill';
      expect(verdict(scope, nr, name === 'clone' ? [17] : [], AUDIT_ARCH_X86_64, true), name).toBe(expected);
    }
    expect(verdict(scope, 48 /* shutdown */, [], AUDIT_ARCH_X86_64, true)).toBe(scope === 'process' ? 'allow' : 'kill');
  });

  it.each(SCOPES)('%s: every forbidden call is impossible: killed, open* fail with EPERM', (scope) => {
    for (const [name, nr] of Object.entries(FORBIDDEN)) {
      const expected = name === 'open' || name === 'openat' || name === 'openat2' ? 'errno 1' : 'kill';
      // clone: a process (SIGCHLD only), as fork does.
      expect(verdict(scope, nr, name === 'clone' ? [17] : []), name).toBe(expected);
    }
    expect(verdict(scope, FAIL.clone3.nr)).toBe('errno 38');
  });

  it.each(SCOPES)('%s: anything else is killed (rt_sigaction, kill, prctl, seccomp, socketpair, sendto, memfd_create, userfaultfd, io_uring_setup)', (scope) => {
    for (const nr of [13, 62, 157, 317, 53, 44, 319, 323, 425, 435 + 1000]) expect(verdict(scope, nr), String(nr)).toBe('kill');
  });

  it.each(SCOPES)('%s: ioctl: KVM_RUN and KVM_GET_REGS (and, on a library thread, a build\'s) only (the low 32 bits are the request the kernel reads)', (scope) => {
    expect(verdict(scope, 16, [5, IOCTL.KVM_RUN])).toBe('allow');
    expect(verdict(scope, 16, [5, 0xffffffff00000000n | BigInt(IOCTL.KVM_RUN)])).toBe('allow');
    expect(verdict(scope, 16, [5, IOCTL.KVM_GET_REGS])).toBe('allow');
    for (const req of [0x5412 /* TIOCSTI */, 0x400454ca /* TUNSETIFF */, 0x5421 /* FIONBIO */, 0x4040ae79 /* KVM_IOEVENTFD */, 0xae60 /* KVM_CREATE_IRQCHIP */, 0]) {
      expect(verdict(scope, 16, [5, req]), req.toString(16)).toBe('kill');
    }
    // The ioctls of a build on a confined library worker (measured: scripts/syscalls.mjs --library).
    const build = [IOCTL.KVM_CREATE_VM, IOCTL.KVM_CHECK_EXTENSION, IOCTL.KVM_SET_USER_MEMORY_REGION, IOCTL.KVM_CREATE_VCPU,
      IOCTL.KVM_GET_SUPPORTED_CPUID, IOCTL.KVM_SET_CPUID2, IOCTL.KVM_SET_SREGS, IOCTL.KVM_SET_REGS, IOCTL.KVM_GET_TSC_KHZ];
    expect(build.map((r) => r.toString(16))).toEqual(['ae01', 'ae03', '4020ae46', 'ae41', 'c008ae05', '4008ae90', '4138ae84', '4090ae82', 'aea3']);
    for (const req of build) expect(verdict(scope, 16, [5, req]), req.toString(16)).toBe(scope === 'thread' ? 'allow' : 'kill');
    expect(verdict(scope, 16, [1, IOCTL.TCSETS])).toBe(scope === 'process' ? 'allow' : 'kill');
    expect(verdict(scope, 16, [1, IOCTL.TCGETS])).toBe(scope === 'process' ? 'allow' : 'kill');
  });

  it('CLI: clone makes threads only, without namespaces; fcntl only F_GETFL/F_SETFL', () => {
    const CLONE_VM = 0x100;
    const CLONE_SIGHAND = 0x800;
    const thread = 0x3d0f00; // what glibc's pthread_create passes
    expect(thread & CLONE_THREAD).toBe(CLONE_THREAD);
    expect(verdict('process', 56, [thread])).toBe('allow');
    expect(verdict('process', 56, [17])).toBe('kill');
    expect(verdict('process', 56, [CLONE_VM | 0x4000 /* CLONE_VFORK */ | 17])).toBe('kill');
    for (const ns of [0x20000, 0x40000000, 0x10000000, 0x20000000, 0x80, 0x02000000]) {
      expect(verdict('process', 56, [CLONE_THREAD | CLONE_SIGHAND | CLONE_VM | ns]), ns.toString(16)).toBe('kill');
    }
    expect(verdict('thread', 56, [thread])).toBe('kill');
    expect(verdict('process', 72, [1, F_GETFL])).toBe('allow');
    expect(verdict('process', 72, [1, F_SETFL])).toBe('allow');
    for (const cmd of [0 /* F_DUPFD */, 8 /* F_SETOWN */, 6 /* F_SETLK */, 1031 /* F_SETPIPE_SZ */]) expect(verdict('process', 72, [1, cmd])).toBe('kill');
  });

  it.each(SCOPES)('%s: tgkill only to this process, whatever the high bits', (scope) => {
    expect(verdict(scope, 234, [PID, 77, 37])).toBe('allow');
    expect(verdict(scope, 234, [PID + 1, 77, 37])).toBe('kill');
    expect(verdict(scope, 234, [1, 1, 9])).toBe('kill');
    expect(verdict(scope, 62 /* kill */, [PID, 9])).toBe('kill');
  });

  it('the CLI allows what Node and glibc need at exit and for threads; a VM thread does not', () => {
    for (const name of ['exit_group', 'fstat', 'statx', 'clone', 'set_robust_list', 'rseq']) {
      expect(RULES[name]?.scopes, name).toEqual(['process']);
    }
  });

  it('a library thread builds VMs: eventfd2, epoll_create1/ctl, lseek and fcntl F_SETFD, and only the CLI F_GETFL/F_SETFL', () => {
    for (const name of ['eventfd2', 'epoll_create1', 'lseek']) expect(RULES[name]?.scopes, name).toEqual(['thread']);
    expect(RULES['epoll_ctl']?.scopes).toEqual(['process', 'thread']);
    expect(verdict('thread', 72, [5, F_SETFD])).toBe('allow');
    expect(verdict('process', 72, [5, F_SETFD])).toBe('kill');
    for (const cmd of [F_GETFL, F_SETFL, 0 /* F_DUPFD */, 1030 /* F_DUPFD_CLOEXEC */, 8 /* F_SETOWN */]) {
      expect(verdict('thread', 72, [5, cmd]), String(cmd)).toBe('kill');
    }
  });
});

describe('the BPF assembler and evaluator', () => {
  it('resolves labels forward and refuses jumps over 255 instructions or to nowhere', () => {
    const a = new Assembler().ld(0).jump('jeq', 1, 'yes', 0).ret(RET.KILL_PROCESS).label('yes').ret(RET.ALLOW);
    const p = a.assemble();
    expect(evaluate(p, { nr: 1, arch: 0 })).toBe(RET.ALLOW);
    expect(evaluate(p, { nr: 2, arch: 0 })).toBe(RET.KILL_PROCESS);
    const far = new Assembler().ld(0).jump('jeq', 1, 'end', 0);
    for (let i = 0; i < 256; i++) far.ret(0);
    far.label('end').ret(RET.ALLOW);
    expect(() => far.assemble()).toThrow('0..255 only');
    expect(() => new Assembler().jump('jeq', 1, 'nowhere', 0).assemble()).toThrow('is not placed');
  });

  it('refuses what the kernel would: no return at the end, a jump past it, a load outside seccomp_data', () => {
    const ld = (k: number): Insn => ({ code: 0x20, jt: 0, jf: 0, k });
    expect(() => evaluate([ld(0)], { nr: 0, arch: 0 })).toThrow('without a return');
    expect(() => evaluate([ld(0), { code: 0x15, jt: 5, jf: 5, k: 0 }], { nr: 0, arch: 0 })).toThrow('past the end');
    expect(() => evaluate([ld(64), { code: 0x06, jt: 0, jf: 0, k: 0 }], { nr: 0, arch: 0 })).toThrow('outside');
    expect(encode([{ code: 0x06, jt: 1, jf: 2, k: RET.ALLOW }])).toEqual(new Uint8Array([6, 0, 1, 2, 0, 0, 0xff, 0x7f]));
  });
});

/** Fake native calls recording what the sandbox does. */
function fakeCalls(persona = 0, fail?: 'nnp' | 'seccomp'): SeccompCalls & { log: string[] } {
  const log: string[] = [];
  return {
    log,
    personality: () => (log.push('personality'), persona),
    setNoNewPrivs() {
      log.push('nnp');
      if (fail === 'nnp') throw Object.assign(new Error('prctl(PR_SET_NO_NEW_PRIVS): Invalid argument'), { errno: 22 });
    },
    seccompFilter(prog, all) {
      log.push(`seccomp ${all ? 'tsync' : 'thread'} ${prog.length / 8}`);
      if (fail === 'seccomp') throw Object.assign(new Error('seccomp: Invalid argument'), { errno: 22 });
    },
  };
}

describe('the Linux sandbox (order of its calls)', () => {
  it.each([['process', 'tsync'], ['thread', 'thread']] as const)('%s: personality, no-new-privileges, then the filter (%s); once', (scope, flag) => {
    const calls = fakeCalls();
    const s = seccompSandbox(calls);
    s.enter(scope);
    s.enter(scope);
    expect(calls.log).toEqual(['personality', 'nnp', `seccomp ${flag} ${program(scope).length}`]);
  });

  it('refuses READ_IMPLIES_EXEC with the reference message, before anything is restricted', () => {
    const calls = fakeCalls(0x0400000 | 0x0008);
    expect(READ_IMPLIES_EXEC).toBe(0x0400000);
    expect(() => seccompSandbox(calls).enter('process')).toThrow(new HostError(READ_IMPLIES_EXEC_MESSAGE));
    expect(READ_IMPLIES_EXEC_MESSAGE).toBe('Cowardly refusing to run with a sys_personality of READ_IMPLIES_EXEC. Please report a bug, with details of your Linux distribution and GCC version');
    expect(calls.log).toEqual(['personality']);
  });

  it('turns a failed call into one HostError line naming it', () => {
    for (const fail of ['nnp', 'seccomp'] as const) {
      const e = (() => {
        try {
          seccompSandbox(fakeCalls(0, fail)).enter('thread');
        } catch (err) {
          return err;
        }
        return null;
      })();
      expect(e).toBeInstanceOf(HostError);
      expect((e as Error).message).toMatch(/^Could not install the sandbox: (prctl\(PR_SET_NO_NEW_PRIVS\)|seccomp): Invalid argument$/);
    }
  });

  it('a thread confined to itself cannot be widened to the process; the process scope covers a later thread request', () => {
    const s = seccompSandbox(fakeCalls());
    s.enter('thread');
    expect(() => s.enter('process')).toThrow("already confined to scope 'thread'");
    const p = seccompSandbox(fakeCalls());
    p.enter('process');
    expect(() => p.enter('thread')).not.toThrow();
  });
});

describe('the sandbox step (skips and warnings)', () => {
  const run = (o: { skip?: 'debug-program' | 'no-sandbox'; modules?: Module[] }) => {
    const entered: string[] = [];
    const warnings: string[] = [];
    const sandbox: Sandbox = { enter: (scope, needs) => void entered.push(needs?.debugger ? `${scope}+debugger` : scope) };
    sandboxStep({ sandbox, scope: 'process', skip: o.skip, modules: o.modules ?? [], warn: (w) => warnings.push(w) })();
    return { entered, warnings };
  };
  const mod = (need?: 'skip' | 'debugger'): Module => ({ name: 'm', setup() {}, ...(need ? { sandbox: () => need } : {}) });

  it('enters the sandbox by default (modules that do not ask, or answer undefined)', () => {
    expect(run({ modules: [mod(), { name: 'n', setup() {}, sandbox: () => undefined }] })).toEqual({ entered: ['process'], warnings: [] });
  });

  it("the debug program name and a module's 'skip' print the reference's two lines and confine nothing", () => {
    expect(UNCONFINED_WARNINGS).toEqual([
      'WARNING: Tender is configured with HVT_DROP_PRIVILEGES=0. Not dropping any privileges.',
      'WARNING: This is not recommended for production use.',
    ]);
    expect(run({ skip: 'debug-program' })).toEqual({ entered: [], warnings: [...UNCONFINED_WARNINGS] });
    expect(run({ modules: [mod(), mod('skip')] })).toEqual({ entered: [], warnings: [...UNCONFINED_WARNINGS] });
  });

  it("a module's 'debugger' (gdb attached) confines with the debugger's additions, and no warning; 'skip' still wins", () => {
    expect(run({ modules: [mod(), mod('debugger')] })).toEqual({ entered: ['process+debugger'], warnings: [] });
    expect(run({ modules: [mod('debugger'), mod('skip')] })).toEqual({ entered: [], warnings: [...UNCONFINED_WARNINGS] });
    expect(run({ skip: 'debug-program', modules: [mod('debugger')] })).toEqual({ entered: [], warnings: [...UNCONFINED_WARNINGS] });
  });

  it('--no-sandbox prints one line', () => {
    expect(run({ skip: 'no-sandbox', modules: [mod('skip')] })).toEqual({ entered: [], warnings: [NO_SANDBOX_WARNING] });
  });
});

describe('createVm: the sandbox step runs once, after set-up, before the first entry into the guest', () => {
  it('after every module setup and boot info, before vcpu.run; not again on a second run()', () => {
    const log: string[] = [];
    const HALT: VcpuExit = { kind: 'io', out: true, size: 4, port: 0x508, value: HALT_STRUCT_GPA };
    const exits = [HALT, HALT];
    const backend: Backend = {
      createMachine: (size) => ({
        memory: new ArrayBuffer(size),
        share: () => new SharedArrayBuffer(size),
        portEvents: NO_PORT_EVENTS,
        protect() {},
        close() {},
        createVcpu: (): Vcpu => ({
          handle: { backend: 'fake', token: 1 },
          control: { ending: () => false, waitWritable: () => true },
          configure: () => 1e9,
          run: () => (log.push('run'), exits.shift() ?? { kind: 'interrupted', signal: 0 }),
          createWaitSet: () => ({ add() {}, wait: () => [], close() {} }),
          describeFatal: (k) => k,
          kick() {},
          close() {},
        }),
      }),
      close() {},
    };
    const vm = createVm({
      kernel: kernelFromBytes(kernel(), 'fake.hvt'),
      memoryBytes: 4n << 20n,
      args: [],
      modules: [{ name: 'm', setup: () => void log.push('setup') }],
      backend,
      host: { realtimeInto: (b) => b.fill(0) },
      warn: () => {},
      sandbox: () => void log.push('sandbox'),
    });
    expect(log).toEqual(['setup']);
    expect(vm.run()).toEqual({ kind: 'halt', status: 0 });
    expect(vm.run()).toEqual({ kind: 'halt', status: 0 });
    expect(log).toEqual(['setup', 'sandbox', 'run', 'run']);
    vm.close();
  });
});
