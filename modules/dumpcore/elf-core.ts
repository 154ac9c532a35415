// The head of a guest core file (docs/abi.md §15.4, §15.5): the ELF64
// header, two program headers (the PT_NOTE and one PT_LOAD for guest memory)
// and the NT_PRSTATUS note whose register block gdb reads. The memory image
// follows at MEMORY_OFFSET, guest address 0 first. Pure: bytes in, bytes out.

/**
 * Linux x86_64 `user_regs_struct`, the register block of `elf_prstatus`, in
 * its order: 8 bytes each, offset = 8 × position (§15.5).
 */
export const PRSTATUS_REGISTERS = [
  'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8',
  'rax', 'rcx', 'rdx', 'rsi', 'rdi', 'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss',
  'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
] as const;
export type PrstatusRegister = (typeof PRSTATUS_REGISTERS)[number];
export type PrstatusRegisters = Record<PrstatusRegister, bigint>;

// ELF constants (System V gABI; x86_64 psABI).
const ELFMAG = [0x7f, 0x45, 0x4c, 0x46]; // "\x7fELF"
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const EV_CURRENT = 1;
const ELFOSABI_STANDALONE = 255;
const ET_CORE = 4;
const EM_X86_64 = 62;
const PT_LOAD = 1;
const PT_NOTE = 4;
const NT_PRSTATUS = 1;

const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const PHNUM = 2;
/** Note header: namesz, descsz, type (4 bytes each). */
const NOTE_HEADER_SIZE = 12;
/** "CORE" and four NULs: the name the reference writes, namesz 8. */
const NOTE_NAME = 'CORE';
const NOTE_NAMESZ = 8;
/** sizeof(struct elf_prstatus) on Linux x86_64. */
export const PRSTATUS_SIZE = 336;
/** Offset of pr_reg inside elf_prstatus. */
export const PR_REG_OFFSET = 112;

/** Where the PT_NOTE segment starts (right after the program headers): 176. */
export const NOTE_OFFSET = EHDR_SIZE + PHNUM * PHDR_SIZE;
/** Size of the PT_NOTE segment: 356. */
export const NOTE_SIZE = NOTE_HEADER_SIZE + NOTE_NAMESZ + PRSTATUS_SIZE;
/** File offset of the register block: 308. */
export const REGISTERS_OFFSET = NOTE_OFFSET + NOTE_HEADER_SIZE + NOTE_NAMESZ + PR_REG_OFFSET;
/** File offset of guest address 0, i.e. the size of everything before memory: 532. */
export const MEMORY_OFFSET = NOTE_OFFSET + NOTE_SIZE;

/**
 * FreeBSD's layout (§18: "fills FreeBSD's prstatus, version 1, sizes filled
 * in"; sys/sys/procfs.h, x86/include/reg.h): prstatus_t is pr_version,
 * pr_statussz, pr_gregsetsz, pr_fpregsetsz, pr_osreldate, pr_cursig, pr_pid,
 * then struct reg (176 bytes) at 48. The note is named "FreeBSD" and is
 * shorter than Linux's; the memory image stays at MEMORY_OFFSET.
 */
export const FREEBSD_PRSTATUS_SIZE = 224;
export const FREEBSD_PR_REG_OFFSET = 48;
const FREEBSD_GREGSET_SIZE = 176;
const FREEBSD_FPREGSET_SIZE = 512;
const FREEBSD_PRSTATUS_VERSION = 1;
const FREEBSD_NOTE_NAME = 'FreeBSD';
/** struct reg (amd64): eight-byte fields at these offsets inside pr_reg. */
const FREEBSD_REG64: readonly [PrstatusRegister, number][] = [
  ['r15', 0], ['r14', 8], ['r13', 16], ['r12', 24], ['r11', 32], ['r10', 40], ['r9', 48], ['r8', 56],
  ['rdi', 64], ['rsi', 72], ['rbp', 80], ['rbx', 88], ['rdx', 96], ['rcx', 104], ['rax', 112],
  ['rip', 136], ['cs', 144], ['eflags', 152], ['rsp', 160], ['ss', 168],
];
/** Its 16-bit selector fields (r_trapno u32 @120 and r_err u32 @128 stay 0). */
const FREEBSD_REG16: readonly [PrstatusRegister, number][] = [['fs', 124], ['gs', 126], ['es', 132], ['ds', 134]];

/** Which operating system's note layout a core uses. */
export type CoreFlavour = 'linux' | 'freebsd';

/** Registers all zero: a starting point for callers and tests. */
export function zeroRegisters(): PrstatusRegisters {
  return Object.fromEntries(PRSTATUS_REGISTERS.map((r) => [r, 0n])) as PrstatusRegisters;
}

/**
 * The MEMORY_OFFSET bytes that precede the memory image of a guest of
 * memSize bytes, with these registers (each taken modulo 2^64). Everything
 * §15.4 does not name is zero.
 */
export function coreHead(memSize: number, regs: PrstatusRegisters, flavour: CoreFlavour = 'linux'): Uint8Array {
  if (!Number.isSafeInteger(memSize) || memSize < 0) throw new RangeError(`memory size ${memSize} is not a byte count`);
  const head = new Uint8Array(MEMORY_OFFSET);
  const v = new DataView(head.buffer);
  const u16 = (at: number, x: number) => v.setUint16(at, x, true);
  const u32 = (at: number, x: number) => v.setUint32(at, x, true);
  const u64 = (at: number, x: number | bigint) => v.setBigUint64(at, BigInt.asUintN(64, BigInt(x)), true);

  // ELF header.
  head.set(ELFMAG, 0);
  head[4] = ELFCLASS64;
  head[5] = ELFDATA2LSB;
  head[6] = EV_CURRENT;
  head[7] = ELFOSABI_STANDALONE;
  u16(16, ET_CORE);
  u16(18, EM_X86_64);
  u32(20, EV_CURRENT);
  u64(32, EHDR_SIZE); // e_phoff
  u16(52, EHDR_SIZE); // e_ehsize
  u16(54, PHDR_SIZE); // e_phentsize
  u16(56, PHNUM); // e_phnum

  // Program header 0: the notes.
  const note = EHDR_SIZE;
  u32(note, PT_NOTE);
  u64(note + 8, NOTE_OFFSET); // p_offset
  u64(note + 32, NOTE_SIZE); // p_filesz
  u64(note + 40, NOTE_SIZE); // p_memsz

  // Program header 1: guest memory [0, memSize), vaddr = paddr = 0, flags 0, align 0.
  const load = EHDR_SIZE + PHDR_SIZE;
  u32(load, PT_LOAD);
  u64(load + 8, MEMORY_OFFSET);
  u64(load + 32, memSize);
  u64(load + 40, memSize);

  if (flavour === 'freebsd') {
    writeFreebsdNote(head, regs);
    u64(note + 32, NOTE_HEADER_SIZE + NOTE_NAMESZ + FREEBSD_PRSTATUS_SIZE);
    u64(note + 40, NOTE_HEADER_SIZE + NOTE_NAMESZ + FREEBSD_PRSTATUS_SIZE);
    return head;
  }

  // The NT_PRSTATUS note: all of elf_prstatus zero but pr_reg.
  u32(NOTE_OFFSET, NOTE_NAMESZ);
  u32(NOTE_OFFSET + 4, PRSTATUS_SIZE);
  u32(NOTE_OFFSET + 8, NT_PRSTATUS);
  for (let i = 0; i < NOTE_NAME.length; i++) head[NOTE_OFFSET + NOTE_HEADER_SIZE + i] = NOTE_NAME.charCodeAt(i);
  PRSTATUS_REGISTERS.forEach((name, i) => u64(REGISTERS_OFFSET + 8 * i, regs[name]));
  return head;
}

/** The FreeBSD NT_PRSTATUS note at NOTE_OFFSET (the bytes after it, up to MEMORY_OFFSET, stay zero). */
function writeFreebsdNote(head: Uint8Array, regs: PrstatusRegisters): void {
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  v.setUint32(NOTE_OFFSET, NOTE_NAMESZ, true);
  v.setUint32(NOTE_OFFSET + 4, FREEBSD_PRSTATUS_SIZE, true);
  v.setUint32(NOTE_OFFSET + 8, NT_PRSTATUS, true);
  for (let i = 0; i < FREEBSD_NOTE_NAME.length; i++) head[NOTE_OFFSET + NOTE_HEADER_SIZE + i] = FREEBSD_NOTE_NAME.charCodeAt(i);
  const pr = NOTE_OFFSET + NOTE_HEADER_SIZE + NOTE_NAMESZ;
  v.setInt32(pr, FREEBSD_PRSTATUS_VERSION, true);
  v.setBigUint64(pr + 8, BigInt(FREEBSD_PRSTATUS_SIZE), true);
  v.setBigUint64(pr + 16, BigInt(FREEBSD_GREGSET_SIZE), true);
  v.setBigUint64(pr + 24, BigInt(FREEBSD_FPREGSET_SIZE), true);
  // pr_osreldate, pr_cursig and pr_pid (at 32, 36, 40) stay 0: there is no host thread to name.
  const reg = pr + FREEBSD_PR_REG_OFFSET;
  for (const [name, off] of FREEBSD_REG64) v.setBigUint64(reg + off, BigInt.asUintN(64, regs[name]), true);
  for (const [name, off] of FREEBSD_REG16) v.setUint16(reg + off, Number(BigInt.asUintN(16, regs[name])), true);
}
