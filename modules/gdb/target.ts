// The stub's Target over a real vCPU: registers through the backend's debug
// primitives (SetupContext.debug), fetched once per stop and written through
// at once, and guest memory through the monitor's checked accessors
// (SetupContext.memory), which refuse what lies outside the guest's memory
// and, for writes, the host-protected text and rodata (an int3 fallback
// breakpoint there then fails with E01 instead of faulting the monitor).
import type { FpuState, GeneralRegisterFile, SpecialRegisterFile } from '../../monitor/arch/x86_64-registers.js';
import type { DebugVcpu } from '../../monitor/backend/debug.js';
import type { DebugMemory } from '../../monitor/vm/debug-memory.js';
import type { CheckedMemory } from '../../monitor/vm/memory.js';
import type { GuestRam } from './breakpoints.js';
import { type CpuState, readAllRegisters, readRegister, writeRegister } from './registers.js';
import type { TargetRegisters } from './stub.js';

/** The vCPU's registers for one stop; invalidate() before the guest runs again. */
export class VcpuRegisters implements TargetRegisters, CpuState {
  private g: GeneralRegisterFile | null = null;
  private s: SpecialRegisterFile | null = null;
  private f: FpuState | null = null;

  constructor(private readonly debug: DebugVcpu) {}

  invalidate(): void {
    this.g = null;
    this.s = null;
    this.f = null;
  }

  gpr(): GeneralRegisterFile {
    return (this.g ??= this.debug.getRegisters());
  }
  sregs(): SpecialRegisterFile {
    return (this.s ??= this.debug.getSpecialRegisters());
  }
  fpu(): FpuState {
    return (this.f ??= this.debug.getFpu());
  }

  /** Sets rip (a stop that must show the breakpoint's address). */
  setRip(rip: bigint): void {
    this.setGpr({ ...this.gpr(), rip });
  }

  read(n: number): Uint8Array {
    return readRegister(this, n);
  }
  readAll(): Uint8Array {
    return readAllRegisters(this);
  }
  write(n: number, bytes: Uint8Array): boolean {
    const change = writeRegister(this, n, bytes);
    if (!change) return false;
    try {
      if ('gpr' in change) this.setGpr(change.gpr);
      else {
        this.debug.setSpecialRegisters(change.sregs);
        this.s = change.sregs;
      }
      return true;
    } catch {
      this.invalidate();
      return false;
    }
  }

  private setGpr(regs: GeneralRegisterFile): void {
    this.debug.setRegisters(regs);
    this.g = regs;
  }
}

/** Splits a guest address for CheckedMemory.region (which takes 32-bit halves); null beyond 64 bits. */
function halves(addr: bigint): [number, number] | null {
  if (addr < 0n || addr >= 1n << 64n) return null;
  return [Number(addr & 0xffffffffn), Number(addr >> 32n)];
}

/**
 * The longest readable start of a range of len bytes, as a copy (gdb accepts
 * fewer bytes than it asked for): all of it, else found by halving; null if
 * not even one byte can be read.
 */
function longestRead(read: (n: number) => Uint8Array | null, len: number): Uint8Array | null {
  const all = read(len);
  if (all) return all.slice();
  let lo = 0; // a readable length
  let hi = len; // a refused length
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (read(mid)) lo = mid;
    else hi = mid;
  }
  const part = lo > 0 ? read(lo) : null;
  return part ? part.slice() : null;
}

/** Guest memory through CheckedMemory only (host-protected text refused): the stub's unit tests' model of a monitor without debugMemory. */
export function checkedRam(memory: CheckedMemory): GuestRam {
  const region = (addr: bigint, len: number, access: 'read' | 'write'): Uint8Array | null => {
    const h = halves(addr);
    if (!h) return null;
    try {
      return memory.region(h[0], h[1], len, access);
    } catch {
      return null; // GuestError: outside guest memory or host-protected
    }
  };
  return {
    read: (addr, len) => longestRead((n) => region(addr, n, 'read'), len),
    write(addr, bytes) {
      const view = region(addr, bytes.length, 'write');
      if (!view || bytes.length === 0) return view !== null;
      view.set(bytes);
      return true;
    },
  };
}

/**
 * Guest RAM through the monitor's debugger access (SetupContext.debugMemory,
 * monitor/vm/debug-memory.ts): [0, mem_size) without §9.3's strict end, host
 * protections lifted around each access; a read gets the longest readable start.
 */
export function debugRam(m: DebugMemory): GuestRam {
  const at = (addr: bigint) => (addr >= 0n && addr <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(addr) : null);
  return {
    read(addr, len) {
      const a = at(addr);
      return a === null ? null : longestRead((n) => m.read(a, n), len);
    },
    write(addr, bytes) {
      const a = at(addr);
      return a !== null && m.write(a, bytes);
    },
  };
}
