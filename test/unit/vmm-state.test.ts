// The KVM and the FreeBSD vmm backends give a guest the same machine: one
// kernel is composed (createVm) over a fake of each native surface; what each
// handed its hypervisor — KVM's kvm_sregs/kvm_regs images, vmm's register
// and descriptor operations — is converted back to the neutral x86_64 state
// and compared field by field, and guest memory (GDT, page tables, loaded
// ELF, boot info) byte by byte. §18 leaves IDTR, CR2, CR8 and the APIC base at
// vmm's reset values (the reference sets none of them), so they are not compared.
import { describe, expect, it } from 'vitest';
import { regsFromKvm, sregsFromKvm } from '../../monitor/backend/kvm/debug.js';
import { KvmBackend } from '../../monitor/backend/kvm/backend.js';
import { replayOps, type VmmStateOp } from '../../monitor/backend/vmm/registers.js';
import { VmmBackend } from '../../monitor/backend/vmm/backend.js';
import { VmRegistry } from '../../monitor/backend/vmm/vms.js';
import type { Backend } from '../../monitor/backend/backend.js';
import { SEGMENT_NAMES } from '../../monitor/arch/x86_64-registers.js';
import { kernelFromBytes } from '../../monitor/kernel/kernel.js';
import { createVm } from '../../monitor/vm/compose.js';
import type { NativeBinding } from '../../native/binding.js';
import { VMM_REG, type VmmRegName } from '../../native/binding/vmm.js';
import { kernel } from '../helpers/elf-builder.js';
import { fake, TSC_HZ } from './vmm-fake.js';

const MEMORY = 8n << 20n;

/** A KVM native surface that accepts everything and keeps what it was given. */
function kvmFake() {
  const seen: { sregs?: Uint8Array; regs?: Uint8Array; memory?: ArrayBuffer } = {};
  const none = () => undefined;
  const binding = {
    kvmRunSize: 2352,
    openKvm: () => 3,
    apiVersion: () => 12,
    checkExtension: () => 1,
    vcpuMmapSize: () => 12288,
    installKickHandler: none,
    createVm: (_fd: number, size: number) => ((seen.memory = new ArrayBuffer(size)), { vmFd: 4, memory: seen.memory }),
    protect: none,
    createVcpu: () => ({ token: 1, vcpuFd: 5, wakeFd: 6, run: new ArrayBuffer(12288) }),
    supportedCpuid: () => new ArrayBuffer(8),
    setCpuid: none,
    setSregs: (_fd: number, s: Uint8Array) => void (seen.sregs = s.slice()),
    tscKhz: () => Number(TSC_HZ / 1000n),
    setRegs: (_fd: number, r: Uint8Array) => void (seen.regs = r.slice()),
    waitsetCreate: () => 7,
    waitsetAdd: none,
    closeFd: none,
    destroyVcpu: none,
    unmapBuffer: none,
  } as unknown as NativeBinding;
  return { binding, seen };
}

const REG_NAME = new Map<number, VmmRegName>(Object.entries(VMM_REG).map(([k, v]) => [v, k as VmmRegName]));

/** The operations the vmm fake was called with, parsed back from its call log. */
function vmmOps(calls: readonly string[]): VmmStateOp[] {
  const ops: VmmStateOp[] = [];
  for (const c of calls) {
    const m = /^(vmSetRegister|vmSetSegmentDescriptor)\((.*)\)$/.exec(c);
    if (!m) continue;
    const a = (m[2] as string).split(',');
    const reg = REG_NAME.get(Number(a[2]));
    if (!reg) throw new Error(`unknown vmm register in ${c}`);
    if (m[1] === 'vmSetRegister') ops.push({ op: 'register', reg, value: BigInt(a[3] as string) });
    else ops.push({ op: 'descriptor', reg, base: BigInt(a[3] as string), limit: Number(a[4]), access: Number(a[5]) });
  }
  return ops;
}

function compose(image: Uint8Array, backend: Backend) {
  return createVm({
    kernel: kernelFromBytes(image, 'same.hvt'), memoryBytes: MEMORY, args: ['--solo5:quiet', 'hello'], modules: [],
    backend, host: { realtimeInto: () => {} }, warn: () => {},
  });
}

describe('KVM and vmm: the same neutral CPU state from the same kernel', () => {
  it.each([
    ['the default test kernel', kernel()],
    ['a kernel entered elsewhere', kernel({ entry: 0x100040 })],
  ])('%s', (_what, image) => {
    const k = kvmFake();
    const f = fake();
    const kvm = compose(image, new KvmBackend(k.binding));
    let vmmMemory: ArrayBuffer | undefined;
    const vmmBinding = { ...f.binding, vmMapGuest: (fd: number, len: number) => (f.binding.vmMapGuest(fd, len), (vmmMemory = new ArrayBuffer(len))) };
    const vmm = compose(image, new VmmBackend(vmmBinding, new VmRegistry(f.binding, () => {})));
    const sregs = sregsFromKvm(k.seen.sregs as Uint8Array);
    const regs = regsFromKvm(k.seen.regs as Uint8Array);
    const view = replayOps(vmmOps(f.calls));

    for (const name of SEGMENT_NAMES) expect(view.special[name], name).toEqual(sregs[name]);
    expect(view.special.gdt).toEqual(sregs.gdt);
    for (const cr of ['cr0', 'cr3', 'cr4', 'efer'] as const) expect(view.special[cr], cr).toBe(sregs[cr]);
    expect(BigInt(view.general.rip)).toBe(regs.rip);
    expect(BigInt(view.general.rflags)).toBe(regs.rflags);
    expect(BigInt(view.general.rsp)).toBe(regs.rsp);
    expect(BigInt(view.general.rdi)).toBe(regs.rdi);
    // Every other general register: zero on KVM, never written on vmm (its reset value, zero).
    for (const [name, value] of Object.entries(regs)) if (!['rip', 'rflags', 'rsp', 'rdi'].includes(name)) expect(value, name).toBe(0n);
    // The same guest memory: GDT, page tables, ELF, boot info (TSC rate included).
    expect(Buffer.from(vmmMemory as ArrayBuffer).equals(Buffer.from(k.seen.memory as ArrayBuffer))).toBe(true);
    kvm.close();
    vmm.close();
  });
});
