// Guest memory shared with another thread (native/guest_mapping.cc, used by
// the net ring's thread): shareMemory gives a SharedArrayBuffer over the very
// pages of the VM's guest memory, in this thread and in a worker, and
// refuses any other buffer.
import { Worker } from 'node:worker_threads';
import { expect, it } from 'vitest';
import { loadNative } from '../../native/binding.js';
import { describeKvm } from '../helpers/tender.js';

describeKvm('guest memory as a SharedArrayBuffer', () => {
  it('aliases the guest memory, here and in a worker thread, and outlives the VM descriptor', async () => {
    const b = loadNative();
    const kvm = b.openKvm();
    const vm = b.createVm(kvm, 4 << 20);
    b.closeFd(kvm);
    const sab = b.shareMemory(vm.memory);
    expect(sab).toBeInstanceOf(SharedArrayBuffer);
    expect(sab.byteLength).toBe(4 << 20);
    const mem = new Uint8Array(vm.memory);
    mem[0x1234] = 0x5a;
    expect(new Uint8Array(sab)[0x1234]).toBe(0x5a);
    // A worker writes through its copy of the SharedArrayBuffer; we see it in the ArrayBuffer.
    const w = new Worker("const { workerData, parentPort } = require('node:worker_threads'); new Uint8Array(workerData)[0x3ffff0] = 0xa5; parentPort.postMessage('done');", { eval: true, workerData: sab });
    await new Promise((resolve, reject) => {
      w.on('message', resolve);
      w.on('error', reject);
    });
    await w.terminate();
    expect(mem[0x3ffff0]).toBe(0xa5);
    b.closeFd(vm.vmFd);
    expect(new Uint8Array(sab)[0x1234]).toBe(0x5a);
  });

  it('refuses buffers that are not guest memory', () => {
    const b = loadNative();
    expect(() => b.shareMemory(new ArrayBuffer(4096))).toThrow('not a guest memory buffer');
    expect(() => b.shareMemory(new SharedArrayBuffer(4096) as unknown as ArrayBuffer)).toThrow('expected the guest memory ArrayBuffer');
  });
});
