// The FreeBSD sandbox (Capsicum, docs/abi.md §18 step 7) and the registers-only
// debug primitives, over the recording fake: each VM descriptor is limited to
// CAP_IOCTL and exactly §18's eight ioctls (numbers written out as FreeBSD
// encodes them), the CLI then enters capability mode, a library VM does not
// (Capsicum confines whole processes); dumpcore's registers come from
// VM_GET_REGISTER, and gdb refuses a vCPU that can only read registers.
import { describe, expect, it } from 'vitest';
import { VmmBackend } from '../../monitor/backend/vmm/backend.js';
import { VmmDebug } from '../../monitor/backend/vmm/debug.js';
import { allowedIoctls, capsicumSandbox } from '../../monitor/backend/vmm/sandbox.js';
import { VmRegistry } from '../../monitor/backend/vmm/vms.js';
import { HostError } from '../../monitor/errors.js';
import gdb, { UNSUPPORTED_MESSAGE } from '../../modules/gdb/index.js';
import { thrownBy } from '../helpers/thrown.js';
import { fake, nativeError, VM_FD } from './vmm-fake.js';

// VM_RUN (14 / 13), VM_SET_CAPABILITY, VM_ALLOC_MEMSEG, VM_MMAP_MEMSEG,
// VM_SET_SEGMENT_DESCRIPTOR, VM_SET_REGISTER, VM_GET_REGISTER, VM_ACTIVATE_CPU.
const STEP7_14 = ['0xc0207601', '0x80107602', '0x8020760e', '0x80287610', '0x80187616', '0x80107614', '0xc0107615', '0x8004765a'];

function setup() {
  const f = fake();
  const vms = new VmRegistry(f.binding, () => {});
  const backend = new VmmBackend(f.binding, vms);
  const sandbox = capsicumSandbox(f.binding, vms, () => 14);
  return { f, vms, backend, sandbox };
}

describe('Capsicum sandbox', () => {
  it('process scope: the VM descriptor gets CAP_IOCTL and §18 step 7\'s ioctls, then cap_enter; a second enter does nothing', () => {
    const { f, backend, sandbox } = setup();
    backend.createMachine(4 << 20);
    f.calls.length = 0;
    sandbox.enter('process');
    sandbox.enter('process');
    expect(f.calls).toEqual([`capRightsLimitIoctl(${VM_FD})`, `capIoctlsLimit(${VM_FD},[${STEP7_14.join(' ')}])`, 'capEnter()']);
  });

  it('FreeBSD 13 allows its own VM_RUN instead', () => {
    expect(allowedIoctls(13).map((n) => `0x${n.toString(16)}`)).toEqual(['0xc0907601', ...STEP7_14.slice(1)]);
  });

  it('thread scope (a library VM): descriptor limits only, no capability mode; a later VM is limited too, once', () => {
    const { f, backend, sandbox } = setup();
    backend.createMachine(4 << 20);
    sandbox.enter('thread');
    backend.createMachine(4 << 20);
    sandbox.enter('thread');
    expect(f.calls.filter((c) => c.startsWith('cap'))).toEqual([
      `capRightsLimitIoctl(${VM_FD})`, `capIoctlsLimit(${VM_FD},[${STEP7_14.join(' ')}])`,
      `capRightsLimitIoctl(${VM_FD})`, `capIoctlsLimit(${VM_FD},[${STEP7_14.join(' ')}])`,
    ]);
    expect(() => sandbox.enter('process')).toThrowError(HostError);
  });

  it('a failing Capsicum call: "Could not install the sandbox: cap_enter: …"', () => {
    const { f, backend, sandbox } = setup();
    backend.createMachine(4 << 20);
    f.fail['capEnter'] = nativeError('cap_enter', 78, 'ENOSYS', 'Function not implemented');
    expect(thrownBy(() => sandbox.enter('process'), HostError).message).toBe('Could not install the sandbox: cap_enter: Function not implemented');
  });
});

describe('registers-only debug primitives (dumpcore)', () => {
  it('general registers by VM_GET_REGISTER in vm_reg_name numbering; selectors and FS/GS bases for the special ones', () => {
    const { f } = setup();
    const d = new VmmDebug(f.binding, VM_FD, 0, 1);
    const regs = d.getRegisters();
    // The fake answers 0x1000 + register number.
    expect(regs.rax).toBe(0x1000n);
    expect(regs.rbp).toBe(0x1006n);
    expect(regs.r8).toBe(0x1007n);
    expect(regs.r15).toBe(0x100en);
    expect(regs.rsp).toBe(0x1013n);
    expect(regs.rip).toBe(0x1014n);
    expect(regs.rflags).toBe(0x1015n);
    const s = d.getSpecialRegisters();
    expect(s.cs.selector).toBe(0x1017);
    expect(s.fs).toMatchObject({ selector: 0x101a, base: 0x102d });
    expect(s.gs).toMatchObject({ selector: 0x101b, base: 0x102e });
    expect(s.cr3).toBe(0x1010n);
    expect(s.efer).toBe(0x1020n);
    expect(d.registersOnly).toBe(true);
    expect(() => d.setDebug({ singleStep: true, softwareBreakpoints: false, hardware: [] })).toThrowError(HostError);
    expect(() => d.getFpu()).toThrowError(HostError);
  });

  it('the gdb module refuses a registers-only vCPU: "GDB support not implemented on this backend/architecture"', () => {
    const { f } = setup();
    const mod = gdb.create({ gdb: { port: 0 } }, { host: {} as never });
    const ctx = { debug: new VmmDebug(f.binding, VM_FD, 0, 1), warn: () => {} } as never;
    expect(thrownBy(() => mod.setup(ctx), HostError).message).toBe(UNSUPPORTED_MESSAGE);
    mod.close?.();
  });
});
