// Composition: a backend and a list of modules become one runnable VM. This
// is the code the CLI and the library share. Everything the user gave is
// validated before the hypervisor is touched; once built, the order of
// docs/abi.md §1 steps 7–13 is followed. Every host resource taken is given
// back if a later step fails.
import { writeGdt, writePageTables } from '../arch/x86_64.js';
import type { Backend, Machine, RunControl, Vcpu, VcpuHandle, WaitSet } from '../backend/backend.js';
import type { HostIo } from '../backend/host.js';
import { ConfigError } from '../errors.js';
import type { Kernel } from '../kernel/kernel.js';
import { loadElf } from '../kernel/loader.js';
import { typeName } from '../kernel/manifest.js';
import type { Module, SetupContext } from '../module.js';
import { buildCmdline, writeBootInfo } from './bootinfo.js';
import { Core, type RunOutcome, type SliceOutcome } from './core.js';
import { debugMemory } from './debug-memory.js';
import { GuestMemory } from './memory.js';
import { sizeMemory } from './memsize.js';

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
   * once the configuration is known to be good (closed once the VM is built).
   */
  backend: Backend | (() => Backend);
  /** The host's clock for WALLTIME. */
  host: Pick<HostIo, 'realtimeInto'>;
  /** Receives warning lines (without program prefix). */
  warn: (message: string) => void;
  /**
   * How long POLL checks the devices without sleeping before it blocks, in
   * ns (default 0). Saves the wake-up of a blocked thread on busy networks
   * at the price of that much CPU per POLL; bench/ found no gain on PVM,
   * where a wake-up costs little next to a VM exit.
   */
  pollSpinNs?: number;
  /** Core counters (see core.ts); pass a SharedArrayBuffer view to read them from another thread. */
  counters?: Float64Array;
  /** Per-device byte counters, DEVICE_BYTES_LENGTH entries (see SetupContext.countBytes). */
  deviceBytes?: Float64Array;
  /**
   * The net ring's counters, RING_COUNTERS_LENGTH entries, over a
   * SharedArrayBuffer (its I/O thread writes them); made here if not given.
   */
  ringCounters?: Float64Array;
  /**
   * The last step of set-up (§1 step 14, §17): called once, on the thread
   * that runs the VM, after everything is open and boot info is written,
   * right before the first KVM_RUN. The CLI and the library worker pass
   * sandbox/step.ts (the sandbox, or its warnings); without it the VM runs
   * unconfined. A throw ends run() with that error before the guest starts.
   */
  sandbox?: () => void;
}

/** Two counters for each of the 64 possible manifest entries: [2h] into the guest, [2h + 1] out. */
export const DEVICE_BYTES_LENGTH = 128;

/**
 * The ring's counters (§13): [0] NET_READ entries served, [1] NET_WRITE
 * entries sent, then bytes per device as in deviceBytes ([2 + 2h] in, [3 + 2h]
 * out) for the frames that went through the ring rather than a hypercall.
 */
export const RING_COUNTERS_LENGTH = 2 + DEVICE_BYTES_LENGTH;

export const DEFAULT_POLL_SPIN_NS = 0;

export interface Vm {
  /** Names the vCPU to other threads (stop, CPU time). */
  readonly handle: VcpuHandle;
  /** Runs the guest until it halts, a signal arrives or stop() is called; the first call runs VmConfig.sandbox first. */
  run(): RunOutcome;
  /** Makes run() return { kind: 'stopped' } soon. */
  stop(): void;
  /**
   * Releases the modules' host resources (disks, taps, the net ring's
   * thread) now, ahead of close(): what another VM or program may want
   * next. Idempotent; close() does it too.
   */
  closeDevices(): void;
  close(): void;

  // Several VMs on one thread (library/scheduler.ts); vm.run() is unchanged.
  /** A cooperative part of run() (Core.runSlice); the first call of either runs VmConfig.sandbox first. */
  runSlice(deadlineMs: number): SliceOutcome;
  /** Ends the POLL a slice blocked in (Core.completePoll) with the keys ready. */
  completePoll(keys: readonly number[]): void;
  /** POLL's wait set: wait(0) for the keys ready now, watch() to be called back from the event loop. */
  readonly waitSet: WaitSet;
  /** Whether the run is ending (a stop or termination signal). */
  readonly control: RunControl;
  /** Consumes a pending interrupt() (a preemption), on this thread between slices; false if none (or not offered). */
  takeInterrupt(): boolean;
}

/** Builds a VM ready to run. Throws TenderError subclasses for every bad input. */
export function createVm(config: VmConfig): Vm {
  const { kernel, modules } = config;
  const mft = kernel.manifest;
  const closeModules = () => {
    for (const m of modules) m.close?.();
  };
  let ownBackend: Backend | undefined;
  let machine: Machine | undefined;
  let vcpu: Vcpu | undefined;
  let waitSet: WaitSet | undefined;
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
    mem.sharer = () => m.share();
    const applied: { start: number; end: number; prot: number }[] = [];
    const loaded = loadElf(kernel.src, kernel.elf, size.allocSize, {
      bytes: mem.bytes,
      protect: (p) => {
        m.protect(p.start, p.end, p.prot);
        mem.protect({ start: p.start, end: p.end, readable: (p.prot & 1) !== 0, writable: (p.prot & 2) !== 0 });
        applied.push({ start: p.start, end: p.end, prot: p.prot });
      },
    }, kernel.name);
    kernel.close();
    mem.guestSize = size.guestSize;

    writeGdt(mem.bytes);
    writePageTables(mem.bytes, size.allocSize);
    vcpu = machine.createVcpu();
    const cpu = vcpu;
    const tscHz = cpu.configure({ entry: loaded.entry, memSize: size.guestSize });

    waitSet = cpu.createWaitSet(config.pollSpinNs ?? DEFAULT_POLL_SPIN_NS);
    const ws = waitSet;
    const core = new Core(mem, {
      realtimeInto: config.host.realtimeInto,
      watch: (fd, key) => ws.add(fd, key),
      wait: (ns) => ws.wait(ns),
      ending: () => cpu.control.ending(),
    }, config.counters);
    const deviceBytes = config.deviceBytes ?? new Float64Array(DEVICE_BYTES_LENGTH);
    const ringCounters = config.ringCounters ?? new Float64Array(new SharedArrayBuffer(RING_COUNTERS_LENGTH * 8));
    const bootInfo = { hostFeatures: 0, netRing: 0 };
    const ctx: SetupContext = {
      memory: mem,
      mft,
      hypercall: (nr, fn) => core.hypercall(nr, fn),
      onHalt: (fn) => core.onHalt(fn),
      onVmexit: (fn) => core.onVmexit(fn),
      pollFd: (fd, handle) => core.pollFd(fd, handle),
      run: cpu.control,
      countBytes(handle, direction, n) {
        const i = 2 * handle + (direction === 'out' ? 1 : 0);
        if (i >= 0 && i < deviceBytes.length) deviceBytes[i] = (deviceBytes[i] ?? 0) + n;
      },
      ...(cpu.debug ? { debug: cpu.debug } : {}),
      debugMemory: debugMemory({ bytes: mem.bytes, guestSize: size.guestSize, applied, protect: (start, end, prot) => m.protect(start, end, prot) }),
      vcpu: cpu.handle,
      warn: config.warn,
      memSize: size.guestSize,
      portEvents: m.portEvents,
      bootInfo,
      ringCounters,
    };
    for (const mod of modules) mod.setup(ctx);

    writeBootInfo(mem.bytes, {
      memSize: size.guestSize,
      kernelEnd: loaded.kernelEnd,
      cpuCycleFreq: tscHz,
      hostFeatures: bootInfo.hostFeatures,
      netRing: bootInfo.netRing,
    }, mft, cmdline);
    // The hypervisor handle is needed only to build the VM.
    ownBackend?.close();
    ownBackend = undefined;
    let closed = false;
    let started = false;
    const start = () => {
      if (started) return;
      started = true;
      config.sandbox?.();
    };
    return {
      handle: cpu.handle,
      run: () => {
        start();
        return core.run(cpu);
      },
      runSlice: (deadlineMs) => {
        start();
        return core.runSlice(cpu, deadlineMs);
      },
      completePoll: (keys) => core.completePoll(keys),
      waitSet: ws,
      control: cpu.control,
      takeInterrupt: () => cpu.takeInterrupt?.() ?? false,
      stop: () => cpu.kick(),
      closeDevices: closeModules,
      close() {
        if (closed) return;
        closed = true;
        ws.close();
        cpu.close();
        closeModules();
        m.close();
      },
    };
  } catch (e) {
    kernel.close();
    waitSet?.close();
    vcpu?.close();
    machine?.close();
    ownBackend?.close();
    closeModules();
    throw e;
  }
}

/** §4.4: every declared device must have been attached by a module. */
function checkAttached(mft: Kernel['manifest']): void {
  const missing = mft.unattached();
  if (missing.length === 0) return;
  const warnings = missing.map((i) => `Device '${mft.name(i)}' of type ${typeName(mft.type(i))} declared but not attached.`);
  throw new ConfigError('All declared devices must be attached. See --help for syntax.', { warnings });
}
