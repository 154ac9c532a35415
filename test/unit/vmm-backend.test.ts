// The FreeBSD vmm backend over a recording fake of its native surface
// (docs/abi.md §18): the operation sequence of VM creation and vCPU set-up,
// every register, segment descriptor and access word against §18's table
// (written out here as numbers, not computed), the reference's wording of
// each failure, and hw.vmm.destroy on every way out. No FreeBSD involved.
import { describe, expect, it } from 'vitest';
import { runAbiOf, VmmBackend, vmName } from '../../monitor/backend/vmm/backend.js';
import { VmRegistry } from '../../monitor/backend/vmm/vms.js';
import { HostError } from '../../monitor/errors.js';
import { createVm } from '../../monitor/vm/compose.js';
import { kernelFromBytes } from '../../monitor/kernel/kernel.js';
import { HALT_STRUCT_GPA, kernel, TEXT_VADDR } from '../helpers/elf-builder.js';
import { thrownBy } from '../helpers/thrown.js';
import { fake, type Fake, nativeError, REAPER_FD, TOKEN, TSC_HZ, VM_FD, WAKE_FD } from './vmm-fake.js';

const NAME = `solo5-${process.pid}`;
const MEM = 4 << 20;

function backend(f: Fake, exits: (() => void)[] = []) {
  return new VmmBackend(f.binding, new VmRegistry(f.binding, (fn) => exits.push(fn)));
}

describe('vmm: VM creation (§18 steps 1–6)', () => {
  it('creates solo5-PID, starts the reaper, opens /dev/vmm/NAME, HALT_EXIT, one memory segment mapped RWX at 0, then maps it', () => {
    const f = fake();
    const m = backend(f).createMachine(MEM);
    expect(f.calls).toEqual([
      'osReleaseDate()',
      `vmmCreate(${NAME})`,
      `vmmReaper(${NAME})`,
      `vmmOpen(${NAME})`,
      `vmSetCapability(${VM_FD},0,0,1)`,
      `vmAllocMemseg(${VM_FD},0,${MEM})`,
      `vmMmapMemseg(${VM_FD},0,0,0,${MEM},7)`,
      `vmMapGuest(${VM_FD},${MEM})`,
    ]);
    expect(m.memory.byteLength).toBe(MEM);
  });

  it('names further VMs of the process solo5-PID-N', () => {
    expect(vmName(42, 0)).toBe('solo5-42');
    expect(vmName(42, 3)).toBe('solo5-42-3');
    const f = fake();
    const b = backend(f);
    b.createMachine(MEM);
    b.createMachine(MEM);
    expect(f.calls.filter((c) => c.startsWith('vmmCreate'))).toEqual([`vmmCreate(${NAME})`, `vmmCreate(${NAME}-1)`]);
  });

  it('chooses VM_RUN by kern.osreldate: 13 below 1400000, 14 from there', () => {
    expect(runAbiOf(1302001)).toBe(13);
    expect(runAbiOf(1399999)).toBe(13);
    expect(runAbiOf(1400000)).toBe(14);
    expect(runAbiOf(1500012)).toBe(14);
    for (const [osreldate, abi] of [[1303000, 13], [1402000, 14]] as const) {
      const f = fake({ osreldate });
      backend(f).createMachine(MEM).createVcpu();
      expect(f.calls).toContain(`createVcpu(${VM_FD},0,${abi})`);
    }
  });

  it('hw.vmm.create failing: "Cannot create VM \'NAME\'" with the error, a hint when vmm is not loaded, nothing to destroy', () => {
    const f = fake({ fail: { vmmCreate: nativeError('hw.vmm.create', 2, 'ENOENT', 'No such file or directory') } });
    const e = thrownBy(() => backend(f).createMachine(MEM), HostError);
    expect(e.message).toBe(`Cannot create VM '${NAME}': No such file or directory (is vmm(4) loaded? kldload vmm)`);
    expect(f.calls.some((c) => c.startsWith('vmmDestroy') || c.startsWith('vmmReaper'))).toBe(false);
    const g = fake({ fail: { vmmCreate: nativeError('hw.vmm.create', 17, 'EEXIST', 'File exists') } });
    expect(thrownBy(() => backend(g).createMachine(MEM), HostError).message).toBe(`Cannot create VM '${NAME}': File exists`);
  });

  it.each([
    ['vmmReaper', 'Cannot start the VM reaper: Resource temporarily unavailable', false, false],
    ['vmmOpen', `open(/dev/vmm/${NAME}): Resource temporarily unavailable`, false, true],
    ['vmSetCapability', 'set VM_CAP_HALT_EXIT: Resource temporarily unavailable', true, true],
    ['vmAllocMemseg', 'VM_ALLOC_MEMSEG: Resource temporarily unavailable', true, true],
    ['vmMmapMemseg', 'VM_MMAP_MEMSEG: Resource temporarily unavailable', true, true],
    ['vmMapGuest', 'Error allocating guest memory: Resource temporarily unavailable', true, true],
  ] as const)('%s failing: "%s", the VM descriptor and reaper closed and the VM destroyed', (call, message, vmOpen, reaper) => {
    const f = fake({ fail: { [call]: nativeError(call, 11, 'EAGAIN', 'Resource temporarily unavailable') } });
    const e = thrownBy(() => backend(f).createMachine(MEM), HostError);
    expect(e.message).toBe(message);
    const after = f.calls.slice(f.calls.findIndex((c) => c.startsWith(call)) + 1);
    expect(after).toEqual([
      ...(vmOpen ? [`closeFd(${VM_FD})`] : []),
      `vmmDestroy(${NAME})`,
      ...(reaper ? [`closeFd(${REAPER_FD})`] : []),
    ]);
  });
});

describe('vmm: vCPU set-up (§18 steps 8–15)', () => {
  const ENTRY = 0x100123;

  it('sets CR0, CR3, CR4, EFER, the six segments, GDTR, TR, LDTR, reads the TSC, sets RIP, RFLAGS, RSP, RDI, activates the vCPU', () => {
    const f = fake();
    const cpu = backend(f).createMachine(MEM).createVcpu();
    f.calls.length = 0;
    const hz = cpu.configure({ entry: ENTRY, memSize: MEM });
    expect(hz).toBe(Number(TSC_HZ));
    const reg = (n: number, v: number | bigint) => `vmSetRegister(${VM_FD},0,${n},${BigInt(v)})`;
    const desc = (n: number, base: number, limit: number, access: number) => `vmSetSegmentDescriptor(${VM_FD},0,${n},${base},${limit},${access})`;
    // vm_reg_name: CR0 15, CR3 16, CR4 17, RSP 19, RIP 20, RFLAGS 21, ES 22, CS 23, SS 24, DS 25, FS 26, GS 27,
    // LDTR 28, TR 29, GDTR 31, EFER 32, RDI 5.
    expect(f.calls).toEqual([
      reg(15, 0x80010021), // CR0: PE, NE, WP, PG
      reg(16, 0x2000), // CR3: the PML4
      reg(17, 0x620), // CR4: PAE, OSFXSR, OSXMMEXCPT
      reg(32, 0x500), // EFER: LME, LMA
      desc(23, 0, 0xffffffff, 0xa099), reg(23, 0x08), // CS
      desc(24, 0, 0xffffffff, 0xc093), reg(24, 0x10), // SS
      desc(25, 0, 0xffffffff, 0xc093), reg(25, 0x10), // DS
      desc(22, 0, 0xffffffff, 0xc093), reg(22, 0x10), // ES
      desc(26, 0, 0xffffffff, 0xc093), reg(26, 0x10), // FS
      desc(27, 0, 0xffffffff, 0xc093), reg(27, 0x10), // GS
      desc(31, 0x1000, 0x17, 0), // GDTR
      desc(29, 0, 0, 0x8b), reg(29, 0), // TR: busy 64-bit TSS
      desc(28, 0, 0, 0x10000), reg(28, 0), // LDTR: unusable
      'tscFrequency()',
      'tscInvariant()',
      reg(20, ENTRY), // RIP
      reg(21, 0x2), // RFLAGS
      reg(19, MEM - 8), // RSP
      reg(5, 0x10000), // RDI: boot info
      `vmActivateCpu(${VM_FD},0)`,
    ]);
  });

  it('a TSC that is not invariant is fatal: "Host TSC is not invariant, cannot continue"', () => {
    const f = fake({ invariant: 0 });
    const cpu = backend(f).createMachine(MEM).createVcpu();
    expect(thrownBy(() => cpu.configure({ entry: ENTRY, memSize: MEM }), HostError).message).toBe('Host TSC is not invariant, cannot continue');
    expect(f.calls.some((c) => c.startsWith('vmActivateCpu'))).toBe(false);
  });

  it.each([
    ['vmSetRegister', 'VM_SET_REGISTER (15): Operation not permitted'],
    ['vmSetSegmentDescriptor', 'VM_SET_SEGMENT_DESCRIPTOR (23): Operation not permitted'],
    ['tscFrequency', 'sysctl(machdep.tsc_freq): Operation not permitted'],
    ['tscInvariant', 'sysctl(kern.timecounter.invariant_tsc): Operation not permitted'],
    ['vmActivateCpu', 'VM_ACTIVATE_CPU: Operation not permitted'],
  ])('%s failing: "%s"', (call, message) => {
    const f = fake();
    const cpu = backend(f).createMachine(MEM).createVcpu();
    f.fail[call] = nativeError(call, 1, 'EPERM', 'Operation not permitted');
    const e = thrownBy(() => cpu.configure({ entry: ENTRY, memSize: MEM }), HostError);
    expect(e.message).toBe(message);
  });

  it('createVcpu gives the vCPU its token and POLL wake pipe; close() leaves the table once', () => {
    const f = fake();
    const cpu = backend(f).createMachine(MEM).createVcpu();
    expect(cpu.handle).toEqual({ backend: 'vmm', token: TOKEN });
    const ws = cpu.createWaitSet(0);
    expect(f.calls.slice(-2)).toEqual(['waitsetCreate()', `waitsetAdd(10,${WAKE_FD},-1)`]);
    ws.close();
    cpu.close();
    cpu.close();
    expect(f.calls.filter((c) => c.startsWith('destroyVcpu'))).toEqual([`destroyVcpu(${TOKEN})`]);
  });
});

describe('vmm: hw.vmm.destroy on every way out', () => {
  it('Machine.close(): closes the VM descriptor, destroys the VM, closes the reaper pipe; a second close does nothing', () => {
    const f = fake();
    const m = backend(f).createMachine(MEM);
    f.calls.length = 0;
    m.close();
    m.close();
    expect(f.calls).toEqual([`closeFd(${VM_FD})`, `vmmDestroy(${NAME})`, `closeFd(${REAPER_FD})`]);
  });

  it('in capability mode hw.vmm.destroy fails (ECAPMODE): no throw, the reaper pipe still closes (the reaper destroys it)', () => {
    const f = fake();
    const m = backend(f).createMachine(MEM);
    f.fail['vmmDestroy'] = nativeError('hw.vmm.destroy', 94, 'ECAPMODE', 'Not permitted in capability mode');
    f.calls.length = 0;
    expect(() => m.close()).not.toThrow();
    expect(f.calls).toEqual([`closeFd(${VM_FD})`, `vmmDestroy(${NAME})`, `closeFd(${REAPER_FD})`]);
  });

  it('the process exiting without close() (the CLI returns its status): the exit hook destroys every live VM', () => {
    const f = fake();
    const exits: (() => void)[] = [];
    const b = backend(f, exits);
    b.createMachine(MEM);
    const second = b.createMachine(MEM);
    second.close();
    expect(exits).toHaveLength(1);
    f.calls.length = 0;
    exits[0]?.();
    expect(f.calls).toEqual([`closeFd(${VM_FD})`, `vmmDestroy(${NAME})`, `closeFd(${REAPER_FD})`]);
  });

  /** A composed VM (compose.ts) whose vCPU set-up fails at `call`: the machine is closed, so the VM is destroyed. */
  it.each(['createVcpu', 'vmSetRegister', 'tscInvariant', 'vmActivateCpu', 'waitsetCreate'])(
    'createVm failing at %s after the VM exists: the VM is destroyed',
    (call) => {
      const f = fake();
      f.fail[call] = nativeError(call, 5, 'EIO', 'Input/output error');
      const k = kernelFromBytes(kernel(), 'fake.hvt');
      expect(() =>
        createVm({ kernel: k, memoryBytes: 4n << 20n, args: [], modules: [], backend: backend(f), host: { realtimeInto: () => {} }, warn: () => {} }),
      ).toThrowError(HostError);
      expect(f.calls).toContain(`vmmDestroy(${NAME})`);
      expect(f.calls.at(-1)).toBe(`closeFd(${REAPER_FD})`);
    },
  );

  it('a composed VM that halts, then closes: the guest ran (entry from the ELF), the VM is destroyed', () => {
    const f = fake();
    f.steps.push({ exitcode: 0, port: 0x508, eax: HALT_STRUCT_GPA, rip: BigInt(TEXT_VADDR) });
    const vm = createVm({
      kernel: kernelFromBytes(kernel(), 'fake.hvt'), memoryBytes: 4n << 20n, args: [], modules: [],
      backend: backend(f), host: { realtimeInto: () => {} }, warn: () => {},
    });
    expect(f.calls).toContain(`vmSetRegister(${VM_FD},0,20,${TEXT_VADDR})`);
    expect(vm.run()).toEqual({ kind: 'halt', status: 0 });
    vm.close();
    expect(f.calls.slice(-3)).toEqual([`closeFd(${VM_FD})`, `vmmDestroy(${NAME})`, `closeFd(${REAPER_FD})`]);
  });
});
