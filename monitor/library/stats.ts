// Reads one VM's statistics from the SharedArrayBuffer its worker writes.
import { Hypercall, HYPERCALL_MAX } from '../abi/constants.js';
import type { VcpuHandle } from '../backend/backend.js';
import { platform } from '../backend/index.js';
import { DeviceType } from '../kernel/manifest.js';
import { EXIT_KINDS, HYPERCALL_COUNTER_BASE } from '../vm/core.js';
import { STATS } from './shared.js';
import type { UnikernelStats } from './types.js';

const HYPERCALL_NAMES = Object.fromEntries(Object.entries(Hypercall).map(([k, v]) => [v, k])) as Record<number, string>;

export function readStats(s: Float64Array, names: { name: string; type: number }[], wallMs: number, vcpu: VcpuHandle | null, ended: boolean): UnikernelStats {
  const exits: Record<string, number> = {};
  EXIT_KINDS.forEach((k, i) => (exits[k] = s[STATS.counters + i] ?? 0));
  const hypercalls: Record<string, number> = {};
  for (let nr = 1; nr <= HYPERCALL_MAX; nr++) {
    hypercalls[HYPERCALL_NAMES[nr] ?? String(nr)] = s[STATS.counters + HYPERCALL_COUNTER_BASE + nr] ?? 0;
  }
  const devices: Record<string, { in: number; out: number }> = {};
  names.forEach((d, i) => {
    if (d.type === DeviceType.BLOCK_BASIC || d.type === DeviceType.NET_BASIC) {
      // Hypercall bytes and the net ring's (its I/O thread counts its own).
      const at = (base: number, k: number) => s[base + 2 * i + k] ?? 0;
      devices[d.name] = { in: at(STATS.deviceBytes, 0) + at(STATS.ring + 2, 0), out: at(STATS.deviceBytes, 1) + at(STATS.ring + 2, 1) };
    }
  });
  const start = s[STATS.cpuStart] ?? 0;
  // A VM sharing its thread: the worker keeps cpuEnd live (its own slices only).
  const end = ended || s[STATS.cpuShared] === 1 ? (s[STATS.cpuEnd] ?? 0) : vcpu ? platform().cpuTimeNs(vcpu) : 0;
  const ring = { reads: s[STATS.ring] ?? 0, writes: s[STATS.ring + 1] ?? 0 };
  return { exits, hypercalls, devices, ring, wallMs, vcpuMs: Math.max(0, end - start) / 1e6 };
}
