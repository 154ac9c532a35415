// The FreeBSD side of DebugVcpu (backend/debug.ts), registers only: what
// dumpcore needs, read with VM_GET_REGISTER (§18: "Dumpcore reads registers
// with VM_GET_REGISTER"). Segment registers give their selectors, and FS/GS
// their bases (VM_REG_GUEST_FS_BASE / GS_BASE); the rest of the descriptor
// caches would need VM_GET_SEGMENT_DESCRIPTOR, which §18's Capsicum list does
// not allow, and read as zero. Writing registers, the FPU and debug control
// are not offered (registersOnly): the gdb module reports itself unsupported.
import { type FreebsdNativeBinding, VMM_REG, type VmmRegName } from '../../../native/binding/vmm.js';
import type { Segment } from '../../arch/x86_64.js';
import { GPR_NAMES, type FpuState, type GeneralRegisterFile, type SpecialRegisterFile } from '../../arch/x86_64-registers.js';
import { HostError, withErrno } from '../../errors.js';
import type { DebugConfig, DebugVcpu } from '../debug.js';

type Calls = Pick<FreebsdNativeBinding, 'vmGetRegister' | 'interrupt'>;

const UNSUPPORTED = 'not supported by the FreeBSD vmm backend (registers can only be read)';

const selectorOnly = (selector: bigint, base = 0n): Segment => ({
  base: Number(base), limit: 0, selector: Number(selector & 0xffffn),
  type: 0, present: 0, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0,
});

export class VmmDebug implements DebugVcpu {
  readonly registersOnly = true;

  constructor(
    private readonly b: Calls,
    private readonly vmFd: number,
    private readonly vcpu: number,
    readonly token: number,
  ) {}

  private get(name: VmmRegName): bigint {
    const reg = VMM_REG[name];
    try {
      return this.b.vmGetRegister(this.vmFd, this.vcpu, reg);
    } catch (e) {
      throw new HostError(withErrno(`VM_GET_REGISTER (${reg})`, e), { cause: e });
    }
  }

  getRegisters(): GeneralRegisterFile {
    const out = {} as GeneralRegisterFile;
    for (const name of GPR_NAMES) out[name] = this.get(name);
    return out;
  }

  getSpecialRegisters(): SpecialRegisterFile {
    return {
      cs: selectorOnly(this.get('cs')), ss: selectorOnly(this.get('ss')),
      ds: selectorOnly(this.get('ds')), es: selectorOnly(this.get('es')),
      fs: selectorOnly(this.get('fs'), this.get('fsBase')), gs: selectorOnly(this.get('gs'), this.get('gsBase')),
      tr: selectorOnly(this.get('tr')), ldt: selectorOnly(this.get('ldtr')),
      gdt: { base: 0, limit: 0 }, idt: { base: 0, limit: 0 },
      cr0: this.get('cr0'), cr2: this.get('cr2'), cr3: this.get('cr3'), cr4: this.get('cr4'), cr8: 0n,
      efer: this.get('efer'), apicBase: 0n,
    };
  }

  setRegisters(_regs: GeneralRegisterFile): void {
    throw new HostError(`writing registers is ${UNSUPPORTED}`);
  }

  setSpecialRegisters(_sregs: SpecialRegisterFile): void {
    throw new HostError(`writing special registers is ${UNSUPPORTED}`);
  }

  getFpu(): FpuState {
    throw new HostError(`reading the FPU is ${UNSUPPORTED}`);
  }

  setDebug(_config: DebugConfig): void {
    throw new HostError(`guest debugging is ${UNSUPPORTED}`);
  }

  interrupt(): boolean {
    return this.b.interrupt(this.token);
  }
}
