// Exit decoding and the VM_RUN loop of the FreeBSD vmm backend over made-up
// struct vm_exit images (docs/abi.md §18): INOUT becomes the core's port
// access, the ring kick port is absorbed, BOGUS resumes unless a signal, stop
// or debugger interrupt is pending, VMX prints the reference's eight lines,
// anything else is "unhandled exit: exitcode=N, rip=0x…", and a failing
// VM_RUN is "VM_RUN: strerror".
import { describe, expect, it } from 'vitest';
import { VmmBackend } from '../../monitor/backend/vmm/backend.js';
import { decodeVmExit, describeVmmFatal, vmxLines } from '../../monitor/backend/vmm/exits.js';
import { VmRegistry } from '../../monitor/backend/vmm/vms.js';
import { GuestError, HostError } from '../../monitor/errors.js';
import { Core } from '../../monitor/vm/core.js';
import { GuestMemory } from '../../monitor/vm/memory.js';
import { VMM_EXIT } from '../../native/binding/vmm.js';
import { thrownBy } from '../helpers/thrown.js';
import { encodeExit, fake, type Fake, type FakeExit, nativeError, TOKEN } from './vmm-fake.js';

function vcpu(f: Fake) {
  const b = new VmmBackend(f.binding, new VmRegistry(f.binding, () => {}));
  return b.createMachine(4 << 20).createVcpu();
}

function decode(e: FakeExit) {
  const bytes = new Uint8Array(VMM_EXIT.size);
  encodeExit(e, bytes);
  return decodeVmExit(new DataView(bytes.buffer));
}

describe('decodeVmExit', () => {
  it('INOUT: direction, size, string, port and eax from the u16 of bit fields and what follows', () => {
    expect(decode({ exitcode: 0, rip: 0x100010n, port: 0x501, eax: 0x20000 })).toEqual({
      code: 'inout', rip: 0x100010n, in: false, bytes: 4, string: false, rep: false, port: 0x501, eax: 0x20000,
    });
    expect(decode({ exitcode: 0, port: 0x60, in: true, bytes: 1 })).toMatchObject({ in: true, bytes: 1, port: 0x60 });
    expect(decode({ exitcode: 0, port: 0x3f8, bytes: 2, string: true })).toMatchObject({ in: false, bytes: 2, string: true });
  });

  it('VMX: status, exit_reason, qualification, inst_type, inst_error', () => {
    expect(
      decode({ exitcode: 1, rip: 0x1234n, instLength: 3, status: 0, exitReason: 48, qualification: 0x181n, instType: 0, instError: 0 }),
    ).toEqual({ code: 'vmx', rip: 0x1234n, instLength: 3, status: 0, exitReason: 48, qualification: 0x181n, instType: 0, instError: 0 });
  });

  it('BOGUS and every other exit code keep their number and rip', () => {
    expect(decode({ exitcode: 2, rip: 5n, instLength: 0 })).toEqual({ code: 'bogus', rip: 5n, instLength: 0 });
    expect(decode({ exitcode: 5, rip: 0x100200n })).toEqual({ code: 'other', rip: 0x100200n, exitcode: 5 });
    expect(decode({ exitcode: 14, rip: 1n })).toEqual({ code: 'other', rip: 1n, exitcode: 14 });
  });

  it('the reference\'s VMX lines (tabs as spaces), 64-bit values in 16 hex digits', () => {
    expect(
      vmxLines({ code: 'vmx', rip: 0x100abcn, instLength: 2, status: 1, exitReason: 0x80000021, qualification: 0n, instType: 3, instError: 7 }),
    ).toEqual([
      'unhandled VMX exit:',
      '    rip           0x0000000000100abc',
      '    inst_length   2',
      '    status        1',
      '    exit_reason   2147483681',
      '    qualification 0x0000000000000000',
      '    inst_type     3',
      '    inst_error    7',
    ]);
  });

  it('describeVmmFatal: "unhandled exit: exitcode=N, rip=0x…" from the exit behind it', () => {
    const last = { code: 'other', rip: 0x100200n, exitcode: 5 } as const;
    expect(describeVmmFatal('unhandled', { kind: 'other', reason: 5 }, last)).toBe('unhandled exit: exitcode=5, rip=0x100200');
  });
});

describe('the VM_RUN loop', () => {
  it('an OUT of 4 bytes becomes the core\'s port access with the GPA from EAX', () => {
    const f = fake();
    const cpu = vcpu(f);
    f.steps.push({ exitcode: 0, port: 0x502, eax: 0x20000 });
    expect(cpu.run()).toEqual({ kind: 'io', out: true, size: 4, port: 0x502, value: 0x20000 });
    expect(f.calls.filter((c) => c.startsWith('run'))).toEqual([`run(${TOKEN})`]);
  });

  it('an IN or a narrow OUT reaches the core, which refuses it: "Invalid guest port access: port=0x…"', () => {
    const f = fake();
    const cpu = vcpu(f);
    const mem = new GuestMemory(new ArrayBuffer(4 << 20), 4 << 20);
    const core = new Core(mem, { realtimeInto: () => {}, watch: () => {}, wait: () => [] });
    f.steps.push({ exitcode: 0, port: 0x501, in: true, bytes: 4 });
    expect(thrownBy(() => core.dispatch(cpu.run(), cpu), GuestError).message).toBe('Invalid guest port access: port=0x501');
    f.steps.push({ exitcode: 0, port: 0x501, bytes: 2 });
    expect(thrownBy(() => core.dispatch(cpu.run(), cpu), GuestError).message).toBe('Invalid guest port access: port=0x501');
  });

  it('a 32-bit OUT to 0x600 without a ring is ignored (unlike KVM) and the guest goes on', () => {
    const f = fake();
    const cpu = vcpu(f);
    f.steps.push({ exitcode: 0, port: 0x600, eax: 1 }, { exitcode: 0, port: 0x508, eax: 0x30000 });
    expect(cpu.run()).toEqual({ kind: 'io', out: true, size: 4, port: 0x508, value: 0x30000 });
    expect(f.calls.filter((c) => c.startsWith('run'))).toHaveLength(2);
    expect(f.calls.some((c) => c.startsWith('writeFd'))).toBe(false);
  });

  it('with a ring kick bound, an OUT to 0x600 writes one byte to its pipe, then the guest goes on', () => {
    const f = fake();
    const m = new VmmBackend(f.binding, new VmRegistry(f.binding, () => {})).createMachine(4 << 20);
    m.portEvents.attach(0x600, m.portEvents.createKick());
    const cpu = m.createVcpu();
    f.steps.push({ exitcode: 0, port: 0x600, eax: 1 }, { exitcode: 0, port: 0x508, eax: 0x30000 });
    expect(cpu.run()).toMatchObject({ kind: 'io', port: 0x508 });
    expect(f.calls.filter((c) => c.startsWith('writeFd'))).toEqual(['writeFd(21,1)']);
  });

  it('BOGUS resumes; with a pending signal it ends the run as that signal; with a stop, as a stop', () => {
    const f = fake();
    const cpu = vcpu(f);
    f.steps.push({ exitcode: 2 }, { exitcode: 0, port: 0x508 });
    expect(cpu.run()).toMatchObject({ kind: 'io', port: 0x508 });
    f.signal = 15;
    f.steps.push({ exitcode: 2 });
    expect(cpu.run()).toEqual({ kind: 'interrupted', signal: 15 });
    f.signal = 0;
    f.stop = true;
    f.steps.push('interrupted');
    expect(cpu.run()).toEqual({ kind: 'interrupted', signal: 0 });
  });

  it('a debugger interrupt is reported once as a debug exit at the last rip; a stray EINTR re-enters the guest', () => {
    const f = fake();
    const cpu = vcpu(f);
    f.steps.push({ exitcode: 0, rip: 0x100040n, port: 0x501 });
    cpu.run();
    f.interrupts = 1;
    f.steps.push('interrupted');
    expect(cpu.run()).toEqual({ kind: 'debug', reason: 'interrupt', rip: 0x100040n, dr6: 0n });
    f.steps.push('interrupted', 'interrupted', { exitcode: 0, port: 0x503 });
    expect(cpu.run()).toMatchObject({ kind: 'io', port: 0x503 });
  });

  it('VMX: the run ends with the reference\'s eight lines (seven as warnings, the last as the message)', () => {
    const f = fake();
    const cpu = vcpu(f);
    f.steps.push({ exitcode: 1, rip: 0x100abcn, instLength: 2, status: 0, exitReason: 2, qualification: 0x10n, instType: 0, instError: 0 });
    const e = thrownBy(() => cpu.run(), GuestError);
    expect([...e.warnings, e.message]).toEqual([
      'unhandled VMX exit:',
      '    rip           0x0000000000100abc',
      '    inst_length   2',
      '    status        0',
      '    exit_reason   2',
      '    qualification 0x0000000000000010',
      '    inst_type     0',
      '    inst_error    0',
    ]);
  });

  it('HLT (HALT_EXIT) and any other exit: the core ends the run with "unhandled exit: exitcode=5, rip=0x…"', () => {
    const f = fake();
    const cpu = vcpu(f);
    const mem = new GuestMemory(new ArrayBuffer(4 << 20), 4 << 20);
    const core = new Core(mem, { realtimeInto: () => {}, watch: () => {}, wait: () => [] });
    f.steps.push({ exitcode: 5, rip: 0x100123n });
    expect(thrownBy(() => core.dispatch(cpu.run(), cpu), GuestError).message).toBe('unhandled exit: exitcode=5, rip=0x100123');
    f.steps.push({ exitcode: 14, rip: 0x7n });
    expect(thrownBy(() => core.dispatch(cpu.run(), cpu), GuestError).message).toBe('unhandled exit: exitcode=14, rip=0x7');
  });

  it('VM_RUN failing: "VM_RUN: strerror"', () => {
    const f = fake();
    const cpu = vcpu(f);
    f.steps.push(nativeError('VM_RUN', 22, 'EINVAL', 'Invalid argument'));
    expect(thrownBy(() => cpu.run(), HostError).message).toBe('VM_RUN: Invalid argument');
  });
});
