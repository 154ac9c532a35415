// A test-only embedding program for test/kvm/net-ring.test.ts: runs one net
// guest with startUnikernel (so its VM runs in a worker thread under the
// library's thread-scoped sandbox, and the net ring's thread confines
// itself) and reports on stdout as it goes:
//
//   node test/kvm/net-ring-lib.mjs '{"kernel":…,"net":{…},"netRing":"on","args":[…],"stopOn":"RE","stopDelayMs":N}'
//
// Guest console lines are passed through as they come. If stopOn is given,
// stop() is called stopDelayMs after a console line matches it. At the end:
//   exit {"status":…,"reason":…,"message":…}
//   stats {…vm.stats()…}
import { startUnikernel } from '../../dist/monitor/index.js';

const o = JSON.parse(process.argv[2] ?? '{}');
let text = '';
let stopped = false;
let vm;
const console_ = (chunk) => {
  process.stdout.write(chunk);
  text += chunk;
  if (o.stopOn && !stopped && new RegExp(o.stopOn, 'm').test(text)) {
    stopped = true;
    setTimeout(() => vm?.stop(), o.stopDelayMs ?? 0);
  }
};
try {
  vm = await startUnikernel({
    kernel: o.kernel,
    memoryMiB: o.memoryMiB ?? 64,
    args: o.args ?? [],
    net: o.net,
    ...(o.netRing ? { netRing: o.netRing } : {}),
    console: console_,
    warn: (line) => process.stderr.write(`warn: ${line}\n`),
  });
} catch (e) {
  process.stdout.write(`start failed ${JSON.stringify({ name: e.name, code: e.code, message: e.message })}\n`);
  process.exit(1);
}
const info = await vm.exited;
process.stdout.write(`exit ${JSON.stringify(info)}\nstats ${JSON.stringify(vm.stats())}\n`);
