// Fuzzing the kernel reader and the loader (docs/abi.md §3, §4) with mutations of
// valid images from test/helpers/elf-builder.ts: field overwrites with
// interesting values in the ELF header, program headers, note headers and the
// manifest; random byte changes; truncations; duplicated, swapped and extra
// program headers (PT_LOAD, PT_NOTE and others).
//
// Every case goes through kernelFromBytes (readElf, checkAbiNote, the
// manifest note, Manifest.parse) and, if accepted, loadElf into a fake guest
// RAM of LIMIT bytes plus a guard area, all filled with a canary. Properties:
//   * the only thing ever thrown is a KernelError whose message is one line,
//     starts with the kernel name, and has no "undefined", "NaN" or negative
//     numbers in it;
//   * loadElf never writes outside [0x100000, LIMIT), nor outside the
//     [p_vaddr, p_vaddr + p_memsz) of the PT_LOADs it considers;
//   * a successful load has its entry in [0x100000, LIMIT), a page-aligned
//     kernel_end ≤ LIMIT, protections that are page-aligned, inside
//     [0x100000, LIMIT), ascending and never executable on the host, and the
//     segments' file bytes and zeroed tails in place;
//   * accept/reject and, on acceptance, entry, kernel_end and the protection
//     list agree with an independent model of §3.1–§3.5 and §4.2 written
//     from the spec (test/helpers/elf-model.ts).
// Then about fifty of the mutated files go through the real CLI (--mem=4, the
// same limit): exit status 1 with the very line the in-process reader gave,
// or, for kernels that load (KVM only), a guest status or one documented
// runtime line; never "internal error", never a signal death.
//
// Replay: every failure names its case; run
//   FUZZ_SEED=<seed> FUZZ_CASE=<index> npx vitest run test/fuzz/elf.fuzz.test.ts
// to run that single case with its mutations printed. FUZZ_CASES=<n> changes
// the number of cases (default 3000), FUZZ_CLI_CASES=<n> the number of files
// run through the CLI (default 50).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KernelError } from '../../monitor/errors.js';
import { type Kernel, kernelFromBytes } from '../../monitor/kernel/kernel.js';
import { type LoadResult, loadElf, type SegmentProtection } from '../../monitor/kernel/loader.js';
import {
  abiNote,
  kernel,
  type KernelOptions,
  manifestNote,
  MFT_BLOCK_BASIC,
  MFT_NET_BASIC,
  note,
  PF_R,
  PF_W,
  PF_X,
  PT_GNU_STACK,
  PT_INTERP,
  PT_LOAD,
  PT_NOTE,
  PT_TLS,
  type Segment,
} from '../helpers/elf-builder.js';
import { modelKernel } from '../helpers/elf-model.js';
import { caseSeed, envCount, fuzzSeed, Prng } from '../helpers/prng.js';
import { kvmAvailable, runTender } from '../helpers/tender.js';

const MiB = 1 << 20;
const LIMIT = 4 * MiB;
const GUARD = MiB;
const MIN_LOAD = 0x100000;
const PAGE = 4096;
const CANARY = 0xa5;
const NAME = 'fuzz/kernel.hvt';

const BASE_SEED = fuzzSeed(0x5eede1f0);
const CASES = envCount('FUZZ_CASES', 3000);
const ONLY = process.env['FUZZ_CASE'] === undefined || process.env['FUZZ_CASE'] === '' ? null : Number(process.env['FUZZ_CASE']);
const CLI_CASES = envCount('FUZZ_CLI_CASES', 50);

const replay = (index: number) =>
  `FUZZ_SEED=0x${BASE_SEED.toString(16)} FUZZ_CASE=${index} npx vitest run test/fuzz/elf.fuzz.test.ts`;

// ---------------------------------------------------------------------------
// Little-endian helpers over plain byte arrays

function getLe(b: Uint8Array, off: number, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[off + i] ?? 0);
  return v;
}

function setLe(b: Uint8Array, off: number, size: number, value: bigint): void {
  let v = BigInt.asUintN(size * 8, value);
  for (let i = 0; i < size; i++) {
    if (off + i < b.length) b[off + i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

// ---------------------------------------------------------------------------
// Base images

const U64_MAX = (1n << 64n) - 1n;

function interestingU64(r: Prng, fileLen: number): bigint {
  const pool: bigint[] = [
    0n, 1n, 2n, 3n, 4n, 7n, 8n, 12n, 16n, 19n, 20n, 24n, 32n, 56n, 64n, 0x7fn, 0x80n, 0xffn,
    0xfffn, 0x1000n, 0x1001n, 0xffffn, 0x10000n, 0xfffffn, 0x100000n, 0x100001n, 0x100fffn,
    0x101000n, 0x1fffffn, 0x200000n, 0x200001n,
    BigInt(LIMIT - PAGE), BigInt(LIMIT - 1), BigInt(LIMIT), BigInt(LIMIT + 1), BigInt(LIMIT + PAGE),
    (1n << 31n) - 1n, 1n << 31n, (1n << 32n) - 1n, 1n << 32n, (1n << 32n) + 0x100000n,
    (1n << 53n) - 1n, 1n << 53n, (1n << 53n) + 1n,
    (1n << 63n) - 1n, 1n << 63n, (1n << 63n) + 1n, U64_MAX - 0xfffn, U64_MAX - 1n, U64_MAX,
    BigInt(fileLen) - 1n, BigInt(fileLen), BigInt(fileLen) + 1n, BigInt(fileLen) - 20n,
    6667n, 6668n, 6669n, 0x31494241n, 0x3154464dn, 0x40000000n,
  ];
  return r.chance(0.1) ? r.u64() : r.pick(pool);
}

/** A random program header for the "extra entries" templates. */
function randomSegment(r: Prng): Segment {
  const type = r.pick([PT_LOAD, PT_LOAD, PT_NOTE, PT_NOTE, PT_INTERP, PT_TLS, PT_GNU_STACK, r.u32()]);
  const s: Segment = { type, flags: r.pick([PF_R, PF_R | PF_X, PF_R | PF_W, PF_W | PF_X, 0, r.u32()]) };
  switch (r.int(6)) {
    case 0:
      s.content = abiNote(r.chance(0.5) ? {} : { target: r.pick([1, 2, 0]), version: r.pick([2, 1, 3]) });
      break;
    case 1:
      s.content = manifestNote(r.chance(0.5) ? {} : { devices: [{ name: 'x', type: r.pick([1, 2, 3]) }] });
      break;
    case 2:
      s.content = note({ type: r.u32(), name: r.pick(['Solo5', 'OpenBSD', 'GNU', '']), desc: r.bytes(r.int(24)) });
      break;
    case 3:
      s.content = r.bytes(r.int(300));
      break;
    default:
      break; // no content: offset 0, filesz 0 unless overridden
  }
  if (type === PT_LOAD) {
    s.vaddr = r.pick([0x104000, 0x110000, 0x200000, LIMIT - PAGE, LIMIT - 2 * PAGE, 0x100000, 0xff000, 0x180000 + r.int(0x100) * 8]);
    s.align = r.pick([0x1000, 0x1000, 0x200000, 8, 1, 0, 0x3000]);
    if (r.chance(0.5)) s.memsz = (s.content?.length ?? 0) + r.int(3) * PAGE;
  } else if (r.chance(0.3)) {
    s.vaddr = interestingU64(r, 0);
  }
  if (r.chance(0.25)) s.filesz = interestingU64(r, 4096);
  if (r.chance(0.15)) s.offset = interestingU64(r, 4096);
  return s;
}

const openbsdNote = (): Segment => ({
  type: PT_NOTE,
  content: note({ type: 1, name: 'OpenBSD', desc: new Uint8Array(4) }),
});
const interp = (): Segment => ({ type: PT_INTERP, content: new TextEncoder().encode('/nonexistent/solo5/\0') });

/** Valid (or nearly valid) starting points for the mutations. */
const TEMPLATES: { name: string; make: (r: Prng) => KernelOptions }[] = [
  { name: 'default', make: () => ({}) },
  {
    name: 'devices',
    make: () => ({ manifest: { devices: [{ name: 'storage', type: MFT_BLOCK_BASIC }, { name: 'service', type: MFT_NET_BASIC }] } }),
  },
  { name: 'solo5-like', make: () => ({ before: [openbsdNote(), interp()] }) },
  {
    // The largest manifest (64 entries, descsz 6668) with 67-character names.
    name: 'max-manifest',
    make: () => ({
      manifest: {
        devices: Array.from({ length: 63 }, (_, i) => ({
          name: `d${i}`.padEnd(67, 'x'),
          type: i % 2 ? MFT_NET_BASIC : MFT_BLOCK_BASIC,
        })),
      },
    }),
  },
  {
    name: 'up-to-limit',
    make: (r) => ({
      loads: [
        { type: PT_LOAD, flags: PF_R | PF_X, vaddr: 0x100000, content: r.bytes(0x1800) },
        { type: PT_LOAD, flags: PF_R, vaddr: 0x102000, content: r.bytes(0x40) },
        { type: PT_LOAD, flags: PF_R | PF_W, vaddr: 0x200000, align: 0x200000, content: r.bytes(0x80), memsz: 0x3000 },
        // Ends exactly at the limit.
        { type: PT_LOAD, flags: PF_W, vaddr: LIMIT - 2 * PAGE, content: r.bytes(0x100), memsz: 2 * PAGE },
      ],
    }),
  },
  {
    name: 'extra-entries',
    make: (r) => ({
      before: Array.from({ length: r.int(3) }, () => randomSegment(r)),
      after: Array.from({ length: 1 + r.int(3) }, () => randomSegment(r)),
    }),
  },
];

// ---------------------------------------------------------------------------
// Where the fields are (found by parsing the unmutated image)

interface Field {
  off: number;
  size: 1 | 2 | 4 | 8;
  what: string;
}

function fieldsOf(b: Uint8Array): Field[] {
  const f: Field[] = [];
  const add = (off: number, size: 1 | 2 | 4 | 8, what: string) => {
    if (off >= 0 && off + size <= b.length) f.push({ off, size, what });
  };
  for (let i = 0; i < 8; i++) add(i, 1, `e_ident[${i}]`);
  add(16, 2, 'e_type');
  add(18, 2, 'e_machine');
  add(20, 4, 'e_version');
  add(24, 8, 'e_entry');
  add(32, 8, 'e_phoff');
  add(40, 8, 'e_shoff');
  add(48, 4, 'e_flags');
  add(52, 2, 'e_ehsize');
  add(54, 2, 'e_phentsize');
  add(56, 2, 'e_phnum');
  const phoff = Number(getLe(b, 32, 8));
  const phnum = Number(getLe(b, 56, 2));
  for (let i = 0; i < phnum; i++) {
    const o = phoff + 56 * i;
    add(o, 4, `phdr[${i}].p_type`);
    add(o + 4, 4, `phdr[${i}].p_flags`);
    add(o + 8, 8, `phdr[${i}].p_offset`);
    add(o + 16, 8, `phdr[${i}].p_vaddr`);
    add(o + 24, 8, `phdr[${i}].p_paddr`);
    add(o + 32, 8, `phdr[${i}].p_filesz`);
    add(o + 40, 8, `phdr[${i}].p_memsz`);
    add(o + 48, 8, `phdr[${i}].p_align`);
    if (Number(getLe(b, o, 4)) !== PT_NOTE) continue;
    const n = Number(getLe(b, o + 8, 8));
    if (n + 20 > b.length) continue;
    add(n, 4, `note@${i}.namesz`);
    add(n + 4, 4, `note@${i}.descsz`);
    add(n + 8, 4, `note@${i}.type`);
    for (let k = 12; k < 20; k++) add(n + k, 1, `note@${i}.name[${k - 12}]`);
    const type = Number(getLe(b, n + 8, 4));
    if (type === 0x31494241) {
      for (let k = 0; k < 4; k++) add(n + 20 + 4 * k, 4, `abi@${i}.word[${k}]`);
    } else if (type === 0x3154464d) {
      add(n + 20, 4, `mft@${i}.pad`);
      const m = n + 24;
      add(m, 4, `mft@${i}.version`);
      add(m + 4, 4, `mft@${i}.entries`);
      const count = Number(getLe(b, m + 4, 4));
      for (const e of new Set([0, 1, 2, 3, count - 1])) {
        const eo = m + 8 + 104 * e;
        if (e < 0 || eo + 104 > b.length) continue;
        add(eo, 1, `mft@${i}.e[${e}].name[0]`);
        add(eo + 66, 1, `mft@${i}.e[${e}].name[66]`);
        add(eo + 67, 1, `mft@${i}.e[${e}].name[67]`);
        add(eo + 68, 4, `mft@${i}.e[${e}].type`);
        add(eo + 72, 8, `mft@${i}.e[${e}].capacity`);
        add(eo + 80, 2, `mft@${i}.e[${e}].block_size`);
        add(eo + 88, 4, `mft@${i}.e[${e}].host_fd`);
        add(eo + 96, 1, `mft@${i}.e[${e}].attached`);
        add(eo + 97, 1, `mft@${i}.e[${e}].pad`);
      }
    }
  }
  return f;
}

// ---------------------------------------------------------------------------
// Mutations

interface Case {
  index: number;
  seed: number;
  template: string;
  ops: string[];
  bytes: Uint8Array;
}

function mutateOnce(r: Prng, b: Uint8Array, fields: readonly Field[], ops: string[]): Uint8Array {
  const op = r.weighted([40, 8, 18, 10, 5, 5, 6, 8]);
  const hex = (v: bigint) => `0x${v.toString(16)}`;
  switch (op) {
    case 0: {
      // A field gets an interesting value.
      if (fields.length === 0) return b;
      const f = r.pick(fields);
      const cur = getLe(b, f.off, f.size);
      let v: bigint;
      if (f.size === 1) v = BigInt(r.pick([0, 1, 2, 0x7f, 0x80, 0xff, r.u32() & 0xff]));
      else if (r.chance(0.15)) v = cur + BigInt(r.pick([1, -1, 8, -8, PAGE, -PAGE, 20, -20]));
      else v = interestingU64(r, b.length);
      setLe(b, f.off, f.size, v);
      ops.push(`${f.what}@${f.off} = ${hex(BigInt.asUintN(f.size * 8, v))} (was ${hex(cur)})`);
      return b;
    }
    case 1: {
      // Small arithmetic on a field.
      if (fields.length === 0) return b;
      const f = r.pick(fields);
      const cur = getLe(b, f.off, f.size);
      const v = cur + BigInt(r.range(-16, 16));
      setLe(b, f.off, f.size, v);
      ops.push(`${f.what}@${f.off} = ${hex(BigInt.asUintN(f.size * 8, v))} (was ${hex(cur)})`);
      return b;
    }
    case 2: {
      // Random bytes or bit flips anywhere (mostly in the first 1 KiB, where the structure is).
      const n = r.range(1, 8);
      const parts: string[] = [];
      for (let k = 0; k < n && b.length > 0; k++) {
        const at = r.chance(0.7) ? r.int(Math.min(b.length, 1024)) : r.int(b.length);
        const old = b[at] ?? 0;
        b[at] = r.chance(0.5) ? old ^ (1 << r.int(8)) : r.u32() & 0xff;
        parts.push(`[${at}] ${old}→${b[at]}`);
      }
      ops.push(`bytes ${parts.join(', ')}`);
      return b;
    }
    case 3: {
      // Truncation: at random, or near a field boundary.
      let len: number;
      if (fields.length && r.chance(0.6)) {
        const f = r.pick(fields);
        len = Math.max(0, Math.min(b.length, f.off + r.range(-2, f.size + 2)));
      } else {
        len = r.int(b.length + 1);
      }
      ops.push(`truncate to ${len} of ${b.length}`);
      return b.slice(0, len);
    }
    case 4:
    case 5: {
      // Copy one program header over another, or swap two.
      const phoff = Number(getLe(b, 32, 8));
      const phnum = Number(getLe(b, 56, 2));
      if (phnum < 2 || phoff + 56 * phnum > b.length) return b;
      const i = r.int(phnum);
      const j = r.int(phnum);
      const a = b.slice(phoff + 56 * i, phoff + 56 * (i + 1));
      const c = b.slice(phoff + 56 * j, phoff + 56 * (j + 1));
      b.set(a, phoff + 56 * j);
      if (op === 5) b.set(c, phoff + 56 * i);
      ops.push(`${op === 4 ? 'copy' : 'swap'} phdr[${i}] ${op === 4 ? '→' : '↔'} phdr[${j}]`);
      return b;
    }
    case 6: {
      // More program headers than the table holds: the next entries are whatever follows.
      const phnum = Number(getLe(b, 56, 2));
      const v = r.pick([phnum + 1, phnum + 2, phnum + r.range(3, 40), 0xffff, 0]);
      setLe(b, 56, 2, BigInt(v));
      ops.push(`e_phnum = ${v & 0xffff} (was ${phnum})`);
      return b;
    }
    default: {
      // Appended garbage, sometimes with a pointer into it.
      const extra = r.bytes(r.range(1, 256));
      const out = new Uint8Array(b.length + extra.length);
      out.set(b);
      out.set(extra, b.length);
      ops.push(`append ${extra.length} random bytes`);
      return out;
    }
  }
}

function makeCase(index: number): Case {
  const seed = caseSeed(BASE_SEED, index);
  const r = new Prng(seed);
  const t = TEMPLATES[r.weighted([28, 12, 12, 8, 15, 25])] as (typeof TEMPLATES)[number];
  let bytes = kernel(t.make(r));
  const fields = fieldsOf(bytes);
  const ops: string[] = [];
  // A few cases stay unmutated: the oracle must accept those.
  const n = r.chance(0.03) ? 0 : r.weighted([0, 45, 30, 15, 10]);
  for (let k = 0; k < n; k++) bytes = mutateOnce(r, bytes, fields, ops);
  return { index, seed, template: t.name, ops, bytes };
}

// ---------------------------------------------------------------------------
// Running one case

const arena = new Uint8Array(LIMIT + GUARD);
const arenaBuf = Buffer.from(arena.buffer, arena.byteOffset, arena.byteLength);
const canaryBuf = Buffer.alloc(arena.length, CANARY);
const zeros = Buffer.alloc(LIMIT);

type Outcome = 'kernel-reject' | 'load-reject' | 'load-ok';

interface Result {
  c: Case;
  outcome: Outcome;
  /** The KernelError message, if any. */
  message?: string;
  problems: string[];
  devices: number;
}

/** Problems with a thrown value: must be a one-line KernelError about NAME. */
function thrownProblems(e: unknown, name: string): string[] {
  if (!(e instanceof KernelError)) {
    const what = e instanceof Error ? `${e.constructor.name}: ${e.message}\n${e.stack ?? ''}` : String(e);
    return [`threw something other than a KernelError: ${what}`];
  }
  const m = e.message;
  const out: string[] = [];
  if (/[\n\r]/.test(m)) out.push(`message is not one line: ${JSON.stringify(m)}`);
  if (/undefined|NaN|Infinity|\[object/.test(m)) out.push(`message has undefined/NaN: ${m}`);
  if (/(^|[^\w.])-\d/.test(m.slice(name.length))) out.push(`message has a negative number: ${m}`);
  if (!m.startsWith(`${name}: `)) out.push(`message does not start with the kernel name: ${m}`);
  return out;
}

const isCanary = (start: number, end: number) => start >= end || arenaBuf.compare(canaryBuf, start, end, start, end) === 0;

function runCase(c: Case): Result {
  const problems: string[] = [];
  const model = modelKernel(c.bytes, LIMIT);
  let k: Kernel;
  try {
    k = kernelFromBytes(c.bytes, NAME);
  } catch (e) {
    problems.push(...thrownProblems(e, NAME));
    if (model.stage !== 'kernel') problems.push(`kernel refused (${(e as Error).message}) but the model accepts it`);
    return { c, outcome: 'kernel-reject', message: (e as Error).message, problems, devices: 0 };
  }
  if (model.stage === 'kernel') problems.push(`kernel accepted, but the model refuses it: ${model.why}`);
  const devices = k.manifest.unattached().length;

  const calls: SegmentProtection[] = [];
  let loaded: LoadResult | undefined;
  let message: string | undefined;
  try {
    loaded = loadElf(k.src, k.elf, LIMIT, { bytes: arena, protect: (p) => void calls.push({ ...p }) }, NAME);
  } catch (e) {
    problems.push(...thrownProblems(e, NAME));
    message = (e as Error).message;
    if (model.stage === 'ok') problems.push(`load failed (${message}) but the model loads it`);
  }

  // Writes: never outside [0x100000, LIMIT), nor outside the considered segments.
  if (!isCanary(0, MIN_LOAD)) problems.push('loadElf wrote below 0x100000');
  if (!isCanary(LIMIT, arena.length)) problems.push('loadElf wrote at or above the limit');
  const ranges = k.elf.phdrs
    .filter((p) => p.type === PT_LOAD && p.filesz !== 0n)
    .map((p) => {
      const s = p.vaddr < BigInt(arena.length) ? Number(p.vaddr) : arena.length;
      const e = p.vaddr + p.memsz < BigInt(arena.length) ? Number(p.vaddr + p.memsz) : arena.length;
      return [s, Math.max(s, e)] as const;
    })
    .sort((a, b) => a[0] - b[0]);
  let at = 0;
  for (const [s, e] of ranges) {
    if (s > at && !isCanary(at, s)) problems.push(`loadElf wrote outside every segment, in [0x${at.toString(16)}, 0x${s.toString(16)})`);
    at = Math.max(at, e);
  }
  if (!isCanary(at, arena.length)) problems.push(`loadElf wrote outside every segment, above 0x${at.toString(16)}`);

  if (loaded) {
    if (model.stage === 'load') problems.push(`loaded, but the model refuses it: ${model.why}`);
    if (!(loaded.entry >= MIN_LOAD && loaded.entry < LIMIT)) problems.push(`entry 0x${loaded.entry.toString(16)} outside [0x100000, limit)`);
    if (!(loaded.kernelEnd <= LIMIT && loaded.kernelEnd % PAGE === 0)) problems.push(`kernel_end ${loaded.kernelEnd} not page-aligned or above the limit`);
    let last = MIN_LOAD;
    for (const p of calls) {
      const ok = p.start >= last && p.start < p.end && p.end <= LIMIT && p.start % PAGE === 0 && p.end % PAGE === 0 && [0, 1, 3].includes(p.prot);
      if (!ok) problems.push(`bad protection request ${JSON.stringify(p)}`);
      last = p.end;
    }
    if (model.stage === 'ok') {
      if (loaded.entry !== model.entry || loaded.kernelEnd !== model.kernelEnd) {
        problems.push(`entry/kernel_end ${JSON.stringify(loaded)} != model ${model.entry}/${model.kernelEnd}`);
      }
      if (JSON.stringify(calls) !== JSON.stringify(model.protections)) {
        problems.push(`protections ${JSON.stringify(calls)} != model ${JSON.stringify(model.protections)}`);
      }
      // The file bytes and the zeroed tails are in place.
      const file = Buffer.from(c.bytes.buffer, c.bytes.byteOffset, c.bytes.byteLength);
      for (const s of model.considered) {
        const v = Number(s.vaddr);
        const fz = Number(s.filesz);
        const mz = Number(s.memsz);
        const off = Number(s.offset);
        if (arenaBuf.compare(file, off, off + fz, v, v + fz) !== 0) problems.push(`phdr[${s.index}] file bytes not loaded at 0x${v.toString(16)}`);
        if (arenaBuf.compare(zeros, 0, mz - fz, v + fz, v + mz) !== 0) problems.push(`phdr[${s.index}] tail not zeroed`);
      }
    }
  }
  arena.fill(CANARY);
  const outcome: Outcome = loaded ? 'load-ok' : 'load-reject';
  const r: Result = { c, outcome, problems, devices };
  if (message !== undefined) r.message = message;
  return r;
}

function report(r: Result): string {
  return [
    `case ${r.c.index} (seed 0x${r.c.seed.toString(16)}, template ${r.c.template}), outcome ${r.outcome}${r.message ? `: ${r.message}` : ''}`,
    ...r.c.ops.map((o) => `    mutation: ${o}`),
    ...r.problems.map((p) => `    PROBLEM: ${p}`),
    `    replay: ${replay(r.c.index)}`,
  ].join('\n');
}

let results: Result[] | undefined;
function allResults(): Result[] {
  if (!results) {
    arena.fill(CANARY);
    const indices = ONLY !== null ? [ONLY] : Array.from({ length: CASES }, (_, i) => i);
    results = indices.map((i) => runCase(makeCase(i)));
  }
  return results;
}

// ---------------------------------------------------------------------------

describe(`ELF fuzz (base seed 0x${BASE_SEED.toString(16)})`, () => {
  it(`kernelFromBytes + loadElf on ${ONLY !== null ? `case ${ONLY}` : `${CASES} mutated kernels`}: only one-line KernelErrors, no stray writes, agrees with the spec model`, () => {
    const rs = allResults();
    if (ONLY !== null) for (const r of rs) console.log(report(r));
    const bad = rs.filter((r) => r.problems.length > 0);
    const counts: Record<string, number> = {};
    for (const r of rs) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
    console.log(`elf fuzz: ${rs.length} cases, ${JSON.stringify(counts)}, ${bad.length} with problems`);
    expect(bad.length, `${bad.length} failing case(s):\n${bad.slice(0, 8).map(report).join('\n')}`).toBe(0);
    // The mutations must reach every stage, or the fuzzing is not doing its job.
    if (ONLY === null && CASES >= 1000) {
      expect(counts['kernel-reject'] ?? 0).toBeGreaterThan(CASES / 10);
      expect(counts['load-reject'] ?? 0).toBeGreaterThan(CASES / 20);
      expect(counts['load-ok'] ?? 0).toBeGreaterThan(CASES / 20);
    }
  });

  describe('through the CLI', () => {
    let dir: string | undefined;
    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    // Only lines the tender documents for a run (docs/abi.md §9.2, §9.3, §14; README).
    const RUNTIME_LINE =
      /^ukvm-ts: (Invalid guest access: gpa=0x[0-9a-f]+, sz=\d+|Invalid guest hypercall: num=\d+|Invalid guest port access: port=0x[0-9a-f]+|KVM: host\/guest translation fault: rip=0x[0-9a-f]+|KVM: unhandled exit: exit_reason=0x[0-9a-f]+, rip=0x[0-9a-f]+|KVM: internal error exit: suberror=0x[0-9a-f]+|KVM: entry failure: hw_entry_failure_reason=0x[0-9a-f]+|Exiting on signal 15)$/;

    it(`${CLI_CASES} mutated files: exit 1 with the reader's one line, or a guest status; never internal error or a signal`, () => {
      const rs = allResults();
      // Distinct messages first, from every stage; loads need KVM.
      const pick: Result[] = [];
      const seen = new Set<string>();
      const want: [Outcome, number][] = kvmAvailable
        ? [['kernel-reject', Math.round(CLI_CASES * 0.44)], ['load-reject', Math.round(CLI_CASES * 0.28)], ['load-ok', Math.round(CLI_CASES * 0.28)]]
        : [['kernel-reject', CLI_CASES]];
      for (const [outcome, n] of want) {
        const pool = rs.filter((r) => r.outcome === outcome && r.problems.length === 0);
        const key = (r: Result) => (r.message ?? `ok ${r.devices}`).replace(/\d+/g, '#');
        const fresh = pool.filter((r) => {
          if (seen.has(key(r))) return false;
          seen.add(key(r));
          return true;
        });
        const rest = pool.filter((r) => !fresh.includes(r));
        pick.push(...[...fresh, ...rest].slice(0, n));
      }
      dir = mkdtempSync(join(tmpdir(), 'ukvm-ts-fuzz-elf-'));
      const failures: string[] = [];
      let ran = 0;
      let spun = 0;
      for (const r of pick) {
        const file = join(dir, `case-${r.c.index}.hvt`);
        writeFileSync(file, r.c.bytes);
        // What the reader says about the file under its CLI name.
        let expected: string | null = null;
        let k: Kernel | undefined;
        try {
          k = kernelFromBytes(r.c.bytes, file);
        } catch (e) {
          expected = `ukvm-ts: ${(e as Error).message}\n`;
        }
        const run = runTender(['--mem=4', file], { timeoutMs: 4000 });
        const fail = (what: string) =>
          failures.push(`${what}\n    status=${run.status} signal=${run.signal} stderr=${JSON.stringify(run.stderr)}\n${report(r)}`);
        if (run.signal !== null) {
          fail('killed by a signal');
          continue;
        }
        if (/internal error:/.test(run.stderr)) {
          fail('internal error');
          continue;
        }
        if (expected !== null) {
          if (run.status !== 1 || run.stderr !== expected) fail(`expected status 1 and ${JSON.stringify(expected)}`);
          continue;
        }
        if (k && k.manifest.unattached().length > 0) {
          const lines = run.stderr.split('\n');
          const ok = run.status === 1 && run.stderr.startsWith("ukvm-ts: Device '") &&
            run.stderr.endsWith('ukvm-ts: All declared devices must be attached. See --help for syntax.\n') && lines.length >= 3;
          if (!ok) fail('expected the unattached-device lines');
          continue;
        }
        if (r.outcome === 'load-reject') {
          let loadMessage = '';
          try {
            loadElf(k!.src, k!.elf, LIMIT, { bytes: new Uint8Array(LIMIT), protect: () => {} }, file);
          } catch (e) {
            loadMessage = (e as Error).message;
          }
          if (run.status !== 1 || run.stderr !== `ukvm-ts: ${loadMessage}\n`) fail(`expected status 1 and ukvm-ts: ${loadMessage}`);
          continue;
        }
        // It loads: the guest ran (it may do anything, even spin).
        ran++;
        if (run.stderr === '') {
          if (run.status === null) fail('no exit status');
          continue;
        }
        if (run.stderr === 'ukvm-ts: Exiting on signal 15\n') spun++;
        if (run.status !== 1 || !RUNTIME_LINE.test(run.stderr.replace(/\n$/, '')) || run.stderr.split('\n').length !== 2) {
          fail('expected a guest status, or status 1 with one documented runtime line');
        }
      }
      console.log(`elf fuzz via CLI: ${pick.length} files, ${ran} ran a guest (${spun} spun until the timeout), ${failures.length} failures`);
      if (ONLY === null) expect(pick.length).toBeGreaterThanOrEqual(Math.min(CLI_CASES, 40));
      expect(failures.length, failures.slice(0, 6).join('\n')).toBe(0);
    }, 120_000);
  });
});
