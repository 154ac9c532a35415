// The registers as the stub shows them to gdb: one table that gives both the
// target description (qXfer:features:read:target.xml) and the byte layout of
// `g`, `G`, `p` and `P`, so the two cannot disagree. Register n of the
// packets is entry n of REGISTERS: rax … r15, rip, eflags, the six
// selectors, the x87 stack and its control registers (gdb's amd64 core
// feature requires them), xmm0–15 and mxcsr, then fs_base and gs_base.
// Values are little-endian, as on the target. Pure code over the neutral
// register file of monitor/arch/x86_64-registers.ts.
import {
  type FpuState,
  fullTagWord,
  type GeneralRegisterFile,
  type GprName,
  type SegmentName,
  type SpecialRegisterFile,
} from '../../monitor/arch/x86_64-registers.js';

type Feature = 'core' | 'sse' | 'segments';

/** Where a register's value lives in the CPU state. */
type Source =
  | { from: 'gpr'; name: GprName; bytes: 8 | 4 }
  | { from: 'selector'; name: SegmentName }
  | { from: 'base'; name: 'fs' | 'gs' }
  | { from: 'st'; index: number }
  | { from: 'fpu'; field: 'fcw' | 'fsw' | 'ftag' | 'fiseg' | 'fioff' | 'foseg' | 'fooff' | 'fop' | 'mxcsr' }
  | { from: 'xmm'; index: number };

interface RegisterDef {
  readonly name: string;
  readonly bits: number;
  /** gdb's type name, or one defined in the description. */
  readonly type: string;
  readonly group?: string;
  readonly feature: Feature;
  readonly source: Source;
}

const GPRS: readonly GprName[] = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];
const SELECTORS: readonly SegmentName[] = ['cs', 'ss', 'ds', 'es', 'fs', 'gs'];
const X87_CONTROL = ['fctrl', 'fstat', 'ftag', 'fiseg', 'fioff', 'foseg', 'fooff', 'fop'] as const;
const X87_FIELD = { fctrl: 'fcw', fstat: 'fsw', ftag: 'ftag', fiseg: 'fiseg', fioff: 'fioff', foseg: 'foseg', fooff: 'fooff', fop: 'fop' } as const;

export const REGISTERS: readonly RegisterDef[] = [
  ...GPRS.map((name): RegisterDef => ({
    name, bits: 64, type: name === 'rsp' || name === 'rbp' ? 'data_ptr' : 'int64', feature: 'core', source: { from: 'gpr', name, bytes: 8 },
  })),
  { name: 'rip', bits: 64, type: 'code_ptr', feature: 'core', source: { from: 'gpr', name: 'rip', bytes: 8 } },
  { name: 'eflags', bits: 32, type: 'rflags_bits', feature: 'core', source: { from: 'gpr', name: 'rflags', bytes: 4 } },
  ...SELECTORS.map((name): RegisterDef => ({ name, bits: 32, type: 'int32', feature: 'core', source: { from: 'selector', name } })),
  ...Array.from({ length: 8 }, (_, index): RegisterDef => ({ name: `st${index}`, bits: 80, type: 'i387_ext', feature: 'core', source: { from: 'st', index } })),
  ...X87_CONTROL.map((name): RegisterDef => ({ name, bits: 32, type: 'int', group: 'float', feature: 'core', source: { from: 'fpu', field: X87_FIELD[name] } })),
  ...Array.from({ length: 16 }, (_, index): RegisterDef => ({ name: `xmm${index}`, bits: 128, type: 'xmm_value', feature: 'sse', source: { from: 'xmm', index } })),
  { name: 'mxcsr', bits: 32, type: 'int', group: 'vector', feature: 'sse', source: { from: 'fpu', field: 'mxcsr' } },
  { name: 'fs_base', bits: 64, type: 'int', feature: 'segments', source: { from: 'base', name: 'fs' } },
  { name: 'gs_base', bits: 64, type: 'int', feature: 'segments', source: { from: 'base', name: 'gs' } },
];

export const REGISTER_COUNT = REGISTERS.length;
/** Packet register number of rip. */
export const RIP = 16;
/** Bytes of a `g` reply. */
export const REGISTERS_SIZE = REGISTERS.reduce((n, r) => n + r.bits / 8, 0);

/** What the registers are read from: fetched from the vCPU on demand. */
export interface CpuState {
  gpr(): GeneralRegisterFile;
  sregs(): SpecialRegisterFile;
  fpu(): FpuState;
}

function le(value: bigint, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let v = BigInt.asUintN(bytes * 8, value);
  for (let i = 0; i < bytes; i++, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}

function fromLe(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i] as number);
  return v;
}

function fpuField(f: FpuState, field: Extract<Source, { from: 'fpu' }>['field']): number {
  switch (field) {
    case 'fcw': return f.fcw;
    case 'fsw': return f.fsw;
    case 'ftag': return fullTagWord(f);
    case 'fiseg': return Number(BigInt.asUintN(32, f.fip >> 32n));
    case 'fioff': return Number(BigInt.asUintN(32, f.fip));
    case 'foseg': return Number(BigInt.asUintN(32, f.fdp >> 32n));
    case 'fooff': return Number(BigInt.asUintN(32, f.fdp));
    case 'fop': return f.fop;
    case 'mxcsr': return f.mxcsr;
  }
}

/** Register n's bytes (n < REGISTER_COUNT). */
export function readRegister(state: CpuState, n: number): Uint8Array {
  const def = REGISTERS[n];
  if (!def) throw new RangeError(`no register ${n}`);
  const s = def.source;
  const size = def.bits / 8;
  switch (s.from) {
    case 'gpr': return le(state.gpr()[s.name], s.bytes);
    case 'selector': return le(BigInt(state.sregs()[s.name].selector), 4);
    case 'base': return le(BigInt(state.sregs()[s.name].base), 8);
    case 'st': {
      const out = new Uint8Array(size);
      out.set((state.fpu().st[s.index] ?? new Uint8Array(10)).subarray(0, size));
      return out;
    }
    case 'xmm': {
      const out = new Uint8Array(size);
      out.set((state.fpu().xmm[s.index] ?? new Uint8Array(16)).subarray(0, size));
      return out;
    }
    case 'fpu': return le(BigInt(fpuField(state.fpu(), s.field)), 4);
  }
}

/** Every register, in order: the `g` reply's bytes. */
export function readAllRegisters(state: CpuState): Uint8Array {
  const out = new Uint8Array(REGISTERS_SIZE);
  let at = 0;
  for (let n = 0; n < REGISTER_COUNT; n++) {
    const b = readRegister(state, n);
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/** A change to the CPU state: new general or special registers (whole files). */
export type RegisterChange = { gpr: GeneralRegisterFile } | { sregs: SpecialRegisterFile };

/**
 * What writing `bytes` to register n changes, or null if it cannot be
 * written: the x87 and SSE registers (the backend offers no way to set
 * them), a base beyond 2^53, or a wrong number of bytes. eflags keeps the
 * upper half of RFLAGS; a selector write changes only the selector.
 */
export function writeRegister(state: CpuState, n: number, bytes: Uint8Array): RegisterChange | null {
  const def = REGISTERS[n];
  if (!def || bytes.length !== def.bits / 8) return null;
  const s = def.source;
  const v = fromLe(bytes);
  switch (s.from) {
    case 'gpr': {
      const gpr = { ...state.gpr() };
      gpr[s.name] = s.bytes === 8 ? v : (gpr[s.name] & ~0xffffffffn) | v;
      return { gpr };
    }
    case 'selector': {
      if (v > 0xffffn) return null;
      const sregs = state.sregs();
      return { sregs: { ...sregs, [s.name]: { ...sregs[s.name], selector: Number(v) } } };
    }
    case 'base': {
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) return null;
      const sregs = state.sregs();
      return { sregs: { ...sregs, [s.name]: { ...sregs[s.name], base: Number(v) } } };
    }
    default:
      return null;
  }
}

/** Offset of register n in the `g` image. */
export function registerOffset(n: number): number {
  let at = 0;
  for (let i = 0; i < n; i++) at += (REGISTERS[i] as RegisterDef).bits / 8;
  return at;
}

const EFLAGS_BITS: readonly [string, number][] = [
  ['CF', 0], ['PF', 2], ['AF', 4], ['ZF', 6], ['SF', 7], ['TF', 8], ['IF', 9], ['DF', 10], ['OF', 11],
  ['NT', 14], ['RF', 16], ['VM', 17], ['AC', 18], ['VIF', 19], ['VIP', 20], ['ID', 21],
];

const FEATURE_NAME: Readonly<Record<Feature, string>> = {
  core: 'org.gnu.gdb.i386.core',
  sse: 'org.gnu.gdb.i386.sse',
  segments: 'org.gnu.gdb.i386.segments',
};

/** Types a feature defines before its registers use them. */
function featureTypes(feature: Feature): string[] {
  if (feature === 'core') {
    return [
      '<flags id="rflags_bits" size="4">',
      ...EFLAGS_BITS.map(([name, bit]) => `<field name="${name}" start="${bit}" end="${bit}"/>`),
      '</flags>',
    ];
  }
  if (feature === 'sse') {
    const lanes: [string, string, number][] = [
      ['v4_float', 'ieee_single', 4], ['v2_double', 'ieee_double', 2], ['v16_int8', 'int8', 16],
      ['v8_int16', 'int16', 8], ['v4_int32', 'int32', 4], ['v2_int64', 'int64', 2],
    ];
    return [
      ...lanes.map(([id, type, count]) => `<vector id="xmm_${id}" type="${type}" count="${count}"/>`),
      '<union id="xmm_value">',
      ...lanes.map(([id]) => `<field name="${id}" type="xmm_${id}"/>`),
      '<field name="uint128" type="uint128"/>',
      '</union>',
    ];
  }
  return [];
}

/** The target description gdb reads with qXfer:features:read:target.xml. */
export function targetXml(): string {
  const lines = ['<?xml version="1.0"?>', '<!DOCTYPE target SYSTEM "gdb-target.dtd">', '<target version="1.0">', '<architecture>i386:x86-64</architecture>'];
  for (const feature of ['core', 'sse', 'segments'] as const) {
    lines.push(`<feature name="${FEATURE_NAME[feature]}">`, ...featureTypes(feature));
    REGISTERS.forEach((r, n) => {
      if (r.feature !== feature) return;
      lines.push(`<reg name="${r.name}" bitsize="${r.bits}" type="${r.type}" regnum="${n}"${r.group ? ` group="${r.group}"` : ''}/>`);
    });
    lines.push('</feature>');
  }
  lines.push('</target>');
  return `${lines.join('\n')}\n`;
}
