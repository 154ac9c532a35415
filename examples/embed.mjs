// Embedding ukvm-ts: start a unikernel from a Node program, stream its
// console, stop it, and read its statistics. Run: node examples/embed.mjs
// (after `npm install`; uses the test guests built by `npm run guests`).
import { startUnikernel } from 'ukvm-ts';
import { fileURLToPath } from 'node:url';

const guest = (name) => fileURLToPath(new URL(`../test/guests/build/${name}.hvt`, import.meta.url));

// 1. A unikernel that runs to completion; its console goes to a callback.
const hello = await startUnikernel({
  kernel: guest('hello'),
  memoryMiB: 32,
  args: ['from', 'examples/embed.mjs'],
  console: (text) => process.stdout.write(`[hello] ${text}`),
});
const done = await hello.exited;
console.log(`hello exited: status ${done.status} (${done.reason})`);

// 2. A unikernel that never ends on its own: stop it once it has spoken.
const spinner = await startUnikernel({
  kernel: guest('spin'),
  memoryMiB: 32,
  console: (text) => {
    process.stdout.write(`[spin] ${text}`);
    if (text.includes('spinning')) spinner.stop();
  },
});
const stopped = await spinner.exited;
const s = spinner.stats();
console.log(`spin exited: ${stopped.reason}; ${s.exits.io} I/O exits, ${s.hypercalls.PUTS} PUTS, vCPU ${s.vcpuMs.toFixed(1)} ms of ${s.wallMs} ms`);
