// SIGTERM and SIGINT end a run promptly and cleanly: "Exiting on signal N"
// on stderr and status 1 (docs/abi.md §14), whether the vCPU is busy in KVM_RUN
// (spin) or the tender is waiting on the guest's behalf (a long POLL).
import { once } from 'node:events';
import { expect, it } from 'vitest';
import { describeKvm, guest, startTender } from '../helpers/tender.js';

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts spin.hvt with args, waits for `ready` on stdout, sends sig, waits for the end. */
async function interrupt(args: string[], ready: string, sig: NodeJS.Signals): Promise<Ended> {
  const child = startTender([guest('spin'), ...args]);
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes(ready)) resolve();
    });
    child.once('exit', () => reject(new Error(`tender exited before "${ready}": ${stderr}`)));
  });
  child.kill(sig);
  const [code, signal] = await exited;
  return { code, signal, stdout, stderr };
}

describeKvm('signals', () => {
  it.each([
    ['SIGTERM', 15],
    ['SIGINT', 2],
  ] as const)('%s while the guest spins in KVM_RUN', async (sig, num) => {
    const r = await interrupt([], 'spinning\n', sig);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`ukvm-ts: Exiting on signal ${num}\n`);
    expect(r.stdout).toBe('spinning\n');
  }, 15_000);

  it.each([
    ['SIGTERM', 15],
    ['SIGINT', 2],
  ] as const)('%s while the guest sleeps in a 10 s POLL', async (sig, num) => {
    const r = await interrupt(['poll'], 'polling\n', sig);
    expect(r.signal).toBeNull();
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`ukvm-ts: Exiting on signal ${num}\n`);
  }, 15_000);
});
