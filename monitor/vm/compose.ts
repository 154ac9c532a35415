// Composition: a backend and a list of modules become one runnable VM. This
// is the code the CLI and the library share. Everything is validated before
// the VM is built; once built, the order of spec §1 steps 7–13 is followed.
import { loadNative, type NativeBinding } from '../../native/binding.js';
import { type Backend, type Machine, type Vcpu } from '../backend/backend.js';
import { writeGdt, writePageTables } from '../arch/x86_64.js';
import { buildCmdline, writeBootInfo } from './bootinfo.js';
import { Core, type RunOutcome } from './core.js';
import { ConfigError } from '../errors.js';
import type { Kernel } from '../kernel/kernel.js';
import { loadElf } from '../kernel/loader.js';
import { typeName } from '../kernel/manifest.js';
import { GuestMemory } from './memory.js';
import { sizeMemory } from './memsize.js';
import type { Module, SetupContext } from '../module.js';
import { PollHost } from '../backend/kvm/host.js';

export interface VmConfig {
  kernel: Kernel;
  /** Requested guest memory in bytes (before rounding, §6.1). */
  memoryBytes: bigint;
  /** Guest arguments, joined into its command line. */
  args: readonly string[];
  /** Modules in setup order; their options are already applied. */
  modules: readonly Module[];
  /**
   * The hypervisor (the caller keeps and closes it), or a function making one
   * once the configuration is known to be good (closed with the VM).
   */
  backend: Backend | (() => Backend);
  /** Receives warning lines (without program prefix). */
  warn: (message: string) => void;
  binding?: NativeBinding;
  /**
   * How long POLL checks the devices without sleeping before it blocks, in
   * ns (default 0). Saves the wake-up of a blocked thread on busy networks
   * at the price of that much CPU per POLL; bench/ found no gain on PVM,
   * where a wake-up costs little next to a VM exit.
   */
  pollSpinNs?: number;
  /** Core counters (see core.ts); pass a SharedArrayBuffer view to read them from another thread. */
  counters?: Float64Array;
  /** Per-device byte counters, DEVICE_BYTES_LENGTH entries (see SetupContext.deviceBytes). */
  deviceBytes?: Float64Array;
}

/** Two counters for each of the 64 possible manifest entries. */
export const DEVICE_BYTES_LENGTH = 128;

export const DEFAULT_POLL_SPIN_NS = 0;

export interface Vm {
  readonly memory: GuestMemory;
  readonly core: Core;
  /** See Vcpu.token. */
  readonly vcpuToken: number;
  /** Runs the guest until it halts, a signal arrives or stop() is called. */
  run(): RunOutcome;
  /** Safe from any thread: makes run() return { kind: 'stopped' } soon. */
  stop(): void;
  /** Bench only: see Vcpu.runFloor. Returns the HALT status. */
  runFloor(putsFd: number): number;
  close(): void;
}

/** Builds a VM ready to run. Throws TenderError subclasses for every bad input. */
export function createVm(config: VmConfig): Vm {
  const { kernel, modules } = config;
  const binding = config.binding ?? loadNative();
  const mft = kernel.manifest;
  const closeModules = () => {
    for (const m of modules) m.close?.();
  };
  let machine: Machine | undefined;
  let vcpu: Vcpu | undefined;
  let host: PollHost | undefined;
  let ownBackend: Backend | undefined;
  try {
    // Checked in the reference's order (§1): memory, devices, command line.
    const requested = sizeMemory(config.memoryBytes);
    if (requested.warning) config.warn(requested.warning);
    for (const m of modules) m.prepare?.(mft, config.warn);
    checkAttached(mft);
    const reserve = modules.reduce((sum, m) => sum + (m.extraMemory?.(mft) ?? 0), 0);
    const size = reserve ? sizeMemory(config.memoryBytes, reserve) : requested;
    const cmdline = buildCmdline(config.args);

    // Everything the user gave is checked; only now touch the hypervisor.
    if (typeof config.backend === 'function') ownBackend = config.backend();
    machine = (ownBackend ?? (config.backend as Backend)).createMachine(size.allocSize);
    const m = machine;
    const mem = new GuestMemory(machine.memory, size.allocSize);
    const loaded = loadElf(kernel.src, kernel.elf, size.allocSize, {
      bytes: mem.bytes,
      protect: (p) => {
        m.protect(p.start, p.end, p.prot);
        mem.protect({ start: p.start, end: p.end, readable: (p.prot & 1) !== 0, writable: (p.prot & 2) !== 0 });
      },
    }, kernel.name);
    kernel.close();
    mem.guestSize = size.guestSize;

    writeGdt(mem.bytes);
    writePageTables(mem.bytes, size.allocSize);
    vcpu = machine.createVcpu();
    const tscHz = vcpu.configure({ entry: loaded.entry, memSize: size.guestSize });

    const spinNs = config.pollSpinNs ?? DEFAULT_POLL_SPIN_NS;
    host = new PollHost(binding, vcpu, () => core.pollFds, spinNs);
    const core = new Core(mem, host, config.counters);
    const ctx: SetupContext = {
      mem,
      mft,
      hypercall: (nr, fn) => core.hypercall(nr, fn),
      onHalt: (fn) => core.onHalt(fn),
      onVmexit: (fn) => core.onVmexit(fn),
      pollFd: (fd, handle) => core.pollFd(fd, handle),
      run: host,
      warn: config.warn,
      deviceBytes: config.deviceBytes ?? new Float64Array(DEVICE_BYTES_LENGTH),
    };
    for (const m of modules) m.setup(ctx);

    writeBootInfo(mem.bytes, {
      memSize: size.guestSize,
      kernelEnd: loaded.kernelEnd,
      cpuCycleFreq: tscHz,
      hostFeatures: 0,
      netRing: 0,
    }, mft, cmdline);
    // The hypervisor handle is needed only to build the VM.
    ownBackend?.close();
    ownBackend = undefined;
    const pollHost = host;
    return makeVm(mem, core, vcpu, m, () => {
      pollHost.close();
      closeModules();
    });
  } catch (e) {
    kernel.close();
    vcpu?.close();
    machine?.close();
    ownBackend?.close();
    host?.close();
    closeModules();
    throw e;
  }
}

function makeVm(memory: GuestMemory, core: Core, vcpu: Vcpu, machine: Machine, release: () => void): Vm {
  let closed = false;
  return {
    memory,
    core,
    vcpuToken: vcpu.token,
    run: () => core.run(vcpu),
    stop: () => vcpu.kick(),
    runFloor(putsFd) {
      if (!vcpu.runFloor) throw new Error('this backend has no native floor loop');
      return vcpu.runFloor(memory.buffer, memory.guestSize, putsFd);
    },
    close() {
      if (closed) return;
      closed = true;
      vcpu.close();
      release();
      machine.close();
    },
  };
}

/** §4.4: every declared device must have been attached by a module. */
function checkAttached(mft: Kernel['manifest']): void {
  const missing = mft.unattached();
  if (missing.length === 0) return;
  const warnings = missing.map((i) => `Device '${mft.name(i)}' of type ${typeName(mft.type(i))} declared but not attached.`);
  throw new ConfigError('All declared devices must be attached. See --help for syntax.', warnings);
}
