// Shared helpers of the bench scripts: statistics, machine description, the
// test guests the bench needs (built here, so `npm run bench` works from a
// fresh clone), and in-process VMs built with the same composition code and
// registry as the CLI.
import { execFileSync } from 'node:child_process';
import { existsSync, openSync, readFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { createVm, openKernel, platform, REGISTRY } from '../dist/monitor/index.js';
import { fdOutput } from '../dist/modules/console/fd-output.js';
import { KvmBackend } from '../dist/monitor/backend/kvm/backend.js';
import { loadBench } from '../dist/native/binding/bench.js';

export const ROOT = join(import.meta.dirname, '..');
export const BIN = join(ROOT, 'bin', 'ukvm-ts');
export const guest = (name) => join(ROOT, 'test', 'guests', 'build', `${name}.hvt`);

/** Every guest a bench row runs. */
const BENCH_GUESTS = ['hello', 'bench_exits', 'bench_block', 'bench_ping', 'idle'];

/** Builds the bench guests with the machine's gcc (only those older than their sources). */
export function buildGuests() {
  execFileSync(process.execPath, [join(ROOT, 'test', 'guests', 'build.mjs'), ...BENCH_GUESTS], { stdio: ['ignore', 'ignore', 'inherit'] });
}

export function stats(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], runs: s.length };
}

export function machine() {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    kernel: release(),
    node: process.version,
    hypervisor: hypervisor(),
    date: new Date().toISOString(),
  };
}

function hypervisor() {
  // The module is there for as long as PVM is; its dmesg line may have scrolled away.
  if (existsSync('/sys/module/kvm_pvm')) return 'PVM (kvm-pvm)';
  try {
    const dmesg = execFileSync('dmesg', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return /kvm-pvm: loaded/.test(dmesg) ? 'PVM (kvm-pvm)' : /kvm/.test(dmesg) ? 'KVM' : 'unknown';
  } catch {
    return 'unknown'; // dmesg may be restricted; the rest still describes the machine
  }
}

export const devNull = openSync('/dev/null', 'w');

/**
 * Builds a VM for a test guest in this process, console to /dev/null.
 * moduleOptions: startUnikernel-style options by module name, e.g.
 * { block: { block: { storage: path }, blockSectorSize: { storage: 4096 } } }.
 */
export function bootVm(name, args, memMiB = 32, moduleOptions = {}) {
  const p = platform();
  const env = { host: p.host, output: fdOutput(p.host, devNull) };
  const modules = REGISTRY.map((d) => d.create(moduleOptions[d.name] ?? {}, env));
  return createVm({ kernel: openKernel(guest(name)), memoryBytes: BigInt(memMiB) << 20n, args, modules, backend: () => p.openBackend(), host: p.host, warn: () => {} });
}

/**
 * The same guest and VM set-up on the bench addon (build/Release/ukvm_bench.node,
 * which the product never loads), run by its C++ loop that answers WALLTIME,
 * zero-timeout POLL and PUTS without returning to JavaScript: the floor of an
 * exit. run() returns the HALT status.
 */
export function bootFloorVm(name, args, memMiB = 32) {
  const bench = loadBench();
  const p = platform();
  const kvm = new KvmBackend(bench);
  let machine;
  const backend = { createMachine: (n) => (machine = kvm.createMachine(n)), close: () => kvm.close() };
  const env = { host: p.host, output: fdOutput(p.host, devNull) };
  const modules = REGISTRY.map((d) => d.create({}, env));
  const vm = createVm({ kernel: openKernel(guest(name)), memoryBytes: BigInt(memMiB) << 20n, args, modules, backend: () => backend, host: p.host, warn: () => {} });
  return {
    run: () => bench.benchRunToHalt(vm.handle.token, machine.memory, memMiB << 20, devNull),
    close: () => vm.close(),
  };
}

/** Reads the package version for the report. */
export function version() {
  return JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
}
