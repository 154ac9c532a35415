#!/usr/bin/env node
// Builds the C test unikernels: test/guests/NAME.c → test/guests/build/NAME.hvt
//
//   node test/guests/build.mjs            build every test/guests/*.c
//   node test/guests/build.mjs hello exit build only these
//
// Each guest is compiled with the machine's gcc together with the runtime in
// runtime/ and linked with runtime/guest.ld. A guest is rebuilt only if its
// output is older than its source, any runtime file or this script. Every
// built binary is checked against docs/abi.md §19.1 before it is put in
// place. A guest may ask for special treatment with a comment line
//   // hvt-build: no-check   (skip the §19.1 check, for deliberately bad ELFs)
//   // hvt-build: debug      (-g -O0 and frame pointers: for gdb and core dumps)
// On any failure: the compiler's own output, then one line saying what
// failed, exit status 1. Messages go to stderr; stdout stays untouched.
import { execFile } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const RUNTIME = join(HERE, 'runtime');
const OUT = join(HERE, 'build');
const CC = process.env.CC || 'gcc';
const ME = 'build.mjs';

const BASE_CFLAGS = [
  '-std=gnu11', '-Wall', '-Wextra',
  '-ffreestanding', '-fno-stack-protector', '-fno-pic', '-no-pie', '-nostdlib', '-static',
  '-mno-red-zone', '-O2', '-fno-asynchronous-unwind-tables', '-fno-unwind-tables',
  '-ffunction-sections', '-fdata-sections',
  // No compiler-generated SSE anywhere: on PVM hosts (this machine's KVM)
  // CPL-0 guest code is emulated and the emulator lacks most SSE
  // instructions. sse.c writes its vector code in assembly and runs it at
  // CPL 3.
  '-mgeneral-regs-only',
];
const LDFLAGS = [
  '-T', join(RUNTIME, 'guest.ld'),
  '-Wl,-z,max-page-size=0x1000', '-Wl,--build-id=none', '-Wl,--orphan-handling=warn',
  '-Wl,--gc-sections',
];
const RUNTIME_SOURCES = ['start.S', 'lib.c', 'x86.c', 'ring.c'];
const OBJ = join(OUT, 'obj');

function fail(msg) {
  process.stderr.write(`${ME}: ${msg}\n`);
  process.exit(1);
}

function mtime(path) {
  return statSync(path).mtimeMs;
}

function directives(src) {
  const words = new Set();
  for (const m of readFileSync(src, 'utf8').matchAll(/^\s*\/[/*]\s*hvt-build:\s*([^\n*]*)/gm)) {
    for (const w of (m[1] ?? '').trim().split(/\s+/)) if (w) words.add(w);
  }
  return words;
}

function run(cmd, args) {
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ err, output: `${stdout}${stderr}` });
    });
  });
}

// ---- §19.1 acceptance check of a linked guest ----

const PT_LOAD = 1;
const PT_NOTE = 4;

function checkElf(buf) {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const u16 = (o) => dv.getUint16(o, true);
  const u32 = (o) => dv.getUint32(o, true);
  const u64 = (o) => dv.getBigUint64(o, true);
  if (buf.length < 64 || u32(0) !== 0x464c457f) return 'not an ELF file';
  if (buf[4] !== 2 || buf[5] !== 1) return 'not ELF64 little-endian';
  if (u16(16) !== 2 || u16(18) !== 62 || u32(20) !== 1) return 'not an x86_64 ET_EXEC';
  if (u16(52) !== 64 || u16(54) !== 56) return 'bad e_ehsize/e_phentsize';
  const entry = u64(24);
  const phoff = Number(u64(32));
  const phnum = u16(56);
  if (phnum < 1 || phoff + phnum * 56 > buf.length) return 'bad program header table';
  if (entry < 0x100000n) return `entry 0x${entry.toString(16)} below 0x100000`;

  let lastVaddr = 0n;
  let eEnd = 0n;
  const notes = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * 56;
    const type = u32(o);
    const flags = u32(o + 4);
    const offset = Number(u64(o + 8));
    const vaddr = u64(o + 16);
    const filesz = u64(o + 32);
    const memsz = u64(o + 40);
    const align = u64(o + 48);
    if (type === PT_NOTE) notes.push({ i, offset, filesz: Number(filesz) });
    if (type !== PT_LOAD || filesz === 0n) continue;
    if (vaddr < 0x100000n) return `phdr[${i}] below 0x100000`;
    if (vaddr < lastVaddr) return `phdr[${i}] not in ascending order`;
    lastVaddr = vaddr;
    if (align === 0n || (align & (align - 1n)) !== 0n) return `phdr[${i}] p_align not a power of two`;
    const start = vaddr & ~(align - 1n);
    const end = (vaddr + memsz + align - 1n) & ~(align - 1n);
    if (start < eEnd) return `phdr[${i}] overlaps an earlier segment`;
    if (start % 4096n !== 0n || end % 4096n !== 0n) return `phdr[${i}] not 4 KiB aligned`;
    if ((flags & 3) === 3) return `phdr[${i}] is writable and executable`;
    if (memsz < filesz) return `phdr[${i}] p_memsz < p_filesz`;
    eEnd = end;
  }

  // First note of each PT_NOTE: "Solo5\0" padded to 8, then the descriptor.
  const first = (n) => {
    if (n.filesz < 20 || n.offset + 20 > buf.length) return null;
    const name = buf.subarray(n.offset + 12, n.offset + 18).toString('latin1');
    if (u32(n.offset) !== 6 || name !== 'Solo5\0') return null;
    return { descsz: u32(n.offset + 4), type: u32(n.offset + 8), n };
  };
  const found = notes.map(first).filter((x) => x !== null);
  const abi = found.filter((x) => x.type === 0x31494241);
  const mft = found.filter((x) => x.type === 0x3154464d);
  if (abi.length !== 1) return `expected one PT_NOTE starting with the ABI note, found ${abi.length}`;
  if (mft.length !== 1) return `expected one PT_NOTE starting with the manifest note, found ${mft.length}`;
  const a = abi[0];
  const ao = a.n.offset + 20;
  if (a.descsz !== 16 || a.n.filesz < 36) return 'ABI note descsz is not 16';
  if (u32(ao) !== 1 || u32(ao + 4) !== 2 || u32(ao + 8) !== 0 || u32(ao + 12) !== 0) {
    return 'ABI note content is not {1, 2, 0, 0}';
  }
  const m = mft[0];
  const mo = m.n.offset + 24;
  if (m.n.filesz < 20 + m.descsz || mo + 8 > buf.length) return 'manifest note truncated';
  if (u32(m.n.offset + 20) !== 0) return 'manifest note padding is not zero';
  const entries = u32(mo + 4);
  if (u32(mo) !== 1) return 'manifest version is not 1';
  if (entries < 1 || entries > 64) return `manifest has ${entries} entries (1..64 allowed)`;
  if (m.descsz !== 4 + 8 + 104 * entries) return 'manifest descsz does not match its entries';
  if (buf[mo + 8] !== 0 || u32(mo + 8 + 68) !== 0x40000000) return 'manifest entry 0 is not the reserved entry';
  for (let e = 0; e < entries; e++) {
    const eo = mo + 8 + 104 * e;
    if (buf[eo + 67] !== 0) return `manifest entry ${e} name is not NUL-terminated`;
    if (buf[eo + 96] !== 0) return `manifest entry ${e} is marked attached`;
  }
  return null;
}

// ---- main ----

async function gcc(what, args) {
  const { err, output } = await run(CC, args);
  if (!err) {
    if (output.trim()) process.stderr.write(output);
    return null;
  }
  if (err.code === 'ENOENT') return `cannot run ${CC}: not found`;
  process.stderr.write(output);
  return `${what}: ${CC} failed (exit status ${err.code ?? err.signal})`;
}

// The runtime objects are private to this run of the script.
async function buildRuntime() {
  mkdirSync(OBJ, { recursive: true });
  const objs = [];
  for (const src of RUNTIME_SOURCES) {
    const obj = join(OBJ, `${basename(src).replace(/\.[cS]$/, '')}.${process.pid}.o`);
    const e = await gcc(`runtime/${src}`, [...BASE_CFLAGS, `-I${RUNTIME}`, '-c', '-o', obj, join(RUNTIME, src)]);
    if (e) return { error: e, objs };
    objs.push(obj);
  }
  return { error: null, objs };
}

async function build(name, runtimeObjs) {
  const src = join(HERE, `${name}.c`);
  const out = join(OUT, `${name}.hvt`);
  const words = directives(src);
  const tmp = `${out}.${process.pid}.tmp`;
  // Later flags win: -O0 replaces the base -O2 for debug guests.
  const debug = words.has('debug') ? ['-g', '-O0', '-fno-omit-frame-pointer'] : [];
  const args = [...BASE_CFLAGS, ...debug, `-I${RUNTIME}`, ...LDFLAGS, '-o', tmp, ...runtimeObjs, src];
  const e = await gcc(`${name}.c`, args);
  if (e) {
    rmSync(tmp, { force: true });
    return e;
  }
  if (!words.has('no-check')) {
    const problem = checkElf(readFileSync(tmp));
    if (problem) {
      rmSync(tmp, { force: true });
      return `${name}.hvt does not satisfy HVT-ABI §19.1: ${problem}`;
    }
  }
  renameSync(tmp, out);
  return null;
}

async function main() {
  const all = readdirSync(HERE).filter((f) => f.endsWith('.c')).map((f) => basename(f, '.c')).sort();
  const wanted = process.argv.slice(2).map((a) => basename(a).replace(/\.(c|hvt)$/, ''));
  for (const w of wanted) if (!all.includes(w)) fail(`no such guest: ${w} (expected ${join(relative(process.cwd(), HERE) || '.', `${w}.c`)})`);
  const names = wanted.length ? wanted : all;

  mkdirSync(OUT, { recursive: true });
  const common = Math.max(
    mtime(fileURLToPath(import.meta.url)),
    ...readdirSync(RUNTIME).map((f) => mtime(join(RUNTIME, f))),
  );
  const stale = names.filter((n) => {
    try {
      return mtime(join(OUT, `${n}.hvt`)) <= Math.max(common, mtime(join(HERE, `${n}.c`)));
    } catch {
      return true;
    }
  });
  if (stale.length === 0) return;

  const runtime = await buildRuntime();
  const errors = runtime.error ? [runtime.error] : [];
  if (!runtime.error) {
    const queue = [...stale];
    const worker = async () => {
      for (let n = queue.shift(); n !== undefined; n = queue.shift()) {
        const e = await build(n, runtime.objs);
        if (e) errors.push(e);
      }
    };
    await Promise.all(Array.from({ length: Math.min(availableParallelism(), stale.length) }, worker));
  }
  for (const o of runtime.objs) rmSync(o, { force: true });
  if (errors.length) fail(errors.join(`\n${ME}: `));
  process.stderr.write(`${ME}: built ${stale.map((n) => `${n}.hvt`).join(', ')}\n`);
}

main().catch((e) => fail(e instanceof Error ? e.message : String(e)));
