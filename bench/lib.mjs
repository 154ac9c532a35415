// Shared helpers of the bench scripts: statistics, machine description and
// in-process VMs built with the same composition code as the CLI.
import { execFileSync } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { loadNative } from '../dist/native/binding.js';
import { KvmBackend } from '../dist/monitor/backend/kvm/backend.js';
import { openKernel } from '../dist/monitor/kernel/kernel.js';
import { createVm } from '../dist/monitor/vm/compose.js';
import { console as consoleModule, fdSink } from '../dist/modules/console/index.js';

export const ROOT = join(import.meta.dirname, '..');
export const BIN = join(ROOT, 'bin', 'ukvm-ts');
export const guest = (name) => join(ROOT, 'test', 'guests', 'build', `${name}.hvt`);

export function stats(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], runs: s.length };
}

export function machine() {
  let kvm = 'unknown';
  try {
    const dmesg = execFileSync('dmesg', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    kvm = /kvm-pvm: loaded/.test(dmesg) ? 'PVM (kvm-pvm)' : /kvm/.test(dmesg) ? 'KVM' : 'unknown';
  } catch {
    // dmesg may be restricted; the rest still describes the machine.
  }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    kernel: release(),
    node: process.version,
    hypervisor: kvm,
    date: new Date().toISOString(),
  };
}

let backend;
let binding;
const devNull = openSync('/dev/null', 'w');

/** Builds a VM for a test guest in this process, console to /dev/null. */
export function bootVm(name, args, memMiB = 32, extraModules = []) {
  binding ??= loadNative();
  backend ??= new KvmBackend(binding);
  const kernel = openKernel(guest(name));
  const modules = [consoleModule({ sink: fdSink(devNull) }), ...extraModules];
  return createVm({ kernel, memoryBytes: BigInt(memMiB) << 20n, args, modules, backend, warn: () => {}, binding });
}

export { devNull };

/** Reads the package version for the report. */
export function version() {
  return JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
}
