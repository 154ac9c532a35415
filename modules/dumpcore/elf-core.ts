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

/** Registers all zero: a starting point for callers and tests. */
export function zeroRegisters(): PrstatusRegisters {
  return Object.fromEntries(PRSTATUS_REGISTERS.map((r) => [r, 0n])) as PrstatusRegisters;
}

/**
 * The MEMORY_OFFSET bytes that precede the memory image of a guest of
 * memSize bytes, with these registers (each taken modulo 2^64). Everything
 * §15.4 does not name is zero.
 */
export function coreHead(memSize: number, regs: PrstatusRegisters): Uint8Array {
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

  // The NT_PRSTATUS note: all of elf_prstatus zero but pr_reg.
  u32(NOTE_OFFSET, NOTE_NAMESZ);
  u32(NOTE_OFFSET + 4, PRSTATUS_SIZE);
  u32(NOTE_OFFSET + 8, NT_PRSTATUS);
  for (let i = 0; i < NOTE_NAME.length; i++) head[NOTE_OFFSET + NOTE_HEADER_SIZE + i] = NOTE_NAME.charCodeAt(i);
  PRSTATUS_REGISTERS.forEach((name, i) => u64(REGISTERS_OFFSET + 8 * i, regs[name]));
  return head;
}
