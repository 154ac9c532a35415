// The smallest hvt unikernel there is, made in memory: its only instruction
// sequence is the HALT hypercall with status 0. A freshly booted library
// worker runs it once, unconfined, before it says it is idle. V8 compiles a
// function the first time it is called; that run compiles the whole path of
// building, running and closing a VM (ELF and notes, loader, page tables,
// vCPU set-up, the run loop), so the first real VM of the worker, which with
// the sandbox on is also its last, does not pay for it.
//
// Layout (docs/abi.md §3.1–§3.5, §4.1; the call is §9.1, §10.8): ELF header, three program headers (the text
// PT_LOAD, the ABI PT_NOTE, the manifest PT_NOTE), the two notes, and the
// text page at file offset 0x1000 loaded at 0x100000 (offset and address
// agree modulo the page alignment).
import { Hypercall, HYPERCALL_PORT_BASE, MIN_LOAD_ADDR } from '../abi/constants.js';

const EHDR = 64;
const PHDR = 56;
const PT_LOAD = 1;
const PT_NOTE = 4;
const TEXT_OFFSET = 0x1000;
/** HALT's argument structure, in the text page after the code. */
const HALT_STRUCT = MIN_LOAD_ADDR + 0x20;

/** A Solo5 note: namesz, descsz, type, "Solo5\0" padded to 4, the descriptor at descAlign. */
function note(type: number, desc: Uint8Array, descAlign: number): Uint8Array {
  const nameEnd = 12 + 8;
  const descAt = Math.ceil(nameEnd / descAlign) * descAlign;
  const out = new Uint8Array(descAt + desc.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 6, true);
  v.setUint32(4, descAt - nameEnd + desc.length, true);
  v.setUint32(8, type, true);
  out.set([0x53, 0x6f, 0x6c, 0x6f, 0x35, 0], 12); // "Solo5\0"
  out.set(desc, descAt);
  return out;
}

export function warmupKernel(): Uint8Array {
  // ABI note "ABI1": target 1 (hvt), ABI version 2.
  const abiDesc = new Uint8Array(16);
  new DataView(abiDesc.buffer).setUint32(0, 1, true);
  new DataView(abiDesc.buffer).setUint32(4, 2, true);
  const abi = note(0x31494241, abiDesc, 4);
  // Manifest note "MFT1": version 1, one entry, the reserved first one (no devices).
  const mft = new Uint8Array(8 + 104);
  const mv = new DataView(mft.buffer);
  mv.setUint32(0, 1, true);
  mv.setUint32(4, 1, true);
  mv.setUint32(8 + 68, 0x40000000, true);
  const manifest = note(0x3154464d, mft, 8);

  const abiAt = EHDR + 3 * PHDR;
  const mftAt = Math.ceil((abiAt + abi.length) / 8) * 8;
  const file = new Uint8Array(TEXT_OFFSET + 0x40);
  const v = new DataView(file.buffer);
  file.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0); // ELF, 64-bit, little-endian, version 1
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, 62, true); // EM_X86_64
  v.setUint32(20, 1, true);
  v.setBigUint64(24, BigInt(MIN_LOAD_ADDR), true); // e_entry
  v.setBigUint64(32, BigInt(EHDR), true); // e_phoff
  v.setUint16(52, EHDR, true);
  v.setUint16(54, PHDR, true);
  v.setUint16(56, 3, true);
  const phdr = (i: number, type: number, flags: number, offset: number, vaddr: number, size: number, align: number) => {
    const p = EHDR + i * PHDR;
    v.setUint32(p, type, true);
    v.setUint32(p + 4, flags, true);
    v.setBigUint64(p + 8, BigInt(offset), true);
    v.setBigUint64(p + 16, BigInt(vaddr), true);
    v.setBigUint64(p + 24, BigInt(vaddr), true);
    v.setBigUint64(p + 32, BigInt(size), true);
    v.setBigUint64(p + 40, BigInt(size), true);
    v.setBigUint64(p + 48, BigInt(align), true);
  };
  phdr(0, PT_LOAD, 5 /* R+X */, TEXT_OFFSET, MIN_LOAD_ADDR, 0x40, 0x1000);
  phdr(1, PT_NOTE, 4, abiAt, 0, abi.length, 4);
  phdr(2, PT_NOTE, 4, mftAt, 0, manifest.length, 8);
  file.set(abi, abiAt);
  file.set(manifest, mftAt);
  // mov edx, port ; mov eax, HALT_STRUCT ; out dx, eax ; 1: hlt ; jmp 1b
  const port = HYPERCALL_PORT_BASE + Hypercall.HALT;
  file.set([0xba, port & 0xff, port >> 8, 0, 0, 0xb8, 0, 0, 0, 0, 0xef, 0xf4, 0xeb, 0xfd], TEXT_OFFSET);
  v.setUint32(TEXT_OFFSET + 6, HALT_STRUCT, true);
  // struct hvt_hc_halt: cookie 0, exit_status 0 (the zeroed bytes already say so).
  return file;
}
