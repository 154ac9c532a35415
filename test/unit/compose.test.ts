// createVm over a fake backend (issue #10): no KVM, no processes. Nothing of
// the hypervisor is built before every user input is validated, every host
// resource taken is given back once whichever step fails, and a composed VM
// runs hypercalls through modules to the guest's HALT.
import { describe, expect, it } from 'vitest';
import type { Backend, Machine, Vcpu, VcpuExit, WaitSet } from '../../monitor/backend/backend.js';
import type { HostIo } from '../../monitor/backend/host.js';
import { ConfigError, GuestError, HostError, ModuleError } from '../../monitor/errors.js';
import { kernelFromBytes } from '../../monitor/kernel/kernel.js';
import type { Module } from '../../monitor/module.js';
import { consoleModule } from '../../modules/console/index.js';
import { createVm, type VmConfig } from '../../monitor/vm/compose.js';
import { HALT_STRUCT_GPA, kernel, MFT_BLOCK_BASIC } from '../helpers/elf-builder.js';
import { NO_PORT_EVENTS } from '../helpers/no-port-events.js';

/** What the fake host handed out and took back, in order. */
type Log = string[];

const HALT: VcpuExit = { kind: 'io', out: true, size: 4, port: 0x508, value: HALT_STRUCT_GPA };

/** Which step of building should fail, with what. */
type FailAt = 'openBackend' | 'createMachine' | 'protect' | 'createVcpu' | 'configure' | 'createWaitSet' | 'addPollFd' | 'none';

function fakeBackend(log: Log, failAt: FailAt, exits: VcpuExit[] = [HALT]): () => Backend {
  const fail = (step: FailAt) => {
    if (failAt === step) throw new HostError(`fake: ${step} failed`);
  };
  return () => {
    fail('openBackend');
    log.push('open backend');
    return {
      createMachine(allocSize) {
        fail('createMachine');
        log.push('open machine');
        const machine: Machine = {
          memory: new ArrayBuffer(allocSize),
          share: () => new SharedArrayBuffer(allocSize),
          portEvents: NO_PORT_EVENTS,
          protect: () => fail('protect'),
          createVcpu() {
            fail('createVcpu');
            log.push('open vcpu');
            const vcpu: Vcpu = {
              handle: { backend: 'fake', token: 1 },
              control: { ending: () => false, waitWritable: () => true },
              configure() {
                fail('configure');
                return 1e9;
              },
              run: () => exits.shift() ?? { kind: 'interrupted', signal: 0 },
              createWaitSet(): WaitSet {
                fail('createWaitSet');
                log.push('open waitset');
                return {
                  add: () => fail('addPollFd'),
                  wait: () => [],
                  close: () => log.push('close waitset'),
                };
              },
              describeFatal: (kind) => `fake: ${kind}`,
              kick: () => {},
              close: () => log.push('close vcpu'),
            };
            return vcpu;
          },
          close: () => log.push('close machine'),
        };
        return machine;
      },
      close: () => log.push('close backend'),
    };
  };
}

/** A module recording its life, optionally adding a POLL descriptor or failing in setup. */
function probe(log: Log, opts: { pollFd?: boolean; failSetup?: boolean; failPrepare?: boolean } = {}): Module {
  return {
    name: 'probe',
    prepare() {
      if (opts.failPrepare) throw new ConfigError('probe: bad device');
      log.push('prepare probe');
    },
    setup(ctx) {
      if (opts.pollFd) ctx.pollFd(99, 1);
      if (opts.failSetup) throw new ModuleError('probe: setup failed');
    },
    close: () => log.push('close probe'),
  };
}

const host: Pick<HostIo, 'realtimeInto'> = { realtimeInto: (b) => b.fill(0) };

function config(log: Log, failAt: FailAt, over: Partial<VmConfig> = {}, image = kernel()): VmConfig {
  const k = kernelFromBytes(image, 'fake.hvt');
  const close = k.close;
  return {
    kernel: { ...k, close: () => (log.push('close kernel'), close()) },
    memoryBytes: 4n << 20n,
    args: [],
    modules: [probe(log)],
    backend: fakeBackend(log, failAt),
    host,
    warn: () => {},
    ...over,
  };
}

/** Every "open X" in the log has exactly one "close X" after it. */
function balanced(log: Log): void {
  for (const what of ['backend', 'machine', 'vcpu', 'waitset']) {
    const opened = log.filter((l) => l === `open ${what}`).length;
    const closed = log.filter((l) => l === `close ${what}`).length;
    expect(closed, `${what} in ${log.join(', ')}`).toBe(opened);
  }
  expect(log.filter((l) => l === 'close probe').length).toBe(1);
}

describe('createVm: validation before anything is built', () => {
  it.each([
    ['memory over 4 GiB', { memoryBytes: 8n << 30n }],
    ['a command line over 8191 characters', { args: ['x'.repeat(8192)] }],
  ] as const)('%s: ConfigError, the backend is never opened', (_what, over) => {
    const log: Log = [];
    expect(() => createVm(config(log, 'none', over))).toThrowError(ConfigError);
    expect(log.some((l) => l.startsWith('open'))).toBe(false);
    balanced(log);
  });

  it('a device the manifest declares but no module attached: ConfigError, nothing built', () => {
    const log: Log = [];
    const image = kernel({ manifest: { devices: [{ name: 'disk', type: MFT_BLOCK_BASIC }] } });
    expect(() => createVm(config(log, 'none', {}, image))).toThrowError(ConfigError);
    expect(log.some((l) => l.startsWith('open'))).toBe(false);
    balanced(log);
  });

  it('a module that refuses its devices: nothing built, modules closed once', () => {
    const log: Log = [];
    expect(() => createVm(config(log, 'none', { modules: [probe(log, { failPrepare: true })] }))).toThrowError(ConfigError);
    expect(log.some((l) => l.startsWith('open'))).toBe(false);
    balanced(log);
  });
});

describe('createVm: every resource given back once, whatever step fails', () => {
  it.each(['openBackend', 'createMachine', 'protect', 'createVcpu', 'configure', 'createWaitSet'] as const)('failing at %s', (step) => {
    const log: Log = [];
    const message = step === 'protect' ? 'fake.hvt: mprotect failed' : `fake: ${step} failed`;
    expect(() => createVm(config(log, step))).toThrowError(new HostError(message));
    balanced(log);
    expect(log).toContain('close kernel');
  });

  it('failing when a module adds its POLL descriptor', () => {
    const log: Log = [];
    expect(() => createVm(config(log, 'addPollFd', { modules: [probe(log, { pollFd: true })] }))).toThrowError(HostError);
    balanced(log);
  });

  it('failing in a module setup', () => {
    const log: Log = [];
    expect(() => createVm(config(log, 'none', { modules: [probe(log, { failSetup: true })] }))).toThrowError(ModuleError);
    balanced(log);
  });

  it('a built VM: the backend handle is closed at once, the rest by close(), once', () => {
    const log: Log = [];
    const vm = createVm(config(log, 'none'));
    expect(log).toEqual(['prepare probe', 'open backend', 'open machine', 'close kernel', 'open vcpu', 'open waitset', 'close backend']);
    vm.close();
    vm.close();
    balanced(log);
  });
});

describe('createVm: a composed VM runs over the fake backend', () => {
  it('PUTS goes through the console module to its output, HALT ends the run with the guest status', () => {
    const log: Log = [];
    const text: string[] = [];
    // The kernel's rodata holds the HALT structure; PUTS points at 5 bytes of guest memory we write first.
    const puts: VcpuExit = { kind: 'io', out: true, size: 4, port: 0x502, value: 0x200000 };
    const cfg = config(log, 'none', {
      modules: [consoleModule.create({}, { host: {} as HostIo, output: (b) => text.push(Buffer.from(b).toString()) })],
    });
    const exits = [puts, HALT];
    const vm = createVm({ ...cfg, backend: fakeBackendWithPuts(log, exits) });
    expect(vm.run()).toEqual({ kind: 'halt', status: 0 });
    expect(text).toEqual(['hello']);
    vm.close();
  });

  it('an exit no one handles ends the run with the backend\'s words', () => {
    const log: Log = [];
    const vm = createVm({ ...config(log, 'none'), backend: fakeBackend(log, 'none', [{ kind: 'other', reason: 8 }]) });
    expect(() => vm.run()).toThrowError(new GuestError('fake: unhandled'));
    vm.close();
    balanced(log);
  });
});

/** fakeBackend whose machine memory gets a PUTS structure (at 0x200000) and its text before the run. */
function fakeBackendWithPuts(log: Log, exits: VcpuExit[]): () => Backend {
  const make = fakeBackend(log, 'none', exits);
  return () => {
    const b = make();
    return {
      createMachine(size) {
        const m = b.createMachine(size);
        const v = new DataView(m.memory);
        v.setBigUint64(0x200000, 0x200100n, true); // data
        v.setBigUint64(0x200008, 5n, true); // len
        new Uint8Array(m.memory).set(Buffer.from('hello'), 0x200100);
        return m;
      },
      close: () => b.close(),
    };
  };
}
