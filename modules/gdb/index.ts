// gdb module (docs/abi.md §16): `--gdb` makes the monitor wait for a
// debugger speaking gdb's remote serial protocol before the guest runs, and
// lets it stop, step, inspect and change the guest. The pieces, one job
// each: options.ts (CLI and library options), packet.ts (framing), stub.ts
// (requests and replies), registers.ts (register layout and target
// description), breakpoints.ts (debug registers and int3), target.ts (the
// vCPU and guest memory), link.ts (the vCPU thread's end of the channel and
// the wait for gdb to attach), session.ts (the vmexit hook: stops, serving,
// resuming), socket-worker.ts (the thread owning the socket), channel.ts
// (what those two threads say).
import { MessageChannel } from 'node:worker_threads';
import { platform } from '../../monitor/backend/index.js';
import { HostError } from '../../monitor/errors.js';
import type { Module, ModuleDescriptor, ModuleEnv, SetupContext } from '../../monitor/module.js';
import { startWorker } from '../../monitor/workers.js';
import { fdOutput } from '../console/fd-output.js';
import { BreakpointTable, type GuestRam } from './breakpoints.js';
import { SLOTS, type SocketWorkerData } from './channel.js';
import { configFromOptions, DEFAULT_HOST, DEFAULT_PORT, gdbLibraryOption, handleGdbArg } from './options.js';
import { targetXml } from './registers.js';
import { awaitDebugger, Link } from './link.js';
import { Session } from './session.js';
import { GdbStub } from './stub.js';
import { debugRam, VcpuRegisters } from './target.js';

export const UNSUPPORTED_MESSAGE = 'GDB support not implemented on this backend/architecture';
const WORKER = 'modules/gdb/socket-worker.js';

export const gdbModule: ModuleDescriptor = {
  name: 'gdb',
  serves: [],
  cli: {
    usage: [
      '[ --gdb ] (wait for a debugger to connect before the guest runs: the gdb remote protocol over TCP)',
      `[ --gdb-port=${DEFAULT_PORT} ] (TCP port for --gdb; 0 picks a free one)`,
      `[ --gdb-host=${DEFAULT_HOST} ] (address for --gdb to listen on; 0.0.0.0 for every interface)`,
    ],
  },
  library: [gdbLibraryOption],
  // The stub listens on a TCP socket and has a thread of its own.
  grants: (options) => (options['gdb'] !== undefined ? 'unconfined' : {}),
  create: (options, env) => gdb(options, env),
};

function gdb(options: Readonly<Record<string, unknown>>, env: ModuleEnv): Module {
  const config = configFromOptions(options);
  const output = env.output ?? fdOutput(env.host, 1);
  let session: Session | null = null;
  let link: Link | null = null;

  const mod: Module = {
    name: 'gdb',
    handleArg: (arg) => handleGdbArg(arg, config),
    // The sandbox stays on: the connection is accepted (and the listening
    // socket closed) during setup, and the filter adds what the stub does
    // afterwards — register ioctls, the socket thread's reads and writes.
    sandbox: () => (config.enabled ? 'debugger' : undefined),

    setup(ctx) {
      if (!config.enabled) return;
      const debug = ctx.debug;
      if (!debug || debug.registersOnly) throw new HostError(UNSUPPORTED_MESSAGE);
      const say = (line: string) => output(new TextEncoder().encode(`${line}\n`), ctx.run);
      link = startSocketThread(ctx, config.host, config.port);
      const peer = awaitDebugger(link, ctx.run, config.host, config.port, say, ctx.warn);
      if (peer === null) return; // the run is ending (SIGTERM while waiting)
      say(`Connection from debugger at ${peer}`);
      const registers = new VcpuRegisters(debug);
      const breakpoints = new BreakpointTable(guestRam(ctx));
      const stub = new GdbStub({ registers, breakpoints }, targetXml);
      const vcpu = ctx.vcpu;
      session = new Session({
        link, stub, breakpoints, registers, debug, run: ctx.run, say, warn: ctx.warn,
        interrupt: () => platform().interrupt(vcpu),
      });
      ctx.onVmexit(session.hook);
      ctx.onHalt(session.onHalt);
    },

    close() {
      if (session) session.close();
      else link?.shutdown();
      session = null;
      link = null;
    },
  };
  return mod;
}

function startSocketThread(ctx: SetupContext, host: string, port: number): Link {
  const shared = new SharedArrayBuffer(SLOTS * 4);
  const { port1, port2 } = new MessageChannel();
  const data: SocketWorkerData = { host, port, shared, vcpu: ctx.vcpu, channel: port2 };
  // execArgv: [] — the thread runs only our code, whatever flags started node.
  const worker = startWorker(WORKER, { workerData: data, transferList: [port2], execArgv: [] });
  worker.unref();
  return new Link(worker, port1, shared);
}

/** Guest memory for the stub: the monitor's debugger access (SetupContext.debugMemory), which reaches host-protected text for int3 breakpoints. */
function guestRam(ctx: SetupContext): GuestRam {
  return debugRam(ctx.debugMemory);
}

export default gdbModule;
