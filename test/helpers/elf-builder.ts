// Builds ELF64 x86_64 hvt kernel images in memory, so that every malformed
// case a test needs is one override away from a valid kernel.
//
// The default image (kernel()) is a complete, runnable hvt unikernel: it
// issues the HALT hypercall with status 0 and passes readElf, checkAbiNote,
// findNote(MANIFEST_NOTE), Manifest.parse and loadElf. Every field the
// tender reads can be overridden: the ELF header, each program header, the
// Solo5 ABI note and the manifest note (docs/abi.md §3, §4).
//
// File layout produced by buildElf(): ELF header at 0, program header table
// at 64, then the content of each segment (in order, 8-byte aligned), then
// section contents and the section header table if sections were given.
// Header fields such as e_phoff or e_phnum may be overridden without moving
// the table, which is how "broken" files are made.

export type U64 = number | bigint;

export const ELFCLASS32 = 1;
export const ELFCLASS64 = 2;
export const ELFDATA2LSB = 1;
export const ELFDATA2MSB = 2;
export const ET_EXEC = 2;
export const ET_DYN = 3;
export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;

export const PT_LOAD = 1;
export const PT_INTERP = 3;
export const PT_NOTE = 4;
export const PT_TLS = 7;
export const PT_GNU_STACK = 0x6474e551;
export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;
export const SHT_NOTE = 7;

export const ABI_NOTE_TYPE = 0x31494241; // "ABI1"
export const MANIFEST_NOTE_TYPE = 0x3154464d; // "MFT1"
export const HVT_TARGET = 1;
export const HVT_ABI_VERSION = 2;

export const MFT_BLOCK_BASIC = 1;
export const MFT_NET_BASIC = 2;
export const MFT_RESERVED_FIRST = 0x40000000;
export const MFT_ENTRY_SIZE = 104;

export const EHDR_SIZE = 64;
export const PHDR_SIZE = 56;
export const SHDR_SIZE = 64;

/** Default placement of the image (docs/abi.md §19.1). */
export const TEXT_VADDR = 0x100000;
export const RODATA_VADDR = 0x101000;
export const DATA_VADDR = 0x102000;
export const BSS_VADDR = 0x103000;
/** Where the default text puts its HALT argument structure (start of rodata). */
export const HALT_STRUCT_GPA = RODATA_VADDR;

// ---------------------------------------------------------------------------
// Plain ELF

export interface HeaderFields {
  /** e_ident[0..3]. */
  magic?: readonly number[];
  /** e_ident[EI_CLASS]. */
  class?: number;
  /** e_ident[EI_DATA]. */
  data?: number;
  /** e_ident[EI_VERSION]. */
  identVersion?: number;
  /** e_ident[EI_OSABI]. */
  osabi?: number;
  type?: number;
  machine?: number;
  /** e_version. */
  version?: number;
  entry?: U64;
  phoff?: U64;
  shoff?: U64;
  flags?: number;
  ehsize?: number;
  phentsize?: number;
  phnum?: number;
  shentsize?: number;
  shnum?: number;
  shstrndx?: number;
}

export interface Segment {
  type: number;
  /** p_flags; default PF_R. */
  flags?: number;
  /** Bytes stored in the file for this segment (placed automatically). */
  content?: Uint8Array;
  /** p_offset; default: where content was placed (0 without content). */
  offset?: U64;
  vaddr?: U64;
  /** p_paddr; default = vaddr. */
  paddr?: U64;
  /** p_filesz; default content length. */
  filesz?: U64;
  /** p_memsz; default = filesz. */
  memsz?: U64;
  /** p_align; default 0x1000 for PT_LOAD, 4 otherwise. */
  align?: U64;
}

export interface Section {
  type: number;
  content?: Uint8Array;
  offset?: U64;
  size?: U64;
  addr?: U64;
  flags?: U64;
  align?: U64;
}

export interface ElfSpec {
  header?: HeaderFields;
  segments: readonly Segment[];
  /** Optional section headers (the tender must not use them). */
  sections?: readonly Section[];
  /** Keep only the first `truncate` bytes of the file. */
  truncate?: number;
  /** Bytes appended at the very end (before truncation). */
  trailer?: Uint8Array;
}

const big = (v: U64): bigint => BigInt(v);
const align8 = (n: number): number => (n + 7) & ~7;

/** Assembles an ELF file from a spec. */
export function buildElf(spec: ElfSpec): Uint8Array {
  const h = spec.header ?? {};
  const segs = spec.segments;
  const sections = spec.sections ?? [];
  const tableEnd = EHDR_SIZE + PHDR_SIZE * segs.length;

  // Place segment and section contents after the program header table.
  let cursor = align8(tableEnd);
  const segOffsets = segs.map((s) => {
    if (!s.content) return 0;
    const at = cursor;
    cursor = align8(at + s.content.length);
    return at;
  });
  const secOffsets = sections.map((s) => {
    if (!s.content) return 0;
    const at = cursor;
    cursor = align8(at + s.content.length);
    return at;
  });
  const shoff = sections.length ? cursor : 0;
  if (sections.length) cursor += SHDR_SIZE * (sections.length + 1); // + the null section
  const trailerAt = cursor;
  if (spec.trailer) cursor += spec.trailer.length;

  const out = new Uint8Array(cursor);
  const v = new DataView(out.buffer);

  // ELF header.
  out.set(h.magic ?? [0x7f, 0x45, 0x4c, 0x46], 0);
  out[4] = h.class ?? ELFCLASS64;
  out[5] = h.data ?? ELFDATA2LSB;
  out[6] = h.identVersion ?? 1;
  out[7] = h.osabi ?? 0;
  v.setUint16(16, h.type ?? ET_EXEC, true);
  v.setUint16(18, h.machine ?? EM_X86_64, true);
  v.setUint32(20, h.version ?? 1, true);
  v.setBigUint64(24, big(h.entry ?? TEXT_VADDR), true);
  v.setBigUint64(32, big(h.phoff ?? EHDR_SIZE), true);
  v.setBigUint64(40, big(h.shoff ?? shoff), true);
  v.setUint32(48, h.flags ?? 0, true);
  v.setUint16(52, h.ehsize ?? EHDR_SIZE, true);
  v.setUint16(54, h.phentsize ?? PHDR_SIZE, true);
  v.setUint16(56, h.phnum ?? segs.length, true);
  v.setUint16(58, h.shentsize ?? (sections.length ? SHDR_SIZE : 0), true);
  v.setUint16(60, h.shnum ?? (sections.length ? sections.length + 1 : 0), true);
  v.setUint16(62, h.shstrndx ?? 0, true);

  // Program headers and their contents.
  segs.forEach((s, i) => {
    const o = EHDR_SIZE + PHDR_SIZE * i;
    const filesz = s.filesz ?? s.content?.length ?? 0;
    const vaddr = s.vaddr ?? 0;
    v.setUint32(o, s.type, true);
    v.setUint32(o + 4, s.flags ?? PF_R, true);
    v.setBigUint64(o + 8, big(s.offset ?? segOffsets[i] ?? 0), true);
    v.setBigUint64(o + 16, big(vaddr), true);
    v.setBigUint64(o + 24, big(s.paddr ?? vaddr), true);
    v.setBigUint64(o + 32, big(filesz), true);
    v.setBigUint64(o + 40, big(s.memsz ?? filesz), true);
    v.setBigUint64(o + 48, big(s.align ?? (s.type === PT_LOAD ? 0x1000 : 4)), true);
    if (s.content) out.set(s.content, segOffsets[i] ?? 0);
  });

  // Section headers (entry 0 is the null section).
  sections.forEach((s, i) => {
    const o = shoff + SHDR_SIZE * (i + 1);
    if (s.content) out.set(s.content, secOffsets[i] ?? 0);
    v.setUint32(o + 4, s.type, true);
    v.setBigUint64(o + 8, big(s.flags ?? 0), true);
    v.setBigUint64(o + 16, big(s.addr ?? 0), true);
    v.setBigUint64(o + 24, big(s.offset ?? secOffsets[i] ?? 0), true);
    v.setBigUint64(o + 32, big(s.size ?? s.content?.length ?? 0), true);
    v.setBigUint64(o + 48, big(s.align ?? 4), true);
  });

  if (spec.trailer) out.set(spec.trailer, trailerAt);
  return spec.truncate === undefined ? out : out.slice(0, spec.truncate);
}

// ---------------------------------------------------------------------------
// Notes

export interface NoteFields {
  type: number;
  /** Note name; a string gets a NUL appended. Default "Solo5". */
  name?: string | Uint8Array;
  /** n_namesz; default the name's length (with NUL). */
  namesz?: number;
  desc?: Uint8Array;
  /** n_descsz; default desc length (including the alignment padding below). */
  descsz?: number;
  /**
   * Alignment of the descriptor inside the note: the descriptor starts at
   * align_up(12 + padded name, descAlign), the padding bytes count in descsz
   * (as Solo5's manifest note does, docs/abi.md §3.5). Default 4.
   */
  descAlign?: number;
}

function nameBytes(name: string | Uint8Array): Uint8Array {
  if (typeof name !== 'string') return name;
  const b = new Uint8Array(name.length + 1);
  for (let i = 0; i < name.length; i++) b[i] = name.charCodeAt(i) & 0xff;
  return b;
}

/** One ELF note: n_namesz, n_descsz, n_type, name (padded to 4), descriptor. */
export function note(f: NoteFields): Uint8Array {
  const name = nameBytes(f.name ?? 'Solo5');
  const desc = f.desc ?? new Uint8Array(0);
  const nameEnd = 12 + ((name.length + 3) & ~3);
  const descAlign = f.descAlign ?? 4;
  const descAt = Math.ceil(nameEnd / descAlign) * descAlign;
  const out = new Uint8Array(descAt + desc.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, f.namesz ?? name.length, true);
  v.setUint32(4, f.descsz ?? descAt - nameEnd + desc.length, true);
  v.setUint32(8, f.type, true);
  out.set(name, 12);
  out.set(desc, descAt);
  return out;
}

export interface AbiNoteOptions {
  target?: number;
  version?: number;
  /** Override n_descsz (the bytes written stay the 16-byte descriptor unless `desc` is given). */
  descsz?: number;
  desc?: Uint8Array;
  name?: string | Uint8Array;
  namesz?: number;
  type?: number;
}

/** The Solo5 ABI note (.note.solo5.abi, docs/abi.md §3.4). */
export function abiNote(o: AbiNoteOptions = {}): Uint8Array {
  let desc = o.desc;
  if (!desc) {
    desc = new Uint8Array(16);
    const v = new DataView(desc.buffer);
    v.setUint32(0, o.target ?? HVT_TARGET, true);
    v.setUint32(4, o.version ?? HVT_ABI_VERSION, true);
  }
  const f: NoteFields = { type: o.type ?? ABI_NOTE_TYPE, desc };
  if (o.name !== undefined) f.name = o.name;
  if (o.namesz !== undefined) f.namesz = o.namesz;
  if (o.descsz !== undefined) f.descsz = o.descsz;
  return note(f);
}

export interface MftEntry {
  name?: string;
  type?: number;
  /** The attached byte (offset 96); must be 0 in a valid file. */
  attached?: number;
  /** Name byte 67 (the terminator position); must be 0 in a valid file. */
  byte67?: number;
}

export interface ManifestOptions {
  /** Devices after the implicit reserved entry 0. */
  devices?: readonly MftEntry[];
  /** The whole entry array, replacing [reserved entry 0, ...devices]. */
  entries?: readonly MftEntry[];
  /** Header version (default 1). */
  version?: number;
  /** Header entry count (default: the number of entries written). */
  count?: number;
  /** Extra bytes appended after the entries. */
  extra?: number;
}

/** The reserved entry 0 every manifest starts with. */
export const RESERVED_ENTRY: MftEntry = { name: '', type: MFT_RESERVED_FIRST };

/** Manifest bytes (header + entries, docs/abi.md §4.1): what Manifest.parse takes. */
export function manifestBytes(o: ManifestOptions = {}): Uint8Array {
  const entries = o.entries ?? [RESERVED_ENTRY, ...(o.devices ?? [])];
  const out = new Uint8Array(8 + MFT_ENTRY_SIZE * entries.length + (o.extra ?? 0));
  const v = new DataView(out.buffer);
  v.setUint32(0, o.version ?? 1, true);
  v.setUint32(4, o.count ?? entries.length, true);
  entries.forEach((e, i) => {
    const base = 8 + MFT_ENTRY_SIZE * i;
    const name = e.name ?? '';
    for (let k = 0; k < name.length && k < 68; k++) out[base + k] = name.charCodeAt(k) & 0xff;
    if (e.byte67 !== undefined) out[base + 67] = e.byte67;
    v.setUint32(base + 68, e.type ?? MFT_BLOCK_BASIC, true);
    out[base + 96] = e.attached ?? 0;
  });
  return out;
}

export interface ManifestNoteOptions extends ManifestOptions {
  /** Override n_descsz (the bytes written are unchanged). */
  descsz?: number;
  /** Use these manifest bytes instead of building them from the options. */
  manifest?: Uint8Array;
  name?: string | Uint8Array;
  namesz?: number;
  type?: number;
}

/** The Solo5 manifest note (.note.solo5.manifest, docs/abi.md §3.5): 4 padding bytes then the manifest. */
export function manifestNote(o: ManifestNoteOptions = {}): Uint8Array {
  const f: NoteFields = { type: o.type ?? MANIFEST_NOTE_TYPE, desc: o.manifest ?? manifestBytes(o), descAlign: 8 };
  if (o.name !== undefined) f.name = o.name;
  if (o.namesz !== undefined) f.namesz = o.namesz;
  if (o.descsz !== undefined) f.descsz = o.descsz;
  return note(f);
}

// ---------------------------------------------------------------------------
// Whole kernels

/**
 * The default text: HALT hypercall with the argument structure at
 * HALT_STRUCT_GPA, then hlt forever.
 *   mov edx, 0x508 ; mov eax, HALT_STRUCT_GPA ; out dx, eax ; 1: hlt ; jmp 1b
 */
export function haltText(structGpa = HALT_STRUCT_GPA): Uint8Array {
  const t = new Uint8Array([0xba, 0x08, 0x05, 0x00, 0x00, 0xb8, 0, 0, 0, 0, 0xef, 0xf4, 0xeb, 0xfd]);
  new DataView(t.buffer).setUint32(6, structGpa, true);
  return t;
}

/** struct hvt_hc_halt { cookie u64; exit_status i32; pad }, plus some rodata. */
export function haltStruct(status = 0, cookie = 0n): Uint8Array {
  const b = new Uint8Array(32);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, cookie, true);
  v.setInt32(8, status, true);
  b.set(new TextEncoder().encode('rodata!'), 16);
  return b;
}

/** The default PT_LOADs: text R+X, rodata R, data R+W with BSS tail, a BSS-only R+W. */
export function defaultLoads(): Segment[] {
  return [
    { type: PT_LOAD, flags: PF_R | PF_X, vaddr: TEXT_VADDR, content: haltText() },
    { type: PT_LOAD, flags: PF_R, vaddr: RODATA_VADDR, content: haltStruct() },
    { type: PT_LOAD, flags: PF_R | PF_W, vaddr: DATA_VADDR, content: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), memsz: 0x100 },
    { type: PT_LOAD, flags: PF_R | PF_W, vaddr: BSS_VADDR, filesz: 0, memsz: 0x1000 },
  ];
}

/** kernel_end of the default image: end of data (BSS-only segment excluded). */
export const DEFAULT_KERNEL_END = 0x103000;

export interface KernelOptions {
  header?: HeaderFields;
  /** Shorthand for header.entry. */
  entry?: U64;
  /** PT_LOAD program headers, replacing defaultLoads(). */
  loads?: readonly Segment[];
  /** ABI note options or raw note bytes; null leaves out the ABI PT_NOTE. */
  abi?: AbiNoteOptions | Uint8Array | null;
  /** Manifest note options or raw note bytes; null leaves out the manifest PT_NOTE. */
  manifest?: ManifestNoteOptions | Uint8Array | null;
  /** Overrides applied to the ABI PT_NOTE header (e.g. filesz, offset). */
  abiPhdr?: Partial<Segment>;
  /** Overrides applied to the manifest PT_NOTE header. */
  manifestPhdr?: Partial<Segment>;
  /** Program headers placed before all others. */
  before?: readonly Segment[];
  /** Program headers placed after all others. */
  after?: readonly Segment[];
  sections?: readonly Section[];
  truncate?: number;
  trailer?: Uint8Array;
}

const noteBytes = (n: AbiNoteOptions | ManifestNoteOptions | Uint8Array, make: (o: never) => Uint8Array): Uint8Array =>
  n instanceof Uint8Array ? n : make(n as never);

/**
 * The spec of a kernel: [before…, PT_LOADs…, ABI PT_NOTE, manifest PT_NOTE, after…].
 * With no options the kernel is valid and runnable.
 */
export function kernelSpec(o: KernelOptions = {}): ElfSpec {
  const segments: Segment[] = [...(o.before ?? []), ...(o.loads ?? defaultLoads())];
  if (o.abi !== null) {
    segments.push({ type: PT_NOTE, flags: PF_R, align: 4, content: noteBytes(o.abi ?? {}, abiNote), ...o.abiPhdr });
  }
  if (o.manifest !== null) {
    segments.push({ type: PT_NOTE, flags: PF_R, align: 4, content: noteBytes(o.manifest ?? {}, manifestNote), ...o.manifestPhdr });
  }
  segments.push(...(o.after ?? []));
  const header: HeaderFields = { ...o.header };
  if (o.entry !== undefined) header.entry = o.entry;
  const spec: ElfSpec = { header, segments };
  if (o.sections) spec.sections = o.sections;
  if (o.truncate !== undefined) spec.truncate = o.truncate;
  if (o.trailer) spec.trailer = o.trailer;
  return spec;
}

/** A kernel image; kernel() alone is a valid hvt unikernel that halts with status 0. */
export function kernel(o: KernelOptions = {}): Uint8Array {
  return buildElf(kernelSpec(o));
}

/** Index of the ABI / manifest PT_NOTE in kernelSpec(o).segments. */
export function noteIndex(o: KernelOptions, which: 'abi' | 'manifest'): number {
  const base = (o.before?.length ?? 0) + (o.loads ?? defaultLoads()).length;
  if (which === 'abi') return base;
  return base + (o.abi === null ? 0 : 1);
}
